//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/grpc"

	"bareflow/contract"
	"bareflow/internal/lab/qemulab"
)

// The VM of TestQEMUMakeRAID.
const (
	raidPXEMAC = "52:54:00:bf:02:01"
	raidSerial = "BFRAID0001"
	raidUUID   = "0d7e3c52-8a41-4f6b-b2c9-3456789abcde"
	// raidDiskCount virtio-blk disks of raidDiskMiB each: md RAID 10 over
	// them holds about twice raidDiskMiB.
	raidDiskCount = 4
	raidDiskMiB   = 256

	// raidOpTimeout bounds the MakeRAID operation, from the request to its
	// end: two inventory collections over SSH under TCG and the build.
	raidOpTimeout = 8 * time.Minute
	// raidRamdiskTimeoutSeconds bounds the operation's wait for a ramdisk,
	// should it not find the running one (the test fails then anyway).
	raidRamdiskTimeoutSeconds = 300
	// raidOpWait bounds the wait for an operation that should not have
	// started to end by itself, and then once it is canceled.
	raidOpWait = time.Minute
)

// raidBootSteps are the steps of an operation that boots the machine into
// the ramdisk rather than use the one it runs.
var raidBootSteps = []string{"boot_ramdisk", "waiting_for_power_on", "waiting_for_ramdisk"}

// raidMachine is the part of the API's machine TestQEMUMakeRAID reads.
type raidMachine struct {
	regMachine
	InventoryAt *time.Time             `json:"inventory_at"`
	RAID        []contract.BuiltVolume `json:"raid"`
	RootDevice  string                 `json:"root_device"`
}

// TestQEMUMakeRAID is the RAID issue end to end: in the QEMU lab, make-RAID
// on a VM with four virtio disks builds an md RAID 10, and the root disk
// chosen afterwards is the array.
//
// The lab is TestQEMURegister's (see qemuLab) with auto-registration off:
// the BMC cannot power a VM on (ipmi_sim's chassis power on does nothing to
// QEMU), so the machine is enrolled by its PXE MAC and registered with
// leave_in_ramdisk before QEMU starts — starting QEMU is powering it on by
// hand. Still in that ramdisk, a RAID 10 over three disks is refused by the
// API with nothing touched; then RAID 10 over the four disks is built. The
// operation must reuse the running ramdisk: QEMU is the same process, the
// ramdisk booted and phoned home once, the operation never showed a boot
// step, and its workflow ran no BMC activity.
//
// What is built is checked through the API (the volume, the root disk, the
// re-collected inventory) and independently of bareflow: the md superblocks
// on the four disk images, read from the host, and the guest kernel's own
// message on the serial console that the array runs with all four disks.
func TestQEMUMakeRAID(t *testing.T) {
	q := newQEMULab(t, 0, false)
	dev := q.dev

	// Enrolled by hand, registered with leave_in_ramdisk: the operation
	// waits for someone to power the machine on.
	var m raidMachine
	if code := dev.call(t, "POST", "/machines", dev.token, map[string]any{"name": "raid-vm", "pxe_mac": raidPXEMAC}, &m); code != http.StatusCreated {
		t.Fatalf("create machine: got %d, want 201", code)
	}
	var regOp apiOperation
	if code := dev.call(t, "POST", "/machines/"+m.ID+"/register", dev.token, map[string]any{"leave_in_ramdisk": true}, &regOp); code != http.StatusAccepted {
		t.Fatalf("register: got %d, want 202", code)
	}
	if op := dev.waitOperation(t, regOp.ID, "waiting_for_power_on", time.Minute); op.Step != "waiting_for_power_on" {
		t.Fatalf("register operation before QEMU starts: got %s at step %q (error %+v), want step waiting_for_power_on", op.State, op.Step, op.Error)
	}

	images := make([]string, raidDiskCount)
	var devices []string
	for i := range images {
		images[i] = filepath.Join(q.work, fmt.Sprintf("data%d.img", i))
		qemulab.Run(t, "qemu-img", "create", "-q", "-f", "raw", images[i], fmt.Sprintf("%dM", raidDiskMiB))
		devices = append(devices,
			"-drive", fmt.Sprintf("if=none,id=d%d,format=raw,file=%s", i, images[i]),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=d%d,serial=BFRAIDDISK%d", i, i))
	}
	vm := q.startVM(t, labVM{pxeMAC: raidPXEMAC, serial: raidSerial, uuid: raidUUID, devices: devices})
	pid := vm.Cmd.Process.Pid

	_, _, tl := waitRegistered(t, dev, vm, m.ID)
	t.Logf("register timings from QEMU start (-smp %d, -m %d, TCG): phone-home %.1fs (ramdisk's marker), inventory saved %.1fs, ready in the ramdisk %.1fs",
		regSMP, regMemMiB, tl.phoneHomeSerial.Seconds(), tl.inventory.Seconds(), tl.ready.Seconds())
	t.Logf("register steps as polled every 0.5s: %s", strings.Join(tl.steps, ", "))
	if !vm.Running() {
		t.Fatalf("QEMU exited after a registration with leave_in_ramdisk: %v", vm.Err)
	}
	var reg raidMachine
	if code := dev.call(t, "GET", "/machines/"+m.ID, dev.token, nil, &reg); code != http.StatusOK {
		t.Fatalf("get machine: got %d, want 200", code)
	}
	if reg.Hardware == nil {
		t.Fatal("the registered machine has no hardware inventory")
	}
	registeredAt := reg.InventoryAt

	// The four disks as the inventory names them.
	const mib = 1 << 20
	var slots []string
	for _, d := range reg.Hardware.Disks {
		t.Logf("disk %s: %d MiB, transport %q, type %q, serial %q", d.Name, d.SizeBytes/mib, d.Transport, d.Type, d.Serial)
		if d.Transport == "virtio" && d.SizeBytes == raidDiskMiB*mib {
			slots = append(slots, d.Name)
		}
	}
	slices.Sort(slots)
	if len(slots) != raidDiskCount || len(reg.Hardware.Disks) != raidDiskCount {
		t.Fatalf("disks: got %d, %d of them virtio of %d MiB (%q), want %d such and no other",
			len(reg.Hardware.Disks), len(slots), raidDiskMiB, slots, raidDiskCount)
	}

	t.Run("a spec the disks cannot satisfy is refused, nothing touched", func(t *testing.T) {
		var before, after struct {
			Items []apiOperation `json:"items"`
		}
		dev.call(t, "GET", "/machines/"+m.ID+"/operations", dev.token, nil, &before)
		bad := map[string]any{
			"arrays":           []map[string]any{{"level": "10", "controller": "md", "disks": map[string]any{"slots": slots[:3]}, "root": true}},
			"leave_in_ramdisk": true,
		}
		var e apiErr
		code := dev.call(t, "POST", "/machines/"+m.ID+"/raid", dev.token, bad, &e)
		if code != http.StatusBadRequest || e.Error.Code != "raid_spec_invalid" {
			t.Errorf("RAID 10 over %q: got %d %q (%s), want 400 raid_spec_invalid", slots[:3], code, e.Error.Code, e.Error.Message)
		} else {
			t.Logf("refused: %s", e.Error.Message)
		}
		if code == http.StatusAccepted {
			// An operation started anyway. Its workflow should still
			// refuse the spec (check_raid) before it touches anything;
			// it must end before the real one can start.
			var op apiOperation
			dev.call(t, "GET", "/machines/"+m.ID+"/operations", dev.token, nil, &after)
			if len(after.Items) > 0 {
				op = after.Items[0]
			}
			op = waitEnded(t, dev, op.ID, raidOpWait)
			t.Errorf("the refused spec started operation %s: it ended %s at step %q (%+v)", op.ID, op.State, op.Step, op.Error)
		}
		dev.call(t, "GET", "/machines/"+m.ID+"/operations", dev.token, nil, &after)
		if len(after.Items) != len(before.Items) {
			t.Errorf("operations of the machine: got %d after the refusal, want %d as before", len(after.Items), len(before.Items))
		}
		for _, img := range images {
			if err := blankEnds(img); err != nil {
				t.Errorf("disk %s: %v", filepath.Base(img), err)
			}
		}
	})

	// The build, in the ramdisk the registration left running.
	spec := map[string]any{
		"arrays":                  []map[string]any{{"level": "10", "controller": "md", "disks": map[string]any{"slots": slots}, "root": true}},
		"leave_in_ramdisk":        true,
		"ramdisk_timeout_seconds": raidRamdiskTimeoutSeconds,
	}
	start := time.Now()
	// An API error's "error" has the code and message of an operation's.
	var op apiOperation
	if code := dev.call(t, "POST", "/machines/"+m.ID+"/raid", dev.token, spec, &op); code != http.StatusAccepted {
		t.Fatalf("RAID 10 over %q: got %d %+v, want 202", slots, code, op.Error)
	}
	op, steps := waitRAID(t, q, vm, op.ID, start)
	raidTime := time.Since(start)
	var build time.Duration
	for i, st := range steps {
		if st.name == "build_raid" && i+1 < len(steps) {
			build = steps[i+1].at - st.at
		}
	}
	t.Logf("RAID operation: %.1fs from the request to the end, of which the build (step build_raid) %.1fs; steps as polled every 0.5s: %s",
		raidTime.Seconds(), build.Seconds(), formatSteps(steps))
	if op.State != "succeeded" {
		t.Fatalf("RAID operation %s ended %s at step %q: %+v", op.ID, op.State, op.Step, op.Error)
	}

	var got raidMachine
	if code := dev.call(t, "GET", "/machines/"+m.ID, dev.token, nil, &got); code != http.StatusOK {
		t.Fatalf("get machine: got %d, want 200", code)
	}

	t.Run("the running ramdisk was used", func(t *testing.T) {
		if !vm.Running() || vm.Cmd.Process.Pid != pid {
			t.Errorf("QEMU: running %v (pid %d), want the same process %d still running", vm.Running(), vm.Cmd.Process.Pid, pid)
		}
		// A second boot prints the stage markers again from init on.
		stages := vm.Stages()
		for _, name := range []string{"init", "phone-home"} {
			n := 0
			for _, st := range stages {
				if s, _, _ := strings.Cut(st, " "); s == name {
					n++
				}
			}
			if n != 1 {
				t.Errorf("ramdisk stage %s on the serial console: got %d times, want once (stages %q)", name, n, stages)
			}
		}
		acts, err := activityTypes(q, op)
		if err != nil {
			t.Fatalf("read the workflow history: %v", err)
		}
		t.Logf("activities of the RAID workflow: %s", strings.Join(acts, ", "))
		for _, want := range []string{"ProbeRamdisk", "BuildRAID", "RecordRAID"} {
			if !slices.Contains(acts, want) {
				t.Errorf("activities: no %s in %q", want, acts)
			}
		}
		for _, boot := range []string{"SetBootDevice", "SetPower", "WaitPowerState", "PowerOffRamdisk"} {
			if slices.Contains(acts, boot) {
				t.Errorf("activities: %s ran (%q), want no boot or power change", boot, acts)
			}
		}
		if got.State != "ready" || got.LastError != nil {
			t.Errorf("machine: got state %q, last error %+v, want ready and none", got.State, got.LastError)
		}
	})

	var vol contract.BuiltVolume
	t.Run("the array is the root disk", func(t *testing.T) {
		if len(got.RAID) != 1 {
			t.Fatalf("raid: got %+v, want one volume", got.RAID)
		}
		vol = got.RAID[0]
		t.Logf("volume: %+v; root_device %q", vol, got.RootDevice)
		if vol.Level != contract.RAID10 {
			t.Errorf("volume level: got %q, want %q", vol.Level, contract.RAID10)
		}
		if !strings.HasPrefix(path.Base(vol.Device), "md") {
			t.Errorf("volume device: got %q, want an md device", vol.Device)
		}
		if !vol.Root {
			t.Errorf("volume root: got false, want true")
		}
		// Four disks, two copies, less md's reserved space at each disk's
		// start.
		if lo, hi := int64(raidDiskCount/2*(raidDiskMiB-8))*mib, int64(raidDiskCount/2*raidDiskMiB)*mib; vol.SizeBytes < lo || vol.SizeBytes > hi {
			t.Errorf("volume size: got %d bytes (%d MiB), want from %d to %d MiB", vol.SizeBytes, vol.SizeBytes/mib, lo/mib, hi/mib)
		}
		// The root disk chosen afterwards is the array.
		if got.RootDevice != vol.Device || !strings.HasPrefix(vol.Device, "/dev/md") {
			t.Errorf("root_device: got %q, want the array %q", got.RootDevice, vol.Device)
		}
	})

	t.Run("inventory collected again", func(t *testing.T) {
		inv := got.Hardware
		if inv == nil || got.InventoryAt == nil || registeredAt == nil || !got.InventoryAt.After(*registeredAt) {
			t.Fatalf("inventory_at: got %v, want later than at registration (%v)", got.InventoryAt, registeredAt)
		}
		i := slices.IndexFunc(inv.RAID, func(c contract.RAIDController) bool { return c.Model == "Linux md" })
		if i < 0 {
			t.Fatalf("raid_controllers %+v: want Linux md", inv.RAID)
		}
		md := inv.RAID[i]
		t.Logf("Linux md (%s): logical %+v, members %+v", md.Tool, md.LogicalDisks, md.PhysicalDisks)
		if len(md.LogicalDisks) != 1 || md.LogicalDisks[0].ID != path.Base(vol.Device) || md.LogicalDisks[0].Level != "raid10" {
			t.Errorf("md arrays: got %+v, want %s, raid10", md.LogicalDisks, path.Base(vol.Device))
		}
		var members []string
		for _, d := range md.PhysicalDisks {
			members = append(members, d.Slot)
		}
		slices.Sort(members)
		if !slices.Equal(members, slots) {
			t.Errorf("md members: got %q, want %q", members, slots)
		}
	})

	t.Run("superblocks on the disk images", func(t *testing.T) {
		var roles []int
		var first mdSuperblock
		for i, img := range images {
			sb, err := readMDSuperblock(img)
			if err != nil {
				t.Errorf("disk %s: %v", filepath.Base(img), err)
				continue
			}
			t.Logf("disk %s: md %s superblock at %d, array %q uuid %x, level %d layout %#x, %d disks, chunk %d KiB, member size %d MiB (data at %d KiB), role %d",
				filepath.Base(img), sb.version, sb.offset, sb.name, sb.setUUID, sb.level, sb.layout, sb.raidDisks, sb.chunkSectors/2,
				sb.sizeSectors/2048, sb.dataOffset/2, sb.role)
			if sb.level != 10 || sb.raidDisks != raidDiskCount {
				t.Errorf("disk %s: level %d over %d disks, want 10 over %d", filepath.Base(img), sb.level, sb.raidDisks, raidDiskCount)
			}
			if i == 0 {
				first = sb
			} else if sb.setUUID != first.setUUID {
				t.Errorf("disk %s: array uuid %x, want %x as on the first disk", filepath.Base(img), sb.setUUID, first.setUUID)
			}
			roles = append(roles, int(sb.role))
		}
		slices.Sort(roles)
		if !slices.Equal(roles, []int{0, 1, 2, 3}) {
			t.Errorf("roles of the disks in the array: got %v, want 0 1 2 3", roles)
		}
		// Near layout, two copies: the array holds half its members' space.
		if first.layout == 0x102 {
			want := int64(first.sizeSectors) * 512 * raidDiskCount / 2
			if d := vol.SizeBytes - want; d > 0 || d < -int64(first.chunkSectors)*512 {
				t.Errorf("volume size %d bytes: the superblocks give %d (member size %d sectors)", vol.SizeBytes, want, first.sizeSectors)
			}
		}
	})

	t.Run("the guest kernel runs the array", func(t *testing.T) {
		log, err := os.ReadFile(vm.Serial)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`md/raid10:(md[\w-]+): active with (\d+) out of (\d+) devices`)
		ms := re.FindAllStringSubmatch(string(log), -1)
		if len(ms) == 0 {
			t.Fatalf("no %q on the serial console", re)
		}
		last := ms[len(ms)-1]
		for line := range strings.Lines(string(log)) {
			if strings.Contains(line, "md/") || strings.Contains(line, "] md") { // md/raid10:…, md: …, md127: …
				t.Logf("serial console: %s", strings.TrimSpace(line))
			}
		}
		if last[1] != path.Base(vol.Device) || last[2] != "4" || last[3] != "4" {
			t.Errorf("kernel: got %q, want %s active with 4 out of 4 devices", last[0], path.Base(vol.Device))
		}
	})
}

// opStep is an operation's step and when the test first saw it, counted
// from the request.
type opStep struct {
	name string
	at   time.Duration
}

// formatSteps is "name@1.0s, name@2.5s…".
func formatSteps(steps []opStep) string {
	parts := make([]string, len(steps))
	for i, st := range steps {
		parts[i] = fmt.Sprintf("%s@%.1fs", st.name, st.at.Seconds())
	}
	return strings.Join(parts, ", ")
}

// waitRAID polls the RAID operation until it ends and returns it with its
// steps as first seen. It fails the test when the operation shows a boot
// step (it should reuse the running ramdisk), QEMU exits, or raidOpTimeout
// passes.
func waitRAID(t *testing.T, q *qemuLab, vm *qemulab.QEMU, id string, start time.Time) (apiOperation, []opStep) {
	t.Helper()
	var (
		op    apiOperation
		steps []opStep
		last  string
	)
	deadline := start.Add(raidOpTimeout)
	for {
		if code := q.dev.call(t, "GET", "/operations/"+id, q.dev.token, nil, &op); code != http.StatusOK {
			t.Fatalf("get operation: got %d, want 200", code)
		}
		if op.Step != last {
			last = op.Step
			steps = append(steps, opStep{op.Step, time.Since(start)})
		}
		if slices.Contains(raidBootSteps, op.Step) {
			t.Fatalf("RAID operation at step %q (steps %s): it boots the machine instead of using the ramdisk it runs", op.Step, formatSteps(steps))
		}
		if contract.OperationState(op.State).Final() {
			return op, steps
		}
		if !vm.Running() {
			t.Fatalf("QEMU exited during the RAID operation (step %q): %v", op.Step, vm.Err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("RAID operation %s not done %s after the request: %s at step %q (steps %s)",
				id, raidOpTimeout, op.State, op.Step, formatSteps(steps))
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-q.dev.done:
			t.Fatalf("bareflow dev exited")
		}
	}
}

// waitEnded waits up to timeout for an operation to end by itself, then
// cancels it and waits as long again; it fails the test when the operation
// still runs.
func waitEnded(t *testing.T, dev *devProcess, id string, timeout time.Duration) apiOperation {
	t.Helper()
	var op apiOperation
	for _, cancel := range []bool{false, true} {
		if cancel {
			t.Logf("operation %s still %s at step %q after %s: canceling it", id, op.State, op.Step, timeout)
			dev.call(t, "POST", "/operations/"+id+"/cancel", dev.token, nil, nil)
		}
		for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if code := dev.call(t, "GET", "/operations/"+id, dev.token, nil, &op); code != http.StatusOK {
				t.Fatalf("get operation: got %d, want 200", code)
			}
			if contract.OperationState(op.State).Final() {
				return op
			}
		}
	}
	t.Fatalf("operation %s neither ended nor canceled: %s at step %q", id, op.State, op.Step)
	return op
}

// activityTypes lists the activities the operation's workflow run
// scheduled, in order, from its Temporal history: bareflow dev's Temporal
// server is reached inside the lab's namespace.
func activityTypes(q *qemuLab, op apiOperation) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort: fmt.Sprintf("127.0.0.1:%d", q.opts.temporalPort),
		Logger:   tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return qemulab.DialInContext(ctx, q.lab.NS, "tcp", addr, 10*time.Second)
			}),
		}},
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var acts []string
	it := c.GetWorkflowHistory(ctx, op.WorkflowID, op.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			acts = append(acts, a.GetActivityType().GetName())
		}
	}
	return acts, nil
}

// blankEnds checks that the first and the last MiB of a disk image are
// zero, as qemu-img created them: no partition table, no RAID metadata at
// either end.
func blankEnds(img string) error {
	f, err := os.Open(img)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	const n = 1 << 20
	buf := make([]byte, n)
	for _, off := range []int64{0, st.Size() - n} {
		if _, err := f.ReadAt(buf, off); err != nil {
			return err
		}
		if i := bytes.IndexFunc(buf, func(r rune) bool { return r != 0 }); i >= 0 {
			return fmt.Errorf("written at byte %d: want the first and last MiB untouched", off+int64(i))
		}
	}
	return nil
}

// mdSuperblock is what the test reads of a member's md v1 superblock
// (Linux's struct mdp_superblock_1, little-endian).
type mdSuperblock struct {
	// version is 1.0 (near the end), 1.1 (at the start) or 1.2 (4 KiB in),
	// offset where it was found.
	version string
	offset  int64
	setUUID [16]byte
	name    string
	level   int32
	layout  uint32
	// sizeSectors is the space of each member the array uses, dataOffset
	// where its data starts, both in 512-byte sectors.
	sizeSectors, dataOffset uint64
	chunkSectors, raidDisks uint32
	// role is the member's place in the array (0xffff spare, 0xfffe
	// faulty).
	role uint16
}

// mdMagic starts an md superblock.
const mdMagic = 0xa92b4efc

// readMDSuperblock finds the md v1 superblock of a member disk image where
// each of the three v1 formats puts it.
func readMDSuperblock(img string) (mdSuperblock, error) {
	f, err := os.Open(img)
	if err != nil {
		return mdSuperblock{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return mdSuperblock{}, err
	}
	sectors := st.Size() / 512
	for _, at := range []struct {
		version string
		offset  int64
	}{
		{"1.2", 4096},
		{"1.1", 0},
		{"1.0", ((sectors - 16) &^ 7) * 512},
	} {
		b := make([]byte, 4096)
		if _, err := f.ReadAt(b, at.offset); err != nil && !errors.Is(err, io.EOF) {
			return mdSuperblock{}, err
		}
		le := binary.LittleEndian
		if le.Uint32(b[0:]) != mdMagic || le.Uint32(b[4:]) != 1 {
			continue
		}
		sb := mdSuperblock{
			version: at.version, offset: at.offset,
			name:         string(bytes.TrimRight(b[32:64], "\x00")),
			level:        int32(le.Uint32(b[72:])),
			layout:       le.Uint32(b[76:]),
			sizeSectors:  le.Uint64(b[80:]),
			chunkSectors: le.Uint32(b[88:]),
			raidDisks:    le.Uint32(b[92:]),
			dataOffset:   le.Uint64(b[128:]),
		}
		copy(sb.setUUID[:], b[16:32])
		devNumber := le.Uint32(b[160:])
		if maxDev := le.Uint32(b[220:]); devNumber >= maxDev || 256+2*int(devNumber)+2 > len(b) {
			return sb, fmt.Errorf("md superblock at %d: device number %d out of range (max_dev %d)", at.offset, devNumber, maxDev)
		}
		sb.role = le.Uint16(b[256+2*devNumber:])
		return sb, nil
	}
	return mdSuperblock{}, errors.New("no md v1 superblock (at 4 KiB, at the start or near the end)")
}
