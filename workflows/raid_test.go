package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"bareflow/activities"
	"bareflow/contract"
)

func newRAIDSuite(t *testing.T) *registerSuite {
	t.Helper()
	s := newRegisterSuite(t)
	s.env.RegisterWorkflow(MakeRAID)
	s.env.RegisterActivity(&activities.RAID{})
	return s
}

var raid10 = contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID10, Controller: "md",
	Disks: contract.DiskSelector{Slots: []string{"vdb", "vdc", "vdd", "vde"}}, Root: true}}}

func TestMakeRAIDInRamdiskLeftRunning(t *testing.T) {
	s := newRAIDSuite(t)
	s.facts = activities.MachineFacts{State: contract.MachineReady}
	s.stillIn = true
	s.onCollect(nil)
	s.env.OnActivity(raidActs.CheckRAID, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CheckRAIDInput) (activities.CheckRAIDResult, error) {
			s.calls = append(s.calls, "check")
			return activities.CheckRAIDResult{Plan: []string{"md: RAID 10 on vdb vdc vdd vde"}}, nil
		}).Once()
	vol := contract.BuiltVolume{Controller: "md", Level: contract.RAID10, ID: "bf-r10", Device: "md127", Root: true}
	s.env.OnActivity(raidActs.BuildRAID, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BuildRAIDInput) (activities.BuildRAIDResult, error) {
			s.calls = append(s.calls, "build")
			if len(in.Spec.Arrays) != 1 || in.Ramdisk.Addr != s.ready.Addr {
				t.Errorf("build: got %+v", in)
			}
			return activities.BuildRAIDResult{Volumes: []contract.BuiltVolume{vol}}, nil
		}).Once()
	s.env.OnActivity(raidActs.RecordRAID, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordRAIDInput) (activities.RecordRAIDResult, error) {
			s.calls = append(s.calls, "record")
			return activities.RecordRAIDResult{RootDevice: "md127"}, nil
		}).Once()
	s.env.ExecuteWorkflow(MakeRAID, contract.MakeRAIDInput{MachineID: machineID, Spec: raid10, LeaveInRamdisk: true})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	var got contract.MakeRAIDResult
	if err := s.env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.RootDevice != "md127" || len(got.Volumes) != 1 {
		t.Errorf("result: got %+v, want md127", got)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory", "check", "build", "collect", "save_inventory", "record", "finish:ready")
}

func TestMakeRAIDFails(t *testing.T) {
	for _, tc := range []struct {
		name      string
		check     error
		build     error
		wantCode  string
		wantCalls []string
	}{
		{
			name:      "spec the hardware cannot satisfy",
			check:     temporal.NewNonRetryableApplicationError("array 1: RAID 10 needs 4 disks; 3 match", contract.ErrRAIDSpecInvalid, nil),
			wantCode:  contract.ErrRAIDSpecInvalid,
			wantCalls: []string{"prepare", "still_in_ramdisk?", "collect", "save_inventory", "finish:error"},
		},
		{
			name:      "controller refuses",
			build:     temporal.NewNonRetryableApplicationError("build RAID: storcli: failure; built so far: nothing", contract.ErrRAIDBuildFailed, nil),
			wantCode:  contract.ErrRAIDBuildFailed,
			wantCalls: []string{"prepare", "still_in_ramdisk?", "collect", "save_inventory", "finish:error"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newRAIDSuite(t)
			s.facts = activities.MachineFacts{State: contract.MachineReady}
			s.onCollect(nil)
			s.pollResult = func(context.Context) (activities.AwaitRamdiskResult, error) {
				return activities.AwaitRamdiskResult{Found: true, Ready: s.ready}, nil
			}
			s.env.OnActivity(raidActs.CheckRAID, mock.Anything, mock.Anything).Return(activities.CheckRAIDResult{}, tc.check).Once()
			if tc.check == nil {
				s.env.OnActivity(raidActs.BuildRAID, mock.Anything, mock.Anything).Return(activities.BuildRAIDResult{}, tc.build).Once()
			}
			s.env.OnActivity(registration.PowerOffRamdisk, mock.Anything, mock.Anything).Return(nil).Maybe()
			s.env.ExecuteWorkflow(MakeRAID, contract.MakeRAIDInput{MachineID: machineID, Spec: raid10, RamdiskTimeout: time.Hour})
			err := s.env.GetWorkflowError()
			if got := errType(err); got != tc.wantCode {
				t.Fatalf("error: got %v (type %q), want %q", err, got, tc.wantCode)
			}
			s.wantCalls(t, tc.wantCalls...)
			if f := s.final(t); f.State != contract.OperationFailed || f.ErrorCode != tc.wantCode {
				t.Errorf("operation outcome: got %+v", f)
			}
		})
	}
}

func TestMakeRAIDRejectsInvalidInput(t *testing.T) {
	for name, in := range map[string]contract.MakeRAIDInput{
		"no array":      {MachineID: machineID},
		"unknown level": {MachineID: machineID, Spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: "7"}}}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newRAIDSuite(t)
			s.env.ExecuteWorkflow(MakeRAID, in)
			if got := errType(s.env.GetWorkflowError()); got != contract.ErrRAIDSpecInvalid {
				t.Fatalf("error type: got %q, want %q", got, contract.ErrRAIDSpecInvalid)
			}
		})
	}
}
