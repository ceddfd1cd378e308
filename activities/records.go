package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

// OperationRecord is an operation as the records activities write it.
type OperationRecord struct {
	ID          string
	MachineID   string
	Kind        contract.OperationKind
	WorkflowID  string
	RunID       string
	State       contract.OperationState
	Step        string
	Progress    float64
	ErrorCode   string
	Error       string
	RequestedBy string
	StartedAt   time.Time
}

// OperationChange is a partial update of an operation; nil fields stay.
type OperationChange struct {
	State     *contract.OperationState
	Step      *string
	Progress  *float64
	ErrorCode *string
	Error     *string
}

// RecordKeeper is what the records activities need of the store.
type RecordKeeper interface {
	UpsertOperation(ctx context.Context, op OperationRecord) error
	UpdateOperation(ctx context.Context, id string, ch OperationChange) error
	MachineKeeper
}

// MachineKeeper records what operations learn about machines.
type MachineKeeper interface {
	SetPowerState(ctx context.Context, machineID string, s contract.PowerState, at time.Time) error
	SetMachineError(ctx context.Context, machineID, code, msg string) error
	ClearMachineError(ctx context.Context, machineID string) error
	MachinesWithBMC(ctx context.Context) ([]string, error)
	MachineExists(ctx context.Context, machineID string) error
}

// Records holds the activities that keep bareflow's own records of
// operations and machines in step with the workflows.
type Records struct {
	Keeper RecordKeeper
}

// StartOperationInput opens an operation record.
type StartOperationInput struct {
	Operation OperationRecord
}

// StartOperation creates the operation record, or completes the one the API
// made when it started the workflow, and marks it running. It also checks the
// machine exists.
//
// Idempotent: an upsert by operation ID. No heartbeat.
func (r *Records) StartOperation(ctx context.Context, in StartOperationInput) error {
	if err := r.Keeper.MachineExists(ctx, in.Operation.MachineID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return temporal.NewNonRetryableApplicationError("machine "+in.Operation.MachineID+" does not exist", contract.ErrMachineNotFound, nil)
		}
		return fmt.Errorf("check machine: %w", err)
	}
	op := in.Operation
	op.State = contract.OperationRunning
	if err := r.Keeper.UpsertOperation(ctx, op); err != nil {
		return fmt.Errorf("record operation %s: %w", op.ID, err)
	}
	return nil
}

// StepInput records the step an operation is at.
type StepInput struct {
	OperationID string
	Step        string
	Progress    float64
}

// RecordStep writes the current step and progress of an operation.
//
// Idempotent: it overwrites the step with the same value. No heartbeat.
func (r *Records) RecordStep(ctx context.Context, in StepInput) error {
	if err := r.Keeper.UpdateOperation(ctx, in.OperationID, OperationChange{Step: &in.Step, Progress: &in.Progress}); err != nil {
		return fmt.Errorf("record step %q of operation %s: %w", in.Step, in.OperationID, err)
	}
	return nil
}

// FinishOperationInput closes an operation record.
type FinishOperationInput struct {
	OperationID string
	MachineID   string
	State       contract.OperationState
	ErrorCode   string
	Error       string
	// PowerState, when set, is recorded as the machine's power state.
	PowerState contract.PowerState
}

// FinishOperation writes the final state of an operation and what the
// machine should show for it: a failure's code and message become the
// machine's last error, a success clears it.
//
// Idempotent: final states are written with the same values again, and the
// store never moves a final state back. No heartbeat.
func (r *Records) FinishOperation(ctx context.Context, in FinishOperationInput) error {
	if !in.State.Final() {
		return temporal.NewNonRetryableApplicationError("operation state "+string(in.State)+" is not final", contract.ErrInvalidInput, nil)
	}
	ch := OperationChange{State: &in.State}
	if in.State == contract.OperationSucceeded {
		one := 1.0
		ch.Progress = &one
	}
	if in.ErrorCode != "" || in.Error != "" {
		ch.ErrorCode, ch.Error = &in.ErrorCode, &in.Error
	}
	if err := r.Keeper.UpdateOperation(ctx, in.OperationID, ch); err != nil {
		return fmt.Errorf("finish operation %s: %w", in.OperationID, err)
	}
	if in.MachineID == "" {
		return nil
	}
	var err error
	switch in.State {
	case contract.OperationFailed:
		err = r.Keeper.SetMachineError(ctx, in.MachineID, in.ErrorCode, in.Error)
	case contract.OperationSucceeded:
		err = r.Keeper.ClearMachineError(ctx, in.MachineID)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("record outcome on machine %s: %w", in.MachineID, err)
	}
	if in.PowerState != "" {
		if err := r.Keeper.SetPowerState(ctx, in.MachineID, in.PowerState, time.Now().UTC()); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("record power state of machine %s: %w", in.MachineID, err)
		}
	}
	return nil
}

// RecordPowerStateInput records an observed power state.
type RecordPowerStateInput struct {
	MachineID string
	State     contract.PowerState
	At        time.Time
}

// RecordPowerState writes the last observed power state of a machine.
//
// Idempotent: an overwrite. No heartbeat.
func (r *Records) RecordPowerState(ctx context.Context, in RecordPowerStateInput) error {
	if err := r.Keeper.SetPowerState(ctx, in.MachineID, in.State, in.At); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("record power state of machine %s: %w", in.MachineID, err)
	}
	return nil
}

// MachineList is a list of machine IDs.
type MachineList struct {
	MachineIDs []string
}

// ListBMCMachines lists the machines that have a BMC to ask.
//
// Idempotent: it only reads. No heartbeat.
func (r *Records) ListBMCMachines(ctx context.Context) (MachineList, error) {
	ids, err := r.Keeper.MachinesWithBMC(ctx)
	if err != nil {
		return MachineList{}, fmt.Errorf("list machines with a BMC: %w", err)
	}
	return MachineList{MachineIDs: ids}, nil
}
