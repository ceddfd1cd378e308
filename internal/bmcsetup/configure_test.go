package bmcsetup_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"bareflow/internal/bmcsetup"
)

// testPassword follows every built-in profile's rules.
const testPassword = "Kq7-Rv2_Wm9.Tz4x"

// baseRequest is a static set-up of 192.0.2.10/24 via 192.0.2.1 on a BMC of
// no known vendor, with short waits.
func baseRequest() bmcsetup.Request {
	return bmcsetup.Request{
		Vendor:       "Acme Servers",
		IPSource:     bmcsetup.IPStatic,
		Addr:         netip.MustParseAddr("192.0.2.10"),
		Prefix:       24,
		Gateway:      netip.MustParseAddr("192.0.2.1"),
		Password:     testPassword,
		AddrWait:     50 * time.Millisecond,
		PollInterval: time.Millisecond,
	}
}

// quickProfile is Generic with short waits.
func quickProfile() *bmcsetup.Profile {
	p := bmcsetup.Generic()
	p.LANChangeSettle = 20 * time.Millisecond
	p.ResetDelay = time.Millisecond
	p.ResetWait = 50 * time.Millisecond
	return &p
}

// freshChanged is what a static set-up of a fresh generic BMC changes.
var freshChanged = []string{
	"user 3 name bareflow", "user 3 password", "user 3 privilege ADMINISTRATOR",
	"user 3 channel access", "user 3 enable", "user 3 sol payload",
	"ipsrc static", "ipaddr 192.0.2.10", "netmask 255.255.255.0", "defgw 192.0.2.1",
}

func TestConfigure(t *testing.T) {
	tests := map[string]struct {
		setup   func(f *fakeBMC)
		req     func(r *bmcsetup.Request)
		wantErr error
		// wantRetryable expects an error that Permanent does not claim.
		wantRetryable bool
		wantChanged   []string
		check         func(t *testing.T, f *fakeBMC, res bmcsetup.Result)
	}{
		"fresh BMC, static": {
			wantChanged: freshChanged,
			check: func(t *testing.T, f *fakeBMC, res bmcsetup.Result) {
				u := f.users[3]
				if u.name != "bareflow" || u.password != testPassword || u.priv != "ADMINISTRATOR" || !u.ipmi || !u.link || !u.enabled || !u.sol {
					t.Errorf("user 3 = %+v, want bareflow, administrator, enabled, SOL", u)
				}
				if f.ipSource != "Static Address" || f.addr != "192.0.2.10" || f.netmask != "255.255.255.0" || f.gateway != "192.0.2.1" {
					t.Errorf("LAN = %s %s %s %s, want static 192.0.2.10 255.255.255.0 192.0.2.1", f.ipSource, f.addr, f.netmask, f.gateway)
				}
				want := bmcsetup.Result{Profile: "generic", Channel: 1, Slot: 3, Username: "bareflow", IPSource: "static",
					Addr: netip.MustParseAddr("192.0.2.10"), Prefix: 24, Gateway: netip.MustParseAddr("192.0.2.1"), MAC: "aa:bb:cc:00:11:22"}
				checkResult(t, res, withChanged(want, res.Changed))
				if !slices.Contains(f.Calls(), "ipmitool user set password 3 REDACTED 16") {
					t.Errorf("calls %q: want the password shown as REDACTED", f.Calls())
				}
			},
		},
		"already set up": {
			setup: func(f *fakeBMC) {
				f.addUser(3, "bareflow", "old-Password1")
				f.ipSource, f.addr, f.netmask, f.gateway = "Static Address", "192.0.2.10", "255.255.255.0", "192.0.2.1"
				f.enableStatusKnown = true
			},
			wantChanged: []string{"user 3 password"},
			check: func(t *testing.T, f *fakeBMC, _ bmcsetup.Result) {
				for _, c := range f.Calls() {
					if strings.HasPrefix(c, "ipmitool lan set") || strings.HasPrefix(c, "ipmitool user set name") {
						t.Errorf("a run on a set-up BMC sent %q", c)
					}
				}
				if f.users[3].password != testPassword {
					t.Errorf("password not replaced")
				}
			},
		},
		"enable status unknown is enabled again without a change": {
			setup: func(f *fakeBMC) {
				f.addUser(3, "bareflow", testPassword)
				f.ipSource, f.addr, f.netmask, f.gateway = "Static Address", "192.0.2.10", "255.255.255.0", "192.0.2.1"
			},
			wantChanged: []string{"user 3 password"},
			check: func(t *testing.T, f *fakeBMC, _ bmcsetup.Result) {
				if !slices.Contains(f.Calls(), "ipmitool user enable 3") {
					t.Errorf("calls %q: want user enable 3", f.Calls())
				}
			},
		},
		"disabled user with wrong access": {
			setup: func(f *fakeBMC) {
				f.addUser(4, "bareflow", "x")
				f.users[4].enabled, f.users[4].link, f.users[4].priv, f.users[4].sol = false, false, "USER", false
				f.enableStatusKnown = true
				f.ipSource, f.addr, f.netmask, f.gateway = "Static Address", "192.0.2.10", "255.255.255.0", "192.0.2.1"
			},
			wantChanged: []string{"user 4 password", "user 4 privilege ADMINISTRATOR", "user 4 channel access", "user 4 enable", "user 4 sol payload"},
		},
		"channel access turned on": {
			setup:       func(f *fakeBMC) { f.accessMode = "disabled" },
			wantChanged: append([]string{"lan access on"}, freshChanged...),
		},
		"HPE tries channel 2 first": {
			setup: func(f *fakeBMC) { f.channels = map[int]string{1: "Serial/Modem", 2: "802.3 LAN"} },
			req:   func(r *bmcsetup.Request) { r.Vendor, r.Profile = "HPE", nil },
			check: func(t *testing.T, f *fakeBMC, res bmcsetup.Result) {
				if res.Channel != 2 || res.Profile != "hpe" {
					t.Errorf("channel %d profile %s, want 2 hpe", res.Channel, res.Profile)
				}
				if calls := f.Calls(); calls[1] != "ipmitool channel info 2" {
					t.Errorf("second call %q, want channel info 2", calls[1])
				}
			},
		},
		"LAN channel found by scanning": {
			setup: func(f *fakeBMC) { f.channels = map[int]string{1: "IPMB (I2C)", 2: "Serial/Modem", 5: "802.3 LAN"} },
			check: func(t *testing.T, f *fakeBMC, res bmcsetup.Result) {
				if res.Channel != 5 {
					t.Errorf("Channel = %d, want 5", res.Channel)
				}
				if !slices.Contains(f.Calls(), "ipmitool user list 5") {
					t.Errorf("calls %q: want user list 5", f.Calls())
				}
			},
		},
		"no LAN channel": {
			setup:   func(f *fakeBMC) { f.channels = map[int]string{1: "Serial/Modem", 7: "Other LAN"} },
			wantErr: bmcsetup.ErrNoLANChannel,
		},
		"BMC gone while scanning channels": {
			setup:         func(f *fakeBMC) { f.channelsDown = true },
			wantRetryable: true,
		},
		"no free user slot": {
			setup: func(f *fakeBMC) {
				for id := 3; id <= 10; id++ {
					f.addUser(id, fmt.Sprintf("user%d", id), "x")
				}
			},
			wantErr: bmcsetup.ErrNoUserSlot,
			check: func(t *testing.T, f *fakeBMC, _ bmcsetup.Result) {
				for _, c := range f.Calls() {
					if strings.HasPrefix(c, "ipmitool user set") {
						t.Errorf("sent %q with no free slot", c)
					}
				}
			},
		},
		"empty slot below the range is not taken": {
			req: func(r *bmcsetup.Request) {
				p := quickProfile()
				p.FirstSlot = 6
				r.Profile = p
			},
			check: func(t *testing.T, f *fakeBMC, res bmcsetup.Result) {
				if res.Slot != 6 {
					t.Errorf("Slot = %d, want 6", res.Slot)
				}
			},
		},
		"user named in two slots": {
			setup: func(f *fakeBMC) {
				f.addUser(5, "bareflow", testPassword)
				f.addUser(7, "bareflow", testPassword)
			},
			check: func(t *testing.T, f *fakeBMC, res bmcsetup.Result) {
				if res.Slot != 5 {
					t.Errorf("Slot = %d, want 5", res.Slot)
				}
				if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "also in slots 7") }) {
					t.Errorf("Warnings = %q, want one about slot 7", res.Warnings)
				}
			},
		},
		"user name of the reserved administrator": {
			req:     func(r *bmcsetup.Request) { r.Username = "admin" },
			wantErr: bmcsetup.ErrInvalidRequest,
		},
		"BMC refuses the password": {
			setup:   func(f *fakeBMC) { f.refusePassword = true },
			wantErr: bmcsetup.ErrPasswordRejected,
		},
		"BMC does not take the password it acknowledged": {
			setup:   func(f *fakeBMC) { f.testFails = true },
			wantErr: bmcsetup.ErrPasswordRejected,
		},
		"password breaks the profile": {
			req:     func(r *bmcsetup.Request) { r.Password = "short1-A" + "xxxxxxxxxxx" },
			wantErr: bmcsetup.ErrPasswordRejected,
			check: func(t *testing.T, f *fakeBMC, _ bmcsetup.Result) {
				if calls := f.Calls(); len(calls) != 1 {
					t.Errorf("calls %q, want mc info only", calls)
				}
			},
		},
		"BMC ignores the address": {
			setup:   func(f *fakeBMC) { f.ignoreIPAddr = true },
			wantErr: bmcsetup.ErrNotApplied,
		},
		"pinning the DHCP address switches the source only": {
			setup: func(f *fakeBMC) {
				f.addr, f.netmask, f.gateway = "192.0.2.10", "255.255.255.0", "192.0.2.1"
				f.dhcpLease = ""
			},
			wantChanged: []string{"user 3 name bareflow", "user 3 password", "user 3 privilege ADMINISTRATOR",
				"user 3 channel access", "user 3 enable", "user 3 sol payload", "ipsrc static"},
		},
		"gateway left alone": {
			setup: func(f *fakeBMC) {
				f.ipSource, f.addr, f.netmask, f.gateway = "Static Address", "192.0.2.10", "255.255.255.0", "203.0.113.1"
			},
			req: func(r *bmcsetup.Request) { r.Gateway = netip.Addr{} },
			check: func(t *testing.T, f *fakeBMC, res bmcsetup.Result) {
				if f.gateway != "203.0.113.1" {
					t.Errorf("gateway %s, want it left at 203.0.113.1", f.gateway)
				}
				if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "203.0.113.1 is outside") }) {
					t.Errorf("Warnings = %q, want one about the gateway", res.Warnings)
				}
			},
		},
		"DHCP lease after a few reads": {
			setup: func(f *fakeBMC) { f.ipSource, f.dhcpAfter = "Static Address", 3 },
			req: func(r *bmcsetup.Request) {
				r.IPSource, r.Addr, r.Prefix, r.Gateway = bmcsetup.IPDHCP, netip.Addr{}, 0, netip.Addr{}
				r.AddrWait = 5 * time.Second
			},
			check: func(t *testing.T, f *fakeBMC, res bmcsetup.Result) {
				if res.IPSource != "dhcp" || res.Addr != netip.MustParseAddr("198.51.100.31") || res.Prefix != 23 {
					t.Errorf("Result LAN = %s %s/%d, want dhcp 198.51.100.31/23", res.IPSource, res.Addr, res.Prefix)
				}
				if f.dhcpReads != 4 {
					t.Errorf("lan print read %d times with DHCP, want 4", f.dhcpReads)
				}
			},
		},
		"DHCP never answers": {
			setup: func(f *fakeBMC) { f.dhcpAfter = -1 },
			req: func(r *bmcsetup.Request) {
				r.IPSource, r.Addr, r.Prefix, r.Gateway = bmcsetup.IPDHCP, netip.Addr{}, 0, netip.Addr{}
			},
			wantErr: bmcsetup.ErrDHCPTimeout,
		},
		"keep leaves the LAN alone": {
			req: func(r *bmcsetup.Request) { r.IPSource = bmcsetup.IPKeep },
			check: func(t *testing.T, f *fakeBMC, res bmcsetup.Result) {
				if res.Addr != netip.MustParseAddr("198.51.100.30") || res.IPSource != "dhcp" {
					t.Errorf("Result LAN = %s %s, want dhcp 198.51.100.30", res.IPSource, res.Addr)
				}
				for _, c := range f.Calls() {
					if strings.HasPrefix(c, "ipmitool lan set") {
						t.Errorf("keep sent %q", c)
					}
				}
			},
		},
		"reset after a LAN change": {
			setup: func(f *fakeBMC) { f.downAfterReset = 3 },
			req: func(r *bmcsetup.Request) {
				p := quickProfile()
				p.ResetAfterLANChange = true
				r.Profile = p
			},
			wantChanged: append(slices.Clone(freshChanged), "mc reset cold"),
		},
		"no reset without a LAN change": {
			setup: func(f *fakeBMC) {
				f.ipSource, f.addr, f.netmask, f.gateway = "Static Address", "192.0.2.10", "255.255.255.0", "192.0.2.1"
				f.downAfterReset = -1
			},
			req: func(r *bmcsetup.Request) {
				p := quickProfile()
				p.ResetAfterLANChange = true
				r.Profile = p
			},
			check: func(t *testing.T, f *fakeBMC, _ bmcsetup.Result) {
				if slices.Contains(f.Calls(), "ipmitool mc reset cold") {
					t.Errorf("reset without a LAN change")
				}
			},
		},
		"BMC does not come back after the reset": {
			setup: func(f *fakeBMC) { f.downAfterReset = -1 },
			req: func(r *bmcsetup.Request) {
				p := quickProfile()
				p.ResetAfterLANChange = true
				r.Profile = p
			},
			wantErr: bmcsetup.ErrBMCNotBack,
		},
		"no SOL payload commands": {
			setup: func(f *fakeBMC) { f.solSupported = false },
			check: func(t *testing.T, f *fakeBMC, res bmcsetup.Result) {
				if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "SOL payload") {
					t.Errorf("Warnings = %q, want one about the SOL payload", res.Warnings)
				}
				if slices.Contains(res.Changed, "user 3 sol payload") {
					t.Errorf("Changed = %q lists the SOL payload", res.Changed)
				}
			},
		},
		"profile from the manufacturer ID": {
			setup: func(f *fakeBMC) { f.manufacturerID = 674 },
			req: func(r *bmcsetup.Request) {
				r.Vendor, r.Profile = "", nil
				r.Password = testPassword + "Ab3-"
			},
			check: func(t *testing.T, f *fakeBMC, res bmcsetup.Result) {
				if res.Profile != "dell" {
					t.Errorf("Profile = %s, want dell", res.Profile)
				}
				if !slices.Contains(f.Calls(), "ipmitool user set password 3 REDACTED 20") {
					t.Errorf("calls %q: want a 20-byte password", f.Calls())
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeBMC()
			if tc.setup != nil {
				tc.setup(f)
			}
			req := baseRequest()
			req.Profile = quickProfile()
			if tc.req != nil {
				tc.req(&req)
			}
			f.secret = req.Password
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			res, err := bmcsetup.Configure(ctx, f, req)
			if tc.wantRetryable {
				if err == nil || bmcsetup.Permanent(err) {
					t.Fatalf("Configure: err = %v, want a retryable error", err)
				}
			} else if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Configure: err = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), req.Password) {
					t.Errorf("error shows the password: %v", err)
				}
			} else if err != nil {
				t.Fatalf("Configure: %v\ncalls: %q", err, f.Calls())
			}
			if tc.wantChanged != nil && !slices.Equal(res.Changed, tc.wantChanged) {
				t.Errorf("Changed:\n got %q\nwant %q", res.Changed, tc.wantChanged)
			}
			if len(f.leaks) > 0 {
				t.Errorf("display strings show the password: %q", f.leaks)
			}
			if s := fmt.Sprintf("%+v", res); strings.Contains(s, req.Password) {
				t.Errorf("result shows the password: %s", s)
			}
			if tc.check != nil {
				tc.check(t, f, res)
			}
		})
	}
}

func withChanged(r bmcsetup.Result, changed []string) bmcsetup.Result {
	r.Changed = changed
	return r
}

// leakyRunner fails the command that carries the password with an error
// that quotes its arguments, which a runner must not do; Configure still
// keeps the password out.
type leakyRunner struct{}

func (leakyRunner) RunIPMITool(_ context.Context, args []string, _ string) (string, error) {
	switch strings.Join(args[:2], " ") {
	case "mc info":
		return "Device ID                 : 32\nManufacturer ID           : 1\n", nil
	case "channel info":
		return "Channel 0x1 info:\n  Channel Medium Type   : 802.3 LAN\n" +
			"  Volatile(active) Settings\n    Access Mode         : always available\n" +
			"  Non-Volatile Settings\n    Access Mode         : always available\n", nil
	case "user list":
		return "ID  Name\t     Callin  Link Auth\tIPMI Msg   Channel Priv Limit\n3                    true    false      false      NO ACCESS\n", nil
	case "user set":
		if args[2] == "name" {
			return "", nil
		}
	}
	return "", fmt.Errorf("exit status 1: ipmitool %s: IPMI response is NULL.", strings.Join(args, " "))
}

func TestConfigureErrorRedactsPassword(t *testing.T) {
	req := baseRequest()
	req.Profile = quickProfile()
	_, err := bmcsetup.Configure(context.Background(), leakyRunner{}, req)
	if err == nil {
		t.Fatal("Configure: got no error, want one")
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Errorf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "ipmitool user set password 3 REDACTED 16") {
		t.Errorf("error %q: want the display string of the failed command", err)
	}
	if errors.Is(err, bmcsetup.ErrPasswordRejected) {
		t.Errorf("error %v: an unanswered command is not a rejected password", err)
	}
}

func TestConfigureCanceled(t *testing.T) {
	f := newFakeBMC()
	f.dhcpAfter = -1
	req := baseRequest()
	req.Profile = quickProfile()
	req.IPSource, req.Addr, req.Prefix, req.Gateway = bmcsetup.IPDHCP, netip.Addr{}, 0, netip.Addr{}
	req.AddrWait, req.PollInterval = time.Hour, 10*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := bmcsetup.Configure(ctx, f, req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Configure: err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Configure returned %s after its context ended", d)
	}
}

func TestRequestValidate(t *testing.T) {
	tests := map[string]struct {
		mod     func(r *bmcsetup.Request)
		wantErr bool
	}{
		"static":                 {func(r *bmcsetup.Request) {}, false},
		"dhcp without address":   {func(r *bmcsetup.Request) { r.IPSource, r.Addr = bmcsetup.IPDHCP, netip.Addr{} }, false},
		"keep":                   {func(r *bmcsetup.Request) { r.IPSource = bmcsetup.IPKeep }, false},
		"no gateway":             {func(r *bmcsetup.Request) { r.Gateway = netip.Addr{} }, false},
		"unknown source":         {func(r *bmcsetup.Request) { r.IPSource = "bios" }, true},
		"static without address": {func(r *bmcsetup.Request) { r.Addr = netip.Addr{} }, true},
		"static IPv6":            {func(r *bmcsetup.Request) { r.Addr = netip.MustParseAddr("2001:db8::10") }, true},
		"prefix 0":               {func(r *bmcsetup.Request) { r.Prefix = 0 }, true},
		"prefix 33":              {func(r *bmcsetup.Request) { r.Prefix = 33 }, true},
		"gateway outside":        {func(r *bmcsetup.Request) { r.Gateway = netip.MustParseAddr("198.51.100.1") }, true},
		"gateway is the address": {func(r *bmcsetup.Request) { r.Gateway = r.Addr }, true},
		"user name too long":     {func(r *bmcsetup.Request) { r.Username = "abcdefghijklmnopq" }, true},
		"user name with a space": {func(r *bmcsetup.Request) { r.Username = "bare flow" }, true},
		"user name like option":  {func(r *bmcsetup.Request) { r.Username = "-U" }, true},
		"user name of 16":        {func(r *bmcsetup.Request) { r.Username = "abcdefghijklmnop" }, false},
		"no password":            {func(r *bmcsetup.Request) { r.Password = "" }, true},
		"negative poll interval": {func(r *bmcsetup.Request) { r.PollInterval = -time.Second }, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := baseRequest()
			tc.mod(&r)
			err := r.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, want error %t", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, bmcsetup.ErrInvalidRequest) {
				t.Errorf("Validate() = %v, want ErrInvalidRequest", err)
			}
			if err != nil {
				// Configure refuses it before running anything.
				f := newFakeBMC()
				if _, cerr := bmcsetup.Configure(context.Background(), f, r); !errors.Is(cerr, bmcsetup.ErrInvalidRequest) || len(f.Calls()) != 0 {
					t.Errorf("Configure: err = %v after %d calls, want ErrInvalidRequest before any", cerr, len(f.Calls()))
				}
			}
		})
	}
}

func TestDiscover(t *testing.T) {
	tests := map[string]struct {
		setup       func(f *fakeBMC)
		wantChannel int
		wantErr     error
	}{
		"channel 1":      {wantChannel: 1},
		"channel 8 only": {setup: func(f *fakeBMC) { f.channels = map[int]string{8: "802.3 LAN"} }, wantChannel: 8},
		"no LAN channel": {setup: func(f *fakeBMC) { f.channels = map[int]string{1: "Serial/Modem"} }, wantErr: bmcsetup.ErrNoLANChannel},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeBMC()
			if tc.setup != nil {
				tc.setup(f)
			}
			d, err := bmcsetup.Discover(context.Background(), f, bmcsetup.Generic())
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Discover: err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if d.Channel != tc.wantChannel || d.LAN.MAC.String() != "aa:bb:cc:00:11:22" || d.BMC.ManufacturerID != 99999 {
				t.Errorf("Discover = %+v, want channel %d, MAC aa:bb:cc:00:11:22, manufacturer 99999", d, tc.wantChannel)
			}
			for _, c := range f.Calls() {
				if !strings.Contains(c, " info") && !strings.HasPrefix(c, "ipmitool lan print") {
					t.Errorf("Discover sent %q, want reads only", c)
				}
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	tests := map[string]struct {
		err  error
		want bool
	}{
		"no LAN channel":    {fmt.Errorf("configure bmc: %w", bmcsetup.ErrNoLANChannel), true},
		"no user slot":      {fmt.Errorf("x: %w", bmcsetup.ErrNoUserSlot), true},
		"password rejected": {fmt.Errorf("x: %w: %w", bmcsetup.ErrPasswordRejected, errors.New("cc")), true},
		"invalid request":   {bmcsetup.ErrInvalidRequest, true},
		"not applied":       {bmcsetup.ErrNotApplied, false},
		"DHCP timeout":      {bmcsetup.ErrDHCPTimeout, false},
		"not back":          {bmcsetup.ErrBMCNotBack, false},
		"command failed":    {errors.New("ipmitool mc info: exit status 1"), false},
		"context canceled":  {context.Canceled, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := bmcsetup.Permanent(tc.err); got != tc.want {
				t.Errorf("Permanent(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}

func TestRequestRedactsPassword(t *testing.T) {
	r := baseRequest()
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("configure", "request", r)
	for name, s := range map[string]string{
		"%v": fmt.Sprintf("%v", r), "%+v": fmt.Sprintf("%+v", r), "%#v": fmt.Sprintf("%#v", r),
		"%s": fmt.Sprintf("%s", r), "slog": logged.String(),
	} {
		if strings.Contains(s, testPassword) {
			t.Errorf("%s shows the password: %s", name, s)
		}
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("%s = %s, want REDACTED in it", name, s)
		}
	}
}
