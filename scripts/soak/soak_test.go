// Package soak is a load test of the bridge: eight FTP clients list, fetch,
// store, rename and delete files at once over one emulated ESP32 on a
// 115200-baud line, each against an exact model of its own directory,
// while a pair of clients shares one file (one replaces it with known
// versions, the other downloads it and checks that each download is one
// version whole), and the test checks that no byte goes astray, no upload
// temporary is left behind, and that goroutines and memory stay bounded.
//
// go test runs it for 20 s; scripts/soak/run runs it for longer
// (-soak.duration).
package soak

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/textproto"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

var (
	soakDuration = flag.Duration("soak.duration", 0, "how long TestSoak's clients run; 0: a short run of 20s")
	soakSeed     = flag.Uint64("soak.seed", 0, "seed of TestSoak's choices; 0: a random one, logged")
)

const (
	clients  = 8
	shortRun = 20 * time.Second
	// goroutineSlack is how far above the count before the clients the
	// count may stay once they have quit (timers, the test's own output).
	goroutineSlack = 4
	// maxRSSKB bounds the test process's peak resident set, in KB (the unit
	// of Linux's ru_maxrss).
	maxRSSKB = 512 << 10
	// retries is how often a check repeats a read the board was too busy for.
	retries = 10
)

// names is each client's pool of file names: small, so STOR and RENAME
// often hit an existing file.
var names = []string{"main.py", "lib.py", "data.bin", "log.txt", "cfg.json", "a b.py", "x", "notes.md"}

// uploadTemp matches the names boardfs gives uploads in flight on every
// board (boardfs's newTempName: ".ftpbridge-" and 8 lowercase hex digits,
// in the target's directory).
var uploadTemp = regexp.MustCompile(`^\.ftpbridge-[0-9a-f]{8}$`)

// The operations a client counts.
const (
	opList = iota
	opGet
	opPut
	opRename
	opDelete
	numOps
)

// stats are one client's counts; the test sums them.
type stats struct {
	ops        [numOps]int
	temporary  int // busy, timeouts and other 4xx replies
	uncertain  int // changes that may or may not have happened
	errors     int // any other failure
	dataErrors int // bytes or listings that disagree with the model
}

func (s *stats) add(o stats) {
	for i := range s.ops {
		s.ops[i] += o.ops[i]
	}
	s.temporary += o.temporary
	s.uncertain += o.uncertain
	s.errors += o.errors
	s.dataErrors += o.dataErrors
}

func TestSoak(t *testing.T) {
	d := *soakDuration
	if d <= 0 {
		d = shortRun
	}
	soak(t, "soak", d, boardtest.Options{Baud: 115200})
}

// TestSoakUnplug is the short soak with the board unplugged partway
// (after 150 KB on the line, about 10 s in) and plugged back 2 s later:
// operations caught by the unplug fail with a temporary reply, and the
// board's files still match the model.
func TestSoakUnplug(t *testing.T) {
	soak(t, "soak with an unplug", shortRun, boardtest.Options{Baud: 115200, CutAfter: 150_000, ReplugAfter: 2 * time.Second})
}

func soak(t *testing.T, label string, d time.Duration, board boardtest.Options) {
	seed := *soakSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("soak: seed %d (rerun with -soak.seed=%d)", seed, seed)

	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := ftptest.Start(t, ftptest.Options{
		Profile: boardtest.ESP32,
		Board:   board,
		Driver:  ftpdriver.Options{Logger: log},
	})

	goBefore := runtime.NumGoroutine()
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = &client{
			t:     t,
			dir:   fmt.Sprintf("/c%d", i),
			conn:  srv.Dial(t, ftp.DialWithTimeout(30*time.Second)),
			rng:   rand.New(rand.NewPCG(seed, uint64(i))),
			model: map[string][]byte{},
		}
	}
	shared := &pair{
		t:        t,
		replacer: srv.Dial(t, ftp.DialWithTimeout(30*time.Second)),
		fetcher:  srv.Dial(t, ftp.DialWithTimeout(30*time.Second)),
		rng:      rand.New(rand.NewPCG(seed, clients)),
		fetchRNG: rand.New(rand.NewPCG(seed, clients+1)),
	}
	shared.versions = sharedVersions(shared.rng)
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.run(end) })
	}
	if shared.setup() {
		wg.Go(func() { shared.replace(end) })
		wg.Go(func() { shared.fetch(end) })
	}
	wg.Wait()
	shared.quit()
	// A 226 comes once an upload is safe in the spool; the board's files
	// are checked once it has them all, and its writers are gone.
	srv.WaitUploads(t, 2*time.Minute)
	goAfter := settle(goBefore+goroutineSlack, 5*time.Second)

	var total stats
	for _, c := range cs {
		c.checkDisk(srv.Board.Root)
		total.add(c.st)
	}
	shared.checkDisk(srv.Board.Root)
	total.add(shared.st)
	total.errors += leftovers(t, srv.Board.Root)

	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Errorf("getrusage: %v", err)
	}
	ops := 0
	for _, n := range total.ops {
		ops += n
	}
	line := fmt.Sprintf("%s: %d clients %v: ops %d (list %d get %d put %d rename %d delete %d), "+
		"temporary failures %d, uncertain %d, errors %d, data errors %d, goroutines %d->%d, peak RSS %d MB",
		label, clients, d, ops, total.ops[opList], total.ops[opGet], total.ops[opPut], total.ops[opRename], total.ops[opDelete],
		total.temporary, total.uncertain, total.errors, total.dataErrors, goBefore, goAfter, ru.Maxrss>>10)
	t.Log(line)
	fmt.Println(line)
	t.Log(shared.summary())
	fmt.Println(shared.summary())

	if total.dataErrors > 0 {
		t.Errorf("%d data errors", total.dataErrors)
	}
	if goAfter > goBefore+goroutineSlack {
		t.Errorf("goroutines: %d before the clients, still %d 5s after they quit", goBefore, goAfter)
	}
	if ru.Maxrss > maxRSSKB {
		t.Errorf("peak RSS %d MB, want at most %d MB", ru.Maxrss>>10, maxRSSKB>>10)
	}
}

// settle waits up to wait for the goroutine count to drop to want, and
// returns the last count.
func settle(want int, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// outcome is what a reply means for the model.
type outcome int

const (
	done    outcome = iota // success
	busy                   // the board was busy: nothing happened
	unsure                 // another temporary failure: a change may have happened
	failure                // anything else
)

// classify sorts a client error by its reply. A temporary failure is a
// 4xx, except an upload's, which stays 550 (ftpdriver's transientCode), so
// the text decides: ftpdriver's ftpError answers "board busy, try again"
// and "the board did not answer in time".
func classify(err error) outcome {
	if err == nil {
		return done
	}
	var te *textproto.Error
	if !errors.As(err, &te) {
		return failure
	}
	msg := strings.ToLower(te.Msg)
	switch {
	case strings.Contains(msg, "busy"):
		return busy
	case te.Code/100 == 4, strings.Contains(msg, "try again"), strings.Contains(msg, "did not answer in time"):
		return unsure
	}
	return failure
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want outcome
	}{
		{"success", nil, done},
		{"busy LIST", &textproto.Error{Code: 450, Msg: "board busy, try again"}, busy},
		{"busy STOR", &textproto.Error{Code: 550, Msg: "board busy, try again"}, busy},
		{"busy in RNTO's text", &textproto.Error{Code: 550, Msg: "Couldn't rename /c0/a to /c0/b: board busy, try again"}, busy},
		{"timeout", &textproto.Error{Code: 550, Msg: "the board did not answer in time"}, unsure},
		{"reset", &textproto.Error{Code: 550, Msg: "board reset, try again"}, unsure},
		{"4xx", &textproto.Error{Code: 426, Msg: "connection closed; transfer aborted"}, unsure},
		{"wrapped", fmt.Errorf("stor: %w", &textproto.Error{Code: 450, Msg: "board busy, try again"}), busy},
		{"not found", &textproto.Error{Code: 550, Msg: "no such file or directory"}, failure},
		{"no reply", io.ErrUnexpectedEOF, failure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// client is one FTP session working in its own directory, with an exact
// model of what that directory holds.
type client struct {
	t     *testing.T
	dir   string
	conn  *ftp.ServerConn
	rng   *rand.Rand
	model map[string][]byte
	st    stats
}

// run makes the client's directory, then steps until end, then quits.
func (c *client) run(end time.Time) {
	defer func() {
		if err := c.conn.Quit(); err != nil {
			c.fail("QUIT", "", err)
		}
	}()
	if !c.mkdir() {
		return
	}
	for time.Now().Before(end) {
		if !c.step() {
			return
		}
	}
}

// mkdir makes the client's directory, retrying temporary failures.
func (c *client) mkdir() bool {
	maybe := false
	for range retries {
		err := c.conn.MakeDir(c.dir)
		switch classify(err) {
		case done:
			return true
		case busy, unsure:
			c.st.temporary++
			maybe = maybe || classify(err) == unsure
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if maybe && strings.Contains(err.Error(), "exists") {
			return true
		}
		c.fail("MKD", c.dir, err)
		return false
	}
	c.fail("MKD", c.dir, errors.New("still failing after retries"))
	return false
}

// fail reports a non-temporary error.
func (c *client) fail(op, p string, err error) {
	c.t.Helper()
	c.st.errors++
	c.t.Errorf("%s %s: %v", op, p, err)
}

// dataError reports a disagreement with the model.
func (c *client) dataError(format string, args ...any) {
	c.t.Helper()
	c.st.dataErrors++
	c.t.Errorf("data error: "+format, args...)
}

// step runs one random operation. It returns false when the client cannot
// go on (its model is lost).
func (c *client) step() bool {
	if c.rng.IntN(12) == 0 {
		c.listRoot()
		return true
	}
	files := slices.Sorted(maps.Keys(c.model))
	op := []int{opList, opList, opList, opGet, opGet, opGet, opGet, opPut, opPut, opPut, opPut, opRename, opRename, opDelete, opDelete}[c.rng.IntN(15)]
	if len(files) == 0 && op != opList {
		op = opPut
	}
	c.st.ops[op]++
	switch op {
	case opList:
		c.list()
	case opGet:
		c.get(files[c.rng.IntN(len(files))])
	case opPut:
		return c.put(names[c.rng.IntN(len(names))])
	case opRename:
		from := files[c.rng.IntN(len(files))]
		to := names[c.rng.IntN(len(names))]
		for to == from {
			to = names[c.rng.IntN(len(names))]
		}
		return c.rename(from, to)
	case opDelete:
		return c.remove(files[c.rng.IntN(len(files))])
	}
	return true
}

func (c *client) path(name string) string { return path.Join(c.dir, name) }

// listRoot lists the shared root, where the client's directory must be.
func (c *client) listRoot() {
	c.st.ops[opList]++
	entries, err := c.conn.List("/")
	switch classify(err) {
	case busy, unsure:
		c.st.temporary++
		return
	case failure:
		c.fail("LIST", "/", err)
		return
	}
	for _, e := range entries {
		if "/"+e.Name == c.dir && e.Type == ftp.EntryTypeFolder {
			return
		}
	}
	c.dataError("LIST /: no directory %s in %d entries", c.dir, len(entries))
}

func (c *client) list() {
	entries, err := c.conn.List(c.dir)
	switch classify(err) {
	case busy, unsure:
		c.st.temporary++
		return
	case failure:
		c.fail("LIST", c.dir, err)
		return
	}
	if diff := listingDiff(entries, c.model); diff != "" {
		c.dataError("LIST %s: %s", c.dir, diff)
	}
}

func (c *client) get(name string) {
	p := c.path(name)
	data, err := c.retr(p)
	switch classify(err) {
	case busy, unsure:
		c.st.temporary++
		return
	case failure:
		c.fail("RETR", p, err)
		return
	}
	if diff := bytesDiff(data, c.model[name]); diff != "" {
		c.dataError("RETR %s: %s", p, diff)
	}
}

// retr downloads p. Its error holds the server's reply, when there is one,
// ahead of any error of the data connection.
func (c *client) retr(p string) ([]byte, error) {
	r, err := c.conn.Retr(p)
	if err != nil {
		return nil, err
	}
	// The board moves about 11 KB/s, a file is at most 6 KB, and other
	// clients come first: two minutes is a stall, not a slow board.
	if err := r.SetDeadline(time.Now().Add(2 * time.Minute)); err != nil {
		return nil, errors.Join(r.Close(), err)
	}
	data, rerr := io.ReadAll(r)
	return data, errors.Join(r.Close(), rerr)
}

func (c *client) put(name string) bool {
	p := c.path(name)
	data := content(c.rng)
	err := c.conn.Stor(p, bytes.NewReader(data))
	after := maps.Clone(c.model)
	after[name] = data
	return c.change("STOR", p, err, after)
}

func (c *client) rename(from, to string) bool {
	err := c.conn.Rename(c.path(from), c.path(to))
	after := maps.Clone(c.model)
	after[to] = after[from]
	delete(after, from)
	return c.change("RENAME", c.path(from)+" -> "+c.path(to), err, after)
}

func (c *client) remove(name string) bool {
	p := c.path(name)
	err := c.conn.Delete(p)
	after := maps.Clone(c.model)
	delete(after, name)
	return c.change("DELE", p, err, after)
}

// change updates the model after a STOR, RENAME or DELE whose result is
// after: on success it is after, on a busy reply the model stays, on any
// other temporary failure the board decides between the two.
func (c *client) change(op, p string, err error, after map[string][]byte) bool {
	switch classify(err) {
	case done:
		c.model = after
	case busy:
		c.st.temporary++
	case unsure:
		c.st.temporary++
		c.st.uncertain++
		c.t.Logf("%s %s: %v; reading the directory back", op, p, err)
		return c.resolve([]map[string][]byte{c.model, after})
	case failure:
		c.fail(op, p, err)
	}
	return true
}

// resolve sets the model to the one of candidates the board holds: first
// by the listing (names and sizes), then by the bytes of the files where
// the remaining candidates differ. It returns false when the board can no
// longer be read.
func (c *client) resolve(candidates []map[string][]byte) bool {
	entries, err := retry(func() ([]*ftp.Entry, error) { return c.conn.List(c.dir) })
	if err != nil {
		c.fail("LIST", c.dir, fmt.Errorf("resolving an uncertain change: %w", err))
		return false
	}
	var left []map[string][]byte
	for _, m := range candidates {
		if listingDiff(entries, m) == "" {
			left = append(left, m)
		}
	}
	for _, name := range names {
		if len(left) < 2 {
			break
		}
		if !differ(left, name) {
			continue
		}
		data, err := retry(func() ([]byte, error) { return c.retr(c.path(name)) })
		if err != nil {
			c.fail("RETR", c.path(name), fmt.Errorf("resolving an uncertain change: %w", err))
			return false
		}
		left = slices.DeleteFunc(left, func(m map[string][]byte) bool { return !bytes.Equal(m[name], data) })
	}
	if len(left) == 0 {
		c.dataError("%s after an uncertain change matches neither the state before nor after: %s",
			c.dir, listingDiff(entries, candidates[0]))
		return false
	}
	c.model = left[0]
	return true
}

// differ reports whether the candidates disagree about name.
func differ(ms []map[string][]byte, name string) bool {
	for _, m := range ms[1:] {
		a, aok := ms[0][name]
		b, bok := m[name]
		if aok != bok || !bytes.Equal(a, b) {
			return true
		}
	}
	return false
}

// retry repeats a read while the board answers with a temporary failure.
func retry[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range retries {
		v, err = f()
		if o := classify(err); o != busy && o != unsure {
			return v, err
		}
		time.Sleep(time.Second)
	}
	return v, err
}

// checkDisk compares the model with the client's directory on the host,
// which is the board's filesystem.
func (c *client) checkDisk(root string) {
	dir := filepath.Join(root, filepath.FromSlash(c.dir))
	ents, err := os.ReadDir(dir)
	if err != nil {
		c.dataError("reading %s on disk: %v", dir, err)
		return
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if uploadTemp.MatchString(e.Name()) {
			continue // counted by leftovers
		}
		seen[e.Name()] = true
		want, ok := c.model[e.Name()]
		if !ok {
			c.dataError("%s on disk: unexpected %q", c.dir, e.Name())
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			c.dataError("%s on disk: %v", c.dir, err)
			continue
		}
		if diff := bytesDiff(got, want); diff != "" {
			c.dataError("%s on disk: %q: %s", c.dir, e.Name(), diff)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.model)) {
		if !seen[name] {
			c.dataError("%s on disk: %q is missing", c.dir, name)
		}
	}
}

// leftovers reports and counts the upload temporaries anywhere on the
// board.
func leftovers(t *testing.T, root string) int {
	n := 0
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if uploadTemp.MatchString(e.Name()) {
			n++
			t.Errorf("upload temporary left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walking %s: %v", root, err)
	}
	return n
}

// listingDiff says how a listing differs from a model by names and sizes;
// "" when it does not.
func listingDiff(entries []*ftp.Entry, want map[string][]byte) string {
	var diffs []string
	got := map[string]uint64{}
	for _, e := range entries {
		switch {
		case e.Name == "." || e.Name == "..":
		case e.Type != ftp.EntryTypeFile:
			diffs = append(diffs, fmt.Sprintf("%q is not a file", e.Name))
		default:
			got[e.Name] = e.Size
		}
	}
	for name, data := range want {
		size, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%q missing", name))
		case size != uint64(len(data)):
			diffs = append(diffs, fmt.Sprintf("%q has %d bytes, want %d", name, size, len(data)))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%q unexpected", name))
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}

// bytesDiff says where got differs from want; "" when it does not.
func bytesDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("%d bytes, want %d; first difference at offset %d", len(got), len(want), i)
}

// pyLines are the lines text files are made of: Python as boards run it,
// with the bytes a raw REPL treats specially (Ctrl-C, Ctrl-D, CR) written
// out in string literals, CRLF endings and non-ASCII text.
var pyLines = []string{
	"import os, sys\n",
	"def f%d(x):\n    return x * %d\n",
	"for i in range(%d):\n    print('tick', i)\n",
	"# comment %x\r\n",
	"s = \"\\x03\\x04 %d\\r\\n\"\n",
	"π = 3.14159  # ü %d\n",
	"\t'''doc %d'''\n",
	"led.value(%d)\n",
}

// content returns 200 B to 6 KB of random bytes or Python-like text.
func content(rng *rand.Rand) []byte {
	n := 200 + rng.IntN(6*1024-200+1)
	if rng.IntN(2) == 0 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	var b bytes.Buffer
	for b.Len() < n {
		line := pyLines[rng.IntN(len(pyLines))]
		if strings.Contains(line, "%") {
			args := []any{rng.IntN(1000), rng.IntN(1000)}[:strings.Count(line, "%")]
			line = fmt.Sprintf(line, args...)
		}
		b.WriteString(line)
	}
	return b.Bytes()[:n]
}
