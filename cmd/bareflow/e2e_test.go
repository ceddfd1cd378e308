//go:build linux && e2e

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"golang.org/x/net/websocket"

	"bareflow/contract"
	"bareflow/internal/lab/qemulab"
)

// e2eMachines is the rack: three machines of different hardware, one of
// them behind the DHCP relay.
func e2eMachines() []*e2eMachine {
	return []*e2eMachine{
		{
			name: "rack-a-01", firmware: contract.FirmwareBIOS, nicModel: "virtio-net-pci", pxeMAC: "52:54:00:e2:01:01",
			extraNICs: [][2]string{{"e1000e", "52:54:00:e2:01:02"}},
			serial:    "E2E-A01", uuid: "e2e0a001-0000-4000-8000-000000000001", smp: 2,
			disks: []e2eDisk{{"E2EROOT01", 320, "virtio"}, {"E2EDATA11", 128, "megasas"}, {"E2EDATA12", 128, "megasas"}, {"E2EDATA13", 128, "megasas"}},
			bmcIP: "203.0.113.11", osAddr: "198.51.100.71/24", gateway: e2eServerIP, image: "lab-os-zst",
		},
		{
			name: "rack-a-02", firmware: contract.FirmwareUEFI, nicModel: "e1000", pxeMAC: "52:54:00:e2:02:01",
			serial: "E2E-A02", uuid: "e2e0a002-0000-4000-8000-000000000002", smp: 1,
			disks: []e2eDisk{{"E2EROOT02", 320, "virtio"}, {"E2EAHCI02", 96, "ahci"}},
			bmcIP: "203.0.113.12", osAddr: "198.51.100.72/24", gateway: e2eServerIP, image: "lab-os-raw",
		},
		{
			name: "rack-b-01", relayed: true, firmware: contract.FirmwareBIOS, nicModel: "virtio-net-pci", pxeMAC: "52:54:00:e2:03:01",
			serial: "E2E-B01", uuid: "e2e0b001-0000-4000-8000-000000000003", smp: 1,
			disks: []e2eDisk{{"E2EROOT03", 320, "virtio"}},
			bmcIP: "192.0.2.11", osAddr: "192.0.2.73/24", gateway: e2eRemoteGW, image: "lab-os-qcow2",
		},
	}
}

// TestE2ERack is `make e2e`: a rack of three QEMU machines driven through
// bareflow's API from first power-on to installed, reinstalled, wiped and
// powered off, all three at once, with two crash drills on the way:
//
//   - rack-a-01 (BIOS, two NICs, a root disk and three disks on QEMU's
//     MegaRAID): registered, an md RAID 5 over the MegaRAID disks
//     (bareflow dev is killed with SIGKILL while it builds and started
//     again), installed from a raw.zst image on the root disk.
//   - rack-a-02 (UEFI with OVMF, an e1000 NIC, a virtio and an AHCI disk):
//     registered, installed from a raw image (bareflow worker is killed
//     with SIGKILL in the middle of the write and started again: the
//     write resumes from its checkpoint), then reinstalled.
//   - rack-b-01 (BIOS, one NIC, one disk, behind ISC's DHCP relay on
//     another segment): registered, installed from a qcow2 image, then
//     wiped: its disk carries no signature afterwards.
//
// The operator's only direct act is switching each machine on at its BMC
// (ipmitool), as at a rack that bareflow does not know yet: everything else
// goes through the API. The serial console of each installed system must
// show the host name and address it was given. Timings per phase go to
// the log and to artifacts/e2e/timings.json, with each VM's serial log and
// each operation's history.
func TestE2ERack(t *testing.T) {
	e := newE2ELab(t)
	vmpower := e.buildVMPower(t)
	machines := e2eMachines()
	for i, m := range machines {
		e.addMachine(t, m, vmpower, 5901+i)
	}
	// The BMC network: registration gives each BMC an address of it
	// in-band, and the lab makes the BMC answer there.
	var ae apiErr
	if code := e.call(t, "POST", "/networks", map[string]any{"name": "bmc", "kind": "bmc", "cidr": e2eBMCNet, "gateway": e2eBMCGW,
		"range_start": e2eBMCPoolStart, "range_end": e2eBMCPoolEnd, "bmc_port": 623}, &ae); code != http.StatusCreated {
		t.Fatalf("create the BMC network: got %d %+v", code, ae.Error)
	}
	e.followBMCAddresses(t, machines)
	images := e.serveImages(t)

	run := &e2eRun{lab: e, images: images, timings: map[string]map[string]float64{}}
	t.Cleanup(func() { run.saveTimings(t) })
	t.Run("rack", func(t *testing.T) {
		for _, m := range machines {
			t.Run(m.name, func(t *testing.T) {
				t.Parallel()
				run.machine(t, m)
			})
		}
	})
	if t.Failed() {
		return
	}
	t.Run("histories", func(t *testing.T) { run.checkHistories(t, machines) })
}

// e2eRun is the state the machines' subtests share.
type e2eRun struct {
	lab    *e2eLab
	images map[string]e2eImage

	mu      sync.Mutex
	timings map[string]map[string]float64
	// drills: the operations the crash drills hit, and when.
	raidOp, writeOp apiOperation
	devKilledAt     time.Time
}

// record keeps a phase's duration, in seconds, for timings.json.
func (r *e2eRun) record(machine, phase string, d time.Duration) {
	r.recordValue(machine, phase, d.Round(100*time.Millisecond).Seconds())
}

func (r *e2eRun) recordValue(machine, name string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timings[machine] == nil {
		r.timings[machine] = map[string]float64{}
	}
	r.timings[machine][name] = v
}

func (r *e2eRun) saveTimings(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.MarshalIndent(r.timings, "", "  ")
	_ = os.WriteFile(filepath.Join(r.lab.artifacts, "timings.json"), append(b, '\n'), 0o644)
	var names []string
	for n := range r.timings {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var keys []string
		for k := range r.timings[n] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%g", k, r.timings[n][k]))
		}
		t.Logf("timings %s: %s", n, strings.Join(parts, " "))
	}
}

// machine takes one machine through the whole run.
func (r *e2eRun) machine(t *testing.T, m *e2eMachine) {
	e := r.lab
	// Switched on at its BMC: PXE, discovery, registration.
	poweredAt := time.Now()
	if out, err := m.ipmitool(m.sim.User, m.sim.Password, "chassis", "power", "on"); err != nil {
		t.Fatalf("ipmitool chassis power on: %v: %s", err, out)
	}
	reg, regSteps := r.waitDiscovered(t, m, poweredAt)
	registered := time.Since(poweredAt)
	r.record(m.name, "register_total_s", registered)
	if at, ok := stepAt(regSteps, "collect_inventory"); ok {
		r.record(m.name, "power_on_to_phone_home_s", at)
	}
	t.Logf("%s registered %.1fs after power-on; steps %s", m.name, registered.Seconds(), formatSteps(regSteps))
	if reg.State != "succeeded" {
		t.Fatalf("register ended %s at %q: %+v", reg.State, reg.Step, reg.Error)
	}
	r.checkRegistered(t, m)

	// rack-a-01: RAID 5 over the MegaRAID disks, with bareflow dev killed
	// during the build.
	if m.name == "rack-a-01" {
		r.makeRAID(t, m)
	}

	// Install; on rack-a-02 the worker is killed in the middle of the
	// write.
	inst, instSteps := r.install(t, m, "install", m.name)
	r.installTimings(m, "install", instSteps)
	r.record(m.name, "power_on_to_installed_s", time.Since(poweredAt))
	if m.name == "rack-a-02" {
		r.mu.Lock()
		r.writeOp = inst
		r.mu.Unlock()
	}

	switch m.name {
	case "rack-a-02":
		_, steps := r.install(t, m, "reinstall", m.name+"-r2")
		r.installTimings(m, "reinstall", steps)
	case "rack-b-01":
		r.console(t, m, m.name)
		r.wipe(t, m)
	}

	// Powered off through bareflow.
	var op apiOperation
	if code := e.call(t, "POST", "/machines/"+m.id+"/power", map[string]any{"action": "off"}, &op); code != http.StatusAccepted {
		t.Fatalf("power off: got %d %+v", code, op.Error)
	}
	op, _ = r.follow(t, op.ID, 5*time.Minute, nil)
	if op.State != "succeeded" {
		t.Fatalf("power off ended %s at %q: %+v", op.State, op.Step, op.Error)
	}
	if m.poweredOn() {
		t.Errorf("%s: QEMU still runs after bareflow's power off", m.name)
	}
	pw := bmcPassword(t, e.dsn, e.opts.dataDir, m.id)
	if out, err := ipmitoolIn(e.l.NS, m.bmcAddr, 623, contract.DefaultBMCUsername, pw, "chassis", "power", "status"); err != nil || !strings.Contains(out, "is off") {
		t.Errorf("ipmitool chassis power status with bareflow's credentials: %v %q, want off", err, out)
	}
	r.record(m.name, "whole_run_s", time.Since(poweredAt))
}

// waitDiscovered waits for the boot service to discover the machine by
// its PXE MAC and for its registration to end.
func (r *e2eRun) waitDiscovered(t *testing.T, m *e2eMachine, since time.Time) (apiOperation, []opStep) {
	e := r.lab
	deadline := time.Now().Add(10 * time.Minute)
	for m.id == "" {
		if time.Now().After(deadline) {
			t.Fatalf("%s not discovered 10 min after power-on; serial console:\n%s", m.name, serialTail(m, 30))
		}
		var list struct {
			Items []regMachine `json:"items"`
		}
		if code := e.call(t, "GET", "/machines", nil, &list); code != http.StatusOK {
			t.Fatalf("list machines: got %d", code)
		}
		for _, x := range list.Items {
			if strings.EqualFold(x.PXEMAC, m.pxeMAC) {
				m.id = x.ID
				t.Logf("%s discovered as %s (%s) %.1fs after power-on", m.name, x.Name, x.ID, time.Since(since).Seconds())
			}
		}
		time.Sleep(time.Second)
	}
	var op apiOperation
	for op.ID == "" {
		if time.Now().After(deadline) {
			t.Fatalf("%s has no register operation", m.name)
		}
		var ops struct {
			Items []apiOperation `json:"items"`
		}
		e.call(t, "GET", "/machines/"+m.id+"/operations", nil, &ops)
		if len(ops.Items) > 0 {
			op = ops.Items[0]
		}
		time.Sleep(500 * time.Millisecond)
	}
	followStart := time.Now()
	op, steps := r.follow(t, op.ID, time.Until(deadline), nil)
	// follow's times count from its own start; count them from power-on.
	for i := range steps {
		steps[i].at += followStart.Sub(since)
	}
	return op, steps
}

// follow polls an operation every half second until it ends, calling
// onStep (when set) at each change of step, and returns it with its steps
// and when each was first seen, counted from the call.
func (r *e2eRun) follow(t *testing.T, id string, timeout time.Duration, onStep func(apiOperation)) (apiOperation, []opStep) {
	e := r.lab
	start := time.Now()
	var (
		op    apiOperation
		steps []opStep
		last  string
	)
	for {
		if code := e.call(t, "GET", "/operations/"+id, nil, &op); code != http.StatusOK {
			t.Fatalf("get operation %s: got %d", id, code)
		}
		if op.Step != last {
			last = op.Step
			steps = append(steps, opStep{op.Step, time.Since(start)})
			if onStep != nil {
				onStep(op)
			}
		}
		if contract.OperationState(op.State).Final() {
			steps = append(steps, opStep{"(" + op.State + ")", time.Since(start)})
			return op, steps
		}
		if time.Since(start) > timeout {
			t.Fatalf("operation %s not done after %s: %s at %q (steps %s)", id, timeout, op.State, op.Step, formatSteps(steps))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stepAt is when a step (matched on the part before a colon) was first
// seen.
func stepAt(steps []opStep, name string) (time.Duration, bool) {
	for _, s := range steps {
		if stepName(s.name) == name {
			return s.at, true
		}
	}
	return 0, false
}

func stepName(s string) string {
	n, _, _ := strings.Cut(s, ":")
	return n
}

// stepDurations sums how long each step (by name) lasted.
func stepDurations(steps []opStep) map[string]time.Duration {
	d := map[string]time.Duration{}
	for i := 0; i+1 < len(steps); i++ {
		d[stepName(steps[i].name)] += steps[i+1].at - steps[i].at
	}
	return d
}

// checkRegistered compares what bareflow recorded with the VM's
// configuration and checks the BMC set-up in-band with ipmitool.
func (r *e2eRun) checkRegistered(t *testing.T, m *e2eMachine) {
	e := r.lab
	var got regMachine
	if code := e.call(t, "GET", "/machines/"+m.id, nil, &got); code != http.StatusOK {
		t.Fatalf("get machine: %d", code)
	}
	if got.State != "ready" {
		t.Errorf("state after registration: got %q, want ready", got.State)
	}
	inv := got.Hardware
	if inv == nil {
		t.Fatal("no inventory")
	}
	if s := inv.System; s.Vendor != regVendor || s.Model != regModel || s.Serial != m.serial || !strings.EqualFold(s.UUID, m.uuid) {
		t.Errorf("system: got %q %q %q %q, want %q %q %q %q", s.Vendor, s.Model, s.Serial, s.UUID, regVendor, regModel, m.serial, m.uuid)
	}
	if inv.System.BootMode != m.firmware {
		t.Errorf("boot mode: got %q, want %q", inv.System.BootMode, m.firmware)
	}
	if inv.CPU.Threads != m.smp {
		t.Errorf("CPU threads: got %d, want %d", inv.CPU.Threads, m.smp)
	}
	const mib = 1 << 20
	if u := inv.Memory.UsableBytes; u <= 900*mib || u > e2eMemMiB*mib {
		t.Errorf("usable memory: got %d MiB", u/mib)
	}
	var macs []string
	for _, n := range inv.NICs {
		macs = append(macs, strings.ToLower(n.MAC))
	}
	want := []string{m.pxeMAC}
	for _, x := range m.extraNICs {
		want = append(want, x[1])
	}
	for _, w := range want {
		if !slices.Contains(macs, w) {
			t.Errorf("NICs %q: no %s", macs, w)
		}
	}
	if len(inv.Disks) != len(m.disks) {
		t.Errorf("disks: got %d, want %d: %+v", len(inv.Disks), len(m.disks), inv.Disks)
	}
	for _, d := range m.disks {
		if !slices.ContainsFunc(inv.Disks, func(x contract.Disk) bool { return x.SizeBytes == d.sizeMiB*mib }) {
			t.Errorf("no disk of %d MiB (%s on %s) in the inventory", d.sizeMiB, d.serial, d.bus)
		}
		if d.bus == "megasas" && !slices.ContainsFunc(inv.RAID, func(c contract.RAIDController) bool { return c.Driver == "megaraid_sas" }) {
			t.Errorf("RAID controllers %+v: no MegaRAID (megaraid_sas)", inv.RAID)
		}
	}
	// The address bareflow gave the BMC in-band, from the BMC network's
	// pool: what the BMC itself reports, and what bareflow recorded.
	lan, err := m.sim.LAN()
	if err != nil {
		t.Fatal(err)
	}
	pool := netip.MustParsePrefix("203.0.113.96/28")
	if lan.IPSource != "static" || !pool.Contains(lan.Addr) || lan.Gateway.String() != e2eBMCGW {
		t.Errorf("BMC LAN settings: got %+v, want a static address of %s-%s via %s", lan, e2eBMCPoolStart, e2eBMCPoolEnd, e2eBMCGW)
	}
	m.bmcAddr = lan.Addr.String()
	if got.BMC == nil || got.BMC.Address != net.JoinHostPort(m.bmcAddr, "623") || got.BMC.User != contract.DefaultBMCUsername || !got.BMC.PasswordSet {
		t.Fatalf("BMC: got %+v, want %s:623 with user %s", got.BMC, m.bmcAddr, contract.DefaultBMCUsername)
	}
	pw := bmcPassword(t, e.dsn, e.opts.dataDir, m.id)
	users, err := ipmitoolIn(e.l.NS, m.bmcAddr, 623, contract.DefaultBMCUsername, pw, "user", "list", "1")
	if err != nil || !regUserIsAdmin(users, contract.DefaultBMCUsername) {
		t.Errorf("ipmitool user list with bareflow's credentials: %v\n%s", err, users)
	}
	if m.poweredOn() {
		t.Errorf("QEMU still runs after the registration powered the machine off")
	}
	t.Logf("%s: %s %s, %d CPU threads, %d MiB, NICs %q, %d disks, BMC %s", m.name, inv.System.BootMode, inv.System.Serial,
		inv.CPU.Threads, inv.Memory.UsableBytes/mib, macs, len(inv.Disks), got.BMC.Address)
}

// makeRAID builds an md RAID 5 over the machine's MegaRAID disks and kills
// bareflow dev while it builds.
func (r *e2eRun) makeRAID(t *testing.T, m *e2eMachine) {
	e := r.lab
	var got regMachine
	e.call(t, "GET", "/machines/"+m.id, nil, &got)
	var slots []string
	for _, d := range got.Hardware.Disks {
		if d.SizeBytes == 128<<20 {
			slots = append(slots, d.Name)
		}
	}
	slices.Sort(slots)
	if len(slots) != 3 {
		t.Fatalf("MegaRAID disks: got %q, want 3", slots)
	}
	spec := map[string]any{
		"arrays":                  []map[string]any{{"level": "5", "controller": "md", "disks": map[string]any{"slots": slots}}},
		"leave_in_ramdisk":        true,
		"ramdisk_timeout_seconds": 600,
	}
	var op apiOperation
	start := time.Now()
	if code := e.call(t, "POST", "/machines/"+m.id+"/raid", spec, &op); code != http.StatusAccepted {
		t.Fatalf("RAID: got %d %+v", code, op.Error)
	}
	firstRun := op.RunID
	killed := false
	op, steps := r.follow(t, op.ID, 20*time.Minute, func(o apiOperation) {
		if o.Step == "build_raid" && !killed {
			killed = true
			r.mu.Lock()
			r.devKilledAt = time.Now()
			r.mu.Unlock()
			t.Logf("crash drill: bareflow dev killed (SIGKILL) during build_raid of %s, %.1fs into the operation", m.name, time.Since(start).Seconds())
			e.crashDev(t)
			t.Logf("crash drill: bareflow dev up again")
		}
	})
	r.record(m.name, "raid_s", time.Since(start))
	t.Logf("%s RAID 5 over %q: %s in %.1fs; steps %s", m.name, slots, op.State, time.Since(start).Seconds(), formatSteps(steps))
	if op.State != "succeeded" {
		t.Fatalf("RAID ended %s at %q: %+v", op.State, op.Step, op.Error)
	}
	if !killed {
		t.Errorf("the RAID operation never showed build_raid: the crash drill did not happen")
	}
	if op.RunID != firstRun {
		t.Errorf("RAID run: got %s after the restart, want the same run %s", op.RunID, firstRun)
	}
	r.mu.Lock()
	r.raidOp = op
	r.mu.Unlock()
}

var writePercent = regexp.MustCompile(`^write_image: (\d+)%`)

// install installs (or reinstalls) the machine's image with hostname, and
// checks the installed system came up on the serial console.
func (r *e2eRun) install(t *testing.T, m *e2eMachine, kind, hostname string) (apiOperation, []opStep) {
	e := r.lab
	req := map[string]any{
		"image":     m.image,
		"root_disk": map[string]any{"serial": m.disks[0].serial},
		"os": map[string]any{
			"hostname": hostname,
			"network": map[string]any{
				"interfaces": []map[string]any{{"name": "eth0", "addresses": []string{m.osAddr}, "gateway": m.gateway}},
				"dns":        []string{e2eServerIP},
			},
			"ssh_authorized_keys": []string{e2eSSHKey},
		},
		"ramdisk_timeout_seconds": 600,
		"os_timeout_seconds":      600,
	}
	before := countMarkers(m, hostname)
	var op apiOperation
	if code := e.call(t, "POST", "/machines/"+m.id+"/"+kind, req, &op); code != http.StatusAccepted {
		t.Fatalf("%s: got %d %+v", kind, code, op.Error)
	}
	drill := m.name == "rack-a-02" && kind == "install"
	killed := false
	op, steps := r.follow(t, op.ID, 30*time.Minute, func(o apiOperation) {
		if !drill || killed {
			return
		}
		if p := writePercent.FindStringSubmatch(o.Step); p != nil {
			if pct, _ := strconv.Atoi(p[1]); pct >= 40 {
				killed = true
				t.Logf("crash drill: bareflow worker killed (SIGKILL) at %q", o.Step)
				e.crashWorker()
				t.Logf("crash drill: bareflow worker up again")
			}
		}
	})
	t.Logf("%s %s: %s; steps %s", m.name, kind, op.State, formatSteps(steps))
	if op.State != "succeeded" {
		t.Fatalf("%s ended %s at %q: %+v", kind, op.State, op.Step, op.Error)
	}
	if drill && !killed {
		t.Errorf("the write never passed 40%% while watched: the worker crash drill did not happen (steps %s)", formatSteps(steps))
	}
	addr, _, _ := strings.Cut(m.osAddr, "/")
	want := "bareflow-os-up hostname=" + hostname + " addr=" + m.osAddr
	if n := countMarkers(m, hostname); n <= before {
		t.Fatalf("serial console of %s lacks a new %q; its end:\n%s", m.name, want, serialTail(m, 40))
	}
	var got struct {
		State string `json:"state"`
		OS    *struct {
			Hostname string `json:"hostname"`
			Address  string `json:"address"`
		} `json:"os"`
	}
	e.call(t, "GET", "/machines/"+m.id, nil, &got)
	if got.State != "running" || got.OS == nil || got.OS.Hostname != hostname || got.OS.Address != net.JoinHostPort(addr, "22") {
		t.Errorf("machine after %s: state %q os %+v, want running %s at %s:22", kind, got.State, got.OS, hostname, addr)
	}
	t.Logf("%s: serial console shows %q", m.name, want)
	return op, steps
}

// countMarkers counts the installed system's up-markers with this host
// name on the machine's serial console.
func countMarkers(m *e2eMachine, hostname string) int {
	b, _ := os.ReadFile(filepath.Join(m.dir, "serial.log"))
	return strings.Count(string(b), "bareflow-os-up hostname="+hostname+" addr="+m.osAddr)
}

func serialTail(m *e2eMachine, n int) string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "serial.log"))
	return tail(string(b), n)
}

// installTimings records an install's phases: the ramdisk's boot, the
// write and its rate, the reboot to the OS answering, and what is left:
// bareflow's own time.
func (r *e2eRun) installTimings(m *e2eMachine, kind string, steps []opStep) {
	d := stepDurations(steps)
	total := steps[len(steps)-1].at
	boot := d["prepare"] + d["boot_ramdisk"] + d["waiting_for_power_on"] + d["waiting_for_ramdisk"]
	write := d["write_image"]
	osUp := d["reboot"] + d["waiting_for_os"]
	r.record(m.name, kind+"_total_s", total)
	r.record(m.name, kind+"_ramdisk_boot_s", boot)
	r.record(m.name, kind+"_write_s", write)
	r.record(m.name, kind+"_reboot_to_os_up_s", osUp)
	r.record(m.name, kind+"_bareflow_overhead_s", total-boot-write-osUp)
	if img, ok := r.images[m.image]; ok && write > 0 {
		r.recordValue(m.name, kind+"_write_MBps", float64(int(float64(img.rawSize)/write.Seconds()/1e6*10))/10)
	}
}

// console types a command on the installed system's serial console
// through bareflow's console websocket (IPMI serial over LAN to the VM's
// serial port) and reads its answer; then the console log kept by the API
// must hold it too.
func (r *e2eRun) console(t *testing.T, m *e2eMachine, hostname string) {
	e := r.lab
	dev := e.api()
	u, err := url.Parse(dev.apiURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := qemulab.DialIn(e.l.NS, u.Host, 10*time.Second)
	if err != nil {
		t.Fatalf("dial the API in the lab: %v", err)
	}
	ws, err := websocket.NewClient(consoleConfig(t, dev, m.id, "", false), conn)
	if err != nil {
		t.Fatalf("console websocket of %s: %v", m.name, err)
	}
	w := newWSConsole(t, ws)
	want := "console-says-" + hostname
	// The first keys may arrive before the SOL session is up: type the
	// command again until its answer shows.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(w.output(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("console of %s: no %q in %q", m.name, want, tail(w.output(), 10))
		}
		w.send(t, "echo console-says-$(hostname)\r")
		time.Sleep(3 * time.Second)
	}
	t.Logf("%s: typed through the console websocket, the installed system answered %q", m.name, want)
	ws.Close()
	req, _ := http.NewRequest("GET", dev.apiURL+"/api/v1/machines/"+m.id+"/console/log", nil)
	req.Header.Set("Authorization", "Bearer "+dev.token)
	resp, err := dev.client.Do(req)
	if err != nil {
		t.Fatalf("console log: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
		t.Errorf("GET console/log: %d, %d bytes, want 200 with %q", resp.StatusCode, len(b), want)
	}
}

// wipe wipes the machine and checks its disks carry no signature.
func (r *e2eRun) wipe(t *testing.T, m *e2eMachine) {
	e := r.lab
	var op apiOperation
	if code := e.call(t, "POST", "/machines/"+m.id+"/wipe", map[string]any{"confirm": m.id, "ramdisk_timeout_seconds": 600}, &op); code != http.StatusAccepted {
		t.Fatalf("wipe: got %d %+v", code, op.Error)
	}
	start := time.Now()
	op, steps := r.follow(t, op.ID, 20*time.Minute, nil)
	r.record(m.name, "wipe_s", time.Since(start))
	t.Logf("%s wipe: %s; steps %s", m.name, op.State, formatSteps(steps))
	if op.State != "succeeded" {
		t.Fatalf("wipe ended %s at %q: %+v", op.State, op.Step, op.Error)
	}
	for i := range m.disks {
		f := m.diskFile(i)
		out, err := exec.Command("wipefs", "--no-act", "--noheadings", f).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("wipefs %s after the wipe: %v %q, want nothing", filepath.Base(f), err, out)
		}
		out, err = exec.Command("blkid", "-p", f).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("blkid -p %s after the wipe: %v %q, want exit status 2 (nothing found)", filepath.Base(f), err, out)
		}
	}
	var got regMachine
	e.call(t, "GET", "/machines/"+m.id, nil, &got)
	if got.State != "ready" {
		t.Errorf("state after wipe: got %q, want ready", got.State)
	}
}

// checkHistories saves every operation's history in the artefacts and
// checks, from the histories, what the crash drills must show: the write
// resumed from its checkpoint, and the RAID operation went on where it
// stopped.
func (r *e2eRun) checkHistories(t *testing.T, machines []*e2eMachine) {
	e := r.lab
	c := e.temporalClient(t)
	defer c.Close()
	for _, m := range machines {
		var ops struct {
			Items []apiOperation `json:"items"`
		}
		e.call(t, "GET", "/machines/"+m.id+"/operations", nil, &ops)
		for _, op := range ops.Items {
			h := history(t, c, op.WorkflowID, op.RunID)
			e.saveHistory(t, h, fmt.Sprintf("%s-%s-%s", m.name, op.Kind, op.ID))
		}
	}

	t.Run("the write resumed from its checkpoint", func(t *testing.T) {
		h := history(t, c, r.writeOp.WorkflowID, r.writeOp.RunID)
		scheduled := map[int64]string{}
		var resumed bool
		for _, ev := range h.Events {
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
				scheduled[ev.EventId] = a.ActivityType.GetName()
			}
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && scheduled[a.ScheduledEventId] == "WriteImage" {
				t.Logf("WriteImage started: attempt %d", a.Attempt)
			}
			if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && scheduled[a.ScheduledEventId] == "WriteImage" {
				var res struct {
					Written, ResumedAt int64
				}
				for _, p := range a.Result.GetPayloads() {
					_ = json.Unmarshal(p.Data, &res)
				}
				t.Logf("WriteImage completed: %d bytes written, resumed at offset %d", res.Written, res.ResumedAt)
				r.recordValue("rack-a-02", "install_write_resumed_at_bytes", float64(res.ResumedAt))
				resumed = res.ResumedAt > 0
			}
		}
		if !resumed {
			t.Errorf("the install's history shows no WriteImage that resumed from an offset")
		}
	})

	t.Run("the RAID operation went on after bareflow dev's restart", func(t *testing.T) {
		// A workflow that started over would schedule its first
		// activities again after the kill. Some activities legitimately
		// run twice (the inventory is read again once the arrays exist),
		// so the check is on the opening: the first two activities, with
		// their inputs, are scheduled once in the whole history.
		h := history(t, c, r.raidOp.WorkflowID, r.raidOp.RunID)
		type call struct{ name, input string }
		var seq []call
		var before, starts int
		for _, ev := range h.Events {
			if ev.EventType == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED {
				starts++
			}
			a := ev.GetActivityTaskScheduledEventAttributes()
			if a == nil {
				continue
			}
			seq = append(seq, call{a.ActivityType.GetName(), payloadsString(a.Input)})
			if ev.EventTime.AsTime().Before(r.devKilledAt) {
				before++
			}
		}
		if starts != 1 {
			t.Errorf("workflow started %d times in one run", starts)
		}
		if before == 0 || before == len(seq) {
			t.Fatalf("%d of %d activities scheduled before bareflow dev was killed: the drill did not hit the middle of the operation", before, len(seq))
		}
		for _, first := range seq[:min(2, len(seq))] {
			if slices.Contains(seq[before:], first) {
				t.Errorf("activity %s, which opens the workflow, scheduled again after the restart: the workflow started over", first.name)
			}
		}
		var names []string
		for i, c := range seq {
			mark := ""
			if i == before {
				mark = "[kill] "
			}
			names = append(names, mark+c.name)
		}
		t.Logf("RAID history: %d events, activities in order: %s", len(h.Events), strings.Join(names, ", "))
	})
}

// payloadsString is the payloads' data, for comparing inputs.
func payloadsString(p *commonpb.Payloads) string {
	var b strings.Builder
	for _, x := range p.GetPayloads() {
		b.Write(x.Data)
	}
	return b.String()
}
