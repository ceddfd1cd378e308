package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

// Timeouts and retry policies shared by operation workflows.
const (
	recordTimeout     = 30 * time.Second
	bmcCommandTimeout = 90 * time.Second
	// bmcAttempts bounds how often a BMC command is tried before the
	// operation fails: a BMC that does not answer fails the operation
	// cleanly instead of holding the machine for ever.
	bmcAttempts     = 5
	waitHeartbeat   = 30 * time.Second
	cleanupTimeout  = 2 * time.Minute
	errCodeCanceled = "Canceled"
	errCodeTimeout  = "Timeout"
	errCodeInternal = "Internal"
	stepStarting    = "starting"
	stepDone        = "done"
)

var (
	records *activities.Records
	bmc     *activities.BMC
)

func recordOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: recordTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    10,
		},
	})
}

func bmcOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: bmcCommandTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    bmcAttempts,
		},
	})
}

func waitOptions(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout + time.Minute,
		HeartbeatTimeout:    waitHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    3,
		},
	})
}

// operation tracks one operation workflow: its record in the store, the
// step it is at for the status query, and its outcome.
type operation struct {
	status      contract.OperationStatus
	requestedBy string
}

// newOperation registers the status query. The operation ID defaults to the
// run ID so that a workflow started with the SDK alone still has a record.
func newOperation(ctx workflow.Context, id, machineID string, kind contract.OperationKind, requestedBy string) (*operation, error) {
	if id == "" {
		id = workflow.GetInfo(ctx).WorkflowExecution.RunID
	}
	o := &operation{
		status:      contract.OperationStatus{OperationID: id, MachineID: machineID, Kind: kind, Step: stepStarting},
		requestedBy: requestedBy,
	}
	if err := workflow.SetQueryHandler(ctx, contract.QueryStatus, func() (contract.OperationStatus, error) {
		return o.status, nil
	}); err != nil {
		return nil, err
	}
	return o, nil
}

// begin writes the operation record and checks the machine exists.
func (o *operation) begin(ctx workflow.Context) error {
	info := workflow.GetInfo(ctx)
	rec := activities.OperationRecord{
		ID:          o.status.OperationID,
		MachineID:   o.status.MachineID,
		Kind:        o.status.Kind,
		WorkflowID:  info.WorkflowExecution.ID,
		RunID:       info.WorkflowExecution.RunID,
		Step:        stepStarting,
		RequestedBy: o.requestedBy,
		StartedAt:   info.WorkflowStartTime,
	}
	return workflow.ExecuteActivity(recordOptions(ctx), records.StartOperation, activities.StartOperationInput{Operation: rec}).Get(ctx, nil)
}

// step moves the operation to a new step. A failure to write the record is
// logged, not fatal: bookkeeping must not fail a machine operation, and the
// status query still tells the truth.
func (o *operation) step(ctx workflow.Context, name string, progress float64) {
	o.status.Step, o.status.Progress = name, progress
	err := workflow.ExecuteActivity(recordOptions(ctx), records.RecordStep,
		activities.StepInput{OperationID: o.status.OperationID, Step: name, Progress: progress}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("cannot record step", "step", name, "error", err)
	}
}

// finish writes the outcome in a disconnected context, so that a canceled
// operation still records that it was canceled, and returns the error the
// workflow should end with: a non-retryable application error whose type is
// the stable error code.
func (o *operation) finish(ctx workflow.Context, runErr error, power contract.PowerState) error {
	in := activities.FinishOperationInput{
		OperationID: o.status.OperationID,
		MachineID:   o.status.MachineID,
		State:       contract.OperationSucceeded,
		PowerState:  power,
	}
	if runErr != nil {
		in.State, in.ErrorCode, in.Error = classify(runErr)
		in.PowerState = ""
	} else {
		o.status.Step, o.status.Progress = stepDone, 1
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	dctx = workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		StartToCloseTimeout:    recordTimeout,
		ScheduleToCloseTimeout: cleanupTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second},
	})
	if err := workflow.ExecuteActivity(dctx, records.FinishOperation, in).Get(dctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("cannot record the outcome of the operation", "error", err)
	}
	switch {
	case runErr == nil:
		return nil
	case in.State == contract.OperationCanceled:
		return runErr
	default:
		return temporal.NewNonRetryableApplicationError(in.Error, in.ErrorCode, runErr)
	}
}

// classify turns a workflow error into an operation state, a stable error
// code and a message an operator can act on.
func classify(err error) (contract.OperationState, string, string) {
	var appErr *temporal.ApplicationError
	var timeoutErr *temporal.TimeoutError
	switch {
	case temporal.IsCanceledError(err):
		return contract.OperationCanceled, errCodeCanceled, "the operation was canceled"
	case errors.As(err, &appErr):
		code := appErr.Type()
		if code == "" {
			code = errCodeInternal
		}
		return contract.OperationFailed, code, appErr.Message()
	case errors.As(err, &timeoutErr):
		return contract.OperationFailed, errCodeTimeout, "a step timed out: " + timeoutErr.Error()
	}
	return contract.OperationFailed, errCodeInternal, err.Error()
}
