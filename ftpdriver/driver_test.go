package ftpdriver_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// put writes a file into the board's filesystem from the host side.
func put(t testing.TB, root, name string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// get reads a file of the board's filesystem from the host side.
func get(t testing.TB, root, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("host side of %s: %v", name, err)
	}
	return b
}

// hostNames lists a board directory from the host side.
func hostNames(t testing.TB, root, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func retr(t testing.TB, c *ftp.ServerConn, p string, offset uint64) []byte {
	t.Helper()
	r, err := c.RetrFrom(p, offset)
	if err != nil {
		t.Fatalf("RETR %s from %d: %v", p, offset, err)
	}
	b, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("RETR %s from %d: %v", p, offset, err)
	}
	return b
}

// replyCode returns the FTP code in a jlaffaye/ftp error, 0 if none.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func TestBrowse(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	root := s.Board.Root
	put(t, root, "main.py", []byte("print('hi')\n"))
	put(t, root, "lib/util.py", []byte("X = 1\n"))
	put(t, root, "lib/data.bin", randomBytes(300, 1))
	c := s.Dial(t)

	t.Run("FEAT", func(t *testing.T) {
		r := rawDial(t, s.Addr, "", "")
		code, msg := r.cmd("FEAT")
		if code != 211 {
			t.Fatalf("FEAT = %d %s", code, msg)
		}
		for _, want := range []string{"MLST", "MLSD", "SIZE", "MDTM", "REST STREAM", "EPSV", "UTF8"} {
			if !strings.Contains(msg, want) {
				t.Errorf("FEAT lacks %s:\n%s", want, msg)
			}
		}
		for _, unwanted := range []string{"MFMT", "AUTH TLS"} {
			if strings.Contains(msg, unwanted) {
				t.Errorf("FEAT offers %s:\n%s", unwanted, msg)
			}
		}
	})

	t.Run("PWD CWD CDUP", func(t *testing.T) {
		if dir, err := c.CurrentDir(); err != nil || dir != "/" {
			t.Fatalf("PWD = %q, %v, want /", dir, err)
		}
		if err := c.ChangeDir("lib"); err != nil {
			t.Fatalf("CWD lib: %v", err)
		}
		if dir, err := c.CurrentDir(); err != nil || dir != "/lib" {
			t.Errorf("PWD = %q, %v, want /lib", dir, err)
		}
		if err := c.ChangeDir("/main.py"); err == nil {
			t.Errorf("CWD to a file succeeded")
		}
		if err := c.ChangeDir("/nope"); replyCode(err) != 550 {
			t.Errorf("CWD /nope = %v, want 550", err)
		}
		if err := c.ChangeDirToParent(); err != nil {
			t.Fatalf("CDUP: %v", err)
		}
		if dir, err := c.CurrentDir(); err != nil || dir != "/" {
			t.Errorf("PWD after CDUP = %q, %v, want /", dir, err)
		}
	})

	t.Run("MLSD", func(t *testing.T) {
		entries, err := c.List("/lib")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*ftp.Entry{}
		for _, e := range entries {
			got[e.Name] = e
		}
		if e := got["data.bin"]; e == nil || e.Size != 300 || e.Type != ftp.EntryTypeFile {
			t.Errorf("MLSD /lib: data.bin = %+v", e)
		}
		if e := got["util.py"]; e == nil || e.Size != 6 {
			t.Errorf("MLSD /lib: util.py = %+v", e)
		}
	})

	t.Run("LIST", func(t *testing.T) {
		c := s.Dial(t, ftp.DialWithDisabledMLSD(true))
		entries, err := c.List("/")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name)
			if e.Name == "lib" && e.Type != ftp.EntryTypeFolder {
				t.Errorf("LIST: lib is %v, want a folder", e.Type)
			}
		}
		slices.Sort(names)
		if want := []string{"lib", "main.py"}; !slices.Equal(names, want) {
			t.Errorf("LIST / = %q, want %q", names, want)
		}
	})

	t.Run("LIST -la", func(t *testing.T) {
		// ftpserverlib stats "-la" as a path first: it must fail without
		// reaching the board, and the listing be of the working directory.
		r := rawDial(t, s.Addr, "anonymous", "x")
		r.expect(250, "CWD /lib")
		code, msg, data := r.transfer("LIST -la")
		if code != 226 {
			t.Fatalf("LIST -la = %d %s", code, msg)
		}
		if !bytes.Contains(data, []byte("util.py")) || !bytes.Contains(data, []byte("data.bin")) {
			t.Errorf("LIST -la in /lib:\n%s", data)
		}
		code, msg, data = r.transfer("LIST -la /")
		if code != 226 || !bytes.Contains(data, []byte("main.py")) {
			t.Errorf("LIST -la / = %d %s:\n%s", code, msg, data)
		}
	})

	t.Run("NLST", func(t *testing.T) {
		names, err := c.NameList("/lib")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		if want := []string{"lib/data.bin", "lib/util.py"}; !slices.Equal(names, want) {
			t.Errorf("NLST /lib = %q, want %q", names, want)
		}
	})

	t.Run("MLST", func(t *testing.T) {
		e, err := c.GetEntry("/lib/data.bin")
		if err != nil {
			t.Fatal(err)
		}
		if e.Size != 300 || e.Type != ftp.EntryTypeFile {
			t.Errorf("MLST /lib/data.bin = %+v", e)
		}
		if _, err := c.GetEntry("/missing"); replyCode(err) != 550 {
			t.Errorf("MLST /missing = %v, want 550", err)
		}
	})

	t.Run("SIZE MDTM", func(t *testing.T) {
		if n, err := c.FileSize("/lib/data.bin"); err != nil || n != 300 {
			t.Errorf("SIZE = %d, %v, want 300", n, err)
		}
		if _, err := c.FileSize("/lib"); replyCode(err) != 550 {
			t.Errorf("SIZE of a directory = %v, want 550", err)
		}
		mt, err := c.GetTime("/main.py")
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(root, "main.py"))
		if err != nil {
			t.Fatal(err)
		}
		if d := mt.Sub(fi.ModTime()); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("MDTM = %v, host file's mtime %v", mt, fi.ModTime())
		}
	})

	t.Run("SIZE in TYPE A", func(t *testing.T) {
		// FileZilla's "Auto" and ftplib leave TYPE A set: files still
		// travel byte for byte, and SIZE answers.
		r := rawDial(t, s.Addr, "anonymous", "x")
		r.expect(200, "TYPE A")
		if msg := r.expect(213, "SIZE /lib/data.bin"); msg != "300" {
			t.Errorf("SIZE in TYPE A = %q", msg)
		}
		code, msg, data := r.transfer("RETR /main.py")
		if code != 226 || string(data) != "print('hi')\n" {
			t.Errorf("RETR in TYPE A = %d %s, %q", code, msg, data)
		}
	})
}

func TestDownload(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	data := randomBytes(20000, 2)
	put(t, s.Board.Root, "big.bin", data)
	put(t, s.Board.Root, "empty", nil)
	c := s.Dial(t)

	if got := retr(t, c, "/big.bin", 0); !bytes.Equal(got, data) {
		t.Errorf("RETR: %d bytes, want the %d written", len(got), len(data))
	}
	for _, off := range []uint64{1, 4095, 12345, 19999, 20000} {
		if got := retr(t, c, "/big.bin", off); !bytes.Equal(got, data[off:]) {
			t.Errorf("REST %d + RETR: %d bytes, want %d", off, len(got), len(data)-int(off))
		}
	}
	if got := retr(t, c, "/empty", 0); len(got) != 0 {
		t.Errorf("RETR of an empty file: %d bytes", len(got))
	}
	if _, err := c.Retr("/nope"); replyCode(err) != 550 {
		t.Errorf("RETR /nope = %v, want 550", err)
	}
	if _, err := c.Retr("/"); replyCode(err) != 550 || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("RETR of a directory = %v, want 550 is a directory", err)
	}
	if _, err := c.RetrFrom("/big.bin", 20001); replyCode(err) != 550 || !strings.Contains(err.Error(), "cannot restart there") {
		t.Errorf("REST past the end + RETR = %v, want 550 cannot restart there", err)
	}
	// The session still works after failed commands.
	if got := retr(t, c, "/big.bin", 19990); !bytes.Equal(got, data[19990:]) {
		t.Errorf("RETR after errors: %q", got)
	}
}

func TestUpload(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	root := s.Board.Root
	c := s.Dial(t)
	data := randomBytes(10000, 3)

	if err := c.Stor("/new.bin", bytes.NewReader(data)); err != nil {
		t.Fatalf("STOR: %v", err)
	}
	if got := get(t, root, "new.bin"); !bytes.Equal(got, data) {
		t.Errorf("after STOR the board holds %d bytes, want %d", len(got), len(data))
	}

	put(t, root, "main.py", []byte("old contents, longer than the new\n"))
	if err := c.Stor("/main.py", strings.NewReader("new\n")); err != nil {
		t.Fatalf("STOR over a file: %v", err)
	}
	if got := get(t, root, "main.py"); string(got) != "new\n" {
		t.Errorf("after STOR over a file: %q", got)
	}

	if err := c.Stor("/empty.txt", strings.NewReader("")); err != nil {
		t.Fatalf("STOR of nothing: %v", err)
	}
	if got := get(t, root, "empty.txt"); len(got) != 0 {
		t.Errorf("after an empty STOR: %q", got)
	}

	if err := c.Append("/main.py", strings.NewReader("more\n")); err != nil {
		t.Fatalf("APPE: %v", err)
	}
	if got := get(t, root, "main.py"); string(got) != "new\nmore\n" {
		t.Errorf("after APPE: %q", got)
	}
	if err := c.Append("/fresh.txt", strings.NewReader("first\n")); err != nil {
		t.Fatalf("APPE to a new file: %v", err)
	}
	if got := get(t, root, "fresh.txt"); string(got) != "first\n" {
		t.Errorf("after APPE to a new file: %q", got)
	}

	// REST + STOR resumes at the end of the file.
	put(t, root, "part.bin", data[:4000])
	if err := c.StorFrom("/part.bin", bytes.NewReader(data[4000:]), 4000); err != nil {
		t.Fatalf("REST 4000 + STOR: %v", err)
	}
	if got := get(t, root, "part.bin"); !bytes.Equal(got, data) {
		t.Errorf("after a resumed STOR: %d bytes, want %d", len(got), len(data))
	}
	if err := c.StorFrom("/part.bin", strings.NewReader("x"), 5); replyCode(err) != 550 || !strings.Contains(err.Error(), "cannot restart there") {
		t.Errorf("REST 5 + STOR into the middle of a file = %v, want 550 cannot restart there", err)
	}

	// What was written is what is listed, from this session and another:
	// the cache forgets on writes.
	other := s.Dial(t)
	before, err := other.List("/")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("/later.txt", strings.NewReader("later")); err != nil {
		t.Fatal(err)
	}
	after, err := other.List("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)+1 {
		t.Errorf("listing after STOR from another session: %d entries, want %d", len(after), len(before)+1)
	}
	if n, err := other.FileSize("/later.txt"); err != nil || n != 5 {
		t.Errorf("SIZE from another session after STOR = %d, %v", n, err)
	}
	if names := hostNames(t, root, "/"); slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "ftpbridge") }) {
		t.Errorf("temporary files left behind: %q", names)
	}
}

// TestFailedUploadKeepsOldFile cuts the data connection in the middle of a
// STOR: the file that was there must stay whole, and the temporary file go.
func TestFailedUploadKeepsOldFile(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	root := s.Board.Root
	old := []byte("the old contents\n")
	put(t, root, "keep.txt", old)
	before := hostNames(t, root, "/")

	for _, how := range []string{"reset", "ABOR", "died"} {
		t.Run(how, func(t *testing.T) {
			r := rawDial(t, s.Addr, "anonymous", "x")
			data := r.epsv()
			r.expect(150, "STOR /keep.txt")
			if _, err := data.Write(randomBytes(3000, 4)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			var code int
			var msg string
			switch how {
			case "reset":
				// RST, not FIN: a FIN is a completed upload to FTP.
				_ = data.SetLinger(0)
				_ = data.Close()
				code, msg = r.read()
			case "ABOR":
				code, msg = r.cmd("ABOR")
				if code == 426 {
					code, msg = r.read()
				}
				_ = data.Close()
			case "died":
				// A killed client: both connections end with a FIN, the
				// data connection's like a finished upload's (curl killed
				// mid-STOR left a cut-off file in the old one's place).
				_ = r.conn.Close()
				_ = data.Close()
			}
			t.Logf("reply: %d %s", code, msg)
			if how == "reset" && code < 400 {
				t.Errorf("interrupted STOR answered %d %s", code, msg)
			}
			if got := get(t, root, "keep.txt"); !bytes.Equal(got, old) {
				t.Errorf("after a failed STOR keep.txt holds %d bytes: %q...", len(got), got[:min(len(got), 40)])
			}
			// The abort is done before the reply; give the board a moment anyway.
			deadline := time.Now().Add(5 * time.Second)
			for {
				after := hostNames(t, root, "/")
				if slices.Equal(after, before) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("files after a failed STOR: %q, before: %q", after, before)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if how == "died" {
				// Nothing waits for the upload: had it been taken as
				// complete, it would land in a moment.
				for range 30 {
					time.Sleep(100 * time.Millisecond)
					if got := get(t, root, "keep.txt"); !bytes.Equal(got, old) {
						t.Fatalf("after the client died mid-STOR keep.txt holds %d bytes", len(got))
					}
				}
				return
			}
			r.expect(213, "SIZE /keep.txt") // the session goes on
		})
	}
}

func TestRenameDeleteDirs(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	root := s.Board.Root
	c := s.Dial(t)
	put(t, root, "a.txt", []byte("A"))
	put(t, root, "b.txt", []byte("B"))

	t.Run("RNFR/RNTO", func(t *testing.T) {
		if err := c.Rename("/a.txt", "/c.txt"); err != nil {
			t.Fatalf("rename: %v", err)
		}
		if got := get(t, root, "c.txt"); string(got) != "A" {
			t.Errorf("c.txt = %q", got)
		}
		// kio and rclone upload to a temporary name, then rename over.
		if err := c.Rename("/c.txt", "/b.txt"); err != nil {
			t.Fatalf("rename over an existing file: %v", err)
		}
		if got := get(t, root, "b.txt"); string(got) != "A" {
			t.Errorf("b.txt after rename over it = %q", got)
		}
		if err := c.Rename("/nope", "/x"); replyCode(err) != 550 {
			t.Errorf("RNFR /nope = %v, want 550", err)
		}
	})

	t.Run("MKD RMD DELE", func(t *testing.T) {
		if err := c.MakeDir("/d"); err != nil {
			t.Fatalf("MKD: %v", err)
		}
		if fi, err := os.Stat(filepath.Join(root, "d")); err != nil || !fi.IsDir() {
			t.Fatalf("after MKD: %v", err)
		}
		if err := c.MakeDir("/d"); replyCode(err) != 550 {
			t.Errorf("MKD of an existing dir = %v, want 550", err)
		}
		if err := c.Stor("/d/f.txt", strings.NewReader("f")); err != nil {
			t.Fatal(err)
		}
		err := c.RemoveDir("/d")
		if replyCode(err) != 550 || !strings.Contains(err.Error(), "not empty") {
			t.Errorf("RMD of a full dir = %v, want 550 not empty", err)
		}
		if err := c.Delete("/d/f.txt"); err != nil {
			t.Fatalf("DELE: %v", err)
		}
		if err := c.RemoveDir("/d"); err != nil {
			t.Fatalf("RMD: %v", err)
		}
		if _, err := os.Stat(filepath.Join(root, "d")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after RMD: %v", err)
		}
		if err := c.Delete("/nope"); replyCode(err) != 550 {
			t.Errorf("DELE /nope = %v, want 550", err)
		}
	})

	t.Run("SITE is off", func(t *testing.T) {
		// SITE RMDIR would call RemoveAll.
		r := rawDial(t, s.Addr, "anonymous", "x")
		if code, msg := r.cmd("SITE RMDIR /"); code != 500 {
			t.Errorf("SITE RMDIR / = %d %s, want 500", code, msg)
		}
		if got := get(t, root, "b.txt"); string(got) != "A" {
			t.Errorf("b.txt after SITE RMDIR = %q", got)
		}
		if code, msg := r.cmd("MFMT 20200101000000 /b.txt"); code != 550 {
			t.Errorf("MFMT = %d %s, want 550", code, msg)
		}
	})
}

func TestHashAndSpace(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	data := randomBytes(5000, 5)
	put(t, s.Board.Root, "h.bin", data)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	r := rawDial(t, s.Addr, "anonymous", "x")

	if !s.Link.Info().SHA256 {
		t.Fatal("the emulated ESP32 has hashlib.sha256; Link.Info says it has not")
	}
	code, msg := r.cmd("FEAT")
	if code != 211 || !strings.Contains(msg, "SHA-256*") || !strings.Contains(msg, "AVBL") {
		t.Errorf("FEAT lacks HASH or AVBL:\n%s", msg)
	}
	if msg := r.expect(213, "HASH /h.bin"); !strings.Contains(msg, want) {
		t.Errorf("HASH /h.bin = %q, want %s", msg, want)
	}
	if msg := r.expect(250, "XSHA256 /h.bin"); !strings.Contains(msg, want) {
		t.Errorf("XSHA256 /h.bin = %q, want %s", msg, want)
	}
	// A relative name is resolved against the working directory, as
	// MDTM's is (ftpserverlib hands HASH's argument over unresolved).
	if msg := r.expect(213, "HASH h.bin"); !strings.Contains(msg, want) {
		t.Errorf("HASH h.bin = %q, want %s", msg, want)
	}
	r.expect(550, "XSHA256 /h.bin 10 20")
	// Only SHA-256 can be selected: the board computes no other.
	r.expect(501, "OPTS HASH MD5")
	r.expect(213, "HASH /h.bin")

	msg = r.expect(213, "AVBL /")
	var free int64
	if _, err := fmt.Sscan(msg, &free); err != nil || free <= 0 {
		t.Errorf("AVBL / = %q", msg)
	}
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{Driver: ftpdriver.Options{ReadOnly: true}})
	root := s.Board.Root
	put(t, root, "a.txt", []byte("A"))
	put(t, root, "d/x", []byte("x"))
	c := s.Dial(t)

	if got := retr(t, c, "/a.txt", 0); string(got) != "A" {
		t.Errorf("RETR when read-only: %q", got)
	}
	checks := map[string]error{
		"STOR":  c.Stor("/a.txt", strings.NewReader("B")),
		"APPE":  c.Append("/a.txt", strings.NewReader("B")),
		"DELE":  c.Delete("/a.txt"),
		"MKD":   c.MakeDir("/e"),
		"RMD":   c.RemoveDir("/d"),
		"RNTO":  c.Rename("/a.txt", "/b.txt"),
		"STOR2": c.Stor("/new.txt", strings.NewReader("B")),
	}
	for cmd, err := range checks {
		if replyCode(err) != 550 || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s when read-only = %v, want 550 read-only", cmd, err)
		}
	}
	if got := get(t, root, "a.txt"); string(got) != "A" {
		t.Errorf("a.txt changed: %q", got)
	}
	if names := hostNames(t, root, "/"); !slices.Equal(names, []string{"a.txt", "d"}) {
		t.Errorf("files changed: %q", names)
	}
}

// TestAuth: with an account set, only its name and password log in, and
// nothing is served before login. No board takes part.
func TestAuth(t *testing.T) {
	t.Parallel()
	// Three failures from one address would lock it out (logins_test.go).
	s := ftptest.StartUnplugged(t, ftptest.Options{Driver: ftpdriver.Options{User: "me", Password: "s3cret", MaxLoginFails: 10, LoginFailDelay: time.Millisecond}})
	for _, tt := range []struct{ user, pass string }{{"me", "wrong"}, {"anonymous", "s3cret"}, {"anonymous", ""}} {
		c, err := ftp.Dial(s.Addr, ftp.DialWithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(tt.user, tt.pass); replyCode(err) != 530 {
			t.Errorf("login %q/%q = %v, want 530", tt.user, tt.pass, err)
		}
		_ = c.Quit()
	}
	c := s.Dial(t)
	if _, err := c.CurrentDir(); err != nil {
		t.Errorf("PWD after login: %v", err)
	}
	r := rawDial(t, s.Addr, "", "")
	for _, cmd := range []string{"PWD", "LIST"} {
		if code, _ := r.cmd("%s", cmd); code != 530 {
			t.Errorf("%s before login = %d, want 530", cmd, code)
		}
	}
}

// TestAnonymous: without an account any name and password log in. No
// board takes part.
func TestAnonymous(t *testing.T) {
	t.Parallel()
	s := ftptest.StartUnplugged(t, ftptest.Options{})
	for _, tt := range []struct{ user, pass string }{{"anonymous", ""}, {"me", "anything"}} {
		c := s.DialAs(t, tt.user, tt.pass)
		if _, err := c.CurrentDir(); err != nil {
			t.Errorf("as %q: %v", tt.user, err)
		}
	}
}

// TestSessionsAtOnce runs three downloads on a line held to 115200 baud and
// lists from a fourth session meanwhile: boardfs gives the board up between
// 4 KB transfer segments (0.36 s each), so the listing answers in about a
// second, while the downloads still run.
func TestSessionsAtOnce(t *testing.T) {
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Baud: 115200}})
	data := randomBytes(60000, 6) // about 5 s on the wire each, 10 s for both
	put(t, s.Board.Root, "one.bin", data)
	put(t, s.Board.Root, "two.bin", data)
	put(t, s.Board.Root, "three.bin", data)
	c1, c2, c3, c4 := s.Dial(t), s.Dial(t), s.Dial(t), s.Dial(t)

	var (
		wg       sync.WaitGroup
		finished atomic.Int32
		results  = make([][]byte, 3)
		start    = time.Now()
	)
	for i, pair := range []struct {
		c *ftp.ServerConn
		p string
	}{{c1, "/one.bin"}, {c2, "/two.bin"}, {c3, "/three.bin"}} {
		wg.Go(func() {
			results[i] = retr(t, pair.c, pair.p, 0)
			finished.Add(1)
		})
	}
	time.Sleep(500 * time.Millisecond) // let the downloads start
	listStart := time.Now()
	entries, err := c4.List("/")
	listTook := time.Since(listStart)
	stillRunning := finished.Load() == 0
	if err != nil {
		t.Errorf("LIST during downloads: %v", err)
	}
	wg.Wait()
	t.Logf("LIST took %v during downloads that took %v", listTook, time.Since(start))
	if len(entries) != 3 {
		t.Errorf("LIST during downloads: %d entries", len(entries))
	}
	if !stillRunning || listTook > 3*time.Second {
		t.Errorf("LIST took %v (downloads still running: %v): it waited for them", listTook, stillRunning)
	}
	for i, got := range results {
		if !bytes.Equal(got, data) {
			t.Errorf("download %d: %d bytes, want %d", i, len(got), len(data))
		}
	}
}

// TestBusyReply makes the board busy for longer than BusyWait: the client
// hears "try again" at once, as a 450 (transient), not silence.
func TestBusyReply(t *testing.T) {
	s := ftptest.Start(t, ftptest.Options{
		Board:    boardtest.Options{Baud: 115200},
		BusyWait: time.Millisecond,
		Driver:   ftpdriver.Options{CacheTTL: -1},
	})
	data := randomBytes(60000, 7)
	put(t, s.Board.Root, "big.bin", data)
	c := s.Dial(t)
	r := rawDial(t, s.Addr, "anonymous", "x")

	done := make(chan []byte)
	go func() {
		rd, err := c.Retr("/big.bin")
		if err != nil {
			t.Errorf("RETR: %v", err)
			close(done)
			return
		}
		b, _ := io.ReadAll(rd)
		_ = rd.Close()
		done <- b
	}()
	time.Sleep(300 * time.Millisecond)
	busy := 0
	for i := 0; i < 40 && busy == 0; i++ {
		start := time.Now()
		code, msg := r.cmd("SIZE /big.bin")
		took := time.Since(start)
		switch {
		case code == 450 && strings.Contains(msg, "board busy, try again"):
			busy++
			if took > 2*time.Second {
				t.Errorf("busy reply took %v", took)
			}
		case code == 213:
		default:
			t.Errorf("SIZE during a download = %d %s", code, msg)
		}
	}
	if busy == 0 {
		t.Errorf("no busy reply while a download held the board")
	}
	if got := <-done; !bytes.Equal(got, data) {
		t.Errorf("download beside busy replies: %d bytes, want %d", len(got), len(data))
	}
}

// TestShutdown stops the server in the middle of a download: the client's
// transfer ends with an error, and Stop returns.
func TestShutdown(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Baud: 115200}})
	put(t, s.Board.Root, "big.bin", randomBytes(60000, 8))
	c := s.Dial(t)
	rd, err := c.Retr("/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	stopped := make(chan error)
	go func() { stopped <- s.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Stop: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Stop did not return")
	}
	b, err := io.ReadAll(rd)
	if err == nil {
		err = rd.Close()
	}
	if err == nil && len(b) == 60000 {
		t.Errorf("download finished across a shutdown")
	}
	if _, err := ftp.Dial(s.Addr, ftp.DialWithTimeout(2*time.Second)); err == nil {
		t.Errorf("server still accepts connections after Stop")
	}
}

// TestEveryProfile runs a browse, a download and an upload on each kind of
// emulated board.
func TestEveryProfile(t *testing.T) {
	t.Parallel()
	for _, profile := range boardtest.Profiles {
		t.Run(string(profile), func(t *testing.T) {
			t.Parallel()
			s := ftptest.Start(t, ftptest.Options{Profile: profile, Board: boardtest.Options{Baud: 115200}})
			dir := "/"
			if profile == boardtest.Pyboard {
				dir = "/flash/" // "/" is the VFS root, which holds only mounts
			}
			c := s.Dial(t)
			data := randomBytes(3000, 9)
			if err := c.Stor(dir+"up.bin", bytes.NewReader(data)); err != nil {
				t.Fatalf("STOR: %v", err)
			}
			entries, err := c.List(dir)
			if err != nil {
				t.Fatalf("LIST %s: %v", dir, err)
			}
			if !slices.ContainsFunc(entries, func(e *ftp.Entry) bool { return e.Name == "up.bin" && e.Size == 3000 }) {
				t.Errorf("LIST %s after STOR: %v", dir, entries)
			}
			if got := retr(t, c, dir+"up.bin", 1000); !bytes.Equal(got, data[1000:]) {
				t.Errorf("REST + RETR: %d bytes, want 2000", len(got))
			}
			if err := c.Delete(dir + "up.bin"); err != nil {
				t.Errorf("DELE: %v", err)
			}
		})
	}
}
