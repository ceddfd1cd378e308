//go:build linux

package qemulab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A machine folder holds what the power hook needs to act as one machine's
// hardware behind its simulated BMC (ipmisim.Options.Machine):
//
//	args.pxe, args.disk  QEMU's arguments (a JSON array) when the machine
//	                     boots from the network first, and from its disk
//	                     first (the boot device a BMC passes on)
//	boot                 the boot device last set: pxe, default (disk) or none
//	qemu.pid             the running QEMU's PID
//	qemu.log             QEMU's standard output and error, appended
//	reset.at             when the last reset was done (retransmissions of the
//	                     same request within resetGuard are one reset)
//
// The hook is run by ipmi_sim's chassis-control script, inside the
// namespace ipmi_sim runs in, so QEMU inherits that namespace and finds its
// tap devices there. It returns within a fraction of a second: QEMU is
// started as a process of its own and not waited for.
const (
	argsPXEFile  = "args.pxe"
	argsDiskFile = "args.disk"
	bootFile     = "boot"
	pidFile      = "qemu.pid"
	qemuLogFile  = "qemu.log"
	resetFile    = "reset.at"
	resetGuard   = 2 * time.Second
	killWait     = 3 * time.Second
)

// WriteMachine writes a machine folder for the power hook: QEMU's arguments
// when booting from the network first and from the disk first.
func WriteMachine(dir string, pxeArgs, diskArgs []string) error {
	for name, args := range map[string][]string{argsPXEFile: pxeArgs, argsDiskFile: diskArgs} {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, bootFile), []byte("none\n"), 0o644)
}

// PowerHook is the machine behind a simulated BMC: args are what ipmisim's
// chassis script passes ("status", or NAME VALUE: "power 1", "power 0",
// "reset 1", "boot pxe", "boot default", "shutdown 1"). status prints 1
// while the machine's QEMU runs and 0 otherwise.
func PowerHook(dir string, args []string) error {
	if len(args) == 1 && args[0] == "status" {
		if machineOn(dir) {
			fmt.Println("1")
		} else {
			fmt.Println("0")
		}
		return nil
	}
	if len(args) != 2 {
		return fmt.Errorf("power hook: want status or NAME VALUE, got %q", args)
	}
	switch name, value := args[0], args[1]; name {
	case "power":
		if value == "0" {
			return StopMachine(dir)
		}
		if machineOn(dir) {
			return nil
		}
		return startMachine(dir)
	case "reset":
		if !machineOn(dir) {
			return nil // a reset does nothing to a machine that is off
		}
		if b, err := os.ReadFile(filepath.Join(dir, resetFile)); err == nil {
			if at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil && time.Since(at) < resetGuard {
				return nil
			}
		}
		if err := os.WriteFile(filepath.Join(dir, resetFile), []byte(time.Now().Format(time.RFC3339Nano)), 0o644); err != nil {
			return err
		}
		// A restart rather than QMP's system_reset: the machine then
		// boots from the device last set, as firmware reads it at reset.
		if err := StopMachine(dir); err != nil {
			return err
		}
		return startMachine(dir)
	case "boot":
		return os.WriteFile(filepath.Join(dir, bootFile), []byte(value+"\n"), 0o644)
	case "shutdown":
		// The ACPI power button; the guest decides.
		_, err := QMPCommand(filepath.Join(dir, "qmp.sock"), "system_powerdown")
		return err
	}
	return fmt.Errorf("power hook: unknown change %q", args)
}

// MachinePID returns the PID of the machine's QEMU while it runs.
func MachinePID(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	return pid, isQEMU(pid)
}

// machineOn reports whether a QEMU of the machine runs.
func machineOn(dir string) bool {
	if _, ok := MachinePID(dir); ok {
		return true
	}
	return len(machineQEMUs(dir)) > 0
}

// isQEMU reports whether pid is a live (not zombie) qemu-system process.
func isQEMU(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || !strings.HasPrefix(string(comm), "qemu-system") {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE …
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return false
}

// machineQEMUs returns the PIDs of every live QEMU started for the machine
// folder dir (their working folder), the one in qemu.pid and any other.
func machineQEMUs(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !isQEMU(pid) {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && cwd == dir {
			pids = append(pids, pid)
		}
	}
	return pids
}

// StopMachine kills the machine's QEMU (a power loss), and any other QEMU
// started for it, and waits until they are gone, so that its tap device and
// serial port are free for the next start.
func StopMachine(dir string) error {
	pids := machineQEMUs(dir)
	if pid, ok := MachinePID(dir); ok && !slices.Contains(pids, pid) {
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		for deadline := time.Now().Add(killWait); isQEMU(pid); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("QEMU pid %d still runs %s after SIGKILL", pid, killWait)
			}
		}
	}
	return nil
}

// startTries and startWatch: a QEMU that exits within startWatch of its
// start (its serial port or tap device still held for a moment by the one
// just killed) is started again, up to startTries times in all.
const (
	startTries = 4
	startWatch = 300 * time.Millisecond
)

func startMachine(dir string) error {
	boot, _ := os.ReadFile(filepath.Join(dir, bootFile))
	name := argsPXEFile
	if strings.TrimSpace(string(boot)) == "default" {
		name = argsDiskFile
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	var args []string
	if err := json.Unmarshal(b, &args); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, qemuLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	var exitErr error
	for try := 1; try <= startTries; try++ {
		fmt.Fprintf(logf, "--- %s: start (%s), try %d\n", time.Now().Format(time.RFC3339Nano), name, try)
		cmd := exec.Command("qemu-system-x86_64", args...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			_ = cmd.Process.Kill()
			return err
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case exitErr = <-exited:
			// Gone at once: try again after a moment.
			time.Sleep(startWatch)
		case <-time.After(startWatch):
			// Running: it outlives the hook, like the machine its BMC
			// switched on.
			return nil
		}
	}
	return fmt.Errorf("QEMU exited at once %d times (last: %v); see %s", startTries, exitErr, filepath.Join(dir, qemuLogFile))
}
