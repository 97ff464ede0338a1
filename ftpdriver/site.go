package ftpdriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/spool"
)

// SITE commands. ftpserverlib's own SITE is disabled (DisableSite: its
// SITE RMDIR calls RemoveAll); the control connection answers SITE here
// instead, before the library sees the line (commands.go), so the library
// needs no fork: RESET and RUN start programs on the board through its
// console, and HELP lists them. Clients send them as lftp's
// `quote SITE RESET`, curl's `-Q "SITE RESET"` and FileZilla's custom
// commands do.

// Programs is what a Board has when programs can be started on it
// (package console). Both methods take the board from whatever it runs,
// and return a few words on where the program's output goes.
type Programs interface {
	// SoftReset restarts the board's interpreter from its friendly REPL:
	// boot.py and main.py run. op names the request ("SITE RESET").
	SoftReset(ctx context.Context, op string) (string, error)
	// RunFile runs the file at p, a path on the board.
	RunFile(ctx context.Context, p, op string) (string, error)
}

const siteHelp = `SITE commands:
 SITE RESET [FOLDER]: a soft reset once the board has every upload still on its way; boot.py and main.py then run, their output on the console
 SITE RUN FILE.py: runs a file on the board, its output on the console
SITE HELP done`

// siteHelpNoConsole is SITE HELP where no board has a console.
const siteHelpNoConsole = `SITE commands:
 none here: SITE RESET and SITE RUN need ftpbridge started with --console or --console-pty
SITE HELP done`

// runsPrograms reports whether a board served here can run programs:
// over several boards, whether the first one can (they are all started
// alike).
func (s *Server) runsPrograms() bool {
	m := s.single
	if s.boards != nil {
		for _, n := range s.boards.Names() {
			if m, _, _ = s.where("/" + n); m != nil {
				break
			}
		}
	}
	if m == nil {
		return false
	}
	_, ok := m.board.(Programs)
	return ok
}

// siteHook serves SITE RESET, SITE RUN and SITE HELP.
func siteHook(c *controlConn, cmd command) verdict {
	sub, arg, _ := strings.Cut(strings.TrimSpace(cmd.param), " ")
	arg = strings.TrimSpace(arg)
	sub = strings.ToUpper(sub)
	switch sub {
	case "HELP", "":
		if !c.s.runsPrograms() {
			return answer(214, "%s", siteHelpNoConsole)
		}
		return answer(214, "%s", siteHelp)
	case "RESET", "RUN":
	default:
		return answer(500, "SITE %s not understood: SITE RESET, SITE RUN FILE.py, SITE HELP", sub)
	}
	if sub == "RUN" && arg == "" {
		return answer(501, "SITE RUN needs the file to run: SITE RUN main.py")
	}
	ss := c.session()
	if c.s.opts.ReadOnly {
		return answer(550, "read-only: SITE %s would run code on the board", sub)
	}
	// The reply must come after that of a transfer still running.
	c.waitTransfer()
	code, msg := c.s.site(ss, sub, arg)
	return answer(code, "%s", msg)
}

// site runs SITE RESET or SITE RUN for a session, and returns the reply.
func (s *Server) site(ss *session, sub, arg string) (int, string) {
	op := "SITE " + sub
	p := ss.cc.Path()
	if arg != "" {
		p = arg
		if !strings.HasPrefix(p, "/") {
			p = path.Join(ss.cc.Path(), p)
		}
	}
	p = path.Clean(p)
	log := ss.log
	m, onBoard, err := s.where(p)
	if err != nil {
		return 550, ftpError(log, op, p, err).Error()
	}
	if m == nil {
		return 501, fmt.Sprintf("which board? name its folder (%s /%s), or go into it first", op, exampleBoard(s))
	}
	if m.name != "" {
		log = log.With("board", m.name)
	}
	progs, ok := m.board.(Programs)
	if !ok {
		return 502, op + " is not available here: this server runs no console"
	}
	fsys, err := m.board.FS()
	if err != nil {
		return 450, ftpError(log, op, onBoard, err).Error()
	}
	if !s.enter() {
		return 421, ftpError(log, op, onBoard, ErrStopping).Error()
	}
	defer s.leave()
	q := s.queue(m, fsys)
	start := time.Now()
	// What was uploaded is what must run: the uploads before it land
	// first, however long that takes while they move (curl -T big.py -Q
	// "-SITE RESET" asks right after its 226, which comes before a big
	// upload is on the board).
	settleAt := onBoard
	if sub == "RESET" {
		settleAt = "/"
	}
	if err := q.SettleMoving(ss.ctx, settleAt, s.opts.OpTimeout/2); err != nil {
		return siteRefused(log, op, onBoard, err)
	}
	ctx, cancel := context.WithTimeoutCause(ss.ctx, s.opts.OpTimeout, ErrTimeout)
	defer cancel()
	var note string
	if sub == "RESET" {
		note, err = progs.SoftReset(ctx, op)
	} else {
		var e boardfs.Entry
		if e, err = fsys.Stat(boardfs.WithOp(ctx, op+" "+p), onBoard); err == nil && e.IsDir {
			err = fmt.Errorf("%w: %q", ErrIsDir, onBoard)
		}
		if err == nil {
			note, err = progs.RunFile(ctx, onBoard, op+" "+p)
		}
	}
	if err != nil {
		return siteRefused(log, op, onBoard, err)
	}
	log.Info(op, "path", onBoard, "took", time.Since(start).Round(time.Millisecond))
	if sub == "RESET" {
		return 200, "board reset, boot.py and main.py started: " + note
	}
	return 200, p + " started: " + note
}

// siteRefused is the reply to a SITE command that failed: 450 for what
// may pass (a board busy, away, still writing an upload), 550 otherwise.
func siteRefused(log *slog.Logger, op, p string, err error) (int, string) {
	msg := ftpError(log, op, p, err).Error()
	switch {
	case errors.Is(err, spool.ErrPending):
		return 450, "not done: an upload to the board has stopped moving; try again once it has landed"
	case errors.Is(err, boardfs.ErrBusy), errors.Is(err, boardfs.ErrNotConnected),
		errors.Is(err, boardfs.ErrDisconnected), errors.Is(err, boardfs.ErrBoardReset),
		errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return 450, msg
	}
	return 550, msg
}

// exampleBoard is a board's folder name to show in a reply.
func exampleBoard(s *Server) string {
	if s.boards != nil {
		for _, n := range s.boards.Names() {
			return n
		}
	}
	return "ttyACM0"
}
