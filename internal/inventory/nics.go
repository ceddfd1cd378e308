package inventory

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"bareflow/contract"
)

// ipLink is one interface of `ip -j link`.
type ipLink struct {
	name, linkType, mac, operstate string
	mtu                            int
	lowerUp                        bool
}

// parseIPLink reads `ip -j link show` (iproute2's JSON). An interface that
// does not decode is skipped.
func parseIPLink(b []byte) ([]ipLink, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	var out []ipLink
	bad := 0
	for _, raw := range raws {
		if len(out) >= maxSections {
			return out, fmt.Errorf("more than %d interfaces: the rest are ignored", maxSections)
		}
		var l struct {
			IfName    string   `json:"ifname"`
			Flags     []string `json:"flags"`
			MTU       int      `json:"mtu"`
			Operstate string   `json:"operstate"`
			LinkType  string   `json:"link_type"`
			Address   string   `json:"address"`
			PermAddr  string   `json:"permaddr"`
		}
		if err := json.Unmarshal(raw, &l); err != nil || !validIfName(l.IfName) {
			bad++
			continue
		}
		mac := normalizeMAC(l.PermAddr)
		if mac == "" {
			mac = normalizeMAC(l.Address)
		}
		out = append(out, ipLink{
			name:      l.IfName,
			linkType:  clean(l.LinkType),
			mac:       mac,
			operstate: clean(l.Operstate),
			mtu:       max(l.MTU, 0),
			lowerUp:   slices.Contains(l.Flags, "LOWER_UP"),
		})
	}
	if bad > 0 {
		return out, fmt.Errorf("%d interfaces could not be read", bad)
	}
	return out, nil
}

// parseIPAddr reads `ip -j addr show`: the addresses of each interface as
// prefixes ("10.20.30.41/24"). Loopback and host-scope addresses and IPv6
// link-local ones are left out: every interface has them and they say
// nothing about the network.
func parseIPAddr(b []byte) (map[string][]string, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	out := map[string][]string{}
	bad := 0
	for _, raw := range raws {
		if len(out) >= maxSections {
			break
		}
		var l struct {
			IfName   string `json:"ifname"`
			AddrInfo []struct {
				Family    string `json:"family"`
				Local     string `json:"local"`
				PrefixLen int    `json:"prefixlen"`
				Scope     string `json:"scope"`
			} `json:"addr_info"`
		}
		if err := json.Unmarshal(raw, &l); err != nil || !validIfName(l.IfName) {
			bad++
			continue
		}
		for _, a := range l.AddrInfo {
			if len(out[l.IfName]) >= maxAddrs {
				break
			}
			if a.Scope == "host" || (a.Family != "inet" && a.Family != "inet6") {
				continue
			}
			addr, err := netip.ParseAddr(a.Local)
			if err != nil || addr.IsLoopback() || addr.IsLinkLocalUnicast() && addr.Is6() {
				continue
			}
			p, err := addr.Prefix(a.PrefixLen)
			if err != nil {
				continue
			}
			out[l.IfName] = append(out[l.IfName], netip.PrefixFrom(addr, p.Bits()).String())
		}
	}
	if bad > 0 {
		return out, fmt.Errorf("%d interfaces could not be read", bad)
	}
	return out, nil
}

// validIfName accepts Linux interface names: 1 to 15 bytes, no slash or
// blank.
func validIfName(n string) bool {
	return n != "" && len(n) <= 15 && !strings.ContainsAny(n, "/ \t\n:") && n != "." && n != ".."
}

// normalizeMAC is a 48-bit MAC address in lower case with colons, or ""
// when v is not one or is all zeros.
func normalizeMAC(v string) string {
	hw, err := net.ParseMAC(strings.TrimSpace(v))
	if err != nil || len(hw) != 6 || string(hw) == "\x00\x00\x00\x00\x00\x00" {
		return ""
	}
	return hw.String()
}

// sysNetIface is one section of the sys-net script's output.
type sysNetIface struct {
	name, typ, mac, operstate, device, driver, kind string
	carrier                                         *bool
	mtu, speed                                      int
}

// parseSysNet reads the sys-net script's output: a "@@@ NAME" line per
// interface, then its key=value lines (see sysNetScript).
func parseSysNet(b []byte) ([]sysNetIface, error) {
	var out []sysNetIface
	for _, s := range splitSections(b) {
		if !validIfName(s.header) {
			continue
		}
		kv := keyValues(s.lines)
		i := sysNetIface{
			name:      s.header,
			typ:       strings.TrimSpace(kv["type"]),
			mac:       normalizeMAC(kv["address"]),
			operstate: clean(kv["operstate"]),
			device:    clean(kv["device"]),
			driver:    clean(kv["driver"]),
			kind:      clean(kv["kind"]),
			carrier:   flag01(kv["carrier"]),
		}
		if n, ok := atoi(kv["mtu"]); ok && n < 1<<20 {
			i.mtu = int(n)
		}
		if n, ok := atoi(kv["speed"]); ok && n < 1<<30 {
			i.speed = int(n)
		}
		out = append(out, i)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no interface sections in the output")
	}
	return out, nil
}

// ethtoolInfo is what ethtool said about one interface.
type ethtoolInfo struct {
	speed    int
	link     *bool
	driver   string
	firmware string
	busInfo  string
}

// parseEthtool reads the ethtool script's output: `ethtool NAME` after
// "@@@ ethtool NAME" and `ethtool -i NAME` after "@@@ ethtool-i NAME". A
// "@@@ exit N" line follows a call that failed; failed lists those calls,
// one line each, with the last line the call printed (its error).
func parseEthtool(b []byte) (info map[string]ethtoolInfo, failed []string, err error) {
	info = map[string]ethtoolInfo{}
	var last section
	for _, s := range splitSections(b) {
		if status, isExit := strings.CutPrefix(s.header, "exit "); isExit {
			if len(failed) < maxNICs {
				msg := ""
				for i := len(last.lines) - 1; i >= 0 && msg == ""; i-- {
					msg = strings.TrimSpace(last.lines[i])
				}
				failed = append(failed, oneLine(fmt.Sprintf("%s: exit status %s: %s", last.header, clean(status), msg), 160))
			}
			continue
		}
		last = s
		kind, name, ok := strings.Cut(s.header, " ")
		if !ok || !validIfName(name) || (kind != "ethtool" && kind != "ethtool-i") {
			continue
		}
		if _, seen := info[name]; !seen && len(info) >= maxNICs {
			continue
		}
		e := info[name]
		for _, l := range s.lines {
			k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch {
			case kind == "ethtool" && k == "Speed":
				e.speed = parseEthtoolSpeed(v)
			case kind == "ethtool" && k == "Link detected":
				if v == "yes" || v == "no" {
					up := v == "yes"
					e.link = &up
				}
			case kind == "ethtool-i" && k == "driver":
				e.driver = clean(v)
			case kind == "ethtool-i" && k == "firmware-version":
				e.firmware = value(v)
			case kind == "ethtool-i" && k == "bus-info":
				e.busInfo = strings.ToLower(clean(v))
			}
		}
		info[name] = e
	}
	if len(info) == 0 && len(failed) == 0 {
		return info, nil, fmt.Errorf("no interface sections in the output")
	}
	return info, failed, nil
}

// parseEthtoolSpeed reads ethtool's "Speed:" value, "1000Mb/s"; 0 for
// "Unknown!" and anything else.
func parseEthtoolSpeed(v string) int {
	n, ok := strings.CutSuffix(v, "Mb/s")
	if !ok {
		return 0
	}
	s, ok := atoi(n)
	if !ok || s > 1<<30 {
		return 0
	}
	return int(s)
}

// buildNICs lists the physical Ethernet interfaces. The interfaces are
// those of `ip -j link` of type ether (or, when that output is missing,
// the sys-net sections of ARP type 1), other than lo; when sys-net is
// present, only those with a device behind them are kept, which leaves out
// bridges, bonds, VLANs, veth and other virtual interfaces, and wireless
// ones are dropped. ethtool gives driver, firmware, PCI address and speed;
// sys-net fills in what it lacks. The link is up when the kernel reports a
// carrier (LOWER_UP, operstate UP, ethtool's "Link detected: yes" or sysfs
// carrier 1); the speed is only kept for a link that is up. NICs are sorted
// by name.
func buildNICs(links []ipLink, sysNet []sysNetIface, eth map[string]ethtoolInfo,
	addrs map[string][]string, lldp map[string]contract.LLDPNeighbor) []contract.NIC {
	sysBy := map[string]sysNetIface{}
	for _, s := range sysNet {
		if _, dup := sysBy[s.name]; !dup {
			sysBy[s.name] = s
		}
	}
	if len(links) == 0 {
		for _, s := range sysNet {
			if s.typ == "1" {
				links = append(links, ipLink{name: s.name, linkType: "ether", mac: s.mac,
					operstate: strings.ToUpper(s.operstate), mtu: s.mtu})
			}
		}
	}
	var out []contract.NIC
	seen := map[string]bool{}
	for _, l := range links {
		if l.name == "lo" || l.linkType != "ether" || seen[l.name] {
			continue
		}
		seen[l.name] = true
		s, hasSys := sysBy[l.name]
		if len(sysNet) > 0 && (!hasSys || s.device == "" || s.kind != "") {
			continue
		}
		e := eth[l.name]
		n := contract.NIC{
			Name:     l.name,
			MAC:      firstOf(l.mac, s.mac),
			Driver:   firstOf(e.driver, s.driver),
			MTU:      l.mtu,
			Firmware: e.firmware,
			Addrs:    addrs[l.name],
		}
		if n.MTU == 0 {
			n.MTU = s.mtu
		}
		if isPCIAddr(e.busInfo) {
			n.PCIAddr = e.busInfo
		} else {
			n.PCIAddr = lastPCIAddr(s.device)
		}
		n.Link = l.lowerUp || strings.EqualFold(l.operstate, "UP") ||
			(e.link != nil && *e.link) || (s.carrier != nil && *s.carrier)
		if n.Link {
			n.SpeedMbps = e.speed
			if n.SpeedMbps == 0 {
				n.SpeedMbps = s.speed
			}
		}
		if nb, ok := lldp[l.name]; ok {
			n.LLDP = &nb
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b contract.NIC) int { return naturalCompare(a.Name, b.Name) })
	return out
}
