//go:build !linux && !darwin

package console

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
)

// ServePTY is for Linux and macOS only; elsewhere it fails at once: use
// the TCP console.
func ServePTY(ctx context.Context, path string, c *Console, log *slog.Logger) error {
	return fmt.Errorf("console: a pseudo-terminal console is not available on %s: use --console ADDR", runtime.GOOS)
}
