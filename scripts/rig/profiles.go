package rig

import "time"

// spec is what the rig models of one kind of board; the sources of each
// figure are in scripts/vmboard/PROTOCOL.md.
type spec struct {
	// uartRing is the firmware's receive ring for the REPL's UART. A
	// MicroPython ring of N bytes holds N-1 (py/ringbuf.h keeps one slot
	// free to tell full from empty).
	uartRing int
	// cdcBuffer is what a native-USB build buffers before its OUT endpoint
	// NAKs; 0 when the board has no native USB.
	cdcBuffer int
	// heapFree is what gc.mem_free() says after boot on the real board.
	heapFree int
	// tick, if set, is how often a firmware waiting for input on its UART
	// looks at its ring: the UART interrupt handler does not wake it.
	tick time.Duration
}

var specs = map[Profile]spec{
	// ports/esp32/mphalport.c: stdin_ringbuf_array[260]. The UART
	// interrupt handler (ports/esp32/uart.c) stores bytes without waking
	// the MicroPython task, which waits in ulTaskNotifyTake(pdFALSE, 1): one
	// FreeRTOS tick, 10 ms at ESP-IDF's default CONFIG_FREERTOS_HZ=100. On
	// the S2/S3's native USB, TinyUSB's CDC FIFO (CFG_TUD_CDC_RX_BUFSIZE,
	// 256 at full speed, shared/tinyusb/tusb_config.h) sits before the
	// same ring.
	ESP32: {uartRing: 260, cdcBuffer: 256 + 259, heapFree: 100 * 1024, tick: 10 * time.Millisecond},
	// ports/esp8266/esp_mphal.c: stdin_ringbuf_array[256]; the firmware
	// polls its ring in a busy loop. No native USB.
	ESP8266: {uartRing: 256, heapFree: 30 * 1024},
	// A Pyboard whose REPL is on a UART: ports/stm32/main.c,
	// MICROPY_HW_UART_REPL_RXBUF 260. Its own USB stack buffers
	// USBD_CDC_RX_DATA_SIZE, 1024 bytes (ports/stm32/usbd_cdc_interface.h).
	// The firmware sleeps in WFI, which any interrupt ends.
	Pyboard: {uartRing: 260, cdcBuffer: 1024, heapFree: 100 * 1024},
}

// RealHeap returns the free heap the profile's board reports after boot
// (gc.mem_free()), for Config.Heap; 0 for the micro:bit, whose real firmware
// has its own.
func RealHeap(p Profile) int { return specs[p].heapFree }
