// Package console serves a board's friendly REPL to one person at a time,
// beside the FTP server that serves its files: over a TCP stream (telnet,
// nc, socat, PuTTY's raw mode) or a pseudo-terminal (screen, picocom,
// minicom).
//
// The board has one serial line. While a person is attached and no FTP
// operation needs the board, the console holds the board (boardfs.Hold)
// and passes bytes both ways untouched (repl.Conn.Pass), so Ctrl-C, Ctrl-D
// and paste mode work as on the serial line. When an operation asks for
// the board, the console gives it up at once: a program running is
// interrupted, and the person is told by which operation (with
// Options.KeepProgram the operation waits for the program instead, and is
// told "board busy running a program" after the board's BusyWait). Once
// FTP has left the board alone for Options.Quiet, the console takes it
// back at a fresh friendly prompt. What the person types meanwhile waits,
// and is sent then.
//
// A console also runs programs for FTP's SITE RESET and SITE RUN
// (SoftReset, RunFile), attached person or not; a program it started, or
// one a person left running, keeps the board (and its output is kept for
// the next person) until it ends or an operation needs the board.
package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/repl"
)

// Errors a console returns.
var (
	// ErrInUse: another person is attached to the console.
	ErrInUse = errors.New("console: in use")
	// ErrStopped: the console has stopped (ftpbridge is quitting).
	ErrStopped = errors.New("console: stopped")
	// ErrNoStart: the board did not show that it started what it was
	// asked (no reboot line after a soft reset, no echo of the line
	// that runs a file).
	ErrNoStart = errors.New("console: the board did not show it started")
)

// Board is where a console finds its board; a *boardfs.Link is one.
type Board interface {
	// FS returns the board connected now, or an error while it is away.
	FS() (*boardfs.FS, error)
	// Info says what the board is.
	Info() boardfs.Info
}

// Options tune a Console. The zero value works.
type Options struct {
	Logger *slog.Logger
	// Name names the board to people: its port, or its folder under --all.
	Name string
	// KeepProgram makes FTP operations wait for a program running on the
	// console rather than interrupt it.
	KeepProgram bool
	// Quiet is how long FTP must have left the board alone before the
	// console takes it back: a transfer gives the board up between its
	// segments, and must not have to take it from the console for each.
	// Default 300 ms.
	Quiet time.Duration
}

// backlogSize is how much of the board's output is kept while nobody is
// attached, for the next person.
const backlogSize = 4 << 10

// maxInput bounds what a person typed that waits for the board; a person
// typing more waits (the terminal's reads stop) until the board takes it.
const maxInput = 64 << 10

// startWait bounds the wait for the board to show it started what a
// request asked for: the reboot line of a soft reset, the echo of the line
// that runs a file.
const startWait = 10 * time.Second

// endWait is how long a request waits for a program it started to end
// before it answers that the program runs: a short one has then printed
// everything, and the FTP operation the client sends next (curl lists a
// folder after its -Q commands) does not cut it short.
const endWait = 2 * time.Second

// Console is one board's console. Its methods are safe for concurrent use.
type Console struct {
	board Board
	opts  Options
	log   *slog.Logger

	wake chan struct{} // cap 1: a client came or went, a request arrived

	mu       sync.Mutex
	client   *client
	greet    bool   // the client has not been greeted yet
	stopped  bool   // Serve returned
	holding  bool   // the console has the board
	lastOp   string // the operation the console last gave the board to
	toldWait bool   // the client was told its typing waits for FTP
	input    []byte // typed, not yet sent to the board
	room     chan struct{}
	scr      screen
	backlog  []byte // the board's output while no client was attached
	after    after  // what the person is shown once the console has the board back
	requests []*request
	prompted chan struct{} // cap 1: the board printed its prompt
}

// after is what the person is shown when the console takes the board
// back: a notice, and the line they were typing, typed again.
type after struct {
	notice string
	retype []byte
	banner bool // the board is another (it came back): show its banner
}

// request is a SITE command waiting for the board.
type request struct {
	ctx   context.Context
	op    string // "SITE RESET", for the person
	path  string // the file to run; "" for a soft reset
	reply chan outcome
}

// outcome is how a request went.
type outcome struct {
	ended bool // the program has ended
	err   error
}

// New returns the console of board; Serve runs it.
func New(board Board, opts Options) *Console {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Quiet <= 0 {
		opts.Quiet = 300 * time.Millisecond
	}
	return &Console{board: board, opts: opts, log: opts.Logger,
		wake: make(chan struct{}, 1), room: make(chan struct{}, 1), prompted: make(chan struct{}, 1)}
}

// Name is the board's name, as Options gave it.
func (c *Console) Name() string { return c.opts.Name }

func (c *Console) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Attach gives the console to a person on t until t fails or ctx is done;
// who names them to others. It returns ErrInUse, saying who holds the
// console, when someone else does: t is then left open for the caller to
// tell them.
func (c *Console) Attach(ctx context.Context, t Terminal, who string) error {
	cl, err := c.attach(t, who)
	if err != nil {
		return err
	}
	c.log.Info("console attached", "client", who)
	// The person's keystrokes, for the board.
	errc := make(chan error, 1)
	go func() { errc <- c.read(cl) }()
	select {
	case <-ctx.Done():
		cl.close()
		<-errc
	case err = <-errc:
		cl.close()
	}
	c.detach(cl)
	c.log.Info("console detached", "client", who, "err", err)
	return nil
}

func (c *Console) attach(t Terminal, who string) (*client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, ErrStopped
	}
	if c.client != nil {
		return nil, fmt.Errorf("%w: the console of %s is in use by %s", ErrInUse, c.opts.Name, c.client)
	}
	cl := newClient(t, who)
	c.client, c.greet, c.toldWait = cl, true, false
	c.input = nil
	c.signal()
	return cl, nil
}

func (c *Console) detach(cl *client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != cl {
		return
	}
	c.client = nil
	c.input = nil // the keystrokes of someone gone
	c.signal()
}

// Holder describes who is attached, "" when nobody is.
func (c *Console) Holder() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		return ""
	}
	return c.client.String()
}

// read passes what the person types to the input queue until their
// terminal fails.
func (c *Console) read(cl *client) error {
	buf := make([]byte, 512)
	for {
		n, err := cl.t.Read(buf)
		if n > 0 {
			if !c.push(cl, buf[:n]) {
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}

// push queues typed bytes for the board, waiting while the queue is full;
// false once cl is no longer attached.
func (c *Console) push(cl *client, p []byte) bool {
	for {
		c.mu.Lock()
		if c.client != cl {
			c.mu.Unlock()
			return false
		}
		if len(c.input)+len(p) <= maxInput {
			c.input = append(c.input, p...)
			if !c.holding && !c.greet && !c.toldWait {
				c.toldWait = true
				op := c.lastOp
				if op == "" {
					op = "FTP"
				}
				cl.say("the board is busy with %s: what you type is sent once it is done", op)
			}
			c.mu.Unlock()
			return true
		}
		c.mu.Unlock()
		select {
		case <-c.room:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// in is Pass's source of bytes for the board.
func (c *Console) in() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.input) == 0 {
		return nil
	}
	// No more at once than the smallest receive buffer (an ESP8266's
	// 256 bytes) holds, as a serial terminal's paste would arrive.
	n := min(len(c.input), 256)
	p := bytes.Clone(c.input[:n])
	c.input = c.input[n:]
	c.scr.sent(p)
	select {
	case c.room <- struct{}{}:
	default:
	}
	return p
}

// inject puts bytes of the console's own ahead of what the person typed.
func (c *Console) inject(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.input = append(append([]byte(nil), p...), c.input...)
}

// boardOut is Pass's destination: the person, or the backlog.
type boardOut struct{ c *Console }

func (o boardOut) Write(p []byte) (int, error) {
	c := o.c
	c.mu.Lock()
	defer c.mu.Unlock()
	show, prompted := c.scr.received(p)
	// Under c.mu, as welcome greets: a person not greeted yet gets what
	// came before that with the greeting, never ahead of it.
	if cl := c.client; cl != nil && !c.greet {
		cl.send(show)
	} else {
		c.keep(show)
	}
	if prompted {
		select {
		case c.prompted <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// keep adds to the backlog; c.mu is held.
func (c *Console) keep(p []byte) {
	c.backlog = append(c.backlog, p...)
	if len(c.backlog) > backlogSize {
		c.backlog = append([]byte(nil), c.backlog[len(c.backlog)-backlogSize:]...)
	}
}

// say tells the person attached, or the next one.
func (c *Console) say(format string, args ...any) {
	c.mu.Lock()
	cl := c.client
	if cl == nil {
		c.keep([]byte(notice(fmt.Sprintf(format, args...))))
	}
	c.mu.Unlock()
	if cl != nil {
		cl.say(format, args...)
	}
}

// SoftReset restarts the board's interpreter from the friendly REPL, as
// Ctrl-D at its prompt does, once it has the board (interrupting whatever
// ran): boot.py and main.py run, and their output goes to the console.
// op names the request to the person ("SITE RESET"). It returns once the
// board said it restarted (ErrNoStart when it did not) and main.py ended
// or ran for a moment, with a few words on how it went and where the
// output goes.
func (c *Console) SoftReset(ctx context.Context, op string) (string, error) {
	return c.ask(ctx, &request{ctx: ctx, op: op, reply: make(chan outcome, 1)})
}

// RunFile runs the file at path on the board (a path as boardfs names
// it), in the friendly REPL, once it has the board (interrupting whatever
// ran); its output goes to the console. op names the request to the
// person. It returns as SoftReset does.
func (c *Console) RunFile(ctx context.Context, path, op string) (string, error) {
	return c.ask(ctx, &request{ctx: ctx, op: op, path: path, reply: make(chan outcome, 1)})
}

func (c *Console) ask(ctx context.Context, r *request) (string, error) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return "", ErrStopped
	}
	c.requests = append(c.requests, r)
	c.mu.Unlock()
	c.signal()
	var o outcome
	select {
	case o = <-r.reply:
		if o.err != nil {
			return "", o.err
		}
	case <-ctx.Done():
		return "", fmt.Errorf("console: waiting for the board: %w", context.Cause(ctx))
	}
	state := "it runs"
	if o.ended {
		state = "it has ended"
	}
	if c.Holder() != "" {
		// Not who: an FTP user need not learn the console's address.
		return state + "; its output is on the console, where someone is attached", nil
	}
	return state + "; nobody is attached to the console: its output is kept for the next one (the last 4 KB)", nil
}

// nextRequest takes the oldest request still awaited.
func (c *Console) nextRequest() *request {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.requests) > 0 {
		r := c.requests[0]
		c.requests = c.requests[1:]
		if r.ctx.Err() == nil {
			return r
		}
	}
	return nil
}

// wantsBoard reports whether someone needs the board: a person, or a
// request.
func (c *Console) wantsBoard() (cl *client, requests bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client, len(c.requests) > 0
}

// Serve runs the console until ctx is done: it takes the board whenever a
// person is attached or a request waits, and gives it up as the package
// comment says. It leaves a program running on the board alone when it
// stops.
func (c *Console) Serve(ctx context.Context) {
	defer c.stop()
	toldAway, toldBusy := false, false
	var away *client
	for ctx.Err() == nil {
		cl, requests := c.wantsBoard()
		if cl != away {
			away, toldAway, toldBusy = cl, false, false
		}
		if cl == nil && !requests {
			select {
			case <-ctx.Done():
			case <-c.wake:
			}
			continue
		}
		fsys, err := c.board.FS()
		if err != nil {
			for r := c.nextRequest(); r != nil; r = c.nextRequest() {
				r.reply <- outcome{err: fmt.Errorf("console: %w", err)}
			}
			if cl != nil && !toldAway {
				toldAway = true
				cl.say("the board is not connected: the console starts when it is back")
			}
			c.pause(ctx, 500*time.Millisecond)
			continue
		}
		quiet := c.opts.Quiet
		if requests {
			quiet = 0
		}
		hctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		h, err := fsys.Hold(hctx, quiet)
		cancel()
		if err != nil {
			c.mu.Lock()
			greeting := c.greet
			c.mu.Unlock()
			if op := fsys.Using(); op != "" && cl != nil && greeting && !toldBusy {
				toldBusy = true
				cl.say("the board is busy with %s: the console starts once it is done", op)
			}
			continue
		}
		if toldAway {
			c.say("the board is back")
		}
		toldAway, toldBusy = false, false
		// A board that went away was said to, in the session.
		toldAway = c.session(ctx, fsys, h)
	}
}

func (c *Console) stop() {
	c.mu.Lock()
	c.stopped = true
	cl := c.client
	reqs := c.requests
	c.requests = nil
	c.mu.Unlock()
	for _, r := range reqs {
		r.reply <- outcome{err: ErrStopped}
	}
	if cl != nil {
		cl.say("ftpbridge is stopping")
		cl.close()
	}
}

// pause waits d, or less when something changes.
func (c *Console) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-c.wake:
	case <-t.C:
	}
}

// session holds the board: it takes the board to the friendly prompt and
// passes bytes until an operation needs the board, nobody needs it any
// more, the board goes away (gone, and the person was told), or ctx is
// done.
func (c *Console) session(ctx context.Context, fsys *boardfs.FS, h *boardfs.Hold) (gone bool) {
	conn := h.Conn()
	c.setHolding(true)
	defer func() {
		c.setHolding(false)
		h.Release()
	}()
	banner, err := conn.Friendly(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("console: cannot take the board to its friendly prompt", "err", err)
			c.say("the board does not give its prompt (%v): trying again", err)
			c.pause(ctx, time.Second)
		}
		return false
	}
	c.welcome(fsys, banner)
	fresh := true // the board sits at the prompt Friendly gave

	var kept string // the operation waiting for a program (KeepProgram)
	for {
		if r := c.nextRequest(); r != nil {
			if !c.serveRequest(ctx, conn, r, fresh) {
				return false
			}
			fresh = false
			continue
		}
		fresh = false
		// A prompt seen before now says nothing of what comes.
		select {
		case <-c.prompted:
		default:
		}
		pctx, stopPass := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- conn.Pass(pctx, boardOut{c}, c.in) }()
		stop := func() error {
			stopPass()
			return <-done
		}
		for next := false; !next; {
			select {
			case <-ctx.Done():
				_ = stop()
				return false
			case err := <-done:
				stopPass()
				c.log.Warn("console: the board's line failed", "err", err)
				c.say("the board is disconnected: the console comes back with it")
				c.mu.Lock()
				c.after = after{banner: true}
				c.mu.Unlock()
				return true
			case op := <-h.Wanted():
				if c.opts.KeepProgram && c.state() == busy {
					if kept == "" {
						c.log.Info("console: an operation waits for the program on the console", "op", op)
					}
					kept = op
					h.Keep("a program runs on the console of " + c.opts.Name)
					continue
				}
				_ = stop()
				c.yield(ctx, conn, op)
				return false
			case <-c.prompted:
				if kept != "" && h.Waiting() {
					_ = stop()
					c.yield(ctx, conn, kept)
					return false
				}
				kept = ""
				h.Keep("")
				if cl, requests := c.wantsBoard(); cl == nil && !requests {
					// A program ran with nobody attached, and ended.
					_ = stop()
					if c.state() == idle && !c.typedAhead() {
						c.abandon(ctx, conn, idle)
						return false
					}
					next = true
				}
			case <-c.wake:
				cl, requests := c.wantsBoard()
				switch {
				case requests:
					_ = stop()
					next = true
				case cl == nil && c.state() != busy:
					// The person left the board at its prompt: it is
					// FTP's again, with any line begun cleared.
					_ = stop()
					c.abandon(ctx, conn, c.state())
					return false
				case cl != nil:
					c.welcome(fsys, nil)
				}
			}
		}
	}
}

func (c *Console) setHolding(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = on
	if on {
		c.toldWait = false
	}
}

// typedAhead reports whether bytes wait to be sent to the board.
func (c *Console) typedAhead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.input) > 0
}

func (c *Console) state() replState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scr.state()
}

// abandon takes the board back to raw mode before it is given up: what a
// person half typed is cleared, never run by the next operation's way
// into raw mode, and the operation finds the board ready. A board that
// does not answer is left to that operation, which tries harder.
func (c *Console) abandon(ctx context.Context, conn *repl.Conn, st replState) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := conn.Raw(actx, st != busy); err != nil {
		c.log.Debug("console: taking the board back to raw mode", "err", err)
	}
}

// yield gives the board to the operation op, and notes what to show the
// person once the console has it back.
func (c *Console) yield(ctx context.Context, conn *repl.Conn, op string) {
	st := c.state()
	c.abandon(ctx, conn, st)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastOp = op
	c.after = after{}
	switch st {
	case busy:
		c.after.notice = "interrupted for FTP: " + op
		if c.client == nil {
			// A program nobody watched: the next person reads why it
			// stopped after what it printed.
			c.keep([]byte("\r\n" + notice(c.after.notice)))
		}
	case typing:
		c.after.retype = bytes.Clone(c.scr.typed)
	}
	c.log.Debug("console: board given to an operation", "op", op, "state", st)
}

// welcome shows the person the board, now at its friendly prompt after
// banner (nil: the board is where the console already had it): a new
// person gets a greeting and what happened while nobody was attached; a
// person who waited for FTP gets what the console noted then.
func (c *Console) welcome(fsys *boardfs.FS, banner []byte) {
	// c.mu is held throughout, so that the board's output (boardOut)
	// comes before the greeting or after it, not amid it.
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.client
	if banner != nil {
		c.scr.reset()
	}
	if cl == nil || (banner == nil && !c.greet) {
		if cl == nil {
			c.after = after{}
		}
		return
	}
	greet, a, backlog := c.greet, c.after, c.backlog
	c.greet, c.after, c.backlog = false, after{}, nil
	if !greet && a.retype != nil {
		c.input = append(append([]byte(nil), a.retype...), c.input...)
	}
	told := c.toldWait
	st, typed, begun := c.scr.state(), bytes.Clone(c.scr.typed), c.scr.lineBegun()

	if greet {
		how := "an FTP operation that needs the board interrupts a program running here"
		if c.opts.KeepProgram {
			how = "FTP waits for a program running here to end"
		}
		cl.say("console of %s, %s; %s", c.opts.Name, fsys.Board(), how)
		if len(backlog) > 0 {
			cl.say("the board printed this while nobody was attached:")
			cl.send(backlog)
			cl.say("end of what the board printed")
		}
		switch {
		case banner != nil:
			cl.send(bytes.TrimLeft(banner, "\r\n"))
		case st == busy:
			cl.say("a program runs: Ctrl-C stops it")
			// What the board prints next continues this line: the
			// prompt after a program's last output, too, may be on
			// its way half printed.
			cl.send(begun)
		default:
			// The board sits at the prompt someone who just left was
			// shown, perhaps with a line they began: show it as it is.
			cl.send(prompt)
			cl.send(typed)
		}
		return
	}
	switch {
	case a.banner:
		cl.send(bytes.TrimLeft(banner, "\r\n"))
	case a.notice != "":
		cl.say("%s", a.notice)
		cl.send(prompt)
	case a.retype != nil && !told && !cl.atLineStart():
		// The line as it was: erased, and drawn again as the board
		// echoes it.
		cl.send([]byte("\r\x1b[K"))
		cl.send(prompt)
	case a.retype != nil, told:
		if !cl.atLineStart() {
			cl.send([]byte("\r\n"))
		}
		cl.send(prompt)
	}
}

// serveRequest runs a SITE request: the board is taken to a fresh
// friendly prompt (interrupting whatever ran) unless atPrompt says it is
// there, the person is told, and the request's keys go to the board ahead
// of anything typed. false ends the session.
func (c *Console) serveRequest(ctx context.Context, conn *repl.Conn, r *request, atPrompt bool) bool {
	if !atPrompt {
		rctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(r.ctx, cancel)
		_, err := conn.Friendly(rctx)
		stop()
		cancel()
		if err != nil {
			r.reply <- outcome{err: fmt.Errorf("console: taking the board to its prompt: %w", err)}
			return false
		}
	}
	info := c.board.Info()
	c.mu.Lock()
	c.scr.reset()
	c.after = after{}
	cl := c.client
	c.mu.Unlock()
	c.say("%s", r.op)
	if cl != nil && !cl.atLineStart() {
		cl.send([]byte("\r\n"))
	}
	// The keys: Ctrl-D at the empty prompt, or the line that runs the
	// file; the board's echo of them is not shown, and what shows that
	// it started is its reboot line, or the end of that echo.
	keys, marker := []byte{0x04}, []byte("soft reboot")
	echo := []byte("\r\n")
	if r.path != "" {
		line := runLine(r.path, info)
		keys, echo = []byte(line+"\r"), []byte(line+"\r\n")
		marker = echo
	}
	c.mu.Lock()
	seen, ended := c.scr.watch(marker)
	c.scr.mute = echo
	c.mu.Unlock()
	c.inject(keys)
	go func() {
		t := time.NewTimer(startWait)
		defer t.Stop()
		select {
		case <-seen:
		case <-t.C:
			r.reply <- outcome{err: fmt.Errorf("%w within %v", ErrNoStart, startWait)}
			return
		case <-ctx.Done():
			r.reply <- outcome{err: ErrStopped}
			return
		}
		t.Reset(endWait)
		select {
		case <-ended:
			r.reply <- outcome{ended: true}
		case <-t.C:
			r.reply <- outcome{}
		case <-ctx.Done():
			r.reply <- outcome{err: ErrStopped}
		}
	}()
	return true
}

// runLine is the line typed at the friendly prompt to run the file at p:
// in the REPL's globals, as mpremote run does, so that what it defines
// can be looked at afterwards.
func runLine(p string, info boardfs.Info) string {
	if info.Platform == "microbit" {
		p = strings.TrimPrefix(p, "/") // a flat filesystem: names only
	}
	return "exec(open(" + pyString(p) + ").read())"
}

// pyString quotes s as a Python string literal that every MicroPython
// reads the same: plain characters as they are, any other byte as \x.. in
// a bytes literal decoded as UTF-8.
func pyString(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			plain = false
			break
		}
	}
	if plain {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.WriteString("str(b'")
	for i := 0; i < len(s); i++ {
		if safeByte(s[i]) {
			b.WriteByte(s[i])
		} else {
			fmt.Fprintf(&b, `\x%02x`, s[i])
		}
	}
	b.WriteString("','utf8')")
	return b.String()
}

func safeByte(b byte) bool {
	return b >= 0x20 && b < 0x7f && b != '\'' && b != '\\'
}
