package activities_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"bareflow/activities"
	"bareflow/contract"
)

const machineID = "6f1c1f7e-0000-4000-8000-000000000001"

// fakeKeeper is an in-memory RegistrationKeeper.
type fakeKeeper struct {
	phone     activities.PhoneHome
	phoneErr  error
	network   *activities.BMCNetwork
	allocated map[string]netip.Addr
	passwords map[string]string
	generated int
	committed []netip.AddrPort
	allocErr  error
}

func (k *fakeKeeper) MachineFacts(context.Context, string) (activities.MachineFacts, error) {
	return activities.MachineFacts{}, nil
}
func (k *fakeKeeper) SetMachineState(context.Context, string, contract.MachineState) error {
	return nil
}
func (k *fakeKeeper) SetRamdiskIntent(context.Context, string, string, time.Duration) (time.Time, error) {
	return time.Now(), nil
}
func (k *fakeKeeper) ClearBootIntent(context.Context, string) error { return nil }
func (k *fakeKeeper) PhoneHome(context.Context, string) (activities.PhoneHome, error) {
	return k.phone, k.phoneErr
}
func (k *fakeKeeper) ForgetPhoneHome(context.Context, string) error                   { return nil }
func (k *fakeKeeper) SaveInventory(context.Context, string, contract.Inventory) error { return nil }
func (k *fakeKeeper) DropPendingBMC(context.Context, string) error                    { return nil }
func (k *fakeKeeper) CommitBMC(_ context.Context, _ string, a netip.AddrPort, _ int) error {
	k.committed = append(k.committed, a)
	return nil
}

func (k *fakeKeeper) BMCNetwork(_ context.Context, name string) (activities.BMCNetwork, error) {
	if k.network == nil {
		return activities.BMCNetwork{}, fmt.Errorf("no bmc network: %w", activities.ErrNotFound)
	}
	return *k.network, nil
}

func (k *fakeKeeper) AllocateBMCAddr(_ context.Context, _, mac, _ string) (netip.Addr, error) {
	if k.allocErr != nil {
		return netip.Addr{}, k.allocErr
	}
	if a, ok := k.allocated[mac]; ok {
		return a, nil
	}
	a := netip.MustParseAddr("203.0.113.10").Next()
	for range len(k.allocated) {
		a = a.Next()
	}
	k.allocated[mac] = a
	return a, nil
}

func (k *fakeKeeper) PendingBMCPassword(_ context.Context, _, user string, gen func() (string, error)) (string, error) {
	if pw, ok := k.passwords[user]; ok {
		return pw, nil
	}
	pw, err := gen()
	if err != nil {
		return "", err
	}
	k.generated++
	k.passwords[user] = pw
	return pw, nil
}

// fakeDialer opens fakeShells, or fails as told.
type fakeDialer struct {
	dialErr      error
	reachableErr error
	dialed       []string
}

type fakeShell struct{}

func (fakeShell) Run(context.Context, activities.ShellCommand) (activities.ShellResult, error) {
	return activities.ShellResult{}, nil
}
func (fakeShell) Close() error { return nil }

func (d *fakeDialer) Dial(_ context.Context, addr, _ string) (activities.RamdiskShell, error) {
	d.dialed = append(d.dialed, addr)
	if d.dialErr != nil {
		return nil, d.dialErr
	}
	return fakeShell{}, nil
}
func (d *fakeDialer) Reachable(context.Context, string) error { return d.reachableErr }

// fakeConfigurer records the set-up it was asked for.
type fakeConfigurer struct {
	mac    string
	err    error
	got    []activities.BMCRequest
	result activities.BMCSetupResult
}

func (c *fakeConfigurer) Discover(context.Context, activities.RamdiskShell, string) (activities.BMCDiscovery, error) {
	return activities.BMCDiscovery{Profile: "dell", MAC: c.mac}, nil
}
func (c *fakeConfigurer) Password(profile string) (string, error) { return "Pw-" + profile, nil }
func (c *fakeConfigurer) Configure(_ context.Context, _ activities.RamdiskShell, req activities.BMCRequest) (activities.BMCSetupResult, error) {
	c.got = append(c.got, req)
	if c.err != nil {
		return activities.BMCSetupResult{}, c.err
	}
	res := c.result
	if !res.Addr.IsValid() {
		res.Addr = req.Addr
	}
	return res, nil
}

func newActivityEnv(a *activities.Registration) *testsuite.TestActivityEnvironment {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	return env
}

// appErr returns the application error type and retryability of err.
func appErr(err error) (string, bool) {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type(), !ae.NonRetryable()
	}
	return "", true
}

func TestAwaitRamdisk(t *testing.T) {
	since := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	ready := contract.RamdiskReady{MachineID: machineID, Addr: "198.51.100.50", SSHPort: 2222, SSHHostKey: "ssh-ed25519 AAAA"}
	for name, tc := range map[string]struct {
		phone     activities.PhoneHome
		phoneErr  error
		reachable error
		found     bool
	}{
		"no phone-home yet":             {phoneErr: activities.ErrNotFound},
		"from an earlier boot":          {phone: activities.PhoneHome{Ready: ready, WorkflowID: "machine/x", At: since.Add(-time.Second)}},
		"for another workflow":          {phone: activities.PhoneHome{Ready: ready, WorkflowID: "other", At: since.Add(time.Second)}},
		"recorded but SSH not up yet":   {phone: activities.PhoneHome{Ready: ready, WorkflowID: "machine/x", At: since.Add(time.Second)}, reachable: activities.ErrShellUnreachable},
		"recorded and SSH answers":      {phone: activities.PhoneHome{Ready: ready, WorkflowID: "machine/x", At: since.Add(time.Second)}, found: true},
		"recorded at the intent's time": {phone: activities.PhoneHome{Ready: ready, WorkflowID: "machine/x", At: since}, found: true},
	} {
		t.Run(name, func(t *testing.T) {
			a := &activities.Registration{Keeper: &fakeKeeper{phone: tc.phone, phoneErr: tc.phoneErr},
				Dialer: &fakeDialer{reachableErr: tc.reachable}, PollInterval: 10 * time.Millisecond}
			env := newActivityEnv(a)
			v, err := env.ExecuteActivity(a.AwaitRamdisk, activities.AwaitRamdiskInput{
				MachineID: machineID, WorkflowID: "machine/x", Since: since, For: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			var res activities.AwaitRamdiskResult
			if err := v.Get(&res); err != nil {
				t.Fatal(err)
			}
			if res.Found != tc.found || (tc.found && res.Ready.Addr != ready.Addr) {
				t.Errorf("got %+v, want found %v", res, tc.found)
			}
		})
	}
}

func TestConfigureBMC(t *testing.T) {
	ready := contract.RamdiskReady{MachineID: machineID, Addr: "198.51.100.50", SSHHostKey: "ssh-ed25519 AAAA"}
	network := &activities.BMCNetwork{Name: "bmc", Prefix: netip.MustParsePrefix("203.0.113.0/24"), Gateway: netip.MustParseAddr("203.0.113.1"), Port: 6230}
	for name, tc := range map[string]struct {
		mode       contract.BMCSetupMode
		network    *activities.BMCNetwork
		mac        string
		confErr    error
		allocErr   error
		keepAddr   string
		wantSource string
		wantAddr   string
		wantCode   string
		retryable  bool
	}{
		"auto with a BMC network is static":  {network: network, mac: "d0:94:66:00:00:01", wantSource: "static", wantAddr: "203.0.113.11:6230"},
		"auto without one keeps the address": {mac: "d0:94:66:00:00:01", keepAddr: "192.0.2.7", wantSource: "keep", wantAddr: "192.0.2.7:623"},
		"dhcp":                               {mode: contract.BMCSetupDHCP, mac: "d0:94:66:00:00:01", keepAddr: "192.0.2.8", wantSource: "dhcp", wantAddr: "192.0.2.8:623"},
		"static without a BMC network":       {mode: contract.BMCSetupStatic, mac: "d0:94:66:00:00:01", wantCode: contract.ErrBMCSetupFailed},
		"static on a BMC without a MAC":      {mode: contract.BMCSetupStatic, network: network, mac: "00:00:00:00:00:00", wantCode: contract.ErrBMCSetupFailed},
		"keep on a BMC without an address":   {mode: contract.BMCSetupKeep, mac: "d0:94:66:00:00:01", keepAddr: "0.0.0.0", wantCode: contract.ErrBMCSetupFailed},
		"no LAN channel":                     {network: network, mac: "d0:94:66:00:00:01", confErr: fmt.Errorf("%w: no LAN channel", activities.ErrBMCSetupPermanent), wantCode: contract.ErrBMCSetupFailed},
		"BMC busy":                           {network: network, mac: "d0:94:66:00:00:01", confErr: errors.New("ipmitool timed out"), wantCode: "wrapError", retryable: true},
		"skip is not a set-up":               {mode: contract.BMCSetupSkip, wantCode: contract.ErrInvalidInput},
		"MAC holds another machine's address": {network: network, mac: "d0:94:66:00:00:01",
			allocErr: fmt.Errorf("%w: the MAC already holds 203.0.113.11 for machine m2", activities.ErrBMCSetupPermanent), wantCode: contract.ErrBMCSetupFailed},
		"address store down": {network: network, mac: "d0:94:66:00:00:01", allocErr: errors.New("connection refused"), wantCode: "wrapError", retryable: true},
	} {
		t.Run(name, func(t *testing.T) {
			k := &fakeKeeper{network: tc.network, allocated: map[string]netip.Addr{}, passwords: map[string]string{}, allocErr: tc.allocErr}
			c := &fakeConfigurer{mac: tc.mac, err: tc.confErr}
			if tc.keepAddr != "" {
				c.result.Addr = netip.MustParseAddr(tc.keepAddr)
			}
			a := &activities.Registration{Keeper: k, Dialer: &fakeDialer{}, Configurer: c}
			env := newActivityEnv(a)
			in := activities.ConfigureBMCInput{MachineID: machineID, Ramdisk: ready, Vendor: "Dell Inc.", Setup: contract.BMCSetup{Mode: tc.mode}}
			v, err := env.ExecuteActivity(a.ConfigureBMC, in)
			if tc.wantCode != "" || tc.retryable {
				code, retryable := appErr(err)
				if err == nil || code != tc.wantCode || retryable != tc.retryable {
					t.Fatalf("error: got %v (type %q, retryable %v), want type %q, retryable %v", err, code, retryable, tc.wantCode, tc.retryable)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var res activities.ConfigureBMCResult
			if err := v.Get(&res); err != nil {
				t.Fatal(err)
			}
			if res.Addr != tc.wantAddr || len(c.got) != 1 || c.got[0].IPSource != tc.wantSource || c.got[0].Profile != "dell" ||
				c.got[0].Username != contract.DefaultBMCUsername || c.got[0].Password != "Pw-dell" {
				t.Errorf("got %+v after %+v, want %s from %s", res, c.got, tc.wantAddr, tc.wantSource)
			}
			// A second run reuses the address and the password.
			if _, err := env.ExecuteActivity(a.ConfigureBMC, in); err != nil {
				t.Fatal(err)
			}
			if k.generated != 1 || len(c.got) != 2 || c.got[1].Addr != c.got[0].Addr || c.got[1].Password != c.got[0].Password {
				t.Errorf("second run: %d passwords made, requests %+v, want the same address and password", k.generated, c.got)
			}
		})
	}
}

func TestRamdiskDialErrors(t *testing.T) {
	ready := contract.RamdiskReady{MachineID: machineID, Addr: "198.51.100.50", SSHHostKey: "ssh-ed25519 AAAA"}
	for name, tc := range map[string]struct {
		err       error
		code      string
		retryable bool
	}{
		"host key mismatch": {fmt.Errorf("%w: got another key", activities.ErrHostKeyMismatch), contract.ErrHostKeyMismatch, false},
		"no answer":         {fmt.Errorf("%w: connection refused", activities.ErrShellUnreachable), contract.ErrRamdiskUnreachable, true},
		"key refused":       {fmt.Errorf("%w: no", activities.ErrShellAuth), contract.ErrRamdiskUnreachable, true},
	} {
		t.Run(name, func(t *testing.T) {
			d := &fakeDialer{dialErr: tc.err}
			a := &activities.Registration{Keeper: &fakeKeeper{}, Dialer: d}
			env := newActivityEnv(a)
			_, err := env.ExecuteActivity(a.CollectInventory, activities.RamdiskInput{MachineID: machineID, Ramdisk: ready})
			if code, retryable := appErr(err); code != tc.code || retryable != tc.retryable {
				t.Errorf("got %v (type %q, retryable %v), want type %q, retryable %v", err, code, retryable, tc.code, tc.retryable)
			}
			if len(d.dialed) != 1 || d.dialed[0] != "198.51.100.50:22" {
				t.Errorf("dialed %q, want 198.51.100.50:22", d.dialed)
			}
		})
	}
}

// fakePending opens no session: it fails as told.
type fakePending struct{ err error }

func (p fakePending) ConnectPending(context.Context, string, netip.AddrPort, int) (activities.BMCSession, error) {
	return nil, p.err
}

func TestVerifyBMCErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		err       error
		code      string
		retryable bool
	}{
		"refused right after the set-up": {fmt.Errorf("%w: RAKP", activities.ErrBMCAuth), contract.ErrBMCAuthFailed, true},
		"no answer":                      {fmt.Errorf("%w: timeout", activities.ErrBMCUnreachable), contract.ErrBMCUnreachable, true},
		"nothing pending":                {fmt.Errorf("%w: pending", activities.ErrNotFound), contract.ErrBMCNotConfigured, false},
	} {
		t.Run(name, func(t *testing.T) {
			a := &activities.Registration{Pending: fakePending{err: tc.err}}
			env := newActivityEnv(a)
			_, err := env.ExecuteActivity(a.VerifyBMC, activities.VerifyBMCInput{MachineID: machineID, Addr: "203.0.113.10:623"})
			if code, retryable := appErr(err); code != tc.code || retryable != tc.retryable {
				t.Errorf("got %v (type %q, retryable %v), want type %q, retryable %v", err, code, retryable, tc.code, tc.retryable)
			}
		})
	}
}
