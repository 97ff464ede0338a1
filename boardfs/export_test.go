package boardfs

import "context"

// Interrupt stops whatever the board runs and leaves the FS to enter raw
// mode again before its next operation, as an exchange cut short does.
func (f *FS) Interrupt(ctx context.Context) error { return f.conn.Interrupt(ctx) }
