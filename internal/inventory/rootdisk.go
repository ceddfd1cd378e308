package inventory

import (
	"errors"
	"sort"
	"strings"

	"bareflow/contract"
)

// MinRootDiskBytes is the smallest disk RootDisk takes for an OS.
const MinRootDiskBytes = 4 << 30

// ErrNoRootDisk means no disk is fit to hold the OS.
var ErrNoRootDisk = errors.New("no disk fit for the OS")

// RootDisk picks the block device the OS goes on: the RAID volume marked
// root; else, when RAID volumes were built, the first of them; else the
// smallest disk that is not removable and holds at least MinRootDiskBytes
// (ties broken by name). It returns the device's path, /dev/NAME.
func RootDisk(inv contract.Inventory, volumes []contract.BuiltVolume) (string, error) {
	for _, v := range volumes {
		if v.Root && v.Device != "" {
			return devPath(v.Device), nil
		}
	}
	for _, v := range volumes {
		if v.Device != "" {
			return devPath(v.Device), nil
		}
	}
	disks := make([]contract.Disk, 0, len(inv.Disks))
	for _, d := range inv.Disks {
		if !d.Removable && d.SizeBytes >= MinRootDiskBytes {
			disks = append(disks, d)
		}
	}
	if len(disks) == 0 {
		return "", ErrNoRootDisk
	}
	sort.Slice(disks, func(i, j int) bool {
		if disks[i].SizeBytes != disks[j].SizeBytes {
			return disks[i].SizeBytes < disks[j].SizeBytes
		}
		return disks[i].Name < disks[j].Name
	})
	return devPath(disks[0].Name), nil
}

// devPath is a block device's path: /dev/ and its name.
func devPath(name string) string {
	return "/dev/" + strings.TrimPrefix(name, "/dev/")
}
