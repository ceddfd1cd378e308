package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"bareflow/activities"
	"bareflow/contract"
	"bareflow/internal/inventory"
	"bareflow/internal/lab/fakeramdisk"
	"bareflow/internal/lab/ipmisim"
)

// ipmisimGUIDUUID is the system UUID that the lab BMC's system GUID stands
// for: ipmisim gives every simulated BMC the GUID a0b1c2d3…c4d5, and most
// BMCs send the first three fields of the SMBIOS UUID byte-swapped.
const ipmisimGUIDUUID = "d3c2b1a0-f5e4-b7a6-c8d9-e0f1a2b3c4d5"

// untouchable are programs an adoption must never run on the live OS; the
// stand-ins record any call.
var untouchable = []string{"poweroff", "reboot", "halt", "shutdown", "ipmitool", "sgdisk", "parted", "sfdisk", "wipefs",
	"mkfs", "mkfs.ext4", "mkfs.xfs", "mdadm", "dd", "qemu-img", "blkdiscard", "nvme", "hdparm", "efibootmgr"}

// liveDell starts an SSH server standing in for a Dell R740 running its OS:
// the R740's captured outputs, with the SMBIOS UUID set to uuid, and every
// program that writes or powers off replaced by one that records the call
// in marker.
func (l *registerLab) liveDell(t *testing.T, authorizedKey, uuid, marker string) *fakeramdisk.Ramdisk {
	t.Helper()
	dmi, err := os.ReadFile(filepath.Join(cannedDir, inventory.CmdDmidecode+".out"))
	if err != nil {
		t.Fatal(err)
	}
	out := regexp.MustCompile(`(?m)^(\s*UUID: ).*$`).ReplaceAllString(string(dmi), "${1}"+uuid)
	tools := map[string]string{"dmidecode": fakeramdisk.CannedOutput(out)}
	for _, p := range untouchable {
		tools[p] = fmt.Sprintf("echo \"%s $*\" >> %s\nexit 1\n", p, marker)
	}
	return l.fakeDell(t, authorizedKey, tools)
}

// adopt posts an adoption; an error answer's code and message are in the
// returned operation's Error.
func (l *registerLab) adopt(t *testing.T, body map[string]any) (apiOperation, int) {
	t.Helper()
	var op apiOperation
	code := l.dev.call(t, "POST", "/machines/adopt", l.dev.token, body, &op)
	return op, code
}

func adoptBody(name string, sim *ipmisim.Sim, password string, rd *fakeramdisk.Ramdisk) map[string]any {
	return map[string]any{
		"name": name,
		"bmc":  map[string]any{"address": sim.Host, "port": sim.Port, "username": sim.User, "password": password},
		"ssh":  map[string]any{"address": "127.0.0.1", "port": sshPortOf(rd)},
	}
}

func sshPortOf(rd *fakeramdisk.Ramdisk) int {
	_, port, _ := strings.Cut(rd.Addr(), ":")
	var p int
	fmt.Sscan(port, &p)
	return p
}

// failedAdoption waits for an adoption that must fail with code, and checks
// it left no machine behind.
func (l *registerLab) failedAdoption(t *testing.T, name string, op apiOperation, code string) {
	t.Helper()
	done := l.dev.waitOperation(t, op.ID, "", 2*time.Minute)
	if done.State != "failed" || done.Error == nil || done.Error.Code != code {
		t.Fatalf("adoption of %s: got %s %+v, want failed with %s", name, done.State, done.Error, code)
	}
	if c := l.dev.call(t, "GET", "/machines/"+name, l.dev.token, nil, nil); c != http.StatusNotFound {
		t.Errorf("machine %s after a failed adoption: got %d, want 404 (the record is removed)", name, c)
	}
}

// fetchPrepareScript gets a script link through the CLI and the script
// through the link, without an API token.
func (l *registerLab) fetchPrepareScript(t *testing.T, user string) string {
	t.Helper()
	var out, errOut strings.Builder
	getenv := func(k string) string {
		return map[string]string{"BAREFLOW_API_URL": l.dev.apiURL, "BAREFLOW_TOKEN": l.dev.token}[k]
	}
	if err := run(t.Context(), []string{"machine", "adopt-script", "--user", user}, getenv, &out, &errOut); err != nil {
		t.Fatalf("bareflow machine adopt-script: %v\n%s", err, errOut.String())
	}
	m := regexp.MustCompile(`^curl -fsS '([^']+)' \| sh\n$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("adopt-script printed %q, want one curl -fsS '…' | sh line", out.String())
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the prepare script: got %d %s, want 200", resp.StatusCode, body)
	}
	// A forged or foreign link fetches nothing.
	for _, bad := range []string{strings.Replace(m[1], "user="+user, "user=intruder", 1), regexp.MustCompile(`token=[^&]+`).ReplaceAllString(m[1], "token=1.AAAA")} {
		r, err := http.Get(bad)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s: got %d, want 401", bad, r.StatusCode)
		}
	}
	return string(body)
}

// runScript runs the prepare script with sh in home, as the test's user.
func runScript(t *testing.T, script, home string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh")
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestDevAdopt(t *testing.T) {
	l := newRegisterLab(t)
	marker := filepath.Join(t.TempDir(), "untouchable-calls")

	// The prepare script, as the one-liner fetches it, authorizes
	// bareflow's key once, with the right modes, and only for its user.
	me, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	script := l.fetchPrepareScript(t, strings.TrimSpace(string(me)))
	home := t.TempDir()
	for range 2 {
		if out, err := runScript(t, script, home); err != nil {
			t.Fatalf("prepare script: %v\n%s", err, out)
		}
	}
	keys, err := os.ReadFile(filepath.Join(home, ".ssh", "authorized_keys"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(keys)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ssh-ed25519 ") {
		t.Fatalf("authorized_keys after two runs: got %q, want bareflow's key once", keys)
	}
	for path, want := range map[string]os.FileMode{".ssh": 0o700, ".ssh/authorized_keys": 0o600} {
		if fi, err := os.Stat(filepath.Join(home, path)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: got %v (%v), want mode %o", path, fi.Mode().Perm(), err, want)
		}
	}
	other := t.TempDir()
	if out, err := runScript(t, l.fetchPrepareScript(t, "someone-else"), other); err == nil || !strings.Contains(out, "run this as someone-else") {
		t.Errorf("prepare script for another user: got %v %q, want a refusal", err, out)
	}
	if _, err := os.Stat(filepath.Join(other, ".ssh")); err == nil {
		t.Errorf("the refused script wrote %s/.ssh", other)
	}
	bareflowKey := lines[0]

	// The server to adopt runs its OS; its SMBIOS UUID is what its BMC's
	// GUID stands for.
	rd := l.liveDell(t, bareflowKey, ipmisimGUIDUUID, marker)

	t.Run("wrong BMC password", func(t *testing.T) {
		op, code := l.adopt(t, adoptBody("r740-badpw", l.sim, "not-the-password", rd))
		if code != http.StatusAccepted {
			t.Fatalf("adopt: got %d %+v, want 202", code, op.Error)
		}
		l.failedAdoption(t, "r740-badpw", op, contract.ErrBMCAuthFailed)
	})

	t.Run("BMC and OS of two servers", func(t *testing.T) {
		stranger := l.liveDell(t, bareflowKey, "4c4c4544-0058-3410-804b-b8c04f324d33", marker)
		op, code := l.adopt(t, adoptBody("r740-stranger", l.sim, l.sim.Password, stranger))
		if code != http.StatusAccepted {
			t.Fatalf("adopt: got %d %+v, want 202", code, op.Error)
		}
		l.failedAdoption(t, "r740-stranger", op, contract.ErrAdoptIdentityMismatch)
	})

	t.Run("another host key than the one given", func(t *testing.T) {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		sk, _ := ssh.NewPublicKey(pub)
		body := adoptBody("r740-impostor", l.sim, l.sim.Password, rd)
		body["ssh"].(map[string]any)["host_key"] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk)))
		op, code := l.adopt(t, body)
		if code != http.StatusAccepted {
			t.Fatalf("adopt: got %d %+v, want 202", code, op.Error)
		}
		l.failedAdoption(t, "r740-impostor", op, contract.ErrOSHostKeyMismatch)
		if cmds := rd.Commands(); len(cmds) != 0 {
			t.Errorf("commands run on a server with another host key: %q", cmds)
		}
	})

	// The adoption, through the CLI, trusting the host key on first use.
	cpuinfo, _ := rd.ReadFile("/proc/cpuinfo")
	meminfo, _ := rd.ReadFile("/proc/meminfo")
	authorized, _ := rd.ReadFile("/root/.ssh/authorized_keys")
	pwFile := filepath.Join(t.TempDir(), "bmc-password")
	if err := os.WriteFile(pwFile, []byte(l.sim.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	getenv := func(k string) string {
		return map[string]string{"BAREFLOW_API_URL": l.dev.apiURL, "BAREFLOW_TOKEN": l.dev.token}[k]
	}
	started := time.Now()
	err = run(t.Context(), []string{"machine", "adopt", "r740-1", "--bmc", fmt.Sprintf("%s:%d", l.sim.Host, l.sim.Port),
		"--bmc-user", l.sim.User, "--bmc-password-file", pwFile, "--ssh", rd.Addr()}, getenv, &out, &errOut)
	if err != nil {
		t.Fatalf("bareflow machine adopt: %v\n%s%s\n%s", err, out.String(), errOut.String(), l.dev.log())
	}
	t.Logf("adoption: %.1fs\n%s", time.Since(started).Seconds(), out.String())

	got := l.machine(t, "r740-1")
	want := goldenInventory(t)
	want.System.UUID = ipmisimGUIDUUID
	if got.State != "running" || got.Hardware == nil {
		t.Fatalf("machine: got state %s, hardware %v, want running with hardware", got.State, got.Hardware != nil)
	}
	inv := *got.Hardware
	if inv.System != want.System || inv.CPU != want.CPU || inv.Memory.TotalBytes != want.Memory.TotalBytes ||
		len(inv.Memory.DIMMs) != len(want.Memory.DIMMs) || len(inv.PCI) != len(want.PCI) || len(inv.Disks) != len(want.Disks) ||
		len(inv.NICs) != len(want.NICs) || inv.GPUCount() != want.GPUCount() {
		t.Errorf("inventory of the live OS differs from a registration's:\n got system %+v cpu %+v memory %d, %d disks, %d NICs, %d PCI\nwant system %+v cpu %+v memory %d, %d disks, %d NICs, %d PCI",
			inv.System, inv.CPU, inv.Memory.TotalBytes, len(inv.Disks), len(inv.NICs), len(inv.PCI),
			want.System, want.CPU, want.Memory.TotalBytes, len(want.Disks), len(want.NICs), len(want.PCI))
	}
	if !slices.EqualFunc(inv.Disks, want.Disks, func(a, b contract.Disk) bool {
		return a.Name == b.Name && a.SizeBytes == b.SizeBytes && a.WWN == b.WWN && a.Serial == b.Serial && a.Controller == b.Controller
	}) || !slices.EqualFunc(inv.NICs, want.NICs, func(a, b contract.NIC) bool { return a.Name == b.Name && a.MAC == b.MAC && a.PCIAddr == b.PCIAddr }) {
		t.Errorf("disks or NICs differ:\n got %+v %+v\nwant %+v %+v", inv.Disks, inv.NICs, want.Disks, want.NICs)
	}
	wantBMC := fmt.Sprintf("%s:%d", l.sim.Host, l.sim.Port)
	if got.BMC == nil || got.BMC.Address != wantBMC || got.BMC.User != l.sim.User || !got.BMC.PasswordSet {
		t.Errorf("BMC: got %+v, want %s, user %s, password set", got.BMC, wantBMC, l.sim.User)
	}
	var power struct {
		PowerState string `json:"power_state"`
	}
	if code := l.dev.call(t, "GET", "/machines/r740-1/power?refresh=true", l.dev.token, nil, &power); code != http.StatusOK || power.PowerState != "off" {
		t.Errorf("power through the stored BMC credentials: got %d %q, want 200 off", code, power.PowerState)
	}
	var adopted struct {
		OSName     string `json:"os_name"`
		Kernel     string `json:"kernel"`
		Address    string `json:"address"`
		SSHUser    string `json:"ssh_user"`
		SSHHostKey string `json:"ssh_host_key"`
	}
	if code := l.dev.call(t, "GET", "/machines/r740-1/adoption", l.dev.token, nil, &adopted); code != http.StatusOK {
		t.Fatalf("GET adoption: got %d", code)
	}
	osRelease := activities.ParseOSFacts(append([]byte("@@@ os-release\n"), must(os.ReadFile("/etc/os-release"))...))
	kernel, _ := exec.Command("uname", "-r").Output()
	if adopted.OSName != osRelease.Name || adopted.Kernel != strings.TrimSpace(string(kernel)) || adopted.Address != rd.Addr() ||
		adopted.SSHUser != "root" || adopted.SSHHostKey != rd.HostKey() {
		t.Errorf("adopted OS: got %+v, want %q, kernel %s, at %s as root, host key %s (trusted on first use)",
			adopted, osRelease.Name, kernel, rd.Addr(), rd.HostKey())
	}

	// Nothing changed on the server: its files are as they were, no
	// program that writes or powers off ran, only the read commands did,
	// and the BMC was only read.
	for path, before := range map[string][]byte{"/proc/cpuinfo": cpuinfo, "/proc/meminfo": meminfo, "/root/.ssh/authorized_keys": authorized} {
		if after, err := rd.ReadFile(path); err != nil || string(after) != string(before) {
			t.Errorf("%s changed during the adoption (%v)", path, err)
		}
	}
	if calls, err := os.ReadFile(marker); err == nil {
		t.Errorf("programs an adoption must not run were run:\n%s", calls)
	}
	reads := map[string]bool{activities.PrivilegeScript: true, activities.OSFactsScript: true}
	for _, c := range inventory.Commands() {
		reads[c.Script] = true
	}
	for _, c := range rd.Commands() {
		// Besides the inventory's scripts: the RAID inventory's look for
		// its tools, and its read of the md arrays.
		if !reads[c] && !strings.HasPrefix(c, `export PATH="${PATH:+$PATH:}/usr/sbin:/usr/bin:/sbin:/bin"; for t in `) && c != "cat /proc/mdstat" {
			t.Errorf("the adoption ran a command that is not one of the reads:\n%s", c)
		}
	}
	if !slices.Contains(rd.Commands(), activities.OSFactsScript) || !slices.ContainsFunc(rd.Commands(), func(c string) bool { return strings.Contains(c, "dmidecode") }) {
		t.Errorf("the adoption ran %q, want the inventory and OS reads", rd.Commands())
	}
	if calls := l.sim.Calls(); len(calls) != 0 {
		t.Errorf("the BMC was asked to change the hardware: %q", calls)
	}

	// The same BMC again is refused up front.
	if again, code := l.adopt(t, adoptBody("r740-again", l.sim, l.sim.Password, rd)); code != http.StatusConflict || again.Error == nil ||
		!strings.Contains(again.Error.Message, "r740-1") {
		t.Errorf("adopting the same BMC again: got %d %+v, want 409 naming r740-1", code, again.Error)
	}
	// The same server behind another BMC address and another SSH address:
	// its UUID is known, so it is refused and nothing is left.
	sim2 := ipmisim.Start(t, ipmisim.Options{})
	twin := l.liveDell(t, bareflowKey, ipmisimGUIDUUID, marker)
	op, code := l.adopt(t, adoptBody("r740-twin", sim2, sim2.Password, twin))
	if code != http.StatusAccepted {
		t.Fatalf("adopt twin: got %d %+v, want 202", code, op.Error)
	}
	l.failedAdoption(t, "r740-twin", op, contract.ErrDuplicateMachine)
	var page struct {
		Items []apiMachine `json:"items"`
	}
	if code := l.dev.call(t, "GET", "/machines", l.dev.token, nil, &page); code != http.StatusOK || len(page.Items) != 1 || page.Items[0].Name != "r740-1" {
		t.Errorf("machines after the refused adoptions: got %+v, want r740-1 alone", page.Items)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
