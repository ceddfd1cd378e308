package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

// ErrHostHasGuests is wrapped by a HostKeeper when a host to undo still
// runs guests.
var ErrHostHasGuests = errors.New("the host runs guests")

// HostLayoutPlan is the host disk layout worked out on the written disk: the
// root's size and the workspace's, which takes the rest.
type HostLayoutPlan struct {
	RootSizeBytes      int64
	WorkspaceSizeBytes int64
}

// HostLayouter works out a host's disk layout from the disk the image was
// written to. Its errors wrap ErrInstallPermanent when the disk cannot take
// the layout.
type HostLayouter interface {
	// Plan sizes the root (rootSize, or the default bounded by the disk
	// when 0) and the workspace, which takes what the root and reserved
	// bytes of other extra partitions leave.
	Plan(ctx context.Context, sh RamdiskShell, disk string, rootSize, reserved int64) (HostLayoutPlan, error)
}

// HostKeeper records hypervisor hosts.
type HostKeeper interface {
	// RecordHost records the machine as a host with its capacity.
	RecordHost(ctx context.Context, machineID string, c contract.HostCapacity) error
	// ClaimUndo marks a host as being turned back; it fails with
	// ErrHostHasGuests while it has guests, ErrNotFound when it is no host.
	ClaimUndo(ctx context.Context, machineID string) error
	// RemoveHost drops the host record; a missing one is no error.
	RemoveHost(ctx context.Context, machineID string) error
}

// Hosts holds the activities of ConvertToHost and UndoHost besides those of
// Install and Wipe.
type Hosts struct {
	Dialer RamdiskDialer
	Layout HostLayouter
	Keeper HostKeeper
}

// PlanHostLayoutInput asks for a host's disk layout.
type PlanHostLayoutInput struct {
	MachineID     string
	Ramdisk       contract.RamdiskReady
	Disk          string
	RootSizeBytes int64
	// ReservedBytes is the room of the request's other extra partitions.
	ReservedBytes int64
}

// PlanHostLayout reads the written disk's partition table and sizes the
// root and the workspace.
//
// Idempotent: reads only (a workspace made by an earlier attempt is taken
// at its size). Heartbeats every few seconds.
func (a *Hosts) PlanHostLayout(ctx context.Context, in PlanHostLayoutInput) (HostLayoutPlan, error) {
	defer keepBeating(ctx, "plan the host layout")()
	sh, err := (&Registration{Dialer: a.Dialer}).dial(ctx, RamdiskInput{MachineID: in.MachineID, Ramdisk: in.Ramdisk})
	if err != nil {
		return HostLayoutPlan{}, err
	}
	defer sh.Close()
	plan, err := a.Layout.Plan(ctx, sh, in.Disk, in.RootSizeBytes, in.ReservedBytes)
	if err != nil {
		return HostLayoutPlan{}, installError(contract.ErrDiskLayout, err)
	}
	return plan, nil
}

// RecordHostInput records a converted machine.
type RecordHostInput struct {
	MachineID string
	Capacity  contract.HostCapacity
}

// RecordHost records the machine as a hypervisor host.
//
// Idempotent: an upsert that keeps the guest count. No heartbeat.
func (a *Hosts) RecordHost(ctx context.Context, in RecordHostInput) error {
	if err := a.Keeper.RecordHost(ctx, in.MachineID, in.Capacity); err != nil {
		return recordError("record the host", err)
	}
	return nil
}

// HostInput names a host.
type HostInput struct {
	MachineID string
}

// ClaimHostUndo marks the host as being turned back, refusing a host with
// guests (HostHasGuests) and a machine that is no host (NotAHost).
//
// Idempotent: claiming again changes nothing. No heartbeat.
func (a *Hosts) ClaimHostUndo(ctx context.Context, in HostInput) error {
	err := a.Keeper.ClaimUndo(ctx, in.MachineID)
	switch {
	case errors.Is(err, ErrHostHasGuests):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("machine %s: %v", in.MachineID, err), contract.ErrHostHasGuests, nil)
	case errors.Is(err, ErrNotFound):
		return temporal.NewNonRetryableApplicationError("machine "+in.MachineID+" is not a hypervisor host", contract.ErrNotAHost, nil)
	case err != nil:
		return recordError("claim the host", err)
	}
	return nil
}

// RemoveHost drops the host record.
//
// Idempotent: a missing record is no error. No heartbeat.
func (a *Hosts) RemoveHost(ctx context.Context, in HostInput) error {
	if err := a.Keeper.RemoveHost(ctx, in.MachineID); err != nil {
		return recordError("remove the host", err)
	}
	return nil
}
