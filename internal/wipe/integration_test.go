//go:build linux

package wipe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of the loop device tests.
const (
	loopTestTimeout = 5 * time.Minute
	eraseWait       = 2 * time.Minute
	nodeWait        = 10 * time.Second
)

// needLoops skips the test (or fails it with
// BAREFLOW_REQUIRE_INTEGRATION=1) unless it runs as root with the tools
// the loop device tests use.
func needLoops(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: uses loop devices (-short)")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for loop devices")
	}
	for _, tool := range []string{"losetup", "sgdisk", "wipefs", "blkid", "blkdiscard", "blockdev", "mkfs.ext4", "mkfs.vfat",
		"mount", "umount", "dd", "cmp", "setsid", "mdadm", "partx"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "%s not found", tool)
		}
	}
}

// host runs a command on this machine for the test's own set-up.
func host(t *testing.T, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// loopDisk is a loop device over a sparse file of the test.
type loopDisk struct {
	dev, name string
	size      int64
}

// newLoop attaches a loop device of size bytes, with partition scanning
// when asked; cleanup detaches it whatever the test did.
func newLoop(t *testing.T, size int64, partscan bool) loopDisk {
	t.Helper()
	file := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
	args := []string{"losetup", "--find", "--show"}
	if partscan {
		args = append(args, "--partscan")
	}
	out, err := exec.Command(args[0], append(args[1:], file)...).CombinedOutput()
	if err != nil {
		skipOrFail(t, "no loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	name, err := diskName(dev)
	if err != nil {
		t.Fatalf("losetup gave %q: %v", dev, err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("detach %s: %v: %s", dev, err, out)
		}
	})
	// A loop device detached while a partition was open keeps that
	// partition in the kernel into its next use; start without.
	if stale, _ := filepath.Glob(filepath.Join("/sys/block", name, name+"p*")); len(stale) > 0 {
		if out, err := exec.Command("partx", "-d", dev).CombinedOutput(); err != nil {
			t.Fatalf("%s comes with stale partitions %q that partx -d cannot drop: %v: %s", dev, stale, err, out)
		}
	}
	return loopDisk{dev: dev, name: name, size: size}
}

// waitNode waits for the device node of a partition to appear (devtmpfs
// makes it shortly after the kernel adds the partition).
func waitNode(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(nodeWait)
	for {
		if st, err := os.Stat(path); err == nil && st.Mode()&os.ModeDevice != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", path, nodeWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeAt writes b at offset off of the device, through to it.
func writeAt(t *testing.T, dev string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// readAll reads the whole device, past the page cache's stale pages.
func readAll(t *testing.T, d loopDisk) []byte {
	t.Helper()
	host(t, "blockdev", "--flushbufs", d.dev)
	b, err := os.ReadFile(d.dev)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != d.size {
		t.Fatalf("read %d bytes of %s, want %d", len(b), d.dev, d.size)
	}
	return b
}

// fillRandom fills the device with random data.
func fillRandom(t *testing.T, d loopDisk) {
	t.Helper()
	b := make([]byte, d.size)
	_, _ = rand.Read(b)
	writeAt(t, d.dev, 0, b)
}

// firstNonZero is the offset of the first byte of b[from:to] that is not
// zero, or -1.
func firstNonZero(b []byte, from, to int64) int64 {
	const block = 64 << 10
	zero := make([]byte, block)
	for i := from; i < to; i += block {
		end := min(i+block, to)
		if bytes.Equal(b[i:end], zero[:end-i]) {
			continue
		}
		for j := i; j < end; j++ {
			if b[j] != 0 {
				return j
			}
		}
	}
	return -1
}

// mdSuperblock is an md v1.x superblock of a two-disk RAID 1 member as
// mdadm writes it, for a device of devSectors sectors, recording that it
// sits at sector at: with its checksum, blkid reports the device as a
// linux_raid_member and mdadm --examine reads it.
func mdSuperblock(at, dataOffset, dataSectors uint64) []byte {
	b := make([]byte, 4096)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 0xa92b4efc) // magic
	le.PutUint32(b[4:], 1)          // major version
	_, _ = rand.Read(b[16:32])      // set UUID
	copy(b[32:64], "bfwipe:0")      // set name
	now := uint64(time.Now().Unix())
	le.PutUint64(b[64:], now)         // ctime
	le.PutUint32(b[72:], 1)           // level
	le.PutUint64(b[80:], dataSectors) // size
	le.PutUint32(b[92:], 2)           // raid disks
	le.PutUint64(b[128:], dataOffset) // data offset
	le.PutUint64(b[136:], dataSectors)
	le.PutUint64(b[144:], at)    // super offset
	_, _ = rand.Read(b[168:184]) // device UUID
	le.PutUint64(b[192:], now)   // utime
	le.PutUint64(b[200:], 1)     // events
	le.PutUint64(b[208:], ^uint64(0))
	le.PutUint32(b[220:], 2) // max_dev
	le.PutUint16(b[256:], 0) // roles
	le.PutUint16(b[258:], 1)
	var sum uint64
	for i := 0; i < 256+2*2; i += 4 {
		sum += uint64(le.Uint32(b[i:]))
	}
	le.PutUint32(b[216:], uint32((sum&0xffffffff)+(sum>>32)))
	return b
}

// blkidType is what blkid's low-level probe finds at offset off of dev
// ("" for nothing).
func blkidType(t *testing.T, dev string, off int64) string {
	t.Helper()
	out, err := exec.Command("blkid", "-p", "-o", "export", "-O", strconv.FormatInt(off, 10), dev).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		return ""
	}
	if err != nil {
		t.Fatalf("blkid -p -O %d %s: %v: %s", off, dev, err, out)
	}
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && (k == "TYPE" || k == "PTTYPE") {
			found = append(found, v)
		}
	}
	return strings.Join(found, ",")
}

// toolset is a set of programs the package's commands run with.
type toolset struct {
	name   string
	runner shRunner
}

// toolsets are this machine's programs and, when busybox is installed,
// the ramdisk's: the programs of ramdisk/tools.txt, dash as sh, and
// busybox's applets for everything else (no partx, no nohup, busybox dd,
// cmp, setsid, blockdev and umount), alone on PATH.
func toolsets(t *testing.T) []toolset {
	t.Helper()
	sets := []toolset{{name: "host", runner: shRunner{}}}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Logf("no busybox: the ramdisk's tool set is not tried")
		return sets
	}
	dash, err := exec.LookPath("dash")
	if err != nil {
		t.Logf("no dash: the ramdisk's tool set is not tried")
		return sets
	}
	dir := t.TempDir()
	link := func(name, target string) {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			return
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	link("sh", dash)
	list, err := os.ReadFile(filepath.Join("..", "..", "ramdisk", "tools.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(list)) {
		f := strings.Fields(strings.SplitN(l, "#", 2)[0])
		if len(f) == 0 {
			continue
		}
		if p, err := exec.LookPath(f[0]); err == nil {
			link(f[0], p)
		}
	}
	applets, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" && !strings.ContainsRune(a, '/') {
			link(a, bb)
		}
	}
	return append(sets, toolset{name: "ramdisk tools", runner: shRunner{shell: filepath.Join(dir, "sh"), path: dir}})
}

// stopJobs kills, at cleanup, the erase job of disk name in dir and what
// is left of its process group.
func stopJobs(t *testing.T, dir, name string) {
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err != nil {
			return
		}
		pid := jobPID(b)
		if pid <= 0 {
			return
		}
		for range 200 {
			if syscall.Kill(-pid, syscall.SIGKILL) != nil || !groupLives(pid) {
				return // the group is gone, or only zombies are left
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("the erase job %d of %s does not die", pid, name)
	})
}

// groupLives reports whether a process of group pgid is alive (not a
// zombie waiting for its parent).
func groupLives(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}

func jobPID(state []byte) int {
	_, rest, ok := bytes.Cut(state, []byte(`"pid":`))
	if !ok {
		return 0
	}
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0
	}
	n, _ := strconv.Atoi(string(rest[:end]))
	return n
}

// TestDisksForReal wipes two loop devices: one with a GPT, a mounted ext4
// partition, a vfat partition and a partition carrying an md superblock;
// one without partition scanning carrying a stale boot sector and an md
// 1.0 superblock at its end. Afterwards wipefs and blkid find nothing on
// the disks nor where the partitions were, sgdisk finds no table, the
// kernel lists no partition, the ends read zeros, the mount is gone and
// mdadm finds no superblock; a second wipe succeeds. It runs with this
// machine's tools and with the ramdisk's (busybox).
func TestDisksForReal(t *testing.T) {
	needLoops(t)
	for _, ts := range toolsets(t) {
		t.Run(ts.name, func(t *testing.T) { disksForReal(t, ts.runner) })
	}
}

func disksForReal(t *testing.T, r CommandRunner) {
	ctx, cancel := context.WithTimeout(context.Background(), loopTestTimeout)
	defer cancel()
	const mib = 1 << 20

	a := newLoop(t, 128*mib, true)
	host(t, "sgdisk", "-n", "1:2048:+32M", "-t", "1:8300", "-n", "2:0:+32M", "-t", "2:ef00", "-n", "3:0:+16M", "-t", "3:fd00", a.dev)
	host(t, "partx", "-u", a.dev)
	p := func(n int) string { return fmt.Sprintf("%sp%d", a.dev, n) }
	for n := 1; n <= 3; n++ {
		waitNode(t, p(n))
	}
	starts := []int64{1 * mib, 33 * mib, 65 * mib}
	host(t, "mkfs.ext4", "-q", "-F", "-L", "bfroot", p(1))
	host(t, "mkfs.vfat", "-n", "BFESP", p(2))
	writeAt(t, p(3), 4096, mdSuperblock(8, 2048, 16*mib/512-2048))
	mnt := t.TempDir()
	host(t, "mount", p(1), mnt)
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })

	b := newLoop(t, 64*mib, false)
	mbr := make([]byte, 512)
	_, _ = rand.Read(mbr[:446])
	mbr[510], mbr[511] = 0x55, 0xaa
	writeAt(t, b.dev, 0, mbr)
	sectors := uint64(b.size / 512)
	at := (sectors - 16) &^ 7
	writeAt(t, b.dev, int64(at)*512, mdSuperblock(at, 0, at))

	// The set-up is what the test says it is.
	for what, got := range map[string]string{
		"disk a": blkidType(t, a.dev, 0), "ext4 partition": blkidType(t, p(1), 0), "vfat partition": blkidType(t, p(2), 0),
		"md partition": blkidType(t, p(3), 0), "disk b": blkidType(t, b.dev, 0),
	} {
		if got == "" {
			t.Fatalf("before the wipe blkid finds nothing on the %s", what)
		}
	}
	if out, err := exec.Command("mdadm", "--examine", b.dev).CombinedOutput(); err != nil {
		t.Fatalf("mdadm --examine %s before the wipe: %v: %s", b.dev, err, out)
	}

	if err := Disks(ctx, r, []string{a.dev, b.dev}); err != nil {
		t.Fatalf("Disks: %v", err)
	}
	checkBlank := func(t *testing.T) {
		t.Helper()
		for _, d := range []loopDisk{a, b} {
			if out := host(t, "wipefs", "-n", d.dev); strings.TrimSpace(out) != "" {
				t.Errorf("wipefs -n %s after the wipe: got %q, want nothing", d.dev, out)
			}
			if got := blkidType(t, d.dev, 0); got != "" {
				t.Errorf("blkid -p %s after the wipe: got %s, want nothing", d.dev, got)
			}
			out := host(t, "sgdisk", "-p", d.dev)
			if !strings.Contains(out, "Creating new GPT entries") || !strings.HasSuffix(strings.TrimSpace(out), "Code  Name") {
				t.Errorf("sgdisk -p %s after the wipe: got %q, want no table", d.dev, out)
			}
			data := readAll(t, d)
			if i := firstNonZero(data, 0, mib); i >= 0 {
				t.Errorf("%s: byte %d of the first MiB is %#x, want zeros", d.dev, i, data[i])
			}
			if i := firstNonZero(data, d.size-mib, d.size); i >= 0 {
				t.Errorf("%s: byte %d of the last MiB is %#x, want zeros", d.dev, i, data[i])
			}
			if out, err := exec.Command("mdadm", "--examine", d.dev).CombinedOutput(); err == nil || !strings.Contains(string(out), "No md superblock") {
				t.Errorf("mdadm --examine %s after the wipe: got %v, %q; want no md superblock", d.dev, err, out)
			}
		}
		for i, off := range starts {
			if got := blkidType(t, a.dev, off); got != "" {
				t.Errorf("blkid -p at partition %d's start after the wipe: got %s, want nothing", i+1, got)
			}
		}
		entries, _ := filepath.Glob(filepath.Join("/sys/block", a.name, a.name+"p*"))
		if len(entries) > 0 {
			t.Errorf("the kernel still lists %q", entries)
		}
		if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(" "+mnt+" ")) {
			t.Errorf("%s is still mounted", mnt)
		}
	}
	checkBlank(t)

	if err := Disks(ctx, r, []string{a.dev, b.dev}); err != nil {
		t.Fatalf("second Disks: %v", err)
	}
	checkBlank(t)
}

// TestEraseOverwriteForReal overwrites a loop device full of random data
// with zeros, killing the detached job halfway by the PID of its state:
// EraseStatus restarts it from the recorded offset (a marker written below
// that offset while it was dead survives, so nothing before it was
// written again), and the disk ends all zeros but for the marker. The job
// runs in a session of its own, outliving the command that started it.
// It runs with this machine's tools and with the ramdisk's.
func TestEraseOverwriteForReal(t *testing.T) {
	needLoops(t)
	for _, ts := range toolsets(t) {
		t.Run(ts.name, func(t *testing.T) { overwriteForReal(t, ts.runner) })
	}
}

func overwriteForReal(t *testing.T, r CommandRunner) {
	ctx, cancel := context.WithTimeout(context.Background(), loopTestTimeout)
	defer cancel()
	const mib = 1 << 20
	d := newLoop(t, 128*mib, false)
	dir := filepath.Join(t.TempDir(), "erase")
	stopJobs(t, dir, d.name)
	fillRandom(t, d)
	opts := EraseOptions{Method: MethodOverwrite, ChunkBytes: mib, StateDir: dir}

	st, err := StartErase(ctx, r, d.dev, opts)
	if err != nil {
		t.Fatalf("StartErase: %v", err)
	}
	if st.Status != JobRunning || st.Method != MethodOverwrite || st.Variant != "zero" || st.PID <= 0 || st.SizeBytes != d.size {
		t.Fatalf("first state: got %+v, want a running zero overwrite of %d bytes", st, d.size)
	}
	// Detached: the leader of its own session and process group.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", st.PID))
	if err != nil {
		t.Fatalf("the job %d is not running after StartErase returned: %v", st.PID, err)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	if f[2] != strconv.Itoa(st.PID) || f[3] != strconv.Itoa(st.PID) {
		t.Errorf("job %d: process group %s, session %s; want its own", st.PID, f[2], f[3])
	}
	// A second start re-attaches.
	again, err := StartErase(ctx, r, d.dev, opts)
	if err != nil || again.PID != st.PID {
		t.Errorf("second StartErase: got %+v, %v; want the same job %d", again, err, st.PID)
	}
	// Another method is refused while it runs.
	if _, err := StartErase(ctx, r, d.dev, EraseOptions{Method: MethodDiscard, StateDir: dir}); !errors.Is(err, ErrBusy) {
		t.Errorf("StartErase of a discard during the overwrite: got %v, want ErrBusy", err)
	}

	// Kill it once it is under way, by the PID of its state.
	var killedAt int64
	deadline := time.Now().Add(eraseWait)
	for killedAt == 0 {
		b, _ := os.ReadFile(filepath.Join(dir, d.name+".json"))
		if off := stateOffset(b); off >= 8*mib {
			if off >= d.size {
				t.Fatalf("the overwrite finished before the test could kill it (offset %d)", off)
			}
			pid := jobPID(b)
			_ = syscall.Kill(-pid, syscall.SIGSTOP)
			b, _ = os.ReadFile(filepath.Join(dir, d.name+".json"))
			killedAt = stateOffset(b)
			if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill the job %d: %v", pid, err)
			}
			for groupLives(pid) {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the overwrite made no progress within %s", eraseWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if killedAt <= 0 || killedAt%mib != 0 {
		t.Fatalf("recorded offset when killed: got %d, want a whole number of chunks > 0", killedAt)
	}
	marker := bytes.Repeat([]byte("bareflow"), 512)
	markAt := killedAt / 2 / 4096 * 4096
	writeAt(t, d.dev, markAt, marker)

	st, err = EraseStatus(ctx, r, d.dev, dir)
	if err != nil {
		t.Fatalf("EraseStatus after the kill: %v", err)
	}
	if !st.Resumed || st.Restarts != 1 || st.StartOffset != killedAt || st.BytesDone < killedAt || st.Status != JobRunning {
		t.Fatalf("EraseStatus after the kill: got %+v, want the job resumed at %d", st, killedAt)
	}
	st = waitErase(ctx, t, r, d.dev, dir)
	if st.BytesDone != d.size || st.Percent != 100 || st.Restarts != 1 {
		t.Errorf("final state: got %+v, want all %d bytes done after one restart", st, d.size)
	}
	data := readAll(t, d)
	if !bytes.Equal(data[markAt:markAt+int64(len(marker))], marker) {
		t.Errorf("the marker below the resume offset %d was overwritten: the job did not resume there", killedAt)
	}
	copy(data[markAt:], make([]byte, len(marker)))
	if i := firstNonZero(data, 0, d.size); i >= 0 {
		t.Errorf("byte %d is %#x after the overwrite, want zero", i, data[i])
	}
	// Finished: a new start returns the finished job.
	done, err := StartErase(ctx, r, d.dev, opts)
	if err != nil || done.Status != JobDone || done.PID != st.PID {
		t.Errorf("StartErase after the end: got %+v, %v; want the finished job", done, err)
	}
}

func stateOffset(b []byte) int64 {
	_, rest, ok := bytes.Cut(b, []byte(`"offset":`))
	if !ok {
		return 0
	}
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n
}

// waitErase polls EraseStatus until the job is done.
func waitErase(ctx context.Context, t *testing.T, r CommandRunner, disk, dir string) EraseState {
	t.Helper()
	deadline := time.Now().Add(eraseWait)
	for {
		st, err := EraseStatus(ctx, r, disk, dir)
		if err != nil {
			t.Fatalf("EraseStatus: %v (state %+v)", err, st)
		}
		if st.Status == JobDone {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the erase of %s did not end within %s: %+v", disk, eraseWait, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEraseDiscardForReal discards a loop device of random data (a loop
// device over a sparse file discards by punching holes, which read back
// zeros), overwrites one with random data, lets auto pick an overwrite for
// a loop device (which says it rotates), and shows the failure of a secure
// discard, which loop devices do not support.
func TestEraseDiscardForReal(t *testing.T) {
	needLoops(t)
	ctx, cancel := context.WithTimeout(context.Background(), loopTestTimeout)
	defer cancel()
	const mib = 1 << 20
	r := shRunner{}
	dir := filepath.Join(t.TempDir(), "erase")

	t.Run("discard", func(t *testing.T) {
		d := newLoop(t, 64*mib, false)
		stopJobs(t, dir, d.name)
		fillRandom(t, d)
		st, err := StartErase(ctx, r, d.dev, EraseOptions{Method: MethodDiscard, ChunkBytes: 16 * mib, StateDir: dir})
		if err != nil {
			t.Fatalf("StartErase: %v", err)
		}
		if st.Method != MethodDiscard || st.Variant != "discard" {
			t.Errorf("method: got %s %s, want discard discard", st.Method, st.Variant)
		}
		waitErase(ctx, t, r, d.dev, dir)
		data := readAll(t, d)
		if i := firstNonZero(data, 0, d.size); i >= 0 {
			t.Errorf("byte %d is %#x after the discard, want zero", i, data[i])
		}
	})
	t.Run("random overwrite", func(t *testing.T) {
		d := newLoop(t, 32*mib, false)
		stopJobs(t, dir, d.name)
		if _, err := StartErase(ctx, r, d.dev, EraseOptions{Method: MethodOverwrite, Random: true, ChunkBytes: 8 * mib, StateDir: dir}); err != nil {
			t.Fatalf("StartErase: %v", err)
		}
		waitErase(ctx, t, r, d.dev, dir)
		data := readAll(t, d)
		if zeros := bytes.Count(data, []byte{0}); zeros > len(data)/100 {
			t.Errorf("%d of %d bytes are zero after a random overwrite", zeros, len(data))
		}
	})
	t.Run("auto on a rotating disk", func(t *testing.T) {
		d := newLoop(t, 16*mib, false)
		stopJobs(t, dir, d.name)
		fillRandom(t, d)
		st, err := StartErase(ctx, r, d.dev, EraseOptions{Method: MethodAuto, StateDir: dir})
		if err != nil {
			t.Fatalf("StartErase: %v", err)
		}
		if st.Requested != MethodAuto || st.Method != MethodOverwrite || st.Variant != "zero" {
			t.Errorf("auto chose %s %s, want overwrite zero", st.Method, st.Variant)
		}
		waitErase(ctx, t, r, d.dev, dir)
		if i := firstNonZero(readAll(t, d), 0, d.size); i >= 0 {
			t.Errorf("byte %d is not zero after the erase", i)
		}
	})
	t.Run("a secure discard the device does not support fails the job", func(t *testing.T) {
		d := newLoop(t, 16*mib, false)
		stopJobs(t, dir, d.name)
		if _, err := StartErase(ctx, r, d.dev, EraseOptions{Method: MethodDiscard, Secure: true, StateDir: dir}); err != nil {
			t.Fatalf("StartErase: %v", err)
		}
		deadline := time.Now().Add(eraseWait)
		for {
			st, err := EraseStatus(ctx, r, d.dev, dir)
			if err != nil {
				if !errors.Is(err, ErrEraseFailed) || st.Status != JobFailed || !strings.Contains(st.Error, "blkdiscard --secure") {
					t.Errorf("got %+v, %v; want a failed job naming blkdiscard --secure", st, err)
				}
				break
			}
			if st.Status == JobDone {
				t.Fatalf("a secure discard of a loop device succeeded")
			}
			if time.Now().After(deadline) {
				t.Fatalf("the job did not end within %s: %+v", eraseWait, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Run("a mounted disk is refused", func(t *testing.T) {
		d := newLoop(t, 32*mib, false)
		host(t, "mkfs.ext4", "-q", "-F", d.dev)
		mnt := t.TempDir()
		host(t, "mount", d.dev, mnt)
		t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
		if _, err := StartErase(ctx, r, d.dev, EraseOptions{Method: MethodOverwrite, StateDir: dir}); !errors.Is(err, ErrBusy) {
			t.Errorf("StartErase of a mounted disk: got %v, want ErrBusy", err)
		}
	})
}

// TestDisksLVMForReal wipes a loop device that is an LVM physical volume
// with an active, mounted logical volume: Disks unmounts it, deactivates
// the volume group and wipes the disk. It runs only where the LVM tools are
// installed (the ramdisk does not carry them; Disks refuses such a disk
// there, see TestDisksRefuses).
func TestDisksLVMForReal(t *testing.T) {
	needLoops(t)
	for _, tool := range []string{"pvcreate", "vgcreate", "lvcreate", "vgchange", "vgremove"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: the LVM tools are not installed (%s)", tool)
		}
	}
	if b, _ := os.ReadFile("/proc/misc"); !bytes.Contains(b, []byte("device-mapper")) {
		t.Skip("skipping: the kernel has no device-mapper")
	}
	ctx, cancel := context.WithTimeout(context.Background(), loopTestTimeout)
	defer cancel()
	const mib = 1 << 20
	d := newLoop(t, 64*mib, false)
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	vg := fmt.Sprintf("bfwipe%x", suffix)
	host(t, "pvcreate", "-ff", "-y", d.dev)
	host(t, "vgcreate", vg, d.dev)
	t.Cleanup(func() {
		_ = exec.Command("vgchange", "-an", vg).Run()
		_ = exec.Command("vgremove", "-f", vg).Run()
	})
	host(t, "lvcreate", "-y", "-L", "8M", "-n", "lv", vg)
	lv := "/dev/mapper/" + vg + "-lv"
	waitNode(t, lv)
	host(t, "mkfs.ext4", "-q", "-F", lv)
	mnt := t.TempDir()
	host(t, "mount", lv, mnt)
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })

	if err := Disks(ctx, shRunner{}, []string{d.dev}); err != nil {
		t.Fatalf("Disks: %v", err)
	}
	if got := blkidType(t, d.dev, 0); got != "" {
		t.Errorf("blkid -p %s after the wipe: got %s, want nothing", d.dev, got)
	}
	if _, err := os.Stat(lv); err == nil {
		t.Errorf("%s is still there after the wipe", lv)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(" "+mnt+" ")) {
		t.Errorf("%s is still mounted", mnt)
	}
}
