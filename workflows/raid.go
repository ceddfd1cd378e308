package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

// MakeRAID timeouts and steps.
const (
	// raidBuildTimeout bounds a build: clears, creates and the wait for
	// the block devices.
	raidBuildTimeout = 30 * time.Minute
	stepCheckRAID    = "check_raid"
	stepBuildRAID    = "build_raid"
	stepRecordRAID   = "record_raid"
)

var raidActs *activities.RAID

// MakeRAID builds a machine's RAID: it gets the machine into the ramdisk,
// reads its controllers and disks, checks the spec against them before
// anything is touched, clears the controllers the spec uses, builds the
// arrays, waits for their block devices, and records them with the root
// disk chosen. It runs on the machine's workflow ID.
func MakeRAID(ctx workflow.Context, in contract.MakeRAIDInput) (contract.MakeRAIDResult, error) {
	w := &raidWorkflow{in: in}
	if err := w.setup(ctx); err != nil {
		return contract.MakeRAIDResult{}, err
	}
	return w.run(ctx)
}

type raidWorkflow struct {
	*ramdiskFlow
	in  contract.MakeRAIDInput
	res contract.MakeRAIDResult
}

func (w *raidWorkflow) setup(ctx workflow.Context) error {
	if w.in.MachineID == "" {
		return temporal.NewNonRetryableApplicationError("machine ID is required", contract.ErrInvalidInput, nil)
	}
	if len(w.in.Spec.Arrays) == 0 {
		return temporal.NewNonRetryableApplicationError("the RAID spec has no array", contract.ErrRAIDSpecInvalid, nil)
	}
	for i, a := range w.in.Spec.Arrays {
		if err := a.Level.Validate(); err != nil {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("array %d: %v", i+1, err), contract.ErrRAIDSpecInvalid, nil)
		}
	}
	w.res = contract.MakeRAIDResult{MachineID: w.in.MachineID}
	op, err := newOperation(ctx, w.in.OperationID, w.in.MachineID, contract.OperationRAID, w.in.RequestedBy)
	w.ramdiskFlow = newRamdiskFlow(w.in.MachineID, op, w.in.RamdiskTimeout, false)
	return err
}

func (w *raidWorkflow) run(ctx workflow.Context) (contract.MakeRAIDResult, error) {
	// Building RAID clears the disks: whatever ran there is gone.
	err := w.runOperation(ctx, contract.MachineReady, func(err error) bool { return err == nil && w.in.LeaveInRamdisk }, w.act)
	return w.res, err
}

func (w *raidWorkflow) act(ctx workflow.Context) error {
	ready, err := w.ensureRamdisk(ctx, "")
	if err != nil {
		return err
	}
	inv, err := w.collect(ctx, ready, 0.2)
	if err != nil {
		return err
	}
	vols, root, _, err := w.buildRAID(ctx, ready, inv, w.in.Spec, 0.3)
	if err != nil {
		return err
	}
	w.res.Volumes, w.res.RootDevice = vols, root
	if !w.in.LeaveInRamdisk {
		return w.powerOff(ctx, ready)
	}
	return nil
}

// buildRAID checks spec against the hardware, builds it, reads the disks
// again and records the volumes with the root disk chosen. Its steps take
// the operation's progress from base to base+0.55.
func (w *ramdiskFlow) buildRAID(ctx workflow.Context, ready contract.RamdiskReady, inv contract.Inventory, spec contract.RAIDSpec, base float64) ([]contract.BuiltVolume, string, contract.Inventory, error) {
	w.op.step(ctx, stepCheckRAID, base)
	var check activities.CheckRAIDResult
	if err := workflow.ExecuteActivity(recordOptions(ctx), raidActs.CheckRAID, activities.CheckRAIDInput{
		MachineID: w.machineID, Spec: spec, Inventory: inv,
	}).Get(ctx, &check); err != nil {
		return nil, "", inv, err
	}
	for _, line := range check.Plan {
		workflow.GetLogger(ctx).Info("RAID plan", "machine_id", w.machineID, "step", line)
	}
	w.op.step(ctx, stepBuildRAID, base+0.1)
	bctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: raidBuildTimeout,
		HeartbeatTimeout:    shellHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 3,
		},
	})
	var built activities.BuildRAIDResult
	if err := workflow.ExecuteActivity(bctx, raidActs.BuildRAID, activities.BuildRAIDInput{
		MachineID: w.machineID, Ramdisk: ready, Spec: spec, Inventory: inv,
	}).Get(ctx, &built); err != nil {
		return nil, "", inv, err
	}
	// The disks the OS sees now, arrays included.
	after, err := w.collect(ctx, ready, base+0.5)
	if err != nil {
		return built.Volumes, "", inv, err
	}
	w.op.step(ctx, stepRecordRAID, base+0.55)
	var rec activities.RecordRAIDResult
	if err := workflow.ExecuteActivity(recordOptions(ctx), raidActs.RecordRAID, activities.RecordRAIDInput{
		MachineID: w.machineID, Volumes: built.Volumes, Inventory: after,
	}).Get(ctx, &rec); err != nil {
		return built.Volumes, "", after, err
	}
	return built.Volumes, rec.RootDevice, after, nil
}
