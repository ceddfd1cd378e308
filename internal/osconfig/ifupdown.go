package osconfig

import (
	"fmt"
	"net/netip"
	"strings"
)

// renderIfupdown writes the whole of Debian's /etc/network/interfaces.
// Bonds need ifenslave and VLANs the vlan package in the image.
func renderIfupdown(n *network) []byte {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("\nauto lo\niface lo inet loopback\n")
	for _, l := range n.links {
		ifupdownLink(&b, n, l)
	}
	return []byte(b.String())
}

func ifupdownLink(b *strings.Builder, n *network, l *link) {
	fmt.Fprintf(b, "\nauto %s\n", l.name)
	// extra lists what goes in the first stanza besides addressing.
	var extra []string
	if l.addr.MTU != 0 {
		extra = append(extra, fmt.Sprintf("mtu %d", l.addr.MTU))
	}
	switch l.kind {
	case kindBond:
		extra = append(extra, "bond-slaves "+strings.Join(l.ports, " "), "bond-mode "+l.mode)
		for _, o := range l.options {
			v := o.value
			if o.key == "arp_ip_target" {
				v = strings.ReplaceAll(v, ",", " ")
			}
			extra = append(extra, fmt.Sprintf("bond-%s %s", strings.ReplaceAll(o.key, "_", "-"), v))
		}
	case kindVLAN:
		extra = append(extra, "vlan-raw-device "+l.parent)
	}
	v4, v6 := l.v4(), l.v6()
	dns := n.hasDNS(l)
	dnsLines := func() []string {
		if !dns {
			return nil
		}
		dns = false
		var out []string
		if len(n.dns) > 0 {
			var as []string
			for _, a := range n.dns {
				as = append(as, a.String())
			}
			out = append(out, "dns-nameservers "+strings.Join(as, " "))
		}
		if len(n.search) > 0 {
			out = append(out, "dns-search "+strings.Join(n.search, " "))
		}
		return out
	}
	stanza := func(method string, lines []string) {
		fmt.Fprintf(b, "iface %s %s\n", l.name, method)
		for _, s := range lines {
			fmt.Fprintf(b, "    %s\n", s)
		}
	}
	switch {
	case l.addr.DHCP4:
		lines := append(extra, routeHooks(l.routesOf(true))...)
		stanza("inet dhcp", append(lines, dnsLines()...))
		extra = nil
	case len(v4) > 0:
		for i, p := range v4 {
			var lines []string
			if i == 0 {
				lines = append(extra, "address "+p.String())
				if g := l.gateway(true); g.IsValid() {
					lines = append(lines, "gateway "+g.String())
				}
				lines = append(lines, routeHooks(l.routesOf(true))...)
				lines = append(lines, dnsLines()...)
				extra = nil
			} else {
				lines = []string{"address " + p.String()}
			}
			stanza("inet static", lines)
		}
	case len(v6) == 0:
		stanza("inet manual", extra)
		extra = nil
	}
	for i, p := range v6 {
		var lines []string
		if i == 0 {
			lines = append(extra, "address "+p.String())
			if g := l.gateway(false); g.IsValid() {
				lines = append(lines, "gateway "+g.String())
			}
			lines = append(lines, routeHooks(l.routesOf(false))...)
			lines = append(lines, dnsLines()...)
			extra = nil
		} else {
			lines = []string{"address " + p.String()}
		}
		stanza("inet6 static", lines)
	}
}

// routeHooks adds and removes static routes with the interface.
func routeHooks(rs []Route) []string {
	var out []string
	for _, r := range rs {
		spec := routeSpec(r)
		out = append(out, "up ip route add "+spec, "down ip route del "+spec)
	}
	return out
}

func routeSpec(r Route) string {
	s := r.To.String() + " via " + r.Via.String()
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	return s
}

func defaultPrefix(four bool) netip.Prefix {
	if four {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
}
