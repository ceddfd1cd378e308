//go:build linux

package raid

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"bareflow/contract"
	"bareflow/internal/lab/qemulab"
	"bareflow/internal/ramdisk"
)

// Bounds of TestMDForReal.
const (
	mdCommandTimeout = 2 * time.Minute
	mdResolveTimeout = time.Minute
	vmBootTimeout    = 5 * time.Minute
	mdDiskBytes      = 128 << 20
)

// mdMachine is where TestMDForReal builds arrays: the four disks it made,
// and a runner for commands on the machine that holds them.
type mdMachine struct {
	where  string
	runner CommandRunner
	disks  []contract.Disk
}

// TestMDForReal builds Linux md arrays with the driver's own commands and
// tears them down again: a RAID 1 of two disks, then a RAID 10 of four.
// Each is planned from an inventory the package reads itself, applied,
// resolved to its /dev/mdN, checked in /proc/mdstat, then cleared by a
// layout that gives the disks back plain, after which no md superblock is
// left on them.
//
// It runs on this machine with four loop devices (sparse files) when the
// kernel has md, as root; otherwise it boots bareflow's ramdisk in QEMU
// with four virtio disks and runs the same code through the SSH adapter.
// It touches no block device it did not create. When neither can run it
// skips, or fails with BAREFLOW_REQUIRE_INTEGRATION=1.
func TestMDForReal(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds md arrays (-short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	m := mdMachineFor(ctx, t)
	t.Logf("building md arrays %s on %s", m.where, diskNames(m.disks))

	suffix := randomHex(3)
	steps := []struct {
		level contract.RAIDLevel
		name  string
		disks []contract.Disk
	}{
		{contract.RAID1, "r1x" + suffix, m.disks[:2]},
		{contract.RAID10, "r10x" + suffix, m.disks},
	}
	for _, s := range steps {
		if !t.Run(levelName(s.level), func(t *testing.T) { buildAndTearDown(ctx, t, m, s.level, s.name, s.disks) }) {
			return
		}
	}
	t.Run("PlanClear", func(t *testing.T) { buildAndClearAll(ctx, t, m, "c1x"+suffix, "c2x"+suffix) })
}

// buildAndClearAll builds two RAID 1 arrays on the four disks, then tears
// them down with PlanClear, as a wipe does: every array stopped, every
// member's superblock zeroed. Only the arrays on the test's disks are
// given to PlanClear, so that none of the machine's own is touched.
func buildAndClearAll(ctx context.Context, t *testing.T, m mdMachine, first, second string) {
	names := diskNames(m.disks)
	spec := contract.RAIDSpec{Arrays: []contract.RAIDArray{
		{Level: contract.RAID1, Controller: MDController, Name: first, Root: true, Disks: contract.DiskSelector{Slots: names[:2]}},
		{Level: contract.RAID1, Controller: MDController, Name: second, Disks: contract.DiskSelector{Slots: names[2:]}},
	}}
	l, err := Plan(spec, mdInventory(ctx, t, m))
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if applied, err := Apply(ctx, m.runner, l, func(s string) { t.Logf("apply %s", s) }); err != nil {
		t.Fatalf("Apply: %v\ndone: %q", err, applied.Done)
	}

	inv := mdInventory(ctx, t, m)
	for i := range inv.RAID {
		c := &inv.RAID[i]
		c.LogicalDisks = slices.DeleteFunc(c.LogicalDisks, func(ld contract.RAIDLogicalDisk) bool {
			return !slices.ContainsFunc(c.PhysicalDisks, func(d contract.RAIDPhysicalDisk) bool {
				return d.Enclosure == ld.ID && slices.Contains(names, d.Slot)
			})
		})
	}
	clear, err := PlanClear(inv)
	if err != nil {
		t.Fatalf("PlanClear: %v", err)
	}
	stops := 0
	for _, line := range argvLines(clear) {
		if strings.HasPrefix(line, "mdadm --stop ") {
			stops++
		}
	}
	if stops != 2 {
		t.Fatalf("teardown layout: got %q, want two arrays stopped", argvLines(clear))
	}
	if applied, err := Apply(ctx, m.runner, clear, func(s string) { t.Logf("clear %s", s) }); err != nil {
		t.Fatalf("Apply the teardown: %v\ndone: %q", err, applied.Done)
	}
	for _, d := range mdstat(ctx, t, m).PhysicalDisks {
		if slices.Contains(names, d.Slot) {
			t.Errorf("after PlanClear /proc/mdstat still has %s in %s", d.Slot, d.Enclosure)
		}
	}
	for _, n := range names {
		out, err := m.runner.Run(ctx, []string{"mdadm", "--examine", "/dev/" + n})
		if err == nil || !strings.Contains(err.Error()+string(out), "No md superblock") {
			t.Errorf("mdadm --examine /dev/%s after PlanClear: got %v, %q; want no md superblock", n, err, out)
		}
	}
}

// buildAndTearDown builds one array, checks it, and clears it.
func buildAndTearDown(ctx context.Context, t *testing.T, m mdMachine, level contract.RAIDLevel, name string, disks []contract.Disk) {
	names := diskNames(disks)
	spec := contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: level, Controller: MDController, Name: name, Root: true,
		Disks: contract.DiskSelector{Slots: names}}}}
	l, err := Plan(spec, mdInventory(ctx, t, m))
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	applied, err := Apply(ctx, m.runner, l, func(s string) { t.Logf("apply %s", s) })
	if err != nil {
		t.Fatalf("Apply: %v\ndone: %q", err, applied.Done)
	}
	if len(applied.Volumes) != 1 || applied.Volumes[0].ID != name || !applied.Volumes[0].Root {
		t.Fatalf("applied volumes: got %+v, want one root volume %q", applied.Volumes, name)
	}

	var vols []contract.BuiltVolume
	deadline := time.Now().Add(mdResolveTimeout)
	for {
		var found bool
		vols, found, err = ResolveDevices(ctx, m.runner, l, applied)
		if err != nil {
			t.Fatalf("ResolveDevices: %v", err)
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ResolveDevices: %s not found within %s: %+v", name, mdResolveTimeout, vols)
		}
		time.Sleep(time.Second)
	}
	dev := vols[0].Device
	if !regexp.MustCompile(`^/dev/md[0-9]+$`).MatchString(dev) {
		t.Fatalf("device of %s: got %q, want /dev/mdN", name, dev)
	}
	t.Logf("%s is %s, %d bytes", name, dev, vols[0].SizeBytes)

	// /proc/mdstat: the array, its level and exactly our disks.
	ctrl := mdstat(ctx, t, m)
	id := strings.TrimPrefix(dev, "/dev/")
	var ld *contract.RAIDLogicalDisk
	for i := range ctrl.LogicalDisks {
		if ctrl.LogicalDisks[i].ID == id {
			ld = &ctrl.LogicalDisks[i]
		}
	}
	if ld == nil {
		t.Fatalf("/proc/mdstat has no %s", id)
	}
	expect(t, "level in /proc/mdstat", ld.Level, "raid"+string(level))
	if !strings.HasPrefix(ld.State, "active") {
		t.Errorf("state of %s: got %q, want active", id, ld.State)
	}
	var members []string
	for _, d := range ctrl.PhysicalDisks {
		if d.Enclosure == id {
			members = append(members, d.Slot)
		}
	}
	slices.Sort(members)
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(members, want) {
		t.Errorf("members of %s: got %q, want %q", id, members, want)
	}
	// md keeps a little of each disk for its superblock.
	wantSize := int64(mdDiskBytes)
	if level == contract.RAID10 {
		wantSize = int64(len(disks)) / 2 * mdDiskBytes
	}
	if got := vols[0].SizeBytes; got <= wantSize*9/10 || got > wantSize {
		t.Errorf("size of %s: got %d, want a little less than %d", name, got, wantSize)
	}

	// Tear down with the driver's clear: the same disks, passed through.
	clear := contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAIDJBOD, Controller: MDController,
		Disks: contract.DiskSelector{Slots: names}}}}
	l, err = Plan(clear, mdInventory(ctx, t, m))
	if err != nil {
		t.Fatalf("Plan the teardown: %v", err)
	}
	if got := argvLines(l); !slices.Contains(got, "mdadm --stop /dev/"+id) {
		t.Fatalf("teardown layout: got %q, want it to stop %s", got, id)
	}
	if applied, err := Apply(ctx, m.runner, l, func(s string) { t.Logf("teardown %s", s) }); err != nil {
		t.Fatalf("Apply the teardown: %v\ndone: %q", err, applied.Done)
	}
	ctrl = mdstat(ctx, t, m)
	for _, d := range ctrl.PhysicalDisks {
		if slices.Contains(names, d.Slot) {
			t.Errorf("after the teardown /proc/mdstat still has %s in %s", d.Slot, d.Enclosure)
		}
	}
	for _, n := range names {
		out, err := m.runner.Run(ctx, []string{"mdadm", "--examine", "/dev/" + n})
		if err == nil || !strings.Contains(err.Error()+string(out), "No md superblock") {
			t.Errorf("mdadm --examine /dev/%s after the teardown: got %v, %q; want no md superblock", n, err, out)
		}
	}
}

// mdInventory is the inventory Plan gets: the test's disks, and the md
// arrays the package reads from the machine.
func mdInventory(ctx context.Context, t *testing.T, m mdMachine) contract.Inventory {
	t.Helper()
	ctrls, warnings := Inventory(ctx, m.runner, nil, func(tool string) bool { return tool == "mdadm" || tool == "cat" })
	if len(warnings) > 0 {
		t.Fatalf("inventory of md: %q", warnings)
	}
	return contract.Inventory{Disks: m.disks, RAID: ctrls}
}

// mdstat reads /proc/mdstat on the machine.
func mdstat(ctx context.Context, t *testing.T, m mdMachine) contract.RAIDController {
	t.Helper()
	out, err := m.runner.Run(ctx, []string{"cat", "/proc/mdstat"})
	if err != nil {
		t.Fatalf("cat /proc/mdstat: %v", err)
	}
	c, members, err := parseMdstat(out)
	if err != nil {
		t.Fatalf("/proc/mdstat: %v\n%s", err, out)
	}
	for _, ms := range members {
		c.PhysicalDisks = append(c.PhysicalDisks, ms...)
	}
	return c
}

func diskNames(ds []contract.Disk) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mdMachineFor returns this machine with loop devices when its kernel has
// md, else a QEMU VM running the ramdisk.
func mdMachineFor(ctx context.Context, t *testing.T) mdMachine {
	localWhy := localMDUnavailable(ctx)
	if localWhy == "" {
		return localMDMachine(ctx, t)
	}
	vmWhy := vmMDUnavailable()
	if vmWhy == "" {
		return vmMDMachine(ctx, t)
	}
	qemulab.SkipOrFail(t, "md cannot run here (%s) and the ramdisk VM cannot either (%s)", localWhy, vmWhy)
	return mdMachine{}
}

// localRunner runs commands on this machine.
type localRunner struct{}

func (localRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, mdCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// localMDUnavailable says why md cannot be tested on this machine, or "".
func localMDUnavailable(ctx context.Context) string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	for _, tool := range []string{"losetup", "mdadm", "wipefs", "modprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " is not installed"
		}
	}
	// The personalities may be modules; a kernel without md has no
	// /proc/mdstat even then.
	_, _ = localRunner{}.Run(ctx, []string{"modprobe", "-a", "md_mod", "raid1", "raid10"})
	b, err := os.ReadFile("/proc/mdstat")
	if err != nil {
		return "the kernel has no md (no /proc/mdstat)"
	}
	for _, p := range []string{"[raid1]", "[raid10]"} {
		if !bytes.Contains(b, []byte(p)) {
			return "the kernel has no " + strings.Trim(p, "[]") + " personality"
		}
	}
	return ""
}

// localMDMachine attaches four loop devices to sparse files. Cleanup stops
// any md array using them, then detaches them, whatever the test did.
func localMDMachine(ctx context.Context, t *testing.T) mdMachine {
	r := localRunner{}
	dir := t.TempDir()
	var disks []contract.Disk
	for i := range 4 {
		file := filepath.Join(dir, fmt.Sprintf("disk%d.img", i))
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(file, mdDiskBytes); err != nil {
			t.Fatal(err)
		}
		out, err := r.Run(ctx, []string{"losetup", "--find", "--show", file})
		if err != nil {
			t.Fatalf("losetup: %v", err)
		}
		dev := strings.TrimSpace(string(out))
		name := strings.TrimPrefix(dev, "/dev/")
		if !strings.HasPrefix(dev, "/dev/loop") || !blockName(name) {
			t.Fatalf("losetup gave %q, want /dev/loopN", dev)
		}
		t.Cleanup(func() {
			ctx := context.Background()
			if out, err := os.ReadFile("/proc/mdstat"); err == nil {
				if c, members, err := parseMdstat(out); err == nil {
					for i, ld := range c.LogicalDisks {
						if slices.ContainsFunc(members[i], func(d contract.RAIDPhysicalDisk) bool { return d.Slot == name }) {
							_, _ = r.Run(ctx, []string{"mdadm", "--stop", "/dev/" + ld.ID})
						}
					}
				}
			}
			if _, err := r.Run(ctx, []string{"losetup", "-d", dev}); err != nil {
				t.Errorf("detach %s: %v", dev, err)
			}
		})
		disks = append(disks, contract.Disk{Name: name, SizeBytes: mdDiskBytes, Type: contract.DiskHDD, Transport: "loop"})
	}
	return mdMachine{where: "on this machine's loop devices", runner: r, disks: disks}
}

// ramdiskDir is the built ramdisk: BAREFLOW_RAMDISK_DIR, or build/ramdisk
// of the repository (CI builds it before the tests).
func ramdiskDir() string {
	if d := os.Getenv("BAREFLOW_RAMDISK_DIR"); d != "" {
		return d
	}
	d, _ := filepath.Abs(filepath.Join("..", "..", "build", "ramdisk"))
	return d
}

// vmMDUnavailable says why the ramdisk VM cannot run, or "".
func vmMDUnavailable() string {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "qemu-system-x86_64 is not installed"
	}
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		if st, err := os.Stat(filepath.Join(ramdiskDir(), f)); err != nil || st.Size() == 0 {
			return "no ramdisk in " + ramdiskDir() + " (make ramdisk)"
		}
	}
	return ""
}

// sshRunner runs commands in the ramdisk through bareflow's SSH adapter,
// each argument quoted, as the workers do.
type sshRunner struct{ c *ramdisk.Client }

func (s sshRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = ramdisk.Quote(a)
	}
	res, err := s.c.Run(ctx, ramdisk.Command{Script: strings.Join(q, " "), Timeout: mdCommandTimeout})
	return res.Stdout, err
}

// vmMDMachine boots the ramdisk under QEMU (TCG, user networking with the
// SSH port forwarded to the host's loopback) with four virtio disks of
// sparse files, and connects to it with the host key whose fingerprint the
// ramdisk printed on its console.
func vmMDMachine(ctx context.Context, t *testing.T) mdMachine {
	dir := t.TempDir()
	_, signer, err := ramdisk.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	serial := filepath.Join(dir, "serial.log")
	key := base64.RawURLEncoding.EncodeToString([]byte(ramdisk.AuthorizedKey(signer, "bareflow-md-test")))
	args := []string{
		"-accel", "tcg", "-m", "1024", "-smp", "1", "-nographic", "-nodefaults", "-no-user-config",
		"-serial", "file:" + serial,
		"-kernel", filepath.Join(ramdiskDir(), "vmlinuz"), "-initrd", filepath.Join(ramdiskDir(), "initrd.img"),
		"-append", "console=ttyS0 bareflow.link_wait=3 bareflow.ssh_key=" + key,
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", port),
		"-device", "virtio-net-pci,netdev=n0",
		"-device", "virtio-rng-pci",
	}
	for i := range 4 {
		file := filepath.Join(dir, fmt.Sprintf("disk%d.img", i))
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(file, mdDiskBytes); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-drive", fmt.Sprintf("if=none,id=d%d,format=raw,file=%s", i, file),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=d%d,serial=bfmd%d", i, i))
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	logf, err := os.Create(filepath.Join(dir, "qemu.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start QEMU: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	tail := func() string {
		b, _ := os.ReadFile(serial)
		q, _ := os.ReadFile(filepath.Join(dir, "qemu.log"))
		s := string(b)
		if len(s) > 3000 {
			s = s[len(s)-3000:]
		}
		return s + "\n--- QEMU ---\n" + string(q)
	}

	// The ramdisk prints its host key's fingerprint when dropbear is up.
	start := time.Now()
	fpRe := regexp.MustCompile(`stage=sshd Fingerprint: (SHA256:[A-Za-z0-9+/=]+)`)
	var fingerprint string
	for fingerprint == "" {
		select {
		case <-exited:
			t.Fatalf("QEMU exited before the ramdisk was up:\n%s", tail())
		case <-ctx.Done():
			t.Fatalf("%v waiting for the ramdisk:\n%s", ctx.Err(), tail())
		case <-time.After(500 * time.Millisecond):
		}
		if time.Since(start) > vmBootTimeout {
			t.Fatalf("the ramdisk did not start sshd within %s:\n%s", vmBootTimeout, tail())
		}
		b, _ := os.ReadFile(serial)
		if m := fpRe.FindSubmatch(b); m != nil {
			fingerprint = string(m[1])
		}
	}
	t.Logf("ramdisk up in %.1fs (QEMU, TCG), host key %s", time.Since(start).Seconds(), fingerprint)

	// Learn the host key, accepting only the one the console showed.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var hostKey ssh.PublicKey
	for {
		probe, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
			User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, Timeout: 10 * time.Second,
			HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
			HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
				if ssh.FingerprintSHA256(k) != fingerprint {
					return fmt.Errorf("host key %s, the console showed %s", ssh.FingerprintSHA256(k), fingerprint)
				}
				hostKey = k
				return nil
			},
		})
		if err == nil {
			probe.Close()
			break
		}
		if time.Since(start) > vmBootTimeout {
			t.Fatalf("SSH to the ramdisk: %v\n%s", err, tail())
		}
		time.Sleep(time.Second)
	}
	c, err := ramdisk.Dial(ctx, ramdisk.Config{Addr: addr, HostKey: string(ssh.MarshalAuthorizedKey(hostKey)), Signer: signer})
	if err != nil {
		t.Fatalf("ramdisk.Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	r := sshRunner{c: c}

	if out, err := r.Run(ctx, []string{"modprobe", "-a", "md_mod", "raid1", "raid10"}); err != nil {
		t.Fatalf("modprobe in the ramdisk: %v %s", err, out)
	}
	// The disks, found by the serial numbers QEMU gave them.
	var disks []contract.Disk
	for i := range 4 {
		var name string
		for _, n := range []string{"vda", "vdb", "vdc", "vdd", "vde", "vdf"} {
			out, err := r.Run(ctx, []string{"cat", "/sys/block/" + n + "/serial"})
			if err == nil && strings.TrimSpace(string(out)) == fmt.Sprintf("bfmd%d", i) {
				name = n
				break
			}
		}
		if name == "" {
			out, _ := r.Run(ctx, []string{"ls", "-l", "/sys/block/"})
			t.Fatalf("no virtio disk with serial bfmd%d in the ramdisk:\n%s", i, out)
		}
		disks = append(disks, contract.Disk{Name: name, SizeBytes: mdDiskBytes, Type: contract.DiskHDD, Transport: "virtio", Serial: fmt.Sprintf("bfmd%d", i)})
	}
	return mdMachine{where: "in the ramdisk under QEMU, through SSH,", runner: r, disks: disks}
}
