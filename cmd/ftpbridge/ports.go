package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// serialPort is one serial port as the system describes it. VID and PID
// are lowercase hex, empty when unknown (not USB, or names-only listing).
type serialPort struct {
	Name    string
	VID     string
	PID     string
	Product string
	Serial  string
}

// family guesses what board sits behind a port; "" when nothing fits.
// The ids are those of the USB-UARTs on common boards and MicroPython's own
// (ports/rp2, ports/stm32 usbd_conf.h); Espressif's native USB is any
// product of vendor 303a.
func (p serialPort) family() string {
	if p.VID == "" {
		return nameFamily(p.Name)
	}
	switch p.VID + ":" + p.PID {
	case "10c4:ea60":
		return "CP210x USB-UART (ESP32/ESP8266 boards)"
	case "1a86:7523":
		return "CH340 USB-UART (ESP boards)"
	case "1a86:55d4":
		return "CH9102 USB-UART (ESP32 boards)"
	case "0403:6001", "0403:6015":
		return "FTDI USB-UART"
	case "2e8a:0005":
		return "MicroPython rp2 (Raspberry Pi Pico)"
	case "f055:9800":
		return "MicroPython pyboard"
	case "0d28:0204":
		return "BBC micro:bit (DAPLink)"
	}
	if p.VID == "303a" {
		return "Espressif native USB (ESP32-S2/S3/C3/C6)"
	}
	return ""
}

// speaksUSB says whether the board behind p is itself the USB device, so
// that its CDC line holds the host back (NAKs) while its input buffer is
// full, and why. USB-UART bridges and ports without USB ids (a pty, a
// plain tty, a names-only listing) do not.
func (p serialPort) speaksUSB() (bool, string) {
	id := p.VID + ":" + p.PID
	switch {
	case p.VID == "":
		return false, "no USB ids: a UART, or a port the system does not describe"
	case id == "2e8a:0005":
		return true, id + " MicroPython rp2 speaks USB itself"
	case p.VID == "f055":
		return true, id + " MicroPython pyboard speaks USB itself"
	case id == "303a:1001":
		// MicroPython's handler for the ESP32-C3/S3's USB-Serial/JTAG unit
		// (ports/esp32/usb_serial_jtag.c) reads only what fits its ring,
		// and the rest may wait for the next packet: not a held-back line.
		return false, id + " ESP32-C3/S3 USB-Serial/JTAG: MicroPython reads only what fits its ring"
	case p.VID == "303a":
		return true, id + " Espressif native USB (TinyUSB) speaks USB itself"
	}
	if f := p.family(); f != "" {
		return false, id + " " + f + ": the board's UART behind a USB bridge"
	}
	return false, id + " is no board known to speak USB itself"
}

// nameFamily guesses from the device name alone, for listings without USB
// ids (macOS builds without cgo): the names macOS gives the drivers of the
// usual USB-UARTs and of native-USB boards.
func nameFamily(name string) string {
	base := filepath.Base(name)
	switch {
	case strings.HasPrefix(base, "cu.SLAB_USBtoUART"):
		return "CP210x USB-UART (ESP32/ESP8266 boards)"
	case strings.HasPrefix(base, "cu.wchusbserial"):
		return "CH340/CH9102 USB-UART (ESP boards)"
	case strings.HasPrefix(base, "cu.usbserial"):
		return "USB-UART"
	case strings.HasPrefix(base, "cu.usbmodem"):
		return "native USB board (rp2, pyboard, ESP32-S2/S3, micro:bit)"
	}
	return ""
}

// findBoard picks the one port that looks like a MicroPython board.
func findBoard(ports []serialPort) (serialPort, error) {
	var found []serialPort
	for _, p := range ports {
		if p.family() != "" {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return serialPort{}, fmt.Errorf("no MicroPython board found: plug one in, or name its port (ftpbridge /dev/ttyUSB0); `ftpbridge ports` lists the %d serial ports seen", len(ports))
	case 1:
		return found[0], nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d boards found; say which one (ftpbridge PORT):", len(found))
	for _, p := range found {
		fmt.Fprintf(&b, "\n  %s\t%s", p.Name, describePort(p))
	}
	return serialPort{}, usagef("%s", b.String())
}

// describePort says in a few words what a port is.
func describePort(p serialPort) string {
	parts := []string{}
	if f := p.family(); f != "" {
		parts = append(parts, f)
	}
	if p.Product != "" {
		parts = append(parts, p.Product)
	}
	if p.VID != "" {
		parts = append(parts, p.VID+":"+p.PID)
	}
	if len(parts) == 0 {
		return "unknown device"
	}
	return strings.Join(parts, ", ")
}

func newPortsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:          "ports",
		Short:        "List serial ports, their USB ids and the boards they look like",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ports, err := a.listPorts()
			if err != nil {
				return fmt.Errorf("listing serial ports: %w", err)
			}
			return printPorts(cmd, ports)
		},
	}
}

func printPorts(cmd *cobra.Command, ports []serialPort) error {
	out := cmd.OutOrStdout()
	if len(ports) == 0 {
		_, err := fmt.Fprintln(out, "no serial ports found")
		return err
	}
	ports = slices.Clone(ports)
	slices.SortFunc(ports, func(x, y serialPort) int { return strings.Compare(x.Name, y.Name) })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tUSB ID\tPRODUCT\tBOARD")
	for _, p := range ports {
		id := "-"
		if p.VID != "" {
			id = p.VID + ":" + p.PID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, id, orDash(p.Product), orDash(p.family()))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
