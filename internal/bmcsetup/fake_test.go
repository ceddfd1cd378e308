package bmcsetup_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// fakeBMC is a hand-written BMC behind ipmitool: it keeps a LAN channel's
// settings and a user table, answers the commands Configure sends with
// ipmitool 1.8.19's output, and fails the way ipmitool does. Its knobs make
// it behave like BMCs that differ from ipmi_sim.
type fakeBMC struct {
	mu sync.Mutex

	manufacturerID int
	// channels maps channel numbers to their medium; others do not exist.
	channels map[int]string
	// accessMode is the LAN channel's access mode, volatile and not.
	accessMode string

	ipSource, addr, netmask, gateway, mac string

	users []fakeUser // users[0] is unused

	// Knobs.
	enableStatusKnown bool // report "enabled"/"disabled" instead of "unknown"
	solSupported      bool
	refusePassword    bool   // answer Set User Password with CCh
	testFails         bool   // answer Test Password with 80h
	ignoreIPAddr      bool   // acknowledge "lan set ipaddr" and keep the old one
	dhcpAfter         int    // lan prints with source dhcp before the lease shows; -1: never
	dhcpLease         string // "address netmask gateway"
	downAfterReset    int    // mc info calls that fail after a cold reset; -1: forever
	channelsDown      bool   // channel info fails as if the device were gone

	// secret is a password that must never show in a display string.
	secret string

	calls     []string // display strings, in order
	leaks     []string // display strings that showed the secret
	dhcpReads int
	down      int
}

type fakeUser struct {
	name                    string
	password                string
	priv                    string
	callin, link, ipmi, sol bool
	enabled                 bool
}

// newFakeBMC returns a BMC with LAN channel 1, a DHCP address, the factory
// administrator in slot 2 and 10 slots.
func newFakeBMC() *fakeBMC {
	f := &fakeBMC{
		manufacturerID: 99999,
		channels:       map[int]string{0: "IPMB (I2C)", 1: "802.3 LAN"},
		accessMode:     "always available",
		ipSource:       "DHCP Address",
		addr:           "198.51.100.30",
		netmask:        "255.255.254.0",
		gateway:        "198.51.100.1",
		mac:            "aa:bb:cc:00:11:22",
		solSupported:   true,
		dhcpAfter:      0,
		dhcpLease:      "198.51.100.31 255.255.254.0 198.51.100.1",
	}
	f.users = make([]fakeUser, 11)
	for i := range f.users {
		f.users[i] = fakeUser{priv: "NO ACCESS", callin: true}
	}
	f.users[2] = fakeUser{name: "admin", password: "factory", priv: "ADMINISTRATOR", callin: true, link: true, ipmi: true, enabled: true}
	return f
}

// addUser puts a configured user into slot id.
func (f *fakeBMC) addUser(id int, name, password string) {
	f.users[id] = fakeUser{name: name, password: password, priv: "ADMINISTRATOR", callin: true, link: true, ipmi: true, enabled: true, sol: true}
}

func (f *fakeBMC) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// ipmitool's failures, as a runner reports them: exit status and standard
// error.
func ccError(desc, after string) error {
	return fmt.Errorf("exit status 1: IPMI command failed: %s\n%s", desc, after)
}

var errNoDevice = errors.New("exit status 1: Could not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0: No such file or directory")

func (f *fakeBMC) RunIPMITool(ctx context.Context, args []string, display string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, display)
	if f.secret != "" && strings.Contains(display, f.secret) {
		f.leaks = append(f.leaks, display)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if f.down != 0 {
		if f.down > 0 {
			f.down--
		}
		return "", errNoDevice
	}
	cmd := strings.Join(args, " ")
	num := func(i int) int {
		if i >= len(args) {
			return -1
		}
		n, err := strconv.Atoi(args[i])
		if err != nil {
			return -1
		}
		return n
	}
	user := func(i int) *fakeUser {
		id := num(i)
		if id < 1 || id >= len(f.users) {
			return nil
		}
		return &f.users[id]
	}
	bad := ccError("Invalid data field in request", "")

	switch {
	case cmd == "mc info":
		return fmt.Sprintf("Device ID                 : 32\nFirmware Revision         : 1.00\nIPMI Version              : 2.0\n"+
			"Manufacturer ID           : %d\nManufacturer Name         : Unknown (0x%X)\nProduct ID                : 1 (0x0001)\n",
			f.manufacturerID, f.manufacturerID), nil
	case cmd == "mc reset cold":
		f.down = f.downAfterReset
		return "Sent cold reset command to MC\n", nil
	case strings.HasPrefix(cmd, "channel info ") && f.channelsDown:
		return "", errNoDevice
	case strings.HasPrefix(cmd, "channel info "):
		ch := num(2)
		medium, ok := f.channels[ch]
		if !ok {
			return "", ccError("Invalid data field in request", "Unable to Get Channel Info")
		}
		out := fmt.Sprintf("Channel 0x%x info:\n  Channel Medium Type   : %s\n  Channel Protocol Type : IPMB-1.0\n"+
			"  Session Support       : multi-session\n  Active Session Count  : 0\n  Protocol Vendor ID    : 7154\n", ch, medium)
		if medium == "802.3 LAN" {
			out += "  Volatile(active) Settings\n    Access Mode         : " + f.accessMode + "\n" +
				"  Non-Volatile Settings\n    Access Mode         : " + f.accessMode + "\n"
		}
		return out, nil
	case strings.HasPrefix(cmd, "lan ") && f.channels[num(2)] != "802.3 LAN":
		return "", fmt.Errorf("exit status 1: Channel %s is not a LAN channel", args[2])
	case strings.HasPrefix(cmd, "lan print "):
		addr, mask, gw := f.addr, f.netmask, f.gateway
		if f.ipSource == "DHCP Address" {
			f.dhcpReads++
			if f.dhcpAfter < 0 || f.dhcpReads <= f.dhcpAfter {
				addr, mask, gw = "0.0.0.0", "0.0.0.0", "0.0.0.0"
			}
		}
		return fmt.Sprintf("Set in Progress         : Set Complete\nIP Address Source       : %s\nIP Address              : %s\n"+
			"Subnet Mask             : %s\nMAC Address             : %s\nDefault Gateway IP      : %s\n",
			f.ipSource, addr, mask, f.mac, gw), nil
	case strings.HasPrefix(cmd, "lan set ") && len(args) >= 5:
		switch v := args[4]; args[3] {
		case "ipsrc":
			switch v {
			case "static":
				f.ipSource = "Static Address"
			case "dhcp":
				f.ipSource = "DHCP Address"
				f.dhcpReads = 0
				if fields := strings.Fields(f.dhcpLease); len(fields) == 3 {
					f.addr, f.netmask, f.gateway = fields[0], fields[1], fields[2]
				}
			default:
				return "", bad
			}
		case "ipaddr":
			if !f.ignoreIPAddr {
				f.addr = v
			}
			return "Setting LAN IP Address to " + v + "\n", nil
		case "netmask":
			f.netmask = v
			return "Setting LAN Subnet Mask to " + v + "\n", nil
		case "defgw":
			f.gateway = args[5]
			return "Setting LAN Default Gateway IP to " + args[5] + "\n", nil
		case "access":
			f.accessMode = "always available"
			return "Set Channel Access for channel " + args[2] + " was successful.\n", nil
		default:
			return "", bad
		}
		return "", nil
	case strings.HasPrefix(cmd, "user list "):
		var b strings.Builder
		b.WriteString("ID  Name\t     Callin  Link Auth\tIPMI Msg   Channel Priv Limit\n")
		tf := func(v bool) string {
			if v {
				return "true "
			}
			return "false"
		}
		for id := 1; id < len(f.users); id++ {
			u := f.users[id]
			fmt.Fprintf(&b, "%-4d%-17s%-8s%-11s%-11s%s\n", id, u.name, tf(u.callin), tf(u.link), tf(u.ipmi), u.priv)
		}
		return b.String(), nil
	case strings.HasPrefix(cmd, "user set name "):
		u := user(3)
		if u == nil || num(3) < 2 {
			return "", bad
		}
		u.name = args[4]
		return "", nil
	case strings.HasPrefix(cmd, "user set password "):
		u := user(3)
		if u == nil || len(args) != 6 {
			return "", bad
		}
		if f.refusePassword {
			return "", ccError("Invalid data field in request", "Set User Password command failed (user "+args[3]+")")
		}
		u.password = args[4]
		return "Set User Password command successful (user " + args[3] + ")\n", nil
	case strings.HasPrefix(cmd, "user test "):
		u := user(2)
		if u == nil || len(args) != 5 {
			return "", bad
		}
		if f.testFails || u.password != args[4] {
			return "Failure: password incorrect\n", errors.New("exit status 1")
		}
		return "Success\n", nil
	case strings.HasPrefix(cmd, "user priv "):
		u := user(2)
		if u == nil || args[3] != "4" {
			return "", bad
		}
		u.priv = "ADMINISTRATOR"
		return "Set Privilege Level command successful (user " + args[2] + ")\n", nil
	case strings.HasPrefix(cmd, "user enable "):
		u := user(2)
		if u == nil {
			return "", bad
		}
		u.enabled = true
		return "", nil
	case strings.HasPrefix(cmd, "channel setaccess "):
		u := user(3)
		if u == nil {
			return "", bad
		}
		for _, a := range args[4:] {
			switch a {
			case "callin=on":
				u.callin = true
			case "ipmi=on":
				u.ipmi = true
			case "link=on":
				u.link = true
			case "privilege=4":
				u.priv = "ADMINISTRATOR"
			default:
				return "", bad
			}
		}
		return "Set User Access (channel " + args[2] + " id " + args[3] + ") successful.\n", nil
	case strings.HasPrefix(cmd, "channel getaccess "):
		u := user(3)
		if u == nil {
			return "", bad
		}
		status := "unknown"
		if f.enableStatusKnown {
			status = map[bool]string{true: "enabled", false: "disabled"}[u.enabled]
		}
		return fmt.Sprintf("Maximum User IDs     : %d\n\nUser ID              : %s\nUser Name            : %s\nEnable Status        : %s\n",
			len(f.users)-1, args[3], u.name, status), nil
	case strings.HasPrefix(cmd, "sol payload "):
		u := user(4)
		if u == nil {
			return "", bad
		}
		if !f.solSupported {
			return "", fmt.Errorf("exit status 1: Error %sabling SOL payload for user %s on channel %s: Invalid command",
				map[bool]string{true: "en", false: "dis"}[args[2] == "enable"], args[4], args[3])
		}
		switch args[2] {
		case "status":
			return fmt.Sprintf("User %s on channel %s is %sabled\n", args[4], args[3], map[bool]string{true: "en", false: "dis"}[u.sol]), nil
		case "enable":
			u.sol = true
			return "", nil
		}
	}
	return "", fmt.Errorf("exit status 1: fake BMC does not know %q", display)
}
