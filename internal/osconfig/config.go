package osconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
)

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid os config")

// ErrUnsupportedFamily is wrapped by Render and Edits when the family or
// flavor has no renderer.
var ErrUnsupportedFamily = errors.New("unsupported os family")

// MaxUserData bounds Config.UserData.
const MaxUserData = 64 << 10

// MaxFileContent bounds the content of each File in Config.Files.
const MaxFileContent = 1 << 20

// Config is what the install step configures on the written root
// filesystem. The zero value configures nothing but /etc/hosts defaults.
type Config struct {
	// Hostname is the short host name, a single RFC 1123 label.
	Hostname string
	// Domain is the DNS domain; Hostname.Domain is the FQDN. Optional.
	Domain string

	// Interfaces are physical NICs.
	Interfaces []Interface
	// Bonds are Linux bonding devices over physical NICs.
	Bonds []Bond
	// VLANs are 802.1Q devices over an interface or a bond.
	VLANs []VLAN
	// DNS servers, in order of preference; attached to every link that
	// has addressing.
	DNS []netip.Addr
	// SearchDomains are DNS search domains.
	SearchDomains []string
	// Routes are static routes besides each link's default gateway.
	Routes []Route

	// RootPasswordHash is a crypt(3) hash ($6$, $5$ or $y$) for root; empty
	// leaves the image's password alone. Applied through Edits.
	RootPasswordHash string
	// SSHAuthorizedKeys are authorized_keys lines for root.
	SSHAuthorizedKeys []string
	// Filesystems are fstab entries by UUID; applied through Edits.
	Filesystems []Mount

	// UserData is the cloud-init user-data, written as is into the NoCloud
	// seed. At most MaxUserData bytes; requires InstanceID.
	UserData []byte
	// InstanceID is the NoCloud meta-data instance-id. When set, the seed
	// is written.
	InstanceID string

	// Files are extra files to write. Only regular files: Mode holds
	// permission bits only.
	Files []File
}

// Addressing is the layer-3 part shared by interfaces, bonds and VLANs.
// A link with no DHCP4 and no Addresses is brought up without addresses.
type Addressing struct {
	// DHCP4 asks for an IPv4 address by DHCP; exclusive with static IPv4
	// addresses.
	DHCP4 bool
	// Addresses are static addresses with their prefix length, IPv4 or
	// IPv6.
	Addresses []netip.Prefix
	// Gateway is the default gateway; its family needs a static address of
	// that family on the same link.
	Gateway netip.Addr
	// MTU is 0 (unchanged) or 68–65535.
	MTU int
}

// Interface is a physical NIC.
type Interface struct {
	// Name is required: it names the configuration and, when MAC is set,
	// the NIC with that MAC is renamed to it (1–15 characters of
	// [A-Za-z0-9_.-], starting with a letter or digit).
	Name string
	// MAC, when set, matches the NIC by hardware address.
	MAC net.HardwareAddr
	Addressing
}

// Bond is a Linux bonding device.
type Bond struct {
	Name string
	// Members are names of Interfaces (which then carry no addressing of
	// their own), MAC addresses (of an Interface, or of a NIC that gets a
	// port named <bond>p<index>), or bare kernel interface names.
	Members []string
	// Mode is 0–6 or its name: balance-rr, active-backup, balance-xor,
	// broadcast, 802.3ad, balance-tlb, balance-alb.
	Mode string
	// Options are bonding driver options by their sysfs name (miimon,
	// lacp_rate, xmit_hash_policy, primary, …); see BondOptions.
	Options map[string]string
	Addressing
}

// VLAN is an 802.1Q device.
type VLAN struct {
	// Name defaults to Parent.ID.
	Name string
	// Parent is the name of an Interface or a Bond.
	Parent string
	// ID is 1–4094.
	ID int
	Addressing
}

// Route is a static route.
type Route struct {
	To  netip.Prefix
	Via netip.Addr
	// Metric is 0 for the renderer's default.
	Metric uint32
	// Interface names the link the route belongs to; empty picks the link
	// with a static address whose prefix contains Via.
	Interface string
}

// Mount is one fstab entry.
type Mount struct {
	// UUID is the filesystem UUID (as blkid prints it).
	UUID string
	// MountPoint is an absolute clean path, or "none" for swap.
	MountPoint string
	FSType     string
	// Options default to "defaults".
	Options string
	// Pass is the fsck pass, 0–2.
	Pass int
}

// File is a file to write: in Config, an extra file the request asks for;
// from Render, every file to write. A File whose Mode has fs.ModeDir is a
// directory to create (or chmod) with that mode; Content is then empty.
type File struct {
	Path    string
	Mode    fs.FileMode
	Content []byte
}

// IsDir reports whether f is a directory entry.
func (f File) IsDir() bool { return f.Mode.IsDir() }

func (f File) String() string {
	return fmt.Sprintf("%s %v %d bytes", f.Path, f.Mode, len(f.Content))
}
