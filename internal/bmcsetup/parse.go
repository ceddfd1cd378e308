package bmcsetup

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// The parsers read what ipmitool 1.8.19 prints. They match labels, not
// positions, so lines they do not know are skipped.

// errParse marks output that is not what the parser expects.
var errParse = errors.New("unexpected ipmitool output")

// MediumLAN is the channel medium of an IPMI LAN interface as "channel
// info" prints it.
const MediumLAN = "802.3 LAN"

// AccessAlways is the access mode of a channel that is always available.
const AccessAlways = "always available"

// ChannelInfo is what "ipmitool channel info N" reports.
type ChannelInfo struct {
	// Channel is the channel number.
	Channel int
	// Medium is the channel medium, such as "802.3 LAN", "IPMB (I2C)",
	// "Serial/Modem" or "System Interface".
	Medium string
	// Protocol is the channel protocol, such as "IPMB-1.0".
	Protocol string
	// SessionSupport is "session-less", "single-session", "multi-session"
	// or "session-based".
	SessionSupport string
	// AccessMode and NonVolatileAccessMode are the volatile and
	// non-volatile access modes of a LAN channel: "disabled", "pre-boot
	// only", "always available" or "shared". ipmitool prints them for LAN
	// channels only.
	AccessMode, NonVolatileAccessMode string
}

// IsLAN reports whether the channel is an 802.3 LAN interface.
func (c ChannelInfo) IsLAN() bool { return c.Medium == MediumLAN }

// ParseChannelInfo parses the output of "ipmitool channel info N".
func ParseChannelInfo(out string) (ChannelInfo, error) {
	var ci ChannelInfo
	seen := false
	section := ""
	for line := range strings.Lines(out) {
		trimmed := strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(trimmed, "Channel 0x"); ok {
			num, _, _ := strings.Cut(rest, " ")
			n, err := strconv.ParseUint(num, 16, 8)
			if err != nil {
				return ChannelInfo{}, fmt.Errorf("%w: channel number in %q", errParse, trimmed)
			}
			ci.Channel = int(n)
			seen = true
			continue
		}
		switch trimmed {
		case "Volatile(active) Settings":
			section = "volatile"
			continue
		case "Non-Volatile Settings":
			section = "non-volatile"
			continue
		}
		k, v, ok := labelValue(line)
		if !ok {
			continue
		}
		switch k {
		case "Channel Medium Type":
			ci.Medium = v
		case "Channel Protocol Type":
			ci.Protocol = v
		case "Session Support":
			ci.SessionSupport = v
		case "Access Mode":
			if section == "non-volatile" {
				ci.NonVolatileAccessMode = v
			} else {
				ci.AccessMode = v
			}
		}
	}
	if !seen || ci.Medium == "" {
		return ChannelInfo{}, fmt.Errorf("%w: no channel number and medium in channel info", errParse)
	}
	return ci, nil
}

// IPSource is where a BMC's LAN address comes from. A Request takes
// "static", "dhcp" or "keep"; "lan print" may also report "bios", "none"
// (unspecified) and "other".
type IPSource string

// Address sources.
const (
	IPStatic IPSource = "static"
	IPDHCP   IPSource = "dhcp"
	// IPKeep leaves the BMC's LAN settings as they are.
	IPKeep  IPSource = "keep"
	IPBIOS  IPSource = "bios"
	IPNone  IPSource = "none"
	IPOther IPSource = "other"
)

// Validate reports whether s can be asked for: static, dhcp or keep.
func (s IPSource) Validate() error {
	switch s {
	case IPStatic, IPDHCP, IPKeep:
		return nil
	}
	return fmt.Errorf("%w: IP source %q, want static, dhcp or keep", ErrInvalidRequest, string(s))
}

// ipSources maps "lan print"'s words to IPSource.
var ipSources = map[string]IPSource{
	"Static Address":        IPStatic,
	"DHCP Address":          IPDHCP,
	"BIOS Assigned Address": IPBIOS,
	"Unspecified":           IPNone,
	"Other":                 IPOther,
}

// LANSettings is what "ipmitool lan print N" reports about the IP set-up.
type LANSettings struct {
	IPSource IPSource
	Addr     netip.Addr
	Netmask  netip.Addr
	Gateway  netip.Addr
	MAC      net.HardwareAddr
	// VLAN is the 802.1q VLAN ID, 0 when disabled.
	VLAN int
}

// Prefix returns the netmask as a prefix length, and false when the mask is
// not a contiguous IPv4 mask.
func (l LANSettings) Prefix() (int, bool) {
	return maskBits(l.Netmask)
}

// ParseLANPrint parses the output of "ipmitool lan print N".
func ParseLANPrint(out string) (LANSettings, error) {
	var l LANSettings
	for line := range strings.Lines(out) {
		k, v, ok := labelValue(line)
		if !ok {
			continue
		}
		var err error
		switch k {
		case "IP Address Source":
			src, known := ipSources[v]
			if !known {
				src = IPOther
			}
			l.IPSource = src
		case "IP Address":
			l.Addr, err = netip.ParseAddr(v)
		case "Subnet Mask":
			l.Netmask, err = netip.ParseAddr(v)
		case "Default Gateway IP":
			l.Gateway, err = netip.ParseAddr(v)
		case "MAC Address":
			l.MAC, err = net.ParseMAC(v)
		case "802.1q VLAN ID":
			if v != "Disabled" {
				l.VLAN, err = strconv.Atoi(v)
			}
		}
		if err != nil {
			return LANSettings{}, fmt.Errorf("%w: lan print %s %q: %v", errParse, k, v, err)
		}
	}
	if !l.Addr.IsValid() || l.IPSource == "" {
		return LANSettings{}, fmt.Errorf("%w: no IP address or address source in lan print", errParse)
	}
	return l, nil
}

// Privilege names as ipmitool prints them.
const (
	PrivAdministrator = "ADMINISTRATOR"
	PrivNoAccess      = "NO ACCESS"
)

// User is one line of "ipmitool user list N": a user slot and its access
// on that channel.
type User struct {
	// ID is the user ID, the slot.
	ID int
	// Name is the user name, empty for an empty slot.
	Name string
	// Callin, LinkAuth and IPMIMsg are the "Callin", "Link Auth" and "IPMI
	// Msg" columns.
	Callin, LinkAuth, IPMIMsg bool
	// Privilege is the channel privilege limit: "ADMINISTRATOR",
	// "OPERATOR", "USER", "CALLBACK", "OEM", "NO ACCESS" or, for a value
	// ipmitool does not know, "Unknown (0xNN)".
	Privilege string
}

// emptyNames are what some BMCs call an unused slot instead of leaving its
// name empty.
var emptyNames = []string{"(empty user)", "(empty)", "<empty>"}

// Empty reports whether the slot has no user.
func (u User) Empty() bool {
	n := strings.ToLower(strings.TrimSpace(u.Name))
	if n == "" {
		return true
	}
	for _, e := range emptyNames {
		if n == e {
			return true
		}
	}
	return false
}

// ipmitool prints a user as "%-4d%-17s%-8s%-11s%-11s%s": ID, name,
// callin, link auth, IPMI messaging and privilege. A name has at most 16
// bytes, so the flags start at byte 21. userFlags matches the line from
// there; userLine matches a whole line whose columns have moved, and then
// takes the shortest name.
const userFlagsColumn = 21

var (
	userFlags = regexp.MustCompile(`^(true|false)\s+(true|false)\s+(true|false)\s+(.*?)\s*$`)
	userLine  = regexp.MustCompile(`^(\d+)\s+(?:(.*?)\s+)?(true|false)\s+(true|false)\s+(true|false)\s+(.*?)\s*$`)
)

// splitUserLine returns ID, name, callin, link auth, IPMI messaging and
// privilege of one user list line.
func splitUserLine(line string) ([]string, bool) {
	if len(line) > userFlagsColumn && line[userFlagsColumn-1] == ' ' {
		if m := userFlags.FindStringSubmatch(line[userFlagsColumn:]); m != nil {
			return append([]string{strings.TrimSpace(line[:4]), line[4:userFlagsColumn]}, m[1:]...), true
		}
	}
	m := userLine.FindStringSubmatch(line)
	if m == nil {
		return nil, false
	}
	return m[1:], true
}

// ParseUserList parses the output of "ipmitool user list N".
func ParseUserList(out string) ([]User, error) {
	var users []User
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "ID ") {
			continue
		}
		f, ok := splitUserLine(line)
		if !ok {
			return nil, fmt.Errorf("%w: user list line %q", errParse, line)
		}
		id, err := strconv.Atoi(f[0])
		if err != nil || id < 1 || id > maxUserID {
			return nil, fmt.Errorf("%w: user ID in %q", errParse, line)
		}
		users = append(users, User{
			ID:        id,
			Name:      strings.TrimSpace(f[1]),
			Callin:    f[2] == "true",
			LinkAuth:  f[3] == "true",
			IPMIMsg:   f[4] == "true",
			Privilege: f[5],
		})
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%w: no users in user list", errParse)
	}
	return users, nil
}

// Enable status of a user as "channel getaccess" prints it.
const (
	EnableStatusEnabled  = "enabled"
	EnableStatusDisabled = "disabled"
	// EnableStatusUnknown is what BMCs report that do not implement the
	// status (it came with an IPMI 2.0 erratum), ipmi_sim among them.
	EnableStatusUnknown = "unknown"
)

// ParseEnableStatus returns the "Enable Status" of the one user in the
// output of "ipmitool channel getaccess N ID".
func ParseEnableStatus(out string) (string, error) {
	for line := range strings.Lines(out) {
		if k, v, ok := labelValue(line); ok && k == "Enable Status" {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w: no enable status in channel getaccess", errParse)
}

// ParseSOLPayloadStatus parses the output of "ipmitool sol payload status N
// ID": "User 3 on channel 1 is enabled".
func ParseSOLPayloadStatus(out string) (bool, error) {
	s := strings.TrimSpace(out)
	switch {
	case strings.HasSuffix(s, " is enabled"):
		return true, nil
	case strings.HasSuffix(s, " is disabled"):
		return false, nil
	}
	return false, fmt.Errorf("%w: sol payload status %q", errParse, s)
}

// MCInfo is what "ipmitool mc info" reports about the BMC.
type MCInfo struct {
	DeviceID         int
	FirmwareRevision string
	IPMIVersion      string
	// ManufacturerID is the IANA enterprise number of the BMC's maker.
	ManufacturerID int
	// ManufacturerName is ipmitool's name for it, from the IANA registry
	// when ipmitool finds one, else "Unknown (0xNN)".
	ManufacturerName string
	ProductID        int
	ProductName      string
}

// ParseMCInfo parses the output of "ipmitool mc info".
func ParseMCInfo(out string) (MCInfo, error) {
	var mc MCInfo
	seen := false
	for line := range strings.Lines(out) {
		k, v, ok := labelValue(line)
		if !ok {
			continue
		}
		var err error
		switch k {
		case "Device ID":
			mc.DeviceID, err = strconv.Atoi(v)
			seen = true
		case "Firmware Revision":
			mc.FirmwareRevision = v
		case "IPMI Version":
			mc.IPMIVersion = v
		case "Manufacturer ID":
			mc.ManufacturerID, err = strconv.Atoi(v)
		case "Manufacturer Name":
			mc.ManufacturerName = v
		case "Product ID":
			num, _, _ := strings.Cut(v, " ")
			mc.ProductID, err = strconv.Atoi(num)
		case "Product Name":
			mc.ProductName = v
		}
		if err != nil {
			return MCInfo{}, fmt.Errorf("%w: mc info %s %q: %v", errParse, k, v, err)
		}
	}
	if !seen {
		return MCInfo{}, fmt.Errorf("%w: no device ID in mc info", errParse)
	}
	return mc, nil
}

// labelValue splits an ipmitool "Label   : value" line. Continuation lines,
// whose label is empty, are not label lines.
func labelValue(line string) (label, value string, ok bool) {
	k, v, found := strings.Cut(line, ":")
	if !found {
		return "", "", false
	}
	k = strings.TrimSpace(k)
	if k == "" {
		return "", "", false
	}
	return k, strings.TrimSpace(v), true
}

// maskBits returns the prefix length of an IPv4 netmask.
func maskBits(mask netip.Addr) (int, bool) {
	if !mask.Is4() {
		return 0, false
	}
	b := mask.As4()
	ones, size := net.IPv4Mask(b[0], b[1], b[2], b[3]).Size()
	if size == 0 {
		return 0, false
	}
	return ones, true
}

// prefixMask returns the IPv4 netmask of a prefix length.
func prefixMask(bits int) netip.Addr {
	m := net.CIDRMask(bits, 32)
	return netip.AddrFrom4([4]byte(m))
}
