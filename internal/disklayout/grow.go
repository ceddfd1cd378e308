package disklayout

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// extGrowSlack is how much smaller than its partition an ext filesystem may
// be before FixAndGrow checks and resizes it: resize2fs leaves out a last
// block group too small for its metadata, so a filled filesystem can fall
// short of its partition by part of a group.
const extGrowSlack = 4 * mib

// waitNodeScript waits up to five seconds for a block device node.
const waitNodeScript = `i=0; while [ ! -b "$1" ]; do i=$((i+1)); [ "$i" -le 50 ] || { echo "$1 did not appear" >&2; exit 1; }; sleep 0.1; done`

var tempDirPattern = regexp.MustCompile(`^/run/bareflow-grow\.[A-Za-z0-9]+$`)

// FixAndGrow makes the disk's layout what the request asks for and returns
// it as Inspect reads it afterwards. On GPT it moves the backup header to the
// end of the disk. It grows root, the partition Inspect or Layout.Select
// returned, to size bytes (rounded up to a sector), or with size 0 up to
// the end of the disk less the room the extra partitions that do not exist
// yet need, MiB-aligned; then it grows root's filesystem (ext2/3/4, xfs) to
// fill it. A grow is refused (ErrRootNotLast) when a partition other than
// the requested extra ones follows root. It then creates the extra
// partitions that no partition's GPT name matches, MiB-aligned after the last
// partition, in order, and makes their filesystems; their UUIDs are in the
// returned Layout (Layout.ByLabel). Extra partitions need a GPT table.
//
// It is idempotent: a repeated call with the same request finds nothing to
// change and runs only read commands (and xfs_growfs when root is xfs).
func FixAndGrow(ctx context.Context, r CommandRunner, disk string, root Partition, size int64, extra []ExtraPartition) (Layout, error) {
	if err := validateDevice(disk); err != nil {
		return Layout{}, err
	}
	if size < 0 {
		return Layout{}, fmt.Errorf("root size %d: %w", size, ErrInvalid)
	}
	wanted := map[string]bool{}
	for _, e := range extra {
		if err := e.Validate(); err != nil {
			return Layout{}, err
		}
		if wanted[e.Label] {
			return Layout{}, fmt.Errorf("extra partition label %s listed twice: %w", e.Label, ErrInvalid)
		}
		wanted[e.Label] = true
	}
	l, err := Inspect(ctx, r, disk)
	if err != nil {
		return Layout{}, err
	}
	cur, ok := l.Partition(root.Number)
	if !ok || cur.Start != root.Start || (root.PartUUID != "" && cur.PartUUID != root.PartUUID) {
		return Layout{}, fmt.Errorf("root partition %d of %s is not the one inspected: %w", root.Number, disk, ErrConflict)
	}
	if len(extra) > 0 && l.Table != TableGPT {
		return Layout{}, fmt.Errorf("extra partitions on %s need a gpt table, not %s: %w", disk, l.Table, ErrInvalid)
	}
	if backupMisplaced(l) {
		if _, err := run(ctx, r, cmd("sgdisk", "-e", disk)); err != nil {
			return Layout{}, err
		}
		if l, err = Inspect(ctx, r, disk); err != nil {
			return Layout{}, err
		}
	}
	grown, err := growPartition(ctx, r, l, cur, size, extra, wanted)
	if err != nil {
		return Layout{}, err
	}
	if grown {
		if l, err = Inspect(ctx, r, disk); err != nil {
			return Layout{}, err
		}
		cur, _ = l.Partition(root.Number)
	}
	if err := growFilesystem(ctx, r, cur, grown); err != nil {
		return Layout{}, err
	}
	for _, e := range extra {
		if err := ensureExtra(ctx, r, disk, e); err != nil {
			return Layout{}, err
		}
	}
	return Inspect(ctx, r, disk)
}

// backupMisplaced reports whether a GPT's last usable sector leaves more
// room after it than a backup table of 128 entries and its header need.
func backupMisplaced(l Layout) bool {
	if l.Table != TableGPT {
		return false
	}
	ss := l.SectorSize
	backup := (gptEntryBytes+ss-1)/ss + 1
	return l.DiskSize/ss-l.LastUsable/ss > backup
}

func alignUp(v, a int64) int64   { return (v + a - 1) / a * a }
func alignDown(v, a int64) int64 { return v / a * a }

// growPartition grows cur when it ends before the target and reports
// whether it did.
func growPartition(ctx context.Context, r CommandRunner, l Layout, cur Partition, size int64, extra []ExtraPartition, wanted map[string]bool) (bool, error) {
	var reserve int64
	for _, e := range extra {
		if _, ok := l.ByLabel(e.Label); !ok {
			reserve += alignUp(e.Size, mib)
		}
	}
	limit := alignDown(l.LastUsable-reserve, mib)
	var foreign *Partition
	for _, p := range l.Partitions {
		if p.Start <= cur.Start {
			continue
		}
		limit = min(limit, p.Start)
		if !wanted[p.Label] && foreign == nil {
			foreign = &p
		}
	}
	want := limit
	if size > 0 {
		want = cur.Start + alignUp(size, l.SectorSize)
	}
	if want <= cur.End() {
		return false, nil
	}
	if foreign != nil {
		return false, fmt.Errorf("grow partition %d of %s: partition %d follows it: %w", cur.Number, l.Disk, foreign.Number, ErrRootNotLast)
	}
	if want > limit {
		return false, fmt.Errorf("grow partition %d of %s to %d bytes: only %d bytes free for it: %w", cur.Number, l.Disk, want-cur.Start, limit-cur.Start, ErrRootNotLast)
	}
	sectors := (want - cur.Start) / l.SectorSize
	c := cmd("sfdisk", "-N", strconv.Itoa(cur.Number), "--no-reread", "--no-tell-kernel", l.Disk).
		withStdin([]byte("," + strconv.FormatInt(sectors, 10) + "\n"))
	if _, err := run(ctx, r, c); err != nil {
		return false, err
	}
	if _, err := run(ctx, r, cmd("partx", "-u", l.Disk)); err != nil {
		return false, err
	}
	return true, nil
}

// growFilesystem grows p's filesystem to fill p.
func growFilesystem(ctx context.Context, r CommandRunner, p Partition, grown bool) error {
	switch {
	case p.FSType.isExt():
		fsSize, err := extSize(ctx, r, p.Path)
		if err != nil {
			return err
		}
		if !grown && p.Size-fsSize <= extGrowSlack {
			return nil
		}
		if _, err := run(ctx, r, cmd("e2fsck", "-f", "-y", p.Path)); err != nil {
			return err
		}
		_, err = run(ctx, r, cmd("resize2fs", p.Path))
		return err
	case p.FSType == FSXFS:
		return growXFS(ctx, r, p)
	case grown:
		return fmt.Errorf("grow %s filesystem on %s: unsupported: %w", p.FSType, p.Path, ErrInvalid)
	}
	return nil
}

// extSize returns the size of the ext filesystem on dev from tune2fs -l.
func extSize(ctx context.Context, r CommandRunner, dev string) (int64, error) {
	c := cmd("tune2fs", "-l", dev)
	out, err := run(ctx, r, c)
	if err != nil {
		return 0, err
	}
	count, bsize, err := parseTune2fs(out)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", c.display, err)
	}
	return count * bsize, nil
}

// parseTune2fs returns the block count and block size tune2fs -l prints.
func parseTune2fs(out []byte) (count, bsize int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Block count":
			count, err = strconv.ParseInt(v, 10, 64)
		case "Block size":
			bsize, err = strconv.ParseInt(v, 10, 64)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("parse %q: %w", sc.Text(), err)
		}
	}
	if count <= 0 || bsize <= 0 {
		return 0, 0, fmt.Errorf("no block count and size in output")
	}
	return count, bsize, nil
}

func growXFS(ctx context.Context, r CommandRunner, p Partition) (err error) {
	c := cmd("mktemp", "-d", "/run/bareflow-grow.XXXXXX")
	out, err := run(ctx, r, c)
	if err != nil {
		return err
	}
	dir := strings.TrimSpace(string(out))
	if !tempDirPattern.MatchString(dir) {
		return fmt.Errorf("%s: unexpected directory %q", c.display, dir)
	}
	defer func() {
		if _, rerr := run(ctx, r, cmd("rmdir", dir)); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if _, err := run(ctx, r, cmd("mount", "-t", "xfs", p.Path, dir)); err != nil {
		return err
	}
	_, err = run(ctx, r, cmd("xfs_growfs", dir))
	if _, uerr := run(ctx, r, cmd("umount", dir)); uerr != nil && err == nil {
		err = uerr
	}
	return err
}

// gptCode is the sgdisk type code for an extra partition's filesystem.
func gptCode(f FSType) string {
	switch f {
	case FSSwap:
		return "8200"
	case FSVFAT:
		return "0700"
	}
	return "8300"
}

// ensureExtra creates e when no partition has its label, and makes its
// filesystem unless one of the same type and label is there.
func ensureExtra(ctx context.Context, r CommandRunner, disk string, e ExtraPartition) error {
	l, err := Inspect(ctx, r, disk)
	if err != nil {
		return err
	}
	p, exists := l.ByLabel(e.Label)
	if exists {
		switch {
		case p.FSType == e.FSType && strings.EqualFold(p.FSLabel, e.Label):
			return nil
		case p.FSType != "" && p.FSType != e.FSType && strings.EqualFold(p.FSLabel, e.Label):
			return fmt.Errorf("partition %s labelled %s holds %s, not %s: %w", p.Path, e.Label, p.FSType, e.FSType, ErrConflict)
		}
	} else {
		if p, err = createPartition(ctx, r, l, e); err != nil {
			return err
		}
	}
	if _, err := run(ctx, r, script("wait-node", waitNodeScript, p.Path)); err != nil {
		return err
	}
	if _, err := run(ctx, r, cmd("wipefs", "-a", p.Path)); err != nil {
		return err
	}
	_, err = run(ctx, r, mkfs(e.FSType, e.Label, p.Path))
	return err
}

func createPartition(ctx context.Context, r CommandRunner, l Layout, e ExtraPartition) (Partition, error) {
	used := map[int]bool{}
	end := l.FirstUsable
	for _, p := range l.Partitions {
		used[p.Number] = true
		end = max(end, p.End())
	}
	num := 1
	for used[num] {
		num++
	}
	if num > 128 {
		return Partition{}, fmt.Errorf("create partition %s on %s: no free entry: %w", e.Label, l.Disk, ErrNoSpace)
	}
	start := alignUp(end, mib)
	stop := start + alignUp(e.Size, mib)
	if stop > l.LastUsable {
		return Partition{}, fmt.Errorf("create partition %s on %s: needs %d bytes from %d, disk usable to %d: %w", e.Label, l.Disk, stop-start, start, l.LastUsable, ErrNoSpace)
	}
	n := strconv.Itoa(num)
	ss := l.SectorSize
	c := cmd("sgdisk",
		"-n", n+":"+strconv.FormatInt(start/ss, 10)+":"+strconv.FormatInt(stop/ss-1, 10),
		"-t", n+":"+gptCode(e.FSType),
		"-c", n+":"+e.Label,
		l.Disk)
	if _, err := run(ctx, r, c); err != nil {
		return Partition{}, err
	}
	if _, err := run(ctx, r, cmd("partx", "-u", l.Disk)); err != nil {
		return Partition{}, err
	}
	return Partition{Number: num, Path: partitionPath(l.Disk, num), Start: start, Size: stop - start, Label: e.Label}, nil
}

func mkfs(f FSType, label, dev string) command {
	switch f {
	case FSXFS:
		return cmd("mkfs.xfs", "-q", "-f", "-L", label, dev)
	case FSVFAT:
		return cmd("mkfs.vfat", "-n", strings.ToUpper(label), dev)
	case FSSwap:
		return cmd("mkswap", "-L", label, dev)
	}
	return cmd("mkfs.ext4", "-q", "-F", "-L", label, dev)
}
