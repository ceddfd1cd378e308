package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

// RAIDSpecError is a spec the hardware cannot satisfy. Code is
// contract.ErrRAIDSpecInvalid or contract.ErrUnsupportedRAIDLevel.
type RAIDSpecError struct {
	Code   string
	Reason string
}

// Error implements error.
func (e *RAIDSpecError) Error() string { return e.Reason }

// RAIDBuildError is a build that failed part-way; Built lists the logical
// drives that exist.
type RAIDBuildError struct {
	Built []contract.BuiltVolume
	Err   error
}

// Error implements error.
func (e *RAIDBuildError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *RAIDBuildError) Unwrap() error { return e.Err }

// RAIDBuilder plans and builds RAID through a machine's controller tools.
type RAIDBuilder interface {
	// Check plans spec on the hardware of inv without touching it and
	// returns the plan, one line per step; an impossible spec is a
	// *RAIDSpecError.
	Check(spec contract.RAIDSpec, inv contract.Inventory) ([]string, error)
	// Build clears the controllers the spec uses, builds the arrays and
	// waits for their block devices. A spec error is a *RAIDSpecError, a
	// failure part-way a *RAIDBuildError.
	Build(ctx context.Context, sh RamdiskShell, spec contract.RAIDSpec, inv contract.Inventory, beat func(string)) ([]contract.BuiltVolume, error)
	// RootDisk picks the disk the OS goes on: the root volume when one was
	// built, otherwise the smallest suitable disk.
	RootDisk(inv contract.Inventory, volumes []contract.BuiltVolume) (string, error)
}

// RAIDKeeper records the RAID a machine has.
type RAIDKeeper interface {
	SaveRAID(ctx context.Context, machineID string, volumes []contract.BuiltVolume, rootDevice string) error
}

// RAID holds the activities of the MakeRAID workflow.
type RAID struct {
	Builder RAIDBuilder
	Dialer  RamdiskDialer
	Keeper  RAIDKeeper
}

// CheckRAIDInput asks whether a spec fits a machine's hardware.
type CheckRAIDInput struct {
	MachineID string
	Spec      contract.RAIDSpec
	Inventory contract.Inventory
}

// CheckRAIDResult is the plan, one line per step.
type CheckRAIDResult struct {
	Plan []string
}

// CheckRAID plans the spec on the machine's hardware, touching nothing; a
// spec the hardware cannot satisfy fails for good with the reason.
//
// Idempotent: it only computes. No heartbeat.
func (a *RAID) CheckRAID(_ context.Context, in CheckRAIDInput) (CheckRAIDResult, error) {
	plan, err := a.Builder.Check(in.Spec, in.Inventory)
	if err != nil {
		return CheckRAIDResult{}, raidError(err)
	}
	return CheckRAIDResult{Plan: plan}, nil
}

func raidError(err error) error {
	var se *RAIDSpecError
	if errors.As(err, &se) {
		return temporal.NewNonRetryableApplicationError(se.Reason, se.Code, nil)
	}
	var be *RAIDBuildError
	if errors.As(err, &be) {
		built := "nothing"
		if len(be.Built) > 0 {
			var parts []string
			for _, v := range be.Built {
				parts = append(parts, fmt.Sprintf("%s RAID %s %s on %s", v.ID, v.Level, v.Device, v.Controller))
			}
			built = strings.Join(parts, ", ")
		}
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("build RAID: %v; built so far: %s", be.Err, built), contract.ErrRAIDBuildFailed, nil, be.Built)
	}
	return err
}

// BuildRAIDInput asks for a RAID build in the machine's ramdisk.
type BuildRAIDInput struct {
	MachineID string
	Ramdisk   contract.RamdiskReady
	Spec      contract.RAIDSpec
	Inventory contract.Inventory
}

// BuildRAIDResult is what was built.
type BuildRAIDResult struct {
	Volumes []contract.BuiltVolume
}

// BuildRAID clears the controllers the spec uses, builds its arrays through
// each controller's tool and waits until their logical drives show up as
// block devices.
//
// Idempotent: it starts by clearing what the spec's controllers hold, so a
// re-run after a crash builds the same layout again. Heartbeats before every
// command and every few seconds while one runs.
func (a *RAID) BuildRAID(ctx context.Context, in BuildRAIDInput) (BuildRAIDResult, error) {
	defer keepBeating(ctx, "raid")()
	r := &Registration{Dialer: a.Dialer}
	sh, err := r.dial(ctx, RamdiskInput{MachineID: in.MachineID, Ramdisk: in.Ramdisk})
	if err != nil {
		return BuildRAIDResult{}, err
	}
	defer sh.Close()
	vols, err := a.Builder.Build(ctx, sh, in.Spec, in.Inventory, func(step string) { activity.RecordHeartbeat(ctx, step) })
	if err != nil {
		return BuildRAIDResult{}, raidError(err)
	}
	return BuildRAIDResult{Volumes: vols}, nil
}

// RecordRAIDInput records the RAID built on a machine.
type RecordRAIDInput struct {
	MachineID string
	Volumes   []contract.BuiltVolume
	// Inventory is the machine's hardware after the build: the root disk
	// is chosen from it.
	Inventory contract.Inventory
}

// RecordRAIDResult names the root disk chosen.
type RecordRAIDResult struct {
	RootDevice string
}

// RecordRAID chooses the machine's root disk (the root volume, or the
// smallest suitable disk) and records it with the volumes.
//
// Idempotent: an overwrite. No heartbeat.
func (a *RAID) RecordRAID(ctx context.Context, in RecordRAIDInput) (RecordRAIDResult, error) {
	root, err := a.Builder.RootDisk(in.Inventory, in.Volumes)
	if err != nil {
		return RecordRAIDResult{}, temporal.NewNonRetryableApplicationError("choose the root disk: "+err.Error(), contract.ErrRAIDVolumesMissing, nil)
	}
	if err := a.Keeper.SaveRAID(ctx, in.MachineID, in.Volumes, root); err != nil {
		return RecordRAIDResult{}, recordError("record the RAID", err)
	}
	return RecordRAIDResult{RootDevice: root}, nil
}
