package boardfs

import "context"

// Interrupt stops whatever the board runs and leaves the FS to enter raw
// mode again before its next operation, as an exchange cut short does.
func (f *FS) Interrupt(ctx context.Context) error { return f.conn.Interrupt(ctx) }

// NewTempName and IsTempName are newTempName and isTempName, for the test
// that holds them and the board's sweep together.
var (
	NewTempName = newTempName
	IsTempName  = isTempName
)

// WriteRaw writes data to the file the board calls name, with Python of
// its own and none of boardfs's checks: how a test puts any name on a
// board whose files have no host directory (the micro:bit).
func (f *FS) WriteRaw(ctx context.Context, name, data string) error {
	_, err := f.call(ctx, "write", name, "_wr="+pyCall("open", name, "wb")+"\n_wr.write("+pyStr(data)+")\n_wr.close()\ndel _wr")
	return err
}
