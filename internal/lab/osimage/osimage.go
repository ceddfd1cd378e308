package osimage

import (
	"errors"
	"fmt"
	"regexp"
)

// MiB is a mebibyte, the unit of every size and alignment here.
const MiB = 1 << 20

// Errors the package returns, wrapped.
var (
	// ErrInvalid marks options that cannot make an image.
	ErrInvalid = errors.New("invalid image options")
	// ErrMissingTool means a program a build needs is not installed; the
	// error names it.
	ErrMissingTool = errors.New("tool not installed")
)

// Family is the kind of system an image's /etc describes.
type Family string

// Families.
const (
	// Debian is Debian 12: ifupdown's /etc/network/interfaces.
	Debian Family = "debian"
	// RHEL is Rocky Linux 9.3: NetworkManager keyfiles and ifcfg files.
	RHEL Family = "rhel"
)

// Validate reports whether f is a known family.
func (f Family) Validate() error {
	switch f {
	case Debian, RHEL:
		return nil
	}
	return fmt.Errorf("%w: family %q", ErrInvalid, string(f))
}

// Table is a partition table type, named as sfdisk names it.
type Table string

// Partition tables.
const (
	GPT Table = "gpt"
	DOS Table = "dos"
)

// Validate reports whether t is a known table type.
func (t Table) Validate() error {
	switch t {
	case GPT, DOS:
		return nil
	}
	return fmt.Errorf("%w: partition table %q", ErrInvalid, string(t))
}

// FSType is the root filesystem's type.
type FSType string

// Root filesystem types.
const (
	Ext4 FSType = "ext4"
	XFS  FSType = "xfs"
)

// Validate reports whether t is a supported root filesystem type.
func (t FSType) Validate() error {
	switch t {
	case Ext4, XFS:
		return nil
	}
	return fmt.Errorf("%w: root filesystem %q", ErrInvalid, string(t))
}

// Partition types and names of the images.
const (
	// TypeRootX86_64 is the discoverable-partitions GPT type of an x86-64
	// root partition.
	TypeRootX86_64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
	// TypeESP is the GPT type of an EFI system partition.
	TypeESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	// RootLabel is the root partition's GPT name and filesystem label.
	RootLabel = "root"
)

// Layout of both kinds of image: the first partition starts at 1 MiB and
// is bootSize long; root follows it at once.
const (
	firstOffset = 1 * MiB
	bootSize    = 32 * MiB
	rootOffset  = firstOffset + bootSize
	// tailRoom is kept free at the end of a GPT disk for the backup table.
	tailRoom = 1 * MiB
	// minXFS is the smallest filesystem mkfs.xfs makes.
	minXFS = 300 * MiB
	// minExt4 is the smallest root this package makes.
	minExt4 = 8 * MiB
)

var hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func validateHostname(h string) error {
	if len(h) > 253 || !hostnamePattern.MatchString(h) {
		return fmt.Errorf("%w: host name %q", ErrInvalid, h)
	}
	return nil
}

// validateSizes checks that a root of rootSize bytes fits a disk of size
// bytes after the boot partition, with the backup table's room left.
func validateSizes(size, rootSize int64, fs FSType) error {
	if size%MiB != 0 || rootSize%MiB != 0 {
		return fmt.Errorf("%w: sizes must be whole MiB (disk %d, root %d)", ErrInvalid, size, rootSize)
	}
	minRoot := int64(minExt4)
	if fs == XFS {
		minRoot = minXFS
	}
	if rootSize < minRoot {
		return fmt.Errorf("%w: root of %d MiB is below the %d MiB a %s root needs", ErrInvalid, rootSize/MiB, minRoot/MiB, fs)
	}
	if rootOffset+rootSize+tailRoom > size {
		return fmt.Errorf("%w: a root of %d MiB does not fit a disk of %d MiB (%d MiB go before it, 1 MiB after)",
			ErrInvalid, rootSize/MiB, size/MiB, rootOffset/MiB)
	}
	if size > 64<<30 {
		return fmt.Errorf("%w: disk of %d MiB is larger than 64 GiB", ErrInvalid, size/MiB)
	}
	return nil
}

// Image is a built disk image in the cache.
type Image struct {
	// Path is the raw disk image. It is shared by every user of the cache:
	// read it, or CopyTo a file of your own and change that.
	Path string `json:"-"`
	// Key is the hash of the build's inputs that names its cache folder.
	Key string `json:"key"`
	// Kind is "config" or "bootable".
	Kind string `json:"kind"`
	// Family is the system the root's /etc describes.
	Family Family `json:"family"`
	// Size is the disk's size in bytes.
	Size  int64 `json:"size"`
	Table Table `json:"table"`
	// DiskID is the GPT disk GUID or the dos disk identifier.
	DiskID string `json:"disk_id"`
	Boot   Part   `json:"boot"`
	Root   Part   `json:"root"`
	// KernelVersion and CmdLine are those of a bootable image.
	KernelVersion string `json:"kernel_version,omitempty"`
	CmdLine       string `json:"cmdline,omitempty"`
	// Hostname is what /etc/hostname holds.
	Hostname string `json:"hostname"`
}

// Part is one partition of an image.
type Part struct {
	// Number is the partition's number (1 for boot, 2 for root).
	Number int `json:"number"`
	// Start and Size are in bytes.
	Start int64 `json:"start"`
	Size  int64 `json:"size"`
	// Type is the GPT type GUID or dos type byte (lower-case hex).
	Type string `json:"type"`
	// PartUUID is the GPT partition GUID, or the dos disk ID and number.
	PartUUID string `json:"partuuid"`
	// Name is the GPT partition name (empty on dos).
	Name string `json:"name"`
	// FSType, UUID and Label describe the filesystem.
	FSType string `json:"fstype"`
	UUID   string `json:"uuid"`
	Label  string `json:"label"`
}
