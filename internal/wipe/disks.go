package wipe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Disks destroys the partition tables and signatures of each whole disk,
// given as /dev/NAME, in the order doc.go explains: it unmounts what is
// mounted from the disk or anything stacked on it and turns off its swap,
// deactivates LVM volume groups on it (when the ramdisk has vgchange),
// stops the md arrays using it and zeroes their members' superblocks,
// wipes every partition's signatures then the disk's (wipefs -a), zaps
// both GPT headers and the protective MBR (sgdisk --zap-all), zeroes the
// first and last MiB, and makes the kernel forget the partitions (partx
// -d when present, blockdev --rereadpt). It then verifies: wipefs -n and
// blkid -p must find nothing on the disk, and the kernel must list no
// partition; otherwise the error wraps ErrSurvived and says what is left.
//
// Disks is idempotent: on a blank disk every step succeeds and changes
// nothing. Each disk is wiped even when another failed; the error joins
// one error per failed disk, each naming its disk. Paths that are not
// /dev/NAME are refused with ErrInvalid before anything runs.
func Disks(ctx context.Context, r CommandRunner, disks []string) error {
	var names []string
	for _, d := range disks {
		n, err := diskName(d)
		if err != nil {
			return err
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	have, err := tools(ctx, r, "mdadm", "vgchange", "dmsetup", "partx")
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := wipeDisk(ctx, r, n, have); err != nil {
			errs = append(errs, fmt.Errorf("wipe /dev/%s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// wipeDisk wipes one disk.
func wipeDisk(ctx context.Context, r CommandRunner, name string, have map[string]bool) error {
	f, err := inspect(ctx, r, name)
	if err != nil {
		return err
	}
	if f.readOnly {
		return fmt.Errorf("/dev/%s is read-only: %w", name, ErrBusy)
	}
	if err := release(ctx, r, f, have); err != nil {
		return err
	}
	if f, err = inspect(ctx, r, name); err != nil {
		return err
	}
	if hs := f.holders(); len(hs) > 0 {
		return fmt.Errorf("/dev/%s is still held by %s: %w", name, nodeNames(hs), ErrBusy)
	}

	// Partitions first: their signatures sit inside the disk where
	// wiping the disk's own (the tables) leaves them.
	for _, p := range f.partitions() {
		if _, err := run(ctx, r, cmd("wipefs", "-a", "/dev/"+p.name)); err != nil {
			return err
		}
	}
	disk := "/dev/" + name
	if _, err := run(ctx, r, cmd("wipefs", "-a", disk)); err != nil {
		return err
	}
	if _, err := run(ctx, r, cmd("sgdisk", "--zap-all", disk)); err != nil {
		return err
	}
	if err := zeroEnds(ctx, r, disk, f.sizeBytes); err != nil {
		return err
	}
	if err := forgetPartitions(ctx, r, name, have); err != nil {
		return err
	}
	return verifyBlank(ctx, r, name)
}

// release frees the disk's tree: mounts, swap, device-mapper targets and
// md arrays, deepest first.
func release(ctx context.Context, r CommandRunner, f diskFacts, have map[string]bool) error {
	u, err := usageOf(ctx, r, f)
	if err != nil {
		return err
	}
	// Innermost mounts are listed last in mountinfo: unmount from the end.
	for _, m := range slices.Backward(u.mounts) {
		if _, err := run(ctx, r, cmd("umount", m)); err != nil {
			return fmt.Errorf("unmount %s: %w: %w", m, ErrBusy, err)
		}
	}
	for _, s := range u.swaps {
		if _, err := run(ctx, r, cmd("swapoff", s)); err != nil {
			return fmt.Errorf("swapoff %s: %w: %w", s, ErrBusy, err)
		}
	}

	// The tree is printed parents first: walking it backwards releases
	// what is stacked on a device before the device.
	done := map[string]bool{}
	var vgsOff []string
	var stopped []node
	for _, n := range slices.Backward(f.nodes) {
		if n.kind != "holder" || done[n.name] {
			continue
		}
		done[n.name] = true
		switch {
		case n.isDM() && strings.HasPrefix(n.dmUUID, "LVM-"):
			vg := lvmVG(n.dmName)
			if vg == "" || slices.Contains(vgsOff, vg) {
				continue
			}
			if !have["vgchange"] {
				return fmt.Errorf("LVM volume %s sits on the disk and the ramdisk has no vgchange: %w", n.dmName, ErrBusy)
			}
			if _, err := run(ctx, r, cmd("vgchange", "-an", vg)); err != nil {
				return fmt.Errorf("deactivate volume group %s: %w: %w", vg, ErrBusy, err)
			}
			vgsOff = append(vgsOff, vg)
		case n.isDM():
			if !have["dmsetup"] {
				return fmt.Errorf("device-mapper target %s (%s) sits on the disk and the ramdisk has no dmsetup: %w", n.dmName, n.name, ErrBusy)
			}
			if _, err := run(ctx, r, cmd("dmsetup", "remove", n.dmName)); err != nil {
				return fmt.Errorf("remove device-mapper target %s: %w: %w", n.dmName, ErrBusy, err)
			}
		case n.isMD():
			if !have["mdadm"] {
				return fmt.Errorf("md array %s uses the disk and the ramdisk has no mdadm: %w", n.name, ErrBusy)
			}
			if _, err := run(ctx, r, cmd("mdadm", "--stop", "/dev/"+n.name)); err != nil {
				return fmt.Errorf("stop md array %s: %w: %w", n.name, ErrBusy, err)
			}
			stopped = append(stopped, n)
		default:
			return fmt.Errorf("%s is stacked on the disk and the package cannot release it: %w", n.name, ErrBusy)
		}
	}
	// The members of the stopped arrays on this disk lose their
	// superblocks, so that nothing assembles them again.
	var zeroed []string
	for _, md := range slices.Backward(stopped) {
		for _, n := range f.nodes {
			if n.name != md.name || n.kind != "holder" {
				continue
			}
			i := slices.IndexFunc(f.nodes, func(p node) bool { return p.name == n.parent && (p.kind == "disk" || p.kind == "part") })
			if i < 0 || slices.Contains(zeroed, n.parent) {
				continue
			}
			if _, err := run(ctx, r, cmd("mdadm", "--zero-superblock", "/dev/"+n.parent)); err != nil {
				return fmt.Errorf("zero the md superblock of %s: %w", n.parent, err)
			}
			zeroed = append(zeroed, n.parent)
		}
	}
	return nil
}

// lvmVG returns the volume group of an LVM device-mapper name: LVM writes
// "VG-LV" with each '-' inside VG and LV doubled.
func lvmVG(dmName string) string {
	var b strings.Builder
	for i := 0; i < len(dmName); i++ {
		if dmName[i] != '-' {
			b.WriteByte(dmName[i])
			continue
		}
		if i+1 < len(dmName) && dmName[i+1] == '-' {
			b.WriteByte('-')
			i++
			continue
		}
		return b.String()
	}
	return ""
}

// zeroEnds writes zeros over the first and last MiB of disk (the whole of
// a disk of less than 2 MiB): boot sectors, both GPT headers, md 0.90 and
// 1.0 superblocks and other metadata kept at the end.
func zeroEnds(ctx context.Context, r CommandRunner, disk string, size int64) error {
	const mib = 1 << 20
	if size <= 0 {
		return fmt.Errorf("%s has no size: %w", disk, ErrNoDisk)
	}
	if size < 2*mib {
		_, err := run(ctx, r, cmd("dd", "if=/dev/zero", "of="+disk, "bs="+itoa(size), "count=1", "conv=notrunc,fsync", "status=none"))
		return err
	}
	if _, err := run(ctx, r, cmd("dd", "if=/dev/zero", "of="+disk, "bs=1048576", "count=1", "conv=notrunc,fsync", "status=none")); err != nil {
		return err
	}
	_, err := run(ctx, r, cmd("dd", "if=/dev/zero", "of="+disk, "bs=1048576", "count=1", "seek="+itoa(size-mib),
		"oflag=seek_bytes", "conv=notrunc,fsync", "status=none"))
	return err
}

// forgetPartitions makes the kernel drop the disk's partitions: partx -d
// (BLKPG, works on a disk the kernel will not re-read), then blockdev
// --rereadpt. Either may fail on a disk without partitions, or one whose
// driver does not re-read (a loop device without partition scanning);
// the check that follows is what counts.
func forgetPartitions(ctx context.Context, r CommandRunner, name string, have map[string]bool) error {
	disk := "/dev/" + name
	if have["partx"] {
		_, _ = run(ctx, r, cmd("partx", "-d", disk))
	}
	_, _ = run(ctx, r, cmd("blockdev", "--rereadpt", disk))
	f, err := inspect(ctx, r, name)
	if err != nil {
		return err
	}
	if ps := f.partitions(); len(ps) > 0 {
		return fmt.Errorf("the kernel still lists partitions %s of %s (in use?): %w", nodeNames(ps), disk, ErrSurvived)
	}
	return nil
}

// blkidScript runs blkid's low-level probe on $1 and prints its exit
// status last: 2 means it found nothing.
const blkidScript = `blkid -p -o export "$1" 2>&1; echo "blkid-exit=$?"`

// verifyBlank checks that wipefs and blkid find nothing on the disk.
func verifyBlank(ctx context.Context, r CommandRunner, name string) error {
	disk := "/dev/" + name
	w, err := run(ctx, r, cmd("wipefs", "-n", disk))
	if err != nil {
		return err
	}
	b, err := run(ctx, r, script("blkid", blkidScript, disk))
	if err != nil {
		return err
	}
	var found []string
	if s := oneLine(w); s != "" {
		found = append(found, "wipefs finds "+shorten(s, 300))
	}
	var probe []string
	exit := ""
	for l := range strings.Lines(string(b)) {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "blkid-exit="); ok {
			exit = v
		} else if l != "" && !strings.HasPrefix(l, "DEVNAME=") {
			probe = append(probe, l)
		}
	}
	if exit != "2" || len(probe) > 0 {
		found = append(found, fmt.Sprintf("blkid -p finds %s (exit status %s)", shorten(strings.Join(probe, " "), 300), exit))
	}
	if len(found) > 0 {
		return fmt.Errorf("%w on %s: %s", ErrSurvived, disk, strings.Join(found, "; "))
	}
	return nil
}

func nodeNames(ns []node) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.name)
	}
	return strings.Join(s, ", ")
}
