package inventory

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"bareflow/contract"
)

func TestCommandsNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Commands() {
		if c.Name == "" || c.Script == "" {
			t.Errorf("command %+v: want a name and a script", c)
		}
		if seen[c.Name] {
			t.Errorf("command %s listed twice", c.Name)
		}
		seen[c.Name] = true
		if c.Optional != (c.Name == CmdLLDP) {
			t.Errorf("command %s: got optional %v, want it only for %s", c.Name, c.Optional, CmdLLDP)
		}
	}
}

// shells are the POSIX shells found here to check the scripts with: dash is
// the ramdisk's /bin/sh.
func shells(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, sh := range []string{"dash", "sh"} {
		if p, err := exec.LookPath(sh); err == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Skip("skipping: no POSIX shell")
	}
	return out
}

// TestScriptsSyntax parses every script with each shell (sh -n).
func TestScriptsSyntax(t *testing.T) {
	for _, sh := range shells(t) {
		for _, c := range Commands() {
			if out, err := exec.Command(sh, "-n", "-c", c.Script).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %s: %v\n%s", sh, c.Name, err, out)
			}
		}
	}
}

// runScript runs a command's script the way the worker does (sh -c), with
// a bounded wait.
func runScript(t *testing.T, sh string, c Command) Output {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, sh, "-c", c.Script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s: did not end within 60s", c.Name)
	}
	o := Output{Stdout: stdout.Bytes()}
	if err != nil {
		o.Err = strings.TrimSpace(err.Error() + ": " + stderr.String())
	}
	return o
}

// TestScriptsOnThisMachine runs the sysfs scripts here, under dash when
// there is one, and checks what they report against /sys; then runs every
// command and parses the lot. Tools this machine lacks just become
// warnings.
func TestScriptsOnThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("skipping: the scripts read Linux sysfs")
	}
	if _, err := os.Stat("/sys/class/net/lo"); err != nil {
		t.Skip("skipping: no /sys/class/net")
	}
	sh := shells(t)[0]
	outputs := map[string]Output{}
	for _, c := range Commands() {
		outputs[c.Name] = runScript(t, sh, c)
	}
	for _, name := range []string{CmdSysBlock, CmdSysNet, CmdEFI, CmdArch, CmdCPUInfo, CmdMeminfo, CmdLLDP} {
		if o := outputs[name]; o.Err != "" {
			t.Errorf("%s: %s", name, o.Err)
		}
	}

	nets, err := parseSysNet(outputs[CmdSysNet].Stdout)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir("/sys/class/net")
	var want, got []string
	for _, e := range entries {
		want = append(want, e.Name())
	}
	for _, n := range nets {
		got = append(got, n.name)
		if _, err := os.Stat(filepath.Join("/sys/class/net", n.name, "device")); err == nil && n.device == "" {
			t.Errorf("sys-net %s: got no device, want its resolved path", n.name)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("sys-net interfaces: got %q, want %q", got, want)
	}

	disks, err := parseSysBlock(outputs[CmdSysBlock].Stdout)
	if err != nil && len(outputs[CmdSysBlock].Stdout) > 0 {
		t.Fatal(err)
	}
	for _, d := range disks {
		b, err := os.ReadFile(filepath.Join("/sys/block", d.name, "size"))
		if err != nil {
			t.Errorf("sys-block %s: %v", d.name, err)
			continue
		}
		if n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); n != d.sectors {
			t.Errorf("sys-block %s: got %d sectors, want %d", d.name, d.sectors, n)
		}
		if skippedDisk(d.name) {
			t.Errorf("sys-block lists %s, which it should skip", d.name)
		}
		if _, err := os.Stat(filepath.Join("/sys/block", d.name, "device")); err == nil &&
			lastPCIAddr(d.device) != "" && d.driver == "" {
			t.Errorf("sys-block %s: controller %s without a driver", d.name, lastPCIAddr(d.device))
		}
	}

	inv := Parse(outputs)
	t.Logf("this machine: %d threads, %d bytes, %d NICs, %d disks, %d PCI devices; warnings %q",
		inv.CPU.Threads, inv.Memory.UsableBytes, len(inv.NICs), len(inv.Disks), len(inv.PCI), inv.Warnings)
	if inv.CPU.Threads < runtime.NumCPU() {
		t.Errorf("threads: got %d, want at least %d", inv.CPU.Threads, runtime.NumCPU())
	}
	if inv.Memory.UsableBytes <= 0 || inv.CPU.Arch == "" || inv.System.BootMode == "" {
		t.Errorf("got memory %d, arch %q, boot mode %q, want all set",
			inv.Memory.UsableBytes, inv.CPU.Arch, inv.System.BootMode)
	}
	for _, n := range nets {
		physical := n.typ == "1" && n.device != "" && n.kind == "" && n.name != "lo"
		listed := slices.ContainsFunc(inv.NICs, func(x contract.NIC) bool { return x.Name == n.name })
		if physical != listed {
			t.Errorf("NIC %s: listed %v, want %v", n.name, listed, physical)
		}
	}
	checkInvariants(t, "this machine", inv)
}

// TestScriptsBounded runs the loop scripts against a sysfs that is not
// there: they must end at once and print nothing.
func TestScriptsBounded(t *testing.T) {
	sh := shells(t)[0]
	for _, c := range Commands() {
		if c.Name != CmdSysBlock && c.Name != CmdSysNet {
			continue
		}
		script := strings.NewReplacer("/sys/block/", "/nonexistent/block/", "/sys/class/net/", "/nonexistent/net/").Replace(c.Script)
		o := runScript(t, sh, Command{Name: c.Name, Script: script})
		if o.Err != "" || len(o.Stdout) != 0 {
			t.Errorf("%s without sysfs: got %q, %q, want no output", c.Name, o.Stdout, o.Err)
		}
	}
}
