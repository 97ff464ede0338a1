package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/filecache"
	"github.com/ftpbridge/ftpbridge/ftpdriver"
)

// envPrefix: every flag can also come from FTPBRIDGE_<FLAG> (dashes become
// underscores), for service managers and containers. A flag on the command
// line wins.
const envPrefix = "FTPBRIDGE_"

func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets each flag of cmd the command line left alone from its
// environment variable.
func applyEnv(cmd *cobra.Command, lookup func(string) (string, bool)) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		v, ok := lookup(envName(f.Name))
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
		}
	})
	if len(errs) > 0 {
		return usagef("%v", errs[0])
	}
	return nil
}

// lineFlags say how to reach the board's serial line.
type lineFlags struct {
	baud       int
	busyWait   time.Duration
	noSetClock bool
	cacheDir   string
	cacheSize  int64
	spoolDir   string
	mode       lineMode
}

func (f *lineFlags) AddToCommand(cmd *cobra.Command) {
	cmd.Flags().IntVar(&f.baud, "baud", 115200, "serial line rate (native-USB boards ignore it)")
	cmd.Flags().DurationVar(&f.busyWait, "busy-wait", 5*time.Second,
		"how long a request waits for the board while another one uses it, before the client is told to try again")
	cmd.Flags().BoolVar(&f.noSetClock, "no-set-clock", false,
		"leave the board's clock alone (by default a clock more than a minute off is set to the host's time, in UTC)")
	cmd.Flags().StringVar(&f.cacheDir, "cache-dir", "",
		"where copies of the files moved are kept, so unchanged files need not cross the line again (default: the user's cache directory)")
	cmd.Flags().Int64Var(&f.cacheSize, "cache-size", 64<<20, "bytes of file copies kept; 0 keeps none")
	cmd.Flags().StringVar(&f.spoolDir, "spool-dir", "",
		"where uploads wait until the board has them; what a stop or a crash leaves there is written the next time the board is served (default: spool/ in the cache directory)")
	f.mode = lineAuto
	cmd.Flags().Var(&f.mode, "line", "auto, uart or usb: usb sends uploads without waiting for the board, for boards that speak USB themselves and so hold the host back while busy; "+
		"auto picks usb by the port's USB id (MicroPython rp2 and pyboard, Espressif native USB except its USB-Serial/JTAG unit), uart otherwise")
}

// lineMode is --line: whether the line holds the host back while the
// board is busy (usb) or may drop what the board's input ring cannot hold
// (uart); auto decides by the port's USB ids.
type lineMode string

const (
	lineAuto lineMode = "auto"
	lineUART lineMode = "uart"
	lineUSB  lineMode = "usb"
)

func (m *lineMode) String() string { return string(*m) }

func (m *lineMode) Set(s string) error {
	switch v := lineMode(s); v {
	case lineAuto, lineUART, lineUSB:
		*m = v
		return nil
	}
	return fmt.Errorf("want auto, uart or usb")
}

func (m *lineMode) Type() string { return "mode" }

// lineFor is the line to the board on p, uart or usb, and why: --line, or
// for auto what p's USB ids say.
func (f *lineFlags) lineFor(p serialPort) (lineMode, string) {
	switch f.mode {
	case lineUSB, lineUART:
		return f.mode, "--line " + string(f.mode)
	}
	usb, why := p.speaksUSB()
	if usb {
		return lineUSB, why
	}
	return lineUART, why
}

// cacheDirPath is --cache-dir, or ftpbridge/ in the user's cache
// directory; "" when there is none.
func (f *lineFlags) cacheDirPath() string {
	if f.cacheDir != "" {
		return f.cacheDir
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(base, "ftpbridge")
}

// spoolPath is --spool-dir, or spool/ beside the file copies; "" when
// there is no cache directory.
func (f *lineFlags) spoolPath() string {
	if f.spoolDir != "" {
		return f.spoolDir
	}
	if dir := f.cacheDirPath(); dir != "" {
		return filepath.Join(dir, "spool")
	}
	return ""
}

// boardOptions is how the flags shape boardfs: the clock, the cache, and
// the line (from lineFor).
func (f *lineFlags) boardOptions(log *slog.Logger, port string, line lineMode) boardfs.Options {
	opts := boardfs.Options{Logger: log, BusyWait: f.busyWait, Name: port, HeldBack: line == lineUSB}
	if !f.noSetClock {
		opts.Clock = time.Now
	}
	if f.cacheSize > 0 {
		if dir := f.cacheDirPath(); dir != "" {
			if c, err := filecache.Open(dir, f.cacheSize); err == nil {
				opts.Cache = c
			} else {
				log.Warn("no cache of file copies: every download moves the whole file", "err", err)
			}
		}
	}
	return opts
}

// serverFlags say how FTP clients reach the bridge and what they may do.
type serverFlags struct {
	listen       string
	user         string
	password     string
	readOnly     bool
	passivePorts portRangeValue
	tlsCert      string
	tlsKey       string
	maxSessions  int
	idleTimeout  time.Duration
	loginTimeout time.Duration
	maxFails     int
	lockout      time.Duration
	uploadWait   time.Duration
}

func (f *serverFlags) AddToCommand(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:2121", "address to serve FTP on")
	fl.StringVar(&f.user, "user", "", "user name clients must log in with (with --password; both unset: anyone may log in)")
	fl.StringVar(&f.password, "password", "", "password clients must log in with (FTPBRIDGE_PASSWORD keeps it out of the process list)")
	fl.BoolVar(&f.readOnly, "read-only", false, "refuse every change to the board's files")
	fl.Var(&f.passivePorts, "passive-ports", "port range for passive data connections, e.g. 50000-50100 (default: any)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate for explicit FTPS (AUTH TLS), with --tls-key")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	fl.IntVar(&f.maxSessions, "max-sessions", 32, "FTP connections served at once; more are answered 421")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 15*time.Minute,
		"disconnect a client that sends no command for this long; a data connection that moves no byte for this long fails its transfer")
	fl.DurationVar(&f.loginTimeout, "login-timeout", time.Minute, "disconnect a client that has not logged in this long after connecting")
	fl.IntVar(&f.maxFails, "max-login-fails", 3,
		"failed logins in a row after which the client's address is refused for --login-lockout (each failure is answered after 1s)")
	fl.DurationVar(&f.lockout, "login-lockout", time.Minute,
		"how long an address is refused after --max-login-fails failures; doubles with each further round, up to an hour")
	fl.DurationVar(&f.uploadWait, "upload-wait", 3*time.Second,
		"how long the end of an upload waits for the board before answering success and writing the rest in the background")
}

// check refuses combinations that cannot work or would be unsafe.
func (f *serverFlags) check() error {
	if (f.user == "") != (f.password == "") {
		return usagef("--user and --password go together: give both, or neither for anonymous access")
	}
	if f.maxSessions < 1 {
		return usagef("--max-sessions %d: at least 1", f.maxSessions)
	}
	if f.idleTimeout < time.Second {
		return usagef("--idle-timeout %v: at least 1s", f.idleTimeout)
	}
	if f.loginTimeout < time.Second {
		return usagef("--login-timeout %v: at least 1s", f.loginTimeout)
	}
	if f.maxFails < 1 {
		return usagef("--max-login-fails %d: at least 1", f.maxFails)
	}
	if f.lockout < time.Second {
		return usagef("--login-lockout %v: at least 1s", f.lockout)
	}
	if f.uploadWait <= 0 {
		return usagef("--upload-wait %v: more than 0 (uploads the board has not taken by then are written in the background)", f.uploadWait)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	host, _, err := net.SplitHostPort(f.listen)
	if err != nil {
		return usagef("--listen %q: %v", f.listen, err)
	}
	if f.user == "" && !isLoopback(host) {
		return usagef("refusing to listen on %s without --user and --password: "+
			"anyone who can reach that address could read, change and delete the board's files. "+
			"Set credentials (and --tls-cert/--tls-key, since plain FTP sends them in clear), "+
			"or listen on 127.0.0.1", f.listen)
	}
	return nil
}

// isLoopback reports whether host only ever means this machine. An empty
// host means every interface, and a name other than localhost could
// resolve anywhere.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// portRangeValue is --passive-ports as a pflag.Value: "50000-50100".
type portRangeValue ftpdriver.PortRange

func (v *portRangeValue) String() string {
	if ftpdriver.PortRange(*v).IsZero() {
		return ""
	}
	return fmt.Sprintf("%d-%d", v.Start, v.End)
}

func (v *portRangeValue) Set(s string) error {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return fmt.Errorf("want FIRST-LAST, e.g. 50000-50100")
	}
	start, err1 := strconv.Atoi(strings.TrimSpace(lo))
	end, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || start < 1 || end > 65535 || start > end {
		return fmt.Errorf("want FIRST-LAST with 1 <= FIRST <= LAST <= 65535")
	}
	*v = portRangeValue{Start: start, End: end}
	return nil
}

func (v *portRangeValue) Type() string { return "range" }
