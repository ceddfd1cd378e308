package osconfig

import (
	"fmt"
	"strings"
)

// shellValue quotes v for an ifcfg file. Values are validated to a safe
// alphabet before they get here; the quoting still escapes what a shell
// would expand.
func shellValue(v string, single bool) string {
	if single {
		return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
	}
	plain := v != ""
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:/+-,=@", c) >= 0) {
			plain = false
		}
	}
	if plain {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	return `"` + r.Replace(v) + `"`
}

type kvWriter struct {
	b      strings.Builder
	single bool
}

func (w *kvWriter) kv(k, v string) { fmt.Fprintf(&w.b, "%s=%s\n", k, shellValue(v, w.single)) }

func bondingOpts(l *link) string {
	opts := []string{"mode=" + l.mode}
	for _, o := range l.options {
		opts = append(opts, o.key+"="+o.value)
	}
	return strings.Join(opts, " ")
}

// renderIfcfgRHEL writes network-scripts ifcfg and route files (RHEL 7
// and 8), read by initscripts and by NetworkManager's ifcfg-rh plugin.
func renderIfcfgRHEL(n *network) []File {
	var out []File
	for _, l := range n.links {
		w := &kvWriter{}
		w.b.WriteString(header)
		w.kv("DEVICE", l.name)
		w.kv("NAME", l.name)
		w.kv("ONBOOT", "yes")
		if l.mac != nil {
			w.kv("HWADDR", l.mac.String())
		}
		switch l.kind {
		case kindEthernet:
			w.kv("TYPE", "Ethernet")
		case kindBond:
			w.kv("TYPE", "Bond")
			w.kv("BONDING_MASTER", "yes")
			w.kv("BONDING_OPTS", bondingOpts(l))
		case kindVLAN:
			w.kv("TYPE", "Vlan")
			w.kv("VLAN", "yes")
			w.kv("PHYSDEV", l.parent)
			w.kv("VLAN_ID", fmt.Sprint(l.vlanID))
		}
		if l.addr.MTU != 0 {
			w.kv("MTU", fmt.Sprint(l.addr.MTU))
		}
		if l.controller != "" {
			w.kv("MASTER", l.controller)
			w.kv("SLAVE", "yes")
			w.kv("BOOTPROTO", "none")
			out = append(out, File{Path: dirIfcfgRHEL + "ifcfg-" + l.name, Mode: 0o644, Content: []byte(w.b.String())})
			continue
		}
		if l.addr.DHCP4 {
			w.kv("BOOTPROTO", "dhcp")
		} else {
			w.kv("BOOTPROTO", "none")
		}
		for i, p := range l.v4() {
			w.kv(fmt.Sprintf("IPADDR%d", i), p.Addr().String())
			w.kv(fmt.Sprintf("PREFIX%d", i), fmt.Sprint(p.Bits()))
		}
		if g := l.gateway(true); g.IsValid() {
			w.kv("GATEWAY", g.String())
		}
		if v6 := l.v6(); len(v6) > 0 {
			w.kv("IPV6INIT", "yes")
			w.kv("IPV6_AUTOCONF", "no")
			w.kv("IPV6ADDR", v6[0].String())
			if len(v6) > 1 {
				var s []string
				for _, p := range v6[1:] {
					s = append(s, p.String())
				}
				w.kv("IPV6ADDR_SECONDARIES", strings.Join(s, " "))
			}
			if g := l.gateway(false); g.IsValid() {
				w.kv("IPV6_DEFAULTGW", g.String())
			}
		} else {
			w.kv("IPV6INIT", "no")
		}
		if n.hasDNS(l) {
			for i, a := range n.dns {
				w.kv(fmt.Sprintf("DNS%d", i+1), a.String())
			}
			if len(n.search) > 0 {
				w.kv("DOMAIN", strings.Join(n.search, " "))
			}
			if l.addr.DHCP4 {
				w.kv("PEERDNS", "no")
			}
		}
		out = append(out, File{Path: dirIfcfgRHEL + "ifcfg-" + l.name, Mode: 0o644, Content: []byte(w.b.String())})
		for _, four := range []bool{true, false} {
			rs := l.routesOf(four)
			if len(rs) == 0 {
				continue
			}
			var b strings.Builder
			b.WriteString(header)
			for _, r := range rs {
				fmt.Fprintf(&b, "%s dev %s\n", routeSpec(r), l.name)
			}
			name := "route-"
			if !four {
				name = "route6-"
			}
			out = append(out, File{Path: dirIfcfgRHEL + name + l.name, Mode: 0o644, Content: []byte(b.String())})
		}
	}
	return out
}

// renderIfcfgSUSE writes wicked ifcfg and ifroute files. DNS goes to
// /etc/sysconfig/network/config through Edits.
func renderIfcfgSUSE(n *network) []File {
	var out []File
	for _, l := range n.links {
		w := &kvWriter{single: true}
		w.b.WriteString(header)
		w.kv("NAME", l.name)
		switch l.kind {
		case kindBond:
			w.kv("BONDING_MASTER", "yes")
			w.kv("BONDING_MODULE_OPTS", bondingOpts(l))
			for i, p := range l.ports {
				w.kv(fmt.Sprintf("BONDING_SLAVE_%d", i), p)
			}
		case kindVLAN:
			w.kv("ETHERDEVICE", l.parent)
			w.kv("VLAN_ID", fmt.Sprint(l.vlanID))
		}
		if l.addr.MTU != 0 {
			w.kv("MTU", fmt.Sprint(l.addr.MTU))
		}
		if l.controller != "" {
			w.kv("STARTMODE", "hotplug")
			w.kv("BOOTPROTO", "none")
			out = append(out, File{Path: dirIfcfgSUSE + "ifcfg-" + l.name, Mode: 0o644, Content: []byte(w.b.String())})
			continue
		}
		w.kv("STARTMODE", "auto")
		switch {
		case l.addr.DHCP4 && len(l.addr.Addresses) > 0:
			w.kv("BOOTPROTO", "dhcp4+static")
		case l.addr.DHCP4:
			w.kv("BOOTPROTO", "dhcp4")
		case len(l.addr.Addresses) > 0:
			w.kv("BOOTPROTO", "static")
		default:
			w.kv("BOOTPROTO", "none")
		}
		for i, p := range l.addr.Addresses {
			w.kv(fmt.Sprintf("IPADDR_%d", i), p.String())
		}
		out = append(out, File{Path: dirIfcfgSUSE + "ifcfg-" + l.name, Mode: 0o644, Content: []byte(w.b.String())})
		var rs []Route
		for _, four := range []bool{true, false} {
			if g := l.gateway(four); g.IsValid() {
				rs = append(rs, Route{To: defaultPrefix(four), Via: g})
			}
		}
		rs = append(rs, l.routes...)
		if len(rs) == 0 {
			continue
		}
		var b strings.Builder
		b.WriteString(header)
		for _, r := range rs {
			to := r.To.String()
			if r.To.Bits() == 0 {
				to = "default"
			}
			fmt.Fprintf(&b, "%s %s - %s", to, r.Via, l.name)
			if r.Metric != 0 {
				fmt.Fprintf(&b, " metric %d", r.Metric)
			}
			b.WriteString("\n")
		}
		out = append(out, File{Path: dirIfcfgSUSE + "ifroute-" + l.name, Mode: 0o644, Content: []byte(b.String())})
	}
	return out
}
