package workers

import (
	"context"
	"errors"
	"fmt"

	"bareflow/activities"
	"bareflow/contract"
	"bareflow/internal/raid"
	"bareflow/internal/store"
	"bareflow/internal/wipe"
)

// diskWiper implements activities.DiskWiper with packages wipe and raid.
type diskWiper struct{}

// ClearRAID tears down every RAID configuration the inventory shows.
func (diskWiper) ClearRAID(ctx context.Context, sh activities.RamdiskShell, inv contract.Inventory, beat func(string)) error {
	layout, err := raid.PlanClear(inv)
	if err != nil {
		return fmt.Errorf("plan the RAID teardown: %w: %w", activities.ErrWipePermanent, err)
	}
	if _, err := raid.Apply(ctx, &shellArgv{sh: sh, beat: beat}, layout, beat); err != nil {
		if errors.Is(err, raid.ErrWrongController) {
			return fmt.Errorf("tear the RAID down: %w: %w", activities.ErrWipePermanent, err)
		}
		return fmt.Errorf("tear the RAID down: %w", err)
	}
	return nil
}

// Wipe removes tables and signatures from the disks and checks them.
func (diskWiper) Wipe(ctx context.Context, sh activities.RamdiskShell, disks []string, beat func(string)) error {
	err := wipe.Disks(ctx, shellRunner{sh: sh, beat: beat}, disks)
	if err != nil && (errors.Is(err, wipe.ErrSurvived) || errors.Is(err, wipe.ErrInvalid) || errors.Is(err, wipe.ErrNoDisk)) {
		return fmt.Errorf("%w: %w", activities.ErrWipePermanent, err)
	}
	return err
}

// StartErase starts, or finds, the disk's detached erase job.
func (diskWiper) StartErase(ctx context.Context, sh activities.RamdiskShell, disk string, method contract.EraseMethod, request string) (string, error) {
	st, err := wipe.StartErase(ctx, shellRunner{sh: sh}, disk, wipe.EraseOptions{Method: wipe.Method(method), Request: request})
	if err != nil {
		if errors.Is(err, wipe.ErrUnsupported) || errors.Is(err, wipe.ErrFrozen) || errors.Is(err, wipe.ErrInvalid) ||
			errors.Is(err, wipe.ErrNoDisk) {
			return "", fmt.Errorf("%w: %w", activities.ErrWipePermanent, err)
		}
		return "", err
	}
	m := string(st.Method)
	if st.Variant != "" {
		m += " (" + st.Variant + ")"
	}
	return m, nil
}

// EraseStatus reads the disk's erase job; a failed job is reported in the
// state, not as an error.
func (diskWiper) EraseStatus(ctx context.Context, sh activities.RamdiskShell, disk string) (activities.EraseState, error) {
	st, err := wipe.EraseStatus(ctx, shellRunner{sh: sh}, disk, "")
	out := activities.EraseState{Disk: disk, Method: string(st.Method), Percent: st.Percent, Done: st.Status == wipe.JobDone,
		Error: st.Error, Running: st.Alive}
	switch {
	case errors.Is(err, wipe.ErrEraseFailed):
		if out.Error == "" {
			out.Error = err.Error()
		}
		return out, nil
	case errors.Is(err, wipe.ErrNoJob):
		return out, fmt.Errorf("%w: %w", activities.ErrWipePermanent, err)
	case err != nil:
		return out, err
	}
	return out, nil
}

// wipeKeeper implements activities.WipeKeeper on the store.
type wipeKeeper struct{ st *store.Store }

func (k wipeKeeper) ClearRAID(ctx context.Context, machineID string) error {
	return storeErr(k.st.SaveRAID(ctx, machineID, nil, ""))
}

func (k wipeKeeper) ReleaseMachineLeases(ctx context.Context, machineID string) (int, error) {
	n, err := k.st.ReleaseMachineLeases(ctx, machineID)
	return n, storeErr(err)
}
