package workers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"bareflow/activities"
	"bareflow/contract"
	"bareflow/internal/disklayout"
	"bareflow/internal/inventory"
	"bareflow/internal/osconfig"
	"bareflow/internal/store"
)

// installCommandTimeout bounds one command of the OS configuration (an
// e2fsck and resize2fs of a large filesystem included).
const installCommandTimeout = 30 * time.Minute

// mountPoint is where the written root filesystem is mounted in the
// ramdisk while it is configured.
const mountPoint = "/run/bareflow-root"

// shellRunner runs argv with standard input over a ramdisk shell, for the
// disk packages.
type shellRunner struct {
	sh   activities.RamdiskShell
	beat func(string)
}

func (r shellRunner) Run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error) {
	if len(argv) > 0 && r.beat != nil {
		r.beat(argv[0])
	}
	res, err := r.sh.Run(ctx, activities.ShellCommand{Argv: argv, Stdin: stdin, Timeout: installCommandTimeout, MaxOutput: 16 << 20})
	return res.Stdout, err
}

// osInstaller implements activities.OSInstaller with disklayout and
// osconfig.
type osInstaller struct{}

func (osInstaller) ChooseRootDisk(inv contract.Inventory, recorded string, hint contract.RootDiskHint, need int64) (string, error) {
	return inventory.ChooseRootDisk(inv, recorded, hint, need)
}

// Kept reads the partitions labelled labels from disk.
func (osInstaller) Kept(ctx context.Context, sh activities.RamdiskShell, disk string, labels []string) ([]activities.KeptPartition, error) {
	l, err := disklayout.Inspect(ctx, shellRunner{sh: sh}, disk)
	if err != nil {
		return nil, installErr(err)
	}
	if l.Table != disklayout.TableGPT {
		return nil, fmt.Errorf("%s has a %s table: only partitions of a gpt table can be kept: %w", disk, l.Table, activities.ErrInstallPermanent)
	}
	var out []activities.KeptPartition
	for _, label := range labels {
		p, ok := l.ByLabel(label)
		if !ok {
			return nil, fmt.Errorf("%s has no partition labelled %q to keep: %w", disk, label, activities.ErrInstallPermanent)
		}
		out = append(out, activities.KeptPartition{Number: p.Number, Label: p.Label, Start: p.Start, Size: p.Size, Type: p.Type,
			PartUUID: p.PartUUID, FSType: string(p.FSType), UUID: p.UUID})
	}
	return out, nil
}

// Configure lays out the written disk and configures its OS.
func (osInstaller) Configure(ctx context.Context, sh activities.RamdiskShell, req activities.ConfigureRequest, beat func(string)) (activities.ConfigureResult, error) {
	r := shellRunner{sh: sh, beat: beat}
	if len(req.Kept) > 0 {
		parts := make([]disklayout.Partition, len(req.Kept))
		for i, k := range req.Kept {
			parts[i] = disklayout.Partition{Number: k.Number, Label: k.Label, Start: k.Start, Size: k.Size, Type: k.Type, PartUUID: k.PartUUID}
		}
		if _, err := disklayout.Restore(ctx, r, req.Disk, parts); err != nil {
			return activities.ConfigureResult{}, installErr(err)
		}
	}
	l, err := disklayout.Inspect(ctx, r, req.Disk)
	if err != nil {
		return activities.ConfigureResult{}, installErr(err)
	}
	root, err := l.Select(disklayout.RootHint{})
	if err != nil {
		return activities.ConfigureResult{}, installErr(err)
	}
	var extra []disklayout.ExtraPartition
	listed := map[string]bool{}
	for _, p := range req.Partitions {
		listed[p.Label] = true
		extra = append(extra, disklayout.ExtraPartition{Label: p.Label, Size: p.SizeBytes, FSType: disklayout.FSType(p.Filesystem)})
	}
	for _, k := range req.Kept {
		if !listed[k.Label] {
			extra = append(extra, disklayout.ExtraPartition{Label: k.Label, Size: k.Size, FSType: disklayout.FSType(k.FSType)})
		}
	}
	if l, err = disklayout.FixAndGrow(ctx, r, req.Disk, root, req.RootSizeBytes, extra); err != nil {
		return activities.ConfigureResult{}, installErr(err)
	}
	root, _ = l.Partition(root.Number)
	var mounts []osconfig.Mount
	for _, p := range req.Partitions {
		part, ok := l.ByLabel(p.Label)
		if !ok || part.UUID == "" {
			return activities.ConfigureResult{}, fmt.Errorf("partition %s has no filesystem UUID after it was made", p.Label)
		}
		mp := p.MountPoint
		if p.Filesystem == string(disklayout.FSSwap) {
			mp = "none"
		}
		if mp == "" {
			continue
		}
		pass := 2
		if mp == "none" || p.Filesystem == string(disklayout.FSXFS) {
			pass = 0
		}
		mounts = append(mounts, osconfig.Mount{UUID: part.UUID, MountPoint: mp, FSType: p.Filesystem, Options: p.Options, Pass: pass})
	}
	cfg, err := osconfig.FromSettings(req.OS, mounts, req.InstanceID)
	if err != nil {
		return activities.ConfigureResult{}, installErr(err)
	}

	unmount, err := disklayout.MountRoot(ctx, r, root, mountPoint)
	if err != nil {
		return activities.ConfigureResult{}, installErr(err)
	}
	res, err := configureMounted(ctx, r, req.Family, cfg)
	// Unmount whatever happened, in a context of its own: a canceled
	// activity must not leave the root mounted for the next attempt.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	_, _ = r.Run(uctx, []string{"sync"}, nil)
	if uerr := unmount(uctx); uerr != nil && err == nil {
		err = uerr
	}
	if err != nil {
		return activities.ConfigureResult{}, installErr(err)
	}
	res.RootPartition, res.RootUUID, res.RootSizeBytes = root.Path, root.UUID, root.Size
	return res, nil
}

func configureMounted(ctx context.Context, r shellRunner, family contract.OSFamily, cfg osconfig.Config) (activities.ConfigureResult, error) {
	osRelease, err := disklayout.ReadFile(ctx, r, mountPoint, "/etc/os-release")
	if err != nil {
		return activities.ConfigureResult{}, err
	}
	if osRelease == nil {
		if osRelease, err = disklayout.ReadFile(ctx, r, mountPoint, "/usr/lib/os-release"); err != nil {
			return activities.ConfigureResult{}, err
		}
	}
	fam, flavor := osFlavor(family, osRelease)
	files, err := osconfig.Render(fam, flavor, cfg)
	if err != nil {
		return activities.ConfigureResult{}, err
	}
	edits, err := osconfig.Edits(fam, flavor, cfg)
	if err != nil {
		return activities.ConfigureResult{}, err
	}
	if err := disklayout.WriteFiles(ctx, r, mountPoint, files); err != nil {
		return activities.ConfigureResult{}, err
	}
	if err := disklayout.ApplyEdits(ctx, r, mountPoint, edits); err != nil {
		return activities.ConfigureResult{}, err
	}
	res := activities.ConfigureResult{Family: string(fam), Flavor: flavor}
	for _, f := range files {
		res.Files = append(res.Files, f.Path)
	}
	for _, e := range edits {
		res.Files = append(res.Files, e.Path)
	}
	return res, nil
}

// osFlavor decides how the OS is configured: from the written system's
// os-release when it names a known distribution, else from the image's
// declared family.
func osFlavor(family contract.OSFamily, osRelease []byte) (osconfig.Family, string) {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(osRelease))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok {
			vals[k] = strings.Trim(v, `"'`)
		}
	}
	ids := strings.Fields(strings.ToLower(vals["ID"] + " " + vals["ID_LIKE"]))
	has := func(names ...string) bool {
		for _, id := range ids {
			for _, n := range names {
				if id == n {
					return true
				}
			}
		}
		return false
	}
	major, _, _ := strings.Cut(vals["VERSION_ID"], ".")
	switch {
	case strings.EqualFold(vals["ID"], "ubuntu"):
		return osconfig.Debian, osconfig.FlavorUbuntu
	case has("debian", "ubuntu"):
		return osconfig.Debian, osconfig.FlavorDebian
	case has("rhel", "centos", "fedora", "rocky", "almalinux", "ol") && major != "":
		if has("fedora") && !has("rhel", "centos") {
			// Fedora's NetworkManager reads keyfiles like RHEL 9.
			return osconfig.RHEL, "9"
		}
		return osconfig.RHEL, major
	case has("suse", "opensuse", "sles", "sled"):
		return osconfig.SUSE, vals["VERSION_ID"]
	}
	switch family {
	case contract.OSDebian:
		return osconfig.Debian, osconfig.FlavorDebian
	case contract.OSUbuntu:
		return osconfig.Debian, osconfig.FlavorUbuntu
	case contract.OSRHEL:
		return osconfig.RHEL, "9"
	case contract.OSSUSE:
		return osconfig.SUSE, ""
	}
	return osconfig.Generic, ""
}

// installErr marks the disk and configuration errors that no retry fixes.
func installErr(err error) error {
	for _, perm := range []error{disklayout.ErrInvalid, disklayout.ErrNoPartitionTable, disklayout.ErrNoRoot, disklayout.ErrRootNotLast,
		disklayout.ErrNoSpace, disklayout.ErrConflict, disklayout.ErrSymlink, osconfig.ErrInvalidConfig, osconfig.ErrUnsupportedFamily} {
		if errors.Is(err, perm) {
			return fmt.Errorf("%w: %w", activities.ErrInstallPermanent, err)
		}
	}
	return err
}

// installKeeper implements activities.InstallKeeper on the store.
type installKeeper struct{ st *store.Store }

func (k installKeeper) RootDevice(ctx context.Context, machineID string) (string, error) {
	_, root, err := k.st.RAID(ctx, machineID)
	return root, storeErr(err)
}

func (k installKeeper) RecordInstall(ctx context.Context, machineID string, rec activities.InstallRecord) error {
	return storeErr(k.st.RecordInstall(ctx, machineID, store.InstalledOS{
		ImageID: rec.Image, RootDisk: rec.RootDisk, Hostname: rec.Hostname, Address: rec.Address,
	}))
}
