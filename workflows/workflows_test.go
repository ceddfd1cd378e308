package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"bareflow/activities"
	"bareflow/contract"
)

const machineID = "6f1c1f7e-0000-4000-8000-000000000001"

type suite struct {
	testsuite.WorkflowTestSuite
	env      *testsuite.TestWorkflowEnvironment
	finished []activities.FinishOperationInput
	startErr error
	steps    []string
}

func newEnv(t *testing.T) *suite {
	t.Helper()
	s := &suite{}
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflow(Power)
	s.env.RegisterWorkflow(SetBootDevice)
	s.env.RegisterWorkflow(PowerSync)
	s.env.RegisterWorkflow(PowerStatus)
	s.env.RegisterActivity(&activities.Records{})
	s.env.RegisterActivity(&activities.BMC{})
	s.env.OnActivity(records.StartOperation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, _ activities.StartOperationInput) error { return s.startErr }).Maybe()
	s.env.OnActivity(records.RecordStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StepInput) error { s.steps = append(s.steps, in.Step); return nil }).Maybe()
	s.env.OnActivity(records.FinishOperation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FinishOperationInput) error {
			s.finished = append(s.finished, in)
			return nil
		}).Maybe()
	t.Cleanup(func() { s.env.AssertExpectations(t) })
	return s
}

func (s *suite) onSetPower(op activities.PowerOp, res activities.SetPowerResult, err error) *testsuite.MockCallWrapper {
	return s.env.OnActivity(bmc.SetPower, mock.Anything, activities.SetPowerInput{MachineID: machineID, Op: op}).Return(res, err)
}

func (s *suite) onWait(want contract.PowerState, res activities.WaitPowerStateResult, err error) *testsuite.MockCallWrapper {
	return s.env.OnActivity(bmc.WaitPowerState, mock.Anything, mock.MatchedBy(func(in activities.WaitPowerStateInput) bool {
		return in.Want == want
	})).Return(res, err)
}

func (s *suite) final(t *testing.T) activities.FinishOperationInput {
	t.Helper()
	if len(s.finished) != 1 {
		t.Fatalf("FinishOperation called %d times, want 1", len(s.finished))
	}
	return s.finished[0]
}

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

func TestPowerSucceeds(t *testing.T) {
	reachedOn := activities.WaitPowerStateResult{State: contract.PowerOn, Reached: true}
	reachedOff := activities.WaitPowerStateResult{State: contract.PowerOff, Reached: true}
	notOff := activities.WaitPowerStateResult{State: contract.PowerOn}
	tests := map[string]struct {
		action    contract.PowerAction
		mocks     func(s *suite)
		wantPower contract.PowerState
		wantHard  bool
		wantSteps []string
	}{
		"on": {
			action: contract.PowerActionOn,
			mocks: func(s *suite) {
				s.onSetPower(activities.OpOn, activities.SetPowerResult{Before: contract.PowerOff}, nil).Once()
				s.onWait(contract.PowerOn, reachedOn, nil).Once()
			},
			wantPower: contract.PowerOn,
			wantSteps: []string{stepPowerOn, stepVerifyOn},
		},
		"hard off": {
			action: contract.PowerActionHardOff,
			mocks: func(s *suite) {
				s.onSetPower(activities.OpHardOff, activities.SetPowerResult{Before: contract.PowerOn}, nil).Once()
				s.onWait(contract.PowerOff, reachedOff, nil).Once()
			},
			wantPower: contract.PowerOff,
			wantSteps: []string{stepHardOff, stepVerifyOff},
		},
		"soft off honoured": {
			action: contract.PowerActionOff,
			mocks: func(s *suite) {
				s.onSetPower(activities.OpSoftOff, activities.SetPowerResult{Before: contract.PowerOn}, nil).Once()
				s.onWait(contract.PowerOff, reachedOff, nil).Once()
			},
			wantPower: contract.PowerOff,
			wantSteps: []string{stepSoftOff, stepWaitOff},
		},
		"soft off ignored then hard off": {
			action: contract.PowerActionOff,
			mocks: func(s *suite) {
				s.onSetPower(activities.OpSoftOff, activities.SetPowerResult{Before: contract.PowerOn}, nil).Once()
				s.onWait(contract.PowerOff, notOff, nil).Once()
				s.onSetPower(activities.OpHardOff, activities.SetPowerResult{Before: contract.PowerOn}, nil).Once()
				s.onWait(contract.PowerOff, reachedOff, nil).Once()
			},
			wantPower: contract.PowerOff,
			wantHard:  true,
			wantSteps: []string{stepSoftOff, stepWaitOff, stepHardOff, stepVerifyOff},
		},
		"off when already off": {
			action: contract.PowerActionOff,
			mocks: func(s *suite) {
				s.onSetPower(activities.OpSoftOff, activities.SetPowerResult{Before: contract.PowerOff, Skipped: true}, nil).Once()
			},
			wantPower: contract.PowerOff,
			wantSteps: []string{stepSoftOff},
		},
		"reset": {
			action: contract.PowerActionReset,
			mocks: func(s *suite) {
				s.onSetPower(activities.OpReset, activities.SetPowerResult{Before: contract.PowerOn}, nil).Once()
				s.onWait(contract.PowerOn, reachedOn, nil).Once()
			},
			wantPower: contract.PowerOn,
			wantSteps: []string{stepReset, stepVerifyOn},
		},
		"cycle": {
			action: contract.PowerActionCycle,
			mocks: func(s *suite) {
				s.onSetPower(activities.OpHardOff, activities.SetPowerResult{Before: contract.PowerOn}, nil).Once()
				s.onWait(contract.PowerOff, reachedOff, nil).Once()
				s.onSetPower(activities.OpOn, activities.SetPowerResult{Before: contract.PowerOff}, nil).Once()
				s.onWait(contract.PowerOn, reachedOn, nil).Once()
			},
			wantPower: contract.PowerOn,
			wantSteps: []string{stepHardOff, stepVerifyOff, stepCyclePause, stepPowerOn, stepVerifyOn},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newEnv(t)
			tc.mocks(s)
			s.env.ExecuteWorkflow(Power, contract.PowerInput{OperationID: "op-1", MachineID: machineID, Action: tc.action})
			if !s.env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			if err := s.env.GetWorkflowError(); err != nil {
				t.Fatalf("workflow error: got %v, want nil", err)
			}
			var res contract.PowerResult
			if err := s.env.GetWorkflowResult(&res); err != nil {
				t.Fatal(err)
			}
			if res.PowerState != tc.wantPower || res.HardOff != tc.wantHard {
				t.Errorf("result: got power %s hard_off %t, want %s %t", res.PowerState, res.HardOff, tc.wantPower, tc.wantHard)
			}
			if got, want := s.steps, tc.wantSteps; !equal(got, want) {
				t.Errorf("steps: got %v, want %v", got, want)
			}
			fin := s.final(t)
			if fin.State != contract.OperationSucceeded || fin.PowerState != tc.wantPower || fin.OperationID != "op-1" {
				t.Errorf("finish: got %+v, want succeeded with power %s", fin, tc.wantPower)
			}
		})
	}
}

func TestPowerFails(t *testing.T) {
	authErr := temporal.NewNonRetryableApplicationError("BMC at 127.0.0.1:623 refused user admin", contract.ErrBMCAuthFailed, nil)
	tests := map[string]struct {
		input     contract.PowerInput
		mocks     func(s *suite)
		wantCode  string
		wantState contract.OperationState
	}{
		"wrong BMC credentials": {
			input: contract.PowerInput{MachineID: machineID, Action: contract.PowerActionOn},
			mocks: func(s *suite) {
				s.onSetPower(activities.OpOn, activities.SetPowerResult{}, authErr).Once()
			},
			wantCode: contract.ErrBMCAuthFailed, wantState: contract.OperationFailed,
		},
		"BMC does not answer": {
			input: contract.PowerInput{MachineID: machineID, Action: contract.PowerActionOn},
			mocks: func(s *suite) {
				s.onSetPower(activities.OpOn, activities.SetPowerResult{}, temporal.NewApplicationError("no answer", contract.ErrBMCUnreachable)).Times(bmcAttempts)
			},
			wantCode: contract.ErrBMCUnreachable, wantState: contract.OperationFailed,
		},
		"power never reported": {
			input: contract.PowerInput{MachineID: machineID, Action: contract.PowerActionOn},
			mocks: func(s *suite) {
				s.onSetPower(activities.OpOn, activities.SetPowerResult{}, nil).Once()
				s.onWait(contract.PowerOn, activities.WaitPowerStateResult{State: contract.PowerOff},
					temporal.NewNonRetryableApplicationError("still off", contract.ErrPowerStateTimeout, nil)).Once()
			},
			wantCode: contract.ErrPowerStateTimeout, wantState: contract.OperationFailed,
		},
		"machine not found": {
			input: contract.PowerInput{MachineID: machineID, Action: contract.PowerActionOn},
			mocks: func(s *suite) {
				s.startErr = temporal.NewNonRetryableApplicationError("machine does not exist", contract.ErrMachineNotFound, nil)
			},
			wantCode: contract.ErrMachineNotFound, wantState: contract.OperationFailed,
		},
		"machine without BMC": {
			input: contract.PowerInput{MachineID: machineID, Action: contract.PowerActionCycle},
			mocks: func(s *suite) {
				s.onSetPower(activities.OpHardOff, activities.SetPowerResult{},
					temporal.NewNonRetryableApplicationError("no BMC", contract.ErrBMCNotConfigured, nil)).Once()
			},
			wantCode: contract.ErrBMCNotConfigured, wantState: contract.OperationFailed,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newEnv(t)
			tc.mocks(s)
			s.env.ExecuteWorkflow(Power, tc.input)
			err := s.env.GetWorkflowError()
			if got := errType(err); got != tc.wantCode {
				t.Fatalf("workflow error type: got %q (%v), want %q", got, err, tc.wantCode)
			}
			fin := s.final(t)
			if fin.State != tc.wantState || fin.ErrorCode != tc.wantCode || fin.Error == "" {
				t.Errorf("finish: got %+v, want state %s code %s and a message", fin, tc.wantState, tc.wantCode)
			}
			if fin.PowerState != "" {
				t.Errorf("finish power state: got %q, want none on failure", fin.PowerState)
			}
		})
	}
}

func TestPowerRejectsInvalidInput(t *testing.T) {
	for name, in := range map[string]contract.PowerInput{
		"no machine":     {Action: contract.PowerActionOn},
		"unknown action": {MachineID: machineID, Action: "explode"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newEnv(t)
			s.env.ExecuteWorkflow(Power, in)
			if got := errType(s.env.GetWorkflowError()); got != contract.ErrInvalidInput {
				t.Fatalf("error type: got %q, want %q", got, contract.ErrInvalidInput)
			}
		})
	}
}

func TestPowerCycleCanceledDuringPause(t *testing.T) {
	s := newEnv(t)
	s.onSetPower(activities.OpHardOff, activities.SetPowerResult{}, nil).Once()
	s.onWait(contract.PowerOff, activities.WaitPowerStateResult{State: contract.PowerOff, Reached: true}, nil).Once()
	var status contract.OperationStatus
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(contract.QueryStatus)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&status); err != nil {
			t.Errorf("query result: %v", err)
		}
		s.env.CancelWorkflow()
	}, 10*time.Second)
	s.env.ExecuteWorkflow(Power, contract.PowerInput{OperationID: "op-9", MachineID: machineID, Action: contract.PowerActionCycle, CycleDelay: time.Minute})
	if !temporal.IsCanceledError(s.env.GetWorkflowError()) {
		t.Fatalf("error: got %v, want canceled", s.env.GetWorkflowError())
	}
	if status.Step != stepCyclePause || status.OperationID != "op-9" {
		t.Errorf("status during pause: got %+v, want step %s of op-9", status, stepCyclePause)
	}
	if fin := s.final(t); fin.State != contract.OperationCanceled {
		t.Errorf("finish: got %s, want canceled", fin.State)
	}
}

func TestSetBootDevice(t *testing.T) {
	tests := map[string]struct {
		reported activities.BootOverride
		err      error
		wantCode string
	}{
		"verified":     {reported: activities.BootOverride{Device: contract.BootPXE, Mode: contract.BootModeEFI, Valid: true}},
		"not verified": {reported: activities.BootOverride{Device: contract.BootDisk, Valid: true}, wantCode: contract.ErrBootDeviceNotSet},
		"unsupported": {
			err:      temporal.NewNonRetryableApplicationError("invalid data field", contract.ErrBMCUnsupported, nil),
			wantCode: contract.ErrBMCUnsupported,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newEnv(t)
			s.env.OnActivity(bmc.SetBootDevice, mock.Anything, activities.SetBootDeviceInput{
				MachineID: machineID, Device: contract.BootPXE, Mode: contract.BootModeEFI,
			}).Return(activities.SetBootDeviceResult{Reported: tc.reported, Verified: tc.reported.Device == contract.BootPXE}, tc.err).Once()
			s.env.ExecuteWorkflow(SetBootDevice, contract.SetBootDeviceInput{MachineID: machineID, Device: contract.BootPXE, Mode: contract.BootModeEFI})
			err := s.env.GetWorkflowError()
			if got := errType(err); got != tc.wantCode {
				t.Fatalf("error type: got %q (%v), want %q", got, err, tc.wantCode)
			}
			fin := s.final(t)
			wantState := contract.OperationSucceeded
			if tc.wantCode != "" {
				wantState = contract.OperationFailed
			}
			if fin.State != wantState || fin.ErrorCode != tc.wantCode {
				t.Errorf("finish: got %s %q, want %s %q", fin.State, fin.ErrorCode, wantState, tc.wantCode)
			}
		})
	}
}

func TestPowerSyncBatches(t *testing.T) {
	s := newEnv(t)
	ids := make([]string, 250)
	for i := range ids {
		ids[i] = string(rune('a'+i%26)) + time.Duration(i).String()
	}
	s.env.OnActivity(records.ListBMCMachines, mock.Anything).Return(activities.MachineList{MachineIDs: ids}, nil).Once()
	var batches []int
	s.env.OnActivity(bmc.SyncPower, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SyncPowerInput) (activities.SyncPowerResult, error) {
		batches = append(batches, len(in.MachineIDs))
		if in.Concurrency != 4 {
			t.Errorf("concurrency: got %d, want 4", in.Concurrency)
		}
		return activities.SyncPowerResult{Asked: len(in.MachineIDs), Recorded: len(in.MachineIDs) - 1, Failed: 1}, nil
	}).Times(3)
	s.env.ExecuteWorkflow(PowerSync, contract.PowerSyncInput{Concurrency: 4})
	var res contract.PowerSyncResult
	if err := s.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if !equal(batches, []int{100, 100, 50}) {
		t.Errorf("batches: got %v, want [100 100 50]", batches)
	}
	if res != (contract.PowerSyncResult{Machines: 250, Recorded: 247, Failed: 3}) {
		t.Errorf("result: got %+v, want 250 machines, 247 recorded, 3 failed", res)
	}
}

func TestPowerStatus(t *testing.T) {
	s := newEnv(t)
	at := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	s.env.OnActivity(bmc.PowerState, mock.Anything, activities.MachineInput{MachineID: machineID}).
		Return(activities.PowerStateResult{State: contract.PowerOn, At: at}, nil).Once()
	s.env.OnActivity(records.RecordPowerState, mock.Anything, activities.RecordPowerStateInput{MachineID: machineID, State: contract.PowerOn, At: at}).Return(nil).Once()
	s.env.ExecuteWorkflow(PowerStatus, contract.PowerStatusInput{MachineID: machineID})
	var res contract.PowerStatusResult
	if err := s.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.PowerState != contract.PowerOn {
		t.Errorf("power: got %s, want on", res.PowerState)
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
