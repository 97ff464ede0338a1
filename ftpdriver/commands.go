package ftpdriver

import (
	"fmt"
	"strings"
)

// Command hooks: the commands the control connection handles before
// ftpserverlib does, each where the library's own answer is wrong for this
// server (v0.32.1). A hook runs on the session's command goroutine while the library
// waits for the line, so it may take its time; one that answers waits for
// a running transfer's final reply first, as the library would. To serve a
// new command (SITE ...), add a hook here.

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
}

var preLogin = map[string]bool{"AUTH": true}

// authHook serves AUTH TLS itself, so that TLS sits under this connection
// and the hooks read every session's commands; the library would wrap its
// own connection, above this one. Without a certificate the library
// answers.
func authHook(c *controlConn, cmd command) verdict {
	mech := strings.ToUpper(strings.TrimSpace(cmd.param))
	switch {
	case c.s.opts.TLS == nil:
		return passOn(cmd)
	case mech != "TLS" && mech != "TLS-C" && mech != "SSL" && mech != "TLS-P":
		return answer(504, "security mechanism %q not understood: AUTH TLS is", cmd.param)
	}
	c.mu.Lock()
	already := c.tls != nil
	c.mu.Unlock()
	if already {
		return answer(503, "already using TLS")
	}
	return verdict{code: 234, msg: "AUTH command ok. Expecting TLS Negotiation.", after: c.startTLS}
}
