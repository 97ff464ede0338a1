package ftpdriver

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Command hooks: the commands the control connection handles before
// ftpserverlib does, each where the library's own answer is wrong for this
// server (v0.32.1; no upstream issue was found for these unless one is
// named). A hook runs on the session's command goroutine while the library
// waits for the line, so it may take its time; one that answers waits for
// a running transfer's final reply first, as the library would. SITE is
// served here (site.go).

// command is one command line, as a hook sees it.
type command struct {
	name     string // upper-cased: "RNTO"
	param    string // the rest of the line: "/a.txt"
	line     string // the whole line, as sent
	prev     string // the command passed to the library before this one; "" when that one was answered here
	prevCode int    // the code of the last reply sent
}

// verdict is what becomes of a command line: passed to the library (maybe
// rewritten, maybe with its reply filtered), or answered here.
type verdict struct {
	pass   string                           // the line for the library; "" to answer here
	code   int                              // the answer, when pass is ""
	msg    string                           // its text; lines split at "\n"
	filter func(line string) (string, bool) // rewrites (or drops: false) the library's reply lines to pass
	after  func() error                     // runs once the answer is sent; an error ends the session
}

func passOn(cmd command) verdict { return verdict{pass: cmd.line} }

func answer(code int, format string, args ...any) verdict {
	return verdict{code: code, msg: fmt.Sprintf(format, args...)}
}

// A commandHook decides what becomes of one command line.
type commandHook func(c *controlConn, cmd command) verdict

// commandHooks, by command. A hook runs only once the client has logged
// in, except for the commands in preLogin; before login the library
// answers the others 530.
var commandHooks = map[string]commandHook{
	"AUTH": authHook,
	"FEAT": featHook,
	"OPTS": optsHook,
	"REST": restHook,
	"RNTO": rntoHook,
	"RNFR": rnfrHook,
	"STOR": storHook,
	"APPE": storHook,
	"LIST": listHook,
	"NLST": listHook,
	"MLSD": listHook,
	"STAT": statHook,
	"SITE": siteHook,
	"PBSZ": protHook,
	"PROT": protHook,
}

var preLogin = map[string]bool{"AUTH": true, "FEAT": true, "OPTS": true, "PBSZ": true, "PROT": true}

// protHook refuses PBSZ and PROT outside TLS, as RFC 4217 asks (503: they
// follow a successful AUTH). The library said "200 OK" to PROT P on a
// plain connection, then answered every later EPSV and PASV "421 Cannot
// get a TLS config": the session could move no more data.
func protHook(c *controlConn, cmd command) verdict {
	c.mu.Lock()
	secure := c.tls != nil
	c.mu.Unlock()
	if !secure {
		return answer(503, "%s needs AUTH TLS first, and this connection is plain FTP", cmd.name)
	}
	return passOn(cmd)
}

// authHook serves AUTH TLS itself, so that TLS sits under this connection
// and the hooks read every session's commands; the library would wrap its
// own connection, above this one. Without a certificate the library
// answers 550 "Cannot get a TLS config"; RFC 4217 takes AUTH's replies
// from RFC 2228, under which a mechanism the server cannot accept for want
// of a resource it needs is answered 431. FileZilla then tries AUTH SSL,
// then carries on in plain FTP, as curl --ssl and lftp do.
func authHook(c *controlConn, cmd command) verdict {
	mech := strings.ToUpper(strings.TrimSpace(cmd.param))
	switch {
	case mech != "TLS" && mech != "TLS-C" && mech != "SSL" && mech != "TLS-P":
		return answer(504, "security mechanism %q not understood: AUTH TLS is", cmd.param)
	case c.s.opts.TLS == nil:
		return answer(431, "TLS is not available: ftpbridge was started without a certificate (--tls-cert, --tls-key)")
	}
	c.mu.Lock()
	already := c.tls != nil
	c.mu.Unlock()
	if already {
		return answer(503, "already using TLS")
	}
	return verdict{code: 234, msg: "AUTH command ok. Expecting TLS Negotiation.", after: c.startTLS}
}

// featHook keeps FEAT to what works. The library lists every hash it
// knows, in a line without the HASH keyword of draft-bryan-ftpext-hash
// (" CRC32;MD5;SHA-1;SHA-256*;SHA-512;"), and the non-standard XCRC, MD5,
// XMD5, XSHA, XSHA1 and XSHA512; the board computes SHA-256 only.
func featHook(_ *controlConn, cmd command) verdict {
	v := passOn(cmd)
	v.filter = func(line string) (string, bool) {
		if !strings.HasPrefix(line, " ") {
			return line, true
		}
		feat := strings.TrimSpace(line)
		switch {
		case feat == "XCRC", feat == "MD5", feat == "XMD5", feat == "XSHA", feat == "XSHA1", feat == "XSHA512":
			return "", false
		case strings.Contains(feat, "SHA-256") && strings.Contains(feat, ";"):
			return " HASH SHA-256*", true
		}
		return line, true
	}
	return v
}

// optsHook refuses OPTS HASH for an algorithm the board does not compute:
// the library would select it, and HASH would then fail.
func optsHook(c *controlConn, cmd command) verdict {
	opt, arg, _ := strings.Cut(strings.TrimSpace(cmd.param), " ")
	arg = strings.TrimSpace(arg)
	if strings.EqualFold(opt, "HASH") && c.s.hashing() && arg != "" && !strings.EqualFold(arg, "SHA-256") {
		return answer(501, "only SHA-256 is computed on the board: the selection stays SHA-256")
	}
	return passOn(cmd)
}

// restHook answers 501 to a restart point that is not a byte offset. The
// library takes any integer, negative ones too ("REST -5" got 350, and the
// transfer then failed with a misleading "file name not allowed"), and
// answers 550 to one that does not parse.
func restHook(_ *controlConn, cmd command) verdict {
	n, err := strconv.ParseInt(strings.TrimSpace(cmd.param), 10, 64)
	if err != nil || n < 0 {
		return answer(501, "REST needs a byte offset: a whole number, 0 or more (got %q)", cmd.param)
	}
	return passOn(cmd)
}

// rntoHook lets RNTO through only right after an RNFR that was accepted,
// as RFC 959 has it ("the immediately preceding rename from command"). The
// library forgets the RNFR only when a rename succeeds: after a failed
// RNTO (or a failed RNFR), the next RNTO renamed the old source.
func rntoHook(_ *controlConn, cmd command) verdict {
	if cmd.prev != "RNFR" || cmd.prevCode != 350 {
		return answer(503, "RNTO must come right after an accepted RNFR: nothing renamed")
	}
	return passOn(cmd)
}

// rnfrHook refuses to take the root folder as what to rename: the
// library stats it, finds a folder and answers 350, and only the RNTO
// after it was refused.
func rnfrHook(c *controlConn, cmd command) verdict {
	ss := c.session()
	abs := cmd.param
	if !strings.HasPrefix(abs, "/") {
		abs = path.Join(ss.cc.Path(), abs)
	}
	abs = path.Clean("/" + abs)
	if abs == "/" {
		return answer(550, "the root folder cannot be renamed")
	}
	if _, onBoard, err := c.s.where(abs); err == nil && c.s.boards != nil && onBoard == "/" {
		return answer(550, "the top level holds one folder per board: a board's folder cannot be renamed")
	}
	return passOn(cmd)
}

// storHook refuses a STOR or APPE to a name ending in "/": the library
// cleans the slash away, and "STOR trail/" made a file "trail".
func storHook(_ *controlConn, cmd command) verdict {
	if strings.HasSuffix(strings.TrimSpace(cmd.param), "/") {
		return answer(553, "%s needs a file name, not a folder's (it ends in /): nothing stored", cmd.name)
	}
	return passOn(cmd)
}

// listHook reads LIST and NLST arguments as vsftpd does (listArgs): the
// options are dropped, and a wildcard pattern filters the folder's
// entries in the driver's ReadDir. MLSD takes a path only; it clears a
// filter a failed listing left.
func listHook(c *controlConn, cmd command) verdict {
	ss := c.session()
	if cmd.name == "MLSD" {
		ss.setListFilter("", "")
		return passOn(cmd)
	}
	options, dir, pattern := listArgs(cmd.param)
	abs := path.Clean(dir)
	if !strings.HasPrefix(dir, "/") {
		abs = path.Join(ss.cc.Path(), dir)
	}
	ss.setListFilter(abs, pattern)
	if len(options) > 0 || pattern != "" {
		ss.log.Debug("listing arguments", "command", cmd.name, "options", options, "dir", dir, "pattern", pattern)
	}
	v := passOn(cmd)
	v.pass = strings.TrimSpace(cmd.name + " " + dir)
	return v
}

// statHook mends STAT of a folder, whose entries the library prints after
// a literal "%s" (it passes a format string to a function that takes none),
// and clears a listing filter left behind.
func statHook(c *controlConn, cmd command) verdict {
	v := passOn(cmd)
	if strings.TrimSpace(cmd.param) == "" {
		return v // the server's status
	}
	c.session().setListFilter("", "")
	v.filter = func(line string) (string, bool) {
		if rest, ok := strings.CutPrefix(line, " %s"); ok {
			return " " + rest, true
		}
		return line, true
	}
	return v
}
