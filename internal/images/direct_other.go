//go:build !linux

package images

// oDirect is zero where O_DIRECT does not exist: writes are buffered.
const oDirect = 0
