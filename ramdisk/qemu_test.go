//go:build linux

package ramdisk

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"bareflow/boot"
	"bareflow/contract"
	"bareflow/internal/lab/qemulab"
	"bareflow/internal/store"
	"bareflow/internal/store/storetest"
)

// Tunables of TestQEMUBootPhoneHomeSSH, for measuring:
//
//	BAREFLOW_RAMDISK_DIR    the built ramdisk (default: build/ramdisk of the repo)
//	BAREFLOW_RAMDISK_BOOTS  how many boots to time (default 1; the median is logged)
//	BAREFLOW_RAMDISK_MEM    the VM's memory in MiB (default 1024)
//	BAREFLOW_RAMDISK_WORK   keep the disks and serial logs in this folder
const (
	envDir   = "BAREFLOW_RAMDISK_DIR"
	envBoots = "BAREFLOW_RAMDISK_BOOTS"
	envMem   = "BAREFLOW_RAMDISK_MEM"
	envWork  = "BAREFLOW_RAMDISK_WORK"
)

const (
	// phoneHomeTimeout bounds one boot, QEMU start to phone-home.
	phoneHomeTimeout = 5 * time.Minute
	pxeMAC           = "52:54:00:bf:00:01"
	secondMAC        = "52:54:00:bf:00:02"
	serverIP         = "198.51.100.1"
	httpPort         = "8081"
	smbiosSerial     = "BFRAMDISK0001"
)

// ramdiskDir is the built ramdisk. With BAREFLOW_REQUIRE_INTEGRATION=1 (CI)
// `make ramdisk` always runs first: it installs the packages of packages.txt
// that are missing (QEMU and the iPXE ROMs among them) and rebuilds the
// ramdisk when an input changed; when nothing did, it takes a few seconds.
func ramdiskDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(envDir)
	if dir == "" {
		dir = filepath.Join("..", "build", "ramdisk")
	}
	dir, _ = filepath.Abs(dir)
	have := func() bool {
		for _, f := range []string{"vmlinuz", "initrd.img"} {
			if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
				return false
			}
		}
		return true
	}
	if os.Getenv(qemulab.RequireIntegrationEnv) != "1" {
		if have() {
			return dir
		}
		t.Skipf("skipping: no ramdisk in %s (run `make ramdisk`, or set %s=1 to build it here)", dir, qemulab.RequireIntegrationEnv)
	}
	if os.Getenv(envDir) != "" {
		if !have() {
			t.Fatalf("no ramdisk in %s=%s", envDir, dir)
		}
		return dir
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "ramdisk")
	cmd.Dir = ".."
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make ramdisk: %v\n%s", err, out)
	}
	t.Logf("make ramdisk took %v", time.Since(start).Round(time.Second))
	if !have() {
		t.Fatalf("make ramdisk left no vmlinuz and initrd.img in %s", dir)
	}
	return dir
}

// toolChecks reads tools.txt: each tool with the flags that print its
// version.
func toolChecks(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open("tools.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		flags := "--version"
		if len(fields) > 1 {
			flags = strings.Join(fields[1:], " ")
		}
		if flags == "-" {
			flags = ""
		}
		out = append(out, [2]string{fields[0], flags})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestQEMUBootPhoneHomeSSH boots the ramdisk in QEMU (software emulation)
// through bareflow's boot service: the VM's iPXE ROM gets its address and
// the URL of its script from bareflow's DHCP on a bridge in a network
// namespace, loads the kernel and initrd over bareflow's HTTP boot, and the
// ramdisk phones home. The test then opens SSH sessions with the host key
// from phone-home pinned (a wrong key is refused), runs every tool of
// tools.txt and checks the disks (virtio-blk, AHCI, megasas) and NICs.
func TestQEMUBootPhoneHomeSSH(t *testing.T) {
	if os.Geteuid() != 0 {
		qemulab.SkipOrFail(t, "network namespaces, taps and QEMU's bridge need root")
	}
	dir := ramdiskDir(t)
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			qemulab.SkipOrFail(t, "%s is not installed (packages qemu-system-x86, qemu-utils, iproute2)", tool)
		}
	}
	if _, err := os.Stat("/usr/lib/ipxe/qemu/efi-virtio.rom"); err != nil {
		qemulab.SkipOrFail(t, "the iPXE ROMs for QEMU are not installed (package ipxe-qemu)")
	}
	boots := 1
	if v := os.Getenv(envBoots); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 20 {
			t.Fatalf("%s=%q: want 1-20", envBoots, v)
		}
		boots = n
	}
	mem := "1024"
	if v := os.Getenv(envMem); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 64 {
			t.Fatalf("%s=%q: want MiB, at least 64", envMem, v)
		}
		mem = v
	}

	st := storetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(boots)*phoneHomeTimeout+5*time.Minute)
	defer cancel()
	// tap0 on the bridge for the PXE NIC; tap1, on no network, for a second
	// NIC that the ramdisk must report although it gets no lease.
	l := qemulab.New(t, 1, 1)
	l.AdvertiseNoRouter(t)

	// bareflow's side: the segment, the machine with its PXE MAC, and a
	// workflow waiting for its ramdisk.
	_, err := st.CreateNetwork(ctx, store.Network{
		Name: "lab", Kind: store.NetworkProvisioning, CIDR: netip.MustParsePrefix("198.51.100.0/24"),
		Gateway: netip.MustParseAddr(serverIP), RangeStart: netip.MustParseAddr("198.51.100.50"),
		RangeEnd: netip.MustParseAddr("198.51.100.60"), LeaseSeconds: 600, Interface: "br0",
	})
	if err != nil {
		t.Fatal(err)
	}
	hw, _ := net.ParseMAC(pxeMAC)
	m, err := st.CreateMachine(ctx, store.MachineCreate{Name: "qemu-1", PXEMAC: hw})
	if err != nil {
		t.Fatal(err)
	}
	workflowID := contract.MachineWorkflowID(m.ID)

	// bareflow's SSH key, authorised in the ramdisk through the command line.
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " bareflow-test"

	ipxeDir := "/usr/lib/ipxe"
	if _, err := os.Stat(filepath.Join(ipxeDir, "undionly.kpxe")); err != nil {
		ipxeDir = t.TempDir() // TFTP serves nothing then; the QEMU ROM is iPXE already
	}
	capture := newSignalCapture()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := boot.New(boot.Config{
		Interfaces: []string{"br0"},
		HTTPAddr:   serverIP + ":" + httpPort,
		PublicURL:  "http://" + serverIP + ":" + httpPort,
		TFTPAddr:   serverIP + ":69",
		IPXEDir:    ipxeDir,
		RamdiskDir: dir,
		KernelArgs: "console=tty0 console=ttyS0,115200 bareflow.link_wait=10",
		// The ramdisk gets bareflow's key from the command line.
		SSHAuthorizedKey: authorized,
	}, st, capture, logger)
	if err != nil {
		t.Fatal(err)
	}
	// The service runs on a thread inside the namespace: its sockets (DHCP
	// on br0, HTTP, TFTP) are opened there before Run starts goroutines,
	// which run on the host's threads (the database is on the host's
	// loopback).
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() {
		runDone <- qemulab.InNetns(l.NS, func() error { return svc.Run(runCtx) })
	}()
	t.Cleanup(func() {
		stopRun()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("boot service: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("boot service did not stop within 15s")
		}
	})
	waitHTTP(t, l.NS, serverIP+":"+httpPort, runDone)

	// Disks: virtio-blk, AHCI, and one behind the emulated MegaRAID.
	work := t.TempDir()
	if w := os.Getenv(envWork); w != "" {
		if err := os.MkdirAll(w, 0o755); err != nil {
			t.Fatal(err)
		}
		work = w
	}
	for _, d := range []string{"virtio", "ahci", "megasas"} {
		qemulab.Run(t, "qemu-img", "create", "-q", "-f", "raw", filepath.Join(work, d+".img"), "64M")
	}
	var timings []time.Duration
	var ready contract.RamdiskReady
	var vm *qemulab.QEMU
	for i := range boots {
		if _, err := st.SetBootIntent(ctx, store.BootIntent{MachineID: m.ID, Purpose: store.BootPurposeRamdisk,
			WorkflowID: workflowID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if vm != nil {
			vm.Stop(t)
		}
		serial := filepath.Join(work, fmt.Sprintf("serial-%d.log", i))
		qmp := filepath.Join(work, fmt.Sprintf("qmp-%d.sock", i))
		vm = qemulab.StartQEMU(t, l.NS, qemuArgs(work, serial, qmp, mem), serial, qmp)
		ready, err = waitPhoneHome(ctx, vm, capture)
		if err != nil {
			t.Fatalf("boot %d: %v\nstages: %q\nserial console (end):\n%s", i+1, err, vm.Stages(), vm.SerialTail(60))
		}
		took := time.Since(vm.Started)
		timings = append(timings, took)
		t.Logf("boot %d: QEMU start → phone-home %.1fs; stages %q", i+1, took.Seconds(), vm.Stages())
	}
	sorted := slices.Clone(timings)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	t.Logf("QEMU start → phone-home over %d boot(s): median %.1fs, min %.1fs, max %.1fs (-m %s, 1 vCPU, TCG)",
		len(sorted), sorted[len(sorted)/2].Seconds(), sorted[0].Seconds(), sorted[len(sorted)-1].Seconds(), mem)

	// What phone-home reported.
	if ready.MachineID != m.ID {
		t.Errorf("phone-home machine %q, want %q", ready.MachineID, m.ID)
	}
	if !slices.Contains(ready.MACs, pxeMAC) || !slices.Contains(ready.MACs, secondMAC) {
		t.Errorf("phone-home MACs %q, want both %s and %s", ready.MACs, pxeMAC, secondMAC)
	}
	addr, err := netip.ParseAddr(ready.Addr)
	if err != nil || addr.Less(netip.MustParseAddr("198.51.100.50")) || netip.MustParseAddr("198.51.100.60").Less(addr) {
		t.Fatalf("phone-home address %q: want one of the pool 198.51.100.50-60", ready.Addr)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(ready.SSHHostKey))
	if err != nil {
		t.Fatalf("phone-home host key %q: %v", ready.SSHHostKey, err)
	}
	if _, err := st.GetBootIntent(ctx, m.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Errorf("boot intent: %v", err)
	}
	sshAddr := net.JoinHostPort(ready.Addr, "22")

	// A wrong pinned host key is refused, and so is a password.
	wrongPub, _, _ := ed25519.GenerateKey(nil)
	wrongKey, err := ssh.NewPublicKey(wrongPub)
	if err != nil {
		t.Fatal(err)
	}
	// The client offers only the pinned key's algorithm: with x/crypto's
	// default list (RSA first) dropbear 2022.83, holding only an ed25519 key,
	// drops the connection (rsa.c: assertion `key != NULL').
	if c, err := sshDial(l.NS, sshAddr, &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(wrongKey), HostKeyAlgorithms: []string{wrongKey.Type()}, Timeout: 30 * time.Second}); err == nil {
		c.Close()
		t.Fatal("SSH with a wrong pinned host key: connected, want refused")
	} else if !strings.Contains(err.Error(), "host key mismatch") {
		t.Errorf("SSH with a wrong pinned host key: got %v, want a host key mismatch", err)
	}
	if c, err := sshDial(l.NS, sshAddr, &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.Password("")},
		HostKeyCallback: ssh.FixedHostKey(hostKey), HostKeyAlgorithms: []string{hostKey.Type()}, Timeout: 30 * time.Second}); err == nil {
		c.Close()
		t.Fatal("SSH with an empty password: connected, want refused (public key only)")
	}

	c, err := sshDial(l.NS, sshAddr, &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey), HostKeyAlgorithms: []string{hostKey.Type()}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("SSH with the host key from phone-home: %v\nserial console (end):\n%s", err, vm.SerialTail(40))
	}
	defer c.Close()
	sh := func(cmd string) (string, error) {
		s, err := c.NewSession()
		if err != nil {
			return "", err
		}
		defer s.Close()
		out, err := s.CombinedOutput(cmd)
		return string(out), err
	}

	// Every tool runs.
	for _, tc := range toolChecks(t) {
		out, err := sh(tc[0] + " " + tc[1] + " 2>&1")
		var exit *ssh.ExitError
		if errors.As(err, &exit) && exit.ExitStatus() != 127 && exit.ExitStatus() != 126 &&
			!strings.Contains(out, "error while loading shared libraries") && strings.TrimSpace(out) != "" {
			err = nil // usage output with a non-zero status (resize2fs -h, dropbearkey -h)
		}
		// The real program, not a busybox applet of the same name.
		if err != nil || strings.Contains(out, "error while loading shared libraries") || strings.Contains(out, "not found") ||
			strings.HasPrefix(strings.TrimSpace(out), "BusyBox") {
			t.Errorf("%s %s: %v: %s", tc[0], tc[1], err, out)
			continue
		}
		first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		t.Logf("%-12s %s", tc[0], first)
	}

	// Disks: the virtio-blk disk, and SCSI disks behind AHCI and megaraid_sas.
	out, err := sh(`for d in /sys/block/*; do n=${d##*/}; case $n in loop*|ram*) continue;; esac; ` +
		`h=$(cat $d/device/../../scsi_host/*/proc_name 2>/dev/null); echo "$n ${h:-none}"; done; lsblk -d -n -o NAME,SIZE,TYPE`)
	if err != nil {
		t.Fatalf("disks: %v: %s", err, out)
	}
	t.Logf("disks:\n%s", out)
	disks := map[string]string{}
	lsblkDisks := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2:
			disks[f[0]] = f[1]
		case len(f) == 3 && f[2] == "disk":
			lsblkDisks++
		}
	}
	var haveVirtio, haveAHCI, haveMegasas bool
	for name, host := range disks {
		haveVirtio = haveVirtio || strings.HasPrefix(name, "vd")
		haveAHCI = haveAHCI || host == "ahci"
		haveMegasas = haveMegasas || host == "megaraid_sas"
	}
	if !haveVirtio || !haveAHCI || !haveMegasas || lsblkDisks != 3 {
		t.Errorf("disks %v, lsblk %d disks: want 3 — a virtio-blk disk, an AHCI disk and a megaraid_sas disk", disks, lsblkDisks)
	}

	// NICs, the machine's SMBIOS serial, the PCI devices, the modules.
	for _, chk := range []struct{ cmd, want string }{
		{"cat /sys/class/net/*/address", pxeMAC},
		{"cat /sys/class/net/*/address", secondMAC},
		{"ip -o -4 addr show", ready.Addr + "/24"},
		{"dmidecode -s system-serial-number", smbiosSerial},
		{"lspci", "MegaRAID"},
		{"lsmod", "megaraid_sas"},
		{"lsmod", "virtio_net"},
		{"lsmod", "e1000e"},
		{"ls /dev/ipmi0 2>/dev/null || echo no-bmc; lsmod", "ipmi_devintf"},
		// qemu-img reads an image over HTTP through its curl module: here
		// the kernel, from bareflow's HTTP boot.
		{"qemu-img info http://" + serverIP + ":" + httpPort + "/boot/v1/files/vmlinuz", "file format: raw"},
		{"pidof acpid", ""},
		// bareflow's own image writer, static.
		{"bareflow-imagewriter -h 2>&1; true", "-checksum"},
		{"free -m", "Mem:"},
	} {
		out, err := sh(chk.cmd)
		if err != nil || !strings.Contains(out, chk.want) {
			t.Errorf("%s: %v: got\n%s\nwant %q in it", chk.cmd, err, out, chk.want)
		}
		if chk.cmd == "free -m" {
			t.Logf("memory in the ramdisk (-m %s):\n%s", mem, out)
		}
	}
	if out, err := sh("cat /run/bareflow/init.log"); err == nil {
		t.Logf("init log (uptime, stage):\n%s", out)
	}

	// The ACPI power button powers the ramdisk off (acpid).
	c.Close()
	pressed := time.Now()
	if _, err := qemulab.QMPCommand(vm.QMP, "system_powerdown"); err != nil {
		t.Fatalf("QMP system_powerdown: %v", err)
	}
	select {
	case <-vm.Exited:
		t.Logf("power button: the ramdisk powered off %.1fs after system_powerdown", time.Since(pressed).Seconds())
	case <-time.After(60 * time.Second):
		t.Errorf("power button: QEMU still running 60s after system_powerdown\n%s", vm.SerialTail(20))
	}
}

// qemuArgs is the VM: 1 vCPU under TCG, a virtio-net NIC that PXE-boots
// with iPXE, a second NIC (e1000e, no ROM, on no network), the three disks, SMBIOS
// strings, the serial console in a file and QMP on a unix socket.
func qemuArgs(work, serial, qmp, mem string) []string {
	drive := func(id, name string) string {
		return "if=none,id=" + id + ",format=raw,file=" + filepath.Join(work, name+".img")
	}
	return []string{
		"-accel", "tcg", "-m", mem, "-smp", "1", "-nographic", "-nodefaults", "-no-user-config",
		"-serial", "file:" + serial,
		"-qmp", "unix:" + qmp + ",server=on,wait=off",
		"-smbios", "type=1,manufacturer=bareflow,product=ramdisk-lab,serial=" + smbiosSerial,
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=" + pxeMAC + ",bootindex=1",
		"-netdev", "tap,id=n1,ifname=tap1,script=no,downscript=no",
		"-device", "e1000e,netdev=n1,mac=" + secondMAC + ",romfile=",
		"-boot", "order=n",
		"-drive", drive("d0", "virtio"), "-device", "virtio-blk-pci,drive=d0",
		"-device", "ahci,id=a0", "-drive", drive("d1", "ahci"), "-device", "ide-hd,drive=d1,bus=a0.0",
		"-device", "megasas,id=m0", "-drive", drive("d2", "megasas"), "-device", "scsi-hd,drive=d2,bus=m0.0",
		"-device", "virtio-rng-pci",
	}
}

// waitHTTP waits (bounded) until HTTP boot answers inside the namespace.
func waitHTTP(t *testing.T, ns, addr string, runDone chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-runDone:
			runDone <- err
			t.Fatalf("boot service stopped: %v", err)
		default:
		}
		conn, err := qemulab.DialIn(ns, addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTP boot on %s did not answer within 20s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitPhoneHome waits for the ramdisk's RamdiskReady signal, failing early
// when QEMU exits.
func waitPhoneHome(ctx context.Context, vm *qemulab.QEMU, capture *signalCapture) (contract.RamdiskReady, error) {
	timer := time.NewTimer(phoneHomeTimeout)
	defer timer.Stop()
	select {
	case r := <-capture.ready:
		return r, nil
	case <-vm.Exited:
		return contract.RamdiskReady{}, fmt.Errorf("QEMU exited before phone-home: %v", vm.Err)
	case <-timer.C:
		return contract.RamdiskReady{}, fmt.Errorf("no phone-home within %v of QEMU start", phoneHomeTimeout)
	case <-ctx.Done():
		return contract.RamdiskReady{}, ctx.Err()
	}
}

// sshDial connects from inside the namespace.
// sshDial opens an SSH client inside the namespace. A network failure (a
// guest starved of CPU under emulation answers late) is tried again for up
// to two minutes; an SSH refusal (host key, authentication) is returned at
// once.
func sshDial(ns, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := sshDialOnce(ns, addr, cfg)
		var netErr net.Error
		retry := errors.As(err, &netErr) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ECONNREFUSED) ||
			errors.Is(err, io.EOF)
		if err == nil || !retry || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(2 * time.Second)
	}
}

func sshDialOnce(ns, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	conn, err := qemulab.DialIn(ns, addr, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(cfg.Timeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}
