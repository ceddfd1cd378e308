package osconfig

import (
	"bytes"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// Family is an OS family, each with its own network configuration format.
type Family string

// The families Render knows.
const (
	Debian  Family = "debian"
	RHEL    Family = "rhel"
	SUSE    Family = "suse"
	Generic Family = "linux"
)

// Flavors for Debian and Generic; a RHEL flavor is the major version
// ("7", "8", "9", "10" or "9.4"), and SUSE takes any flavor.
const (
	FlavorDebian  = "debian"
	FlavorUbuntu  = "ubuntu"
	FlavorNetplan = "netplan"
)

// Validate reports whether f is a known family.
func (f Family) Validate() error {
	switch f {
	case Debian, RHEL, SUSE, Generic:
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnsupportedFamily, string(f))
}

// Paths Render and Edits write.
const (
	pathHostname        = "/etc/hostname"
	pathHosts           = "/etc/hosts"
	pathSSHDir          = "/root/.ssh"
	pathAuthorizedKeys  = "/root/.ssh/authorized_keys"
	pathSeedDir         = "/var/lib/cloud/seed/nocloud"
	pathMetaData        = pathSeedDir + "/meta-data"
	pathUserData        = pathSeedDir + "/user-data"
	pathNetworkConfig   = pathSeedDir + "/network-config"
	pathCloudNetDisable = "/etc/cloud/cloud.cfg.d/99-bareflow-network.cfg"
	pathInterfaces      = "/etc/network/interfaces"
	pathNetplan         = "/etc/netplan/50-bareflow.yaml"
	pathShadow          = "/etc/shadow"
	pathFstab           = "/etc/fstab"
	pathSUSENetConfig   = "/etc/sysconfig/network/config"

	dirNM         = "/etc/NetworkManager/system-connections/"
	dirIfcfgRHEL  = "/etc/sysconfig/network-scripts/"
	dirIfcfgSUSE  = "/etc/sysconfig/network/"
	prefixLinkDir = "/etc/systemd/network/10-bareflow-"
)

// generatedPrefixes are the path prefixes of per-link network files.
var generatedPrefixes = []string{
	dirNM,
	dirIfcfgRHEL + "ifcfg-", dirIfcfgRHEL + "route-", dirIfcfgRHEL + "route6-",
	dirIfcfgSUSE + "ifcfg-", dirIfcfgSUSE + "ifroute-",
	prefixLinkDir,
}

// netFormat is the network configuration format chosen for a family and
// flavor.
type netFormat int

const (
	formatNone netFormat = iota
	formatIfupdown
	formatNetplan
	formatKeyfile
	formatIfcfgRHEL
	formatIfcfgSUSE
)

func chooseFormat(family Family, flavor string) (netFormat, error) {
	switch family {
	case Debian:
		switch flavor {
		case "", FlavorDebian:
			return formatIfupdown, nil
		case FlavorUbuntu:
			return formatNetplan, nil
		}
	case RHEL:
		major, _, _ := strings.Cut(flavor, ".")
		v, err := strconv.Atoi(major)
		switch {
		case err != nil:
		case v >= 9:
			return formatKeyfile, nil
		case v >= 7:
			return formatIfcfgRHEL, nil
		}
	case SUSE:
		return formatIfcfgSUSE, nil
	case Generic:
		switch flavor {
		case "", "none":
			return formatNone, nil
		case FlavorNetplan:
			return formatNetplan, nil
		}
	default:
		return 0, fmt.Errorf("%w: %q", ErrUnsupportedFamily, string(family))
	}
	return 0, fmt.Errorf("%w: %s flavor %q", ErrUnsupportedFamily, family, truncate(flavor, 40))
}

// Render validates cfg and returns every file to write on the target root
// filesystem for family and flavor, sorted by path. Directory entries
// (Mode with fs.ModeDir) precede the files in them. Files that must be
// merged with what the image holds (/etc/shadow, /etc/fstab, SUSE's
// network/config) are not among them: see Edits.
func Render(family Family, flavor string, cfg Config) ([]File, error) {
	format, err := chooseFormat(family, flavor)
	if err != nil {
		return nil, err
	}
	n, err := cfg.normalize()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if format == formatNone && !n.empty() && cfg.InstanceID == "" {
		return nil, fmt.Errorf("%w: family %s renders the network through cloud-init only, which needs an instance-id", ErrInvalidConfig, family)
	}
	var out []File
	add := func(p string, mode fs.FileMode, content []byte) {
		out = append(out, File{Path: p, Mode: mode, Content: content})
	}
	if cfg.Hostname != "" {
		add(pathHostname, 0o644, []byte(cfg.Hostname+"\n"))
	}
	add(pathHosts, 0o644, renderHosts(cfg.Hostname, cfg.Domain))
	if keys := authorizedKeys(cfg.SSHAuthorizedKeys); keys != nil {
		add(pathSSHDir, fs.ModeDir|0o700, nil)
		add(pathAuthorizedKeys, 0o600, keys)
	}
	if !n.empty() {
		switch format {
		case formatIfupdown:
			add(pathInterfaces, 0o644, renderIfupdown(n))
			out = append(out, linkFiles(n)...)
		case formatNetplan:
			add(pathNetplan, 0o600, renderNetplan(n, true))
		case formatKeyfile:
			out = append(out, renderKeyfiles(n)...)
		case formatIfcfgRHEL:
			out = append(out, renderIfcfgRHEL(n)...)
		case formatIfcfgSUSE:
			out = append(out, renderIfcfgSUSE(n)...)
			out = append(out, linkFiles(n)...)
		}
		if format != formatNone {
			add(pathCloudNetDisable, 0o644, []byte("# written by bareflow: the network is configured in the OS's own format\nnetwork:\n  config: disabled\n"))
		}
	}
	if cfg.InstanceID != "" {
		add(pathSeedDir, fs.ModeDir|0o700, nil)
		add(pathMetaData, 0o600, renderMetaData(cfg))
		add(pathUserData, 0o600, slices.Clone(cfg.UserData))
		if !n.empty() {
			add(pathNetworkConfig, 0o600, renderNetplan(n, false))
		}
	}
	for _, f := range cfg.Files {
		add(f.Path, f.Mode, slices.Clone(f.Content))
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

const header = "# written by bareflow; changes are overwritten on reinstall\n"

// renderHosts writes the whole of /etc/hosts: the loopback lines every
// family ships, with the host's names on 127.0.1.1.
func renderHosts(host, domain string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("127.0.0.1\tlocalhost\n")
	if host != "" {
		if domain != "" {
			fmt.Fprintf(&b, "127.0.1.1\t%s.%s %s\n", host, domain, host)
		} else {
			fmt.Fprintf(&b, "127.0.1.1\t%s\n", host)
		}
	}
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	return b.Bytes()
}

// authorizedKeys returns the validated keys, trimmed, deduplicated and
// sorted, or nil when there are none.
func authorizedKeys(keys []string) []byte {
	if len(keys) == 0 {
		return nil
	}
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = strings.TrimSpace(k)
	}
	slices.Sort(ks)
	ks = slices.Compact(ks)
	return []byte(strings.Join(ks, "\n") + "\n")
}

func renderMetaData(cfg Config) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "instance-id: %s\n", yamlString(cfg.InstanceID))
	if cfg.Hostname != "" {
		fmt.Fprintf(&b, "local-hostname: %s\n", yamlString(cfg.Hostname))
	}
	return b.Bytes()
}

// linkFiles renames MAC-matched NICs with systemd .link files, for formats
// that can only name interfaces.
func linkFiles(n *network) []File {
	var out []File
	for _, l := range n.links {
		if l.mac == nil {
			continue
		}
		c := fmt.Sprintf("%s[Match]\nPermanentMACAddress=%s\n\n[Link]\nName=%s\n", header, l.mac, l.name)
		out = append(out, File{Path: prefixLinkDir + l.name + ".link", Mode: 0o644, Content: []byte(c)})
	}
	return out
}
