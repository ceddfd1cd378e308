package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

// Steps of every operation that runs in the ramdisk.
const (
	stepPrepare     = "prepare"
	stepBootRamdisk = "boot_ramdisk"
	stepWaitPowerOn = "waiting_for_power_on"
	stepWaitRamdisk = "waiting_for_ramdisk"
	stepCollect     = "collect_inventory"
	stepPowerOff    = "power_off"
	stepFinish      = "finish"
)

// Ramdisk timing.
const (
	// intentSlack keeps the boot intent a little longer than the wait.
	intentSlack = 10 * time.Minute
	// ramdiskPollFor is how long one AwaitRamdisk call watches for the
	// phone-home record, and ramdiskPollPause the pause between calls.
	ramdiskPollFor   = time.Minute
	ramdiskPollPause = 5 * time.Second
	// shellHeartbeat is the heartbeat timeout of the activities that work
	// over SSH: they heartbeat every few seconds, so a dead worker is
	// noticed quickly.
	shellHeartbeat = 30 * time.Second
	// collectTimeout bounds an inventory collection; its commands
	// heartbeat one by one.
	collectTimeout = 15 * time.Minute
)

var registration *activities.Registration

// ramdiskFlow is the part of an operation that gets a machine into
// bareflow's ramdisk and out of it again: the boot intent, the boot through
// the BMC (or by hand), the wait for the phone-home, the power-off and the
// closing of the machine's state. Register and MakeRAID build on it.
type ramdiskFlow struct {
	machineID string
	op        *operation
	timeout   time.Duration
	// discovered is true when the machine is booting the ramdisk already.
	discovered bool
	facts      activities.MachineFacts
	since      time.Time
	// hasBMC is true once the machine has a BMC bareflow can use.
	hasBMC     bool
	power      contract.PowerState
	bootEvents int
}

func newRamdiskFlow(machineID string, op *operation, timeout time.Duration, discovered bool) *ramdiskFlow {
	if timeout <= 0 {
		timeout = contract.DefaultRamdiskTimeout
	}
	return &ramdiskFlow{machineID: machineID, op: op, timeout: timeout, discovered: discovered, power: contract.PowerUnknown}
}

// ensureRamdisk gets the machine into the ramdisk: it prepares the boot
// intent, boots the machine and waits for its phone-home.
func (w *ramdiskFlow) ensureRamdisk(ctx workflow.Context, state contract.MachineState) (contract.RamdiskReady, error) {
	if err := w.prepare(ctx, state); err != nil {
		return contract.RamdiskReady{}, err
	}
	if ready, ok := w.stillInRamdisk(ctx); ok {
		return ready, nil
	}
	if err := w.bootRamdisk(ctx); err != nil {
		return contract.RamdiskReady{}, err
	}
	return w.waitRamdisk(ctx)
}

// stillInRamdisk reports whether the machine still runs the ramdisk an
// earlier operation left it in: its phone-home is on record and a shell
// opens with the host key it phoned home with (a ramdisk makes a new key on
// every boot, so an OS or a new boot at that address does not pass).
func (w *ramdiskFlow) stillInRamdisk(ctx workflow.Context) (contract.RamdiskReady, bool) {
	if w.discovered {
		return contract.RamdiskReady{}, false
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	var found activities.AwaitRamdiskResult
	err := workflow.ExecuteActivity(actx, registration.AwaitRamdisk, activities.AwaitRamdiskInput{
		MachineID: w.machineID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
	}).Get(ctx, &found)
	if err != nil || !found.Found {
		return contract.RamdiskReady{}, false
	}
	var alive bool
	err = workflow.ExecuteActivity(actx, registration.ProbeRamdisk, activities.RamdiskInput{
		MachineID: w.machineID, Ramdisk: found.Ready,
	}).Get(ctx, &alive)
	if err != nil || !alive {
		return contract.RamdiskReady{}, false
	}
	workflow.GetLogger(ctx).Info("the machine is still in its ramdisk", "machine_id", w.machineID, "addr", found.Ready.Addr)
	return found.Ready, true
}

// collect reads the hardware over SSH and records it.
func (w *ramdiskFlow) collect(ctx workflow.Context, ready contract.RamdiskReady, progress float64) (contract.Inventory, error) {
	w.op.step(ctx, stepCollect, progress)
	cctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: collectTimeout,
		HeartbeatTimeout:    shellHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5,
		},
	})
	var inv contract.Inventory
	if err := workflow.ExecuteActivity(cctx, registration.CollectInventory, activities.RamdiskInput{
		MachineID: w.machineID, Ramdisk: ready,
	}).Get(ctx, &inv); err != nil {
		return contract.Inventory{}, err
	}
	if err := workflow.ExecuteActivity(recordOptions(ctx), registration.SaveInventory, activities.SaveInventoryInput{
		MachineID: w.machineID, Inventory: inv,
	}).Get(ctx, nil); err != nil {
		return contract.Inventory{}, err
	}
	if inv.System.Vendor != "" {
		w.facts.Vendor = inv.System.Vendor
	}
	if inv.System.BootMode != "" {
		w.facts.Firmware = inv.System.BootMode
	}
	return inv, nil
}

// prepare reads the machine, moves it to state when one is given, and sets
// the ramdisk boot intent.
func (w *ramdiskFlow) prepare(ctx workflow.Context, state contract.MachineState) error {
	w.op.step(ctx, stepPrepare, 0.02)
	var res activities.PrepareRamdiskResult
	err := workflow.ExecuteActivity(recordOptions(ctx), registration.PrepareRamdisk, activities.PrepareRamdiskInput{
		MachineID:  w.machineID,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		IntentTTL:  w.timeout + intentSlack,
		State:      state,
	}).Get(ctx, &res)
	if err != nil {
		return err
	}
	w.facts, w.since, w.hasBMC = res.Facts, res.Since, res.Facts.HasBMC
	return nil
}

// bootRamdisk makes the machine network-boot: through its BMC (next boot
// PXE, then a power cycle, or power on) when it has one and is not booting
// already; otherwise someone powers it on by hand.
func (w *ramdiskFlow) bootRamdisk(ctx workflow.Context) error {
	if w.discovered {
		// The boot service saw it network-boot: the ramdisk is on its way.
		return nil
	}
	if !w.hasBMC {
		w.op.step(ctx, stepWaitPowerOn, 0.05)
		return nil
	}
	w.op.step(ctx, stepBootRamdisk, 0.05)
	bctx := bmcOptions(ctx)
	// A machine that network-boots first gets the ramdisk from the boot
	// intent all the same.
	if err := w.setNextBoot(ctx, contract.BootPXE, "relying on the machine's network boot order"); err != nil {
		return err
	}
	var off activities.SetPowerResult
	if err := workflow.ExecuteActivity(bctx, bmc.SetPower, activities.SetPowerInput{
		MachineID: w.machineID, Op: activities.OpHardOff,
	}).Get(ctx, &off); err != nil {
		return err
	}
	if !off.Skipped {
		if err := w.waitPower(ctx, contract.PowerOff, powerOffTimeout); err != nil {
			return err
		}
	}
	if err := workflow.ExecuteActivity(bctx, bmc.SetPower, activities.SetPowerInput{
		MachineID: w.machineID, Op: activities.OpOn,
	}).Get(ctx, nil); err != nil {
		return err
	}
	return w.waitPower(ctx, contract.PowerOn, powerOnTimeout)
}

// bootMode is the firmware mode of the machine's boot device overrides: as
// it booted its ramdisk last, legacy when that is not known.
func (w *ramdiskFlow) bootMode() contract.BootMode {
	if w.facts.Firmware == contract.FirmwareUEFI {
		return contract.BootModeEFI
	}
	return contract.BootModeLegacy
}

func (w *ramdiskFlow) waitPower(ctx workflow.Context, want contract.PowerState, timeout time.Duration) error {
	var res activities.WaitPowerStateResult
	if err := workflow.ExecuteActivity(waitOptions(ctx, timeout), bmc.WaitPowerState, activities.WaitPowerStateInput{
		MachineID: w.machineID, Want: want, Timeout: timeout,
	}).Get(ctx, &res); err != nil {
		return err
	}
	w.power = res.State
	return nil
}

// waitRamdisk waits for the ramdisk to phone home: the signal from the boot
// service, or the phone-home record AwaitRamdisk finds when the signal was
// lost, whichever comes first, until RamdiskTimeout. Boot events that come
// meanwhile are logged.
func (w *ramdiskFlow) waitRamdisk(ctx workflow.Context) (contract.RamdiskReady, error) {
	if w.op.status.Step != stepWaitPowerOn {
		w.op.step(ctx, stepWaitRamdisk, 0.1)
	}
	log := workflow.GetLogger(ctx)
	readyCh := workflow.GetSignalChannel(ctx, contract.SignalRamdiskReady)
	bootCh := workflow.GetSignalChannel(ctx, contract.SignalBootEvent)
	wctx, cancelWait := workflow.WithCancel(ctx)
	defer cancelWait()
	timer := workflow.NewTimer(wctx, w.timeout)
	found := workflow.NewBufferedChannel(wctx, 1)
	workflow.Go(wctx, func(ctx workflow.Context) { w.pollRamdisk(ctx, found) })

	var (
		ready    contract.RamdiskReady
		got      bool
		timedOut bool
	)
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(readyCh, func(c workflow.ReceiveChannel, _ bool) {
		var r contract.RamdiskReady
		c.Receive(ctx, &r)
		if r.MachineID != "" && r.MachineID != w.machineID {
			log.Warn("phone-home for another machine ignored", "machine_id", w.machineID, "other", r.MachineID)
			return
		}
		ready, got = r, true
	})
	sel.AddReceive(bootCh, func(c workflow.ReceiveChannel, _ bool) {
		var ev contract.BootEvent
		c.Receive(ctx, &ev)
		w.bootEvents++
		log.Info("boot event", "machine_id", w.machineID, "kind", string(ev.Kind), "addr", ev.Addr)
		if w.op.status.Step == stepWaitPowerOn {
			w.op.step(ctx, stepWaitRamdisk, 0.1)
		}
	})
	sel.AddFuture(timer, func(workflow.Future) { timedOut = true })
	sel.AddReceive(found, func(c workflow.ReceiveChannel, _ bool) {
		var r contract.RamdiskReady
		c.Receive(ctx, &r)
		log.Info("ramdisk found by polling", "machine_id", w.machineID, "addr", r.Addr)
		ready, got = r, true
	})
	for !got && !timedOut {
		sel.Select(ctx)
		if ctx.Err() != nil {
			return contract.RamdiskReady{}, temporal.NewCanceledError()
		}
	}
	cancelWait()
	if !got {
		return contract.RamdiskReady{}, temporal.NewNonRetryableApplicationError(
			"the ramdisk did not phone home within "+w.timeout.String()+
				" (check that the machine is powered on, network-boots first, and reaches the boot service)",
			contract.ErrRamdiskTimeout, nil)
	}
	return ready, nil
}

// pollRamdisk looks for the ramdisk's phone-home record, one bounded
// AwaitRamdisk call after another with a pause between them, and sends the
// ramdisk on found when it shows up. It ends when ctx is canceled.
func (w *ramdiskFlow) pollRamdisk(ctx workflow.Context, found workflow.Channel) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: ramdiskPollFor + time.Minute,
		HeartbeatTimeout:    waitHeartbeat,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 3},
	})
	in := activities.AwaitRamdiskInput{
		MachineID: w.machineID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Since: w.since, For: ramdiskPollFor,
	}
	for ctx.Err() == nil {
		var res activities.AwaitRamdiskResult
		err := workflow.ExecuteActivity(actx, registration.AwaitRamdisk, in).Get(ctx, &res)
		if ctx.Err() != nil {
			return
		}
		if err == nil && res.Found {
			found.Send(ctx, res.Ready)
			return
		}
		if err != nil {
			workflow.GetLogger(ctx).Warn("phone-home poll failed", "machine_id", w.machineID, "error", err)
		}
		_ = workflow.Sleep(ctx, ramdiskPollPause)
	}
}

// powerOff turns the machine off: through the BMC when it has one, from
// inside the ramdisk otherwise.
func (w *ramdiskFlow) powerOff(ctx workflow.Context, ready contract.RamdiskReady) error {
	w.op.step(ctx, stepPowerOff, 0.9)
	if !w.hasBMC {
		return workflow.ExecuteActivity(recordOptions(ctx), registration.PowerOffRamdisk, activities.RamdiskInput{
			MachineID: w.machineID, Ramdisk: ready,
		}).Get(ctx, nil)
	}
	var off activities.SetPowerResult
	if err := workflow.ExecuteActivity(bmcOptions(ctx), bmc.SetPower, activities.SetPowerInput{
		MachineID: w.machineID, Op: activities.OpHardOff,
	}).Get(ctx, &off); err != nil {
		return err
	}
	return w.waitPower(ctx, contract.PowerOff, powerOffTimeout)
}

// finishMachine clears the boot intent, drops unverified BMC credentials
// and sets the machine's state, in a disconnected context so that a
// canceled registration still leaves the machine in a clear state.
func (w *ramdiskFlow) finishMachine(ctx workflow.Context, state contract.MachineState, keepRamdisk bool) {
	if state != contract.MachineError {
		w.op.step(ctx, stepFinish, 0.95)
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	dctx = workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		StartToCloseTimeout:    recordTimeout,
		ScheduleToCloseTimeout: cleanupTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second},
	})
	err := workflow.ExecuteActivity(dctx, registration.FinishRamdisk, activities.FinishRamdiskInput{
		MachineID: w.machineID, State: state, KeepRamdisk: keepRamdisk,
	}).Get(dctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("cannot close the registration", "machine_id", w.machineID, "error", err)
	}
}

// runOperation runs act as the operation: it marks the operation begun,
// runs act, closes the machine (state done on success, error otherwise;
// keepRamdisk says, given act's error, whether the machine's ramdisk stays
// on record) and finishes the operation with the power state seen.
func (w *ramdiskFlow) runOperation(ctx workflow.Context, done contract.MachineState, keepRamdisk func(error) bool,
	act func(workflow.Context) error) error {
	err := w.op.begin(ctx)
	if err == nil {
		err = act(ctx)
	}
	state := done
	if err != nil {
		state = contract.MachineError
	}
	w.finishMachine(ctx, state, keepRamdisk(err))
	power := w.power
	if power == contract.PowerUnknown {
		power = ""
	}
	return w.op.finish(ctx, err, power)
}

// setNextBoot sets the machine's next boot device through its BMC, in the
// machine's firmware mode. A BMC that cannot (BMCUnsupported) is logged
// with otherwise, what the boot then relies on, and is not an error.
func (w *ramdiskFlow) setNextBoot(ctx workflow.Context, device contract.BootDevice, otherwise string) error {
	var set activities.SetBootDeviceResult
	err := workflow.ExecuteActivity(bmcOptions(ctx), bmc.SetBootDevice, activities.SetBootDeviceInput{
		MachineID: w.machineID, Device: device, Mode: w.bootMode(),
	}).Get(ctx, &set)
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr) && appErr.Type() == contract.ErrBMCUnsupported:
		workflow.GetLogger(ctx).Warn("the BMC cannot set the next boot device; "+otherwise,
			"machine_id", w.machineID, "device", string(device), "error", err)
	case err != nil:
		return err
	case !set.Verified:
		workflow.GetLogger(ctx).Warn("the BMC did not report the boot override back", "machine_id", w.machineID, "device", string(device))
	}
	return nil
}

// reset resets the machine through its BMC; it is on afterwards.
func (w *ramdiskFlow) reset(ctx workflow.Context) error {
	var reset activities.SetPowerResult
	if err := workflow.ExecuteActivity(bmcOptions(ctx), bmc.SetPower, activities.SetPowerInput{
		MachineID: w.machineID, Op: activities.OpReset,
	}).Get(ctx, &reset); err != nil {
		return err
	}
	w.power = contract.PowerOn
	return nil
}
