//go:build !linux && !darwin

package devserver

import "errors"

// ErrDataDirInUse reports that another dev server holds the data dir. It is
// only detected on Linux and macOS.
var ErrDataDirInUse = errors.New("data dir in use by another bareflow dev server")

// lockDataDir does nothing where flock is unavailable.
func lockDataDir(string) (func() error, error) { return func() error { return nil }, nil }
