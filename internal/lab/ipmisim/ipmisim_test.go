package ipmisim_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bareflow/contract"
	"bareflow/internal/lab/ipmisim"
)

// ipmitool runs ipmitool against s over RMCP+ with cipher suite 3 and
// returns its combined output.
func ipmitool(t *testing.T, s *ipmisim.Sim, args ...string) (string, error) {
	t.Helper()
	return ipmitoolAs(t, s, s.User, s.Password, args...)
}

// ipmitoolAs is ipmitool as the given user.
func ipmitoolAs(t *testing.T, s *ipmisim.Sim, user, password string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("ipmitool"); err != nil {
		if os.Getenv(ipmisim.RequireIntegrationEnv) == "1" {
			t.Fatalf("ipmitool not found: %v", err)
		}
		t.Skipf("ipmitool not found (%v): install the ipmitool package", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := []string{"-I", "lanplus", "-C", "3", "-H", s.Host, "-p", fmt.Sprint(s.Port), "-U", user, "-P", password}
	out, err := exec.CommandContext(ctx, "ipmitool", append(base, args...)...).CombinedOutput()
	return string(out), err
}

func mustIPMITool(t *testing.T, s *ipmisim.Sim, args ...string) string {
	t.Helper()
	out, err := ipmitool(t, s, args...)
	if err != nil {
		t.Fatalf("ipmitool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestIPMIToolPowerOn(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	if got, want := s.Power(), contract.PowerOff; got != want {
		t.Fatalf("initial Power() = %s, want %s", got, want)
	}
	mustIPMITool(t, s, "chassis", "power", "on")
	out := mustIPMITool(t, s, "chassis", "power", "status")
	if got, want := strings.TrimSpace(out), "Chassis Power is on"; got != want {
		t.Errorf("chassis power status = %q, want %q", got, want)
	}
	if got, want := s.Power(), contract.PowerOn; got != want {
		t.Errorf("Power() = %s, want %s", got, want)
	}
}

func TestChassisCommands(t *testing.T) {
	tests := map[string]struct {
		opts      ipmisim.Options
		args      []string
		wantPower contract.PowerState
		wantBoot  string
		wantCall  string
	}{
		"hard off": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOn},
			args:      []string{"chassis", "power", "off"},
			wantPower: contract.PowerOff, wantBoot: "none", wantCall: "power 0",
		},
		"soft off": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOn},
			args:      []string{"chassis", "power", "soft"},
			wantPower: contract.PowerOff, wantBoot: "none", wantCall: "shutdown 1",
		},
		"soft off ignored": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOn, IgnoreSoftOff: true},
			args:      []string{"chassis", "power", "soft"},
			wantPower: contract.PowerOn, wantBoot: "none", wantCall: "shutdown 1",
		},
		"reset": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOn},
			args:      []string{"chassis", "power", "reset"},
			wantPower: contract.PowerOn, wantBoot: "none", wantCall: "reset 1",
		},
		"bootdev pxe": {
			args:      []string{"chassis", "bootdev", "pxe"},
			wantPower: contract.PowerOff, wantBoot: "pxe", wantCall: "boot pxe",
		},
		"bootdev disk": {
			args:      []string{"chassis", "bootdev", "disk"},
			wantPower: contract.PowerOff, wantBoot: "default", wantCall: "boot default",
		},
		"other credentials": {
			opts:      ipmisim.Options{User: "ops", Password: "s3cret-pw"},
			args:      []string{"chassis", "power", "on"},
			wantPower: contract.PowerOn, wantBoot: "none", wantCall: "power 1",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := ipmisim.Start(t, tc.opts)
			mustIPMITool(t, s, tc.args...)
			if got := s.Power(); got != tc.wantPower {
				t.Errorf("Power() = %s, want %s", got, tc.wantPower)
			}
			if got := s.BootDevice(); got != tc.wantBoot {
				t.Errorf("BootDevice() = %q, want %q", got, tc.wantBoot)
			}
			if got := s.Calls(); len(got) != 1 || got[0] != tc.wantCall {
				t.Errorf("Calls() = %q, want [%q]", got, tc.wantCall)
			}
		})
	}
}

func TestWrongPassword(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	s.Password = "wrong"
	out, err := ipmitool(t, s, "chassis", "power", "status")
	if err == nil {
		t.Fatalf("ipmitool with a wrong password succeeded: %s", out)
	}
}

func TestStopAndRestartSamePort(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	port := s.Port
	mustIPMITool(t, s, "chassis", "power", "on")

	s.Stop()
	s.Stop() // idempotent
	if s.Running() {
		t.Fatalf("Running() = true after Stop, want false")
	}
	if out, err := ipmitool(t, s, "-R", "1", "-N", "1", "chassis", "power", "status"); err == nil {
		t.Fatalf("ipmitool answered by a stopped sim: %s", out)
	}

	s.Restart(t)
	if got, want := s.Port, port; got != want {
		t.Errorf("port after Restart = %d, want %d", got, want)
	}
	out := mustIPMITool(t, s, "chassis", "power", "status")
	if got, want := strings.TrimSpace(out), "Chassis Power is on"; got != want {
		t.Errorf("chassis power status after Restart = %q, want %q", got, want)
	}
}

func TestSetPower(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{InitialPower: contract.PowerOn})
	if err := s.SetPower(contract.PowerOff); err != nil {
		t.Fatal(err)
	}
	out := mustIPMITool(t, s, "chassis", "power", "status")
	if got, want := strings.TrimSpace(out), "Chassis Power is off"; got != want {
		t.Errorf("chassis power status = %q, want %q", got, want)
	}
}

// TestChassisScriptIsQuick guards the rule that each chassis-control call
// returns well under a second: ipmi_sim blocks while the program runs and
// clients retransmit after about a second.
func TestChassisScriptIsQuick(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	script := filepath.Join(s.Dir, "chassis")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"set power", []string{"0x20", "set", "power", "1"}, ""},
		{"set boot", []string{"0x20", "set", "boot", "pxe"}, ""},
		{"get", []string{"0x20", "get", "power", "boot"}, "power:1\nboot:pxe\n"},
	}
	const limit = 250 * time.Millisecond
	for _, tc := range tests {
		start := time.Now()
		out, err := exec.Command(script, tc.args...).CombinedOutput()
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, out)
		}
		if string(out) != tc.want {
			t.Errorf("%s output: got %q, want %q", tc.name, out, tc.want)
		}
		if elapsed > limit {
			t.Errorf("%s took %s, want at most %s", tc.name, elapsed, limit)
		}
	}
}

// TestMachineHook: with Options.Machine, every change the BMC is asked for
// reaches the machine's program, and the power state is what that program
// says, not what was last asked: a machine that turned itself off reads
// off.
func TestMachineHook(t *testing.T) {
	dir := t.TempDir()
	hook := filepath.Join(dir, "machine")
	script := `#!/bin/sh
D=` + dir + `
if [ "$1" = status ]; then cat "$D/on" 2>/dev/null || echo 0; exit 0; fi
echo "$1 $2" >> "$D/got"
if [ "$1" = power ]; then echo "$2" > "$D/on"; fi
`
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s := ipmisim.Start(t, ipmisim.Options{Machine: hook})
	mustIPMITool(t, s, "chassis", "bootdev", "pxe")
	mustIPMITool(t, s, "chassis", "power", "on")
	if out := mustIPMITool(t, s, "chassis", "power", "status"); !strings.Contains(out, "is on") {
		t.Errorf("power status after on: %q", out)
	}
	// The machine goes off by itself (a guest shutdown, a crash).
	if err := os.WriteFile(filepath.Join(dir, "on"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustIPMITool(t, s, "chassis", "power", "status"); !strings.Contains(out, "is off") {
		t.Errorf("power status after the machine went off: %q, want off", out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "got"))
	if err != nil {
		t.Fatal(err)
	}
	// A request ipmitool sent again (no answer within its timeout) is
	// passed on again: the same line twice counts once.
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if len(got) == 0 || got[len(got)-1] != line {
			got = append(got, line)
		}
	}
	if want := []string{"boot pxe", "power 1"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("machine program got %q, want %q", got, want)
	}
}
