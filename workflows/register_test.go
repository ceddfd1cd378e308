package workflows

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"bareflow/activities"
	"bareflow/contract"
)

// registerSuite is a suite with the registration activities mocked; the
// calls it saw are kept in order.
type registerSuite struct {
	*suite
	calls      []string
	finishReg  []activities.FinishRamdiskInput
	facts      activities.MachineFacts
	ready      contract.RamdiskReady
	inventory  contract.Inventory
	saveErr    error
	stillIn    bool
	pollResult func(ctx context.Context) (activities.AwaitRamdiskResult, error)
}

func newRegisterSuite(t *testing.T) *registerSuite {
	t.Helper()
	s := &registerSuite{suite: newEnv(t)}
	s.env.RegisterWorkflow(Register)
	s.env.RegisterActivity(&activities.Registration{})
	s.ready = contract.RamdiskReady{MachineID: machineID, Addr: "198.51.100.50", MACs: []string{"52:54:00:12:34:56"},
		SSHHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB", At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s.inventory = contract.Inventory{
		System: contract.SystemInfo{Vendor: "Dell Inc.", Model: "PowerEdge R740", Serial: "7XK2M53"},
		CPU:    contract.CPUInfo{Sockets: 2, Cores: 32, Threads: 64},
		Memory: contract.MemoryInfo{TotalBytes: 384 << 30},
		Disks:  []contract.Disk{{Name: "sda"}, {Name: "sdb"}},
	}
	// By default the poll finds nothing.
	s.pollResult = func(context.Context) (activities.AwaitRamdiskResult, error) {
		return activities.AwaitRamdiskResult{}, nil
	}
	call := func(name string) { s.calls = append(s.calls, name) }
	s.env.OnActivity(registration.PrepareRamdisk, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PrepareRamdiskInput) (activities.PrepareRamdiskResult, error) {
			call("prepare")
			if in.WorkflowID == "" || in.IntentTTL <= 0 {
				t.Errorf("prepare: got %+v, want a workflow ID and an intent lifetime", in)
			}
			return activities.PrepareRamdiskResult{Facts: s.facts, Since: time.Unix(1000, 0)}, nil
		}).Maybe()
	s.env.OnActivity(registration.AwaitRamdisk, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.AwaitRamdiskInput) (activities.AwaitRamdiskResult, error) {
			if in.WorkflowID == "" || (in.For > 0) != !in.Since.IsZero() {
				t.Errorf("poll: got %+v, want a workflow ID, and a watch since the intent or one look at any record", in)
			}
			if in.For == 0 {
				s.calls = append(s.calls, "still_in_ramdisk?")
				return activities.AwaitRamdiskResult{Found: s.stillIn, Ready: s.ready}, nil
			}
			return s.pollResult(ctx)
		}).Maybe()
	s.env.OnActivity(registration.ProbeRamdisk, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RamdiskInput) (bool, error) {
			call("probe")
			return in.Ramdisk.SSHHostKey == s.ready.SSHHostKey, nil
		}).Maybe()
	s.env.OnActivity(registration.SaveInventory, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SaveInventoryInput) error {
			call("save_inventory")
			if in.Inventory.System.Serial != s.inventory.System.Serial {
				t.Errorf("saved inventory serial: got %q, want %q", in.Inventory.System.Serial, s.inventory.System.Serial)
			}
			return s.saveErr
		}).Maybe()
	s.env.OnActivity(registration.FinishRamdisk, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FinishRamdiskInput) error {
			call("finish:" + string(in.State))
			s.finishReg = append(s.finishReg, in)
			return nil
		}).Maybe()
	return s
}

func (s *registerSuite) onCollect(err error) {
	s.env.OnActivity(registration.CollectInventory, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RamdiskInput) (contract.Inventory, error) {
			s.calls = append(s.calls, "collect")
			if in.Ramdisk.Addr != s.ready.Addr || in.Ramdisk.SSHHostKey != s.ready.SSHHostKey {
				return contract.Inventory{}, errors.New("collect called with the wrong ramdisk")
			}
			return s.inventory, err
		})
}

func (s *registerSuite) onConfigure(res activities.ConfigureBMCResult, err error) {
	s.env.OnActivity(registration.ConfigureBMC, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ConfigureBMCInput) (activities.ConfigureBMCResult, error) {
			s.calls = append(s.calls, "configure_bmc")
			if in.Vendor != s.inventory.System.Vendor {
				return res, errors.New("configure called without the inventory's vendor")
			}
			return res, err
		})
}

func (s *registerSuite) signalReadyAfter(d time.Duration) {
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(contract.SignalBootEvent, contract.BootEvent{MachineID: machineID, Kind: contract.BootEventDHCP})
		s.env.SignalWorkflow(contract.SignalRamdiskReady, s.ready)
	}, d)
}

func (s *registerSuite) wantCalls(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(s.calls, want) {
		t.Errorf("calls:\n got %q\nwant %q", s.calls, want)
	}
}

func TestRegisterDiscoveredMachine(t *testing.T) {
	s := newRegisterSuite(t)
	s.signalReadyAfter(2 * time.Minute)
	s.onCollect(nil)
	s.onConfigure(activities.ConfigureBMCResult{Addr: "203.0.113.10:623", Username: "bareflow", Channel: 1, Slot: 3}, nil)
	s.env.OnActivity(registration.VerifyBMC, mock.Anything, activities.VerifyBMCInput{MachineID: machineID, Addr: "203.0.113.10:623"}).
		Return(activities.PowerStateResult{State: contract.PowerOn}, nil).Once()
	s.env.OnActivity(registration.CommitBMC, mock.Anything, activities.CommitBMCInput{MachineID: machineID, Addr: "203.0.113.10:623"}).
		Return(nil).Once()
	s.onSetPower(activities.OpHardOff, activities.SetPowerResult{}, nil).Once()
	s.onWait(contract.PowerOff, activities.WaitPowerStateResult{State: contract.PowerOff, Reached: true}, nil).Once()

	s.env.ExecuteWorkflow(Register, contract.RegisterInput{OperationID: "op-1", MachineID: machineID, Discovered: true})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	var got contract.RegisterResult
	if err := s.env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.Ramdisk.Addr != s.ready.Addr || got.BMCAddr != "203.0.113.10:623" || got.BMCUser != "bareflow" ||
		got.CPUs != 64 || got.Disks != 2 || got.MemoryBytes != 384<<30 || got.PowerState != contract.PowerOff {
		t.Errorf("result: got %+v", got)
	}
	s.wantCalls(t, "prepare", "collect", "save_inventory", "configure_bmc", "finish:ready")
	if f := s.final(t); f.State != contract.OperationSucceeded || f.PowerState != contract.PowerOff {
		t.Errorf("operation outcome: got %+v, want succeeded, off", f)
	}
	if len(s.finishReg) != 1 || s.finishReg[0].KeepRamdisk {
		t.Errorf("finish: got %+v, want one, not keeping the ramdisk", s.finishReg)
	}
	for _, step := range []string{stepWaitRamdisk, stepCollect, stepConfigureBMC, stepVerifyBMC, stepPowerOff, stepFinish} {
		if !slices.Contains(s.steps, step) {
			t.Errorf("steps %q lack %q", s.steps, step)
		}
	}
}

func TestRegisterFindsRamdiskWhenSignalIsLost(t *testing.T) {
	s := newRegisterSuite(t)
	s.facts = activities.MachineFacts{State: contract.MachineEnrolled}
	s.pollResult = func(context.Context) (activities.AwaitRamdiskResult, error) {
		return activities.AwaitRamdiskResult{Found: true, Ready: s.ready}, nil
	}
	s.onCollect(nil)
	s.env.OnActivity(registration.PowerOffRamdisk, mock.Anything, mock.Anything).Return(nil).Once()

	s.env.ExecuteWorkflow(Register, contract.RegisterInput{MachineID: machineID, BMC: contract.BMCSetup{Mode: contract.BMCSetupSkip}})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "collect", "save_inventory", "finish:ready")
}

func TestRegisterReusesRamdiskItIsStillIn(t *testing.T) {
	s := newRegisterSuite(t)
	// A BMC, but no power command: the ramdisk an earlier operation left
	// running still answers with its host key.
	s.facts = activities.MachineFacts{State: contract.MachineReady, HasBMC: true, BMCAddr: "203.0.113.5:623", BMCUser: "root"}
	s.stillIn = true
	s.env.OnActivity(bmc.PowerState, mock.Anything, activities.MachineInput{MachineID: machineID}).
		Return(activities.PowerStateResult{State: contract.PowerOn}, nil).Once()
	s.onCollect(nil)
	s.env.ExecuteWorkflow(Register, contract.RegisterInput{MachineID: machineID, LeaveInRamdisk: true})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory", "finish:ready")
}

func TestRegisterEnrolledMachineWithBMC(t *testing.T) {
	s := newRegisterSuite(t)
	s.facts = activities.MachineFacts{State: contract.MachineEnrolled, HasBMC: true, BMCAddr: "203.0.113.5:623", BMCUser: "root"}
	s.env.OnActivity(bmc.SetBootDevice, mock.Anything, activities.SetBootDeviceInput{MachineID: machineID, Device: contract.BootPXE, Mode: contract.BootModeLegacy}).
		Return(activities.SetBootDeviceResult{Verified: true}, nil).Once()
	s.onSetPower(activities.OpHardOff, activities.SetPowerResult{Before: contract.PowerOn}, nil).Twice()
	s.onWait(contract.PowerOff, activities.WaitPowerStateResult{State: contract.PowerOff, Reached: true}, nil).Twice()
	s.onSetPower(activities.OpOn, activities.SetPowerResult{Before: contract.PowerOff}, nil).Once()
	s.onWait(contract.PowerOn, activities.WaitPowerStateResult{State: contract.PowerOn, Reached: true}, nil).Once()
	s.env.OnActivity(bmc.PowerState, mock.Anything, activities.MachineInput{MachineID: machineID}).
		Return(activities.PowerStateResult{State: contract.PowerOn}, nil).Once()
	s.signalReadyAfter(3 * time.Minute)
	s.onCollect(nil)

	s.env.ExecuteWorkflow(Register, contract.RegisterInput{MachineID: machineID})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	var got contract.RegisterResult
	if err := s.env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.BMCAddr != "203.0.113.5:623" || got.BMCUser != "root" {
		t.Errorf("BMC: got %s %s, want the machine's own", got.BMCAddr, got.BMCUser)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "collect", "save_inventory", "finish:ready")
}

// A BMC that cannot set the next boot device (ipmi_sim wired to a VM
// answers "Invalid data field") does not stop the boot: the machine
// network-boots first and the boot intent gives it the ramdisk.
func TestRegisterGoesOnWhenTheBMCCannotSetTheBootDevice(t *testing.T) {
	s := newRegisterSuite(t)
	s.facts = activities.MachineFacts{State: contract.MachineEnrolled, HasBMC: true, BMCAddr: "203.0.113.5:623", BMCUser: "root"}
	s.env.OnActivity(bmc.SetBootDevice, mock.Anything, mock.Anything).Return(activities.SetBootDeviceResult{},
		temporal.NewNonRetryableApplicationError("invalid data field", contract.ErrBMCUnsupported, nil)).Once()
	s.onSetPower(activities.OpHardOff, activities.SetPowerResult{Before: contract.PowerOn}, nil).Twice()
	s.onWait(contract.PowerOff, activities.WaitPowerStateResult{State: contract.PowerOff, Reached: true}, nil).Twice()
	s.onSetPower(activities.OpOn, activities.SetPowerResult{Before: contract.PowerOff}, nil).Once()
	s.onWait(contract.PowerOn, activities.WaitPowerStateResult{State: contract.PowerOn, Reached: true}, nil).Once()
	s.env.OnActivity(bmc.PowerState, mock.Anything, activities.MachineInput{MachineID: machineID}).
		Return(activities.PowerStateResult{State: contract.PowerOn}, nil).Once()
	s.signalReadyAfter(3 * time.Minute)
	s.onCollect(nil)
	s.env.ExecuteWorkflow(Register, contract.RegisterInput{MachineID: machineID})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "collect", "save_inventory", "finish:ready")
}

func TestRegisterLeavesMachineInRamdisk(t *testing.T) {
	s := newRegisterSuite(t)
	s.signalReadyAfter(time.Minute)
	s.onCollect(nil)
	s.env.ExecuteWorkflow(Register, contract.RegisterInput{MachineID: machineID, Discovered: true, LeaveInRamdisk: true,
		BMC: contract.BMCSetup{Mode: contract.BMCSetupSkip}})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	if len(s.finishReg) != 1 || !s.finishReg[0].KeepRamdisk || s.finishReg[0].State != contract.MachineReady {
		t.Errorf("finish: got %+v, want ready and keeping the ramdisk", s.finishReg)
	}
}

func TestRegisterFails(t *testing.T) {
	for _, tc := range []struct {
		name      string
		setup     func(s *registerSuite)
		wantCode  string
		wantCalls []string
	}{
		{
			name:      "phone-home never comes",
			setup:     func(*registerSuite) {},
			wantCode:  contract.ErrRamdiskTimeout,
			wantCalls: []string{"prepare", "finish:error"},
		},
		{
			name: "wrong host key",
			setup: func(s *registerSuite) {
				s.signalReadyAfter(time.Minute)
				s.onCollect(temporal.NewNonRetryableApplicationError("host key mismatch", contract.ErrHostKeyMismatch, nil))
			},
			wantCode:  contract.ErrHostKeyMismatch,
			wantCalls: []string{"prepare", "collect", "finish:error"},
		},
		{
			name: "BMC unreachable after configuration",
			setup: func(s *registerSuite) {
				s.signalReadyAfter(time.Minute)
				s.onCollect(nil)
				s.onConfigure(activities.ConfigureBMCResult{Addr: "203.0.113.99:623", Username: "bareflow"}, nil)
				s.env.OnActivity(registration.VerifyBMC, mock.Anything, mock.Anything).Return(
					activities.PowerStateResult{}, temporal.NewApplicationError("no answer", contract.ErrBMCUnreachable))
			},
			wantCode:  contract.ErrBMCUnreachable,
			wantCalls: []string{"prepare", "collect", "save_inventory", "configure_bmc", "finish:error"},
		},
		{
			name: "no LAN channel",
			setup: func(s *registerSuite) {
				s.signalReadyAfter(time.Minute)
				s.onCollect(nil)
				s.onConfigure(activities.ConfigureBMCResult{}, temporal.NewNonRetryableApplicationError("no LAN channel", contract.ErrBMCSetupFailed, nil))
			},
			wantCode:  contract.ErrBMCSetupFailed,
			wantCalls: []string{"prepare", "collect", "save_inventory", "configure_bmc", "finish:error"},
		},
		{
			name: "duplicate hardware",
			setup: func(s *registerSuite) {
				s.signalReadyAfter(time.Minute)
				s.onCollect(nil)
				s.saveErr = temporal.NewNonRetryableApplicationError("already web-1", contract.ErrDuplicateMachine, nil)
			},
			wantCode:  contract.ErrDuplicateMachine,
			wantCalls: []string{"prepare", "collect", "save_inventory", "finish:error"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newRegisterSuite(t)
			tc.setup(s)
			s.env.ExecuteWorkflow(Register, contract.RegisterInput{MachineID: machineID, Discovered: true, RamdiskTimeout: 20 * time.Minute})
			err := s.env.GetWorkflowError()
			if got := errType(err); got != tc.wantCode {
				t.Fatalf("error: got %v (type %q), want type %q", err, got, tc.wantCode)
			}
			s.wantCalls(t, tc.wantCalls...)
			if f := s.final(t); f.State != contract.OperationFailed || f.ErrorCode != tc.wantCode {
				t.Errorf("operation outcome: got %+v, want failed with %s", f, tc.wantCode)
			}
		})
	}
}

func TestRegisterRejectsInvalidInput(t *testing.T) {
	for name, in := range map[string]contract.RegisterInput{
		"no machine":   {},
		"unknown mode": {MachineID: machineID, BMC: contract.BMCSetup{Mode: "telepathy"}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newRegisterSuite(t)
			s.env.ExecuteWorkflow(Register, in)
			if got := errType(s.env.GetWorkflowError()); got != contract.ErrInvalidInput {
				t.Fatalf("error type: got %q, want %q", got, contract.ErrInvalidInput)
			}
		})
	}
}
