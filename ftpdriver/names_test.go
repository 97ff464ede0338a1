package ftpdriver_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// TestReservedNamesRefused: STOR, APPE, RNTO and MKD of a name reserved
// for ftpbridge's upload temporaries get 553 with a reply that says so,
// and change nothing, rather than being accepted and then hidden and
// swept; a user's file in the old temporaries' form is stored, listed and
// kept (issue 11, item 6).
func TestReservedNamesRefused(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	root := s.Board.Root
	put(t, root, "mine.txt", []byte("mine"))
	c := s.Dial(t)
	reserved := "/.ftpbridge-0123abcd"
	for _, o := range []struct {
		cmd  string
		code int
		op   func() error
	}{
		{"STOR", 553, func() error { return c.Stor(reserved, strings.NewReader("data")) }},
		{"APPE", 553, func() error { return c.Append(reserved, strings.NewReader("data")) }},
		{"RNTO", 553, func() error { return c.Rename("/mine.txt", reserved) }},
		// ftpserverlib answers a failed MKD 550, whatever the error.
		{"MKD", 550, func() error { return c.MakeDir(reserved) }},
	} {
		err := o.op()
		if replyCode(err) != o.code || !strings.Contains(err.Error(), "reserved for ftpbridge's temporary files") {
			t.Errorf("%s %s: %v, want %d saying the name is reserved", o.cmd, reserved, err, o.code)
		}
	}
	if names := hostNames(t, root, "/"); !slices.Equal(names, []string{"mine.txt"}) {
		t.Errorf("board after the refusals holds %q, want only mine.txt", names)
	}

	lookalike := "/.notes.deadbeef.ftpbridge"
	if err := c.Stor(lookalike, strings.NewReader("notes")); err != nil {
		t.Fatalf("STOR %s: %v", lookalike, err)
	}
	names, err := c.NameList("/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.TrimPrefix(n, "/") == lookalike[1:] }) {
		t.Errorf("NLST / = %q, want %s listed", names, lookalike)
	}
	if got := retr(t, c, lookalike, 0); !bytes.Equal(got, []byte("notes")) {
		t.Errorf("RETR %s = %q", lookalike, got)
	}
}
