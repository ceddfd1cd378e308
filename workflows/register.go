package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

// Register timeouts.
const (
	// collectTimeout bounds the inventory collection; its commands
	// heartbeat one by one.
	collectTimeout = 15 * time.Minute
	// shellHeartbeat is the heartbeat timeout of the activities that work
	// over SSH: they heartbeat every few seconds, so a dead worker is
	// noticed quickly.
	shellHeartbeat = 30 * time.Second
	// configureBMCTimeout bounds the in-band BMC set-up, including a BMC
	// that takes its address by DHCP or restarts after a LAN change.
	configureBMCTimeout = 10 * time.Minute
	// intentSlack keeps the boot intent a little longer than the wait.
	intentSlack = 10 * time.Minute
	// ramdiskPollFor is how long one AwaitRamdisk call watches for the
	// phone-home record, and ramdiskPollPause the pause between calls.
	ramdiskPollFor   = time.Minute
	ramdiskPollPause = 5 * time.Second
)

// Register steps, as the operation record and the status query show them.
const (
	stepPrepare       = "prepare"
	stepBootRamdisk   = "boot_ramdisk"
	stepWaitPowerOn   = "waiting_for_power_on"
	stepWaitRamdisk   = "waiting_for_ramdisk"
	stepCollect       = "collect_inventory"
	stepSaveInventory = "save_inventory"
	stepConfigureBMC  = "configure_bmc"
	stepVerifyBMC     = "verify_bmc"
	stepPowerOff      = "power_off"
	stepFinish        = "finish"
)

var registration *activities.Registration

// Register onboards a machine: it makes sure the machine runs bareflow's
// ramdisk, waits for the ramdisk to phone home, collects the hardware
// inventory over SSH, sets up the BMC in-band and verifies it out-of-band,
// and leaves the machine ready, powered off or in its ramdisk. The boot
// service signal-with-starts it for a machine it discovers; the API starts
// it for a machine an operator enrolled, or to refresh an inventory. It runs
// on the machine's workflow ID.
func Register(ctx workflow.Context, in contract.RegisterInput) (contract.RegisterResult, error) {
	w := &registerWorkflow{in: in}
	if err := w.setup(ctx); err != nil {
		return contract.RegisterResult{}, err
	}
	return w.run(ctx)
}

type registerWorkflow struct {
	in         contract.RegisterInput
	op         *operation
	res        contract.RegisterResult
	facts      activities.MachineFacts
	since      time.Time
	bootEvents int
	// hasBMC is true once the machine has a BMC bareflow can use.
	hasBMC bool
}

func (w *registerWorkflow) setup(ctx workflow.Context) error {
	if w.in.MachineID == "" {
		return temporal.NewNonRetryableApplicationError("machine ID is required", contract.ErrInvalidInput, nil)
	}
	if err := w.in.BMC.Mode.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrInvalidInput, nil)
	}
	if w.in.RamdiskTimeout <= 0 {
		w.in.RamdiskTimeout = contract.DefaultRamdiskTimeout
	}
	if w.in.BMC.Username == "" {
		w.in.BMC.Username = contract.DefaultBMCUsername
	}
	if w.in.BMC.VerifyWithin <= 0 {
		w.in.BMC.VerifyWithin = contract.DefaultBMCVerifyWithin
	}
	w.res = contract.RegisterResult{MachineID: w.in.MachineID, PowerState: contract.PowerUnknown}
	op, err := newOperation(ctx, w.in.OperationID, w.in.MachineID, contract.OperationRegister, w.in.RequestedBy)
	w.op = op
	return err
}

func (w *registerWorkflow) run(ctx workflow.Context) (contract.RegisterResult, error) {
	err := w.op.begin(ctx)
	if err == nil {
		err = w.act(ctx)
	}
	state := contract.MachineReady
	if err != nil {
		state = contract.MachineError
	}
	w.finishMachine(ctx, state, err == nil && w.in.LeaveInRamdisk)
	power := w.res.PowerState
	if power == contract.PowerUnknown {
		power = ""
	}
	return w.res, w.op.finish(ctx, err, power)
}

func (w *registerWorkflow) act(ctx workflow.Context) error {
	if err := w.prepare(ctx); err != nil {
		return err
	}
	if err := w.bootRamdisk(ctx); err != nil {
		return err
	}
	ready, err := w.waitRamdisk(ctx)
	if err != nil {
		return err
	}
	w.res.Ramdisk = ready
	if err := w.collect(ctx, ready); err != nil {
		return err
	}
	if err := w.setupBMC(ctx, ready); err != nil {
		return err
	}
	if !w.in.LeaveInRamdisk {
		return w.powerOff(ctx, ready)
	}
	return nil
}

// prepare moves the machine to registering and sets the ramdisk boot intent.
func (w *registerWorkflow) prepare(ctx workflow.Context) error {
	w.op.step(ctx, stepPrepare, 0.02)
	var res activities.PrepareRegisterResult
	err := workflow.ExecuteActivity(recordOptions(ctx), registration.PrepareRegister, activities.PrepareRegisterInput{
		MachineID:  w.in.MachineID,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		IntentTTL:  w.in.RamdiskTimeout + intentSlack,
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
func (w *registerWorkflow) bootRamdisk(ctx workflow.Context) error {
	if w.in.Discovered {
		// The boot service saw it network-boot: the ramdisk is on its way.
		return nil
	}
	if !w.hasBMC {
		w.op.step(ctx, stepWaitPowerOn, 0.05)
		return nil
	}
	w.op.step(ctx, stepBootRamdisk, 0.05)
	bctx := bmcOptions(ctx)
	var set activities.SetBootDeviceResult
	if err := workflow.ExecuteActivity(bctx, bmc.SetBootDevice, activities.SetBootDeviceInput{
		MachineID: w.in.MachineID, Device: contract.BootPXE,
	}).Get(ctx, &set); err != nil {
		return err
	}
	if !set.Verified {
		workflow.GetLogger(ctx).Warn("the BMC did not report the PXE boot override back", "machine_id", w.in.MachineID)
	}
	var off activities.SetPowerResult
	if err := workflow.ExecuteActivity(bctx, bmc.SetPower, activities.SetPowerInput{
		MachineID: w.in.MachineID, Op: activities.OpHardOff,
	}).Get(ctx, &off); err != nil {
		return err
	}
	if !off.Skipped {
		if err := w.waitPower(ctx, contract.PowerOff, powerOffTimeout); err != nil {
			return err
		}
	}
	if err := workflow.ExecuteActivity(bctx, bmc.SetPower, activities.SetPowerInput{
		MachineID: w.in.MachineID, Op: activities.OpOn,
	}).Get(ctx, nil); err != nil {
		return err
	}
	return w.waitPower(ctx, contract.PowerOn, powerOnTimeout)
}

func (w *registerWorkflow) waitPower(ctx workflow.Context, want contract.PowerState, timeout time.Duration) error {
	var res activities.WaitPowerStateResult
	if err := workflow.ExecuteActivity(waitOptions(ctx, timeout), bmc.WaitPowerState, activities.WaitPowerStateInput{
		MachineID: w.in.MachineID, Want: want, Timeout: timeout,
	}).Get(ctx, &res); err != nil {
		return err
	}
	w.res.PowerState = res.State
	return nil
}

// waitRamdisk waits for the ramdisk to phone home: the signal from the boot
// service, or the phone-home record AwaitRamdisk finds when the signal was
// lost, whichever comes first, until RamdiskTimeout. Boot events that come
// meanwhile are logged.
func (w *registerWorkflow) waitRamdisk(ctx workflow.Context) (contract.RamdiskReady, error) {
	if w.op.status.Step != stepWaitPowerOn {
		w.op.step(ctx, stepWaitRamdisk, 0.1)
	}
	log := workflow.GetLogger(ctx)
	readyCh := workflow.GetSignalChannel(ctx, contract.SignalRamdiskReady)
	bootCh := workflow.GetSignalChannel(ctx, contract.SignalBootEvent)
	wctx, cancelWait := workflow.WithCancel(ctx)
	defer cancelWait()
	timer := workflow.NewTimer(wctx, w.in.RamdiskTimeout)
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
		if r.MachineID != "" && r.MachineID != w.in.MachineID {
			log.Warn("phone-home for another machine ignored", "machine_id", w.in.MachineID, "other", r.MachineID)
			return
		}
		ready, got = r, true
	})
	sel.AddReceive(bootCh, func(c workflow.ReceiveChannel, _ bool) {
		var ev contract.BootEvent
		c.Receive(ctx, &ev)
		w.bootEvents++
		log.Info("boot event", "machine_id", w.in.MachineID, "kind", string(ev.Kind), "addr", ev.Addr)
		if w.op.status.Step == stepWaitPowerOn {
			w.op.step(ctx, stepWaitRamdisk, 0.1)
		}
	})
	sel.AddFuture(timer, func(workflow.Future) { timedOut = true })
	sel.AddReceive(found, func(c workflow.ReceiveChannel, _ bool) {
		var r contract.RamdiskReady
		c.Receive(ctx, &r)
		log.Info("ramdisk found by polling", "machine_id", w.in.MachineID, "addr", r.Addr)
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
			"the ramdisk did not phone home within "+w.in.RamdiskTimeout.String()+
				" (check that the machine is powered on, network-boots first, and reaches the boot service)",
			contract.ErrRamdiskTimeout, nil)
	}
	return ready, nil
}

// pollRamdisk looks for the ramdisk's phone-home record, one bounded
// AwaitRamdisk call after another with a pause between them, and sends the
// ramdisk on found when it shows up. It ends when ctx is canceled.
func (w *registerWorkflow) pollRamdisk(ctx workflow.Context, found workflow.Channel) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: ramdiskPollFor + time.Minute,
		HeartbeatTimeout:    waitHeartbeat,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 3},
	})
	in := activities.AwaitRamdiskInput{
		MachineID: w.in.MachineID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Since: w.since, For: ramdiskPollFor,
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
			workflow.GetLogger(ctx).Warn("phone-home poll failed", "machine_id", w.in.MachineID, "error", err)
		}
		_ = workflow.Sleep(ctx, ramdiskPollPause)
	}
}

// collect reads the hardware over SSH and records it.
func (w *registerWorkflow) collect(ctx workflow.Context, ready contract.RamdiskReady) error {
	w.op.step(ctx, stepCollect, 0.3)
	cctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: collectTimeout,
		HeartbeatTimeout:    shellHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5,
		},
	})
	var inv contract.Inventory
	if err := workflow.ExecuteActivity(cctx, registration.CollectInventory, activities.RamdiskInput{
		MachineID: w.in.MachineID, Ramdisk: ready,
	}).Get(ctx, &inv); err != nil {
		return err
	}
	w.op.step(ctx, stepSaveInventory, 0.5)
	if err := workflow.ExecuteActivity(recordOptions(ctx), registration.SaveInventory, activities.SaveInventoryInput{
		MachineID: w.in.MachineID, Inventory: inv,
	}).Get(ctx, nil); err != nil {
		return err
	}
	if inv.System.Vendor != "" {
		w.facts.Vendor = inv.System.Vendor
	}
	w.res.Vendor, w.res.Model, w.res.Serial = inv.System.Vendor, inv.System.Model, inv.System.Serial
	w.res.CPUs, w.res.MemoryBytes, w.res.Disks = inv.CPU.Threads, inv.Memory.TotalBytes, inv.DiskCount()
	return nil
}

// setupBMC configures the BMC in-band, verifies it out-of-band with the new
// credentials, and only then records them. A machine created with BMC
// credentials keeps them (verified) unless a mode is asked for.
func (w *registerWorkflow) setupBMC(ctx workflow.Context, ready contract.RamdiskReady) error {
	mode := w.in.BMC.Mode
	if mode == contract.BMCSetupSkip {
		return nil
	}
	if mode == contract.BMCSetupAuto && w.facts.HasBMC {
		w.op.step(ctx, stepVerifyBMC, 0.8)
		var ps activities.PowerStateResult
		if err := workflow.ExecuteActivity(bmcOptions(ctx), bmc.PowerState, activities.MachineInput{MachineID: w.in.MachineID}).Get(ctx, &ps); err != nil {
			return err
		}
		w.res.BMCAddr, w.res.BMCUser, w.res.PowerState = w.facts.BMCAddr, w.facts.BMCUser, ps.State
		return nil
	}
	w.op.step(ctx, stepConfigureBMC, 0.6)
	cctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: configureBMCTimeout,
		HeartbeatTimeout:    shellHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 4,
		},
	})
	var conf activities.ConfigureBMCResult
	if err := workflow.ExecuteActivity(cctx, registration.ConfigureBMC, activities.ConfigureBMCInput{
		MachineID: w.in.MachineID, Ramdisk: ready, Vendor: w.facts.Vendor, Setup: w.in.BMC,
	}).Get(ctx, &conf); err != nil {
		return err
	}
	w.op.step(ctx, stepVerifyBMC, 0.8)
	vctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    bmcCommandTimeout,
		ScheduleToCloseTimeout: w.in.BMC.VerifyWithin,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 3 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
		},
	})
	var ps activities.PowerStateResult
	if err := workflow.ExecuteActivity(vctx, registration.VerifyBMC, activities.VerifyBMCInput{
		MachineID: w.in.MachineID, Addr: conf.Addr,
	}).Get(ctx, &ps); err != nil {
		return bmcVerifyFailed(conf.Addr, err)
	}
	if err := workflow.ExecuteActivity(recordOptions(ctx), registration.CommitBMC, activities.CommitBMCInput{
		MachineID: w.in.MachineID, Addr: conf.Addr,
	}).Get(ctx, nil); err != nil {
		return err
	}
	w.hasBMC = true
	w.res.BMCAddr, w.res.BMCUser, w.res.PowerState = conf.Addr, conf.Username, ps.State
	return nil
}

// bmcVerifyFailed names the BMC that could not be reached with its new
// credentials, keeping the error's stable type.
func bmcVerifyFailed(addr string, err error) error {
	code := contract.ErrBMCUnreachable
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() != "" {
		code = appErr.Type()
	}
	return temporal.NewNonRetryableApplicationError(
		"the BMC was set up in-band but does not answer at "+addr+" with the new credentials; they were not recorded: "+err.Error(),
		code, nil)
}

// powerOff turns the machine off: through the BMC when it has one, from
// inside the ramdisk otherwise.
func (w *registerWorkflow) powerOff(ctx workflow.Context, ready contract.RamdiskReady) error {
	w.op.step(ctx, stepPowerOff, 0.9)
	if !w.hasBMC {
		return workflow.ExecuteActivity(recordOptions(ctx), registration.PowerOffRamdisk, activities.RamdiskInput{
			MachineID: w.in.MachineID, Ramdisk: ready,
		}).Get(ctx, nil)
	}
	var off activities.SetPowerResult
	if err := workflow.ExecuteActivity(bmcOptions(ctx), bmc.SetPower, activities.SetPowerInput{
		MachineID: w.in.MachineID, Op: activities.OpHardOff,
	}).Get(ctx, &off); err != nil {
		return err
	}
	return w.waitPower(ctx, contract.PowerOff, powerOffTimeout)
}

// finishMachine clears the boot intent, drops unverified BMC credentials
// and sets the machine's state, in a disconnected context so that a
// canceled registration still leaves the machine in a clear state.
func (w *registerWorkflow) finishMachine(ctx workflow.Context, state contract.MachineState, keepRamdisk bool) {
	if state == contract.MachineReady {
		w.op.step(ctx, stepFinish, 0.95)
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	dctx = workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		StartToCloseTimeout:    recordTimeout,
		ScheduleToCloseTimeout: cleanupTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second},
	})
	err := workflow.ExecuteActivity(dctx, registration.FinishRegister, activities.FinishRegisterInput{
		MachineID: w.in.MachineID, State: state, KeepRamdisk: keepRamdisk,
	}).Get(dctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("cannot close the registration", "machine_id", w.in.MachineID, "error", err)
	}
}
