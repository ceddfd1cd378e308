package wipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// CommandRunner runs argv as root in the ramdisk, with stdin (which may be
// nil) as its standard input, and returns its standard output. The
// implementation quotes each word for the remote shell. A non-zero exit is
// an error.
type CommandRunner interface {
	Run(ctx context.Context, argv []string, stdin io.Reader) (stdout []byte, err error)
}

// Errors the package returns, wrapped; match them with errors.Is.
var (
	// ErrInvalid marks a request with a bad device path or options.
	ErrInvalid = errors.New("invalid request")
	// ErrNoDisk means the path names no whole disk of the machine (a
	// partition, or nothing).
	ErrNoDisk = errors.New("no such whole disk")
	// ErrBusy means something still uses the disk (a mount, swap, a
	// device-mapper or md device the package cannot release), or an erase
	// of another method is running on it.
	ErrBusy = errors.New("disk in use")
	// ErrSurvived means the verification after a wipe still found a
	// signature or a partition.
	ErrSurvived = errors.New("signatures survived the wipe")
	// ErrUnsupported means the disk does not support the erase method.
	ErrUnsupported = errors.New("erase method not supported by the disk")
	// ErrFrozen means the drive's ATA security is frozen (by the firmware
	// at boot): a secure erase is refused until the drive is power-cycled
	// or hot-plugged.
	ErrFrozen = errors.New("ATA security frozen")
	// ErrNoJob means no erase job was started for the disk in this
	// ramdisk.
	ErrNoJob = errors.New("no erase job for the disk")
	// ErrEraseFailed means the erase job ended with an error; its state
	// says which.
	ErrEraseFailed = errors.New("erase failed")
)

// diskName returns the kernel name of a device path /dev/NAME, where NAME
// is a lower-case letter then up to 31 lower-case letters and digits (sda,
// nvme0n1, vdb, loop7, mmcblk0). Anything else is refused: the name goes
// into /sys paths and command lines.
func diskName(path string) (string, error) {
	name, ok := strings.CutPrefix(path, "/dev/")
	if !ok || !kernelName(name) {
		return "", fmt.Errorf("device %q: want /dev/NAME of a whole disk: %w", path, ErrInvalid)
	}
	return name, nil
}

// kernelName reports whether s is a block device name as diskName takes
// it.
func kernelName(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// command is one argv with a short display for errors.
type command struct {
	display string
	argv    []string
}

func cmd(argv ...string) command {
	return command{display: strings.Join(argv, " "), argv: argv}
}

// script runs a constant shell script with args as its positional
// parameters, so that no value is ever spliced into shell text.
func script(name, body string, args ...string) command {
	return command{
		display: "sh " + name + " " + strings.Join(args, " "),
		argv:    append([]string{"sh", "-c", body, name}, args...),
	}
}

// maxOutput bounds what the package reads from a command.
const maxOutput = 4 << 20

func run(ctx context.Context, r CommandRunner, c command) ([]byte, error) {
	out, err := r.Run(ctx, c.argv, nil)
	if err != nil {
		return out, fmt.Errorf("%s: %w", c.display, err)
	}
	if len(out) > maxOutput {
		return nil, fmt.Errorf("%s: %d bytes of output, more than %d", c.display, len(out), maxOutput)
	}
	return out, nil
}

// haveScript prints each of its arguments that names a program on the
// ramdisk's PATH.
const haveScript = `for t do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; true`

// tools reports which of names the ramdisk has.
func tools(ctx context.Context, r CommandRunner, names ...string) (map[string]bool, error) {
	out, err := run(ctx, r, script("have", haveScript, names...))
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for l := range strings.Lines(string(out)) {
		have[strings.TrimSpace(l)] = true
	}
	return have, nil
}

// shorten cuts s to n bytes for messages.
func shorten(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// oneLine joins the non-empty lines of b with "; ".
func oneLine(b []byte) string {
	var parts []string
	for l := range bytes.Lines(b) {
		if t := strings.TrimSpace(string(l)); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "; ")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
