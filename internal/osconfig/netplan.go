package osconfig

import (
	"fmt"
	"strings"
)

// renderNetplan writes netplan v2 YAML under a network key. Without the
// key (top false) the same body is cloud-init's NoCloud network-config
// version 2.
func renderNetplan(n *network, top bool) []byte {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("network:\n  version: 2\n")
	sections := []struct {
		kind linkKind
		key  string
	}{{kindEthernet, "ethernets"}, {kindBond, "bonds"}, {kindVLAN, "vlans"}}
	for _, s := range sections {
		first := true
		for _, l := range n.links {
			if l.kind != s.kind {
				continue
			}
			if first {
				fmt.Fprintf(&b, "  %s:\n", s.key)
				first = false
			}
			fmt.Fprintf(&b, "    %s:\n", yamlString(l.name))
			netplanLink(&b, n, l)
		}
	}
	if top {
		return []byte(b.String())
	}
	var out strings.Builder
	for line := range strings.SplitAfterSeq(b.String(), "\n") {
		switch {
		case line == "network:\n":
		case strings.HasPrefix(line, "  "):
			out.WriteString(line[2:])
		default:
			out.WriteString(line)
		}
	}
	return []byte(out.String())
}

func netplanLink(b *strings.Builder, n *network, l *link) {
	const in = "      "
	w := func(format string, a ...any) { fmt.Fprintf(b, in+format+"\n", a...) }
	if l.mac != nil {
		w("match:")
		w("  macaddress: %s", yamlString(l.mac.String()))
		w("set-name: %s", yamlString(l.name))
	}
	switch l.kind {
	case kindBond:
		w("interfaces:")
		for _, p := range l.ports {
			w("  - %s", yamlString(p))
		}
		w("parameters:")
		w("  mode: %s", yamlString(l.mode))
		for _, o := range l.options {
			spec := bondOptionSpecs[o.key]
			switch o.key {
			case "arp_ip_target":
				w("  %s:", spec.netplan)
				for t := range strings.SplitSeq(o.value, ",") {
					w("    - %s", yamlString(t))
				}
			default:
				v := o.value
				if uintOption(v) != nil {
					v = yamlString(v)
				}
				w("  %s: %s", spec.netplan, v)
			}
		}
	case kindVLAN:
		w("id: %d", l.vlanID)
		w("link: %s", yamlString(l.parent))
	}
	if l.addr.MTU != 0 {
		w("mtu: %d", l.addr.MTU)
	}
	if l.controller != "" {
		return
	}
	w("dhcp4: %t", l.addr.DHCP4)
	if len(l.addr.Addresses) > 0 {
		w("addresses:")
		for _, p := range l.addr.Addresses {
			w("  - %s", yamlString(p.String()))
		}
	}
	var routes []Route
	if g := l.addr.Gateway; g.IsValid() {
		routes = append(routes, Route{To: defaultPrefix(g.Is4()), Via: g})
	}
	routes = append(routes, l.routes...)
	if len(routes) > 0 {
		w("routes:")
		for _, r := range routes {
			to := r.To.String()
			if r.To.Bits() == 0 {
				to = "default"
			}
			w("  - to: %s", yamlString(to))
			w("    via: %s", yamlString(r.Via.String()))
			if r.Metric != 0 {
				w("    metric: %d", r.Metric)
			}
		}
	}
	if n.hasDNS(l) {
		w("nameservers:")
		if len(n.dns) > 0 {
			w("  addresses:")
			for _, a := range n.dns {
				w("    - %s", yamlString(a.String()))
			}
		}
		if len(n.search) > 0 {
			w("  search:")
			for _, d := range n.search {
				w("    - %s", yamlString(d))
			}
		}
	}
}
