package ipmisim_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bareflow/internal/lab/ipmisim"
)

// lanPrint runs "lan print 1" and returns its "Label : value" lines as a map.
func lanPrint(t *testing.T, s *ipmisim.Sim) map[string]string {
	t.Helper()
	out := mustIPMITool(t, s, "lan", "print", "1")
	m := map[string]string{}
	for line := range strings.Lines(out) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) != "" {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestLANStoreStatic(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	s := ipmisim.Start(t, ipmisim.Options{LAN: &ipmisim.LANConfig{IPSource: "dhcp", MAC: mac}})

	before := lanPrint(t, s)
	for k, want := range map[string]string{
		"IP Address Source": "DHCP Address",
		"IP Address":        "0.0.0.0",
		"MAC Address":       "02:11:22:33:44:55",
	} {
		if got := before[k]; got != want {
			t.Errorf("before: lan print %q = %q, want %q", k, got, want)
		}
	}

	for _, args := range [][]string{
		{"lan", "set", "1", "ipsrc", "static"},
		{"lan", "set", "1", "ipaddr", "192.0.2.10"},
		{"lan", "set", "1", "netmask", "255.255.255.0"},
		{"lan", "set", "1", "defgw", "ipaddr", "192.0.2.1"},
	} {
		mustIPMITool(t, s, args...)
	}
	want := map[string]string{
		"IP Address Source":  "Static Address",
		"IP Address":         "192.0.2.10",
		"Subnet Mask":        "255.255.255.0",
		"Default Gateway IP": "192.0.2.1",
		"MAC Address":        "02:11:22:33:44:55",
	}
	check := func(when string) {
		t.Helper()
		got := lanPrint(t, s)
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: lan print %q = %q, want %q", when, k, got[k], w)
			}
		}
	}
	check("after set")

	st, err := s.LAN()
	if err != nil {
		t.Fatal(err)
	}
	wantState := ipmisim.LANState{
		IPSource: "static",
		Addr:     netip.MustParseAddr("192.0.2.10"),
		Netmask:  netip.MustParseAddr("255.255.255.0"),
		Gateway:  netip.MustParseAddr("192.0.2.1"),
		MAC:      mac,
	}
	if fmt.Sprint(st) != fmt.Sprint(wantState) {
		t.Errorf("LAN() = %+v, want %+v", st, wantState)
	}
	wantWrites := []string{"ip_addr_src static", "ip_addr 192.0.2.10", "subnet_mask 255.255.255.0", "default_gw_ip_addr 192.0.2.1"}
	if got := s.LANWrites(); !slices.Equal(got, wantWrites) {
		t.Errorf("LANWrites() = %q, want %q", got, wantWrites)
	}

	s.Restart(t)
	check("after Restart")
}

func TestLANStoreDHCP(t *testing.T) {
	tests := map[string]struct {
		lan        ipmisim.LANConfig
		wantAddr   string
		wantMask   string
		wantGW     string
		waitAtMost time.Duration
	}{
		"lease at once": {
			lan:      ipmisim.LANConfig{Addr: netip.MustParseAddr("192.0.2.10"), DHCPLease: netip.MustParsePrefix("198.51.100.7/24"), DHCPGateway: netip.MustParseAddr("198.51.100.1")},
			wantAddr: "198.51.100.7", wantMask: "255.255.255.0", wantGW: "198.51.100.1",
		},
		"lease after a delay": {
			lan:      ipmisim.LANConfig{DHCPLease: netip.MustParsePrefix("198.51.100.8/25"), DHCPDelay: 2 * time.Second},
			wantAddr: "198.51.100.8", wantMask: "255.255.255.128", wantGW: "0.0.0.0",
			waitAtMost: 5 * time.Second,
		},
		"no DHCP server": {
			lan:      ipmisim.LANConfig{Addr: netip.MustParseAddr("192.0.2.10")},
			wantAddr: "0.0.0.0", wantMask: "0.0.0.0", wantGW: "0.0.0.0",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := ipmisim.Start(t, ipmisim.Options{LAN: &tc.lan})
			mustIPMITool(t, s, "lan", "set", "1", "ipsrc", "dhcp")
			deadline := time.Now().Add(tc.waitAtMost)
			var got map[string]string
			for {
				got = lanPrint(t, s)
				if got["IP Address"] != "0.0.0.0" || !time.Now().Before(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			for k, want := range map[string]string{
				"IP Address Source": "DHCP Address", "IP Address": tc.wantAddr,
				"Subnet Mask": tc.wantMask, "Default Gateway IP": tc.wantGW,
			} {
				if got[k] != want {
					t.Errorf("lan print %q = %q, want %q", k, got[k], want)
				}
			}
		})
	}
}

// TestLANStoreDHCPDelay checks that the lease is not there before its delay.
func TestLANStoreDHCPDelay(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{LAN: &ipmisim.LANConfig{
		DHCPLease: netip.MustParsePrefix("198.51.100.9/24"), DHCPDelay: 30 * time.Second,
	}})
	mustIPMITool(t, s, "lan", "set", "1", "ipsrc", "dhcp")
	if got := lanPrint(t, s)["IP Address"]; got != "0.0.0.0" {
		t.Errorf("IP Address right after ipsrc dhcp = %q, want 0.0.0.0 until the lease arrives", got)
	}
}

// TestLANStoreCheck runs the store's script the way ipmi_sim does for an
// address source. Through ipmitool a refused source takes a minute of
// retries, so the refusal is checked on the script alone.
func TestLANStoreCheck(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{LAN: &ipmisim.LANConfig{}})
	script := filepath.Join(s.Dir, "lancontrol")
	tests := map[string]struct {
		src    string
		wantOK bool
	}{
		"static": {"static", true},
		"dhcp":   {"dhcp", true},
		"bios":   {"bios", false},
		"none":   {"unknown", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := exec.Command(script, "1", "check", "ip_addr_src", tc.src).Run()
			if got := err == nil; got != tc.wantOK {
				t.Errorf("check ip_addr_src %s: ok = %v, want %v (%v)", tc.src, got, tc.wantOK, err)
			}
			if d := time.Since(start); d > 250*time.Millisecond {
				t.Errorf("check took %s, want at most 250ms: ipmi_sim waits for it", d)
			}
		})
	}
}

// TestLANWithoutStore pins down what ipmi_sim does with the IP settings
// when Options.LAN is not set: it keeps them in memory and reports them.
func TestLANWithoutStore(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	mustIPMITool(t, s, "lan", "set", "1", "ipaddr", "192.0.2.20")
	if got, want := lanPrint(t, s)["IP Address"], "192.0.2.20"; got != want {
		t.Errorf("IP Address = %q, want %q", got, want)
	}
	if _, err := s.LAN(); err == nil {
		t.Errorf("LAN() without Options.LAN: got no error, want one")
	}
}

func TestUsers(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	const pw = "Xy-9_fT.q+3=Lm@k"
	for _, args := range [][]string{
		{"user", "set", "name", "3", "bareflow"},
		{"user", "set", "password", "3", pw, "16"},
		{"user", "priv", "3", "4", "1"},
		{"channel", "setaccess", "1", "3", "callin=on", "ipmi=on", "link=on", "privilege=4"},
		{"user", "enable", "3"},
	} {
		mustIPMITool(t, s, args...)
	}
	wantLine := "3   bareflow         true    true       true       ADMINISTRATOR"
	check := func(when string) {
		t.Helper()
		out := mustIPMITool(t, s, "user", "list", "1")
		if !containsLine(out, wantLine) {
			t.Errorf("%s: user list has no line %q:\n%s", when, wantLine, out)
		}
		if out, err := ipmitoolAs(t, s, "bareflow", pw, "chassis", "power", "status"); err != nil {
			t.Errorf("%s: the new user cannot log in: %v\n%s", when, err, out)
		}
	}
	check("after set")

	// ipmi_sim writes changed users to its state directory on its
	// one-second tick.
	users := filepath.Join(s.Dir, "state", "ipmi_sim", "bareflow", "users.mc20")
	for deadline := time.Now().Add(3 * time.Second); ; {
		b, _ := os.ReadFile(users)
		if bytes.Contains(b, []byte("3.username:d:bareflow")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no user 3 after 3s", users)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Restart(t)
	check("after Restart")
}

// TestNotImplemented pins down the commands ipmi_sim lacks, which callers
// have to tolerate.
func TestNotImplemented(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	if out, err := ipmitool(t, s, "sol", "payload", "enable", "1", "2"); err == nil || !strings.Contains(out, "Invalid command") {
		t.Errorf("sol payload enable: err = %v, output %q; want a failure with \"Invalid command\"", err, out)
	}
	// ipmitool does not wait for an answer to Cold Reset; ipmi_sim goes on
	// as before.
	mustIPMITool(t, s, "mc", "reset", "cold")
	mustIPMITool(t, s, "mc", "info")
}

func containsLine(out, want string) bool {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), " ") == want {
			return true
		}
	}
	return false
}

// TestVMSerial sends Get Device ID over the VM serial interface, as QEMU's
// ipmi-bmc-extern device would for its guest's KCS interface.
func TestVMSerial(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{VMSerial: true})
	if s.VMPort == 0 {
		t.Fatalf("VMPort = 0 with VMSerial set")
	}
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.VMPort), 2*time.Second)
	if err != nil {
		t.Fatalf("connect to the VM serial port: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))

	// Request: sequence 5, NetFn App (06h) LUN 0, Get Device ID (01h).
	req := []byte{0x05, 0x06 << 2, 0x01}
	if _, err := conn.Write(vmFrame(req)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for {
		frame, end, err := readVMFrame(r)
		if err != nil {
			t.Fatalf("read from the VM serial port: %v", err)
		}
		if end == vmCmdChar {
			continue // a command to the VM, such as the protocol version
		}
		if len(frame) < 4+12 {
			t.Fatalf("Get Device ID answer too short: % x", frame)
		}
		var sum byte
		for _, b := range frame {
			sum += b
		}
		if sum != 0 {
			t.Errorf("answer checksum: bytes sum to %#x, want 0", sum)
		}
		if got, want := frame[1]>>2, byte(0x07); got != want {
			t.Errorf("answer NetFn = %#x, want %#x", got, want)
		}
		if cc := frame[3]; cc != 0 {
			t.Fatalf("Get Device ID completion code %#x", cc)
		}
		data := frame[4:]
		mfr := uint32(data[6]) | uint32(data[7])<<8 | uint32(data[8])<<16
		if mfr != 4753 {
			t.Errorf("manufacturer ID = %d, want 4753", mfr)
		}
		return
	}
}

// The VM serial protocol of ipmi_sim and QEMU: a message ends with A0h, a
// command to or from the VM with A1h; AAh escapes those three bytes, which
// are then sent with bit 4 set.
const (
	vmMsgChar    = 0xa0
	vmCmdChar    = 0xa1
	vmEscapeChar = 0xaa
)

// vmFrame appends the two's-complement checksum to msg, escapes it and ends
// it as a message.
func vmFrame(msg []byte) []byte {
	var sum byte
	for _, b := range msg {
		sum += b
	}
	var out bytes.Buffer
	for _, b := range append(slices.Clone(msg), -sum) {
		switch b {
		case vmMsgChar, vmCmdChar, vmEscapeChar:
			out.WriteByte(vmEscapeChar)
			out.WriteByte(b | 0x10)
		default:
			out.WriteByte(b)
		}
	}
	out.WriteByte(vmMsgChar)
	return out.Bytes()
}

// readVMFrame reads one message or command and returns it unescaped with the
// byte that ended it.
func readVMFrame(r *bufio.Reader) ([]byte, byte, error) {
	var frame []byte
	escaped := false
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, 0, err
		}
		switch {
		case b == vmMsgChar || b == vmCmdChar:
			return frame, b, nil
		case b == vmEscapeChar:
			escaped = true
		case escaped:
			frame = append(frame, b&^0x10)
			escaped = false
		default:
			frame = append(frame, b)
		}
	}
}
