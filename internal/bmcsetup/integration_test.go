package bmcsetup_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"bareflow/contract"
	"bareflow/internal/bmc"
	"bareflow/internal/bmcsetup"
	"bareflow/internal/lab/ipmisim"
	"bareflow/internal/secret"
)

var capture = flag.Bool("capture", false, "rewrite testdata/ipmisim/*.txt from a live ipmi_sim")

// lanplusRunner runs ipmitool over RMCP+ (cipher suite 3) against a
// simulated BMC as its administrator, the way the ramdisk runs it in-band.
type lanplusRunner struct {
	sim *ipmisim.Sim

	mu       sync.Mutex
	displays []string
}

func (r *lanplusRunner) RunIPMITool(ctx context.Context, args []string, display string) (string, error) {
	r.mu.Lock()
	r.displays = append(r.displays, display)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	base := []string{"-I", "lanplus", "-C", "3", "-H", r.sim.Host, "-p", fmt.Sprint(r.sim.Port), "-U", r.sim.User, "-P", r.sim.Password}
	cmd := exec.CommandContext(ctx, "ipmitool", append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (r *lanplusRunner) Displays() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.displays)
}

// startSim starts ipmi_sim with a LAN store, skipping the test when
// ipmitool is missing (ipmisim.Start does the same for ipmi_sim).
func startSim(t *testing.T, lan ipmisim.LANConfig) (*ipmisim.Sim, *lanplusRunner) {
	t.Helper()
	if _, err := exec.LookPath("ipmitool"); err != nil {
		if os.Getenv(ipmisim.RequireIntegrationEnv) == "1" {
			t.Fatalf("ipmitool not found (%v) and %s=1", err, ipmisim.RequireIntegrationEnv)
		}
		t.Skipf("ipmitool not found (%v): install the ipmitool package, or set %s=1 to make this a failure", err, ipmisim.RequireIntegrationEnv)
	}
	s := ipmisim.Start(t, ipmisim.Options{LAN: &lan})
	return s, &lanplusRunner{sim: s}
}

func labPassword(t *testing.T) secret.String {
	t.Helper()
	p, _ := bmcsetup.ProfileByName("lab")
	pw, err := bmcsetup.GeneratePassword(p)
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

func integrationContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// checkLogin dials the BMC as user with go-ipmi (RMCP+, cipher suite 3)
// and reads the power state.
func checkLogin(t *testing.T, s *ipmisim.Sim, user string, pw secret.String) {
	t.Helper()
	ctx := integrationContext(t)
	c, err := bmc.Dial(ctx, bmc.Target{Addr: s.Addr(), Username: user, Password: pw, CipherSuite: 3}, bmc.Config{Timeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("dial as %s with the configured password: %v", user, err)
	}
	defer c.Close(ctx)
	if got, err := c.PowerState(ctx); err != nil || got != contract.PowerOff {
		t.Errorf("PowerState as %s = %v, %v; want %s", user, got, err, contract.PowerOff)
	}
}

// usersNamed returns the IDs of the users called name in "user list 1".
func usersNamed(t *testing.T, r *lanplusRunner, name string) []int {
	t.Helper()
	out, err := r.RunIPMITool(integrationContext(t), []string{"user", "list", "1"}, "ipmitool user list 1")
	if err != nil {
		t.Fatal(err)
	}
	users, err := bmcsetup.ParseUserList(out)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, u := range users {
		if u.Name == name {
			ids = append(ids, u.ID)
		}
	}
	return ids
}

func noPasswordShown(t *testing.T, r *lanplusRunner, pw secret.String, res bmcsetup.Result, err error) {
	t.Helper()
	for _, d := range r.Displays() {
		if strings.Contains(d, pw.Reveal()) {
			t.Errorf("display %q shows the password", d)
		}
	}
	if err != nil && strings.Contains(err.Error(), pw.Reveal()) {
		t.Errorf("error shows the password: %v", err)
	}
	if s := fmt.Sprintf("%+v", res); strings.Contains(s, pw.Reveal()) {
		t.Errorf("result shows the password: %s", s)
	}
}

func TestConfigureIPMISimStatic(t *testing.T) {
	t.Parallel()
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	s, r := startSim(t, ipmisim.LANConfig{IPSource: "dhcp", MAC: mac})
	pw := labPassword(t)
	req := bmcsetup.Request{
		Vendor:       "QEMU",
		IPSource:     bmcsetup.IPStatic,
		Addr:         netip.MustParseAddr("192.0.2.10"),
		Prefix:       24,
		Gateway:      netip.MustParseAddr("192.0.2.1"),
		Password:     pw.Reveal(),
		PollInterval: 200 * time.Millisecond,
	}

	res, err := bmcsetup.Configure(integrationContext(t), r, req)
	noPasswordShown(t, r, pw, res, err)
	if err != nil {
		t.Fatalf("Configure: %v\nipmi_sim log:\n%s", err, s.Log())
	}
	want := bmcsetup.Result{
		Profile: "lab", Channel: 1, Slot: 3, Username: "bareflow",
		IPSource: "static", Addr: req.Addr, Prefix: 24, Gateway: req.Gateway, MAC: mac.String(),
		Changed: []string{
			"user 3 name bareflow", "user 3 password", "user 3 privilege ADMINISTRATOR",
			"user 3 channel access", "user 3 enable",
			"ipsrc static", "ipaddr 192.0.2.10", "netmask 255.255.255.0", "defgw 192.0.2.1",
		},
	}
	checkResult(t, res, want)
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "SOL payload") {
		t.Errorf("Warnings = %q, want one about the SOL payload, which ipmi_sim lacks", res.Warnings)
	}
	if got, want := res.BMC.ManufacturerID, 4753; got != want {
		t.Errorf("BMC.ManufacturerID = %d, want %d", got, want)
	}

	// The BMC's side: the LAN store holds the settings, the user logs in.
	st, err := s.LAN()
	if err != nil {
		t.Fatal(err)
	}
	if st.IPSource != "static" || st.Addr != req.Addr || st.Netmask != netip.MustParseAddr("255.255.255.0") || st.Gateway != req.Gateway {
		t.Errorf("BMC LAN settings = %+v, want static 192.0.2.10/255.255.255.0 via 192.0.2.1", st)
	}
	checkLogin(t, s, "bareflow", pw)
	writes := s.LANWrites()

	if *capture {
		captureOutputs(t, r)
	}

	// A second run finds everything in place: it writes the password only.
	res2, err := bmcsetup.Configure(integrationContext(t), r, req)
	noPasswordShown(t, r, pw, res2, err)
	if err != nil {
		t.Fatalf("second Configure: %v", err)
	}
	want.Changed = []string{"user 3 password"}
	checkResult(t, res2, want)
	if got := s.LANWrites(); !slices.Equal(got, writes) {
		t.Errorf("second run wrote LAN settings: %q, want none beyond %q", got[len(writes):], writes)
	}
	if got := usersNamed(t, r, "bareflow"); !slices.Equal(got, []int{3}) {
		t.Errorf("users named bareflow: %v, want [3]", got)
	}
	checkLogin(t, s, "bareflow", pw)

	// A new password replaces the old one in the same slot.
	req.Password = labPassword(t).Reveal()
	res3, err := bmcsetup.Configure(integrationContext(t), r, req)
	if err != nil {
		t.Fatalf("Configure with a new password: %v", err)
	}
	checkResult(t, res3, want)
	checkLogin(t, s, "bareflow", secret.String(req.Password))
}

func checkResult(t *testing.T, got, want bmcsetup.Result) {
	t.Helper()
	got.BMC, got.Warnings = bmcsetup.MCInfo{}, nil
	want.BMC, want.Warnings = bmcsetup.MCInfo{}, nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Result:\n got %+v\nwant %+v", got, want)
	}
}

func TestConfigureIPMISimDHCP(t *testing.T) {
	t.Parallel()
	s, r := startSim(t, ipmisim.LANConfig{
		Addr: netip.MustParseAddr("192.0.2.50"), Netmask: netip.MustParseAddr("255.255.255.0"),
		DHCPLease: netip.MustParsePrefix("198.51.100.7/24"), DHCPGateway: netip.MustParseAddr("198.51.100.1"),
		DHCPDelay: 2 * time.Second,
	})
	req := bmcsetup.Request{
		Vendor: "bareflow-lab", IPSource: bmcsetup.IPDHCP, Password: labPassword(t).Reveal(),
		AddrWait: 20 * time.Second, PollInterval: 250 * time.Millisecond,
	}
	start := time.Now()
	res, err := bmcsetup.Configure(integrationContext(t), r, req)
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if time.Since(start) < time.Second {
		t.Errorf("Configure returned after %s, before the lease could arrive", time.Since(start))
	}
	if res.IPSource != "dhcp" || res.Addr != netip.MustParseAddr("198.51.100.7") || res.Prefix != 24 ||
		res.Gateway != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("Result LAN = %s %s/%d via %s, want dhcp 198.51.100.7/24 via 198.51.100.1", res.IPSource, res.Addr, res.Prefix, res.Gateway)
	}
	if !slices.Contains(res.Changed, "ipsrc dhcp") {
		t.Errorf("Changed = %q, want it to hold \"ipsrc dhcp\"", res.Changed)
	}
	if got, want := s.LANWrites(), []string{"ip_addr_src dhcp"}; !slices.Equal(got, want) {
		t.Errorf("LANWrites() = %q, want %q", got, want)
	}
}

func TestConfigureIPMISimDHCPTimeout(t *testing.T) {
	t.Parallel()
	_, r := startSim(t, ipmisim.LANConfig{})
	req := bmcsetup.Request{
		Vendor: "QEMU", IPSource: bmcsetup.IPDHCP, Password: labPassword(t).Reveal(),
		AddrWait: time.Second, PollInterval: 200 * time.Millisecond,
	}
	_, err := bmcsetup.Configure(integrationContext(t), r, req)
	if !errors.Is(err, bmcsetup.ErrDHCPTimeout) {
		t.Fatalf("Configure without a DHCP server: err = %v, want ErrDHCPTimeout", err)
	}
}

func TestConfigureIPMISimKeep(t *testing.T) {
	t.Parallel()
	s, r := startSim(t, ipmisim.LANConfig{Addr: netip.MustParseAddr("192.0.2.60"), Netmask: netip.MustParseAddr("255.255.255.192")})
	req := bmcsetup.Request{Vendor: "QEMU", IPSource: bmcsetup.IPKeep, Password: labPassword(t).Reveal()}
	res, err := bmcsetup.Configure(integrationContext(t), r, req)
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if res.Addr != netip.MustParseAddr("192.0.2.60") || res.Prefix != 26 || res.IPSource != "static" {
		t.Errorf("Result LAN = %s %s/%d, want static 192.0.2.60/26", res.IPSource, res.Addr, res.Prefix)
	}
	if w := s.LANWrites(); len(w) != 0 {
		t.Errorf("LANWrites() = %q, want none", w)
	}
}

// TestConfigureIPMISimResumesSlot stands for a run that crashed after it
// named its user: the next run finds the name and finishes that slot.
func TestConfigureIPMISimResumesSlot(t *testing.T) {
	t.Parallel()
	s, r := startSim(t, ipmisim.LANConfig{})
	ctx := integrationContext(t)
	for _, args := range [][]string{{"user", "set", "name", "3", "ops"}, {"user", "set", "name", "5", "bareflow"}} {
		if _, err := r.RunIPMITool(ctx, args, strings.Join(args, " ")); err != nil {
			t.Fatal(err)
		}
	}
	pw := labPassword(t)
	res, err := bmcsetup.Configure(ctx, r, bmcsetup.Request{Vendor: "QEMU", IPSource: bmcsetup.IPKeep, Password: pw.Reveal()})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if res.Slot != 5 {
		t.Errorf("Slot = %d, want 5, where the name already was", res.Slot)
	}
	if got := usersNamed(t, r, "bareflow"); !slices.Equal(got, []int{5}) {
		t.Errorf("users named bareflow: %v, want [5]", got)
	}
	checkLogin(t, s, "bareflow", pw)
}

func TestConfigureIPMISimNoUserSlot(t *testing.T) {
	t.Parallel()
	_, r := startSim(t, ipmisim.LANConfig{})
	ctx := integrationContext(t)
	for _, args := range [][]string{{"user", "set", "name", "3", "ops"}, {"user", "set", "name", "4", "backup"}} {
		if _, err := r.RunIPMITool(ctx, args, strings.Join(args, " ")); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := bmcsetup.ProfileByName("lab")
	p.MaxSlot = 4
	_, err := bmcsetup.Configure(ctx, r, bmcsetup.Request{Profile: &p, IPSource: bmcsetup.IPKeep, Password: labPassword(t).Reveal()})
	if !errors.Is(err, bmcsetup.ErrNoUserSlot) {
		t.Fatalf("Configure with slots 3 and 4 taken: err = %v, want ErrNoUserSlot", err)
	}
}

// TestConfigureIPMISimReset runs a profile that cold-resets the BMC after a
// LAN change. ipmi_sim lacks Cold Reset, so this checks the sequence and the
// wait for the BMC to answer, not a reset.
func TestConfigureIPMISimReset(t *testing.T) {
	t.Parallel()
	_, r := startSim(t, ipmisim.LANConfig{})
	p, _ := bmcsetup.ProfileByName("lab")
	p.ResetAfterLANChange = true
	p.ResetDelay = time.Millisecond
	p.ResetWait = 10 * time.Second
	req := bmcsetup.Request{
		Profile: &p, IPSource: bmcsetup.IPStatic, Addr: netip.MustParseAddr("192.0.2.70"), Prefix: 24,
		Password: labPassword(t).Reveal(), PollInterval: 100 * time.Millisecond,
	}
	res, err := bmcsetup.Configure(integrationContext(t), r, req)
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if !slices.Contains(res.Changed, "mc reset cold") {
		t.Errorf("Changed = %q, want it to hold \"mc reset cold\"", res.Changed)
	}
	i := slices.Index(r.Displays(), "ipmitool mc reset cold")
	if i < 0 || i+1 >= len(r.Displays()) || r.Displays()[i+1] != "ipmitool mc info" {
		t.Errorf("commands %q: want mc info right after mc reset cold", r.Displays())
	}
}

// TestParseLiveIPMISim parses what a live ipmi_sim prints, beyond the
// captured files.
func TestParseLiveIPMISim(t *testing.T) {
	t.Parallel()
	_, r := startSim(t, ipmisim.LANConfig{Addr: netip.MustParseAddr("192.0.2.80"), Netmask: netip.MustParseAddr("255.255.255.0")})
	ctx := integrationContext(t)
	run := func(args ...string) string {
		out, err := r.RunIPMITool(ctx, args, strings.Join(args, " "))
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	ci, err := bmcsetup.ParseChannelInfo(run("channel", "info", "1"))
	if err != nil || !ci.IsLAN() || ci.AccessMode != bmcsetup.AccessAlways {
		t.Errorf("channel info 1 = %+v, %v; want an always available LAN channel", ci, err)
	}
	lan, err := bmcsetup.ParseLANPrint(run("lan", "print", "1"))
	if err != nil || lan.Addr != netip.MustParseAddr("192.0.2.80") {
		t.Errorf("lan print 1 = %+v, %v; want address 192.0.2.80", lan, err)
	}
	users, err := bmcsetup.ParseUserList(run("user", "list", "1"))
	if err != nil || len(users) != 63 || users[1].Name != "admin" || users[1].Privilege != bmcsetup.PrivAdministrator {
		t.Errorf("user list 1: %d users, %v; want 63 with admin in slot 2", len(users), err)
	}
	d, err := bmcsetup.Discover(ctx, r, bmcsetup.Generic())
	if err != nil || d.Channel != 1 || d.LAN.MAC.String() != "02:00:00:00:62:66" || d.LAN.Addr != netip.MustParseAddr("192.0.2.80") {
		t.Errorf("Discover = %+v, %v; want channel 1, MAC 02:00:00:00:62:66, address 192.0.2.80", d, err)
	}
	mc, err := bmcsetup.ParseMCInfo(run("mc", "info"))
	if err != nil || mc.ManufacturerID != 4753 || mc.ProductID != 3842 {
		t.Errorf("mc info = %+v, %v; want manufacturer 4753, product 3842", mc, err)
	}
}

// captureOutputs rewrites testdata/ipmisim/ from the live simulator, after
// Configure set it up.
func captureOutputs(t *testing.T, r *lanplusRunner) {
	t.Helper()
	ctx := integrationContext(t)
	files := map[string][]string{
		"mc_info.txt":              {"mc", "info"},
		"channel_info_1.txt":       {"channel", "info", "1"},
		"lan_print_1.txt":          {"lan", "print", "1"},
		"user_list_1.txt":          {"user", "list", "1"},
		"channel_getaccess_3.txt":  {"channel", "getaccess", "1", "3"},
		"channel_info_0.txt":       {"channel", "info", "0"},
		"channel_info_2_error.txt": {"channel", "info", "2"},
		"channel_info_15.txt":      {"channel", "info", "15"},
	}
	dir := filepath.Join("testdata", "ipmisim")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, args := range files {
		out, err := r.RunIPMITool(ctx, args, strings.Join(args, " "))
		if err != nil {
			out += err.Error() + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
