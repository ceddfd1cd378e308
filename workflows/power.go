package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

// Power timeouts.
const (
	// powerOnTimeout is how long a chassis may take to report "on".
	powerOnTimeout = 2 * time.Minute
	// powerOffTimeout is how long a chassis may take to report "off" after
	// a hard off.
	powerOffTimeout = 2 * time.Minute
)

// Power step names, as the operation record and the status query show them.
const (
	stepPowerOn    = "power_on"
	stepVerifyOn   = "verify_on"
	stepSoftOff    = "soft_off"
	stepWaitOff    = "wait_soft_off"
	stepHardOff    = "hard_off"
	stepVerifyOff  = "verify_off"
	stepReset      = "reset"
	stepCyclePause = "cycle_pause"
)

// Power changes the power of one machine and verifies the change: it counts
// only once the BMC reports the new state. It runs on the machine's workflow
// ID, so it never overlaps another mutating operation on that machine.
func Power(ctx workflow.Context, in contract.PowerInput) (contract.PowerResult, error) {
	w := &powerWorkflow{in: in}
	if err := w.setup(ctx); err != nil {
		return contract.PowerResult{}, err
	}
	return w.run(ctx)
}

type powerWorkflow struct {
	in  contract.PowerInput
	op  *operation
	res contract.PowerResult
}

func (w *powerWorkflow) setup(ctx workflow.Context) error {
	if w.in.MachineID == "" {
		return temporal.NewNonRetryableApplicationError("machine ID is required", contract.ErrInvalidInput, nil)
	}
	if err := w.in.Action.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrInvalidInput, nil)
	}
	if w.in.SoftOffGrace <= 0 {
		w.in.SoftOffGrace = contract.DefaultSoftOffGrace
	}
	if w.in.CycleDelay <= 0 {
		w.in.CycleDelay = contract.DefaultCycleDelay
	}
	w.res = contract.PowerResult{MachineID: w.in.MachineID, Action: w.in.Action, PowerState: contract.PowerUnknown}
	op, err := newOperation(ctx, w.in.OperationID, w.in.MachineID, contract.OperationPower, w.in.RequestedBy)
	w.op = op
	return err
}

func (w *powerWorkflow) run(ctx workflow.Context) (contract.PowerResult, error) {
	err := w.op.begin(ctx)
	if err == nil {
		err = w.act(ctx)
	}
	power := w.res.PowerState
	if power == contract.PowerUnknown {
		power = ""
	}
	return w.res, w.op.finish(ctx, err, power)
}

func (w *powerWorkflow) act(ctx workflow.Context) error {
	switch w.in.Action {
	case contract.PowerActionOn:
		return w.on(ctx, 0.1)
	case contract.PowerActionHardOff:
		return w.hardOff(ctx, 0.1)
	case contract.PowerActionOff:
		return w.softOff(ctx)
	case contract.PowerActionReset:
		return w.reset(ctx)
	case contract.PowerActionCycle:
		if err := w.hardOff(ctx, 0.1); err != nil {
			return err
		}
		w.op.step(ctx, stepCyclePause, 0.5)
		if err := workflow.Sleep(ctx, w.in.CycleDelay); err != nil {
			return err
		}
		return w.on(ctx, 0.6)
	}
	return fmt.Errorf("unhandled power action %q", w.in.Action)
}

func (w *powerWorkflow) command(ctx workflow.Context, op activities.PowerOp) (activities.SetPowerResult, error) {
	var res activities.SetPowerResult
	err := workflow.ExecuteActivity(bmcOptions(ctx), bmc.SetPower, activities.SetPowerInput{MachineID: w.in.MachineID, Op: op}).Get(ctx, &res)
	return res, err
}

func (w *powerWorkflow) wait(ctx workflow.Context, want contract.PowerState, timeout time.Duration, quiet bool) (activities.WaitPowerStateResult, error) {
	var res activities.WaitPowerStateResult
	err := workflow.ExecuteActivity(waitOptions(ctx, timeout), bmc.WaitPowerState,
		activities.WaitPowerStateInput{MachineID: w.in.MachineID, Want: want, Timeout: timeout, Quiet: quiet}).Get(ctx, &res)
	if res.State != "" {
		w.res.PowerState = res.State
	}
	return res, err
}

func (w *powerWorkflow) on(ctx workflow.Context, progress float64) error {
	w.op.step(ctx, stepPowerOn, progress)
	if _, err := w.command(ctx, activities.OpOn); err != nil {
		return err
	}
	w.op.step(ctx, stepVerifyOn, progress+0.1)
	_, err := w.wait(ctx, contract.PowerOn, powerOnTimeout, false)
	return err
}

func (w *powerWorkflow) hardOff(ctx workflow.Context, progress float64) error {
	w.op.step(ctx, stepHardOff, progress)
	if _, err := w.command(ctx, activities.OpHardOff); err != nil {
		return err
	}
	w.op.step(ctx, stepVerifyOff, progress+0.1)
	_, err := w.wait(ctx, contract.PowerOff, powerOffTimeout, false)
	return err
}

// softOff asks the OS to shut down and, when the chassis is still on after
// the grace period, turns it off hard.
func (w *powerWorkflow) softOff(ctx workflow.Context) error {
	w.op.step(ctx, stepSoftOff, 0.1)
	sent, err := w.command(ctx, activities.OpSoftOff)
	if err != nil {
		return err
	}
	if sent.Skipped {
		w.res.PowerState = contract.PowerOff
		return nil
	}
	w.op.step(ctx, stepWaitOff, 0.2)
	res, err := w.wait(ctx, contract.PowerOff, w.in.SoftOffGrace, true)
	if err != nil {
		return err
	}
	if res.Reached {
		return nil
	}
	workflow.GetLogger(ctx).Info("soft off not done within the grace period, turning off hard", "machine_id", w.in.MachineID, "grace", w.in.SoftOffGrace)
	w.res.HardOff = true
	return w.hardOff(ctx, 0.7)
}

func (w *powerWorkflow) reset(ctx workflow.Context) error {
	w.op.step(ctx, stepReset, 0.1)
	if _, err := w.command(ctx, activities.OpReset); err != nil {
		return err
	}
	w.op.step(ctx, stepVerifyOn, 0.5)
	_, err := w.wait(ctx, contract.PowerOn, powerOnTimeout, false)
	return err
}
