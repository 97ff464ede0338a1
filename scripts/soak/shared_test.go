package soak

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
)

// sharedFile is the file the pair of clients share: one replaces it with
// known versions, the other downloads it. sharedNext is where a version
// goes before it is renamed over it.
const (
	sharedFile = "/shared/v.bin"
	sharedNext = "/shared/next.bin"
)

// sharedVersions returns the versions the replacer stores: 9 to 25 KB,
// so a download takes three to seven segments and a replacement can land
// between them, and sizes that differ and ones that do not.
func sharedVersions(rng *rand.Rand) [][]byte {
	var vs [][]byte
	for _, n := range []int{9 << 10, 17 << 10, 25 << 10, 25 << 10} {
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(rng.UintN(256))
		}
		vs = append(vs, v)
	}
	return vs
}

// pair is two sessions on one shared file: the replacer stores one known
// version after another over it, the fetcher downloads it and checks that
// each download is one version whole, or fails with a reply (issue 11,
// item 2: a download across a replacement used to be a mix reported
// complete).
type pair struct {
	t                  *testing.T
	replacer, fetcher  *ftp.ServerConn
	rng, fetchRNG      *rand.Rand // the replacer's, the fetcher's
	versions           [][]byte
	st                 stats
	fetches, changed   int // downloads done, and those refused as changed mid-way
	replaces, replaced int // STORs tried, and those done
}

// setup makes the shared directory and stores the first version.
func (p *pair) setup() bool {
	if err := p.replacer.MakeDir(path.Dir(sharedFile)); err != nil && !strings.Contains(err.Error(), "exists") {
		p.fail("MKD", path.Dir(sharedFile), err)
		return false
	}
	if _, err := retry(func() (struct{}, error) {
		return struct{}{}, p.replacer.Stor(sharedFile, bytes.NewReader(p.versions[0]))
	}); err != nil {
		p.fail("STOR", sharedFile, err)
		return false
	}
	return true
}

func (p *pair) fail(op, path string, err error) {
	p.t.Helper()
	p.st.errors++
	p.t.Errorf("shared file: %s %s: %v", op, path, err)
}

// replace stores versions until end, pausing up to 1 s between two.
// Three in four are stored as kio and rclone replace a file: uploaded
// beside it, then renamed over it (on the board, once the upload landed
// there; else folded into the pending upload). A download gets the spool's
// copy while an upload of the file is pending, and reads the board
// otherwise, where a change may land in its middle.
func (p *pair) replace(end time.Time) {
	for time.Now().Before(end) {
		time.Sleep(time.Duration(p.rng.IntN(1000)) * time.Millisecond)
		p.replaces++
		v := p.versions[p.rng.IntN(len(p.versions))]
		op, err := "STOR", error(nil)
		if p.rng.IntN(4) == 0 {
			err = p.replacer.Stor(sharedFile, bytes.NewReader(v))
		} else {
			op = "STOR and RNTO"
			err = p.replacer.Stor(sharedNext, bytes.NewReader(v))
			if err == nil {
				err = p.replacer.Rename(sharedNext, sharedFile)
			}
		}
		switch classify(err) {
		case done:
			p.replaced++
		case busy, unsure:
			p.st.temporary++
		case failure:
			p.fail(op, sharedFile, err)
		}
	}
}

// fetch downloads until end, checking each download. It pauses up to
// 300 ms between two: a download from the spool takes no time.
func (p *pair) fetch(end time.Time) {
	c := &client{conn: p.fetcher}
	for time.Now().Before(end) {
		time.Sleep(time.Duration(p.fetchRNG.IntN(300)) * time.Millisecond)
		data, err := c.retr(sharedFile)
		switch classify(err) {
		case done:
			p.fetches++
			if p.version(data) < 0 {
				p.st.dataErrors++
				p.t.Errorf("data error: RETR %s: %d bytes reported complete, not one of the %d versions whole", sharedFile, len(data), len(p.versions))
			}
		case busy, unsure:
			p.st.temporary++
			if strings.Contains(err.Error(), "changed") {
				p.changed++
			}
		case failure:
			p.fail("RETR", sharedFile, err)
		}
	}
}

// quit ends both sessions.
func (p *pair) quit() {
	for _, c := range []*ftp.ServerConn{p.replacer, p.fetcher} {
		if err := c.Quit(); err != nil {
			p.fail("QUIT", "", err)
		}
	}
}

// version returns the index of the version data is, or -1.
func (p *pair) version(data []byte) int {
	for i, v := range p.versions {
		if bytes.Equal(data, v) {
			return i
		}
	}
	return -1
}

// checkDisk checks that the shared file on the host is one version whole.
func (p *pair) checkDisk(root string) {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(sharedFile)))
	if err != nil {
		p.st.dataErrors++
		p.t.Errorf("data error: %s on disk: %v", sharedFile, err)
		return
	}
	if p.version(data) < 0 {
		p.st.dataErrors++
		p.t.Errorf("data error: %s on disk: %d bytes, not one of the versions", sharedFile, len(data))
	}
}

func (p *pair) summary() string {
	return fmt.Sprintf("shared file: %d of %d replacements, %d whole downloads, %d refused as changed", p.replaced, p.replaces, p.fetches, p.changed)
}
