//go:build linux

package qemulab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQEMU puts a qemu-system-x86_64 on PATH that records its arguments
// and runs until killed: the kernel names the process after the script,
// so it passes for QEMU.
func fakeQEMU(t *testing.T) (record string) {
	t.Helper()
	bin := t.TempDir()
	record = filepath.Join(t.TempDir(), "started")
	script := "#!/bin/sh\necho \"$*\" >> " + record + "\nwhile :; do sleep 1; done\n"
	if err := os.WriteFile(filepath.Join(bin, "qemu-system-x86_64"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return record
}

func hook(t *testing.T, dir string, args ...string) {
	t.Helper()
	if err := PowerHook(dir, args); err != nil {
		t.Fatalf("power hook %q: %v", args, err)
	}
}

// started returns the argument lines the fake QEMU was started with, once
// it has written the n-th.
func started(t *testing.T, record string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(record)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) > 0 && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU started %d times (%q), want %d", len(lines), b, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPowerHook(t *testing.T) {
	record := fakeQEMU(t)
	dir := t.TempDir()
	if err := WriteMachine(dir, []string{"-boot", "net-first"}, []string{"-boot", "disk-first"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = StopMachine(dir) })
	if _, on := MachinePID(dir); on {
		t.Fatal("a new machine is on")
	}
	hook(t, dir, "reset", "1") // nothing to reset
	hook(t, dir, "power", "1")
	pid, on := MachinePID(dir)
	if !on {
		t.Fatal("off after power 1")
	}
	hook(t, dir, "power", "1") // a request sent again: still the same machine
	if again, _ := MachinePID(dir); again != pid {
		t.Errorf("power 1 twice started a second QEMU (%d, then %d)", pid, again)
	}
	if got := started(t, record, 1); got[0] != "-boot net-first" {
		t.Errorf("first start: %q, want the network-first arguments", got)
	}

	// The boot device takes effect at the reset, which restarts QEMU; a
	// reset sent again at once is the same reset.
	hook(t, dir, "boot", "default")
	hook(t, dir, "reset", "1")
	hook(t, dir, "reset", "1")
	after, on := MachinePID(dir)
	if !on || after == pid {
		t.Fatalf("after reset: pid %d (on %v), want a new QEMU (was %d)", after, on, pid)
	}
	if isQEMU(pid) {
		t.Errorf("the QEMU before the reset (pid %d) still runs", pid)
	}
	time.Sleep(200 * time.Millisecond) // a third start would have shown by now
	if got := started(t, record, 2); len(got) != 2 || got[1] != "-boot disk-first" {
		t.Errorf("starts: %q, want the disk-first arguments second and no third start", got)
	}

	hook(t, dir, "power", "0")
	if _, on := MachinePID(dir); on || isQEMU(after) {
		t.Errorf("still on after power 0")
	}
	if err := PowerHook(dir, []string{"power"}); err == nil {
		t.Errorf("a call without a value: got no error")
	}
}

// A QEMU that exits at once (its serial port still held by the one just
// killed) is started again.
func TestPowerHookStartsAgain(t *testing.T) {
	bin := t.TempDir()
	record := filepath.Join(t.TempDir(), "started")
	failOnce := filepath.Join(t.TempDir(), "failed")
	script := "#!/bin/sh\necho \"$*\" >> " + record + "\n" +
		"if [ ! -e " + failOnce + " ]; then touch " + failOnce + "; echo 'Address already in use' >&2; exit 1; fi\n" +
		"while :; do sleep 1; done\n"
	if err := os.WriteFile(filepath.Join(bin, "qemu-system-x86_64"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	dir := t.TempDir()
	if err := WriteMachine(dir, []string{"-boot", "net-first"}, []string{"-boot", "disk-first"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = StopMachine(dir) })
	hook(t, dir, "power", "1")
	if _, on := MachinePID(dir); !on {
		t.Fatal("off after power 1: the second start did not happen")
	}
	if got := started(t, record, 2); len(got) != 2 {
		t.Errorf("starts: %q, want 2", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, qemuLogFile)); !strings.Contains(string(b), "Address already in use") {
		t.Errorf("qemu.log lacks the first start's error: %q", b)
	}
}
