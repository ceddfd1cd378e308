package bmcsetup

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"bareflow/internal/secret"
)

// CommandRunner runs ipmitool in the ramdisk. args are ipmitool's arguments
// (without "ipmitool"); display is what may be logged (secrets replaced by
// "REDACTED").
//
// stdout is what ipmitool wrote to its standard output. When ipmitool exits
// with a non-zero status, err must say so and carry what it wrote to
// standard error (Configure tells a BMC's refusal from an unreachable BMC by
// ipmitool's words there), and must not contain args: an error text may
// mention display only.
type CommandRunner interface {
	RunIPMITool(ctx context.Context, args []string, display string) (stdout string, err error)
}

// DefaultUsername is the name of bareflow's BMC user.
const DefaultUsername = "bareflow"

// Defaults of a Request's waits.
const (
	DefaultAddrWait     = 2 * time.Minute
	DefaultPollInterval = 5 * time.Second
)

// Request says how to configure a BMC.
type Request struct {
	// Vendor is the machine's SMBIOS system vendor; it selects the Profile.
	// When empty, the BMC's manufacturer ID from "mc info" does.
	Vendor string
	// Profile, when not nil, is used instead of the one Vendor selects.
	Profile *Profile
	// IPSource is static, dhcp or keep (leave the LAN settings alone).
	IPSource IPSource
	// Addr and Prefix are the static IPv4 address and its prefix length.
	Addr   netip.Addr
	Prefix int
	// Gateway is the static default gateway. The zero value leaves the
	// BMC's gateway as it is.
	Gateway netip.Addr
	// Username is bareflow's user; empty means DefaultUsername. At most 16
	// characters, printable ASCII without spaces.
	Username string
	// Password is the user's password; GeneratePassword makes one that
	// follows the profile's rules. Request's String and LogValue show it
	// as REDACTED.
	Password string
	// AddrWait bounds the wait for a DHCP address to show. Zero means
	// DefaultAddrWait.
	AddrWait time.Duration
	// PollInterval is the pause between reads while waiting for the BMC:
	// for a DHCP address, for LAN changes to show and after a reset. Zero
	// means DefaultPollInterval.
	PollInterval time.Duration
}

// Validate reports whether r can be carried out. It does not look at the
// password, which is checked against the profile by Configure.
func (r Request) Validate() error {
	if err := r.IPSource.Validate(); err != nil {
		return err
	}
	if r.IPSource == IPStatic {
		if !r.Addr.Is4() || r.Addr.IsUnspecified() {
			return fmt.Errorf("%w: static address %v is not an IPv4 host address", ErrInvalidRequest, r.Addr)
		}
		if r.Prefix < 1 || r.Prefix > 32 {
			return fmt.Errorf("%w: prefix length %d out of 1..32", ErrInvalidRequest, r.Prefix)
		}
		if r.Gateway.IsValid() {
			if !r.Gateway.Is4() {
				return fmt.Errorf("%w: gateway %v is not IPv4", ErrInvalidRequest, r.Gateway)
			}
			if p := netip.PrefixFrom(r.Addr, r.Prefix); !p.Contains(r.Gateway) || r.Gateway == r.Addr {
				return fmt.Errorf("%w: gateway %v is not another address of %v", ErrInvalidRequest, r.Gateway, p.Masked())
			}
		}
	}
	if name := r.username(); len(name) > maxUsernameLen || name[0] == '-' ||
		strings.ContainsFunc(name, func(c rune) bool { return c <= ' ' || c > '~' }) {
		return fmt.Errorf("%w: user name %q: want 1 to %d printable ASCII characters without spaces, not starting with \"-\"", ErrInvalidRequest, name, maxUsernameLen)
	}
	if r.Password == "" {
		return fmt.Errorf("%w: no password", ErrInvalidRequest)
	}
	if r.AddrWait < 0 || r.PollInterval < 0 {
		return fmt.Errorf("%w: negative wait", ErrInvalidRequest)
	}
	return nil
}

// String formats r with the password as REDACTED.
func (r Request) String() string {
	profile := ""
	if r.Profile != nil {
		profile = r.Profile.Name
	}
	return fmt.Sprintf("{Vendor:%s Profile:%s IPSource:%s Addr:%s Prefix:%d Gateway:%s Username:%s Password:%s AddrWait:%s PollInterval:%s}",
		r.Vendor, profile, r.IPSource, r.Addr, r.Prefix, r.Gateway, r.username(), secret.Redacted, r.AddrWait, r.PollInterval)
}

// GoString formats r for %#v, with the password as REDACTED.
func (r Request) GoString() string { return "bmcsetup.Request" + r.String() }

// LogValue implements slog.LogValuer: the fields with the password as
// REDACTED.
func (r Request) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("vendor", r.Vendor),
		slog.String("ip_source", string(r.IPSource)),
		slog.String("addr", r.Addr.String()),
		slog.Int("prefix", r.Prefix),
		slog.String("gateway", r.Gateway.String()),
		slog.String("username", r.username()),
		slog.String("password", secret.Redacted),
	)
}

func (r Request) username() string {
	if r.Username == "" {
		return DefaultUsername
	}
	return r.Username
}

// Result is what Configure found and did.
type Result struct {
	// Profile is the name of the profile used.
	Profile string
	// BMC is the controller's identity from "mc info".
	BMC MCInfo
	// Channel is the LAN channel configured.
	Channel int
	// Slot is the user ID of bareflow's user.
	Slot int
	// Username is bareflow's user name.
	Username string
	// IPSource, Addr, Prefix, Gateway and MAC are the LAN settings read
	// back at the end. IPSource is "static", "dhcp", "bios", "none" or
	// "other".
	IPSource string
	Addr     netip.Addr
	Prefix   int
	Gateway  netip.Addr
	MAC      string
	// Warnings are things that did not work but do not stop bareflow, such
	// as a BMC without SOL payload commands.
	Warnings []string
	// Changed lists what Configure wrote, such as "ipaddr 192.0.2.10" or
	// "user 3 password", in order. A run on a BMC that is already set up
	// lists only the user's password, which cannot be read back and is
	// written every time.
	Changed []string
}

// run is one Configure call.
type run struct {
	r    CommandRunner
	req  Request
	prof Profile
	res  Result
	// chanInfo is the LAN channel's "channel info".
	chanInfo ChannelInfo
}

// Configure sets up the BMC that r reaches as req says, and returns what it
// found and changed. See the package comment for the steps.
//
// Errors wrap the package's sentinel errors where they apply; ErrNoLANChannel,
// ErrNoUserSlot, ErrPasswordRejected and ErrInvalidRequest are permanent.
// An ipmitool failure is reported with the command's display string, never
// with the password. A canceled ctx stops Configure between commands. On an
// error the Result holds what was found and changed up to it.
func Configure(ctx context.Context, r CommandRunner, req Request) (Result, error) {
	if err := req.Validate(); err != nil {
		return Result{}, fmt.Errorf("configure bmc: %w", err)
	}
	if req.AddrWait == 0 {
		req.AddrWait = DefaultAddrWait
	}
	if req.PollInterval == 0 {
		req.PollInterval = DefaultPollInterval
	}
	c := &run{r: r, req: req}
	c.res.Username = req.username()

	mcOut, err := c.ipmitool(ctx, "mc", "info")
	if err != nil {
		return Result{}, fmt.Errorf("configure bmc: read controller identity: %w", err)
	}
	if c.res.BMC, err = ParseMCInfo(mcOut); err != nil {
		return Result{}, fmt.Errorf("configure bmc: %w", err)
	}
	if err := c.chooseProfile(); err != nil {
		return Result{}, fmt.Errorf("configure bmc: %w", err)
	}

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"find LAN channel", c.findLANChannel},
		{"enable LAN channel", c.enableChannel},
		{"set up user", c.setUpUser},
		{"set up LAN", c.setUpLAN},
		{"verify user", c.verifyUser},
	}
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			return c.res, fmt.Errorf("configure bmc: %s: %w", s.name, err)
		}
	}
	return c.res, nil
}

// Discovery is what Discover finds on a BMC.
type Discovery struct {
	// BMC is the controller's identity from "mc info".
	BMC MCInfo
	// Channel is the LAN channel and ChannelInfo what "channel info" says
	// of it.
	Channel     int
	ChannelInfo ChannelInfo
	// LAN is the channel's settings from "lan print", the MAC among them.
	LAN LANSettings
}

// Discover reads the BMC's identity, finds its LAN channel as Configure does
// (p's channels, then 1 to 11) and reads the channel's settings. It changes
// nothing. A caller that hands out the BMC's static address by MAC runs it
// before Configure.
func Discover(ctx context.Context, r CommandRunner, p Profile) (Discovery, error) {
	if err := p.Validate(); err != nil {
		return Discovery{}, fmt.Errorf("discover bmc: %w", err)
	}
	c := &run{r: r, prof: p.withDefaults()}
	out, err := c.ipmitool(ctx, "mc", "info")
	if err != nil {
		return Discovery{}, fmt.Errorf("discover bmc: read controller identity: %w", err)
	}
	var d Discovery
	if d.BMC, err = ParseMCInfo(out); err != nil {
		return Discovery{}, fmt.Errorf("discover bmc: %w", err)
	}
	if err := c.findLANChannel(ctx); err != nil {
		return Discovery{}, fmt.Errorf("discover bmc: find LAN channel: %w", err)
	}
	d.Channel, d.ChannelInfo = c.res.Channel, c.chanInfo
	if d.LAN, err = c.lanPrint(ctx); err != nil {
		return Discovery{}, fmt.Errorf("discover bmc: read LAN settings: %w", err)
	}
	return d, nil
}

// chooseProfile picks the request's profile, else the vendor's, else the
// manufacturer's, and checks the password against it.
func (c *run) chooseProfile() error {
	switch {
	case c.req.Profile != nil:
		c.prof = *c.req.Profile
	case c.req.Vendor != "":
		c.prof = ProfileFor(c.req.Vendor)
	default:
		c.prof = profileForManufacturer(c.res.BMC.ManufacturerID)
	}
	if err := c.prof.Validate(); err != nil {
		return err
	}
	c.prof = c.prof.withDefaults()
	c.res.Profile = c.prof.Name
	if err := checkPassword(c.prof, c.req.Password, false); err != nil {
		return fmt.Errorf("%w: %v", ErrPasswordRejected, err)
	}
	return nil
}

// findLANChannel tries the profile's channels, then 1 to 11, with "channel
// info", and takes the first whose medium is 802.3 LAN.
func (c *run) findLANChannel(ctx context.Context) error {
	candidates := slices.Clone(c.prof.LANChannels)
	for ch := 1; ch <= maxLANChannel; ch++ {
		if !slices.Contains(candidates, ch) {
			candidates = append(candidates, ch)
		}
	}
	var lastErr error
	answered := false // a channel was described or refused by the BMC
	for _, ch := range candidates {
		out, err := c.ipmitool(ctx, "channel", "info", strconv.Itoa(ch))
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			// Most BMCs refuse channel numbers they lack with a
			// completion code.
			answered = answered || bmcRefused(err)
			lastErr = err
			continue
		}
		answered = true
		ci, err := ParseChannelInfo(out)
		if err != nil {
			lastErr = err
			continue
		}
		if ci.IsLAN() {
			c.chanInfo = ci
			c.res.Channel = ch
			return nil
		}
	}
	if !answered {
		// Nothing but failures to reach the BMC: not a verdict on its
		// channels.
		return fmt.Errorf("no channel of %v answered: %w", candidates, lastErr)
	}
	if lastErr != nil {
		return fmt.Errorf("%w among channels %v (last error: %v)", ErrNoLANChannel, candidates, lastErr)
	}
	return fmt.Errorf("%w among channels %v", ErrNoLANChannel, candidates)
}

// enableChannel turns the LAN channel's access on unless both its volatile
// and non-volatile access modes are "always available".
func (c *run) enableChannel(ctx context.Context) error {
	if c.chanInfo.AccessMode == AccessAlways && c.chanInfo.NonVolatileAccessMode == AccessAlways {
		return nil
	}
	if _, err := c.ipmitool(ctx, "lan", "set", c.channel(), "access", "on"); err != nil {
		return err
	}
	c.changed("lan access on")
	return nil
}

func (c *run) channel() string { return strconv.Itoa(c.res.Channel) }

// setUpUser finds or takes bareflow's slot and gives the user its name,
// password, administrator privilege, channel access, enable status and SOL
// payload.
func (c *run) setUpUser(ctx context.Context) error {
	users, err := c.userList(ctx)
	if err != nil {
		return err
	}
	u, fresh, err := c.pickSlot(users)
	if err != nil {
		return err
	}
	c.res.Slot = u.ID
	slot := strconv.Itoa(u.ID)
	what := func(s string) string { return "user " + slot + " " + s }

	if fresh {
		if _, err := c.ipmitool(ctx, "user", "set", "name", slot, c.res.Username); err != nil {
			return err
		}
		c.changed(what("name " + c.res.Username))
	}

	pwLen := strconv.Itoa(c.prof.SetPasswordLength)
	if _, err := c.ipmitool(ctx, "user", "set", "password", slot, c.req.Password, pwLen); err != nil {
		if bmcRefused(err) {
			return fmt.Errorf("%w: %w", ErrPasswordRejected, err)
		}
		return err
	}
	c.changed(what("password"))

	if fresh || u.Privilege != PrivAdministrator {
		if _, err := c.ipmitool(ctx, "user", "priv", slot, "4", c.channel()); err != nil {
			return err
		}
		c.changed(what("privilege ADMINISTRATOR"))
	}
	if fresh || u.Privilege != PrivAdministrator || !u.Callin || !u.LinkAuth || !u.IPMIMsg {
		if _, err := c.ipmitool(ctx, "channel", "setaccess", c.channel(), slot,
			"callin=on", "ipmi=on", "link=on", "privilege=4"); err != nil {
			return err
		}
		c.changed(what("channel access"))
	}

	if err := c.enableUser(ctx, slot, fresh, what); err != nil {
		return err
	}
	return c.enableSOL(ctx, slot, what)
}

// enableUser enables the user unless the BMC reports it enabled. When the
// BMC cannot tell (the enable status is unknown), the user is enabled again,
// which changes nothing on an enabled user, and Changed does not list it.
func (c *run) enableUser(ctx context.Context, slot string, fresh bool, what func(string) string) error {
	status := EnableStatusUnknown
	if !fresh {
		out, err := c.ipmitool(ctx, "channel", "getaccess", c.channel(), slot)
		if err != nil {
			return err
		}
		if status, err = ParseEnableStatus(out); err != nil {
			return err
		}
	}
	if status == EnableStatusEnabled {
		return nil
	}
	if _, err := c.ipmitool(ctx, "user", "enable", slot); err != nil {
		return err
	}
	if fresh || status != EnableStatusUnknown {
		c.changed(what("enable"))
	}
	return nil
}

// enableSOL gives the user the SOL payload. BMCs without the payload access
// commands leave a warning instead of an error.
func (c *run) enableSOL(ctx context.Context, slot string, what func(string) string) error {
	known := false
	if out, err := c.ipmitool(ctx, "sol", "payload", "status", c.channel(), slot); err == nil {
		on, perr := ParseSOLPayloadStatus(out)
		if perr == nil && on {
			return nil
		}
		known = perr == nil
	} else if ctx.Err() != nil {
		return err
	}
	if _, err := c.ipmitool(ctx, "sol", "payload", "enable", c.channel(), slot); err != nil {
		if ctx.Err() != nil {
			return err
		}
		c.warn(fmt.Sprintf("SOL payload not enabled for user %s: %v", slot, err))
		return nil
	}
	if known {
		c.changed(what("sol payload"))
	}
	return nil
}

// userList reads "user list" of the LAN channel.
func (c *run) userList(ctx context.Context) ([]User, error) {
	out, err := c.ipmitool(ctx, "user", "list", c.channel())
	if err != nil {
		return nil, err
	}
	return ParseUserList(out)
}

// pickSlot returns the slot of the user named like bareflow's, or else the
// first empty slot of the profile's range, and whether it is empty.
func (c *run) pickSlot(users []User) (User, bool, error) {
	name := c.res.Username
	var mine []User
	for _, u := range users {
		if u.Name != name {
			continue
		}
		if c.prof.reserved(u.ID) {
			return User{}, false, fmt.Errorf("%w: user name %q is the reserved user %d", ErrInvalidRequest, name, u.ID)
		}
		mine = append(mine, u)
	}
	if len(mine) > 0 {
		if len(mine) > 1 {
			ids := make([]string, 0, len(mine)-1)
			for _, u := range mine[1:] {
				ids = append(ids, strconv.Itoa(u.ID))
			}
			c.warn(fmt.Sprintf("user name %q is also in slots %s; slot %d is used", name, strings.Join(ids, ", "), mine[0].ID))
		}
		return mine[0], false, nil
	}
	for _, u := range users {
		if u.ID >= c.prof.FirstSlot && u.ID <= c.prof.MaxSlot && !c.prof.reserved(u.ID) && u.Empty() {
			return u, true, nil
		}
	}
	return User{}, false, fmt.Errorf("%w: no empty slot among %d..%d", ErrNoUserSlot, c.prof.FirstSlot, c.prof.MaxSlot)
}

// setUpLAN writes the address settings that differ from the request, resets
// the BMC when the profile wants it, and reads the settings back until they
// show.
func (c *run) setUpLAN(ctx context.Context) error {
	cur, err := c.lanPrint(ctx)
	if err != nil {
		return err
	}
	changedLAN := false
	set := func(what string, args ...string) error {
		if _, err := c.ipmitool(ctx, append([]string{"lan", "set", c.channel()}, args...)...); err != nil {
			return err
		}
		c.changed(what)
		changedLAN = true
		return nil
	}

	switch c.req.IPSource {
	case IPStatic:
		if cur.IPSource != IPStatic {
			if err := set("ipsrc static", "ipsrc", "static"); err != nil {
				return err
			}
			// Some BMCs clear or keep the old address on a switch: the
			// rest is compared with what the BMC shows now.
			if cur, err = c.lanPrint(ctx); err != nil {
				return err
			}
		}
		if cur.Addr != c.req.Addr {
			if err := set("ipaddr "+c.req.Addr.String(), "ipaddr", c.req.Addr.String()); err != nil {
				return err
			}
		}
		if mask := prefixMask(c.req.Prefix); cur.Netmask != mask {
			if err := set("netmask "+mask.String(), "netmask", mask.String()); err != nil {
				return err
			}
		}
		if c.req.Gateway.IsValid() && cur.Gateway != c.req.Gateway {
			if err := set("defgw "+c.req.Gateway.String(), "defgw", "ipaddr", c.req.Gateway.String()); err != nil {
				return err
			}
		}
	case IPDHCP:
		if cur.IPSource != IPDHCP {
			if err := set("ipsrc dhcp", "ipsrc", "dhcp"); err != nil {
				return err
			}
		}
	}

	if changedLAN && c.prof.ResetAfterLANChange {
		if err := c.resetAndWait(ctx); err != nil {
			return err
		}
	}
	return c.verifyLAN(ctx, cur, changedLAN)
}

// verifyLAN reads "lan print" until it shows what was asked: the static
// settings within the profile's settle time, a DHCP address within the DHCP
// timeout. cur is the last read; without changes it is read once more only
// when a DHCP address is awaited.
func (c *run) verifyLAN(ctx context.Context, cur LANSettings, changed bool) error {
	var wait time.Duration
	switch c.req.IPSource {
	case IPStatic:
		wait = c.prof.LANChangeSettle
	case IPDHCP:
		wait = c.req.AddrWait
	}
	deadline := time.Now().Add(wait)
	for first := true; ; first = false {
		if changed || !first || c.req.IPSource == IPKeep {
			var err error
			if cur, err = c.lanPrint(ctx); err != nil {
				return err
			}
		}
		mismatch := c.lanMismatch(cur)
		if mismatch == "" {
			c.recordLAN(cur)
			return nil
		}
		if !time.Now().Before(deadline) {
			c.recordLAN(cur)
			if c.req.IPSource == IPDHCP && cur.IPSource == IPDHCP {
				return fmt.Errorf("%w within %s on channel %d", ErrDHCPTimeout, wait, c.res.Channel)
			}
			return fmt.Errorf("%w: lan print %d after %s: %s", ErrNotApplied, c.res.Channel, wait, mismatch)
		}
		if err := sleep(ctx, c.req.PollInterval); err != nil {
			return err
		}
	}
}

// lanMismatch describes how l differs from the request, or returns "".
func (c *run) lanMismatch(l LANSettings) string {
	var d []string
	switch c.req.IPSource {
	case IPStatic:
		if l.IPSource != IPStatic {
			d = append(d, fmt.Sprintf("address source %s, want static", l.IPSource))
		}
		if l.Addr != c.req.Addr {
			d = append(d, fmt.Sprintf("address %s, want %s", l.Addr, c.req.Addr))
		}
		if mask := prefixMask(c.req.Prefix); l.Netmask != mask {
			d = append(d, fmt.Sprintf("netmask %s, want %s", l.Netmask, mask))
		}
		if c.req.Gateway.IsValid() && l.Gateway != c.req.Gateway {
			d = append(d, fmt.Sprintf("gateway %s, want %s", l.Gateway, c.req.Gateway))
		}
	case IPDHCP:
		if l.IPSource != IPDHCP {
			d = append(d, fmt.Sprintf("address source %s, want dhcp", l.IPSource))
		}
		if !l.Addr.IsValid() || l.Addr.IsUnspecified() {
			d = append(d, "no address yet")
		}
	}
	return strings.Join(d, "; ")
}

func (c *run) recordLAN(l LANSettings) {
	c.res.IPSource = string(l.IPSource)
	c.res.Addr = l.Addr
	c.res.Prefix, _ = l.Prefix()
	c.res.Gateway = l.Gateway
	if l.MAC != nil {
		c.res.MAC = l.MAC.String()
	}
	if c.req.IPSource == IPStatic && !c.req.Gateway.IsValid() && !l.Gateway.IsUnspecified() {
		if p := netip.PrefixFrom(c.req.Addr, c.req.Prefix); !p.Contains(l.Gateway) {
			c.warn(fmt.Sprintf("gateway %s is outside %s and was left as it is", l.Gateway, p.Masked()))
		}
	}
}

func (c *run) lanPrint(ctx context.Context) (LANSettings, error) {
	out, err := c.ipmitool(ctx, "lan", "print", c.channel())
	if err != nil {
		return LANSettings{}, err
	}
	return ParseLANPrint(out)
}

// resetAndWait cold-resets the BMC and polls "mc info" until it answers,
// after the profile's reset delay and within its reset wait.
func (c *run) resetAndWait(ctx context.Context) error {
	// ipmitool does not wait for an answer to Cold Reset and most BMCs send
	// none: an error here says nothing about whether the reset happened.
	if _, err := c.ipmitool(ctx, "mc", "reset", "cold"); err != nil && ctx.Err() != nil {
		return err
	}
	c.changed("mc reset cold")
	if err := sleep(ctx, c.prof.ResetDelay); err != nil {
		return err
	}
	deadline := time.Now().Add(c.prof.ResetWait)
	for {
		_, err := c.ipmitool(ctx, "mc", "info")
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w within %s: %w", ErrBMCNotBack, c.prof.ResetDelay+c.prof.ResetWait, err)
		}
		if err := sleep(ctx, c.req.PollInterval); err != nil {
			return err
		}
	}
}

// verifyUser reads "user list" back: bareflow's slot must carry its name,
// the administrator privilege and IPMI messaging. "user test" then checks the
// password where the BMC implements it.
func (c *run) verifyUser(ctx context.Context) error {
	users, err := c.userList(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(users, func(u User) bool { return u.ID == c.res.Slot })
	if i < 0 {
		return fmt.Errorf("%w: user %d missing from user list", ErrNotApplied, c.res.Slot)
	}
	u := users[i]
	var d []string
	if u.Name != c.res.Username {
		d = append(d, fmt.Sprintf("name %q, want %q", u.Name, c.res.Username))
	}
	if u.Privilege != PrivAdministrator {
		d = append(d, fmt.Sprintf("privilege %s, want %s", u.Privilege, PrivAdministrator))
	}
	if !u.IPMIMsg || !u.LinkAuth {
		d = append(d, fmt.Sprintf("IPMI messaging %t and link auth %t, want both", u.IPMIMsg, u.LinkAuth))
	}
	if len(d) > 0 {
		return fmt.Errorf("%w: user %d: %s", ErrNotApplied, u.ID, strings.Join(d, "; "))
	}

	out, err := c.ipmitool(ctx, "user", "test", strconv.Itoa(u.ID), strconv.Itoa(c.prof.SetPasswordLength), c.req.Password)
	// ipmitool prints "Success", "Failure: password incorrect", "Failure:
	// wrong password size" or "Unknown error" and exits 1 unless Success.
	switch {
	case err == nil && strings.Contains(out, "Success"):
		return nil
	case strings.Contains(out, "Failure"):
		return fmt.Errorf("%w: user %d: the BMC does not take the password it acknowledged: %s", ErrPasswordRejected, u.ID, strings.TrimSpace(out))
	case err != nil && ctx.Err() != nil:
		return err
	default:
		detail := strings.TrimSpace(out)
		if err != nil {
			detail = err.Error()
		}
		c.warn(fmt.Sprintf("password of user %d not tested: %s", u.ID, detail))
		return nil
	}
}

// ipmitool runs one ipmitool command through the runner. The display string
// shows the password as REDACTED, and so does the error.
func (c *run) ipmitool(ctx context.Context, args ...string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	pw := c.req.Password
	shown := make([]string, len(args))
	for i, a := range args {
		if pw != "" && a == pw {
			a = secret.Redacted
		}
		shown[i] = a
	}
	display := "ipmitool " + strings.Join(shown, " ")
	out, err := c.r.RunIPMITool(ctx, args, display)
	if err != nil {
		return out, newCommandError(display, err, c.req.Password)
	}
	return out, nil
}

func (c *run) changed(what string) { c.res.Changed = append(c.res.Changed, what) }

func (c *run) warn(msg string) {
	if pw := c.req.Password; pw != "" {
		msg = strings.ReplaceAll(msg, pw, secret.Redacted)
	}
	c.res.Warnings = append(c.res.Warnings, msg)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
