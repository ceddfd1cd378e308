//go:build linux && e2e

package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bareflow/contract"
	"bareflow/internal/lab/ipmisim"
)

// TestE2EBrokenRun is the same rack gone wrong in the three ways an
// operator meets first, each of which must fail loudly with the reason,
// and leave the machine's record saying so:
//
//   - a corrupt image (one byte changed in the middle of the file, the
//     checksum of the good one): the install fails with ImageCorrupt or
//     ImageChecksumMismatch and the machine does not claim to run it;
//   - a BMC given the wrong password: the power operation fails with
//     BMCAuthFailed;
//   - a machine whose NIC has no PXE ROM: its registration powers it on,
//     waits for the ramdisk that never comes and fails with RamdiskTimeout
//     (its console shows the firmware finding nothing to boot).
func TestE2EBrokenRun(t *testing.T) {
	e := newE2ELab(t)
	vmpower := e.buildVMPower(t)
	good := &e2eMachine{
		name: "rack-c-01", firmware: contract.FirmwareBIOS, nicModel: "virtio-net-pci", pxeMAC: "52:54:00:e2:0c:01",
		serial: "E2E-C01", uuid: "e2e0c001-0000-4000-8000-000000000001", smp: 1,
		disks: []e2eDisk{{"E2EROOTC1", 320, "virtio"}},
		bmcIP: "203.0.113.21", osAddr: "198.51.100.81/24", gateway: e2eServerIP, image: "lab-os-corrupt",
	}
	noROM := &e2eMachine{
		name: "rack-c-02", firmware: contract.FirmwareBIOS, nicModel: "virtio-net-pci,romfile=", pxeMAC: "52:54:00:e2:0c:02",
		serial: "E2E-C02", uuid: "e2e0c002-0000-4000-8000-000000000002", smp: 1,
		disks: []e2eDisk{{"E2EROOTC2", 64, "virtio"}},
		bmcIP: "203.0.113.22",
	}
	e.addMachine(t, good, vmpower, 5911)
	e.addMachine(t, noROM, vmpower, 5912)
	images := e.serveImages(t)
	e.addCorruptImage(t, images["lab-os-zst"], "lab-os-corrupt")
	run := &e2eRun{lab: e, images: images, timings: map[string]map[string]float64{}}

	t.Run("broken", func(t *testing.T) {
		t.Run("corrupt image", func(t *testing.T) {
			t.Parallel()
			if out, err := good.ipmitool(good.sim.User, good.sim.Password, "chassis", "power", "on"); err != nil {
				t.Fatalf("ipmitool chassis power on: %v: %s", err, out)
			}
			reg, _ := run.waitDiscovered(t, good, time.Now())
			if reg.State != "succeeded" {
				t.Fatalf("register ended %s: %+v", reg.State, reg.Error)
			}
			var op apiOperation
			req := map[string]any{"image": good.image, "os": map[string]any{"hostname": good.name}, "ramdisk_timeout_seconds": 600}
			if code := e.call(t, "POST", "/machines/"+good.id+"/install", req, &op); code != http.StatusAccepted {
				t.Fatalf("install: got %d %+v", code, op.Error)
			}
			op, steps := run.follow(t, op.ID, 20*time.Minute, nil)
			t.Logf("install of a corrupt image: %s at %q; steps %s", op.State, op.Step, formatSteps(steps))
			if op.State != "failed" || op.Error == nil ||
				(op.Error.Code != contract.ErrImageCorrupt && op.Error.Code != contract.ErrImageChecksumMismatch) {
				t.Fatalf("operation: got %s %+v, want failed with %s or %s", op.State, op.Error, contract.ErrImageCorrupt, contract.ErrImageChecksumMismatch)
			}
			t.Logf("the operator reads: %s: %s", op.Error.Code, op.Error.Message)
			var m regMachine
			e.call(t, "GET", "/machines/"+good.id, nil, &m)
			if m.State == "running" || m.LastError == nil || m.LastError.Code != op.Error.Code {
				t.Errorf("machine after the failed install: state %q, last error %+v; want not running, with the operation's error", m.State, m.LastError)
			}
			t.Logf("machine %s: state %q, last error %s", m.Name, m.State, m.LastError.Code)
		})

		t.Run("BMC with the wrong password", func(t *testing.T) {
			t.Parallel()
			e.l.Exec(t, "ip", "addr", "add", "203.0.113.23/24", "dev", "bmc0")
			sim := ipmisim.Start(t, ipmisim.Options{Netns: e.l.NS, Host: "203.0.113.23", Port: 623})
			var m apiMachine
			body := map[string]any{"name": "rack-c-03", "bmc": map[string]any{
				"address": net.JoinHostPort(sim.Host, "623"), "user": sim.User, "password": "not-" + sim.Password}}
			if code := e.call(t, "POST", "/machines", body, &m); code != http.StatusCreated {
				t.Fatalf("create machine: got %d", code)
			}
			var op apiOperation
			if code := e.call(t, "POST", "/machines/"+m.ID+"/power", map[string]any{"action": "on"}, &op); code != http.StatusAccepted {
				t.Fatalf("power on: got %d %+v", code, op.Error)
			}
			op, _ = run.follow(t, op.ID, 5*time.Minute, nil)
			if op.State != "failed" || op.Error == nil || op.Error.Code != contract.ErrBMCAuthFailed {
				t.Fatalf("power on: got %s %+v, want failed with %s", op.State, op.Error, contract.ErrBMCAuthFailed)
			}
			t.Logf("the operator reads: %s: %s", op.Error.Code, op.Error.Message)
			if slices.Contains(sim.Calls(), "power 1") {
				t.Errorf("the BMC switched the machine on with a wrong password: %q", sim.Calls())
			}
		})

		t.Run("machine without a PXE ROM", func(t *testing.T) {
			t.Parallel()
			var m apiMachine
			body := map[string]any{"name": noROM.name, "pxe_mac": noROM.pxeMAC, "bmc": map[string]any{
				"address": net.JoinHostPort(noROM.bmcIP, "623"), "user": noROM.sim.User, "password": noROM.sim.Password}}
			if code := e.call(t, "POST", "/machines", body, &m); code != http.StatusCreated {
				t.Fatalf("create machine: got %d", code)
			}
			noROM.id = m.ID
			var op apiOperation
			if code := e.call(t, "POST", "/machines/"+m.ID+"/register", map[string]any{"ramdisk_timeout_seconds": 120}, &op); code != http.StatusAccepted {
				t.Fatalf("register: got %d %+v", code, op.Error)
			}
			op, steps := run.follow(t, op.ID, 10*time.Minute, nil)
			t.Logf("register of a machine that cannot PXE-boot: %s at %q; steps %s", op.State, op.Step, formatSteps(steps))
			if op.State != "failed" || op.Error == nil || op.Error.Code != contract.ErrRamdiskTimeout {
				t.Fatalf("register: got %s %+v, want failed with %s", op.State, op.Error, contract.ErrRamdiskTimeout)
			}
			t.Logf("the operator reads: %s: %s", op.Error.Code, op.Error.Message)
			serial, _ := os.ReadFile(filepath.Join(noROM.dir, "serial.log"))
			if !strings.Contains(string(serial), "No bootable device") {
				t.Errorf("serial console lacks SeaBIOS's \"No bootable device\":\n%s", tail(string(serial), 20))
			}
			var got regMachine
			e.call(t, "GET", "/machines/"+m.ID, nil, &got)
			if got.LastError == nil || got.LastError.Code != contract.ErrRamdiskTimeout {
				t.Errorf("machine after the failed registration: last error %+v, want %s", got.LastError, contract.ErrRamdiskTimeout)
			}
		})
	})
}

// addCorruptImage serves a copy of im with one byte changed in the middle,
// registered under name with im's (right) checksum.
func (e *e2eLab) addCorruptImage(t *testing.T, im e2eImage, name string) {
	t.Helper()
	src := filepath.Join(e.www, im.file)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x5a
	file := "corrupt-" + im.file
	if err := os.WriteFile(filepath.Join(e.www, file), b, 0o644); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{
		"name": name, "url": "http://" + net.JoinHostPort(e2eServerIP, e2eImagePort) + "/" + file,
		"format": im.format, "checksum_algo": "sha256", "checksum": im.sha256, "virtual_size": im.rawSize,
		"os_family": "debian", "boot_mode": "both",
	}
	if code := e.call(t, "POST", "/images", body, nil); code != http.StatusCreated {
		t.Fatalf("create image %s: got %d", name, code)
	}
}
