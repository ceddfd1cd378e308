//go:build linux || darwin

package devserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrDataDirInUse reports that another dev server holds the data dir.
var ErrDataDirInUse = errors.New("data dir in use by another bareflow dev server")

// lockDataDir takes an exclusive lock on dir, so that two servers never run
// one database. The returned func releases it.
func lockDataDir(dir string) (func() error, error) {
	path := filepath.Join(dir, DatabaseFile+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrDataDirInUse)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return f.Close, nil
}
