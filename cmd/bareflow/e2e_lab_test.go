//go:build linux && e2e

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"bareflow/contract"
	"bareflow/internal/lab/ipmisim"
	"bareflow/internal/lab/osimage"
	"bareflow/internal/lab/qemulab"
	"bareflow/internal/store/storetest"
)

// The rack of `make e2e`: two segments and the addresses on them.
//
//	namespace L (bfr-…)                         namespace R (relay)
//	  br0 198.51.100.1/24  ── veth ──  198.51.100.2/24 vdn0
//	    tap0 rack-a-01 (BIOS)                    br0 192.0.2.1/24, 192.0.2.11 (BMC)
//	    tap1 rack-a-02 (UEFI)                      tap0 rack-b-01 (BIOS)
//	  bmc0 203.0.113.1/24, .11 .12 (BMCs)        dhcrelay br0 → 198.51.100.1
//	  bareflow dev --no-worker, bareflow worker, the image server
//
// Every BMC is an ipmi_sim whose chassis control runs the vmpower hook
// (QEMU started, stopped and reset with the boot device last set), whose
// VM serial interface is the guest's KCS, and whose SOL is the VM's
// serial port.
const (
	e2eServerIP  = "198.51.100.1"
	e2eBootHTTP  = e2eServerIP + ":8081"
	e2eRelayUp   = "198.51.100.2"
	e2eRemoteNet = "192.0.2.0/24"
	e2eRemoteGW  = "192.0.2.1"
	e2eBMCGW     = "203.0.113.1"
	e2eBMCNet    = "203.0.113.0/24"
	// The BMC network's pool, from which registration gives each BMC its
	// address.
	e2eBMCPoolStart = "203.0.113.100"
	e2eBMCPoolEnd   = "203.0.113.109"
	e2eImagePort    = "8099"
	// e2eImageRate bounds each image download (bytes per second), as a
	// busy image server would: the write of the uncompressed image then
	// takes long enough to kill the worker in its middle.
	e2eImageRate = 4 << 20
	e2eMemMiB    = 1024
	e2eSSHKey    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtlc3Qta2V5LWZvci1iYXJlZmxvdy10ZXN0cy0xMjM0 ops@lab"
	e2eOVMFCode  = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	e2eOVMFVars  = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// e2eRestartWait is how long a killed process stays down.
	e2eRestartWait = 3 * time.Second
	// e2eAPIOutage bounds how long API calls are retried while bareflow
	// dev restarts.
	e2eAPIOutage = 3 * time.Minute
)

// e2eDisk is one disk of a lab machine.
type e2eDisk struct {
	serial  string
	sizeMiB int64
	bus     string // virtio, ahci or megasas
}

// e2eMachine is one machine of the rack, as built and as bareflow knows it.
type e2eMachine struct {
	name     string // also the installed OS's host name
	relayed  bool   // behind the DHCP relay, in namespace R
	firmware string // contract.FirmwareBIOS or FirmwareUEFI
	nicModel string // the PXE NIC
	pxeMAC   string
	// extraNICs are NICs on no network: model and MAC.
	extraNICs [][2]string
	serial    string
	uuid      string
	smp       int
	disks     []e2eDisk
	bmcIP     string // where its BMC (ipmi_sim) listens
	osAddr    string // CIDR
	gateway   string
	image     string // the image it installs

	// Set up by the lab.
	ns, tap string
	solPort int
	dir     string
	sim     *ipmisim.Sim
	id      string
	// bmcAddr is the address bareflow gave the BMC in-band (bmcIP
	// without a BMC network).
	bmcAddr string
}

func (m *e2eMachine) diskFile(i int) string {
	return filepath.Join(m.dir, fmt.Sprintf("disk%d.img", i))
}

// qemuArgs are the machine's QEMU arguments; diskFirst puts the first
// disk before the PXE NIC in the boot order.
func (m *e2eMachine) qemuArgs(vmPort int, diskFirst bool) []string {
	nicIdx, diskIdx := 1, 2
	if diskFirst {
		nicIdx, diskIdx = 2, 1
	}
	args := []string{
		"-name", m.name, "-accel", "tcg", "-m", strconv.Itoa(e2eMemMiB), "-smp", strconv.Itoa(m.smp),
		"-nographic", "-nodefaults", "-no-user-config",
		"-chardev", fmt.Sprintf("socket,id=ser0,host=127.0.0.1,port=%d,server=on,wait=off,telnet=on,logfile=%s,logappend=on",
			m.solPort, filepath.Join(m.dir, "serial.log")),
		"-serial", "chardev:ser0",
		"-qmp", "unix:" + filepath.Join(m.dir, "qmp.sock") + ",server=on,wait=off",
		"-smbios", "type=1,manufacturer=" + regVendor + ",product=" + regModel + ",serial=" + m.serial + ",uuid=" + m.uuid,
		"-netdev", "tap,id=n0,ifname=" + m.tap + ",script=no,downscript=no",
		"-device", fmt.Sprintf("%s,netdev=n0,mac=%s,bootindex=%d", m.nicModel, m.pxeMAC, nicIdx),
	}
	if m.firmware == contract.FirmwareUEFI {
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+e2eOVMFCode,
			"-drive", "if=pflash,format=raw,unit=1,file="+filepath.Join(m.dir, "OVMF_VARS.fd"))
	}
	for i, nic := range m.extraNICs {
		args = append(args, "-netdev", fmt.Sprintf("tap,id=x%d,ifname=tap%d,script=no,downscript=no", i, 2+i),
			"-device", fmt.Sprintf("%s,netdev=x%d,mac=%s,romfile=", nic[0], i, nic[1]))
	}
	megasas, ahci := false, false
	for i, d := range m.disks {
		boot := ""
		if i == 0 {
			boot = fmt.Sprintf(",bootindex=%d", diskIdx)
		}
		args = append(args, "-drive", fmt.Sprintf("if=none,id=d%d,format=raw,file=%s", i, m.diskFile(i)))
		switch d.bus {
		case "virtio":
			args = append(args, "-device", fmt.Sprintf("virtio-blk-pci,drive=d%d,serial=%s%s", i, d.serial, boot))
		case "ahci":
			if !ahci {
				args = append(args, "-device", "ahci,id=a0")
				ahci = true
			}
			args = append(args, "-device", fmt.Sprintf("ide-hd,drive=d%d,bus=a0.%d,serial=%s%s", i, i, d.serial, boot))
		case "megasas":
			if !megasas {
				args = append(args, "-device", "megasas,id=m0")
				megasas = true
			}
			args = append(args, "-device", fmt.Sprintf("scsi-hd,drive=d%d,bus=m0.0,scsi-id=%d,serial=%s%s", i, i, d.serial, boot))
		}
	}
	return append(args,
		"-device", "virtio-rng-pci",
		"-chardev", fmt.Sprintf("socket,id=ipmi0,host=127.0.0.1,port=%d,reconnect=10", vmPort),
		"-device", "ipmi-bmc-extern,chardev=ipmi0,id=bmc0",
		"-device", "isa-ipmi-kcs,bmc=bmc0,irq=5",
	)
}

// ipmitool runs ipmitool against the machine's BMC at the address it
// started with, from the machine's namespace: the operator at the rack.
func (m *e2eMachine) ipmitool(user, password string, args ...string) (string, error) {
	return ipmitoolIn(m.ns, m.bmcIP, 623, user, password, args...)
}

// poweredOn reports whether the machine's QEMU runs.
func (m *e2eMachine) poweredOn() bool {
	_, ok := qemulab.MachinePID(m.dir)
	return ok
}

// e2eLab is the rack and the bareflow processes driving it.
type e2eLab struct {
	l, r      *qemulab.Lab
	dsn       string
	opts      devOptions
	artifacts string
	work      string
	// www is the folder the image server serves.
	www string

	// nextTap is the next of l's taps on the bridge for a machine.
	nextTap int
	// top is the test that owns the lab: processes restarted by a crash
	// drill in a subtest belong to it, so they outlive that subtest.
	top *testing.T

	mu     sync.Mutex
	dev    *devProcess
	worker *devProcess
}

// api returns the bareflow dev process now running.
func (e *e2eLab) api() *devProcess {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dev
}

// call is an API call that rides out a restart of bareflow dev: a
// connection error is retried for e2eAPIOutage.
func (e *e2eLab) call(t *testing.T, method, path string, in, out any) int {
	t.Helper()
	deadline := time.Now().Add(e2eAPIOutage)
	for {
		dev := e.api()
		code, err := dev.try(method, path, dev.token, in, out)
		if err == nil {
			return code
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: %v (for %s)", method, path, err, e2eAPIOutage)
		}
		time.Sleep(time.Second)
	}
}

// crashDev kills bareflow dev with SIGKILL, leaves it down e2eRestartWait
// and starts it again on the same data, ports and database.
func (e *e2eLab) crashDev(t *testing.T) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dev.kill(syscall.SIGKILL)
	time.Sleep(e2eRestartWait)
	o := e.opts
	e.dev = startDev(e.top, &o)
	if o.apiPort != e.opts.apiPort || o.temporalPort != e.opts.temporalPort {
		t.Fatalf("bareflow dev came back on other ports (API %d, Temporal %d)", o.apiPort, o.temporalPort)
	}
}

// crashWorker kills bareflow worker with SIGKILL, leaves it down
// e2eRestartWait and starts another.
func (e *e2eLab) crashWorker() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.worker.kill(syscall.SIGKILL)
	time.Sleep(e2eRestartWait)
	e.worker = startWorkerProcess(e.top, e.opts)
}

// startWorkerProcess starts `bareflow worker` in the lab's namespace against
// the embedded Temporal of bareflow dev, with dev's secret key.
func startWorkerProcess(t *testing.T, o devOptions) *devProcess {
	t.Helper()
	argv := []string{"ip", "netns", "exec", o.netns, os.Args[0], "worker", "--database-url", o.dsn}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), execMainEnv+"=1", "BAREFLOW_POWER_SYNC_INTERVAL=0")
	cmd.Env = append(cmd.Env, o.extraEnv...)
	cmd.Env = append(cmd.Env,
		fmt.Sprintf("TEMPORAL_ADDRESS=127.0.0.1:%d", o.temporalPort),
		"BAREFLOW_SECRET_KEY_FILE="+filepath.Join(o.dataDir, secretKeyFileName),
		"BAREFLOW_LOG_LEVEL=info")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &devProcess{cmd: cmd, done: make(chan struct{})}
	up := make(chan struct{})
	var once sync.Once
	cmd.Stdout = &lockedWriter{p: p}
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.write(string(b))
		if strings.Contains(p.log(), "worker running") {
			once.Do(func() { close(up) })
		}
		return len(b), nil
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("bareflow worker output (end):\n%s", tail(p.log(), 60))
		}
	})
	select {
	case <-up:
	case <-p.done:
		t.Fatalf("bareflow worker exited before it was up:\n%s", p.log())
	case <-time.After(90 * time.Second):
		t.Fatalf("bareflow worker not up after 90s:\n%s", p.log())
	}
	return p
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// newE2ELab builds the rack's networks and starts bareflow in it. The
// machines' BMCs and VMs are started by addMachine.
func newE2ELab(t *testing.T) *e2eLab {
	t.Helper()
	if os.Geteuid() != 0 {
		qemulab.SkipOrFail(t, "network namespaces, taps and QEMU's bridge need root")
	}
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "ip", "ipmi_sim", "ipmitool", "dhcrelay", "iptables", "wipefs", "blkid", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			qemulab.SkipOrFail(t, "%s is not installed (packages qemu-system-x86, qemu-utils, iproute2, openipmi, ipmitool, isc-dhcp-relay, iptables, util-linux)", tool)
		}
	}
	for _, f := range []string{e2eOVMFCode, e2eOVMFVars, "/usr/lib/ipxe/qemu/efi-virtio.rom", "/usr/lib/ipxe/qemu/efi-e1000.rom"} {
		if _, err := os.Stat(f); err != nil {
			qemulab.SkipOrFail(t, "%s is missing (packages ovmf, ipxe-qemu)", f)
		}
	}
	e := &e2eLab{dsn: socketDSN(t, storetest.DSN(t)), work: t.TempDir(), top: t}
	base := os.Getenv("BAREFLOW_E2E_ARTIFACTS")
	if base == "" {
		base = filepath.Join("..", "..", "artifacts", "e2e")
	}
	e.artifacts = filepath.Join(base, t.Name())
	if err := os.RemoveAll(e.artifacts); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(e.artifacts, "histories"), 0o755); err != nil {
		t.Fatal(err)
	}

	// L: bareflow's segment, two machines on it (tap0, tap1) and one
	// loose tap for rack-a-01's second NIC; the BMC segment.
	e.l = qemulab.New(t, 2, 1)
	e.l.AdvertiseNoRouter(t)
	e.l.AddSegment(t, "bmc0", e2eBMCGW+"/24")

	// R: the remote segment behind a DHCP relay that also routes.
	e.r = &qemulab.Lab{NS: "bfx-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)}
	qemulab.Run(t, "ip", "netns", "add", e.r.NS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", e.r.NS).Run() })
	e.r.Exec(t, "ip", "link", "set", "lo", "up")
	e.r.Exec(t, "ip", "link", "add", qemulab.Bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
	e.r.Exec(t, "ip", "addr", "add", e2eRemoteGW+"/24", "dev", qemulab.Bridge)
	e.r.Exec(t, "ip", "link", "set", qemulab.Bridge, "up")
	e.r.Exec(t, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
	e.r.Exec(t, "ip", "link", "set", "tap0", "master", qemulab.Bridge)
	e.r.Exec(t, "ip", "link", "set", "tap0", "up")
	e.r.Taps = []string{"tap0"}
	e.l.Exec(t, "ip", "link", "add", "vup0", "type", "veth", "peer", "name", "vdn0", "netns", e.r.NS)
	e.l.Exec(t, "ip", "link", "set", "vup0", "master", qemulab.Bridge)
	e.l.Exec(t, "ip", "link", "set", "vup0", "up")
	e.r.Exec(t, "ip", "addr", "add", e2eRelayUp+"/24", "dev", "vdn0")
	e.r.Exec(t, "ip", "link", "set", "vdn0", "up")
	e.r.Exec(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	e.l.Exec(t, "ip", "route", "add", e2eRemoteNet, "via", e2eRelayUp)
	// The BMC network is reachable from the remote segment through L: IPMI
	// from bareflow to a BMC there comes from L's BMC address.
	e.r.Exec(t, "ip", "route", "add", e2eBMCNet, "via", e2eServerIP)
	e.r.AdvertiseNoRouter(t)
	e.startRelay(t)

	e.opts = newDevOptions(t)
	e.opts.dsn, e.opts.netns, e.opts.client = e.dsn, e.l.NS, qemulab.HTTPClient(e.l.NS)
	e.opts.extraArgs = []string{"--no-worker"}
	e.opts.extraEnv = []string{
		"BAREFLOW_LOG_LEVEL=info",
		"BAREFLOW_BMC_TIMEOUT=5s",
		"BAREFLOW_BOOT_INTERFACES=" + qemulab.Bridge,
		"BAREFLOW_BOOT_HTTP_ADDR=" + e2eBootHTTP,
		"BAREFLOW_BOOT_PUBLIC_URL=http://" + e2eBootHTTP,
		"BAREFLOW_BOOT_TFTP_ADDR=" + e2eServerIP + ":69",
		"BAREFLOW_BOOT_IPXE_DIR=/usr/lib/ipxe",
		"BAREFLOW_BOOT_RAMDISK_DIR=" + regRamdiskDir(t),
		"BAREFLOW_BOOT_KERNEL_ARGS=console=tty0 console=ttyS0,115200 bareflow.link_wait=10",
		"BAREFLOW_BOOT_AUTO_REGISTER=true",
	}
	e.dev = startDev(t, &e.opts)
	e.worker = startWorkerProcess(t, e.opts)
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(e.artifacts, "bareflow-dev.log"), []byte(e.api().log()), 0o644)
		e.mu.Lock()
		w := e.worker
		e.mu.Unlock()
		_ = os.WriteFile(filepath.Join(e.artifacts, "bareflow-worker.log"), []byte(w.log()), 0o644)
	})

	// bareflow's provisioning networks: the segment it answers on, and the
	// one behind the relay (no interface: reached through giaddr). No BMC
	// network: each BMC keeps the address it has, and registration sets
	// up bareflow's user on it in-band.
	for _, n := range []map[string]any{
		{"name": "rack-a", "kind": "provisioning", "cidr": "198.51.100.0/24", "gateway": e2eServerIP,
			"range_start": "198.51.100.50", "range_end": "198.51.100.60", "lease_seconds": 600, "interface": qemulab.Bridge},
		{"name": "rack-b", "kind": "provisioning", "cidr": e2eRemoteNet, "gateway": e2eRemoteGW,
			"range_start": "192.0.2.50", "range_end": "192.0.2.60", "lease_seconds": 600},
	} {
		var ae apiErr
		if code := e.call(t, "POST", "/networks", n, &ae); code != http.StatusCreated {
			t.Fatalf("create network %s: got %d %+v, want 201", n["name"], code, ae.Error)
		}
	}
	return e
}

// startRelay runs ISC's dhcrelay in R: requests heard on R's bridge go to
// bareflow's boot service with giaddr 192.0.2.1; replies come back through
// the veth.
func (e *e2eLab) startRelay(t *testing.T) {
	t.Helper()
	logf, err := os.Create(filepath.Join(e.work, "dhcrelay.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", e.r.NS, "dhcrelay", "-4", "-d", "-pf", filepath.Join(e.work, "dhcrelay.pid"),
		"-id", qemulab.Bridge, "-iu", "vdn0", e2eServerIP)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dhcrelay: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		b, _ := os.ReadFile(filepath.Join(e.work, "dhcrelay.log"))
		_ = os.WriteFile(filepath.Join(e.artifacts, "dhcrelay.log"), b, 0o644)
	})
}

// buildVMPower builds the vmpower hook once for the lab.
func (e *e2eLab) buildVMPower(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(e.work, "vmpower")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "bareflow/internal/lab/vmpower").CombinedOutput(); err != nil {
		t.Fatalf("build vmpower: %v\n%s", err, out)
	}
	return bin
}

// addMachine creates the machine's disks, its BMC (ipmi_sim with the
// vmpower hook as its hardware) and its machine folder. The VM is off.
func (e *e2eLab) addMachine(t *testing.T, m *e2eMachine, vmpower string, solPort int) {
	t.Helper()
	if e.nextTap >= len(e.l.Taps) {
		t.Fatalf("no tap left for %s", m.name)
	}
	m.dir = filepath.Join(e.work, m.name)
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m.ns, m.tap, m.solPort = e.l.NS, e.l.Taps[e.nextTap], solPort
	netmask := "255.255.255.0"
	gw := e2eBMCGW
	if m.relayed {
		m.ns, m.tap, gw = e.r.NS, e.r.Taps[0], e2eRemoteGW
	} else {
		e.nextTap++
	}
	if m.relayed {
		e.r.Exec(t, "ip", "addr", "add", m.bmcIP+"/24", "dev", qemulab.Bridge)
	} else {
		e.l.Exec(t, "ip", "addr", "add", m.bmcIP+"/24", "dev", "bmc0")
	}
	for i, d := range m.disks {
		qemulab.Run(t, "qemu-img", "create", "-q", "-f", "raw", m.diskFile(i), fmt.Sprintf("%dM", d.sizeMiB))
	}
	if m.firmware == contract.FirmwareUEFI {
		b, err := os.ReadFile(e2eOVMFVars)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(m.dir, "OVMF_VARS.fd"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hook := filepath.Join(m.dir, "machine")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nexec "+vmpower+" "+m.dir+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:00:00:e2:" + m.pxeMAC[len(m.pxeMAC)-5:])
	m.sim = ipmisim.Start(t, ipmisim.Options{
		Netns: m.ns, Host: m.bmcIP, Port: 623, VMSerial: true, Machine: hook,
		SOL: fmt.Sprintf("telnet:127.0.0.1:%d", solPort),
		LAN: &ipmisim.LANConfig{IPSource: "static", Addr: mustAddr(m.bmcIP), Netmask: mustAddr(netmask), Gateway: mustAddr(gw), MAC: mac},
	})
	if err := qemulab.WriteMachine(m.dir, m.qemuArgs(m.sim.VMPort, false), m.qemuArgs(m.sim.VMPort, true)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := qemulab.StopMachine(m.dir); err != nil {
			t.Errorf("%s: %v", m.name, err)
		}
		for _, f := range []string{"serial.log", "qemu.log"} {
			if b, err := os.ReadFile(filepath.Join(m.dir, f)); err == nil {
				_ = os.WriteFile(filepath.Join(e.artifacts, m.name+"-"+f), b, 0o644)
			}
		}
		_ = os.WriteFile(filepath.Join(e.artifacts, m.name+"-ipmi_sim.log"), []byte(m.sim.Log()), 0o644)
		if b, err := os.ReadFile(filepath.Join(m.sim.Dir, "machine.log")); err == nil {
			_ = os.WriteFile(filepath.Join(e.artifacts, m.name+"-bmc-hardware.log"), b, 0o644)
		}
	})
}

// followBMCAddresses makes each BMC answer at the address bareflow gives
// it in-band, as a real BMC does once its LAN settings change. ipmi_sim
// keeps listening where it started; so when a BMC's LAN store shows a new
// static address, a DNAT rule in L (where bareflow runs) sends IPMI for that
// address to where the BMC listens. Polled every 200 ms until the test ends.
func (e *e2eLab) followBMCAddresses(t *testing.T, machines []*e2eMachine) {
	t.Helper()
	done := make(chan struct{})
	stopped := make(chan struct{})
	mapped := map[string]string{}
	go func() {
		defer close(stopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, m := range machines {
				st, err := m.sim.LAN()
				if err != nil || st.IPSource != "static" || !st.Addr.IsValid() || st.Addr.IsUnspecified() {
					continue
				}
				addr := st.Addr.String()
				if addr == m.bmcIP || mapped[m.name] == addr {
					continue
				}
				out, err := exec.Command("ip", "netns", "exec", e.l.NS, "iptables", "-t", "nat", "-A", "OUTPUT",
					"-d", addr, "-p", "udp", "--dport", "623", "-j", "DNAT", "--to-destination", m.bmcIP+":623").CombinedOutput()
				if err != nil {
					t.Errorf("map BMC address %s to %s: %v: %s", addr, m.bmcIP, err, out)
					continue
				}
				mapped[m.name] = addr
				t.Logf("%s: its BMC was given %s in-band; IPMI to it now reaches %s", m.name, addr, m.bmcIP)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
}

// temporalClient dials the embedded Temporal from inside the lab's
// namespace.
func (e *e2eLab) temporalClient(t *testing.T) client.Client {
	t.Helper()
	ns := e.l.NS
	c, err := client.Dial(client.Options{
		HostPort: fmt.Sprintf("127.0.0.1:%d", e.opts.temporalPort),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return qemulab.DialInContext(ctx, ns, "tcp", addr, 10*time.Second)
			}),
		}},
	})
	if err != nil {
		t.Fatalf("dial Temporal in the lab: %v", err)
	}
	return c
}

// history reads a workflow run's history from Temporal.
func history(t *testing.T, c client.Client, workflowID, runID string) *historypb.History {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, ev)
	}
	return h
}

// saveHistory writes a history into the artefacts as JSON.
func (e *e2eLab) saveHistory(t *testing.T, h *historypb.History, name string) {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		t.Errorf("history %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(e.artifacts, "histories", name+".json"), append(b, '\n'), 0o644); err != nil {
		t.Errorf("history %s: %v", name, err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// e2eImage is an image the lab serves: its file, format and digest, and
// the size of the raw disk it holds.
type e2eImage struct {
	file, format, sha256 string
	rawSize              int64
}

// serveImages builds the bootable lab OS (BIOS and UEFI), serves it as
// raw.zst, raw and qcow2 from an HTTP server in the lab's namespace that
// sends each response at most e2eImageRate bytes per second, and registers
// the three images with bareflow.
func (e *e2eLab) serveImages(t *testing.T) map[string]e2eImage {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	img, err := osimage.BuildBootable(ctx, osImageCache(t), osimage.BootOptions{RamdiskDir: regRamdiskDir(t)})
	if err != nil {
		t.Fatalf("build the bootable image: %v", err)
	}
	www := t.TempDir()
	e.www = www
	zst, err := osimage.CompressZstd(ctx, img.Path, filepath.Join(www, "lab-os.raw.zst"))
	if err != nil {
		t.Fatal(err)
	}
	qcow, err := osimage.ConvertQCOW2(ctx, img.Path, filepath.Join(www, "lab-os.qcow2"), false)
	if err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(www, "lab-os.raw")
	if err := img.CopyTo(raw); err != nil {
		t.Fatal(err)
	}
	rawArt, err := osimage.FileArtifact(raw, osimage.FormatRaw)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]e2eImage{
		"lab-os-zst":   {"lab-os.raw.zst", "raw.zst", zst.SHA256, img.Size},
		"lab-os-raw":   {"lab-os.raw", "raw", rawArt.SHA256, img.Size},
		"lab-os-qcow2": {"lab-os.qcow2", "qcow2", qcow.SHA256, img.Size},
	}
	t.Logf("lab OS: %d MiB raw, %d KiB raw.zst, %d KiB qcow2, built or found in %.1fs",
		img.Size>>20, zst.Size>>10, qcow.Size>>10, time.Since(start).Seconds())

	var ln net.Listener
	if err := qemulab.InNetns(e.l.NS, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(e2eServerIP, e2eImagePort))
		return err
	}); err != nil {
		t.Fatalf("listen in the lab: %v", err)
	}
	files := http.FileServer(http.Dir(www))
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		files.ServeHTTP(&throttled{ResponseWriter: w, start: time.Now()}, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for name, im := range images {
		var out struct {
			ID string `json:"id"`
		}
		body := map[string]any{
			"name": name, "url": "http://" + net.JoinHostPort(e2eServerIP, e2eImagePort) + "/" + im.file,
			"format": im.format, "checksum_algo": "sha256", "checksum": im.sha256, "virtual_size": img.Size,
			"os_family": "debian", "boot_mode": "both",
		}
		if code := e.call(t, "POST", "/images", body, &out); code != http.StatusCreated {
			t.Fatalf("create image %s: got %d", name, code)
		}
	}
	return images
}

// throttled sends a response at most e2eImageRate bytes per second.
type throttled struct {
	http.ResponseWriter
	start time.Time
	sent  int64
}

func (w *throttled) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		chunk := p[:min(len(p), 64<<10)]
		m, err := w.ResponseWriter.Write(chunk)
		n += m
		w.sent += int64(m)
		if err != nil {
			return n, err
		}
		p = p[m:]
		if due := time.Duration(float64(w.sent) / e2eImageRate * float64(time.Second)); due > time.Since(w.start) {
			time.Sleep(due - time.Since(w.start))
		}
	}
	return n, nil
}
