package disklayout

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
)

var guidPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// Restore puts back into disk's GPT the entries of partitions read before
// an image was written over the table, at their old place with their type,
// name and partition GUID, so that the data they hold (which the image
// did not reach) is theirs again. A partition already present at the same
// place with the same GUID is left alone; one that would overlap another
// partition, or lie outside the usable area, is refused with ErrConflict.
// The kernel is told of the new partitions.
func Restore(ctx context.Context, r CommandRunner, disk string, parts []Partition) (Layout, error) {
	if err := validateDevice(disk); err != nil {
		return Layout{}, err
	}
	l, err := Inspect(ctx, r, disk)
	if err != nil {
		return Layout{}, err
	}
	if l.Table != TableGPT {
		return Layout{}, fmt.Errorf("restore partitions on %s: needs a gpt table, the image has %s: %w", disk, l.Table, ErrConflict)
	}
	if backupMisplaced(l) {
		// The image's table ends where the image does: move its backup
		// header to the end of the disk first, or the kept partitions
		// lie beyond the last usable sector.
		if _, err := run(ctx, r, cmd("sgdisk", "-e", disk)); err != nil {
			return Layout{}, err
		}
		if l, err = Inspect(ctx, r, disk); err != nil {
			return Layout{}, err
		}
	}
	for _, p := range parts {
		if !labelPattern.MatchString(p.Label) || !guidPattern.MatchString(p.Type) || !guidPattern.MatchString(p.PartUUID) ||
			p.Start <= 0 || p.Size <= 0 || p.Start%l.SectorSize != 0 || p.Size%l.SectorSize != 0 {
			return Layout{}, fmt.Errorf("partition %d (%q) to restore on %s: %w", p.Number, p.Label, disk, ErrInvalid)
		}
		if cur, ok := l.Partition(p.Number); ok && cur.Start == p.Start && cur.Size == p.Size && cur.PartUUID == p.PartUUID {
			continue
		}
		if p.Start < l.FirstUsable || p.End() > l.LastUsable {
			return Layout{}, fmt.Errorf("partition %s (%d–%d) lies outside %s's usable area (%d–%d): %w",
				p.Label, p.Start, p.End(), disk, l.FirstUsable, l.LastUsable, ErrConflict)
		}
		num := p.Number
		used := map[int]bool{}
		for _, q := range l.Partitions {
			used[q.Number] = true
			if q.Start < p.End() && p.Start < q.End() {
				return Layout{}, fmt.Errorf("partition %s to restore overlaps partition %d of the new image on %s: %w",
					p.Label, q.Number, disk, ErrConflict)
			}
		}
		for num <= 0 || used[num] {
			num++
		}
		if num > 128 {
			return Layout{}, fmt.Errorf("restore partition %s on %s: no free entry: %w", p.Label, disk, ErrNoSpace)
		}
		n := strconv.Itoa(num)
		ss := l.SectorSize
		if _, err := run(ctx, r, cmd("sgdisk",
			"-n", n+":"+strconv.FormatInt(p.Start/ss, 10)+":"+strconv.FormatInt(p.End()/ss-1, 10),
			"-t", n+":"+p.Type, "-c", n+":"+p.Label, "-u", n+":"+p.PartUUID, disk)); err != nil {
			return Layout{}, err
		}
		if _, err := run(ctx, r, cmd("partx", "-u", disk)); err != nil {
			return Layout{}, err
		}
		if _, err := run(ctx, r, script("wait-node", waitNodeScript, partitionPath(disk, num))); err != nil {
			return Layout{}, err
		}
		if l, err = Inspect(ctx, r, disk); err != nil {
			return Layout{}, err
		}
	}
	return l, nil
}
