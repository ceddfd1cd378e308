package workflows

import (
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"bareflow/contract"
)

func newRegisterEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Register)
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

func TestRegisterWaitsForRamdisk(t *testing.T) {
	env := newRegisterEnv(t)
	want := contract.RamdiskReady{MachineID: machineID, Addr: "203.0.113.40", MACs: []string{"02:42:bf:00:00:01"},
		SSHHostKey: "ssh-ed25519 AAAA", At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var status contract.OperationStatus
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalBootEvent, contract.BootEvent{MachineID: machineID, Kind: contract.BootEventDHCP, Addr: "203.0.113.40"})
	}, time.Minute)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(contract.QueryStatus)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&status); err != nil {
			t.Errorf("query result: %v", err)
		}
		env.SignalWorkflow(contract.SignalBootEvent, contract.BootEvent{MachineID: machineID, Kind: contract.BootEventScript})
		env.SignalWorkflow(contract.SignalRamdiskReady, want)
	}, 5*time.Minute)
	env.ExecuteWorkflow(Register, contract.RegisterInput{OperationID: "op-1", MachineID: machineID, Discovered: true})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	var got contract.RegisterResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.MachineID != machineID || got.Ramdisk.Addr != want.Addr || got.Ramdisk.SSHHostKey != want.SSHHostKey || !got.Ramdisk.At.Equal(want.At) {
		t.Errorf("result: got %+v, want machine %s with %+v", got, machineID, want)
	}
	if status.Step != stepWaitRamdisk || status.OperationID != "op-1" || status.Kind != contract.OperationRegister {
		t.Errorf("status while waiting: got %+v, want step %s of op-1", status, stepWaitRamdisk)
	}
}

func TestRegisterTimesOut(t *testing.T) {
	env := newRegisterEnv(t)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalBootEvent, contract.BootEvent{MachineID: machineID, Kind: contract.BootEventDHCP})
	}, time.Minute)
	env.ExecuteWorkflow(Register, contract.RegisterInput{MachineID: machineID})
	err := env.GetWorkflowError()
	if got := errType(err); got != errRamdiskTimeout {
		t.Fatalf("error: got %v (type %q), want type %q", err, got, errRamdiskTimeout)
	}
}

func TestRegisterRejectsInvalidInput(t *testing.T) {
	env := newRegisterEnv(t)
	env.ExecuteWorkflow(Register, contract.RegisterInput{})
	if got := errType(env.GetWorkflowError()); got != contract.ErrInvalidInput {
		t.Fatalf("error type: got %q, want %q", got, contract.ErrInvalidInput)
	}
}
