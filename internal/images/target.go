package images

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"
)

// pageSize is the alignment of direct writes and the granularity of zero
// skipping.
const pageSize = 4096

var zeroPage [pageSize]byte

// target is the disk or file being written: direct is opened with O_DIRECT
// when asked for and supported, buffered always; unaligned tails and the
// fallback go through buffered.
type target struct {
	path     string
	direct   *os.File
	buffered *os.File
	regular  bool
	size     int64 // of a block device; -1 for a regular file
	written  int64
	zeroed   int64  // made zero without writing (zeroRange)
	zeros    []byte // aligned zeros for zeroRange's fallback, allocated on first use
}

func openTarget(path string, direct bool) (*target, error) {
	t := &target{path: path, size: -1}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open target %s: %w", path, err)
	}
	t.buffered = f
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat target %s: %w", path, err)
	}
	t.regular = fi.Mode().IsRegular()
	if !t.regular {
		if end, err := f.Seek(0, io.SeekEnd); err == nil && end > 0 {
			t.size = end
		}
	}
	if direct && oDirect != 0 {
		if d, err := os.OpenFile(path, os.O_WRONLY|oDirect, 0); err == nil {
			t.direct = d
		}
	}
	return t, nil
}

// Direct reports whether writes bypass the page cache.
func (t *target) Direct() bool { return t.direct != nil }

// writeAt writes p at off: the aligned part directly when possible, the rest
// buffered. A direct write refused with EINVAL turns direct I/O off.
func (t *target) writeAt(p []byte, off int64) error {
	if t.direct != nil && off%pageSize == 0 && isAligned(p) {
		n := len(p) &^ (pageSize - 1)
		if n > 0 {
			_, err := t.direct.WriteAt(p[:n], off)
			switch {
			case err == nil:
				t.written += int64(n)
				p, off = p[n:], off+int64(n)
			case errors.Is(err, syscall.EINVAL):
				t.direct.Close()
				t.direct = nil
			default:
				return fmt.Errorf("write target at %d: %w", off, err)
			}
		}
	}
	if len(p) == 0 {
		return nil
	}
	if _, err := t.buffered.WriteAt(p, off); err != nil {
		return fmt.Errorf("write target at %d: %w", off, err)
	}
	t.written += int64(len(p))
	return nil
}

// writeSkippingZeros writes the pages of p that are not all zero.
func (t *target) writeSkippingZeros(p []byte, off int64) error {
	start := -1
	for i := 0; i < len(p); i += pageSize {
		end := min(i+pageSize, len(p))
		if bytes.Equal(p[i:end], zeroPage[:end-i]) {
			if start >= 0 {
				if err := t.writeAt(p[start:i], off+int64(start)); err != nil {
					return err
				}
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		return t.writeAt(p[start:], off+int64(start))
	}
	return nil
}

// zeroRange makes [off, off+n) read as zeros: a punched hole in a regular
// file, BLKZEROOUT on a block device (which the kernel carries out with the
// device's write-zeroes or discard when it has them, else by writing zeros
// itself), and plain writes of zeros where neither works and for a block
// device's unaligned edges.
func (t *target) zeroRange(off, n int64) error {
	end := off + n
	a, b := off, end
	if !t.regular {
		// BLKZEROOUT takes whole 512-byte sectors.
		a, b = (off+511)&^511, end&^511
	}
	if a < b {
		ok, err := zeroFast(t.buffered, t.regular, a, b-a)
		if err != nil {
			return fmt.Errorf("zero target at %d: %w", a, err)
		}
		if ok {
			t.zeroed += b - a
			if err := t.writeZeros(off, a); err != nil {
				return err
			}
			return t.writeZeros(b, end)
		}
	}
	return t.writeZeros(off, end)
}

// writeZeros writes zeros over [off, end).
func (t *target) writeZeros(off, end int64) error {
	if off >= end {
		return nil
	}
	if t.zeros == nil {
		t.zeros = alignedBuffer(1 << 20)
	}
	for off < end {
		n := min(end-off, int64(len(t.zeros)))
		if err := t.writeAt(t.zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

func (t *target) sync() error {
	if err := t.buffered.Sync(); err != nil {
		return fmt.Errorf("sync target: %w", err)
	}
	return nil
}

// finish extends a regular file to size (its zero tail may have been
// skipped) and syncs.
func (t *target) finish(size int64) error {
	if t.regular {
		fi, err := t.buffered.Stat()
		if err != nil {
			return fmt.Errorf("stat target: %w", err)
		}
		if fi.Size() < size {
			if err := t.buffered.Truncate(size); err != nil {
				return fmt.Errorf("extend target: %w", err)
			}
		}
	}
	return t.sync()
}

func (t *target) close() error {
	if t.direct != nil {
		t.direct.Close()
	}
	return t.buffered.Close()
}

func isAligned(p []byte) bool {
	return len(p) > 0 && uintptr(unsafe.Pointer(&p[0]))%pageSize == 0
}

// alignedBuffer returns a page-aligned buffer of size bytes.
func alignedBuffer(size int) []byte {
	b := make([]byte, size+pageSize)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % pageSize); r != 0 {
		skip = pageSize - r
	}
	return b[skip : skip+size : skip+size]
}
