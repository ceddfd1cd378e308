package boot

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config. A zero Config takes every one of them, and then the
// boot service answers no DHCP, serves no TFTP and runs HTTP boot on
// loopback only: nothing on the network changes until an operator says so.
const (
	// DefaultHTTPAddr is where HTTP boot (scripts, kernel, initrd,
	// phone-home, metrics) listens.
	DefaultHTTPAddr = "127.0.0.1:8081"
	// DefaultIPXEDir holds the iPXE binaries of Debian's ipxe package.
	DefaultIPXEDir = "/usr/lib/ipxe"
	// DefaultBIOSBootFile is the iPXE binary for BIOS PXE ROMs.
	DefaultBIOSBootFile = "undionly.kpxe"
	// DefaultUEFIBootFile is the iPXE binary for UEFI x86-64 firmware.
	DefaultUEFIBootFile = "ipxe.efi"
	// DefaultOfferHold is how long an offered address is kept for its MAC.
	DefaultOfferHold = time.Minute
	// DefaultDeclineHold is how long a declined address stays out of use.
	DefaultDeclineHold = 10 * time.Minute
	// DefaultTokenTTL is how long a phone-home token is valid after the
	// script carrying it was rendered.
	DefaultTokenTTL = 30 * time.Minute
	// DefaultEventQueue is how many boot events wait to be sent to
	// Temporal before new ones are dropped.
	DefaultEventQueue = 1024
	// DefaultDBTimeout bounds each database call on the DHCP path.
	DefaultDBTimeout = 2 * time.Second
	// DefaultNetworkRefresh is how often the networks are read again.
	DefaultNetworkRefresh = 10 * time.Second
	// DefaultTaskQueue is where Register workflows started by the boot
	// service run.
	DefaultTaskQueue = "bareflow"
	// DHCPServerPort and DHCPClientPort are the standard DHCP ports.
	DHCPServerPort = 67
	DHCPClientPort = 68
)

// Config configures the boot service. The zero value is valid; see the
// Default constants.
type Config struct {
	// Interfaces are the interfaces DHCP answers on without a relay. Each
	// must carry an IPv4 address, and a network in the store must name it.
	// Empty: no on-segment DHCP.
	Interfaces []string
	// RelayAddr is where DHCP listens for relayed requests, e.g.
	// "0.0.0.0:67". Empty: no relayed DHCP. When Interfaces are set, relayed
	// requests arriving on them are answered too.
	RelayAddr string
	// RelayReplyPort is the port replies to relays go to. Zero means 67.
	RelayReplyPort int
	// ServerAddr is the boot service's address that machines see as DHCP
	// server identifier and TFTP next-server on relayed networks. Empty
	// means the address of RelayAddr, or the interface's address.
	ServerAddr string
	// TFTPAddr is where TFTP listens, e.g. ":69". Empty: no TFTP.
	TFTPAddr string
	// TFTPRoot is the folder TFTP serves; empty means IPXEDir.
	TFTPRoot string
	// HTTPAddr is where HTTP boot listens; empty means DefaultHTTPAddr.
	HTTPAddr string
	// PublicURL is the base URL machines reach HTTP boot at, e.g.
	// "http://198.51.100.1:8081". Empty means http://HTTPAddr.
	PublicURL string
	// IPXEDir holds undionly.kpxe, ipxe.efi and snponly.efi; empty means
	// DefaultIPXEDir.
	IPXEDir string
	// BIOSBootFile, UEFIBootFile and ARM64BootFile are the file names sent
	// to BIOS, UEFI x86-64 and UEFI ARM64 firmware. ARM64 machines get no
	// boot file unless ARM64BootFile is set. UEFIBootFile may be
	// snponly.efi.
	BIOSBootFile  string
	UEFIBootFile  string
	ARM64BootFile string
	// RamdiskDir holds the ramdisk's kernel and initrd.
	RamdiskDir string
	// Kernel and Initrd are their file names in RamdiskDir; empty means
	// vmlinuz and initrd.img.
	Kernel string
	Initrd string
	// ImageCacheDir, when set, makes the boot service keep the images its
	// ramdisks install in this folder and serve them at
	// /boot/v1/images/{id}; ImageCacheMaxBytes bounds the folder (0: no
	// bound).
	ImageCacheDir      string
	ImageCacheMaxBytes int64
	// KernelArgs are added to the ramdisk's command line, e.g.
	// "console=ttyS0,115200".
	KernelArgs string
	// SSHAuthorizedKey is bareflow's SSH public key, authorized in the
	// ramdisk. Empty: the ramdisk gets none from the command line.
	SSHAuthorizedKey string
	// AutoRegister makes the boot service create a discovered machine for
	// an unknown MAC that PXE-boots on a provisioning network and start its
	// Register workflow. Off: unknown MACs are logged and ignored there.
	AutoRegister bool
	// TaskQueue is where started Register workflows run; empty means
	// DefaultTaskQueue.
	TaskQueue string
	// OfferHold, DeclineHold, TokenTTL, DBTimeout, NetworkRefresh and
	// EventQueue: zero means their Default.
	OfferHold      time.Duration
	DeclineHold    time.Duration
	TokenTTL       time.Duration
	DBTimeout      time.Duration
	NetworkRefresh time.Duration
	EventQueue     int
}

// withDefaults returns c with every empty field set to its default.
func (c Config) withDefaults() Config {
	set := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	set(&c.HTTPAddr, DefaultHTTPAddr)
	set(&c.IPXEDir, DefaultIPXEDir)
	set(&c.TFTPRoot, c.IPXEDir)
	set(&c.BIOSBootFile, DefaultBIOSBootFile)
	set(&c.UEFIBootFile, DefaultUEFIBootFile)
	set(&c.Kernel, "vmlinuz")
	set(&c.Initrd, "initrd.img")
	set(&c.TaskQueue, DefaultTaskQueue)
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTPAddr
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.RelayReplyPort == 0 {
		c.RelayReplyPort = DHCPServerPort
	}
	dur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	dur(&c.OfferHold, DefaultOfferHold)
	dur(&c.DeclineHold, DefaultDeclineHold)
	dur(&c.TokenTTL, DefaultTokenTTL)
	dur(&c.DBTimeout, DefaultDBTimeout)
	dur(&c.NetworkRefresh, DefaultNetworkRefresh)
	if c.EventQueue == 0 {
		c.EventQueue = DefaultEventQueue
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, hp := range []struct{ name, v string }{{"relay address", c.RelayAddr}, {"TFTP address", c.TFTPAddr}, {"HTTP address", c.HTTPAddr}} {
		if hp.v == "" {
			continue
		}
		if _, err := netip.ParseAddrPort(normalizeHostPort(hp.v)); err != nil {
			bad("%s %q: want host:port with an IP address", hp.name, hp.v)
		}
	}
	if c.ServerAddr != "" {
		if a, err := netip.ParseAddr(c.ServerAddr); err != nil || !a.Is4() {
			bad("server address %q: want an IPv4 address", c.ServerAddr)
		}
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("public URL %q: want http://host[:port]", c.PublicURL)
	}
	for i, name := range c.Interfaces {
		if name == "" || strings.ContainsAny(name, "/ \x00") || len(name) > 15 {
			bad("interface %d %q: not an interface name", i, name)
		}
	}
	for _, f := range []struct{ name, v string }{{"BIOS boot file", c.BIOSBootFile}, {"UEFI boot file", c.UEFIBootFile},
		{"ARM64 boot file", c.ARM64BootFile}, {"kernel", c.Kernel}, {"initrd", c.Initrd}} {
		if f.v != "" && !validFileName(f.v) {
			bad("%s %q: want a plain file name", f.name, f.v)
		}
	}
	if strings.ContainsAny(c.KernelArgs, "\n\r") {
		bad("kernel arguments must be one line")
	}
	if strings.ContainsAny(c.SSHAuthorizedKey, "\n\r") {
		bad("SSH authorized key must be one line")
	}
	if c.RelayReplyPort < 1 || c.RelayReplyPort > 65535 {
		bad("relay reply port %d: out of range", c.RelayReplyPort)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"offer hold", c.OfferHold}, {"decline hold", c.DeclineHold}, {"token lifetime", c.TokenTTL},
		{"database timeout", c.DBTimeout}, {"network refresh", c.NetworkRefresh}} {
		if d.v < 0 {
			bad("%s %v: must be positive", d.name, d.v)
		}
	}
	if c.EventQueue < 0 {
		bad("event queue %d: must be positive", c.EventQueue)
	}
	return errors.Join(errs...)
}

// normalizeHostPort turns ":69" into "0.0.0.0:69" for parsing.
func normalizeHostPort(s string) string {
	if strings.HasPrefix(s, ":") {
		return "0.0.0.0" + s
	}
	return s
}

// validFileName reports whether name is a file name without folders.
func validFileName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}
