// Command boardsim runs one emulated MicroPython board on a pseudo-terminal
// until SIGINT or SIGTERM. It prints "device: PATH" (the serial device to
// open) and, for boards whose filesystem is a host directory, "root: DIR".
// SIGUSR1 resets the board. Run it as scripts/boardsim from the repo root.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

func main() {
	os.Exit(run())
}

func run() int {
	var cfg rig.Config
	var profile string
	var replug float64
	var verbose bool
	heap := -1
	flag.StringVar(&profile, "profile", "esp32", "board: esp32, esp8266, pyboard or microbit")
	flag.StringVar(&cfg.Root, "root", "", "host directory that is the board's filesystem (default: a fresh temporary directory)")
	flag.StringVar(&cfg.Link, "link", "", "stable device path to create (default: in a fresh temporary directory)")
	flag.IntVar(&cfg.Baud, "baud", 0, "line rate in baud, 8N1; bytes beyond the board's receive ring are lost while it is busy (0: unthrottled and lossless)")
	flag.DurationVar(&cfg.Latency, "latency", 0, "a USB-serial adapter's latency timer, e.g. 16ms (FTDI default) or 2ms (CP210x); 0: no adapter")
	flag.BoolVar(&cfg.USBCDC, "usb-cdc", false, "native USB line: 64-byte packets each 1 ms frame, flow-controlled (not with --baud or --latency)")
	flag.Int64Var(&cfg.StallAfter, "stall-after", 0, "go silent once the board has sent N bytes (with --stall-for)")
	flag.DurationVar(&cfg.StallFor, "stall-for", 0, "how long the board stays silent with the line open (with --stall-after)")
	flag.IntVar(&heap, "heap", -1, "free heap after boot in bytes, MemoryError beyond (default: the profile's real board; 0: the VM's own, about 128 MB)")
	flag.BoolVar(&cfg.Flash, "flash", false, "filesystem writes take a SPI flash's program and erase times")
	flag.BoolVar(&cfg.CPU, "cpu", false, "the board's Python takes its chip's time (compile, helper loops, the ESP32's 10 ms input tick)")
	flag.IntVar(&cfg.ClockMHz, "clock", 0, "with --cpu: the chip's clock in MHz, Python's speed following it (default: the board's own)")
	flag.BoolVar(&cfg.Running, "running", false, "start with a program running that prints every 100 ms until Ctrl-C")
	flag.Int64Var(&cfg.CutAfter, "cut-after", 0, "cut the line after this many bytes have crossed it, both ways counted")
	flag.Float64Var(&replug, "replug-after", 0, "bring a cut line back after this many seconds, as a freshly booted board")
	flag.StringVar(&cfg.ReplugAt, "replug-at", "", "with --replug-after: bring the board back at this path instead (as ttyACM1 after ttyACM0)")
	flag.Int64Var(&cfg.FlipAt, "flip-at", 0, "invert one bit of the N-th byte (from 1) the board sends")
	flag.StringVar(&cfg.VMBoardDir, "vmboard", "", "directory of vmboard.mjs and its node_modules (default: scripts/vmboard)")
	flag.BoolVar(&verbose, "verbose", false, "log the rig's events and the firmware's log lines on stderr")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "boardsim: unexpected argument %q\n", flag.Arg(0))
		return 2
	}
	cfg.Profile = rig.Profile(profile)
	cfg.Heap = heap
	if heap < 0 {
		cfg.Heap = rig.RealHeap(cfg.Profile)
	}
	cfg.ReplugAfter = time.Duration(replug * float64(time.Second))
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	resets := make(chan os.Signal, 1)
	signal.Notify(resets, syscall.SIGUSR1)

	board, err := rig.Start(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "boardsim: %v\n", err)
		return 1
	}
	defer board.Close()
	fmt.Printf("device: %s\n", board.Device)
	if board.Root != "" {
		fmt.Printf("root: %s\n", board.Root)
	}
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-resets:
			if err := board.Reset(); err != nil {
				fmt.Fprintf(os.Stderr, "boardsim: reset: %v\n", err)
			}
		}
	}
}
