package workflows

import (
	"encoding/hex"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

// Adopt steps.
const (
	stepAdoptVerifyBMC = "verify_bmc"
	stepAdoptConnectOS = "connect_os"
	stepAdoptCollect   = "collect_inventory"
	stepAdoptIdentity  = "check_identity"
	stepAdoptRecord    = "record"
)

// Adopt timeouts.
const (
	// adoptLoginTimeout bounds the logins to the live OS, a key install
	// included.
	adoptLoginTimeout = 2 * time.Minute
	// adoptBMCAttempts bounds how often an unanswering BMC is asked.
	adoptBMCAttempts = 3
)

var adoption *activities.Adoption

// Adopt takes a server that already runs an OS into bareflow without
// touching its disks: it logs in to the BMC with the credentials given
// (reading the power state and the system GUID), logs in to the live OS
// over SSH (trusting its host key on first use unless one was given, and
// installing bareflow's key with a one-time password when asked), reads
// the same inventory as a registration, checks that the BMC and the OS are
// one server (the BMC's system GUID against SMBIOS's system UUID), and
// records the machine running with its OS. A failed or canceled adoption
// removes the machine record the API made for it; its operation stays. It
// runs on the machine's workflow ID.
func Adopt(ctx workflow.Context, in contract.AdoptInput) (contract.AdoptResult, error) {
	w := &adoptWorkflow{in: in}
	if err := w.setup(ctx); err != nil {
		return contract.AdoptResult{}, err
	}
	return w.run(ctx)
}

type adoptWorkflow struct {
	in  contract.AdoptInput
	res contract.AdoptResult
	op  *operation
}

func (w *adoptWorkflow) setup(ctx workflow.Context) error {
	switch {
	case w.in.MachineID == "":
		return temporal.NewNonRetryableApplicationError("machine ID is required", contract.ErrInvalidInput, nil)
	case w.in.BMCAddr == "":
		return temporal.NewNonRetryableApplicationError("BMC address is required", contract.ErrInvalidInput, nil)
	case w.in.SSH.Addr == "":
		return temporal.NewNonRetryableApplicationError("SSH address is required", contract.ErrInvalidInput, nil)
	}
	if w.in.SSH.User == "" {
		w.in.SSH.User = "root"
	}
	w.res = contract.AdoptResult{MachineID: w.in.MachineID, PowerState: contract.PowerUnknown}
	op, err := newOperation(ctx, w.in.OperationID, w.in.MachineID, contract.OperationAdopt, w.in.RequestedBy)
	w.op = op
	return err
}

func (w *adoptWorkflow) run(ctx workflow.Context) (contract.AdoptResult, error) {
	err := w.op.begin(ctx)
	if err == nil {
		err = w.act(ctx)
	}
	power := w.res.PowerState
	if err != nil {
		w.discard(ctx)
		power = ""
	}
	if power == contract.PowerUnknown {
		power = ""
	}
	return w.res, w.op.finish(ctx, err, power)
}

func (w *adoptWorkflow) act(ctx workflow.Context) error {
	w.op.step(ctx, stepAdoptVerifyBMC, 0.1)
	bctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: bmcCommandTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 15 * time.Second, MaximumAttempts: adoptBMCAttempts,
		},
	})
	var probe activities.AdoptBMCResult
	if err := workflow.ExecuteActivity(bctx, adoption.VerifyAdoptBMC, activities.AdoptBMCInput{
		MachineID: w.in.MachineID, Addr: w.in.BMCAddr, CipherSuite: w.in.BMCCipherSuite,
	}).Get(ctx, &probe); err != nil {
		return err
	}
	w.res.PowerState = probe.PowerState
	if len(probe.GUID) > 0 {
		w.res.BMCGUID = hex.EncodeToString(probe.GUID)
	}

	w.op.step(ctx, stepAdoptConnectOS, 0.25)
	lctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: adoptLoginTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 4,
		},
	})
	var opened activities.OpenOSResult
	if err := workflow.ExecuteActivity(lctx, adoption.OpenAdoptedOS, activities.OpenOSInput{
		MachineID: w.in.MachineID, SSH: w.in.SSH,
	}).Get(ctx, &opened); err != nil {
		return err
	}
	w.res.SSHHostKey, w.res.TrustedOnFirstUse, w.res.KeyInstalled = opened.HostKey, opened.TrustedOnFirstUse, opened.KeyInstalled
	if opened.TrustedOnFirstUse {
		workflow.GetLogger(ctx).Info("SSH host key trusted on first use", "machine_id", w.in.MachineID, "host_key", opened.HostKey)
	}

	w.op.step(ctx, stepAdoptCollect, 0.4)
	cctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: collectTimeout,
		HeartbeatTimeout:    shellHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5,
		},
	})
	var got activities.CollectOSResult
	if err := workflow.ExecuteActivity(cctx, adoption.CollectAdoptedOS, activities.CollectOSInput{
		MachineID: w.in.MachineID, Addr: w.in.SSH.Addr, User: w.in.SSH.User, HostKey: opened.HostKey,
	}).Get(ctx, &got); err != nil {
		return err
	}
	inv := got.Inventory
	w.res.Privilege, w.res.OS = got.Privilege, got.OS
	w.res.Vendor, w.res.Model, w.res.Serial, w.res.SystemUUID = inv.System.Vendor, inv.System.Model, inv.System.Serial, inv.System.UUID
	w.res.Warnings = append(w.res.Warnings, inv.Warnings...)

	w.op.step(ctx, stepAdoptIdentity, 0.8)
	if err := w.checkIdentity(probe.GUID, inv.System.UUID); err != nil {
		return err
	}

	w.op.step(ctx, stepAdoptRecord, 0.9)
	return workflow.ExecuteActivity(recordOptions(ctx), adoption.CompleteAdoption, activities.CompleteAdoptionInput{
		MachineID: w.in.MachineID, Inventory: inv, OS: got.OS,
		SSHAddr: w.in.SSH.Addr, SSHUser: w.in.SSH.User, SSHHostKey: opened.HostKey,
		BMCAddr: w.in.BMCAddr, BMCCipherSuite: w.in.BMCCipherSuite, PowerState: probe.PowerState,
	}).Get(ctx, nil)
}

// checkIdentity compares the BMC's system GUID with SMBIOS's system UUID,
// in each byte order BMCs use. When either is missing the check is skipped
// with a warning; when they differ the adoption fails.
func (w *adoptWorkflow) checkIdentity(guid []byte, uuid string) error {
	switch {
	case len(contract.SystemGUIDForms(guid)) == 0:
		w.res.Warnings = append(w.res.Warnings, "the BMC reports no system GUID: it was not checked that the BMC and the OS are one server")
		return nil
	case uuid == "":
		w.res.Warnings = append(w.res.Warnings, "the OS reports no SMBIOS system UUID: it was not checked that the BMC and the OS are one server")
		return nil
	case contract.SystemGUIDMatches(guid, uuid):
		w.res.IdentityChecked = true
		return nil
	}
	return temporal.NewNonRetryableApplicationError(
		"the BMC at "+w.in.BMCAddr+" and the OS at "+w.in.SSH.Addr+" are not one server: the BMC's system GUID "+
			hex.EncodeToString(guid)+" is not the system UUID "+uuid+" the OS reads (in any byte order); nothing was recorded",
		contract.ErrAdoptIdentityMismatch, nil)
}

// discard removes the machine record of a failed or canceled adoption, in a
// disconnected context so that a canceled adoption still leaves nothing
// behind.
func (w *adoptWorkflow) discard(ctx workflow.Context) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	dctx = workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		StartToCloseTimeout:    recordTimeout,
		ScheduleToCloseTimeout: cleanupTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second},
	})
	err := workflow.ExecuteActivity(dctx, adoption.DiscardAdoption, activities.MachineInput{MachineID: w.in.MachineID}).Get(dctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("cannot remove the machine of a failed adoption", "machine_id", w.in.MachineID, "error", err)
	}
}
