package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/contract"
)

// Register timeouts and steps.
const (
	// ramdiskWaitTimeout is how long Register waits for the ramdisk to
	// phone home.
	ramdiskWaitTimeout = 30 * time.Minute
	// stepWaitRamdisk is the status step while Register waits.
	stepWaitRamdisk = "waiting_for_ramdisk"
	// errRamdiskTimeout is the error type when the ramdisk never phoned
	// home.
	errRamdiskTimeout = "RamdiskTimeout"
)

// Register onboards a machine. For now it only waits for the machine's
// ramdisk to phone home (SignalRamdiskReady) and returns what the ramdisk
// reported; boot events (SignalBootEvent) that arrive meanwhile are taken
// and logged. The boot service signal-with-starts it on the machine's
// workflow ID when an unknown machine network-boots. Hardware inventory and
// BMC set-up come later.
func Register(ctx workflow.Context, in contract.RegisterInput) (contract.RegisterResult, error) {
	w := &registerWorkflow{in: in}
	if err := w.setup(ctx); err != nil {
		return contract.RegisterResult{}, err
	}
	return w.run(ctx)
}

type registerWorkflow struct {
	in         contract.RegisterInput
	status     contract.OperationStatus
	bootEvents int
}

func (w *registerWorkflow) setup(ctx workflow.Context) error {
	if w.in.MachineID == "" {
		return temporal.NewNonRetryableApplicationError("machine ID is required", contract.ErrInvalidInput, nil)
	}
	id := w.in.OperationID
	if id == "" {
		id = workflow.GetInfo(ctx).WorkflowExecution.RunID
	}
	w.status = contract.OperationStatus{OperationID: id, MachineID: w.in.MachineID, Kind: contract.OperationRegister, Step: stepWaitRamdisk}
	return workflow.SetQueryHandler(ctx, contract.QueryStatus, func() (contract.OperationStatus, error) {
		return w.status, nil
	})
}

func (w *registerWorkflow) run(ctx workflow.Context) (contract.RegisterResult, error) {
	ready, err := w.waitRamdisk(ctx)
	if err != nil {
		return contract.RegisterResult{}, err
	}
	w.status.Step, w.status.Progress = stepDone, 1
	return contract.RegisterResult{MachineID: w.in.MachineID, Ramdisk: ready}, nil
}

// waitRamdisk waits for SignalRamdiskReady, taking boot events as they
// come, until ramdiskWaitTimeout.
func (w *registerWorkflow) waitRamdisk(ctx workflow.Context) (contract.RamdiskReady, error) {
	log := workflow.GetLogger(ctx)
	readyCh := workflow.GetSignalChannel(ctx, contract.SignalRamdiskReady)
	bootCh := workflow.GetSignalChannel(ctx, contract.SignalBootEvent)
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimer(timerCtx, ramdiskWaitTimeout)

	var (
		ready    contract.RamdiskReady
		got      bool
		timedOut bool
	)
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(readyCh, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, &ready)
		got = true
	})
	sel.AddReceive(bootCh, func(c workflow.ReceiveChannel, _ bool) {
		var ev contract.BootEvent
		c.Receive(ctx, &ev)
		w.bootEvents++
		log.Info("boot event", "machine_id", w.in.MachineID, "kind", string(ev.Kind), "addr", ev.Addr)
	})
	sel.AddFuture(timer, func(workflow.Future) { timedOut = true })
	for !got && !timedOut {
		sel.Select(ctx)
	}
	if !got {
		return contract.RamdiskReady{}, temporal.NewNonRetryableApplicationError(
			"the ramdisk did not phone home within "+ramdiskWaitTimeout.String(), errRamdiskTimeout, nil)
	}
	return ready, nil
}
