package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"bareflow/contract"
	"bareflow/internal/inventory"
	"bareflow/internal/lab/fakeramdisk"
	"bareflow/internal/lab/ipmisim"
)

// The captured outputs of a Dell PowerEdge R740 that the fake ramdisk
// serves, and the inventory they parse to.
const cannedDir = "../../internal/inventory/testdata/dell-r740"

// registerLab is bareflow dev, a simulated BMC and a machine to register.
type registerLab struct {
	o   devOptions
	dev *devProcess
	sim *ipmisim.Sim
	mac string
}

func newRegisterLab(t *testing.T) *registerLab {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFailIntegration(t, "the fake ramdisk needs root (mount namespace)")
	}
	for _, tool := range []string{"dropbear", "ipmitool", "ipmi_sim"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFailIntegration(t, "%s is not installed", tool)
		}
	}
	l := &registerLab{o: newDevOptions(t), sim: ipmisim.Start(t, ipmisim.Options{LAN: &ipmisim.LANConfig{MAC: net.HardwareAddr{0xd0, 0x94, 0x66, 0x1a, 0x2b, 0x40}}}), mac: "e4:43:4b:1a:2b:30"}
	l.dev = startDev(t, &l.o)
	return l
}

func skipOrFailIntegration(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(ipmisim.RequireIntegrationEnv) == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// bmcNetwork records a BMC network whose one address is where the
// simulated BMC listens.
func (l *registerLab) bmcNetwork(t *testing.T, addr string) {
	t.Helper()
	body := map[string]any{"name": "bmc", "kind": "bmc", "cidr": "127.0.0.0/24", "range_start": addr, "range_end": addr,
		"bmc_port": l.sim.Port}
	if code := l.dev.call(t, "POST", "/networks", l.dev.token, body, nil); code != http.StatusCreated {
		t.Fatalf("create BMC network: got %d, want 201", code)
	}
}

func (l *registerLab) createMachine(t *testing.T, name string) apiMachine {
	t.Helper()
	var m apiMachine
	if code := l.dev.call(t, "POST", "/machines", l.dev.token, map[string]any{"name": name, "pxe_mac": l.mac}, &m); code != http.StatusCreated {
		t.Fatalf("create machine: got %d, want 201", code)
	}
	return m
}

func (l *registerLab) register(t *testing.T, machine string, body map[string]any) apiOperation {
	t.Helper()
	var op apiOperation
	if code := l.dev.call(t, "POST", "/machines/"+machine+"/register", l.dev.token, body, &op); code != http.StatusAccepted {
		t.Fatalf("register: got %d, want 202", code)
	}
	return op
}

// bootScript is what the machine's iPXE gets: the ramdisk's command line
// carries the phone-home token and bareflow's SSH key.
type bootScript struct {
	machineID, token, sshKey string
}

var scriptArg = regexp.MustCompile(`bareflow\.(machine|token|ssh_key)=(\S+)`)

func (l *registerLab) fetchScript(t *testing.T) bootScript {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/boot/v1/ipxe/%s", l.o.bootPort, l.mac))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var s bootScript
	for _, m := range scriptArg.FindAllStringSubmatch(string(body), -1) {
		switch m[1] {
		case "machine":
			s.machineID = m[2]
		case "token":
			s.token = m[2]
		case "ssh_key":
			k, err := base64.RawURLEncoding.DecodeString(m[2])
			if err != nil {
				t.Fatalf("ssh_key on the command line: %v", err)
			}
			s.sshKey = string(k)
		}
	}
	if s.token == "" || s.sshKey == "" {
		t.Fatalf("iPXE script has no ramdisk token or SSH key:\n%s", body)
	}
	return s
}

// phoneHome posts what the ramdisk's init posts.
func (l *registerLab) phoneHome(t *testing.T, s bootScript, rd *fakeramdisk.Ramdisk, hostKey string) {
	t.Helper()
	host, port, _ := strings.Cut(rd.Addr(), ":")
	var p int
	fmt.Sscan(port, &p)
	body, _ := json.Marshal(map[string]any{"machine_id": s.machineID, "token": s.token, "addr": host, "ssh_port": p,
		"macs": []string{l.mac, "e4:43:4b:1a:2b:32"}, "ssh_host_key": hostKey})
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/boot/v1/phone-home", l.o.bootPort), "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("phone-home: got %d %s, want 200", resp.StatusCode, msg)
	}
}

// fakeDell starts an SSH server standing in for the ramdisk of a Dell R740:
// its tools print the R740's captured outputs, its /proc and /sys files are
// the R740's, and its ipmitool reaches the simulated BMC (as the in-band
// KCS interface would) with the factory credentials.
func (l *registerLab) fakeDell(t *testing.T, authorizedKey string, extraTools map[string]string) *fakeramdisk.Ramdisk {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(cannedDir, name+".out"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	opts := fakeramdisk.Options{
		AuthorizedKey: authorizedKey,
		Tools: map[string]string{
			"dmidecode": fakeramdisk.CannedOutput(read(inventory.CmdDmidecode)),
			"lspci":     fakeramdisk.CannedOutput(read(inventory.CmdLspci)),
			"lsblk":     fakeramdisk.CannedOutput(read(inventory.CmdLsblk)),
			"ip": fakeramdisk.CannedByArgs(
				fakeramdisk.Answer{Args: "-j link show", Stdout: read(inventory.CmdIPLink)},
				fakeramdisk.Answer{Args: "-j addr show", Stdout: read(inventory.CmdIPAddr)}),
			"ethtool": fakeramdisk.CannedByArgs(ethtoolAnswers(t, read(inventory.CmdEthtool))...),
			"ipmitool": fmt.Sprintf("exec %s -I lanplus -C 3 -H %s -p %d -U %s -P %s \"$@\"\n",
				ipmitoolPath(t), l.sim.Host, l.sim.Port, l.sim.User, l.sim.Password),
		},
		Files: map[string]string{
			"/proc/cpuinfo": read(inventory.CmdCPUInfo),
			"/proc/meminfo": read(inventory.CmdMeminfo),
		},
		Links:  map[string]string{},
		Shadow: []string{"/sys/block", "/sys/class/net", "/sys/firmware"},
	}
	for k, v := range extraTools {
		opts.Tools[k] = v
	}
	if strings.TrimSpace(read(inventory.CmdEFI)) == "uefi" {
		opts.Files["/sys/firmware/efi/systab"] = ""
	} else {
		opts.Files["/sys/firmware/.bios"] = ""
	}
	fakeSysfs(t, "/sys/block", read(inventory.CmdSysBlock), opts.Files, opts.Links, map[string]string{
		"size": "size", "removable": "removable", "rotational": "queue/rotational", "wwid": "wwid",
		"model": "device/model", "vendor": "device/vendor", "serial": "device/serial", "vpd_pg80": "device/vpd_pg80",
	})
	fakeSysfs(t, "/sys/class/net", read(inventory.CmdSysNet), opts.Files, opts.Links, map[string]string{
		"type": "type", "address": "address", "operstate": "operstate", "carrier": "carrier", "mtu": "mtu", "speed": "speed",
	})
	return fakeramdisk.Start(t, opts)
}

// ipmitoolPath is the real ipmitool, which the fake ramdisk's stand-in
// calls.
func ipmitoolPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ipmitool")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ethtoolAnswers splits the captured output of the ethtool script into the
// answers of `ethtool NAME` and `ethtool -i NAME`.
func ethtoolAnswers(t *testing.T, out string) []fakeramdisk.Answer {
	t.Helper()
	var answers []fakeramdisk.Answer
	var cur *fakeramdisk.Answer
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "@@@ ethtool-i "):
			answers = append(answers, fakeramdisk.Answer{Args: "-i " + strings.TrimPrefix(line, "@@@ ethtool-i ")})
			cur = &answers[len(answers)-1]
		case strings.HasPrefix(line, "@@@ ethtool "):
			answers = append(answers, fakeramdisk.Answer{Args: strings.TrimPrefix(line, "@@@ ethtool ")})
			cur = &answers[len(answers)-1]
		case strings.HasPrefix(line, "@@@ exit "):
			fmt.Sscan(strings.TrimPrefix(line, "@@@ exit "), &cur.Exit)
		case cur != nil:
			cur.Stdout += line + "\n"
		}
	}
	if len(answers) == 0 {
		t.Fatal("no ethtool sections in the captured output")
	}
	return answers
}

// fakeSysfs turns the captured output of a sysfs-reading script (sections
// of key=value lines) back into files and links below root: attrs maps a
// key to the file it was read from. A section's device becomes a link to a
// directory of the same path below root/.devices, holding a driver link,
// so that the script resolves the same PCI address and driver.
func fakeSysfs(t *testing.T, root, out string, files, links, attrs map[string]string) {
	t.Helper()
	var name string
	kv := map[string]string{}
	flush := func() {
		if name == "" {
			return
		}
		dir := root + "/" + name
		devDir := dir + "/device"
		if dev := kv["device"]; dev != "" {
			devDir = root + "/.devices" + dev
			links[dir+"/device"] = devDir
			if drv := kv["driver"]; drv != "" {
				// The driver belongs to the PCI function on the path.
				pci := devDir
				for p := devDir; strings.Contains(p, "/"); p = p[:strings.LastIndex(p, "/")] {
					if regexp.MustCompile(`:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`).MatchString(p) {
						pci = p
						break
					}
				}
				files[root+"/.drivers/"+drv+"/bind"] = ""
				links[pci+"/driver"] = root + "/.drivers/" + drv
			}
		}
		for key, file := range attrs {
			v, ok := kv[key]
			if !ok {
				continue
			}
			if key == "vpd_pg80" {
				b, err := hex.DecodeString(v)
				if err != nil {
					t.Fatalf("%s %s: vpd_pg80: %v", root, name, err)
				}
				v = string(b)
			} else {
				v += "\n"
			}
			path := dir + "/" + file
			if strings.HasPrefix(file, "device/") {
				path = devDir + "/" + strings.TrimPrefix(file, "device/")
			}
			files[path] = v
		}
		if _, ok := links[dir+"/device"]; !ok && name != "lo" && root == "/sys/block" {
			files[devDir+"/.keep"] = ""
		}
		name, kv = "", map[string]string{}
	}
	for _, line := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(line, "@@@ "); ok {
			flush()
			name = n
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	flush()
}

// goldenInventory is what the R740's outputs parse to.
func goldenInventory(t *testing.T) contract.Inventory {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cannedDir, "inventory.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var inv contract.Inventory
	if err := json.Unmarshal(b, &inv); err != nil {
		t.Fatal(err)
	}
	return inv
}

type apiMachineDetail struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
	BMC   *struct {
		Address     string `json:"address"`
		User        string `json:"user"`
		PasswordSet bool   `json:"password_set"`
	} `json:"bmc"`
	PowerState string              `json:"power_state"`
	CPUs       int                 `json:"cpus"`
	Memory     int64               `json:"memory_bytes"`
	Disks      int                 `json:"disks"`
	Hardware   *contract.Inventory `json:"hardware"`
	LastError  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"last_error"`
}

func (l *registerLab) machine(t *testing.T, ref string) apiMachineDetail {
	t.Helper()
	var m apiMachineDetail
	if code := l.dev.call(t, "GET", "/machines/"+ref, l.dev.token, nil, &m); code != http.StatusOK {
		t.Fatalf("get machine: got %d", code)
	}
	return m
}

// bmcUsers lists the users of the simulated BMC named name, asked with
// ipmitool and the factory credentials.
func (l *registerLab) bmcUsers(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("ipmitool", "-I", "lanplus", "-C", "3", "-H", l.sim.Host, "-p", fmt.Sprint(l.sim.Port),
		"-U", l.sim.User, "-P", l.sim.Password, "user", "list", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool user list: %v: %s", err, out)
	}
	var lines []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[1] == name {
			lines = append(lines, line)
		}
	}
	return lines
}

func TestDevRegisterWithFakeRamdisk(t *testing.T) {
	l := newRegisterLab(t)
	l.bmcNetwork(t, l.sim.Host)
	m := l.createMachine(t, "r740-1")
	op := l.register(t, m.Name, map[string]any{"bmc": map[string]any{"mode": "static"}})
	if got := l.dev.waitOperation(t, op.ID, "waiting_for_power_on", time.Minute); got.Step != "waiting_for_power_on" {
		t.Fatalf("operation: got step %s state %s, want waiting_for_power_on", got.Step, got.State)
	}
	var busy apiErr
	if code := l.dev.call(t, "POST", "/machines/"+m.Name+"/register", l.dev.token, map[string]any{}, &busy); code != http.StatusConflict {
		t.Errorf("second register while one runs: got %d, want 409", code)
	}

	// The operator powers the machine on: it network-boots the ramdisk,
	// which phones home.
	script := l.fetchScript(t)
	rd := l.fakeDell(t, script.sshKey, nil)
	started := time.Now()
	l.phoneHome(t, script, rd, rd.HostKey())
	done := l.dev.waitOperation(t, op.ID, "", 3*time.Minute)
	requireSucceeded(t, done)
	t.Logf("phone-home → ready: %.1fs", time.Since(started).Seconds())

	got := l.machine(t, m.ID)
	want := goldenInventory(t)
	if got.State != "ready" || got.Hardware == nil {
		t.Fatalf("machine: got state %s, hardware %v, want ready with hardware", got.State, got.Hardware != nil)
	}
	inv := *got.Hardware
	if inv.System != want.System || inv.CPU != want.CPU || inv.Memory.TotalBytes != want.Memory.TotalBytes ||
		len(inv.Memory.DIMMs) != len(want.Memory.DIMMs) || len(inv.PCI) != len(want.PCI) || inv.GPUCount() != want.GPUCount() {
		t.Errorf("inventory over SSH differs from the parsed captured outputs:\n got system %+v cpu %+v memory %d (%d DIMMs) %d PCI\nwant system %+v cpu %+v memory %d (%d DIMMs) %d PCI",
			inv.System, inv.CPU, inv.Memory.TotalBytes, len(inv.Memory.DIMMs), len(inv.PCI),
			want.System, want.CPU, want.Memory.TotalBytes, len(want.Memory.DIMMs), len(want.PCI))
	}
	if !slices.EqualFunc(inv.Disks, want.Disks, func(a, b contract.Disk) bool {
		return a.Name == b.Name && a.SizeBytes == b.SizeBytes && a.Type == b.Type && a.WWN == b.WWN && a.Serial == b.Serial &&
			a.Controller == b.Controller && a.ControllerDriver == b.ControllerDriver
	}) {
		t.Errorf("disks:\n got %+v\nwant %+v", inv.Disks, want.Disks)
	}
	if !slices.EqualFunc(inv.NICs, want.NICs, func(a, b contract.NIC) bool {
		return a.Name == b.Name && a.MAC == b.MAC && a.Driver == b.Driver && a.SpeedMbps == b.SpeedMbps && a.Link == b.Link && a.PCIAddr == b.PCIAddr
	}) {
		t.Errorf("NICs:\n got %+v\nwant %+v", inv.NICs, want.NICs)
	}
	if len(inv.RAID) == 0 || inv.RAID[0].Driver != "megaraid_sas" {
		t.Errorf("RAID controllers: got %+v, want the PERC (megaraid_sas)", inv.RAID)
	}
	if inv.System.Vendor != "Dell Inc." || inv.CPU.Threads == 0 || got.CPUs != inv.CPU.Threads || got.Disks != len(inv.Disks) {
		t.Errorf("summary: vendor %q, CPUs %d (threads %d), disks %d (%d)", inv.System.Vendor, got.CPUs, inv.CPU.Threads, got.Disks, len(inv.Disks))
	}

	// The BMC: set up in-band, verified, recorded, and working through
	// bareflow with the new user.
	wantBMC := fmt.Sprintf("%s:%d", l.sim.Host, l.sim.Port)
	if got.BMC == nil || got.BMC.Address != wantBMC || got.BMC.User != "bareflow" || !got.BMC.PasswordSet {
		t.Fatalf("BMC: got %+v, want %s, user bareflow, password set", got.BMC, wantBMC)
	}
	if users := l.bmcUsers(t, "bareflow"); len(users) != 1 || !strings.Contains(users[0], "ADMINISTRATOR") {
		t.Errorf("BMC users named bareflow: got %q, want one administrator", users)
	}
	var power struct {
		PowerState string `json:"power_state"`
	}
	if code := l.dev.call(t, "GET", "/machines/"+m.ID+"/power", l.dev.token, nil, &power); code != http.StatusOK || power.PowerState != "off" {
		t.Errorf("power through the new credentials: got %d %q, want 200 off (powered off after registration)", code, power.PowerState)
	}
	if rd.Commands() == nil || !slices.ContainsFunc(rd.Commands(), func(c string) bool { return strings.Contains(c, "dmidecode") }) {
		t.Errorf("the ramdisk ran %q, want the inventory commands", rd.Commands())
	}

	// Listing filters see the new hardware.
	var page struct {
		Items []apiMachine `json:"items"`
	}
	q := fmt.Sprintf("/machines?vendor=%s&cpus_min=%d&memory_min=%d&disks_min=%d", "Dell%20Inc.", inv.CPU.Threads, inv.Memory.TotalBytes, len(inv.Disks))
	if code := l.dev.call(t, "GET", q, l.dev.token, nil, &page); code != http.StatusOK || len(page.Items) != 1 {
		t.Errorf("filtered listing %s: got %d with %d machines, want 1", q, code, len(page.Items))
	}
	q = fmt.Sprintf("/machines?cpus_min=%d", inv.CPU.Threads+1)
	if code := l.dev.call(t, "GET", q, l.dev.token, nil, &page); code != http.StatusOK || len(page.Items) != 0 {
		t.Errorf("filtered listing %s: got %d with %d machines, want none", q, code, len(page.Items))
	}

	// The CLI shows the hardware and filters by it.
	cli := func(args ...string) string {
		t.Helper()
		var out, errOut strings.Builder
		getenv := func(k string) string {
			return map[string]string{"BAREFLOW_API_URL": l.dev.apiURL, "BAREFLOW_TOKEN": l.dev.token}[k]
		}
		if err := run(t.Context(), args, getenv, &out, &errOut); err != nil {
			t.Fatalf("bareflow %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	show := cli("machine", "show", m.Name)
	for _, want := range []string{"PowerEdge R740", inv.CPU.Model, fmt.Sprintf("%d threads", inv.CPU.Threads), "Disk " + inv.Disks[0].Name, "NIC " + inv.NICs[0].Name, "bareflow"} {
		if !strings.Contains(show, want) {
			t.Errorf("machine show lacks %q:\n%s", want, show)
		}
	}
	if list := cli("machine", "list", "--cpus-min", fmt.Sprint(inv.CPU.Threads), "--memory-min", "1GiB"); !strings.Contains(list, m.Name) {
		t.Errorf("machine list --cpus-min %d lacks %s:\n%s", inv.CPU.Threads, m.Name, list)
	}
	if list := cli("machine", "list", "--cpus-min", fmt.Sprint(inv.CPU.Threads+1)); strings.Contains(list, m.Name) {
		t.Errorf("machine list --cpus-min %d shows %s:\n%s", inv.CPU.Threads+1, m.Name, list)
	}
}

func TestDevRegisterFailures(t *testing.T) {
	l := newRegisterLab(t)

	t.Run("phone-home never comes", func(t *testing.T) {
		m := l.createMachine(t, "silent-1")
		op := l.register(t, m.Name, map[string]any{"ramdisk_timeout_seconds": 3, "bmc": map[string]any{"mode": "skip"}})
		done := l.dev.waitOperation(t, op.ID, "", time.Minute)
		if done.State != "failed" || done.Error == nil || done.Error.Code != contract.ErrRamdiskTimeout {
			t.Fatalf("operation: got %s %+v, want failed %s", done.State, done.Error, contract.ErrRamdiskTimeout)
		}
		got := l.machine(t, m.ID)
		if got.State != "error" || got.LastError == nil || got.LastError.Code != contract.ErrRamdiskTimeout {
			t.Errorf("machine: got %s %+v, want error with %s", got.State, got.LastError, contract.ErrRamdiskTimeout)
		}
		// No boot intent is left: the machine boots its disk again.
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/boot/v1/ipxe/%s", l.o.bootPort, l.mac))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "bareflow.token=") {
			t.Errorf("iPXE script after the timeout still loads the ramdisk:\n%s", body)
		}
		deleteMachine(t, l.dev, m.ID)
	})

	t.Run("wrong host key", func(t *testing.T) {
		m := l.createMachine(t, "impostor-1")
		op := l.register(t, m.Name, map[string]any{"bmc": map[string]any{"mode": "skip"}})
		l.dev.waitOperation(t, op.ID, "waiting_for_power_on", time.Minute)
		script := l.fetchScript(t)
		rd := l.fakeDell(t, script.sshKey, nil)
		other := l.fakeDell(t, script.sshKey, nil)
		// The ramdisk phones home with one host key; another host answers.
		l.phoneHome(t, script, rd, other.HostKey())
		done := l.dev.waitOperation(t, op.ID, "", 2*time.Minute)
		if done.State != "failed" || done.Error == nil || done.Error.Code != contract.ErrHostKeyMismatch {
			t.Fatalf("operation: got %s %+v, want failed %s", done.State, done.Error, contract.ErrHostKeyMismatch)
		}
		if cmds := rd.Commands(); len(cmds) != 0 {
			t.Errorf("commands run on a host with the wrong key: %q", cmds)
		}
		deleteMachine(t, l.dev, m.ID)
	})

	t.Run("BMC unreachable after configuration", func(t *testing.T) {
		// The BMC network's one address is one where no BMC answers.
		l.bmcNetwork(t, "127.0.0.9")
		m := l.createMachine(t, "lost-bmc-1")
		op := l.register(t, m.Name, map[string]any{"bmc": map[string]any{"mode": "static", "verify_seconds": 10}})
		l.dev.waitOperation(t, op.ID, "waiting_for_power_on", time.Minute)
		script := l.fetchScript(t)
		rd := l.fakeDell(t, script.sshKey, nil)
		l.phoneHome(t, script, rd, rd.HostKey())
		done := l.dev.waitOperation(t, op.ID, "", 3*time.Minute)
		if done.State != "failed" || done.Error == nil || done.Error.Code != contract.ErrBMCUnreachable ||
			!strings.Contains(done.Error.Message, "127.0.0.9") {
			t.Fatalf("operation: got %s %+v, want failed %s naming 127.0.0.9", done.State, done.Error, contract.ErrBMCUnreachable)
		}
		got := l.machine(t, m.ID)
		if got.BMC != nil {
			t.Errorf("machine BMC: got %+v, want none recorded", got.BMC)
		}
		if got.State != "error" || got.Hardware == nil {
			t.Errorf("machine: got state %s (hardware %v), want error with its inventory kept", got.State, got.Hardware != nil)
		}
	})
}

func TestDevRegisterSurvivesWorkerKill(t *testing.T) {
	l := newRegisterLab(t)
	l.bmcNetwork(t, l.sim.Host)
	m := l.createMachine(t, "r740-kill")
	op := l.register(t, m.Name, map[string]any{"bmc": map[string]any{"mode": "static"}})
	l.dev.waitOperation(t, op.ID, "waiting_for_power_on", time.Minute)
	script := l.fetchScript(t)

	// dmidecode answers slowly, and says when it starts.
	marker := filepath.Join(t.TempDir(), "collecting")
	dmidecode, err := os.ReadFile(filepath.Join(cannedDir, inventory.CmdDmidecode+".out"))
	if err != nil {
		t.Fatal(err)
	}
	slow := fmt.Sprintf("touch %s\nsleep 3\n%s", marker, fakeramdisk.CannedOutput(string(dmidecode)))
	rd := l.fakeDell(t, script.sshKey, map[string]string{"dmidecode": slow})
	l.phoneHome(t, script, rd, rd.HostKey())

	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collection did not start:\n%s", l.dev.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The whole of bareflow dies in the middle of the collection.
	l.dev.kill(syscall.SIGKILL)
	restarted := time.Now()
	l.dev = startDev(t, &l.o)
	done := l.dev.waitOperation(t, op.ID, "", 4*time.Minute)
	requireSucceeded(t, done)
	t.Logf("restart → registration done: %.1fs", time.Since(restarted).Seconds())
	if got := l.machine(t, m.ID); got.State != "ready" || got.BMC == nil || got.BMC.User != "bareflow" {
		t.Errorf("machine: got %s, BMC %+v, want ready with bareflow's BMC user", got.State, got.BMC)
	}
	if users := l.bmcUsers(t, "bareflow"); len(users) != 1 {
		t.Errorf("BMC users named bareflow after a crash and a retry: got %q, want exactly one", users)
	}
	var page struct {
		Items []apiMachine `json:"items"`
	}
	if code := l.dev.call(t, "GET", "/machines", l.dev.token, nil, &page); code != http.StatusOK || len(page.Items) != 1 {
		t.Errorf("machines after the crash: got %d, want exactly one", len(page.Items))
	}
}

func TestDevImages(t *testing.T) {
	o := newDevOptions(t)
	dev := startDev(t, &o)
	cli := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		getenv := func(k string) string {
			return map[string]string{"BAREFLOW_API_URL": dev.apiURL, "BAREFLOW_TOKEN": dev.token}[k]
		}
		err := run(t.Context(), args, getenv, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	sum := strings.Repeat("0f", 32)
	if out, err := cli("image", "create", "debian-12", "--url", "https://images.example.net/d12.raw.zst", "--format", "raw.zst",
		"--checksum", "sha256:"+sum, "--os", "debian", "--boot", "uefi", "--header", "X-Auth-Token: s3cr3t"); err != nil {
		t.Fatalf("image create: %v\n%s", err, out)
	}
	var im map[string]any
	if code := dev.call(t, "GET", "/images/debian-12", dev.token, nil, &im); code != http.StatusOK {
		t.Fatalf("get image: %d", code)
	}
	raw, _ := json.Marshal(im)
	if strings.Contains(string(raw), "s3cr3t") || im["checksum"] != sum || im["os_family"] != "debian" {
		t.Errorf("image: got %s, want the checksum, debian, and no header value", raw)
	}
	if out, err := cli("image", "list"); err != nil || !strings.Contains(out, "debian-12") {
		t.Errorf("image list: %v\n%s", err, out)
	}
	var e apiErr
	if code := dev.call(t, "POST", "/images", dev.token, map[string]any{"name": "bad", "url": "file:///etc/shadow", "format": "raw",
		"checksum": sum}, &e); code != http.StatusBadRequest {
		t.Errorf("file URL: got %d %+v, want 400", code, e)
	}
	if out, err := cli("image", "delete", "debian-12"); err != nil {
		t.Errorf("image delete: %v\n%s", err, out)
	}
}

// deleteMachine deletes a machine whose operation has ended. The operation's
// record is final a moment before its workflow closes, and a machine with a
// running workflow cannot be deleted (409): that moment is waited out.
func deleteMachine(t *testing.T, dev *devProcess, id string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code := dev.call(t, "DELETE", "/machines/"+id, dev.token, nil, nil)
		if code == http.StatusNoContent {
			return
		}
		if code != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("delete machine: got %d, want 204", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
