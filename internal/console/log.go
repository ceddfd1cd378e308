package console

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultMaxLogBytes is the default cap of a machine's console log.
const DefaultMaxLogBytes = 4 << 20

// ErrNoLog means a machine has no console log yet.
var ErrNoLog = errors.New("no console log")

// Log keeps one file per machine, DIR/MACHINE_ID.log, with everything the
// machine sent on its console while a session was open, and a marker line
// "--- bareflow console: … ---" where a session opened, dropped or closed.
//
// The rule that keeps it to about the last boot is a cap: when a file grows
// past MaxBytes it is cut to its last half, at a line break when there is
// one. A log therefore holds the tail of what was seen, newest last, across
// sessions; it is not cleared when a session opens, so that the boot
// messages seen before someone attached stay readable.
type Log struct {
	dir string
	max int64

	mu sync.Mutex // serializes all writes and reads; console output is slow
}

// NewLog returns a Log in dir (created when missing) capped at maxBytes per
// machine; maxBytes <= 0 means DefaultMaxLogBytes.
func NewLog(dir string, maxBytes int64) (*Log, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxLogBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("console log folder: %w", err)
	}
	return &Log{dir: dir, max: maxBytes}, nil
}

func (l *Log) path(machineID string) (string, error) {
	if machineID == "" || strings.ContainsAny(machineID, `/\`) || strings.HasPrefix(machineID, ".") {
		return "", fmt.Errorf("console log: bad machine ID %q", machineID)
	}
	return filepath.Join(l.dir, machineID+".log"), nil
}

// append adds b to machineID's log. Errors are dropped: a full disk must not
// stop the console.
func (l *Log) append(machineID string, b []byte) {
	if l == nil || len(b) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.appendLocked(machineID, b)
}

// mark writes a marker line, not seen by clients.
func (l *Log) mark(machineID, what string) {
	l.append(machineID, []byte(fmt.Sprintf("\r\n--- bareflow console: %s %s ---\r\n", what, time.Now().UTC().Format(time.RFC3339))))
}

func (l *Log) appendLocked(machineID string, b []byte) error {
	p, err := l.path(machineID)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	st, serr := f.Stat()
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil || serr != nil {
		return errors.Join(werr, serr)
	}
	if st.Size() > l.max {
		return l.cutLocked(p, st.Size())
	}
	return nil
}

// cutLocked keeps the last half of the file at p, from a line break on.
func (l *Log) cutLocked(p string, size int64) error {
	keep := l.max / 2
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	tail := make([]byte, keep)
	if _, err := f.ReadAt(tail, size-keep); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if i := strings.IndexByte(string(tail), '\n'); i >= 0 && i < len(tail)-1 {
		tail = tail[i+1:]
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, tail, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// Read returns the last tail bytes of machineID's log, all of it when tail
// <= 0. It fails with ErrNoLog when there is none.
func (l *Log) Read(machineID string, tail int64) ([]byte, error) {
	if l == nil {
		return nil, ErrNoLog
	}
	p, err := l.path(machineID)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoLog
	}
	if err != nil {
		return nil, fmt.Errorf("read console log: %w", err)
	}
	if tail > 0 && int64(len(b)) > tail {
		b = b[int64(len(b))-tail:]
	}
	return b, nil
}
