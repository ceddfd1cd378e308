package workflows

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"bareflow/activities"
	"bareflow/contract"
)

func newInstallSuite(t *testing.T) *registerSuite {
	t.Helper()
	s := newRAIDSuite(t)
	s.env.RegisterWorkflow(Install)
	s.env.RegisterWorkflow(Wipe)
	s.env.RegisterActivity(&activities.Installer{})
	s.env.RegisterActivity(&activities.Images{})
	s.env.RegisterActivity(&activities.Wiper{})
	s.facts = activities.MachineFacts{State: contract.MachineReady}
	s.stillIn = true
	return s
}

var installOS = contract.OSSettings{Hostname: "web-1", Network: contract.NetworkSettings{
	Interfaces: []contract.NICSettings{{Name: "eth0", Addressing: contract.Addressing{Addresses: []string{"192.0.2.10/24"}, Gateway: "192.0.2.1"}}},
}}

// onInstallSteps mocks the install's own activities; write is the image
// write's outcome.
// It returns the configuration request the workflow sends.
func (s *registerSuite) onInstallSteps(t *testing.T, write func(activities.WriteImageInput) (activities.WriteImageResult, error)) *activities.ConfigureRequest {
	s.onCollect(nil)
	var configured activities.ConfigureRequest
	call := func(name string) { s.calls = append(s.calls, name) }
	s.env.OnActivity(installer.ChooseRootDisk, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ChooseRootDiskInput) (activities.ChooseRootDiskResult, error) {
			call("choose_disk")
			if in.Image != "debian-12" || len(in.Inventory.Disks) == 0 {
				t.Errorf("choose disk: got %+v", in)
			}
			return activities.ChooseRootDiskResult{Disk: "/dev/sda", ImageID: "img-1", Family: contract.OSDebian, VirtualSize: 2 << 30}, nil
		}).Maybe()
	s.env.OnActivity(imageActs.WriteImage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.WriteImageInput) (activities.WriteImageResult, error) {
			call("write")
			if in.Target != "/dev/sda" || in.Image != "img-1" || in.OperationID == "" {
				t.Errorf("write: got %+v", in)
			}
			return write(in)
		}).Maybe()
	s.env.OnActivity(installer.ConfigureOS, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ConfigureOSInput) (activities.ConfigureResult, error) {
			call("configure")
			configured = in.Request
			if in.Request.Disk != "/dev/sda" || in.Request.OS.Hostname != "web-1" || in.Request.Family != contract.OSDebian {
				t.Errorf("configure: got %+v", in.Request)
			}
			return activities.ConfigureResult{Family: "debian", Flavor: "debian", RootPartition: "/dev/sda2"}, nil
		}).Maybe()
	s.env.OnActivity(installer.RebootRamdisk, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RamdiskInput) error { call("reboot_from_ramdisk"); return nil }).Maybe()
	s.env.OnActivity(installer.RecordInstall, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordInstallInput) error {
			call("record")
			if in.Record.Image != "img-1" || in.Record.Hostname != "web-1" {
				t.Errorf("record: got %+v", in.Record)
			}
			return nil
		}).Maybe()
	return &configured
}

func TestInstallWithBMC(t *testing.T) {
	s := newInstallSuite(t)
	s.facts.HasBMC = true
	s.onInstallSteps(t, func(activities.WriteImageInput) (activities.WriteImageResult, error) {
		return activities.WriteImageResult{Written: 1 << 30, ResumedAt: 256 << 20, Checksum: "abc"}, nil
	})
	s.env.OnActivity(bmc.SetBootDevice, mock.Anything, activities.SetBootDeviceInput{MachineID: machineID, Device: contract.BootDisk, Mode: contract.BootModeLegacy}).
		Return(func(context.Context, activities.SetBootDeviceInput) (activities.SetBootDeviceResult, error) {
			s.calls = append(s.calls, "boot_disk")
			return activities.SetBootDeviceResult{Verified: true}, nil
		}).Once()
	s.onSetPower(activities.OpReset, activities.SetPowerResult{}, nil).Run(func(mock.Arguments) { s.calls = append(s.calls, "reset") }).Once()
	probes := 0
	s.env.OnActivity(installer.WaitOS, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.WaitOSInput) (string, error) {
			probes++
			s.calls = append(s.calls, "wait_os")
			if in.Address != "192.0.2.10" {
				t.Errorf("probe address: got %q, want the first static address", in.Address)
			}
			if probes == 1 {
				return "", temporal.NewNonRetryableApplicationError("not yet", contract.ErrOSNotUp, nil)
			}
			return "192.0.2.10:22", nil
		})
	s.env.ExecuteWorkflow(Install, contract.InstallInput{MachineID: machineID, Image: "debian-12", OS: installOS})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	var got contract.InstallResult
	if err := s.env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.RootDisk != "/dev/sda" || got.ResumedAt != 256<<20 || got.Address != "192.0.2.10:22" || got.BytesWritten != 1<<30 {
		t.Errorf("result: got %+v", got)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory", "choose_disk", "write", "configure",
		"finish:deploying", "boot_disk", "reset", "wait_os", "wait_os", "record", "finish:running")
	if f := s.final(t); f.State != contract.OperationSucceeded {
		t.Errorf("operation: got %+v", f)
	}
}

func TestInstallWithoutBMCRebootsFromRamdisk(t *testing.T) {
	s := newInstallSuite(t)
	s.onInstallSteps(t, func(activities.WriteImageInput) (activities.WriteImageResult, error) {
		return activities.WriteImageResult{Written: 1 << 30}, nil
	})
	s.env.ExecuteWorkflow(Install, contract.InstallInput{MachineID: machineID, Image: "debian-12", OS: installOS,
		Probe: contract.OSProbe{Skip: true}})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory", "choose_disk", "write", "configure",
		"finish:deploying", "reboot_from_ramdisk", "record", "finish:running")
}

func TestInstallChecksumMismatchLeavesMachineInError(t *testing.T) {
	s := newInstallSuite(t)
	s.onInstallSteps(t, func(activities.WriteImageInput) (activities.WriteImageResult, error) {
		return activities.WriteImageResult{}, temporal.NewNonRetryableApplicationError("image does not match", contract.ErrImageChecksumMismatch, nil)
	})
	s.env.ExecuteWorkflow(Install, contract.InstallInput{MachineID: machineID, Image: "debian-12", OS: installOS})
	if got := errType(s.env.GetWorkflowError()); got != contract.ErrImageChecksumMismatch {
		t.Fatalf("error type: got %q, want %q", got, contract.ErrImageChecksumMismatch)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory", "choose_disk", "write", "finish:error")
	if last := s.finishReg[len(s.finishReg)-1]; !last.KeepRamdisk {
		t.Errorf("a failed install before the reboot must keep the ramdisk for the next attempt: got %+v", last)
	}
	if f := s.final(t); f.State != contract.OperationFailed || f.ErrorCode != contract.ErrImageChecksumMismatch {
		t.Errorf("operation: got %+v", f)
	}
}

func TestInstallWithRAIDBuildsItFirst(t *testing.T) {
	s := newInstallSuite(t)
	s.onInstallSteps(t, func(activities.WriteImageInput) (activities.WriteImageResult, error) {
		return activities.WriteImageResult{Written: 1 << 30}, nil
	})
	s.env.OnActivity(raidActs.CheckRAID, mock.Anything, mock.Anything).Return(activities.CheckRAIDResult{}, nil).Once()
	s.env.OnActivity(raidActs.BuildRAID, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.BuildRAIDInput) (activities.BuildRAIDResult, error) {
			s.calls = append(s.calls, "build_raid")
			return activities.BuildRAIDResult{Volumes: []contract.BuiltVolume{{Device: "md127", Root: true}}}, nil
		}).Once()
	s.env.OnActivity(raidActs.RecordRAID, mock.Anything, mock.Anything).Return(activities.RecordRAIDResult{RootDevice: "md127"}, nil).Once()
	s.env.ExecuteWorkflow(Install, contract.InstallInput{MachineID: machineID, Image: "debian-12", OS: installOS, RAID: &raid10,
		Probe: contract.OSProbe{Skip: true}})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory", "build_raid", "collect", "save_inventory",
		"choose_disk", "write", "configure", "finish:deploying", "reboot_from_ramdisk", "record", "finish:running")
}

func TestReinstallKeepsPartitions(t *testing.T) {
	s := newInstallSuite(t)
	s.facts.State = contract.MachineRunning
	configured := s.onInstallSteps(t, func(activities.WriteImageInput) (activities.WriteImageResult, error) {
		return activities.WriteImageResult{Written: 1 << 30}, nil
	})
	data := activities.KeptPartition{Number: 3, Label: "data", Start: 10 << 30, Size: 20 << 30}
	s.env.OnActivity(installer.KeepPartitions, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.KeepPartitionsInput) ([]activities.KeptPartition, error) {
			s.calls = append(s.calls, "keep")
			if in.ImageSize != 2<<30 || len(in.Labels) != 1 || in.Labels[0] != "data" {
				t.Errorf("keep: got %+v", in)
			}
			return []activities.KeptPartition{data}, nil
		}).Once()
	s.env.ExecuteWorkflow(Install, contract.InstallInput{MachineID: machineID, Image: "debian-12", OS: installOS, Reinstall: true,
		Keep: []string{"data"}, Probe: contract.OSProbe{Skip: true}})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	if len(configured.Kept) != 1 || configured.Kept[0] != data {
		t.Errorf("configure got kept partitions %+v, want %+v", configured.Kept, data)
	}
	if !slices.Contains(s.steps, stepKeep) {
		t.Errorf("steps: got %q, want %s among them", s.steps, stepKeep)
	}
}

func TestInstallRejectsInvalidInput(t *testing.T) {
	for name, in := range map[string]contract.InstallInput{
		"no image":            {MachineID: machineID},
		"reinstall with RAID": {MachineID: machineID, Image: "x", Reinstall: true, RAID: &raid10},
		"keep on install":     {MachineID: machineID, Image: "x", Keep: []string{"data"}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newInstallSuite(t)
			s.env.ExecuteWorkflow(Install, in)
			if got := errType(s.env.GetWorkflowError()); got != contract.ErrInvalidInput {
				t.Fatalf("error type: got %q, want %q", got, contract.ErrInvalidInput)
			}
		})
	}
}

func TestWipeClearsRAIDAndErases(t *testing.T) {
	s := newInstallSuite(t)
	s.onCollect(nil)
	s.facts.HasBMC = true
	s.inventory.RAID = []contract.RAIDController{{PCIAddr: "0000:3b:00.0", Driver: "megaraid_sas"}}
	var wipes []activities.WipeDisksInput
	s.env.OnActivity(wiper.WipeDisks, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.WipeDisksInput) (activities.WipeDisksResult, error) {
			s.calls = append(s.calls, "wipe")
			wipes = append(wipes, in)
			return activities.WipeDisksResult{Disks: []string{"/dev/sda", "/dev/sdb"}}, nil
		})
	s.env.OnActivity(wiper.EraseDisks, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EraseDisksInput) (activities.EraseDisksResult, error) {
			s.calls = append(s.calls, "erase")
			if in.Method != contract.EraseOverwrite || len(in.Disks) != 2 {
				t.Errorf("erase: got %+v", in)
			}
			return activities.EraseDisksResult{Methods: map[string]string{"/dev/sda": "overwrite", "/dev/sdb": "overwrite"}}, nil
		}).Once()
	s.env.OnActivity(wiper.ReleaseMachine, mock.Anything, activities.ReleaseMachineInput{MachineID: machineID, ClearRAID: true}).Return(
		func(context.Context, activities.ReleaseMachineInput) (int, error) {
			s.calls = append(s.calls, "release")
			return 2, nil
		}).Once()
	s.onSetPower(activities.OpHardOff, activities.SetPowerResult{}, nil).Run(func(mock.Arguments) { s.calls = append(s.calls, "off") }).Once()
	s.onWait(contract.PowerOff, activities.WaitPowerStateResult{State: contract.PowerOff, Reached: true}, nil).Once()
	s.env.ExecuteWorkflow(Wipe, contract.WipeInput{MachineID: machineID, Erase: contract.EraseOverwrite})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	var got contract.WipeResult
	if err := s.env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.LeasesReleased != 2 || len(got.Erased) != 2 || len(got.Disks) != 2 {
		t.Errorf("result: got %+v", got)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory", "wipe", "collect", "save_inventory", "wipe",
		"erase", "release", "off", "finish:ready")
	if len(wipes) != 2 || !wipes[0].ClearRAID || wipes[1].ClearRAID {
		t.Errorf("wipes: got %+v, want the first to clear the RAID and the second (of the disks then seen) not", wipes)
	}
}

func TestWipeFailureLeavesStateError(t *testing.T) {
	s := newInstallSuite(t)
	s.onCollect(nil)
	s.env.OnActivity(wiper.WipeDisks, mock.Anything, mock.Anything).Return(activities.WipeDisksResult{},
		temporal.NewNonRetryableApplicationError("/dev/sda still carries a gpt signature", contract.ErrWipeFailed, nil)).Once()
	s.env.ExecuteWorkflow(Wipe, contract.WipeInput{MachineID: machineID, KeepRAID: true, RamdiskTimeout: time.Hour})
	if got := errType(s.env.GetWorkflowError()); got != contract.ErrWipeFailed {
		t.Fatalf("error type: got %q, want %q", got, contract.ErrWipeFailed)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory", "finish:error")
}

func TestInstallGoesOnWhenTheBMCCannotSetTheBootDevice(t *testing.T) {
	s := newInstallSuite(t)
	s.facts.HasBMC = true
	s.onInstallSteps(t, func(activities.WriteImageInput) (activities.WriteImageResult, error) {
		return activities.WriteImageResult{Written: 1 << 30}, nil
	})
	s.env.OnActivity(bmc.SetBootDevice, mock.Anything, mock.Anything).Return(activities.SetBootDeviceResult{},
		temporal.NewNonRetryableApplicationError("invalid data field", contract.ErrBMCUnsupported, nil)).Once()
	s.onSetPower(activities.OpReset, activities.SetPowerResult{}, nil).Run(func(mock.Arguments) { s.calls = append(s.calls, "reset") }).Once()
	s.env.ExecuteWorkflow(Install, contract.InstallInput{MachineID: machineID, Image: "debian-12", OS: installOS, Probe: contract.OSProbe{Skip: true}})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory", "choose_disk", "write", "configure",
		"finish:deploying", "reset", "record", "finish:running")
}
