package workflows

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"bareflow/activities"
	"bareflow/contract"
)

func newHostSuite(t *testing.T) *registerSuite {
	t.Helper()
	s := newInstallSuite(t)
	s.env.RegisterWorkflow(ConvertToHost)
	s.env.RegisterWorkflow(UndoHost)
	s.env.RegisterActivity(&activities.Hosts{})
	s.inventory.CPU.Vendor = "GenuineIntel"
	return s
}

var hostInput = contract.ConvertHostInput{
	Install:     contract.InstallInput{MachineID: machineID, Image: "debian-12", OS: installOS, RootSizeBytes: 100 << 30},
	MachineName: "hv-1",
	Host:        contract.HostSettings{ControllerURL: "https://ctl.example.net", WorkspacePath: "/opt/workspace", WorkspaceFS: "ext4"},
}

// onHostConvert mocks the steps of a conversion up to the agent probe;
// agentUp says whether the agent answers.
func (s *registerSuite) onHostConvert(t *testing.T, agentUp bool) (*activities.ConfigureRequest, *[]activities.RecordHostInput) {
	configured := s.onInstallSteps(t, func(activities.WriteImageInput) (activities.WriteImageResult, error) {
		return activities.WriteImageResult{Written: 1 << 30}, nil
	})
	s.env.OnActivity(hostActs.PlanHostLayout, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanHostLayoutInput) (activities.HostLayoutPlan, error) {
			s.calls = append(s.calls, "plan_layout")
			if in.Disk != "/dev/sda" || in.RootSizeBytes != 100<<30 {
				t.Errorf("plan layout: got %+v", in)
			}
			return activities.HostLayoutPlan{RootSizeBytes: 100 << 30, WorkspaceSizeBytes: 3 << 40}, nil
		}).Once()
	s.env.OnActivity(installer.WaitOS, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.WaitOSInput) (string, error) {
			if in.Address != "192.0.2.10" {
				t.Errorf("probe address: got %q", in.Address)
			}
			if in.Port == contract.DefaultAgentPort {
				s.calls = append(s.calls, "wait_agent")
				if !agentUp {
					return "", temporal.NewNonRetryableApplicationError("nothing on 8600", contract.ErrOSNotUp, nil)
				}
				return "192.0.2.10:8600", nil
			}
			s.calls = append(s.calls, "wait_os")
			return "192.0.2.10:22", nil
		})
	var recorded []activities.RecordHostInput
	s.env.OnActivity(hostActs.RecordHost, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordHostInput) error {
			s.calls = append(s.calls, "record_host")
			recorded = append(recorded, in)
			return nil
		}).Maybe()
	return configured, &recorded
}

func TestConvertToHost(t *testing.T) {
	s := newHostSuite(t)
	configured, recorded := s.onHostConvert(t, true)
	s.env.ExecuteWorkflow(ConvertToHost, hostInput)
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	s.wantCalls(t, "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory", "choose_disk", "write", "plan_layout", "configure",
		"finish:deploying", "reboot_from_ramdisk", "wait_os", "wait_agent", "record", "record_host", "finish:running")

	// The host layout and files went to the configuration.
	req := *configured
	ws := contract.PartitionSpec{Label: "workspace", SizeBytes: 3 << 40, Filesystem: "ext4", MountPoint: "/opt/workspace"}
	if req.RootSizeBytes != 100<<30 || len(req.Partitions) != 1 || req.Partitions[0] != ws {
		t.Errorf("configure: root %d, partitions %+v; want 100 GiB and the workspace %+v", req.RootSizeBytes, req.Partitions, ws)
	}
	files := map[string]string{}
	for _, f := range req.OS.Files {
		files[f.Path] = f.Content
	}
	conf := files[contract.HostConfPath]
	for _, want := range []string{"BAREFLOW_MACHINE_ID=" + machineID + "\n", "BAREFLOW_MACHINE_NAME=hv-1\n",
		"BAREFLOW_CONTROLLER_URL=https://ctl.example.net\n", "BAREFLOW_AGENT_PORT=8600\n", "BAREFLOW_WORKSPACE=/opt/workspace\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("host.conf lacks %q:\n%s", want, conf)
		}
	}
	mods := strings.Fields(files[contract.HostModulesPath])
	for _, want := range []string{"kvm", "kvm_intel", "vhost_net"} {
		if !slices.Contains(mods, want) {
			t.Errorf("modules %q lack %s", mods, want)
		}
	}
	if slices.Contains(mods, "kvm_amd") {
		t.Errorf("modules %q: kvm_amd on an Intel CPU", mods)
	}

	want := contract.HostCapacity{AgentURL: "http://192.0.2.10:8600", CPUs: 64, MemoryBytes: 384 << 30, StorageBytes: 3 << 40,
		WorkspacePath: "/opt/workspace"}
	if len(*recorded) != 1 || (*recorded)[0].Capacity != want {
		t.Errorf("recorded: got %+v, want %+v", *recorded, want)
	}
	var got contract.ConvertHostResult
	if err := s.env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.Host != want || got.Install.RootDisk != "/dev/sda" {
		t.Errorf("result: got %+v", got)
	}
	if f := s.final(t); f.State != contract.OperationSucceeded {
		t.Errorf("operation: got %+v", f)
	}
}

func TestConvertToHostAgentNeverAnswers(t *testing.T) {
	s := newHostSuite(t)
	_, recorded := s.onHostConvert(t, false)
	in := hostInput
	in.AgentTimeout = time.Minute
	s.env.ExecuteWorkflow(ConvertToHost, in)
	if got := errType(s.env.GetWorkflowError()); got != contract.ErrHostAgentNotUp {
		t.Fatalf("error type: got %q, want %q", got, contract.ErrHostAgentNotUp)
	}
	if len(*recorded) != 0 {
		t.Errorf("recorded a host whose agent never answered: %+v", *recorded)
	}
	if n := len(s.calls); n == 0 || s.calls[n-1] != "finish:error" {
		t.Errorf("calls: got %q, want the machine left in error", s.calls)
	}
}

func TestConvertToHostNeedsAnAddress(t *testing.T) {
	s := newHostSuite(t)
	in := hostInput
	in.Install.OS = contract.OSSettings{Hostname: "web-1"}
	s.env.ExecuteWorkflow(ConvertToHost, in)
	if got := errType(s.env.GetWorkflowError()); got != contract.ErrInvalidInput {
		t.Fatalf("error type: got %q, want %q", got, contract.ErrInvalidInput)
	}
}

func TestUndoHostRefusedWithGuests(t *testing.T) {
	s := newHostSuite(t)
	s.env.OnActivity(hostActs.ClaimHostUndo, mock.Anything, activities.HostInput{MachineID: machineID}).Return(
		temporal.NewNonRetryableApplicationError("2 guests", contract.ErrHostHasGuests, nil)).Once()
	s.env.ExecuteWorkflow(UndoHost, contract.UndoHostInput{Wipe: contract.WipeInput{MachineID: machineID}})
	if got := errType(s.env.GetWorkflowError()); got != contract.ErrHostHasGuests {
		t.Fatalf("error type: got %q, want %q", got, contract.ErrHostHasGuests)
	}
	// The machine is left as it was: no ramdisk, no state change.
	if len(s.calls) != 0 {
		t.Errorf("calls: got %q, want none", s.calls)
	}
	if f := s.final(t); f.State != contract.OperationFailed {
		t.Errorf("operation: got %+v", f)
	}
}

func TestUndoHostWipesAndRemovesTheHost(t *testing.T) {
	s := newHostSuite(t)
	s.facts.HasBMC = true
	s.stillIn = false
	s.onCollect(nil)
	call := func(name string) { s.calls = append(s.calls, name) }
	s.env.OnActivity(hostActs.ClaimHostUndo, mock.Anything, activities.HostInput{MachineID: machineID}).Return(
		func(context.Context, activities.HostInput) error { call("claim"); return nil }).Once()
	// A BMC that cannot set the boot device: the reset goes on.
	s.env.OnActivity(bmc.SetBootDevice, mock.Anything, mock.Anything).Return(activities.SetBootDeviceResult{},
		temporal.NewNonRetryableApplicationError("invalid data field", contract.ErrBMCUnsupported, nil)).Once()
	s.onSetPower(activities.OpReset, activities.SetPowerResult{}, nil).Run(func(mock.Arguments) {
		call("reset")
		s.stillIn = true
		s.pollResult = func(context.Context) (activities.AwaitRamdiskResult, error) {
			return activities.AwaitRamdiskResult{Found: true, Ready: s.ready}, nil
		}
	}).Once()
	s.env.OnActivity(wiper.WipeDisks, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.WipeDisksInput) (activities.WipeDisksResult, error) {
			call("wipe")
			return activities.WipeDisksResult{Disks: []string{"/dev/sda"}}, nil
		}).Once()
	s.env.OnActivity(wiper.ReleaseMachine, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.ReleaseMachineInput) (int, error) { call("release"); return 1, nil }).Once()
	s.onSetPower(activities.OpHardOff, activities.SetPowerResult{}, nil).Run(func(mock.Arguments) { call("off") }).Once()
	s.onWait(contract.PowerOff, activities.WaitPowerStateResult{State: contract.PowerOff, Reached: true}, nil).Once()
	s.env.OnActivity(hostActs.RemoveHost, mock.Anything, activities.HostInput{MachineID: machineID}).Return(
		func(context.Context, activities.HostInput) error { call("remove_host"); return nil }).Once()
	s.env.ExecuteWorkflow(UndoHost, contract.UndoHostInput{Wipe: contract.WipeInput{MachineID: machineID, KeepRAID: true}})
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatalf("error: got %v, want nil", err)
	}
	s.wantCalls(t, "claim", "prepare", "still_in_ramdisk?", "reset", "prepare", "still_in_ramdisk?", "probe", "collect", "save_inventory",
		"wipe", "release", "off", "remove_host", "finish:ready")
	if f := s.final(t); f.State != contract.OperationSucceeded {
		t.Errorf("operation: got %+v", f)
	}
}
