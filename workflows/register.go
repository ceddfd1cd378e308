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
	// configureBMCTimeout bounds the in-band BMC set-up, including a BMC
	// that takes its address by DHCP or restarts after a LAN change.
	configureBMCTimeout = 10 * time.Minute
)

// Register steps, besides those of every ramdisk operation.
const (
	stepConfigureBMC = "configure_bmc"
	stepVerifyBMC    = "verify_bmc"
)

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
	*ramdiskFlow
	in  contract.RegisterInput
	res contract.RegisterResult
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
	w.ramdiskFlow = newRamdiskFlow(w.in.MachineID, op, w.in.RamdiskTimeout, w.in.Discovered)
	return err
}

func (w *registerWorkflow) run(ctx workflow.Context) (contract.RegisterResult, error) {
	err := w.runOperation(ctx, contract.MachineReady, func(err error) bool { return err == nil && w.in.LeaveInRamdisk }, w.act)
	w.res.PowerState = w.power
	return w.res, err
}

func (w *registerWorkflow) act(ctx workflow.Context) error {
	ready, err := w.ensureRamdisk(ctx, contract.MachineRegistering)
	if err != nil {
		return err
	}
	w.res.Ramdisk = ready
	inv, err := w.collect(ctx, ready, 0.3)
	if err != nil {
		return err
	}
	w.res.Vendor, w.res.Model, w.res.Serial = inv.System.Vendor, inv.System.Model, inv.System.Serial
	w.res.CPUs, w.res.MemoryBytes, w.res.Disks = inv.CPU.Threads, inv.Memory.TotalBytes, inv.DiskCount()
	if err := w.setupBMC(ctx, ready); err != nil {
		return err
	}
	if !w.in.LeaveInRamdisk {
		return w.powerOff(ctx, ready)
	}
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
		w.res.BMCAddr, w.res.BMCUser, w.power = w.facts.BMCAddr, w.facts.BMCUser, ps.State
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
	w.res.BMCAddr, w.res.BMCUser, w.power = conf.Addr, conf.Username, ps.State
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
