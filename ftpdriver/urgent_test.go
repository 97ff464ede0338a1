//go:build unix

package ftpdriver_test

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// sendUrgent writes normal, then urgent as TCP urgent data (MSG_OOB), then
// after, on conn: how clients interrupt a transfer.
func sendUrgent(t *testing.T, conn net.Conn, normal, urgent, after string) {
	t.Helper()
	if normal != "" {
		if _, err := conn.Write([]byte(normal)); err != nil {
			t.Fatalf("send %q: %v", normal, err)
		}
	}
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	err = raw.Write(func(fd uintptr) bool {
		serr = syscall.Sendto(int(fd), []byte(urgent), syscall.MSG_OOB, nil)
		return !errors.Is(serr, syscall.EAGAIN)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		t.Fatalf("send %q as urgent data: %v", urgent, err)
	}
	if after != "" {
		if _, err := conn.Write([]byte(after)); err != nil {
			t.Fatalf("send %q: %v", after, err)
		}
	}
}

// TestUrgentABOR interrupts a STOR with ABOR sent as clients send it when
// they follow RFC 959's advice to send urgent data: it is answered at once,
// and the cut-off upload never lands. Python's ftplib sent "ABOR\r\n" as
// urgent data; Linux took its "\n" out of the stream, the abort went
// unanswered, and the client closing the data connection committed the
// part sent so far under the target's name.
func TestUrgentABOR(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	root := s.Board.Root
	old := []byte("the old contents\n")

	const iac, ip, dm = "\xff", "\xf4", "\xf2"
	for _, tc := range []struct {
		name                  string
		normal, urgent, after string
	}{
		// Python's ftplib.FTP.abort: the whole line as urgent data.
		{"ftplib", "", "ABOR\r\n", ""},
		// BSD ftp (netkit's abort_remote): Telnet IP and IAC, the IAC
		// urgent, then DM and the command.
		{"bsd ftp", "", iac + ip + iac, dm + "ABOR\r\n"},
		// lftp (SendUrgentCmd): only the DM urgent.
		{"lftp", iac + ip + iac, dm, "ABOR\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A file each: a failed case leaves the next one whole.
			name := strings.ReplaceAll(tc.name, " ", "-") + ".txt"
			put(t, root, name, old)
			before := hostNames(t, root, "/")
			r := rawDial(t, s.Addr, "anonymous", "x")
			data := r.epsv()
			defer data.Close()
			r.expect(150, "STOR /%s", name)
			if _, err := data.Write(randomBytes(64<<10, 5)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			sendUrgent(t, r.conn, tc.normal, tc.urgent, tc.after)

			// 426 then 226 for a transfer ABOR ended, or 225/226 alone
			// for one that had ended already (RFC 959, 4.1.3).
			var codes []int
			_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			for len(codes) < 2 {
				code, msg, err := r.tp.ReadResponse(0)
				if err != nil && code == 0 {
					t.Errorf("after ABOR as urgent data: %v (replies so far %v)", err, codes)
					break
				}
				t.Logf("reply: %d %s", code, msg)
				codes = append(codes, code)
				if code == 225 || code == 226 {
					break
				}
			}
			if !slices.Equal(codes, []int{426, 226}) && !slices.Equal(codes, []int{225}) && !slices.Equal(codes, []int{226}) {
				t.Errorf("replies to ABOR sent as urgent data: %v, want 426 and 226, or 225 or 226", codes)
			}
			// A FIN now is a completed upload to FTP: what was sent must
			// not take the old file's place.
			_ = data.Close()
			s.WaitUploads(t, 30*time.Second)
			for range 10 {
				if got := get(t, root, name); !bytes.Equal(got, old) {
					t.Fatalf("after an aborted STOR %s holds %d bytes, want the old %d", name, len(got), len(old))
				}
				time.Sleep(100 * time.Millisecond)
			}
			if after := hostNames(t, root, "/"); !slices.Equal(after, before) {
				t.Errorf("files after an aborted STOR: %q, before: %q", after, before)
			}
			r.expect(213, "SIZE /%s", name) // the session goes on
		})
	}
}
