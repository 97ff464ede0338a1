package spool

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// A board's folder holds, per upload, ID.data (the bytes, written as they
// arrive) and, once its client is done, ID.json (meta). A .data without
// its .json is an upload whose client never heard success.
const (
	dataExt = ".data"
	metaExt = ".json"
	tmpExt  = ".tmp"
)

func (j *Job) metaFile() string { return filepath.Join(j.q.dir, j.id+metaExt) }

// save writes j's meta atomically and durably: a temporary file, synced,
// renamed over the old one, and the folder synced.
func (j *Job) save() error {
	j.saveMu.Lock()
	defer j.saveMu.Unlock()
	j.q.mu.Lock()
	m := j.m
	m.Gone = slices.Clone(j.m.Gone)
	j.q.mu.Unlock()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	name := j.metaFile()
	if err := writeSynced(name+tmpExt, b); err != nil {
		return fmt.Errorf("spool: saving the upload of %q: %w", m.Target, err)
	}
	if err := os.Rename(name+tmpExt, name); err != nil {
		return fmt.Errorf("spool: saving the upload of %q: %w", m.Target, err)
	}
	syncDir(j.q.dir)
	return nil
}

func writeSynced(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	for _, err := range []error{werr, serr, cerr} {
		if err != nil {
			return err
		}
	}
	return nil
}

// syncDir makes a rename in dir durable where the system allows it
// (Windows cannot open a folder to sync it, and needs not).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// resume takes up what an earlier run left in the board's folder: each
// upload whose client heard success is written again, in the order they
// came; the bytes of uploads cut off before that are removed. q.s.mu is
// held: nothing else sees q yet.
func (q *Queue) resume() {
	des, err := os.ReadDir(q.dir)
	if err != nil {
		if !os.IsNotExist(err) {
			q.log.Warn("reading the spool of pending uploads", "dir", q.dir, "err", err)
		}
		return
	}
	var ids []string
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasSuffix(name, metaExt):
			ids = append(ids, strings.TrimSuffix(name, metaExt))
		case strings.HasSuffix(name, tmpExt):
			_ = os.Remove(filepath.Join(q.dir, name))
		}
	}
	for _, de := range des {
		name := de.Name()
		if id, ok := strings.CutSuffix(name, dataExt); ok && !slices.Contains(ids, id) && !q.s.opts.Hold {
			_ = os.Remove(filepath.Join(q.dir, name))
		}
	}
	slices.Sort(ids)
	if q.s.opts.Hold && len(ids) > 0 {
		q.log.Warn(fmt.Sprintf("%d upload(s) an earlier run left pending for this board stay in the spool, unwritten: they are written the next time the board is served read-write", len(ids)),
			"spool", q.dir)
		return
	}
	var n int
	var bytes int64
	for _, id := range ids {
		j, err := q.load(id)
		if err != nil {
			q.log.Error("a pending upload left by an earlier run cannot be written", "file", filepath.Join(q.dir, id+dataExt), "err", err)
			continue
		}
		j.refs = 1
		q.jobs = append(q.jobs, j)
		n++
		bytes += j.m.Size
	}
	if n == 0 {
		return
	}
	q.log.Info(fmt.Sprintf("writing %d upload(s), %d bytes, that an earlier run left pending for this board", n, bytes),
		"uploads", n, "bytes", bytes, "spool", q.dir)
	for _, j := range q.jobs {
		q.log.Info("pending upload from an earlier run", "path", j.m.Target, "bytes", j.m.Size, "received", j.m.Received)
		q.start(j)
	}
}

// load reads one upload an earlier run left, and checks its bytes against
// its meta. One that fails the check is moved to failed/ with the reason.
func (q *Queue) load(id string) (*Job, error) {
	mb, err := os.ReadFile(filepath.Join(q.dir, id+metaExt))
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("spool: %s%s: %w", id, metaExt, err)
	}
	f, err := os.OpenFile(filepath.Join(q.dir, id+dataExt), os.O_RDWR, 0)
	if err != nil {
		if os.IsNotExist(err) {
			// Nothing left to write, nor to keep.
			_ = os.Remove(filepath.Join(q.dir, id+metaExt))
		}
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	j := newJob(q, id, f, m)
	if err == nil && (n != m.Size || hex.EncodeToString(h.Sum(nil)) != m.SHA256) {
		err = fmt.Errorf("spool: %s%s holds %d bytes that do not match what was received (%d bytes, SHA-256 %s)", id, dataExt, n, m.Size, m.SHA256)
	}
	if err != nil {
		kept := j.keep(&Failed{Path: m.Target, Size: m.Size, Received: m.Received, Err: err})
		_ = f.Close()
		_ = os.Remove(filepath.Join(q.dir, id+metaExt))
		return nil, fmt.Errorf("%w (kept in %s)", err, kept)
	}
	j.received = m.Size
	j.complete = true
	return j, nil
}

// keep moves a failed upload's bytes to the spool's failed/ folder under
// a name a person recognizes, with a note beside them saying what they
// are; it returns where, or "" when they could not be kept.
func (j *Job) keep(f *Failed) string {
	dir := filepath.Join(j.q.s.opts.Dir, "failed")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		j.q.log.Error("keeping a failed upload", "err", err)
		return ""
	}
	base := f.Received.Format("20060102-150405") + "-" + safeName(path.Base(f.Path))
	dst := filepath.Join(dir, base)
	for i := 2; ; i++ {
		if _, err := os.Lstat(dst); os.IsNotExist(err) {
			break
		}
		dst = filepath.Join(dir, fmt.Sprintf("%s-%d", base, i))
	}
	if err := os.Rename(j.file.Name(), dst); err != nil {
		// Windows will not rename a file that is open: copy it.
		if err := copyFile(j.file, dst); err != nil {
			j.q.log.Error("keeping a failed upload", "from", j.file.Name(), "to", dst, "err", err)
			return ""
		}
	}
	note := fmt.Sprintf("board: %s\npath: %s\nbytes: %d\nreceived: %s\nerror: %v\n",
		j.q.key, f.Path, f.Size, f.Received.Format("2006-01-02 15:04:05 MST"), f.Err)
	if err := writeSynced(dst+".txt", []byte(note)); err != nil {
		j.q.log.Warn("writing the note beside a failed upload", "file", dst+".txt", "err", err)
	}
	syncDir(dir)
	return dst
}

func copyFile(src *os.File, dst string) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, werr := io.Copy(out, io.NewSectionReader(src, 0, 1<<62))
	serr := out.Sync()
	cerr := out.Close()
	for _, err := range []error{werr, serr, cerr} {
		if err != nil {
			return err
		}
	}
	return nil
}

// safeName keeps a board file's name usable as a host file's name.
func safeName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." {
		name = "upload"
	}
	return name
}
