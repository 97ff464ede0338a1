package repl_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// syncBuffer is what Pass writes to, read by the test meanwhile.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// typist hands Pass what a person types, one piece per call.
type typist struct {
	mu     sync.Mutex
	pieces [][]byte
}

func (ty *typist) typeIn(s string) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	ty.pieces = append(ty.pieces, []byte(s))
}

func (ty *typist) next() []byte {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	if len(ty.pieces) == 0 {
		return nil
	}
	p := ty.pieces[0]
	ty.pieces = ty.pieces[1:]
	return p
}

// The friendly REPL, handed to a person and taken back: what they type
// runs there, a program they leave running is interrupted by the next
// Exec, and the board's globals are shared with the raw REPL.
func TestFriendlyAndPassOnEveryProfile(t *testing.T) {
	for _, p := range boardtest.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{Baud: 115200})
			c := open(t, b, repl.Options{})
			ctx := ctxFor(t, 60*time.Second)
			if _, err := c.Exec(ctx, "x=41"); err != nil {
				t.Fatal(err)
			}
			banner, err := c.Friendly(ctx)
			if err != nil || !bytes.HasSuffix(banner, []byte(">>> ")) || !bytes.Contains(banner, []byte("MicroPython")) {
				t.Fatalf("Friendly = %q, %v; want the banner and the prompt", banner, err)
			}
			var out syncBuffer
			var ty typist
			pass := func(until string) {
				t.Helper()
				pctx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- c.Pass(pctx, &out, ty.next) }()
				deadline := time.Now().Add(30 * time.Second)
				for !strings.Contains(out.String(), until) && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				stop()
				if err := <-done; err != nil {
					t.Fatalf("Pass: %v", err)
				}
				if !strings.Contains(out.String(), until) {
					t.Fatalf("Pass: %q did not come; the board sent %q", until, out.String())
				}
			}
			ty.typeIn("print(x+1)\r")
			pass("42")
			// A line half typed: Raw clears it, never runs it.
			ty.typeIn("zz=1")
			pass("zz=1")
			if err := c.Raw(ctx, true); err != nil {
				t.Fatalf("Raw at the prompt: %v", err)
			}
			got, err := c.Exec(ctx, "print('zz' in globals())")
			if err != nil || trim(got) != "False" {
				t.Errorf("Exec after Raw = %q, %v; want False (the half-typed line not run)", got, err)
			}
			if _, err := c.Friendly(ctx); err != nil {
				t.Fatal(err)
			}
			// A program left running: the next Exec interrupts it.
			ty.typeIn("while True:\r")
			ty.typeIn("print('tick')\r\r")
			pass("tick")
			got, err = c.Exec(ctx, "print(x*2)")
			if err != nil || trim(got) != "82" {
				t.Errorf("Exec after a person left a program running = %q, %v; want 82", got, err)
			}
			// And Raw takes a running program back too.
			if _, err := c.Friendly(ctx); err != nil {
				t.Fatal(err)
			}
			ty.typeIn("while True:\r")
			ty.typeIn("print('tock')\r\r")
			pass("tock")
			if err := c.Raw(ctx, false); err != nil {
				t.Fatalf("Raw from a running program: %v", err)
			}
			if got, err := c.Exec(ctx, "print(x)"); err != nil || trim(got) != "41" {
				t.Errorf("Exec after Raw = %q, %v; want 41", got, err)
			}
		})
	}
}
