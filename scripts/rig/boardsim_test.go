package rig_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBoardsimCommand runs scripts/boardsim's program as a person would:
// the first lines name the device and root, SIGUSR1 resets the board, and
// SIGTERM leaves nothing behind.
func TestBoardsimCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: boardsim starts an emulated board")
	}
	bin := filepath.Join(t.TempDir(), "boardsim")
	build := exec.Command("go", "build", "-o", bin, "./boardsim")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root := t.TempDir()
	cmd := exec.Command(bin, "--profile", "esp8266", "--root", root)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	var lines []string
	for len(lines) < 2 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "device: ") || lines[1] != "root: "+root {
		t.Fatalf("boardsim printed %q, want device: and root: %s", lines, root)
	}
	device := strings.TrimPrefix(lines[0], "device: ")

	l := openLine(t, device)
	l.enterRaw()
	l.exec("x=1")
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	l.expect("ets Jan  8 2013,rst cause", 10*time.Second)
	l.expect(">>> ", 20*time.Second)
	l.enterRaw()
	if _, errText := l.exec("print(x)"); !strings.Contains(errText, "NameError") {
		t.Errorf("after SIGUSR1 print(x) error = %q, want NameError", errText)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("boardsim exit after SIGTERM: %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("boardsim still running 10 s after SIGTERM")
	}
	if _, err := os.Lstat(device); !os.IsNotExist(err) {
		t.Errorf("device link %s left behind: %v", device, err)
	}
	if _, err := os.Stat(filepath.Dir(device)); !os.IsNotExist(err) {
		t.Errorf("temporary directory %s left behind: %v", filepath.Dir(device), err)
	}
	if pids := processesMentioning(t, root); len(pids) > 0 {
		t.Errorf("processes left running with %s in their arguments: %v", root, pids)
	}
}

// processesMentioning lists the pids whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
