package osconfig

import (
	"crypto/sha1"
	"fmt"
	"net/netip"
	"strings"
)

// renderKeyfiles writes one NetworkManager keyfile per link (RHEL 9 and
// later). Ports use master/slave-type, which every NetworkManager since
// 1.0 reads.
func renderKeyfiles(n *network) []File {
	var out []File
	for _, l := range n.links {
		out = append(out, File{
			Path:    dirNM + l.name + ".nmconnection",
			Mode:    0o600,
			Content: []byte(keyfile(n, l)),
		})
	}
	return out
}

func keyfile(n *network, l *link) string {
	var b strings.Builder
	b.WriteString(header)
	sec := func(name string) { fmt.Fprintf(&b, "\n[%s]\n", name) }
	kv := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	sec("connection")
	kv("id", l.name)
	kv("uuid", nameUUID(l.name))
	switch l.kind {
	case kindEthernet:
		kv("type", "ethernet")
	case kindBond:
		kv("type", "bond")
	case kindVLAN:
		kv("type", "vlan")
	}
	if l.mac == nil {
		kv("interface-name", l.name)
	}
	kv("autoconnect", "true")
	if l.controller != "" {
		kv("master", l.controller)
		kv("slave-type", "bond")
	}
	if l.kind == kindBond {
		kv("autoconnect-slaves", "1")
	}
	if l.mac != nil || l.addr.MTU != 0 {
		sec("ethernet")
		if l.mac != nil {
			kv("mac-address", strings.ToUpper(l.mac.String()))
		}
		if l.addr.MTU != 0 {
			kv("mtu", fmt.Sprint(l.addr.MTU))
		}
	}
	switch l.kind {
	case kindBond:
		sec("bond")
		opts := map[string]string{"mode": l.mode}
		for _, o := range l.options {
			opts[o.key] = o.value
		}
		for _, k := range sortedKeys(opts) {
			kv(k, opts[k])
		}
	case kindVLAN:
		sec("vlan")
		kv("flags", "1")
		kv("id", fmt.Sprint(l.vlanID))
		kv("parent", l.parent)
	}
	if l.controller != "" {
		return b.String()
	}
	keyfileIP(&b, n, l, true)
	keyfileIP(&b, n, l, false)
	return b.String()
}

func keyfileIP(b *strings.Builder, n *network, l *link, four bool) {
	kv := func(k, v string) { fmt.Fprintf(b, "%s=%s\n", k, v) }
	addrs := l.v6()
	sect := "ipv6"
	if four {
		addrs, sect = l.v4(), "ipv4"
	}
	fmt.Fprintf(b, "\n[%s]\n", sect)
	switch {
	case four && l.addr.DHCP4:
		kv("method", "auto")
	case len(addrs) > 0:
		kv("method", "manual")
	case four:
		kv("method", "disabled")
		return
	default:
		kv("method", "ignore")
		return
	}
	for i, p := range addrs {
		kv(fmt.Sprintf("address%d", i+1), p.String())
	}
	if g := l.gateway(four); g.IsValid() {
		kv("gateway", g.String())
	}
	if n.hasDNS(l) {
		if ds := n.dnsOf(four); len(ds) > 0 {
			kv("dns", joinAddrs(ds, ";")+";")
		}
		if len(n.search) > 0 && (four || !l.addr.DHCP4 && len(l.v4()) == 0) {
			kv("dns-search", strings.Join(n.search, ";")+";")
		}
	}
	for i, r := range l.routesOf(four) {
		v := r.To.String() + "," + r.Via.String()
		if r.Metric != 0 {
			v += fmt.Sprintf(",%d", r.Metric)
		}
		kv(fmt.Sprintf("route%d", i+1), v)
	}
}

func joinAddrs(as []netip.Addr, sep string) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, sep)
}

// nameUUID derives a stable UUID (version 5 layout over SHA-1) from a
// connection name, so a re-render keeps the connection's identity.
func nameUUID(name string) string {
	h := sha1.Sum([]byte("bareflow-osconfig:" + name))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
