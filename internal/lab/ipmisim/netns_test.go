//go:build linux

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

	"bareflow/internal/lab/ipmisim"
	"bareflow/internal/lab/qemulab"
)

// TestNetnsVMPower runs ipmi_sim inside a network namespace on an address of
// its own, with a QEMU VM (firmware only, no disks) on its VM serial
// interface: the BMC reports the VM's power, and a power down over lanplus
// shuts QEMU down.
func TestNetnsVMPower(t *testing.T) {
	if os.Geteuid() != 0 {
		qemulab.SkipOrFail(t, "network namespaces need root")
	}
	for _, tool := range []string{"qemu-system-x86_64", "ipmitool", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			qemulab.SkipOrFail(t, "%s is not installed", tool)
		}
	}
	l := qemulab.New(t, 0, 0)
	l.AddSegment(t, "bmc0", "203.0.113.20/24")
	s := ipmisim.Start(t, ipmisim.Options{Netns: l.NS, Host: "203.0.113.20", Port: 6231, VMSerial: true, VMPower: true})
	if got := s.Addr().String(); got != "203.0.113.20:6231" {
		t.Fatalf("Addr: got %s, want 203.0.113.20:6231", got)
	}
	ipmitool := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		base := []string{"-I", "lanplus", "-C", "3", "-H", s.Host, "-p", fmt.Sprint(s.Port), "-U", s.User, "-P", s.Password}
		out, err := l.Command(ctx, "ipmitool", append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ipmitool %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := ipmitool("chassis", "power", "status"); got != "Chassis Power is off" {
		t.Errorf("power with no VM connected: got %q, want Chassis Power is off", got)
	}

	dir := t.TempDir()
	serial, qmp := filepath.Join(dir, "serial.log"), filepath.Join(dir, "qmp.sock")
	vm := qemulab.StartQEMU(t, l.NS, []string{
		"-accel", "tcg", "-m", "64", "-nographic", "-nodefaults", "-no-user-config",
		"-serial", "file:" + serial, "-qmp", "unix:" + qmp + ",server=on,wait=off",
		"-chardev", fmt.Sprintf("socket,id=ipmi0,host=127.0.0.1,port=%d,reconnect=10", s.VMPort),
		"-device", "ipmi-bmc-extern,chardev=ipmi0,id=bmc0", "-device", "isa-ipmi-kcs,bmc=bmc0,irq=5",
	}, serial, qmp)
	deadline := time.Now().Add(30 * time.Second)
	for got := ""; got != "Chassis Power is on"; got = ipmitool("chassis", "power", "status") {
		if time.Now().After(deadline) {
			t.Fatalf("power with the VM connected: got %q after 30s, want Chassis Power is on\n%s", got, vm.SerialTail(20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	ipmitool("chassis", "power", "off")
	select {
	case <-vm.Exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("QEMU still runs 30s after chassis power off\n%s", s.Log())
	}
	if got := ipmitool("chassis", "power", "status"); got != "Chassis Power is off" {
		t.Errorf("power after the VM shut down: got %q, want Chassis Power is off", got)
	}
	if calls := s.Calls(); len(calls) != 0 {
		t.Errorf("chassis-control script calls: got %q, want none (power goes to the VM)", calls)
	}
}
