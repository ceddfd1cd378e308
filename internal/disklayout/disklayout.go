package disklayout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"
)

// CommandRunner runs argv as root in the ramdisk, with stdin (which may be
// nil) as its standard input, and returns its standard output. The
// implementation quotes each word for the remote shell. A non-zero exit is
// an error.
type CommandRunner interface {
	Run(ctx context.Context, argv []string, stdin io.Reader) (stdout []byte, err error)
}

// Errors the package returns, wrapped.
var (
	// ErrInvalid marks a request with a bad device, path, size or label.
	ErrInvalid = errors.New("invalid request")
	// ErrNoPartitionTable means the disk holds no gpt or dos table.
	ErrNoPartitionTable = errors.New("no partition table")
	// ErrNoRoot means no partition matches the root rule or hint.
	ErrNoRoot = errors.New("no root partition")
	// ErrRootNotLast means a grow was asked but a partition that is not one
	// of the requested extra partitions follows the root partition, or the
	// extra partitions leave no room for the requested size.
	ErrRootNotLast = errors.New("root partition cannot grow")
	// ErrNoSpace means the disk has no room for the requested partitions.
	ErrNoSpace = errors.New("not enough space on disk")
	// ErrConflict means the disk holds something the request would destroy,
	// such as a partition with an extra partition's label but another
	// filesystem type.
	ErrConflict = errors.New("disk conflicts with request")
	// ErrSymlink means a path inside the image runs through a symlink or a
	// non-directory.
	ErrSymlink = errors.New("unsafe path in image")
)

// TableType is a partition table type as sfdisk names it.
type TableType string

// Table types.
const (
	TableGPT TableType = "gpt"
	TableDOS TableType = "dos"
)

// FSType is a filesystem type as blkid names it.
type FSType string

// Filesystem types FixAndGrow can make on extra partitions, and ones it can
// grow on the root partition.
const (
	FSExt4 FSType = "ext4"
	FSExt3 FSType = "ext3"
	FSExt2 FSType = "ext2"
	FSXFS  FSType = "xfs"
	FSVFAT FSType = "vfat"
	FSSwap FSType = "swap"
)

func (f FSType) isExt() bool { return f == FSExt2 || f == FSExt3 || f == FSExt4 }

// Partition is one entry of the partition table, with what blkid found on
// it. Offsets and sizes are in bytes.
type Partition struct {
	Number int
	// Path is the device node, such as /dev/sda2 or /dev/nvme0n1p2.
	Path  string
	Start int64
	Size  int64
	// Type is the GPT type GUID (upper case) or the dos type in hex ("83").
	Type string
	// PartUUID is the GPT partition GUID (upper case); empty on dos.
	PartUUID string
	// Label is the GPT partition name; empty on dos.
	Label string
	// FSType, UUID and FSLabel are blkid's TYPE, UUID and LABEL; empty when
	// blkid finds no filesystem.
	FSType  FSType
	UUID    string
	FSLabel string
}

// End returns the offset of the byte after the partition.
func (p Partition) End() int64 { return p.Start + p.Size }

// Layout is a disk's partition table.
type Layout struct {
	Disk       string
	Table      TableType
	SectorSize int64
	// DiskSize is the size of the disk in bytes.
	DiskSize int64
	// FirstUsable and LastUsable bound the bytes partitions may occupy:
	// LastUsable is the offset of the byte after the last usable sector.
	FirstUsable int64
	LastUsable  int64
	// Partitions are sorted by start.
	Partitions []Partition
	// Root and ESP are partition numbers; 0 when none was found.
	Root int
	ESP  int
}

// Partition returns the partition numbered n.
func (l Layout) Partition(n int) (Partition, bool) {
	for _, p := range l.Partitions {
		if p.Number == n {
			return p, true
		}
	}
	return Partition{}, false
}

// ByLabel returns the partition whose GPT name is label.
func (l Layout) ByLabel(label string) (Partition, bool) {
	for _, p := range l.Partitions {
		if label != "" && p.Label == label {
			return p, true
		}
	}
	return Partition{}, false
}

// RootPartition returns the partition Inspect chose as root.
func (l Layout) RootPartition() (Partition, error) {
	if p, ok := l.Partition(l.Root); ok && l.Root > 0 {
		return p, nil
	}
	return Partition{}, fmt.Errorf("%s: %w", l.Disk, ErrNoRoot)
}

// RootHint names the root partition explicitly: by Number when non-zero,
// else by Label (the GPT name, or the filesystem label).
type RootHint struct {
	Number int
	Label  string
}

// Select returns the partition h names, or the one Inspect chose when h is
// empty.
func (l Layout) Select(h RootHint) (Partition, error) {
	switch {
	case h.Number > 0:
		if p, ok := l.Partition(h.Number); ok {
			return p, nil
		}
		return Partition{}, fmt.Errorf("%s has no partition %d: %w", l.Disk, h.Number, ErrNoRoot)
	case h.Label != "":
		for _, p := range l.Partitions {
			if p.Label == h.Label || p.FSLabel == h.Label {
				return p, nil
			}
		}
		return Partition{}, fmt.Errorf("%s has no partition labelled %q: %w", l.Disk, h.Label, ErrNoRoot)
	}
	return l.RootPartition()
}

// ExtraPartition is a partition FixAndGrow adds after the root partition.
type ExtraPartition struct {
	// Label is the GPT name and the filesystem label: 1–11 characters of
	// letters, digits, '_' and '-', starting with a letter or digit. It
	// identifies the partition on later runs.
	Label string
	// Size in bytes, rounded up to whole MiB.
	Size   int64
	FSType FSType
}

var (
	devicePattern = regexp.MustCompile(`^/dev/[a-z0-9/_-]+$`)
	labelPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,10}$`)
)

const mib = 1 << 20

func validateDevice(d string) error {
	if !devicePattern.MatchString(d) || path.Clean(d) != d {
		return fmt.Errorf("device %q: %w", d, ErrInvalid)
	}
	return nil
}

// Validate checks the label, size and filesystem type.
func (e ExtraPartition) Validate() error {
	if !labelPattern.MatchString(e.Label) {
		return fmt.Errorf("extra partition label %q: %w", e.Label, ErrInvalid)
	}
	if e.Size <= 0 || e.Size > 1<<50 {
		return fmt.Errorf("extra partition %s size %d: %w", e.Label, e.Size, ErrInvalid)
	}
	switch e.FSType {
	case FSExt4, FSXFS, FSVFAT, FSSwap:
	default:
		return fmt.Errorf("extra partition %s filesystem %q: %w", e.Label, e.FSType, ErrInvalid)
	}
	return nil
}

// validateImagePath accepts absolute, clean, printable UTF-8 paths other
// than "/".
func validateImagePath(p string) error {
	switch {
	case p == "" || p[0] != '/' || p == "/":
		return fmt.Errorf("path %q is not an absolute file path: %w", p, ErrInvalid)
	case len(p) > 4096 || !utf8.ValidString(p):
		return fmt.Errorf("path %q is too long or not UTF-8: %w", p, ErrInvalid)
	case strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Errorf("path %q contains a control character: %w", p, ErrInvalid)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean: %w", p, ErrInvalid)
	}
	for e := range strings.SplitSeq(p[1:], "/") {
		if e == ".." || e == "." {
			return fmt.Errorf("path %q has a %q element: %w", p, e, ErrInvalid)
		}
	}
	return nil
}

// command is one argv with a short display for errors.
type command struct {
	display string
	argv    []string
	stdin   []byte
}

func cmd(argv ...string) command {
	return command{display: strings.Join(argv, " "), argv: argv}
}

// script runs a constant shell script with args as its positional
// parameters.
func script(name, body string, args ...string) command {
	return command{
		display: "sh " + name + " " + strings.Join(args, " "),
		argv:    append([]string{"sh", "-c", body, name}, args...),
	}
}

func (c command) withStdin(b []byte) command {
	c.stdin = b
	return c
}

func run(ctx context.Context, r CommandRunner, c command) ([]byte, error) {
	var in io.Reader
	if c.stdin != nil {
		in = bytes.NewReader(c.stdin)
	}
	out, err := r.Run(ctx, c.argv, in)
	if err != nil {
		return out, fmt.Errorf("%s: %w", c.display, err)
	}
	return out, nil
}
