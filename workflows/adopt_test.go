package workflows

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"bareflow/activities"
	"bareflow/contract"
)

// The lab BMC's system GUID as sent, and the SMBIOS UUID it stands for
// (the first three fields byte-swapped, as most BMCs send it).
var (
	adoptGUID = []byte{0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5, 0xa6, 0xb7, 0xc8, 0xd9, 0xe0, 0xf1, 0xa2, 0xb3, 0xc4, 0xd5}
	adoptUUID = "d3c2b1a0-f5e4-b7a6-c8d9-e0f1a2b3c4d5"
)

const adoptHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"

// adoptSuite is a suite with the adoption activities mocked; the calls it
// saw are kept in order.
type adoptSuite struct {
	*suite
	calls     []string
	bmcErr    error
	guid      []byte
	openErr   error
	inventory contract.Inventory
	complete  []activities.CompleteAdoptionInput
	doneErr   error
}

func newAdoptSuite(t *testing.T) *adoptSuite {
	t.Helper()
	s := &adoptSuite{suite: newEnv(t), guid: adoptGUID}
	s.env.RegisterWorkflow(Adopt)
	s.env.RegisterActivity(&activities.Adoption{})
	s.inventory = contract.Inventory{
		System: contract.SystemInfo{Vendor: "Dell Inc.", Model: "PowerEdge R740", Serial: "7XK2M53", UUID: adoptUUID},
		CPU:    contract.CPUInfo{Threads: 64},
	}
	call := func(name string) { s.calls = append(s.calls, name) }
	s.env.OnActivity(adoption.VerifyAdoptBMC, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AdoptBMCInput) (activities.AdoptBMCResult, error) {
			call("verify_bmc")
			if in.MachineID != machineID || in.Addr != "192.0.2.10:623" {
				t.Errorf("verify BMC: got %+v", in)
			}
			return activities.AdoptBMCResult{PowerState: contract.PowerOn, GUID: s.guid}, s.bmcErr
		}).Maybe()
	s.env.OnActivity(adoption.OpenAdoptedOS, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.OpenOSInput) (activities.OpenOSResult, error) {
			call("open_os")
			if in.SSH.User != "root" || in.SSH.Addr != "192.0.2.20:22" {
				t.Errorf("open OS: got %+v, want root at 192.0.2.20:22", in.SSH)
			}
			return activities.OpenOSResult{HostKey: adoptHostKey, TrustedOnFirstUse: true}, s.openErr
		}).Maybe()
	s.env.OnActivity(adoption.CollectAdoptedOS, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CollectOSInput) (activities.CollectOSResult, error) {
			call("collect")
			if in.HostKey != adoptHostKey {
				t.Errorf("collect: got host key %q, want the one the login pinned", in.HostKey)
			}
			return activities.CollectOSResult{Inventory: s.inventory, Privilege: activities.PrivilegeRoot,
				OS: contract.AdoptedOS{Name: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0-18-amd64"}}, nil
		}).Maybe()
	s.env.OnActivity(adoption.CompleteAdoption, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CompleteAdoptionInput) error {
			call("complete")
			s.complete = append(s.complete, in)
			return s.doneErr
		}).Maybe()
	s.env.OnActivity(adoption.DiscardAdoption, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.MachineInput) error {
			call("discard")
			return nil
		}).Maybe()
	return s
}

func (s *adoptSuite) run() {
	s.env.ExecuteWorkflow(Adopt, contract.AdoptInput{OperationID: "op-1", MachineID: machineID, BMCAddr: "192.0.2.10:623",
		SSH: contract.AdoptSSH{Addr: "192.0.2.20:22"}})
}

func TestAdopt(t *testing.T) {
	s := newAdoptSuite(t)
	s.run()
	if err := s.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res contract.AdoptResult
	if err := s.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if want := []string{"verify_bmc", "open_os", "collect", "complete"}; !slices.Equal(s.calls, want) {
		t.Errorf("calls: got %v, want %v", s.calls, want)
	}
	if !res.IdentityChecked || res.SSHHostKey != adoptHostKey || !res.TrustedOnFirstUse || res.PowerState != contract.PowerOn ||
		res.OS.Name == "" || res.SystemUUID != adoptUUID {
		t.Errorf("result: got %+v, want the identity checked, the host key pinned and the OS", res)
	}
	c := s.complete[0]
	if c.SSHHostKey != adoptHostKey || c.BMCAddr != "192.0.2.10:623" || c.Inventory.System.UUID != adoptUUID || c.PowerState != contract.PowerOn ||
		c.SSHUser != "root" || c.OS.Kernel == "" {
		t.Errorf("record: got %+v", c)
	}
	if f := s.final(t); f.State != contract.OperationSucceeded || f.PowerState != contract.PowerOn {
		t.Errorf("operation outcome: got %+v, want succeeded with the power on", f)
	}
	if want := []string{stepAdoptVerifyBMC, stepAdoptConnectOS, stepAdoptCollect, stepAdoptIdentity, stepAdoptRecord}; !slices.Equal(s.steps, want) {
		t.Errorf("steps: got %v, want %v", s.steps, want)
	}
}

func TestAdoptWithoutGUIDWarns(t *testing.T) {
	s := newAdoptSuite(t)
	s.guid = nil
	s.run()
	var res contract.AdoptResult
	if err := s.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.IdentityChecked || len(res.Warnings) == 0 {
		t.Errorf("result: got %+v, want a warning that the identity was not checked", res)
	}
}

func TestAdoptFails(t *testing.T) {
	for _, tc := range []struct {
		name      string
		setup     func(s *adoptSuite)
		wantCode  string
		wantCalls []string
	}{
		{
			name: "BMC refuses the credentials",
			setup: func(s *adoptSuite) {
				s.bmcErr = temporal.NewNonRetryableApplicationError("refused", contract.ErrBMCAuthFailed, nil)
			},
			wantCode:  contract.ErrBMCAuthFailed,
			wantCalls: []string{"verify_bmc", "discard"},
		},
		{
			name: "BMC does not answer",
			setup: func(s *adoptSuite) {
				s.bmcErr = temporal.NewApplicationError("no answer", contract.ErrBMCUnreachable)
			},
			wantCode:  contract.ErrBMCUnreachable,
			wantCalls: []string{"verify_bmc", "verify_bmc", "verify_bmc", "discard"},
		},
		{
			name: "another host key",
			setup: func(s *adoptSuite) {
				s.openErr = temporal.NewNonRetryableApplicationError("mismatch", contract.ErrOSHostKeyMismatch, nil)
			},
			wantCode:  contract.ErrOSHostKeyMismatch,
			wantCalls: []string{"verify_bmc", "open_os", "discard"},
		},
		{
			name: "BMC and OS are two servers",
			setup: func(s *adoptSuite) {
				s.inventory.System.UUID = "4c4c4544-0058-3410-804b-b8c04f324d33"
			},
			wantCode:  contract.ErrAdoptIdentityMismatch,
			wantCalls: []string{"verify_bmc", "open_os", "collect", "discard"},
		},
		{
			name: "server already known",
			setup: func(s *adoptSuite) {
				s.doneErr = temporal.NewNonRetryableApplicationError("already web-1", contract.ErrDuplicateMachine, nil)
			},
			wantCode:  contract.ErrDuplicateMachine,
			wantCalls: []string{"verify_bmc", "open_os", "collect", "complete", "discard"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAdoptSuite(t)
			tc.setup(s)
			s.run()
			err := s.env.GetWorkflowError()
			if got := errType(err); got != tc.wantCode {
				t.Fatalf("error: got %v (type %q), want type %q", err, got, tc.wantCode)
			}
			if !slices.Equal(s.calls, tc.wantCalls) {
				t.Errorf("calls: got %v, want %v", s.calls, tc.wantCalls)
			}
			if f := s.final(t); f.State != contract.OperationFailed || f.ErrorCode != tc.wantCode || f.PowerState != "" {
				t.Errorf("operation outcome: got %+v, want failed with %s", f, tc.wantCode)
			}
		})
	}
}

func TestAdoptRejectsInvalidInput(t *testing.T) {
	for name, in := range map[string]contract.AdoptInput{
		"no machine": {BMCAddr: "192.0.2.10:623", SSH: contract.AdoptSSH{Addr: "192.0.2.20:22"}},
		"no BMC":     {MachineID: machineID, SSH: contract.AdoptSSH{Addr: "192.0.2.20:22"}},
		"no SSH":     {MachineID: machineID, BMCAddr: "192.0.2.10:623"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newAdoptSuite(t)
			s.env.ExecuteWorkflow(Adopt, in)
			if got := errType(s.env.GetWorkflowError()); got != contract.ErrInvalidInput {
				t.Errorf("error type: got %q, want %q", got, contract.ErrInvalidInput)
			}
		})
	}
}

func TestSystemGUIDMatches(t *testing.T) {
	for name, tc := range map[string]struct {
		uuid string
		want bool
	}{
		"as sent":         {"a0b1c2d3-e4f5-a6b7-c8d9-e0f1a2b3c4d5", true},
		"smbios order":    {adoptUUID, true},
		"reversed":        {"d5c4b3a2-f1e0-d9c8-b7a6-f5e4d3c2b1a0", true},
		"upper case":      {"D3C2B1A0-F5E4-B7A6-C8D9-E0F1A2B3C4D5", true},
		"another machine": {"4c4c4544-0058-3410-804b-b8c04f324d33", false},
		"empty":           {"", false},
	} {
		if got := contract.SystemGUIDMatches(adoptGUID, tc.uuid); got != tc.want {
			t.Errorf("%s: got %v, want %v", name, got, tc.want)
		}
	}
	if forms := contract.SystemGUIDForms(make([]byte, 16)); forms != nil {
		t.Errorf("all-zero GUID: got %v, want no forms", forms)
	}
}
