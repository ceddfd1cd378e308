package images

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// Linux constants not in package syscall.
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
	fallocZeroRange = 0x10
	blkZeroOut      = 0x127f // _IO(0x12, 127)
)

// zeroFast makes [off, off+n) of f read as zeros without writing them: a hole
// (or else a zeroed range) in a regular file, BLKZEROOUT on a block device,
// whose range must be 512-byte aligned. It reports false, without error, when
// the file system or device cannot.
func zeroFast(f *os.File, regular bool, off, n int64) (bool, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, nil
	}
	var errno error
	ctl := func(fd uintptr) {
		if regular {
			errno = syscall.Fallocate(int(fd), fallocPunchHole|fallocKeepSize, off, n)
			if notSupported(errno) {
				errno = syscall.Fallocate(int(fd), fallocZeroRange|fallocKeepSize, off, n)
			}
			return
		}
		rng := [2]uint64{uint64(off), uint64(n)}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, blkZeroOut, uintptr(unsafe.Pointer(&rng))); e != 0 {
			errno = e
		}
	}
	if err := rc.Control(ctl); err != nil {
		return false, nil
	}
	switch {
	case errno == nil:
		return true, nil
	case notSupported(errno):
		return false, nil
	}
	return false, errno
}

func notSupported(err error) bool {
	return errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) ||
		errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTTY)
}
