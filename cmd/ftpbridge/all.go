package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/console"
	"github.com/ftpbridge/ftpbridge/ftpdriver"
)

const (
	// scanEvery is how often --all lists the serial ports.
	scanEvery = time.Second
	// retryEvery is how soon a port that did not answer as a MicroPython
	// board is tried again: it may be a board still booting, or a modem
	// that should not be poked every second.
	retryEvery = 10 * time.Second
	// goneAfter is how long a board's port may be missing before its
	// folder leaves "/": a reset or a quick replug keeps the folder.
	goneAfter = 5 * time.Second
)

// serveAll is ftpbridge --all: every port that looks like a MicroPython
// board is served as a folder of "/" named after the port, from when the
// board answers until a while after its port is gone, and again when the
// port is back.
func serveAll(ctx context.Context, a *app, line lineFlags, server serverFlags, cons consoleFlags, tlsConfig *tls.Config) error {
	log := a.log
	ln, err := listen(ctx, server)
	if err != nil {
		return err
	}
	defer ln.Close()
	cs, err := openConsoles(ctx, log, cons, server)
	if err != nil {
		return err
	}
	if err := cs.prepareAll(); err != nil {
		return err
	}
	cctx, stopConsoles := context.WithCancel(ctx)
	defer stopConsoles()

	f := &fleet{
		log:       log,
		line:      line,
		listPorts: a.listPorts,
		// The links outlive the server, which waits for the operations
		// still on the boards; stopping them then leaves each board in its
		// friendly REPL.
		base:        context.WithoutCancel(ctx),
		byPort:      map[string]*member{},
		byName:      map[string]*member{},
		consoles:    cs,
		consolesCtx: cctx,
	}
	cs.serveTCP(cctx, f)
	srv := ftpdriver.NewMulti(f, driverOptions(log, ln, server, line, tlsConfig))
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { f.watch(wctx); close(watched) }()
	defer func() { stopWatch(); <-watched; f.stop() }()
	// The consoles let the boards go before their links close them: a
	// program running there keeps running.
	defer func() { stopConsoles(); cs.wait() }()
	return serveFTP(ctx, a, srv, "for every MicroPython board plugged in, one folder each", server, tlsConfig)
}

// fleet is the boards --all serves, as ftpdriver.Boards: one boardfs.Link
// per port that answered as a MicroPython board.
type fleet struct {
	log       *slog.Logger
	line      lineFlags
	listPorts func() ([]serialPort, error)
	base      context.Context // the links' parent: outlives the server
	// The boards' consoles, and what stops them: before the links.
	consoles    *consoles
	consolesCtx context.Context

	mu      sync.Mutex
	byPort  map[string]*member // the board-like ports listed, by port name
	byName  map[string]*member // folder names taken: connecting or connected
	stopped bool
	running sync.WaitGroup // connects and links
	listErr bool           // listing the ports failed last time: said once
}

// member is one board-like port, as --all last saw it.
type member struct {
	port string
	name string // its folder; "" while no connect is under way or done

	// Until the first connection succeeds.
	connecting bool
	failures   int
	retryAt    time.Time

	// Once connected.
	link      *boardfs.Link
	console   *console.Console
	stopLink  context.CancelFunc
	goneSince time.Time // when its port was first seen missing; zero while listed
	hidden    bool
}

// Names lists the folders to show: the connected boards whose port is
// listed, or has not been missing for long.
func (f *fleet) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for name, m := range f.byName {
		if m.link != nil && !m.hidden {
			names = append(names, name)
		}
	}
	return names
}

// Board returns a shown board by its folder name.
func (f *fleet) Board(name string) (ftpdriver.Board, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.byName[name]
	if !ok || m.link == nil || m.hidden {
		return nil, false
	}
	return consoleBoard{Link: m.link, c: m.console}, true
}

// Console returns a shown board's console, by its folder name.
func (f *fleet) Console(name string) (*console.Console, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.byName[name]
	if !ok || m.link == nil || m.hidden {
		return nil, false
	}
	return m.console, true
}

var (
	_ ftpdriver.Boards = (*fleet)(nil)
	_ console.Consoles = (*fleet)(nil)
)

// watch lists the ports every scanEvery until ctx is done.
func (f *fleet) watch(ctx context.Context) {
	tick := time.NewTicker(scanEvery)
	defer tick.Stop()
	for {
		f.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scan starts a connection to each new board-like port, and hides or shows
// the boards whose port left or came back.
func (f *fleet) scan(ctx context.Context) {
	ports, err := f.listPorts()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		if !f.listErr {
			f.log.Warn("listing serial ports", "err", err)
		}
		f.listErr = true
		return
	}
	f.listErr = false
	if f.stopped || ctx.Err() != nil {
		return
	}
	// Sorted, so that two ports of the same base name get the same
	// folders on every run.
	slices.SortFunc(ports, func(x, y serialPort) int { return cmp.Compare(x.Name, y.Name) })
	now := time.Now()
	listed := map[string]bool{}
	for _, p := range ports {
		if p.family() == "" {
			continue
		}
		listed[p.Name] = true
		m := f.byPort[p.Name]
		if m == nil {
			m = &member{port: p.Name}
			f.byPort[p.Name] = m
		}
		if m.link == nil && !m.connecting && !now.Before(m.retryAt) {
			m.connecting = true
			m.name = f.folderFor(p.Name)
			f.byName[m.name] = m
			f.running.Add(1)
			go f.connect(ctx, m, p)
		}
	}
	for port, m := range f.byPort {
		switch {
		case listed[port]:
			if m.hidden {
				f.log.Info("board is back", "board", m.name, "port", port)
			}
			m.goneSince, m.hidden = time.Time{}, false
		case m.link == nil && !m.connecting:
			// Not a board, and gone: plugged in again, it is tried afresh.
			delete(f.byPort, port)
		case m.link != nil && !m.hidden:
			if m.goneSince.IsZero() {
				m.goneSince = now
			}
			if _, err := m.link.FS(); err != nil && now.Sub(m.goneSince) >= goneAfter {
				m.hidden = true
				f.log.Info("board is gone: its folder leaves / until its port is back", "board", m.name, "port", port)
			}
		}
	}
}

// folderFor names the folder of a port: its base name ("ttyACM0", "COM3"),
// with "-2", "-3"... when another port already has that name. f.mu is held.
func (f *fleet) folderFor(port string) string {
	base := filepath.Base(port)
	name := base
	for i := 2; f.byName[name] != nil; i++ {
		name = base + "-" + strconv.Itoa(i)
	}
	return name
}

// connect reaches the board on m's port and, if it answers, starts its
// link; a port that does not answer is said once, and tried again after
// retryEvery. p is the port as listed, for its USB ids.
func (f *fleet) connect(ctx context.Context, m *member, p serialPort) {
	defer f.running.Done()
	log := f.log.With("board", m.name, "port", m.port)
	mode, why := f.line.lineFor(p)
	// The port's path only: a board that comes back under another name is
	// a new port with its own folder, and two links never chase one
	// device.
	where := &boardPort{path: m.port, exists: deviceExists}
	link, err := boardfs.Connect(ctx, boardfs.LinkOptions{
		Dial: func(context.Context) (boardfs.Port, error) {
			return openPort(m.port, f.line.baud)
		},
		Present: func() bool { _, ok := where.locate(); return ok },
		FS:      f.line.boardOptions(log, m.port, mode),
	})

	f.mu.Lock()
	m.connecting = false
	if err != nil {
		delete(f.byName, m.name)
		m.name = ""
		m.failures++
		m.retryAt = time.Now().Add(retryEvery)
		first := m.failures == 1
		f.mu.Unlock()
		if ctx.Err() == nil {
			level := slog.LevelDebug
			if first {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "no MicroPython board answers on this port: trying again every "+retryEvery.String(), "err", err)
		}
		return
	}
	if f.stopped {
		f.mu.Unlock()
		// Stopped while connecting: leave the board as Run leaves it.
		done, cancel := context.WithCancel(context.Background())
		cancel()
		link.Run(done)
		return
	}
	lctx, stopLink := context.WithCancel(f.base)
	m.link, m.stopLink = link, stopLink
	m.console = f.consoles.start(f.consolesCtx, link, m.name, f.consoles.ptyFor(m.name, true))
	f.running.Add(1)
	f.mu.Unlock()
	log.Info("serving a board", "folder", "/"+m.name, "info", link.Info().String(), "line", mode, "reason", why)
	go func() {
		defer f.running.Done()
		link.Run(lctx)
	}()
}

// stop ends every link, leaving each board in its friendly REPL, and waits
// for them and for the connects under way.
func (f *fleet) stop() {
	f.mu.Lock()
	f.stopped = true
	var stops []context.CancelFunc
	for _, m := range f.byPort {
		if m.stopLink != nil {
			stops = append(stops, m.stopLink)
		}
	}
	f.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	f.running.Wait()
}
