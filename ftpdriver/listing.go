package ftpdriver

import (
	"path"
	"strings"
)

// LIST and NLST arguments as vsftpd reads them: leading words that start
// with "-" are ls options, and the last element of the path may be a
// wildcard pattern (*, ?, [...]) that filters the folder's entries.
// ftpserverlib knows only -a, -l, -al and -la, and takes anything else
// (LIST -R, NLST *) for a file name, which then does not exist.
//
// Of the options, none changes the listing: the bridge always lists every
// entry (the board has no hidden files) in the long form for LIST and
// names for NLST. -R is not followed either, as vsftpd does by default
// (ls_recurse_enable=NO): a recursive listing of a board over the serial
// line would hold the board for as long as it takes.

// listArgs splits a LIST or NLST argument into the options, the folder or
// file to list, and a wildcard pattern for the folder's entries ("" for
// none).
func listArgs(param string) (options []string, dir, pattern string) {
	rest := strings.TrimLeft(param, " ")
	for strings.HasPrefix(rest, "-") {
		word, after, _ := strings.Cut(rest, " ")
		options = append(options, word)
		rest = strings.TrimLeft(after, " ")
	}
	dir = rest
	base := path.Base(rest)
	if rest == "" || !strings.ContainsAny(base, "*?[") {
		return options, dir, ""
	}
	if _, err := path.Match(base, ""); err != nil {
		// Not a pattern path.Match can read ("[" alone): a plain name.
		return options, dir, ""
	}
	dir, pattern = path.Dir(rest), base
	if !strings.Contains(rest, "/") {
		dir = ""
	}
	return options, dir, pattern
}

// listFilter is a pattern for the entries of one folder, handed from the
// command line (where the pattern is) to the driver's ReadDir (where the
// entries are).
type listFilter struct {
	dir     string // clean absolute path, as the client names it
	pattern string
}

// setListFilter makes the next listing of dir keep only the entries that
// match pattern; an empty pattern clears any filter left.
func (ss *session) setListFilter(dir, pattern string) {
	if ss == nil {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.filter = listFilter{dir: dir, pattern: pattern}
}

// takeListFilter returns the pattern set for a listing of dir, once; ""
// when none is. A filter for another folder is dropped: the listing it
// was for failed before it read the folder.
func (ss *session) takeListFilter(dir string) string {
	if ss == nil {
		return ""
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := ss.filter
	ss.filter = listFilter{}
	if f.dir != dir {
		return ""
	}
	return f.pattern
}
