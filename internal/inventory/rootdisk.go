package inventory

import (
	"errors"
	"fmt"
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

// ChooseRootDisk picks the disk an install writes its image to, which must
// hold need bytes. With a hint, the only disk matching every field given
// (path, serial, WWN, size bounds); otherwise the recorded root device
// (from the last RAID build) when it is still there and big enough; else
// the smallest non-removable disk that holds need bytes. A recorded root
// device that the inventory does not list (an md array: the inventory
// lists disks only) is trusted, and a hint's path may name it. It returns
// /dev/NAME, or an error wrapping ErrNoRootDisk that says why.
func ChooseRootDisk(inv contract.Inventory, recorded string, hint contract.RootDiskHint, need int64) (string, error) {
	recorded = strings.TrimPrefix(recorded, "/dev/")
	listed := func(name string) (contract.Disk, bool) {
		for _, d := range inv.Disks {
			if d.Name == name {
				return d, true
			}
		}
		return contract.Disk{}, false
	}
	if recorded != "" && hint == (contract.RootDiskHint{Path: devPath(recorded)}) {
		if _, ok := listed(recorded); !ok {
			return devPath(recorded), nil
		}
	}
	if !hint.IsZero() {
		var match []contract.Disk
		for _, d := range inv.Disks {
			if hintMatches(d, hint) {
				match = append(match, d)
			}
		}
		switch {
		case len(match) == 0:
			return "", fmt.Errorf("no disk matches the root disk hint %+v: %w", hint, ErrNoRootDisk)
		case len(match) > 1:
			names := make([]string, len(match))
			for i, d := range match {
				names[i] = d.Name
			}
			return "", fmt.Errorf("%d disks match the root disk hint (%s): name one by path, serial or WWN: %w",
				len(match), strings.Join(names, ", "), ErrNoRootDisk)
		case match[0].SizeBytes < need:
			return "", fmt.Errorf("disk %s holds %d bytes, the image and partitions need %d: %w",
				match[0].Name, match[0].SizeBytes, need, ErrNoRootDisk)
		}
		return devPath(match[0].Name), nil
	}
	if recorded != "" {
		d, ok := listed(recorded)
		switch {
		case !ok:
			return devPath(recorded), nil
		case d.SizeBytes >= need:
			return devPath(recorded), nil
		default:
			return "", fmt.Errorf("the recorded root disk %s holds %d bytes, the image and partitions need %d: %w",
				recorded, d.SizeBytes, need, ErrNoRootDisk)
		}
	}
	var best *contract.Disk
	for i, d := range inv.Disks {
		if d.Removable || d.SizeBytes < need || d.SizeBytes <= 0 {
			continue
		}
		if best == nil || d.SizeBytes < best.SizeBytes || d.SizeBytes == best.SizeBytes && d.Name < best.Name {
			best = &inv.Disks[i]
		}
	}
	if best == nil {
		return "", fmt.Errorf("no disk of the %d holds the %d bytes the image and partitions need: %w", len(inv.Disks), need, ErrNoRootDisk)
	}
	return devPath(best.Name), nil
}

func hintMatches(d contract.Disk, h contract.RootDiskHint) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		for _, p := range []string{"0x", "naa.", "eui.", "wwn-"} {
			s = strings.TrimPrefix(s, p)
		}
		return s
	}
	switch {
	case h.Path != "" && strings.TrimPrefix(h.Path, "/dev/") != d.Name:
		return false
	case h.Serial != "" && !strings.EqualFold(strings.TrimSpace(h.Serial), strings.TrimSpace(d.Serial)):
		return false
	case h.WWN != "" && (d.WWN == "" || norm(h.WWN) != norm(d.WWN)):
		return false
	case h.MinSizeBytes > 0 && d.SizeBytes < h.MinSizeBytes:
		return false
	case h.MaxSizeBytes > 0 && d.SizeBytes > h.MaxSizeBytes:
		return false
	}
	return true
}
