package osconfig

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

// allowedPath reports whether Render may emit p for cfg.
func allowedPath(p string, cfg Config) bool {
	if validateAbsPath(p, 1024) != nil {
		return false
	}
	for _, r := range forbiddenRoots {
		if underDir(p, r) {
			return false
		}
	}
	for _, f := range cfg.Files {
		if f.Path == p {
			return true
		}
	}
	if reserved(p) && p != pathShadow && p != pathFstab && p != pathSUSENetConfig {
		rest := p
		for _, pre := range generatedPrefixes {
			if strings.HasPrefix(p, pre) {
				rest = p[len(pre):]
				if strings.Contains(rest, "/") || rest == "" {
					return false
				}
			}
		}
		return true
	}
	return false
}

func FuzzRender(f *testing.F) {
	f.Add("node01", "lab.example.com", "eno1", "0c:c4:7a:00:00:01", "10.0.0.5/24", "802.3ad", "miimon", "100", 100, "/etc/motd", testKey, uint8(0))
	f.Add("-bad", "", "../x", "zz", "::1/128", "9", "lacp_rate", "fast", 0, "/proc/x", "ssh-rsa\n", uint8(3))
	f.Add("n", "d", "bond0", "", "2001:db8::5/64", "active-backup", "primary", "bond0p0", 4094, "/etc/../x", "", uint8(5))
	families := []struct {
		f  Family
		fl string
	}{{Debian, ""}, {Debian, FlavorUbuntu}, {RHEL, "9"}, {RHEL, "8"}, {SUSE, ""}, {Generic, ""}, {Generic, FlavorNetplan}}
	f.Fuzz(func(t *testing.T, host, domain, ifname, macStr, addr, mode, optKey, optVal string, vlanID int, filePath, key string, fam uint8) {
		cfg := Config{Hostname: host, Domain: domain, InstanceID: "i-1", UserData: []byte(key)}
		var hw net.HardwareAddr
		if m, err := net.ParseMAC(macStr); err == nil {
			hw = m
		}
		var addrs []netip.Prefix
		if p, err := netip.ParsePrefix(addr); err == nil {
			addrs = append(addrs, p)
		}
		cfg.Interfaces = []Interface{{Name: ifname, MAC: hw, Addressing: Addressing{Addresses: addrs}}}
		cfg.Bonds = []Bond{{Name: "bond0", Members: []string{macStr, "eth9"}, Mode: mode, Options: map[string]string{optKey: optVal}}}
		cfg.VLANs = []VLAN{{Parent: ifname, ID: vlanID, Addressing: Addressing{DHCP4: true}}}
		cfg.SSHAuthorizedKeys = []string{key}
		cfg.Files = []File{{Path: filePath, Mode: 0o644, Content: []byte(key)}}
		cfg.DNS = []netip.Addr{netip.MustParseAddr("10.0.0.53")}
		cfg.SearchDomains = []string{domain}
		fl := families[int(fam)%len(families)]
		files, err := Render(fl.f, fl.fl, cfg)
		if err != nil {
			return
		}
		for _, f := range files {
			if !allowedPath(f.Path, cfg) {
				t.Errorf("Render emitted %q, outside the allowed set", f.Path)
			}
		}
		if _, err := Edits(fl.f, fl.fl, cfg); err != nil {
			t.Errorf("Edits failed where Render succeeded: %v", err)
		}
	})
}
