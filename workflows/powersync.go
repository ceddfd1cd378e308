package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

// Fleet power sync settings.
const (
	// powerSyncBatch is how many machines one SyncPower activity reads.
	// Batches keep the history small however large the fleet.
	powerSyncBatch = 100
	// powerSyncBatchTimeout bounds one batch; BMCs that do not answer are
	// skipped after their own short timeout.
	powerSyncBatchTimeout = 10 * time.Minute
	powerStatusTimeout    = 30 * time.Second
)

// PowerSync refreshes the recorded power state of every machine that has a
// BMC, asking at most Concurrency BMCs at once. A Temporal schedule runs it
// periodically. It reads only, so it does not take the machines' workflow
// IDs and never waits for their operations.
func PowerSync(ctx workflow.Context, in contract.PowerSyncInput) (contract.PowerSyncResult, error) {
	if in.Concurrency <= 0 {
		in.Concurrency = contract.DefaultPowerSyncConcurrency
	}
	var list activities.MachineList
	if err := workflow.ExecuteActivity(recordOptions(ctx), records.ListBMCMachines).Get(ctx, &list); err != nil {
		return contract.PowerSyncResult{}, err
	}
	res := contract.PowerSyncResult{Machines: len(list.MachineIDs)}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: powerSyncBatchTimeout,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	for start := 0; start < len(list.MachineIDs); start += powerSyncBatch {
		end := min(start+powerSyncBatch, len(list.MachineIDs))
		var out activities.SyncPowerResult
		err := workflow.ExecuteActivity(actx, bmc.SyncPower, activities.SyncPowerInput{
			MachineIDs: list.MachineIDs[start:end], Concurrency: in.Concurrency,
		}).Get(ctx, &out)
		if err != nil {
			workflow.GetLogger(ctx).Warn("power sync batch failed", "first", start, "error", err)
			res.Failed += end - start
			continue
		}
		res.Recorded += out.Recorded
		res.Failed += out.Failed
		for _, e := range out.Errors {
			workflow.GetLogger(ctx).Info("power sync: BMC not read", "error", e)
		}
	}
	return res, nil
}

// PowerStatus reads the power state of one machine from its BMC and records
// it. It reads only, so it runs beside any operation on the machine, on its
// own workflow ID (contract.PowerStatusWorkflowID).
func PowerStatus(ctx workflow.Context, in contract.PowerStatusInput) (contract.PowerStatusResult, error) {
	if in.MachineID == "" {
		return contract.PowerStatusResult{}, temporal.NewNonRetryableApplicationError("machine ID is required", contract.ErrInvalidInput, nil)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: powerStatusTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 2},
	})
	var st activities.PowerStateResult
	if err := workflow.ExecuteActivity(actx, bmc.PowerState, activities.MachineInput{MachineID: in.MachineID}).Get(ctx, &st); err != nil {
		return contract.PowerStatusResult{}, err
	}
	err := workflow.ExecuteActivity(recordOptions(ctx), records.RecordPowerState,
		activities.RecordPowerStateInput{MachineID: in.MachineID, State: st.State, At: st.At}).Get(ctx, nil)
	return contract.PowerStatusResult{MachineID: in.MachineID, PowerState: st.State, At: st.At}, err
}
