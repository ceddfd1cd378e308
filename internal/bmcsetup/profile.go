package bmcsetup

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// IPMI limits.
const (
	// maxUsernameLen is the size of an IPMI user name.
	maxUsernameLen = 16
	// maxLANChannel is the highest channel number scanned for a LAN
	// channel; 12 to 15 are reserved or the system interface.
	maxLANChannel = 11
	// maxUserID is the highest IPMI user ID.
	maxUserID = 63
)

// Defaults of a Profile's waits.
const (
	defaultLANChangeSettle = 30 * time.Second
	defaultResetDelay      = 10 * time.Second
	defaultResetWait       = 5 * time.Minute
)

// Profile is what bareflow knows about one kind of BMC: where its LAN channel
// usually is, which user slots bareflow may use, what passwords it takes and
// what it needs after a LAN change.
//
// The built-in profiles stay close to Generic: a vendor's profile changes a
// value only where bareflow has a reason to. Discovery never relies on a
// profile alone: the LAN channel is confirmed with "channel info", the user
// slot with "user list".
type Profile struct {
	// Name identifies the profile in results and logs, such as "dell".
	Name string
	// LANChannels are the channels tried first for the LAN interface, in
	// order. Channels 1 to 11 are scanned after them.
	LANChannels []int
	// FirstSlot and MaxSlot bound the user IDs bareflow may take for its
	// user when it has none yet. A user named like bareflow's is reused
	// wherever it is, unless its slot is reserved.
	FirstSlot, MaxSlot int
	// ReservedSlots are user IDs never touched: 1 is the anonymous (null)
	// user, 2 the factory administrator (root, ADMIN, USERID,
	// Administrator, admin) on every BMC bareflow knows.
	ReservedSlots []int
	// PasswordLength is the length of the passwords GeneratePassword makes.
	PasswordLength int
	// PasswordMinLen and PasswordMaxLen bound the passwords the BMC takes.
	// IPMI stores 16 bytes (IPMI 1.5 format) or 20 (IPMI 2.0 format).
	PasswordMinLen, PasswordMaxLen int
	// PasswordSpecials are the special characters a password may hold.
	// They avoid characters that shells, ipmitool's option parser or BMC
	// firmware treat specially (quotes, backslash, $, !, &, ;, space).
	PasswordSpecials string
	// PasswordComplex requires an upper-case letter, a lower-case letter,
	// a digit and a special character in every password.
	PasswordComplex bool
	// SetPasswordLength is the password size passed to "user set password":
	// 16 or 20. Some BMCs refuse the 20-byte format.
	SetPasswordLength int
	// ResetAfterLANChange makes Configure cold-reset the BMC ("mc reset
	// cold") after it changed a LAN setting, then wait until the BMC
	// answers again.
	ResetAfterLANChange bool
	// ResetDelay is how long to wait after a cold reset before polling the
	// BMC, so that a BMC that has not gone down yet is not taken for one
	// that is back. Zero means 10s.
	ResetDelay time.Duration
	// ResetWait bounds the wait for the BMC to answer after a cold reset.
	// Zero means 5 minutes.
	ResetWait time.Duration
	// LANChangeSettle bounds how long Configure reads the LAN settings back
	// until they show a static change; some BMCs apply LAN changes a few
	// seconds after they acknowledged them. Zero means 30s.
	LANChangeSettle time.Duration
}

// passwordSpecials are the special characters of every built-in profile.
const passwordSpecials = "-_.+=@"

// Validate reports whether p can be used.
func (p Profile) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("%w: profile has no name", ErrInvalidRequest)
	}
	for _, ch := range p.LANChannels {
		if ch < 1 || ch > maxLANChannel {
			return fmt.Errorf("%w: profile %s: LAN channel %d out of 1..%d", ErrInvalidRequest, p.Name, ch, maxLANChannel)
		}
	}
	if p.FirstSlot < 2 || p.MaxSlot < p.FirstSlot || p.MaxSlot > maxUserID {
		return fmt.Errorf("%w: profile %s: user slots %d..%d out of 2..%d", ErrInvalidRequest, p.Name, p.FirstSlot, p.MaxSlot, maxUserID)
	}
	if p.SetPasswordLength != 16 && p.SetPasswordLength != 20 {
		return fmt.Errorf("%w: profile %s: password size %d, want 16 or 20", ErrInvalidRequest, p.Name, p.SetPasswordLength)
	}
	if p.PasswordMinLen < 1 || p.PasswordMaxLen < p.PasswordMinLen || p.PasswordMaxLen > p.SetPasswordLength {
		return fmt.Errorf("%w: profile %s: password length %d..%d does not fit %d bytes", ErrInvalidRequest, p.Name, p.PasswordMinLen, p.PasswordMaxLen, p.SetPasswordLength)
	}
	if p.PasswordLength < p.PasswordMinLen || p.PasswordLength > p.PasswordMaxLen {
		return fmt.Errorf("%w: profile %s: generated password length %d out of %d..%d", ErrInvalidRequest, p.Name, p.PasswordLength, p.PasswordMinLen, p.PasswordMaxLen)
	}
	if p.PasswordComplex && p.PasswordSpecials == "" {
		return fmt.Errorf("%w: profile %s: complex passwords need special characters", ErrInvalidRequest, p.Name)
	}
	for _, c := range p.PasswordSpecials {
		if c > 0x7e || c <= ' ' || isAlnum(byte(c)) || strings.ContainsRune(`"'\$!&;|<>*?~#{}()[]`+"`", c) {
			return fmt.Errorf("%w: profile %s: special character %q not allowed", ErrInvalidRequest, p.Name, c)
		}
	}
	if p.ResetDelay < 0 || p.ResetWait < 0 || p.LANChangeSettle < 0 {
		return fmt.Errorf("%w: profile %s: negative wait", ErrInvalidRequest, p.Name)
	}
	return nil
}

func (p Profile) reserved(slot int) bool { return slices.Contains(p.ReservedSlots, slot) }

func (p Profile) withDefaults() Profile {
	if p.ResetDelay == 0 {
		p.ResetDelay = defaultResetDelay
	}
	if p.ResetWait == 0 {
		p.ResetWait = defaultResetWait
	}
	if p.LANChangeSettle == 0 {
		p.LANChangeSettle = defaultLANChangeSettle
	}
	return p
}

// Generic is the profile of a BMC bareflow does not know: the LAN channel is
// found by scanning, bareflow's user goes into slots 3 to 10, and passwords
// have 16 characters of every class, set in the 16-byte (IPMI 1.5) format.
func Generic() Profile {
	return Profile{
		Name:              "generic",
		FirstSlot:         3,
		MaxSlot:           10,
		ReservedSlots:     []int{1, 2},
		PasswordLength:    16,
		PasswordMinLen:    8,
		PasswordMaxLen:    16,
		PasswordSpecials:  passwordSpecials,
		PasswordComplex:   true,
		SetPasswordLength: 16,
	}
}

// profiles are the built-in profiles by name. Each starts from Generic and
// changes only a few values; none resets the BMC after a LAN change.
var profiles = map[string]func() Profile{
	"generic": Generic,
	// dell (iDRAC): channel 1 first, slots 3 to 16, 20-character passwords
	// in the 20-byte format.
	"dell": func() Profile {
		p := Generic()
		p.Name = "dell"
		p.LANChannels = []int{1}
		p.MaxSlot = 16
		p.PasswordLength, p.PasswordMaxLen, p.SetPasswordLength = 20, 20, 20
		return p
	},
	// hpe (iLO): channel 2, then 1; slots 3 to 12.
	"hpe": func() Profile {
		p := Generic()
		p.Name = "hpe"
		p.LANChannels = []int{2, 1}
		p.MaxSlot = 12
		return p
	},
	// supermicro: channel 1 first; the generic slots 3 to 10 and 16-byte
	// passwords.
	"supermicro": func() Profile {
		p := Generic()
		p.Name = "supermicro"
		p.LANChannels = []int{1}
		return p
	},
	// lenovo (XCC): channel 1 first, slots 3 to 12, passwords of at least
	// 10 characters.
	"lenovo": func() Profile {
		p := Generic()
		p.Name = "lenovo"
		p.LANChannels = []int{1}
		p.MaxSlot = 12
		p.PasswordMinLen = 10
		return p
	},
	// huawei (iBMC): channel 1 first, slots 3 to 16; the generic complex
	// passwords (upper and lower case, digit, special character).
	"huawei": func() Profile {
		p := Generic()
		p.Name = "huawei"
		p.LANChannels = []int{1}
		p.MaxSlot = 16
		return p
	},
	// inspur: channel 1, then 8; slots 3 to 16.
	"inspur": func() Profile {
		p := Generic()
		p.Name = "inspur"
		p.LANChannels = []int{1, 8}
		p.MaxSlot = 16
		return p
	},
	// lab is OpenIPMI's ipmi_sim (2.0.33), alone or behind QEMU's
	// ipmi-bmc-extern: channel 1 first, slots 3 to 16, and passwords of at
	// most 16 characters, since ipmi_sim stores 16 bytes of a password
	// whatever the format (lanserv/bmc_app.c, handle_set_user_password).
	"lab": func() Profile {
		p := Generic()
		p.Name = "lab"
		p.LANChannels = []int{1}
		p.MaxSlot = 16
		p.LANChangeSettle = 5 * time.Second
		return p
	},
}

// ProfileByName returns the built-in profile called name: generic, dell,
// hpe, supermicro, lenovo, huawei, inspur or lab.
func ProfileByName(name string) (Profile, bool) {
	f, ok := profiles[name]
	if !ok {
		return Profile{}, false
	}
	return f(), true
}

// ProfileFor returns the profile for a machine whose SMBIOS system vendor
// (dmidecode -s system-manufacturer) is vendor: "Dell Inc.", "HPE",
// "Hewlett Packard Enterprise", "HP", "Huawei", "Inspur", "Lenovo",
// "Supermicro", and "QEMU" or "bareflow-lab" for the lab. Any other vendor
// gets Generic.
func ProfileFor(vendor string) Profile {
	v := strings.ToLower(strings.TrimSpace(vendor))
	name := "generic"
	switch {
	case strings.Contains(v, "dell"):
		name = "dell"
	case v == "hp" || v == "hpe" || strings.HasPrefix(v, "hp ") || strings.HasPrefix(v, "hpe ") ||
		strings.Contains(v, "hewlett"):
		name = "hpe"
	case strings.Contains(v, "supermicro") || strings.Contains(v, "super micro"):
		name = "supermicro"
	case strings.Contains(v, "lenovo"):
		name = "lenovo"
	case strings.Contains(v, "huawei"):
		name = "huawei"
	case strings.Contains(v, "inspur"):
		name = "inspur"
	case v == "qemu" || v == "bareflow-lab":
		name = "lab"
	}
	return profiles[name]()
}

// profileForManufacturer returns the profile for a BMC's IANA manufacturer
// ID, as "mc info" reports it, for when the SMBIOS vendor is not known.
func profileForManufacturer(id int) Profile {
	name := map[int]string{
		674:   "dell",
		11:    "hpe", // Hewlett-Packard
		47196: "hpe", // Hewlett Packard Enterprise
		10876: "supermicro",
		19046: "lenovo",
		2011:  "huawei",
		37945: "inspur",
		4753:  "lab", // MontaVista, OpenIPMI's ipmi_sim
	}[id]
	if name == "" {
		return Generic()
	}
	return profiles[name]()
}

// ProfileForBMC returns the profile of a BMC that reports IPMI
// manufacturer ID id in "mc info": the BMC's own identity decides, since it
// is the BMC's firmware whose rules apply. A manufacturer without a profile
// falls back to the machine's SMBIOS system vendor (ProfileFor).
func ProfileForBMC(id int, vendor string) Profile {
	if p := profileForManufacturer(id); p.Name != "generic" {
		return p
	}
	return ProfileFor(vendor)
}
