package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

// Wipe steps, besides those of every ramdisk operation.
const (
	stepWipeDisks = "wipe_disks"
	stepClearRAID = "clear_raid"
	stepErase     = "erase"
	stepRelease   = "release"
)

// Wipe timeouts.
const (
	wipeTimeout = 30 * time.Minute
	// eraseHeartbeat is the heartbeat timeout of EraseDisks, which
	// heartbeats on every poll of the erase jobs.
	eraseHeartbeat = 2 * time.Minute
)

var wiper *activities.Wiper

// Wipe returns a machine to a blank `ready`: it gets the machine into the
// ramdisk, stops its md arrays, removes every partition table and
// filesystem signature, tears its RAID configuration down (unless told to
// keep it) and wipes the disks that then appear, erases the data when
// asked (detached jobs in the ramdisk that a worker restart does not stop),
// gives back its OS network addresses and powers it off. It runs on the
// machine's workflow ID.
func Wipe(ctx workflow.Context, in contract.WipeInput) (contract.WipeResult, error) {
	if in.MachineID == "" {
		return contract.WipeResult{}, temporal.NewNonRetryableApplicationError("machine ID is required", contract.ErrInvalidInput, nil)
	}
	if err := in.Erase.Validate(); err != nil {
		return contract.WipeResult{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrInvalidInput, nil)
	}
	if in.EraseTimeout <= 0 {
		in.EraseTimeout = contract.DefaultEraseTimeout
	}
	op, err := newOperation(ctx, in.OperationID, in.MachineID, contract.OperationWipe, in.RequestedBy)
	w := &wipeWorkflow{in: in, ramdiskFlow: newRamdiskFlow(in.MachineID, op, in.RamdiskTimeout, false),
		res: contract.WipeResult{MachineID: in.MachineID}}
	if err != nil {
		return w.res, err
	}
	err = w.runOperation(ctx, contract.MachineReady, func(err error) bool { return err != nil }, w.act)
	return w.res, err
}

type wipeWorkflow struct {
	*ramdiskFlow
	in  contract.WipeInput
	res contract.WipeResult
}

func (w *wipeWorkflow) act(ctx workflow.Context) error {
	ready, err := w.ensureRamdisk(ctx, contract.MachineWiping)
	if err != nil {
		return err
	}
	inv, err := w.collect(ctx, ready, 0.15)
	if err != nil {
		return err
	}
	wctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: wipeTimeout,
		HeartbeatTimeout:    shellHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5,
		},
	})
	w.op.step(ctx, stepWipeDisks, 0.2)
	var wiped activities.WipeDisksResult
	if err := workflow.ExecuteActivity(wctx, wiper.WipeDisks, activities.WipeDisksInput{
		MachineID: w.machineID, Ramdisk: ready, Inventory: inv, ClearRAID: !w.in.KeepRAID,
	}).Get(ctx, &wiped); err != nil {
		return err
	}
	disks := wiped.Disks
	if !w.in.KeepRAID && len(inv.RAID) > 0 {
		// Without their logical drives the controllers show their disks:
		// those carry the old arrays' data and signatures too.
		w.op.step(ctx, stepClearRAID, 0.35)
		after, err := w.collect(ctx, ready, 0.4)
		if err != nil {
			return err
		}
		if err := workflow.ExecuteActivity(wctx, wiper.WipeDisks, activities.WipeDisksInput{
			MachineID: w.machineID, Ramdisk: ready, Inventory: after,
		}).Get(ctx, &wiped); err != nil {
			return err
		}
		disks = wiped.Disks
	}
	w.res.Disks = disks
	if w.in.Erase != contract.EraseNone && len(disks) > 0 {
		w.op.step(ctx, stepErase, 0.5)
		ectx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: w.in.EraseTimeout,
			HeartbeatTimeout:    eraseHeartbeat,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 20,
			},
		})
		var erased activities.EraseDisksResult
		if err := workflow.ExecuteActivity(ectx, wiper.EraseDisks, activities.EraseDisksInput{
			OperationID: w.op.status.OperationID, MachineID: w.machineID, Ramdisk: ready, Disks: disks, Method: w.in.Erase,
		}).Get(ctx, &erased); err != nil {
			return err
		}
		w.res.Erased = erased.Methods
	}
	w.op.step(ctx, stepRelease, 0.85)
	if err := workflow.ExecuteActivity(recordOptions(ctx), wiper.ReleaseMachine, activities.ReleaseMachineInput{
		MachineID: w.machineID, ClearRAID: !w.in.KeepRAID,
	}).Get(ctx, &w.res.LeasesReleased); err != nil {
		return err
	}
	return w.powerOff(ctx, ready)
}
