package ftpdriver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strings"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/spool"
)

// Errors the driver makes itself.
var (
	// ErrReadOnly: the bridge was started read-only and a client tried to
	// change something.
	ErrReadOnly = errors.New("ftpdriver: read-only")
	// ErrNotUsed is what the afero.Fs methods return that ftpserverlib never
	// calls with this driver's settings and extensions: Create, Open and
	// OpenFile (GetHandle and ReadDir replace them), MkdirAll, RemoveAll,
	// Chmod and Chown (only SITE calls them, and SITE is disabled). A call
	// means ftpserverlib changed; failing is safer than guessing, above all
	// for RemoveAll.
	ErrNotUsed = errors.New("ftpdriver: not used by this driver")
	// ErrBadPath: a path that is not absolute reached the driver.
	// ftpserverlib resolves every argument against the working directory
	// except HASH's (which Stat resolves) and LIST's options (which the
	// control connection takes off first, listHook); anything else
	// relative never reaches the board.
	ErrBadPath = errors.New("ftpdriver: not an absolute path")
	// ErrStopping: the server is shutting down.
	ErrStopping = errors.New("ftpdriver: server stopping")
	// ErrTimeout: a board operation took longer than its deadline.
	ErrTimeout = errors.New("ftpdriver: the board did not answer in time")
	// ErrIsDir: a transfer named a directory.
	ErrIsDir = errors.New("ftpdriver: is a directory")
	// ErrRestart: a REST point the transfer cannot start from: past the
	// end of a download, or anywhere but the end of the file for an
	// upload, since the board can only append.
	ErrRestart = errors.New("ftpdriver: cannot restart there")
	// ErrBoardFolder: a client tried to change the top level of a server
	// over several boards, which holds one folder per board plugged in:
	// create, remove or rename "/" or a board's folder, or a file in "/".
	ErrBoardFolder = errors.New("ftpdriver: the top level holds the boards' folders")
	// ErrAcrossBoards: a rename named two boards.
	ErrAcrossBoards = errors.New("ftpdriver: cannot rename across boards")
	// ErrNotDir: a path goes through a file as if it were a directory,
	// seen by the driver before the board is asked (an upload, which the
	// spool may answer before the board sees it).
	ErrNotDir = errors.New("ftpdriver: a part of the path is a file, not a directory")
	// ErrRoot: a change aimed at the board's root folder itself ("/",
	// and "/..", "/." and "//", which clean to it): it can be neither
	// replaced, removed nor renamed, and nothing is sent to the board.
	ErrRoot = errors.New("ftpdriver: the root folder cannot be changed")
	// ErrLineBreak: a new name holding a carriage return or a line feed,
	// which no FTP listing can show: it would end the listing's line
	// there (hideLineBreaks).
	ErrLineBreak = errors.New("ftpdriver: a name with a line break cannot be listed over FTP")
	// ErrNameTooLong: a new name longer than the boards' filesystems
	// take (maxName).
	ErrNameTooLong = errors.New("ftpdriver: a name longer than 255 bytes")
	// ErrMount: a change aimed at the top level of a board whose "/"
	// holds only its mounts (a Pyboard's /flash and /sd): nothing can be
	// created there, and a mount can be neither removed nor renamed. The
	// error is a *MountError, which names the mounts.
	ErrMount = errors.New("ftpdriver: the top level holds only the board's mounts")
)

// MountError is ErrMount for one path: the board's mounts, and whether the
// path was one of them.
type MountError struct {
	Path    string   // as the client named it
	Mounts  []string // the mounts, as the client sees them ("/flash", "/sd")
	IsMount bool     // Path is a mount itself
}

func (e *MountError) Error() string {
	return fmt.Sprintf("ftpdriver: %q: %s", e.Path, e.reply())
}

func (e *MountError) Unwrap() error { return ErrMount }

// reply says it in words a client can act on.
func (e *MountError) reply() string {
	top := path.Dir(e.Path)
	switch {
	case e.IsMount:
		return e.Path + " is where one of the board's drives is mounted: it cannot be removed, replaced or renamed"
	case len(e.Mounts) == 0:
		return top + " holds only the board's mounts, and none is mounted"
	}
	return top + " holds only the board's mounts (" + strings.Join(e.Mounts, ", ") + "): put files and folders inside one of them"
}

// Replies that say to try again later (transientCode).
const (
	notConnected = "board not connected, try again when it is plugged in"
	boardSilent  = "the board stopped answering (hung, or its USB-serial adapter stalled), try again once it answers"
	pendingBusy  = "busy: an earlier upload here (this file, or a file in this folder) is still being written to the board, try again"
	boardBusy    = "board busy, try again"
	programBusy  = "board busy running a program (on ftpbridge's console), try again once it ends"
	boardReset   = "board reset, try again"
	noAnswer     = "the board did not answer in time"
	boardEAGAIN  = "the board is busy, try again"
)

// transientReplies are the reasons ftpError gives for a failure that may
// pass by itself: the board busy, away, reset, hung or slow, or an upload
// to the same place still being written. Not a file that changed during
// its download: a client that takes a 4xx for "resume later" would join
// the old version's first part to the new one's rest.
var transientReplies = []string{
	notConnected, boardSilent, pendingBusy, boardBusy, programBusy,
	boardReset, noAnswer, boardEAGAIN,
}

// transientCode returns the code for text, a reply ftpserverlib sent with
// its fixed 550, when the reason ftpError gave says to try again: 450
// (RFC 959: "Requested file action not taken. File unavailable (e.g.,
// file busy)"), or 451 ("Requested action aborted") for a transfer that
// had begun (after its 150), where RFC 959 has no 450. A 5xx is
// permanent, and clients give up on it: lftp's rmdir of a folder whose
// upload was still being written failed at once on 550; answered 450, it
// asked again every 2 s until the upload landed. ok is false for any
// other reply. Uploads keep their 550 (controlConn.replyLine says why).
func transientCode(text string, begun bool) (code int, ok bool) {
	for _, r := range transientReplies {
		// ftpserverlib puts the reason last: "Could not access file: <reason>".
		if strings.HasSuffix(text, r) {
			if begun {
				return 451, true
			}
			return 450, true
		}
	}
	return 0, false
}

// replyError is what ftpserverlib puts on the reply line: a short message
// (ftpserverlib writes err.Error() into the reply) that still unwraps to the
// sentinel ftpserverlib picks its reply code from (552, 553) and to the
// io/fs sentinel callers test with errors.Is.
type replyError struct {
	msg  string
	kind error
}

func (e *replyError) Error() string { return e.msg }
func (e *replyError) Unwrap() error { return e.kind }

// ftpError turns an error from below into the one ftpserverlib gets, and
// logs the full one: this is the only place errors are mapped to FTP.
// ftpserverlib has a fixed reply code per handler (550 mostly, 450 for LIST
// and NLST); only ErrStorageExceeded (552) and ErrFileNameNotAllowed (553)
// change it. A failure that may pass (a busy board) gets a text that says
// to try again, and the control connection turns its 550 into a 4xx
// (transientCode), except for uploads.
func ftpError(log *slog.Logger, op, p string, err error) error {
	if err == nil {
		return nil
	}
	var (
		msg   string
		kind  error
		level = slog.LevelWarn
	)
	var (
		pyErr    *boardfs.PyError
		mountErr *MountError
	)
	errors.As(err, &pyErr)
	var failed *spool.Failed
	switch {
	case errors.As(err, &failed):
		msg, kind = failedReply(failed), err
	case errors.Is(err, spool.ErrPending):
		msg, kind, level = pendingBusy, boardfs.ErrBusy, slog.LevelInfo
	case errors.Is(err, ErrReadOnly):
		msg, kind, level = "read-only", fs.ErrPermission, slog.LevelInfo
	case errors.Is(err, ErrBoardFolder):
		msg, kind, level = "the top level holds one folder per board: work inside a board's folder", fs.ErrPermission, slog.LevelInfo
	case errors.Is(err, ErrAcrossBoards):
		msg, kind, level = "cannot rename across boards", ErrAcrossBoards, slog.LevelInfo
	case errors.Is(err, ErrNameTooLong):
		msg, kind, level = "a name longer than 255 bytes: the board's filesystem takes no longer one", ftpserver.ErrFileNameNotAllowed, slog.LevelInfo
	case errors.Is(err, ErrLineBreak):
		msg, kind, level = "a name with a line break (CR or LF) cannot be shown in FTP listings", ftpserver.ErrFileNameNotAllowed, slog.LevelInfo
	case errors.Is(err, ErrRoot):
		msg, kind, level = "/ is the board's top folder: it cannot be replaced, removed or renamed", ftpserver.ErrFileNameNotAllowed, slog.LevelInfo
	case errors.As(err, &mountErr):
		msg, kind, level = mountErr.reply(), ftpserver.ErrFileNameNotAllowed, slog.LevelInfo
	case errors.Is(err, ErrBadPath):
		// Not found rather than a bad name: a client asking for a relative
		// name that the library did not resolve gets what a missing file
		// gets.
		msg, kind, level = "no such file or directory", fs.ErrNotExist, slog.LevelDebug
	case errors.Is(err, ErrIsDir):
		msg, kind, level = "is a directory", ErrIsDir, slog.LevelInfo
	case errors.Is(err, ErrNotDir):
		msg, kind, level = "a part of the path is a file, not a directory", fs.ErrNotExist, slog.LevelInfo
	case errors.Is(err, ErrRestart):
		msg, kind, level = "cannot restart there: downloads restart inside the file, uploads at its end", ErrRestart, slog.LevelInfo
	case errors.Is(err, boardfs.ErrProgramRunning):
		msg, kind, level = programBusy, boardfs.ErrBusy, slog.LevelInfo
	case errors.Is(err, boardfs.ErrChanged):
		// 550 (ftpserverlib's code for a failed transfer; not a 4xx,
		// transientReplies), not 226 over a file made of two versions.
		msg, kind, level = "the file changed on the board during the download, try again", boardfs.ErrChanged, slog.LevelInfo
	case errors.Is(err, boardfs.ErrLineNotHeld):
		msg, kind = "the board stopped taking the upload: its line lost bytes sent without waiting; if it is behind a USB-serial adapter, start ftpbridge with --line uart", boardfs.ErrLineNotHeld
	case errors.Is(err, boardfs.ErrSilent):
		// Not "busy": nothing moves, for this session or any other,
		// until the board speaks again.
		msg, kind = boardSilent, boardfs.ErrSilent
	case errors.Is(err, boardfs.ErrBusy):
		msg, kind, level = boardBusy, boardfs.ErrBusy, slog.LevelInfo
	case errors.Is(err, boardfs.ErrNoSpace):
		msg, kind = "no space left on the board", ftpserver.ErrStorageExceeded
	case pyErr != nil && pyErr.Errno == errnoENODEV:
		// MicroPython's VFS answers ENODEV for a path under no mount: on a
		// board whose "/" holds only its mounts, "/x" does not exist.
		// Changes there are refused before they reach the board (MountError).
		msg, kind, level = "no such file or directory", fs.ErrNotExist, slog.LevelDebug
	case errors.Is(err, boardfs.ErrReserved):
		msg, kind, level = "name reserved for ftpbridge's temporary files (.ftpbridge- and 8 hex digits)", ftpserver.ErrFileNameNotAllowed, slog.LevelInfo
	case errors.Is(err, boardfs.ErrBadName):
		msg, kind, level = "file name not allowed on the board", ftpserver.ErrFileNameNotAllowed, slog.LevelInfo
		if pyErr != nil && pyErr.Errno == errnoENAMETOOLONG {
			msg = "file name too long for the board"
		}
	case errors.Is(err, fs.ErrNotExist):
		msg, kind, level = "no such file or directory", fs.ErrNotExist, slog.LevelDebug
	case errors.Is(err, fs.ErrExist):
		msg, kind, level = "already exists", fs.ErrExist, slog.LevelInfo
	case errors.Is(err, boardfs.ErrNotEmpty):
		msg, kind, level = "directory not empty", boardfs.ErrNotEmpty, slog.LevelInfo
	case errors.Is(err, fs.ErrPermission):
		msg, kind, level = "permission denied", fs.ErrPermission, slog.LevelInfo
	case errors.Is(err, boardfs.ErrDirAcrossMounts):
		msg, kind, level = "a folder cannot move from one of the board's drives to another: move the files in it", boardfs.ErrNotSupported, slog.LevelInfo
	case errors.Is(err, boardfs.ErrNotSupported):
		msg, kind, level = "not supported by this board", boardfs.ErrNotSupported, slog.LevelInfo
	case errors.Is(err, ErrNotUsed):
		msg, kind, level = "not supported", ErrNotUsed, slog.LevelError
	case errors.Is(err, ErrStopping):
		msg, kind, level = "server stopping", ErrStopping, slog.LevelInfo
	case errors.Is(err, boardfs.ErrNotConnected):
		// The Link has said once that the board is away.
		msg, kind, level = notConnected, boardfs.ErrNotConnected, slog.LevelDebug
	case errors.Is(err, boardfs.ErrDisconnected):
		// The same to a client: the board is away, and the bridge takes
		// it back by itself when it returns.
		msg, kind = notConnected, boardfs.ErrNotConnected
	case errors.Is(err, boardfs.ErrBoardReset):
		msg, kind = boardReset, boardfs.ErrBoardReset
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		msg, kind = noAnswer, ErrTimeout
	case errors.Is(err, context.Canceled):
		msg, kind, level = "cancelled", context.Canceled, slog.LevelDebug
	case pyErr != nil:
		// The full traceback goes to the log; the client gets words.
		msg, kind = pyWords(pyErr), err
	default:
		msg, kind = "board error", err
	}
	log.Log(context.Background(), level, "ftp "+op+" failed", "path", p, "reply", msg, "err", err)
	return &replyError{msg: msg, kind: kind}
}

// Errno numbers as MicroPython numbers them (py/mperrno.h, Linux's values),
// for the ones the driver tells apart itself.
const (
	errnoENODEV       = 19
	errnoENAMETOOLONG = 36
)

// errnoWords says what an OSError from the board means, for each errno a
// board's filesystems raise (MicroPython's own list in py/mperrno.h, and
// what FAT and littlefs map their errors to). Boards print an OSError
// bare ("OSError: 20" on the micro:bit and older ports), which tells a
// client nothing.
var errnoWords = map[int]string{
	1:   "not permitted by the board",
	2:   "no such file or directory",
	5:   "the board's storage failed to read or write (I/O error)",
	9:   "the board lost track of the open file",
	11:  boardEAGAIN,
	12:  "the board ran out of memory",
	13:  "permission denied by the board",
	16:  "in use on the board",
	17:  "already exists",
	18:  "cannot move between two of the board's drives",
	19:  "no such drive on the board",
	20:  "a part of the path is a file, not a directory",
	21:  "is a directory",
	22:  "the board refused the request as invalid",
	23:  "too many files open on the board",
	24:  "too many files open on the board",
	27:  "file too large for the board's filesystem",
	28:  "no space left on the board",
	30:  "the board's filesystem is read-only",
	36:  "file name too long for the board",
	39:  "directory not empty",
	66:  "directory not empty",
	95:  "not supported by the board's filesystem",
	110: "the board's storage did not answer in time",
}

// pyWords says in words what an exception raised on the board means. The
// exception's own text goes to the log: a client gets no raw "OSError: 20".
func pyWords(e *boardfs.PyError) string {
	switch {
	case e.Type == "MemoryError":
		return "the board ran out of memory"
	case e.Errno != 0:
		if w, ok := errnoWords[e.Errno]; ok {
			return w
		}
		return fmt.Sprintf("the board's filesystem refused it (error %d)", e.Errno)
	case e.Type == "OSError":
		return "the board's filesystem refused it"
	default:
		return "the board failed (" + e.Type + ")"
	}
}
