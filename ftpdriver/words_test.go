package ftpdriver

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"testing"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"github.com/ftpbridge/ftpbridge/boardfs"
)

// Every exception a board raises reaches the client in words: no
// "OSError", no bare errno, whichever of the two forms the board prints
// ("OSError: 20", "OSError: [Errno 20] ENOTDIR").
func TestBoardExceptionsInWords(t *testing.T) {
	var raised []*boardfs.PyError
	for errno := range errnoWords {
		raised = append(raised,
			&boardfs.PyError{Type: "OSError", Message: fmt.Sprint(errno), Errno: errno},
			&boardfs.PyError{Type: "OSError", Message: fmt.Sprintf("[Errno %d] E%d", errno, errno), Errno: errno})
	}
	raised = append(raised,
		&boardfs.PyError{Type: "OSError", Message: "42", Errno: 42}, // no words for it: still no raw OSError
		&boardfs.PyError{Type: "OSError", Message: "something odd"},
		&boardfs.PyError{Type: "MemoryError", Message: "memory allocation failed, allocating 4096 bytes"},
		&boardfs.PyError{Type: "MemoryError"},
		&boardfs.PyError{Type: "ValueError", Message: "bad"})
	for _, pe := range raised {
		err := ftpError(slog.New(slog.DiscardHandler), "op", "/p", fmt.Errorf("boardfs: op: %w", pe))
		msg := err.Error()
		if strings.Contains(msg, "OSError") || strings.Contains(msg, "Errno") || strings.Contains(msg, "board:") {
			t.Errorf("%v is answered %q, which is the board's raw text", pe, msg)
		}
		if pe.Type == "MemoryError" && msg != "the board ran out of memory" {
			t.Errorf("%v is answered %q", pe, msg)
		}
	}
}

func TestFTPErrorMountsAndNames(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	enodev := &boardfs.PyError{Type: "OSError", Message: "[Errno 19] ENODEV", Errno: 19}
	err := ftpError(log, "stat", "/x", fmt.Errorf("boardfs: stat: %w: %w", boardfs.ErrBadName, enodev))
	if !errors.Is(err, fs.ErrNotExist) || err.Error() != "no such file or directory" {
		t.Errorf("ENODEV (nothing mounted there) = %v, want no such file", err)
	}
	long := &boardfs.PyError{Type: "OSError", Message: "[Errno 36] ENAMETOOLONG", Errno: 36}
	err = ftpError(log, "mkdir", "/x", fmt.Errorf("boardfs: mkdir: %w: %w", boardfs.ErrBadName, long))
	if !errors.Is(err, ftpserver.ErrFileNameNotAllowed) || err.Error() != "file name too long for the board" {
		t.Errorf("ENAMETOOLONG = %v", err)
	}
	err = ftpError(log, "upload", "/x", &MountError{Path: "/x", Mounts: []string{"/flash", "/sd"}})
	if !errors.Is(err, ftpserver.ErrFileNameNotAllowed) || !strings.Contains(err.Error(), "/ holds only the board's mounts (/flash, /sd)") {
		t.Errorf("MountError = %v", err)
	}
	err = ftpError(log, "rmdir", "/b0/flash", &MountError{Path: "/b0/flash", Mounts: []string{"/b0/flash"}, IsMount: true})
	if !strings.HasPrefix(err.Error(), "/b0/flash is where one of the board's drives is mounted") {
		t.Errorf("MountError on a mount = %v", err)
	}
	err = ftpError(log, "upload", "/", fmt.Errorf("%w: %q", ErrRoot, "/"))
	if !errors.Is(err, ftpserver.ErrFileNameNotAllowed) {
		t.Errorf("ErrRoot = %v, want ErrFileNameNotAllowed (553)", err)
	}
}

func TestListArgs(t *testing.T) {
	tests := []struct {
		param, dir, pattern string
		options             int
	}{
		{"", "", "", 0},
		{"-la", "", "", 1},
		{"-R", "", "", 1},
		{"-l -a /sub", "/sub", "", 2},
		{"*", "", "*", 0},
		{"-la *.py", "", "*.py", 1},
		{"sub/*.py", "sub", "*.py", 0},
		{"/sub/a?.txt", "/sub", "a?.txt", 0},
		{"/*", "/", "*", 0},
		{"my file.txt", "my file.txt", "", 0},
		{"[", "[", "", 0}, // not a pattern path.Match reads: a name
		{"dir*/x", "dir*/x", "", 0},
	}
	for _, tt := range tests {
		options, dir, pattern := listArgs(tt.param)
		if dir != tt.dir || pattern != tt.pattern || len(options) != tt.options {
			t.Errorf("listArgs(%q) = %q, %q, %q, want %d options, %q, %q", tt.param, options, dir, pattern, tt.options, tt.dir, tt.pattern)
		}
	}
}
