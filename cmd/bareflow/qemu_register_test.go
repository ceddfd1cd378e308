//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"bareflow/contract"
	"bareflow/internal/lab/ipmisim"
	"bareflow/internal/lab/qemulab"
	"bareflow/internal/secret"
	"bareflow/internal/store"
	"bareflow/internal/store/storetest"
)

// The VM of TestQEMURegister and the lab around it.
const (
	regPXEMAC    = "52:54:00:bf:01:01"
	regSecondMAC = "52:54:00:bf:01:02"
	regVendor    = "bareflow-lab"
	regModel     = "qemu-pxe"
	regSerial    = "BFREG0001"
	regUUID      = "6f1c1f7e-5a3b-4c2d-9e8f-0123456789ab"
	regMemMiB    = 1024
	// regSMP is the VM's vCPU count under TCG: two cost the boot a few
	// seconds on a two-core host and make the CPU count a real check.
	regSMP = 2

	regServerIP = "198.51.100.1"
	regBootHTTP = regServerIP + ":8081"
	// The BMC's LAN interface: an address of the namespace beyond the PXE
	// segment (on a bridge of its own), and a port other than 623 so that the bmc network's
	// bmc_port is what brings the worker there.
	regBMCIf   = "bmc0"
	regBMCIP   = "203.0.113.10"
	regBMCPort = 6230
	regBMCGW   = "203.0.113.1"

	// regReadyTimeout bounds QEMU start to a ready machine.
	regReadyTimeout = 12 * time.Minute
	// regPowerOffTimeout bounds how long QEMU may run after bareflow
	// recorded the power off.
	regPowerOffTimeout = time.Minute
)

// regDisks are the VM's disks, each a different size so that every one is
// recognised by its size in the inventory.
var regDisks = []struct {
	name      string
	sizeMiB   int64
	transport string // in the inventory
	driver    string // the controller's kernel driver, "" for virtio-blk
}{
	{"virtio", 64, "virtio", ""},
	{"ahci", 96, "sata", "ahci"},
	{"megasas", 128, "", "megaraid_sas"},
}

// TestQEMURegister is issue 5 end to end: a VM bareflow has no record of —
// two NICs, a virtio-blk, an AHCI and a MegaRAID disk, and an IPMI BMC
// (ipmi_sim, reached by the guest over KCS) — PXE-boots from `bareflow dev`
// with auto-registration on. bareflow discovers it, boots its ramdisk,
// collects the inventory over SSH, sets up the BMC in-band (a static
// address of the bmc network, a bareflow user with a generated password),
// verifies that over lanplus, powers the VM off through the BMC and leaves
// the machine ready. The test checks the inventory against what QEMU was
// given, and the BMC independently with ipmitool and the password read from
// the database.
//
// Everything runs in one network namespace: the bridge (198.51.100.1/24)
// with the VM's PXE NIC, a second bridge with the BMC's address
// (203.0.113.10/24), ipmi_sim, QEMU, and `bareflow dev` itself (this test
// binary, re-executed), which reaches PostgreSQL through its unix socket.
func TestQEMURegister(t *testing.T) {
	q := newQEMULab(t, 1, true)
	l, sim, dev, dsn, o := q.lab, q.sim, q.dev, q.dsn, q.opts
	// The BMC, factory-fresh: address by DHCP with no DHCP server, so 0.0.0.0
	// until bareflow sets it.
	if st, err := sim.LAN(); err != nil || st.IPSource != "dhcp" || !st.Addr.IsUnspecified() {
		t.Fatalf("BMC LAN settings before registration: got %+v (%v), want dhcp with no address", st, err)
	}
	var none struct {
		Items []regMachine `json:"items"`
	}
	if code := dev.call(t, "GET", "/machines", dev.token, nil, &none); code != http.StatusOK || len(none.Items) != 0 {
		t.Fatalf("machines before the boot: got %d %d machines, want 200 and none", code, len(none.Items))
	}

	for _, d := range regDisks {
		qemulab.Run(t, "qemu-img", "create", "-q", "-f", "raw", filepath.Join(q.work, d.name+".img"), fmt.Sprintf("%dM", d.sizeMiB))
	}
	vm := q.startVM(t, regVM(q.work))

	m, op, tl := waitRegistered(t, dev, vm, "")
	t.Logf("timings from QEMU start (-smp %d, -m %d, TCG): discovered %.1fs, phone-home %.1fs (ramdisk's marker) / %.1fs (operation step), "+
		"inventory saved %.1fs, ready %.1fs (BMC set-up, verify and power off %.1fs), QEMU exited %s",
		regSMP, regMemMiB, tl.discovered.Seconds(), tl.phoneHomeSerial.Seconds(), tl.phoneHome.Seconds(),
		tl.inventory.Seconds(), tl.ready.Seconds(), (tl.ready - tl.inventory).Seconds(), tl.exitedString())
	t.Logf("ramdisk stages as polled every 0.5s: %s", strings.Join(tl.stages, ", "))
	t.Logf("operation steps as polled every 0.5s (short ones may be missed): %s", strings.Join(tl.steps, ", "))

	t.Run("machine", func(t *testing.T) {
		var all struct {
			Items []regMachine `json:"items"`
		}
		dev.call(t, "GET", "/machines", dev.token, nil, &all)
		if len(all.Items) != 1 {
			t.Errorf("machines: got %d, want exactly 1", len(all.Items))
		}
		if want := "m-" + strings.ReplaceAll(regPXEMAC, ":", ""); m.Name != want {
			t.Errorf("name: got %q, want %q", m.Name, want)
		}
		if m.State != "ready" {
			t.Errorf("state: got %q, want ready", m.State)
		}
		if m.PXEMAC != regPXEMAC {
			t.Errorf("pxe_mac: got %q, want %q", m.PXEMAC, regPXEMAC)
		}
		if m.LastError != nil {
			t.Errorf("last_error: got %+v, want none", m.LastError)
		}
		if op.State != "succeeded" || op.Kind != string(contract.OperationRegister) || op.Error != nil {
			t.Errorf("operation: got %s %s (error %+v), want a succeeded register", op.Kind, op.State, op.Error)
		}
	})

	t.Run("inventory", func(t *testing.T) { checkInventory(t, m.Hardware) })

	var password string
	t.Run("BMC", func(t *testing.T) {
		wantAddr := netip.AddrPortFrom(netip.MustParseAddr(regBMCIP), regBMCPort).String()
		if m.BMC == nil || m.BMC.Address != wantAddr || m.BMC.User != contract.DefaultBMCUsername || !m.BMC.PasswordSet {
			t.Fatalf("bmc: got %+v, want address %s, user %s, password set", m.BMC, wantAddr, contract.DefaultBMCUsername)
		}
		password = bmcPassword(t, dsn, o.dataDir, m.ID)
		// The BMC's own view of its LAN channel, as set in-band.
		st, err := sim.LAN()
		if err != nil {
			t.Fatal(err)
		}
		if st.IPSource != "static" || st.Addr.String() != regBMCIP || st.Netmask.String() != "255.255.255.0" || st.Gateway.String() != regBMCGW {
			t.Errorf("BMC LAN settings: got %+v, want static %s/255.255.255.0 via %s", st, regBMCIP, regBMCGW)
		}
		t.Logf("LAN settings committed in-band: %q", sim.LANWrites())

		// The same, and the new user, over lanplus with ipmitool from
		// inside the namespace.
		lan := regIPMITool(t, l, contract.DefaultBMCUsername, password, "lan", "print", "1")
		for _, want := range []string{"IP Address Source       : Static Address", "IP Address              : " + regBMCIP,
			"Subnet Mask             : 255.255.255.0", "Default Gateway IP      : " + regBMCGW} {
			if !strings.Contains(lan, want) {
				t.Errorf("ipmitool lan print 1: no %q in\n%s", want, lan)
			}
		}
		users := regIPMITool(t, l, contract.DefaultBMCUsername, password, "user", "list", "1")
		if !regUserIsAdmin(users, contract.DefaultBMCUsername) {
			t.Errorf("ipmitool user list 1: want %s with ADMINISTRATOR privilege in\n%s", contract.DefaultBMCUsername, users)
		}
		t.Logf("BMC users:\n%s", regNamedUsers(users))
		wrong := "x" + password[1:]
		if password[0] == 'x' {
			wrong = "y" + password[1:]
		}
		if _, err := regIPMIToolErr(l, contract.DefaultBMCUsername, wrong, "chassis", "power", "status"); err == nil {
			t.Errorf("ipmitool with a wrong password: succeeded, want refused")
		}
	})

	t.Run("powered off through the BMC", func(t *testing.T) {
		select {
		case <-vm.Exited:
		case <-time.After(regPowerOffTimeout):
			t.Fatalf("QEMU still runs %s after the machine became ready", regPowerOffTimeout)
		}
		if m.PowerState != "off" {
			t.Errorf("recorded power state: got %q, want off", m.PowerState)
		}
		// Read live through bareflow, with the stored credentials.
		var ps struct {
			PowerState string `json:"power_state"`
			Source     string `json:"source"`
		}
		if code := dev.call(t, "GET", "/machines/"+m.ID+"/power?refresh=true", dev.token, nil, &ps); code != http.StatusOK ||
			ps.PowerState != "off" || ps.Source != "bmc" {
			t.Errorf("GET power?refresh=true: got %d %+v, want 200 off from bmc", code, ps)
		}
		if password == "" {
			t.Skip("no BMC password (see the BMC subtest)")
		}
		if got := strings.TrimSpace(regIPMITool(t, l, contract.DefaultBMCUsername, password, "chassis", "power", "status")); got != "Chassis Power is off" {
			t.Errorf("ipmitool chassis power status: got %q, want Chassis Power is off", got)
		}
	})
}

// qemuLab is the lab of the QEMU end-to-end tests, ready for a VM: a
// network namespace with the bridge and its taps (tap0 for the VM's PXE
// NIC) and a second bridge holding the BMC's address; ipmi_sim as the VM's
// BMC, reached by the guest over KCS (VM serial interface), chassis power
// going to the VM; `bareflow dev` (this test binary, re-executed) in the
// namespace, reaching PostgreSQL through its unix socket, with two networks:
// the PXE segment ("lab") and the BMC network ("bmc") whose one address is
// where ipmi_sim listens.
type qemuLab struct {
	lab  *qemulab.Lab
	sim  *ipmisim.Sim
	dev  *devProcess
	opts devOptions
	dsn  string
	// work is a temporary folder for the VM's disks, serial log and QMP
	// socket.
	work string
}

// newQEMULab sets the lab up; it skips (see qemulab.SkipOrFail) when it
// cannot run here. looseTaps are taps on no network, for NICs beyond the PXE
// one; autoRegister is BAREFLOW_BOOT_AUTO_REGISTER.
func newQEMULab(t *testing.T, looseTaps int, autoRegister bool) *qemuLab {
	t.Helper()
	if os.Geteuid() != 0 {
		qemulab.SkipOrFail(t, "network namespaces, taps and QEMU's bridge need root")
	}
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "ip", "ipmi_sim", "ipmitool"} {
		if _, err := exec.LookPath(tool); err != nil {
			qemulab.SkipOrFail(t, "%s is not installed (packages qemu-system-x86, qemu-utils, iproute2, openipmi, ipmitool)", tool)
		}
	}
	if _, err := os.Stat("/usr/lib/ipxe/qemu/efi-virtio.rom"); err != nil {
		qemulab.SkipOrFail(t, "the iPXE ROMs for QEMU are not installed (package ipxe-qemu)")
	}
	ramdisk := regRamdiskDir(t)
	q := &qemuLab{dsn: socketDSN(t, storetest.DSN(t))}

	q.lab = qemulab.New(t, 1, looseTaps)
	q.lab.AdvertiseNoRouter(t)
	q.lab.AddSegment(t, regBMCIf, regBMCIP+"/24")

	// The BMC, factory-fresh: address by DHCP with no DHCP server, so 0.0.0.0
	// until bareflow sets it; its LAN interface answers on the second
	// address; chassis power goes to the VM over the VM serial interface.
	q.sim = ipmisim.Start(t, ipmisim.Options{
		Netns: q.lab.NS, Host: regBMCIP, Port: regBMCPort,
		VMSerial: true, VMPower: true,
		LAN: &ipmisim.LANConfig{IPSource: "dhcp"},
	})

	q.work = t.TempDir()
	ipxeDir := "/usr/lib/ipxe"
	if _, err := os.Stat(filepath.Join(ipxeDir, "undionly.kpxe")); err != nil {
		ipxeDir = t.TempDir() // TFTP serves nothing then; the QEMU ROM is iPXE already
	}
	q.opts = newDevOptions(t)
	q.opts.dsn, q.opts.netns, q.opts.client = q.dsn, q.lab.NS, qemulab.HTTPClient(q.lab.NS)
	q.opts.extraEnv = []string{
		"BAREFLOW_LOG_LEVEL=info",
		// ipmi_sim shares two cores with a TCG guest.
		"BAREFLOW_BMC_TIMEOUT=5s",
		"BAREFLOW_BOOT_INTERFACES=" + qemulab.Bridge,
		"BAREFLOW_BOOT_HTTP_ADDR=" + regBootHTTP,
		"BAREFLOW_BOOT_PUBLIC_URL=http://" + regBootHTTP,
		"BAREFLOW_BOOT_TFTP_ADDR=" + regServerIP + ":69",
		"BAREFLOW_BOOT_IPXE_DIR=" + ipxeDir,
		"BAREFLOW_BOOT_RAMDISK_DIR=" + ramdisk,
		"BAREFLOW_BOOT_KERNEL_ARGS=console=tty0 console=ttyS0,115200 bareflow.link_wait=10",
		"BAREFLOW_BOOT_AUTO_REGISTER=" + strconv.FormatBool(autoRegister),
	}
	devStart := time.Now()
	q.dev = startDev(t, &q.opts)
	t.Logf("bareflow dev up in the namespace in %.1fs", time.Since(devStart).Seconds())

	// bareflow's networks: the PXE segment on the bridge, and the BMC
	// network whose one address is where ipmi_sim listens.
	for _, n := range []map[string]any{
		{"name": "lab", "kind": "provisioning", "cidr": "198.51.100.0/24", "gateway": regServerIP,
			"range_start": "198.51.100.50", "range_end": "198.51.100.60", "lease_seconds": 600, "interface": qemulab.Bridge},
		{"name": "bmc", "kind": "bmc", "cidr": "203.0.113.0/24", "gateway": regBMCGW,
			"range_start": regBMCIP, "range_end": regBMCIP, "bmc_port": regBMCPort},
	} {
		var e apiErr
		if code := q.dev.call(t, "POST", "/networks", q.dev.token, n, &e); code != http.StatusCreated {
			t.Fatalf("create network %s: got %d %+v, want 201", n["name"], code, e.Error)
		}
	}
	// No wait: the boot service reads the networks again when a request
	// matches none, so iPXE's retransmission is answered.
	return q
}

// labVM is a VM of the lab: its PXE NIC's MAC, its SMBIOS serial and UUID,
// and its other devices (NICs, disks) as QEMU arguments.
type labVM struct {
	pxeMAC, serial, uuid string
	devices              []string
}

// startVM starts the VM in the lab's namespace, its serial console in a
// file of q.work, and shows the console's end and ipmi_sim's log when the
// test fails.
func (q *qemuLab) startVM(t *testing.T, vm labVM) *qemulab.QEMU {
	t.Helper()
	serial, qmp := filepath.Join(q.work, "serial.log"), filepath.Join(q.work, "qmp.sock")
	p := qemulab.StartQEMU(t, q.lab.NS, labQEMUArgs(vm, serial, qmp, q.sim.VMPort), serial, qmp)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stages %q; serial console (end):\n%s", p.Stages(), p.SerialTail(80))
			t.Logf("ipmi_sim log:\n%s", q.sim.Log())
		}
	})
	return p
}

// labQEMUArgs is a VM of the lab: TCG, regSMP vCPUs, regMemMiB of memory,
// SMBIOS system strings, a virtio-net NIC on tap0 that PXE-boots with iPXE
// on the bridge, vm.devices, a virtio RNG and a KCS interface to ipmi_sim's
// VM serial port.
func labQEMUArgs(vm labVM, serial, qmp string, vmPort int) []string {
	args := []string{
		"-accel", "tcg", "-m", strconv.Itoa(regMemMiB), "-smp", strconv.Itoa(regSMP),
		"-nographic", "-nodefaults", "-no-user-config",
		"-serial", "file:" + serial,
		"-qmp", "unix:" + qmp + ",server=on,wait=off",
		"-smbios", "type=1,manufacturer=" + regVendor + ",product=" + regModel + ",serial=" + vm.serial + ",uuid=" + vm.uuid,
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=" + vm.pxeMAC + ",bootindex=1",
		"-boot", "order=n",
	}
	args = append(args, vm.devices...)
	return append(args,
		"-device", "virtio-rng-pci",
		"-chardev", fmt.Sprintf("socket,id=ipmi0,host=127.0.0.1,port=%d,reconnect=10", vmPort),
		"-device", "ipmi-bmc-extern,chardev=ipmi0,id=bmc0",
		"-device", "isa-ipmi-kcs,bmc=bmc0,irq=5",
	)
}

// regMachine is the part of the API's machine this test reads.
type regMachine struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	State      string `json:"state"`
	PXEMAC     string `json:"pxe_mac"`
	PowerState string `json:"power_state"`
	BMC        *struct {
		Address     string `json:"address"`
		User        string `json:"user"`
		PasswordSet bool   `json:"password_set"`
	} `json:"bmc"`
	LastError *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"last_error"`
	Hardware *contract.Inventory `json:"hardware"`
}

type regOperation struct {
	apiOperation
	Kind string `json:"kind"`
}

// regTimeline is when each stage of the registration was first seen,
// counted from QEMU's start.
type regTimeline struct {
	// discovered: the machine is listed (0 when it was known before);
	// phoneHomeSerial: the ramdisk's phone-home marker on the serial
	// console; phoneHome: the operation collects the inventory; inventory:
	// it configures the BMC; ready: the machine is ready; exited: QEMU
	// ended (0 while it runs).
	discovered, phoneHomeSerial, phoneHome, inventory, ready, exited time.Duration
	// steps are the operation's steps, stages the ramdisk's stage markers,
	// each with the time it was first seen.
	steps, stages []string
}

func (tl regTimeline) exitedString() string {
	if tl.exited == 0 {
		return "not yet"
	}
	return fmt.Sprintf("%.1fs", tl.exited.Seconds())
}

// waitRegistered polls the API (and the serial console) until the
// machine's registration ends, and returns the machine, its register
// operation and the timeline. machineID is the machine's ID, or "" for the
// machine the boot service discovers (the only one). It fails the test when
// the operation fails, QEMU exits early or regReadyTimeout passes.
func waitRegistered(t *testing.T, dev *devProcess, vm *qemulab.QEMU, machineID string) (regMachine, regOperation, regTimeline) {
	t.Helper()
	var (
		tl       regTimeline
		machine  regMachine
		op       regOperation
		lastStep string
	)
	machine.ID = machineID
	deadline := vm.Started.Add(regReadyTimeout)
	since := func() time.Duration { return time.Since(vm.Started) }
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no ready machine %s after QEMU start: machine %q state %q, operation %s step %q",
				regReadyTimeout, machine.Name, machine.State, op.State, op.Step)
		}
		for _, st := range vm.Stages()[len(tl.stages):] {
			name, _, _ := strings.Cut(st, " ")
			tl.stages = append(tl.stages, fmt.Sprintf("%s@%.1fs", name, since().Seconds()))
			if name == "phone-home" && tl.phoneHomeSerial == 0 {
				tl.phoneHomeSerial = since()
			}
		}
		if tl.exited == 0 && !vm.Running() {
			tl.exited = since()
			t.Logf("QEMU exited %.1fs after its start (operation step last seen %q): %v", tl.exited.Seconds(), op.Step, vm.Err)
		}
		if tl.exited != 0 && since()-tl.exited > regPowerOffTimeout {
			// Only bareflow's power off may end QEMU: the operation ends
			// right after.
			t.Fatalf("QEMU exited at %.1fs and the operation has not ended %s later: %s step %q",
				tl.exited.Seconds(), regPowerOffTimeout, op.State, op.Step)
		}
		if machine.ID == "" {
			var list struct {
				Items []regMachine `json:"items"`
			}
			if code := dev.call(t, "GET", "/machines", dev.token, nil, &list); code != http.StatusOK {
				t.Fatalf("list machines: got %d, want 200", code)
			}
			if len(list.Items) > 0 {
				machine = list.Items[0]
				tl.discovered = since()
				t.Logf("discovered %s (%s) %.1fs after QEMU start", machine.Name, machine.ID, tl.discovered.Seconds())
			}
		}
		if machine.ID != "" {
			var ops struct {
				Items []regOperation `json:"items"`
			}
			if code := dev.call(t, "GET", "/operations?machine_id="+machine.ID, dev.token, nil, &ops); code != http.StatusOK {
				t.Fatalf("list operations: got %d, want 200", code)
			}
			if len(ops.Items) > 0 {
				op = ops.Items[0]
				if op.Step != lastStep {
					lastStep = op.Step
					tl.steps = append(tl.steps, fmt.Sprintf("%s@%.1fs", op.Step, since().Seconds()))
					switch op.Step {
					case "collect_inventory":
						tl.phoneHome = since()
					case "configure_bmc":
						tl.inventory = since()
					}
				}
				if contract.OperationState(op.State).Final() {
					if op.State != "succeeded" {
						t.Fatalf("register operation %s ended %s at step %q: %+v", op.ID, op.State, op.Step, op.Error)
					}
					if code := dev.call(t, "GET", "/machines/"+machine.ID, dev.token, nil, &machine); code != http.StatusOK {
						t.Fatalf("get machine: got %d, want 200", code)
					}
					if machine.State == "ready" {
						tl.ready = since()
						if !vm.Running() && tl.exited == 0 {
							tl.exited = since()
						}
						return machine, op, tl
					}
				}
			}
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-dev.done:
			t.Fatalf("bareflow dev exited")
		}
	}
}

// checkInventory compares the inventory with what QEMU was given.
func checkInventory(t *testing.T, inv *contract.Inventory) {
	if inv == nil {
		t.Fatal("the machine has no hardware inventory")
	}
	sys := inv.System
	if sys.Vendor != regVendor || sys.Model != regModel || sys.Serial != regSerial || !strings.EqualFold(sys.UUID, regUUID) {
		t.Errorf("system: got vendor %q model %q serial %q uuid %q, want %q %q %q %q",
			sys.Vendor, sys.Model, sys.Serial, sys.UUID, regVendor, regModel, regSerial, regUUID)
	}
	if sys.BootMode != contract.FirmwareBIOS {
		t.Errorf("boot mode: got %q, want %q", sys.BootMode, contract.FirmwareBIOS)
	}
	if inv.CPU.Threads != regSMP {
		t.Errorf("cpu threads: got %d, want %d", inv.CPU.Threads, regSMP)
	}
	const mib = 1 << 20
	if u := inv.Memory.UsableBytes; u <= 900*mib || u > regMemMiB*mib {
		t.Errorf("usable memory: got %d bytes (%d MiB), want more than 900 MiB and at most %d MiB", u, u/mib, regMemMiB)
	}
	if inv.Memory.TotalBytes < inv.Memory.UsableBytes {
		t.Errorf("total memory %d < usable %d", inv.Memory.TotalBytes, inv.Memory.UsableBytes)
	}
	if len(inv.Memory.DIMMs) > 0 && inv.Memory.TotalBytes != regMemMiB*mib {
		t.Errorf("total memory with SMBIOS DIMMs %+v: got %d, want %d", inv.Memory.DIMMs, inv.Memory.TotalBytes, regMemMiB*mib)
	}
	var macs []string
	for _, n := range inv.NICs {
		macs = append(macs, strings.ToLower(n.MAC))
	}
	if !slices.Contains(macs, regPXEMAC) || !slices.Contains(macs, regSecondMAC) {
		t.Errorf("NIC MACs %q: want both %s and %s", macs, regPXEMAC, regSecondMAC)
	}
	if len(inv.Disks) != len(regDisks) {
		t.Errorf("disks: got %d %+v, want %d", len(inv.Disks), inv.Disks, len(regDisks))
	}
	for _, want := range regDisks {
		i := slices.IndexFunc(inv.Disks, func(d contract.Disk) bool { return d.SizeBytes == want.sizeMiB*mib })
		if i < 0 {
			t.Errorf("no disk of %d MiB (the %s one) in %+v", want.sizeMiB, want.name, inv.Disks)
			continue
		}
		d := inv.Disks[i]
		if want.transport != "" && d.Transport != want.transport {
			t.Errorf("%s disk %s: transport %q, want %q", want.name, d.Name, d.Transport, want.transport)
		}
		if want.driver != "" && d.ControllerDriver != want.driver {
			t.Errorf("%s disk %s: controller driver %q, want %q", want.name, d.Name, d.ControllerDriver, want.driver)
		}
		t.Logf("%s disk: %s %d MiB transport %q controller %s (%s)", want.name, d.Name, d.SizeBytes/mib, d.Transport, d.Controller, d.ControllerDriver)
	}
	i := slices.IndexFunc(inv.RAID, func(c contract.RAIDController) bool { return c.Driver == "megaraid_sas" })
	if i < 0 {
		t.Errorf("raid_controllers %+v: want the MegaRAID (megaraid_sas)", inv.RAID)
	} else if c := inv.RAID[i]; c.PCIAddr == "" || c.Tool != "" {
		t.Errorf("MegaRAID controller: got %+v, want its PCI address and no tool", c)
	}
	if !slices.ContainsFunc(inv.Warnings, func(w string) bool { return strings.Contains(w, "storcli") }) {
		t.Errorf("warnings %q: want one saying storcli is missing", inv.Warnings)
	}
	t.Logf("inventory: %s %s, %d×%s, %d MiB usable / %d MiB total, %d NICs, %d disks, warnings %q",
		sys.Vendor, sys.Model, inv.CPU.Threads, inv.CPU.Model, inv.Memory.UsableBytes/mib, inv.Memory.TotalBytes/mib,
		len(inv.NICs), len(inv.Disks), inv.Warnings)
}

// bmcPassword reads the machine's BMC password from the database, with the
// secret key `bareflow dev` keeps in its data folder: the API never returns
// it.
func bmcPassword(t *testing.T, dsn, dataDir, machineID string) string {
	t.Helper()
	key, err := secret.LoadKey("", filepath.Join(dataDir, secretKeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	box, err := secret.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, dsn, box, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	creds, err := st.BMCCredentials(ctx, machineID)
	if err != nil {
		t.Fatal(err)
	}
	if creds.User != contract.DefaultBMCUsername || creds.Password.Reveal() == "" {
		t.Fatalf("stored BMC credentials: user %q, password set %v; want %s and a password", creds.User, creds.Password != "", contract.DefaultBMCUsername)
	}
	return creds.Password.Reveal()
}

// regIPMITool runs ipmitool over lanplus (cipher suite 3) against the BMC
// from inside the namespace, the password in the environment (-E), and
// fails the test on error.
func regIPMITool(t *testing.T, l *qemulab.Lab, user, password string, args ...string) string {
	t.Helper()
	out, err := regIPMIToolErr(l, user, password, args...)
	if err != nil {
		t.Fatalf("ipmitool %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

func regIPMIToolErr(l *qemulab.Lab, user, password string, args ...string) (string, error) {
	return ipmitoolIn(l.NS, regBMCIP, regBMCPort, user, password, args...)
}

// ipmitoolIn runs ipmitool over lanplus (cipher suite 3) against host:port
// from the namespace ns, the password in the environment (-E).
func ipmitoolIn(ns, host string, port int, user, password string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := []string{"netns", "exec", ns, "ipmitool", "-I", "lanplus", "-C", "3", "-H", host, "-p", strconv.Itoa(port), "-U", user, "-E"}
	cmd := exec.CommandContext(ctx, "ip", append(base, args...)...)
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// regNamedUsers keeps the header and the slots with a name of `ipmitool
// user list`.
func regNamedUsers(list string) string {
	var b strings.Builder
	for i, line := range slices.Collect(strings.Lines(list)) {
		if f := strings.Fields(line); i == 0 || len(f) >= 2 && f[1] != "true" && f[1] != "false" {
			b.WriteString(line)
		}
	}
	return b.String()
}

// regUserIsAdmin reports whether `ipmitool user list` shows name with the
// ADMINISTRATOR privilege.
func regUserIsAdmin(list, name string) bool {
	for line := range strings.Lines(list) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == name && strings.Contains(line, "ADMINISTRATOR") {
			return true
		}
	}
	return false
}

// regVM is the VM of TestQEMURegister: besides the lab's PXE NIC, an
// e1000e NIC on no network (tap1) and the three disks of regDisks, in
// files of work.
func regVM(work string) labVM {
	drive := func(id, name string) string {
		return "if=none,id=" + id + ",format=raw,file=" + filepath.Join(work, name+".img")
	}
	return labVM{pxeMAC: regPXEMAC, serial: regSerial, uuid: regUUID, devices: []string{
		"-netdev", "tap,id=n1,ifname=tap1,script=no,downscript=no",
		"-device", "e1000e,netdev=n1,mac=" + regSecondMAC + ",romfile=",
		"-drive", drive("d0", "virtio"), "-device", "virtio-blk-pci,drive=d0",
		"-device", "ahci,id=a0", "-drive", drive("d1", "ahci"), "-device", "ide-hd,drive=d1,bus=a0.0",
		"-device", "megasas,id=m0", "-drive", drive("d2", "megasas"), "-device", "scsi-hd,drive=d2,bus=m0.0",
	}}
}

// regRamdiskDir is the built ramdisk: BAREFLOW_RAMDISK_DIR, or build/ramdisk
// of the repository (`make ramdisk`, which CI runs before the tests).
func regRamdiskDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BAREFLOW_RAMDISK_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "build", "ramdisk")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			qemulab.SkipOrFail(t, "no ramdisk in %s (run `make ramdisk`)", dir)
		}
	}
	return dir
}

// socketDSN rewrites a DSN naming PostgreSQL on the host's loopback to the
// server's unix socket, which processes in a network namespace still reach
// (the socket is a file).
func socketDSN(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("test database URL: %v", err)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	if a, err := netip.ParseAddr(host); (err != nil || !a.IsLoopback()) && host != "localhost" {
		qemulab.SkipOrFail(t, "PostgreSQL at %q is not on the loopback: a process in the lab's namespace cannot reach it", host)
	}
	for _, dir := range []string{"/var/run/postgresql", "/run/postgresql", "/tmp"} {
		if _, err := os.Stat(filepath.Join(dir, ".s.PGSQL."+port)); err == nil {
			q := u.Query()
			q.Set("host", dir)
			q.Set("port", port)
			u.Host = "" // postgres://user@/db?host=DIR
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	qemulab.SkipOrFail(t, "PostgreSQL on port %s has no unix socket in /var/run/postgresql, /run/postgresql or /tmp", port)
	return ""
}
