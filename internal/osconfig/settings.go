package osconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"strconv"

	"bareflow/contract"
)

// FromSettings turns the OS settings of an install request into a Config
// and validates it. Every error wraps ErrInvalidConfig and names the field.
// mounts are the fstab entries of the request's extra partitions;
// instanceID is the NoCloud instance-id, used when the request carries
// user-data.
func FromSettings(s contract.OSSettings, mounts []Mount, instanceID string) (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	cfg := Config{
		Hostname:          s.Hostname,
		Domain:            s.Domain,
		RootPasswordHash:  s.RootPasswordHash,
		SSHAuthorizedKeys: s.SSHAuthorizedKeys,
		Filesystems:       mounts,
		SearchDomains:     s.Network.Search,
	}
	if s.UserData != "" {
		cfg.UserData = []byte(s.UserData)
		cfg.InstanceID = instanceID
		if cfg.InstanceID == "" {
			cfg.InstanceID = "bareflow"
		}
	}
	addressing := func(field string, a contract.Addressing) Addressing {
		out := Addressing{DHCP4: a.DHCP, MTU: a.MTU}
		for i, s := range a.Addresses {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				bad("%s.addresses[%d]: %q is not an address with its prefix length (192.0.2.10/24)", field, i, s)
				continue
			}
			out.Addresses = append(out.Addresses, p)
		}
		if a.Gateway != "" {
			g, err := netip.ParseAddr(a.Gateway)
			if err != nil {
				bad("%s.gateway: %q is not an address", field, a.Gateway)
			}
			out.Gateway = g
		}
		return out
	}
	for i, n := range s.Network.Interfaces {
		field := fmt.Sprintf("network.interfaces[%d]", i)
		nic := Interface{Name: n.Name, Addressing: addressing(field, n.Addressing)}
		if n.MAC != "" {
			mac, err := net.ParseMAC(n.MAC)
			if err != nil || len(mac) != 6 {
				bad("%s.mac: %q is not a MAC address", field, n.MAC)
			}
			nic.MAC = mac
		}
		cfg.Interfaces = append(cfg.Interfaces, nic)
	}
	for i, b := range s.Network.Bonds {
		cfg.Bonds = append(cfg.Bonds, Bond{Name: b.Name, Members: b.Members, Mode: b.Mode, Options: b.Options,
			Addressing: addressing(fmt.Sprintf("network.bonds[%d]", i), b.Addressing)})
	}
	for i, v := range s.Network.VLANs {
		cfg.VLANs = append(cfg.VLANs, VLAN{Name: v.Name, Parent: v.Parent, ID: v.ID,
			Addressing: addressing(fmt.Sprintf("network.vlans[%d]", i), v.Addressing)})
	}
	for i, d := range s.Network.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			bad("network.dns[%d]: %q is not an address", i, d)
			continue
		}
		cfg.DNS = append(cfg.DNS, a)
	}
	for i, r := range s.Network.Routes {
		to, err := netip.ParsePrefix(r.To)
		if err != nil {
			bad("network.routes[%d].to: %q is not a prefix", i, r.To)
		}
		via, err := netip.ParseAddr(r.Via)
		if err != nil {
			bad("network.routes[%d].via: %q is not an address", i, r.Via)
		}
		cfg.Routes = append(cfg.Routes, Route{To: to, Via: via, Metric: r.Metric, Interface: r.Interface})
	}
	for i, f := range s.Files {
		mode := fs.FileMode(0o644)
		if f.Mode != "" {
			m, err := strconv.ParseUint(f.Mode, 8, 32)
			if err != nil || m > 0o777 {
				bad("files[%d].mode: %q is not an octal permission mode such as 0644 (no setuid, setgid or sticky bit)", i, f.Mode)
			}
			mode = fs.FileMode(m & 0o777)
		}
		cfg.Files = append(cfg.Files, File{Path: f.Path, Mode: mode, Content: []byte(f.Content)})
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
