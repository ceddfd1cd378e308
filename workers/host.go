package workers

import (
	"context"
	"errors"
	"fmt"

	"bareflow/activities"
	"bareflow/contract"
	"bareflow/internal/disklayout"
	"bareflow/internal/store"
)

const mib = 1 << 20

// newHosts returns the host activities on the store and the ramdisk dialer.
func newHosts(st *store.Store, dialer activities.RamdiskDialer) *activities.Hosts {
	return &activities.Hosts{Dialer: dialer, Layout: hostLayouter{}, Keeper: hostKeeper{st: st}}
}

// hostLayouter implements activities.HostLayouter with disklayout.
type hostLayouter struct{}

func (hostLayouter) Plan(ctx context.Context, sh activities.RamdiskShell, disk string, rootSize, reserved int64) (activities.HostLayoutPlan, error) {
	l, err := disklayout.Inspect(ctx, shellRunner{sh: sh}, disk)
	if err != nil {
		return activities.HostLayoutPlan{}, installErr(err)
	}
	root, err := l.Select(disklayout.RootHint{})
	if err != nil {
		return activities.HostLayoutPlan{}, installErr(err)
	}
	return planHostLayout(l, root, rootSize, reserved)
}

// planHostLayout sizes a host's root and workspace on the layout l of the
// written disk: the root grows to rootSize (the default, or half of what the
// disk offers when the default does not leave a workspace), the workspace
// takes what is left after the reserved bytes of the other extra
// partitions, up to a MiB short of the disk's end (the room of the backup
// GPT). A workspace made by an earlier attempt is taken as it is.
func planHostLayout(l disklayout.Layout, root disklayout.Partition, rootSize, reserved int64) (activities.HostLayoutPlan, error) {
	if ws, ok := l.ByLabel(contract.WorkspaceLabel); ok {
		return activities.HostLayoutPlan{RootSizeBytes: root.Size, WorkspaceSizeBytes: ws.Size}, nil
	}
	if l.Table != disklayout.TableGPT {
		return activities.HostLayoutPlan{}, fmt.Errorf("%s has a %s table: the workspace partition needs gpt: %w",
			l.Disk, l.Table, activities.ErrInstallPermanent)
	}
	end := (l.DiskSize - mib) / mib * mib
	if rootSize <= 0 {
		rootSize = contract.DefaultHostRootSize
		if root.Start+rootSize+reserved+contract.MinWorkspaceSize > end {
			rootSize = (end - root.Start - reserved) / 2 / mib * mib
		}
	}
	rootSize = max(rootSize, root.Size)
	rootEnd := (root.Start + rootSize + mib - 1) / mib * mib
	ws := (end - rootEnd - reserved) / mib * mib
	if ws < contract.MinWorkspaceSize {
		return activities.HostLayoutPlan{}, fmt.Errorf(
			"%s (%d bytes) is too small for a root of %d bytes from %d, %d bytes of other partitions and a workspace of at least %d bytes: %w",
			l.Disk, l.DiskSize, rootSize, root.Start, reserved, int64(contract.MinWorkspaceSize), activities.ErrInstallPermanent)
	}
	return activities.HostLayoutPlan{RootSizeBytes: rootSize, WorkspaceSizeBytes: ws}, nil
}

// hostKeeper implements activities.HostKeeper on the store.
type hostKeeper struct{ st *store.Store }

func (k hostKeeper) RecordHost(ctx context.Context, machineID string, c contract.HostCapacity) error {
	return storeErr(k.st.RecordHost(ctx, store.Host{
		MachineID: machineID, AgentURL: c.AgentURL, CPUs: c.CPUs, MemoryBytes: c.MemoryBytes, StorageBytes: c.StorageBytes,
		WorkspacePath: c.WorkspacePath,
	}))
}

func (k hostKeeper) ClaimUndo(ctx context.Context, machineID string) error {
	err := k.st.ClaimHostUndo(ctx, machineID)
	if errors.Is(err, store.ErrHostHasGuests) {
		return fmt.Errorf("%w: %w", activities.ErrHostHasGuests, err)
	}
	return storeErr(err)
}

func (k hostKeeper) RemoveHost(ctx context.Context, machineID string) error {
	return storeErr(k.st.RemoveHost(ctx, machineID))
}
