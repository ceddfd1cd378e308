package osimage

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// The "newc" cpio format of Linux initramfs archives: a 110-byte ASCII
// header, the NUL-terminated name, padding to 4 bytes, the data, padding
// to 4 bytes; the archive ends with an entry named TRAILER!!!.
const (
	cpioMagic   = "070701"
	cpioTrailer = "TRAILER!!!"
	cpioHeader  = 110
)

// Mode bits of a cpio entry.
const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

// cpioWriter writes a newc archive.
type cpioWriter struct {
	w   *bufio.Writer
	ino int
	err error
}

func newCPIOWriter(w io.Writer) *cpioWriter { return &cpioWriter{w: bufio.NewWriter(w), ino: 1} }

func pad4(n int) int { return (4 - n%4) % 4 }

// entry writes one entry: mode holds type and permissions, rdev a device
// node's major and minor.
func (c *cpioWriter) entry(name string, mode uint32, data []byte, major, minor int) {
	if c.err != nil {
		return
	}
	nlink := 1
	if mode&0o170000 == sIFDIR {
		nlink = 2
	}
	hdr := fmt.Sprintf("%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		cpioMagic, c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(name)+1, 0)
	c.ino++
	b := []byte(hdr + name + "\x00")
	b = append(b, make([]byte, pad4(len(b)))...)
	b = append(b, data...)
	b = append(b, make([]byte, pad4(len(data)))...)
	_, c.err = c.w.Write(b)
}

func (c *cpioWriter) dir(name string)                         { c.entry(name, sIFDIR|0o755, nil, 0, 0) }
func (c *cpioWriter) file(name string, perm uint32, b []byte) { c.entry(name, sIFREG|perm, b, 0, 0) }
func (c *cpioWriter) symlink(name, target string)             { c.entry(name, sIFLNK|0o777, []byte(target), 0, 0) }
func (c *cpioWriter) charDev(name string, perm uint32, major, minor int) {
	c.entry(name, sIFCHR|perm, nil, major, minor)
}

// close writes the trailer and flushes.
func (c *cpioWriter) close() error {
	c.entry(cpioTrailer, 0, nil, 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

// extractCPIO reads a newc archive from r and writes the regular files and
// folders (not symlinks) whose names start with one of prefixes (folder
// names ending in "/", or "" for all) into dir, with the prefix replaced by
// its value in the map (names are cleaned and may not leave dir). It returns the names written, relative to dir.
func extractCPIO(r io.Reader, dir string, prefixes map[string]string) ([]string, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var written []string
	hdr := make([]byte, cpioHeader)
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			return nil, fmt.Errorf("cpio header: %w", err)
		}
		if string(hdr[:6]) != cpioMagic && string(hdr[:6]) != "070702" {
			return nil, fmt.Errorf("cpio: bad magic %q", hdr[:6])
		}
		field := func(i int) (int64, error) {
			return strconv.ParseInt(string(hdr[6+8*i:14+8*i]), 16, 64)
		}
		mode, err1 := field(1)
		size, err2 := field(6)
		nameLen, err3 := field(11)
		if err1 != nil || err2 != nil || err3 != nil || nameLen < 1 || nameLen > 4096 || size < 0 || size > 1<<30 {
			return nil, fmt.Errorf("cpio: bad header %q", hdr)
		}
		nameBuf := make([]byte, nameLen+int64(pad4(cpioHeader+int(nameLen))))
		if _, err := io.ReadFull(br, nameBuf); err != nil {
			return nil, fmt.Errorf("cpio name: %w", err)
		}
		name := strings.TrimRight(string(nameBuf[:nameLen]), "\x00")
		if name == cpioTrailer {
			return written, nil
		}
		data := io.LimitReader(br, size)
		rel, ok := mapName(name, prefixes)
		if ok {
			dst := filepath.Join(dir, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, err
			}
			switch uint32(mode) & 0o170000 {
			case sIFDIR:
				if err := os.MkdirAll(dst, 0o755); err != nil {
					return nil, err
				}
			case sIFREG:
				f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fs.FileMode(mode)&0o755|0o600)
				if err != nil {
					return nil, err
				}
				_, err = io.Copy(f, data)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return nil, err
				}
				written = append(written, rel)
			}
		}
		if _, err := io.Copy(io.Discard, data); err != nil {
			return nil, err
		}
		if _, err := br.Discard(pad4(int(size))); err != nil {
			return nil, err
		}
	}
}

// mapName maps an archive name to its place below the extraction folder:
// a prefix is a folder name ending in "/", or "" for every name.
func mapName(name string, prefixes map[string]string) (string, bool) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	for from, to := range prefixes {
		if rest, ok := strings.CutPrefix(name, from); ok && rest != "" {
			return strings.TrimPrefix(path.Join(to, rest), "/"), true
		}
	}
	return "", false
}
