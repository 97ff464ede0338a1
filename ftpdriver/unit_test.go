package ftpdriver

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"github.com/ftpbridge/ftpbridge/boardfs"
)

func TestFTPError(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		msg     string
		is      error
		logHint string
	}{
		{"not exist", fmt.Errorf("boardfs: stat %q: %w", "/x", fs.ErrNotExist), "no such file or directory", fs.ErrNotExist, "/x"},
		{"exist", fmt.Errorf("boardfs: mkdir: %w", fs.ErrExist), "already exists", fs.ErrExist, "mkdir"},
		{"no space", fmt.Errorf("boardfs: write: %w", boardfs.ErrNoSpace), "no space left on the board", ftpserver.ErrStorageExceeded, "write"},
		{"bad name", fmt.Errorf("boardfs: %w", boardfs.ErrBadName), "file name not allowed on the board", ftpserver.ErrFileNameNotAllowed, "boardfs"},
		{"busy", fmt.Errorf("boardfs: list: %w", boardfs.ErrBusy), "board busy, try again", boardfs.ErrBusy, "list"},
		{"not empty", fmt.Errorf("boardfs: rmdir: %w", boardfs.ErrNotEmpty), "directory not empty", boardfs.ErrNotEmpty, "rmdir"},
		{"read-only", ErrReadOnly, "read-only", fs.ErrPermission, "read-only"},
		{"relative path", fmt.Errorf("%w: %q", ErrBadPath, "-la"), "no such file or directory", fs.ErrNotExist, "-la"},
		{"disconnected", fmt.Errorf("boardfs: %w: EIO", boardfs.ErrDisconnected), "board not connected, try again when it is plugged in", boardfs.ErrNotConnected, "EIO"},
		{"not connected", fmt.Errorf("boardfs: %w", boardfs.ErrNotConnected), "board not connected, try again when it is plugged in", boardfs.ErrNotConnected, "not connected"},
		{"timeout", fmt.Errorf("%w: %w", ErrTimeout, errors.New("deep")), "the board did not answer in time", ErrTimeout, "deep"},
		{"python", fmt.Errorf("boardfs: open: %w", &boardfs.PyError{Type: "OSError", Message: "[Errno 21] EISDIR", Errno: 21}), "is a directory", nil, "EISDIR"},
		{"other", errors.New("boardfs: something odd happened deep down"), "board error", nil, "something odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			got := ftpError(log, "op", "/p", tt.err)
			if got == nil || got.Error() != tt.msg {
				t.Fatalf("ftpError(%v) = %v, want %q", tt.err, got, tt.msg)
			}
			if tt.is != nil && !errors.Is(got, tt.is) {
				t.Errorf("ftpError(%v) = %v, not errors.Is %v", tt.err, got, tt.is)
			}
			if !bytes.Contains(logs.Bytes(), []byte(tt.logHint)) {
				t.Errorf("log %q lacks the full error (%q)", logs.String(), tt.logHint)
			}
		})
	}
	if err := ftpError(slog.New(slog.DiscardHandler), "op", "/p", nil); err != nil {
		t.Errorf("ftpError(nil) = %v, want nil", err)
	}
}

func TestBoardPath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/a/b", "/a/b", true},
		{"/a/../b/", "/b", true},
		{"//a", "/a", true},
		{"-la", "", false},
		{"-la /dir", "", false},
		{"a.txt", "", false},
		{"", "", false},
		{"./x", "", false},
	}
	for _, tt := range tests {
		got, err := boardPath(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("boardPath(%q) = %q, %v, want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadPath) {
			t.Errorf("boardPath(%q) error %v is not ErrBadPath", tt.in, err)
		}
	}
}

func TestMetaCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newMetaCache(2 * time.Second)
	c.now = func() time.Time { return now }
	entries := []boardfs.Entry{{Name: "a.txt", Size: 3}, {Name: "lib", IsDir: true}}

	c.putList(c.generation(), "/", entries)
	if got, ok := c.list("/"); !ok || len(got) != 2 {
		t.Fatalf("list(/) = %v, %v, want the 2 entries", got, ok)
	}
	if e, absent, ok := c.stat("/a.txt"); !ok || absent || e.Size != 3 {
		t.Errorf("stat(/a.txt) from the listing = %v, %v, %v", e, absent, ok)
	}
	if _, absent, ok := c.stat("/nope"); !ok || !absent {
		t.Errorf("stat(/nope) = absent %v, ok %v, want known absent", absent, ok)
	}
	if _, _, ok := c.stat("/lib/x"); ok {
		t.Errorf("stat(/lib/x) answered without a listing of /lib")
	}

	// A result read before an invalidation is not cached after it.
	gen := c.generation()
	c.invalidate()
	c.putStat(gen, "/a.txt", boardfs.Entry{Name: "a.txt", Size: 99}, false)
	if _, _, ok := c.stat("/a.txt"); ok {
		t.Errorf("stat(/a.txt) answered from a result older than the invalidation")
	}
	if _, ok := c.list("/"); ok {
		t.Errorf("list(/) survived the invalidation")
	}

	c.putStat(c.generation(), "/b", boardfs.Entry{Name: "b"}, false)
	now = now.Add(3 * time.Second)
	if _, _, ok := c.stat("/b"); ok {
		t.Errorf("stat(/b) answered after its TTL")
	}

	// An answer is as old as its question: a listing that took 1.5 s is
	// fresh for what is left of the TTL, not for 2 s from its end.
	ticket := c.generation()
	now = now.Add(1500 * time.Millisecond)
	c.putList(ticket, "/slow", entries)
	now = now.Add(600 * time.Millisecond)
	if _, ok := c.list("/slow"); ok {
		t.Errorf("list(/slow) answered 2.1 s after its question, past the 2 s TTL")
	}

	off := newMetaCache(-1)
	off.putList(off.generation(), "/", entries)
	if _, ok := off.list("/"); ok {
		t.Errorf("a disabled cache answered")
	}
}

func TestFileInfoMode(t *testing.T) {
	tests := []struct {
		e        boardfs.Entry
		readOnly bool
		want     string
	}{
		{boardfs.Entry{Name: "f"}, false, "-rw-r--r--"},
		{boardfs.Entry{Name: "d", IsDir: true}, false, "drwxr-xr-x"},
		{boardfs.Entry{Name: "f"}, true, "-r--r--r--"},
		{boardfs.Entry{Name: "d", IsDir: true}, true, "dr-xr-xr-x"},
	}
	for _, tt := range tests {
		if got := (fileInfo{e: tt.e, readOnly: tt.readOnly}).Mode().String(); got != tt.want {
			t.Errorf("Mode(%+v, readOnly=%v) = %s, want %s", tt.e, tt.readOnly, got, tt.want)
		}
	}
}

func TestQuietHandler(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	log := slog.New(quietHandler{h}).With("clientId", 1)
	log.Info("Listening...")
	log.Warn("Unknown command")
	log.Warn("Problem disconnecting a client", "err", errors.New("network error: use of closed network connection"))
	if bytes.Contains(buf.Bytes(), []byte("Listening")) {
		t.Errorf("library Info line shown at Info level: %q", buf.String())
	}
	if bytes.Contains(buf.Bytes(), []byte("Problem disconnecting")) {
		t.Errorf("warning about an already closed connection shown: %q", buf.String())
	}
	if !bytes.Contains(buf.Bytes(), []byte("Unknown command")) {
		t.Errorf("library warning lost: %q", buf.String())
	}
}

// TestTransientReplyCode: a 550 whose reason says to try again reaches the
// client as 450, or 451 once its transfer has begun; an upload's, and
// other replies, keep their code.
func TestTransientReplyCode(t *testing.T) {
	const changed = "the file changed on the board during the download, try again"
	tests := []struct {
		name  string
		cmd   string // the transfer command running; "" for none
		begun bool   // its 150 was written
		lines []string
		want  string // the last line as sent
	}{
		{"busy board", "", false, []string{"550 Couldn't access /a: " + boardBusy}, "450 Couldn't access /a: " + boardBusy},
		{"pending upload", "", false, []string{"550 Couldn't delete dir /d: " + pendingBusy}, "450 Couldn't delete dir /d: " + pendingBusy},
		{"program running", "", false, []string{"550 Couldn't delete /a: " + programBusy}, "450 Couldn't delete /a: " + programBusy},
		{"not connected", "", false, []string{"550 CD issue: " + notConnected}, "450 CD issue: " + notConnected},
		{"download refused", "RETR", false, []string{"550 Could not access file: " + boardBusy}, "450 Could not access file: " + boardBusy},
		{"download cut", "RETR", true, []string{"550 Issue during transfer: " + boardSilent}, "451 Issue during transfer: " + boardSilent},
		{"download of a changed file", "RETR", true, []string{"550 Issue during transfer: " + changed}, "550 Issue during transfer: " + changed},
		{"upload refused", "STOR", false, []string{"550 Could not access file: " + pendingBusy}, "550 Could not access file: " + pendingBusy},
		{"upload cut", "APPE", true, []string{"550 Issue during transfer: " + notConnected}, "550 Issue during transfer: " + notConnected},
		{"not found", "RETR", false, []string{"550 Could not access file: no such file or directory"}, "550 Could not access file: no such file or directory"},
		{"no space", "STOR", true, []string{"552 Issue during transfer: no space left on the board"}, "552 Issue during transfer: no space left on the board"},
		{"busy listing", "LIST", false, []string{"450 Could not list: " + boardBusy}, "450 Could not list: " + boardBusy},
		{"multi-line", "", false, []string{"550-" + boardBusy, "550 " + boardBusy}, "550 " + boardBusy},
		{"reason not last", "", false, []string{"550 " + boardBusy + " (or not)"}, "550 " + boardBusy + " (or not)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newControlConn(nil, &Server{})
			if tt.cmd != "" {
				c.transfer, c.upload = true, uploadCommands[tt.cmd]
			}
			if tt.begun {
				if got := c.replyLine("150 Using transfer connection\r\n"); got != "150 Using transfer connection\r\n" {
					t.Fatalf("replyLine(150) = %q", got)
				}
			}
			var got string
			for _, l := range tt.lines {
				got = c.replyLine(l + "\r\n")
			}
			if got != tt.want+"\r\n" {
				t.Errorf("replyLine(%q) = %q, want %q", tt.lines[len(tt.lines)-1], got, tt.want+"\r\n")
			}
			if want, _ := strconv.Atoi(tt.want[:3]); c.lastCode != want {
				t.Errorf("lastCode = %d, want %d", c.lastCode, want)
			}
			if c.transfer {
				t.Errorf("the transfer's final reply left it running")
			}
		})
	}
}
