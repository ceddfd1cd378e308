package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

const stepSetBootDevice = "set_boot_device"

// SetBootDevice sets the device a machine boots from next and checks the BMC
// reports it back. It runs on the machine's workflow ID.
func SetBootDevice(ctx workflow.Context, in contract.SetBootDeviceInput) (contract.SetBootDeviceResult, error) {
	w := &bootDeviceWorkflow{in: in}
	if err := w.setup(ctx); err != nil {
		return contract.SetBootDeviceResult{}, err
	}
	return w.run(ctx)
}

type bootDeviceWorkflow struct {
	in contract.SetBootDeviceInput
	op *operation
}

func (w *bootDeviceWorkflow) setup(ctx workflow.Context) error {
	if w.in.MachineID == "" {
		return temporal.NewNonRetryableApplicationError("machine ID is required", contract.ErrInvalidInput, nil)
	}
	if w.in.Mode == "" {
		w.in.Mode = contract.BootModeLegacy
	}
	for _, err := range []error{w.in.Device.Validate(), w.in.Mode.Validate()} {
		if err != nil {
			return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrInvalidInput, nil)
		}
	}
	op, err := newOperation(ctx, w.in.OperationID, w.in.MachineID, contract.OperationSetBootDevice, w.in.RequestedBy)
	w.op = op
	return err
}

func (w *bootDeviceWorkflow) run(ctx workflow.Context) (contract.SetBootDeviceResult, error) {
	res := contract.SetBootDeviceResult{MachineID: w.in.MachineID, Device: w.in.Device, Mode: w.in.Mode}
	err := w.op.begin(ctx)
	if err == nil {
		res.Verified, err = w.set(ctx)
	}
	return res, w.op.finish(ctx, err, "")
}

func (w *bootDeviceWorkflow) set(ctx workflow.Context) (bool, error) {
	w.op.step(ctx, stepSetBootDevice, 0.2)
	var out activities.SetBootDeviceResult
	err := workflow.ExecuteActivity(bmcOptions(ctx), bmc.SetBootDevice, activities.SetBootDeviceInput{
		MachineID: w.in.MachineID, Device: w.in.Device, Mode: w.in.Mode, Persistent: w.in.Persistent,
	}).Get(ctx, &out)
	if err != nil {
		return false, err
	}
	if !out.Verified {
		return false, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the BMC accepted boot device %s but reports %s back", w.in.Device, describeOverride(out.Reported)),
			contract.ErrBootDeviceNotSet, nil)
	}
	return true, nil
}

func describeOverride(o activities.BootOverride) string {
	if !o.Valid {
		return "no override"
	}
	return fmt.Sprintf("%s (%s, persistent %t)", o.Device, o.Mode, o.Persistent)
}
