package osconfig

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

type linkKind string

const (
	kindEthernet linkKind = "interface"
	kindBond     linkKind = "bond"
	kindVLAN     linkKind = "vlan"
)

// link is one configured device after validation: members resolved,
// routes placed, everything sorted.
type link struct {
	kind linkKind
	name string
	mac  net.HardwareAddr
	addr Addressing
	// controller is the bond this port belongs to.
	controller string
	routes     []Route

	// bonds
	mode    string
	ports   []string
	options []bondOption

	// vlans
	parent string
	vlanID int
}

type network struct {
	links  []*link
	byName map[string]*link
	dns    []netip.Addr
	search []string
}

func (n *network) sort() {
	rank := map[linkKind]int{kindEthernet: 0, kindBond: 1, kindVLAN: 2}
	slices.SortFunc(n.links, func(a, b *link) int {
		if d := rank[a.kind] - rank[b.kind]; d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	for _, l := range n.links {
		slices.Sort(l.ports)
		slices.SortFunc(l.routes, compareRoutes)
	}
}

func compareRoutes(a, b Route) int {
	if c := a.To.Addr().Compare(b.To.Addr()); c != 0 {
		return c
	}
	if c := a.To.Bits() - b.To.Bits(); c != 0 {
		return c
	}
	if c := a.Via.Compare(b.Via); c != 0 {
		return c
	}
	return int(int64(a.Metric) - int64(b.Metric))
}

func (n *network) empty() bool { return len(n.links) == 0 }

// v4 and v6 split a link's static addresses by family, in input order.
func (l *link) v4() []netip.Prefix { return filterAddrs(l.addr.Addresses, true) }
func (l *link) v6() []netip.Prefix { return filterAddrs(l.addr.Addresses, false) }

func filterAddrs(ps []netip.Prefix, four bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() == four {
			out = append(out, p)
		}
	}
	return out
}

func (l *link) gateway(four bool) netip.Addr {
	if g := l.addr.Gateway; g.IsValid() && g.Is4() == four {
		return g
	}
	return netip.Addr{}
}

func (l *link) routesOf(four bool) []Route {
	var out []Route
	for _, r := range l.routes {
		if r.To.Addr().Is4() == four {
			out = append(out, r)
		}
	}
	return out
}

// hasDNS reports whether the global DNS settings belong on l.
func (n *network) hasDNS(l *link) bool {
	return l.addr.hasL3() && (len(n.dns) > 0 || len(n.search) > 0)
}

func (n *network) dnsOf(four bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.dns {
		if a.Is4() == four {
			out = append(out, a)
		}
	}
	return out
}

var bondModes = []string{"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"}

// bondMode normalizes a mode number or name to the name.
func bondMode(m string) (string, error) {
	if i, err := strconv.Atoi(m); err == nil && i >= 0 && i < len(bondModes) && strconv.Itoa(i) == m {
		return bondModes[i], nil
	}
	if slices.Contains(bondModes, m) {
		return m, nil
	}
	return "", fmt.Errorf("mode %q: want 0–6 or one of %s", m, strings.Join(bondModes, ", "))
}

type bondOption struct{ key, value string }

// bondOptionSpec describes one accepted bonding option.
type bondOptionSpec struct {
	// netplan is the key under a netplan bond's parameters.
	netplan string
	// values, when set, lists the accepted values; otherwise check does.
	values []string
	check  func(string) error
	// modes, when set, lists the modes the option applies to.
	modes []string
}

func uintOption(s string) error {
	if v, err := strconv.ParseUint(s, 10, 31); err != nil || strconv.FormatUint(v, 10) != s {
		return fmt.Errorf("%q is not a non-negative integer", s)
	}
	return nil
}

func arpTargets(s string) error {
	ts := strings.Split(s, ",")
	if len(ts) > 16 {
		return fmt.Errorf("%d targets, at most 16", len(ts))
	}
	for _, t := range ts {
		a, err := netip.ParseAddr(t)
		if err != nil || !a.Is4() {
			return fmt.Errorf("%q is not an IPv4 address", t)
		}
	}
	return nil
}

// bondOptionSpecs are the bonding options Bond.Options accepts, by sysfs
// name; values are checked per option and some apply to certain modes
// only.
var bondOptionSpecs = map[string]bondOptionSpec{
	"miimon":            {netplan: "mii-monitor-interval", check: uintOption},
	"updelay":           {netplan: "up-delay", check: uintOption},
	"downdelay":         {netplan: "down-delay", check: uintOption},
	"lacp_rate":         {netplan: "lacp-rate", values: []string{"slow", "fast"}, modes: []string{"802.3ad"}},
	"ad_select":         {netplan: "ad-select", values: []string{"stable", "bandwidth", "count"}, modes: []string{"802.3ad"}},
	"min_links":         {netplan: "min-links", check: uintOption, modes: []string{"802.3ad"}},
	"xmit_hash_policy":  {netplan: "transmit-hash-policy", values: []string{"layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4", "vlan+srcmac"}, modes: []string{"balance-xor", "802.3ad", "balance-tlb"}},
	"primary":           {netplan: "primary", modes: []string{"active-backup", "balance-tlb", "balance-alb"}},
	"primary_reselect":  {netplan: "primary-reselect-policy", values: []string{"always", "better", "failure"}, modes: []string{"active-backup", "balance-tlb", "balance-alb"}},
	"fail_over_mac":     {netplan: "fail-over-mac-policy", values: []string{"none", "active", "follow"}, modes: []string{"active-backup"}},
	"arp_interval":      {netplan: "arp-interval", check: uintOption},
	"arp_ip_target":     {netplan: "arp-ip-targets", check: arpTargets},
	"arp_validate":      {netplan: "arp-validate", values: []string{"none", "active", "backup", "all", "filter", "filter_active", "filter_backup"}},
	"arp_all_targets":   {netplan: "arp-all-targets", values: []string{"any", "all"}},
	"num_grat_arp":      {netplan: "gratuitous-arp", check: uintOption, modes: []string{"active-backup"}},
	"resend_igmp":       {netplan: "resend-igmp", check: uintOption},
	"packets_per_slave": {netplan: "packets-per-slave", check: uintOption, modes: []string{"balance-rr"}},
	"lp_interval":       {netplan: "learn-packet-interval", check: uintOption, modes: []string{"balance-tlb", "balance-alb"}},
}

// BondOptions returns the accepted bonding option names, sorted.
func BondOptions() []string {
	out := make([]string, 0, len(bondOptionSpecs))
	for k := range bondOptionSpecs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func validateBondOptions(mode string, opts map[string]string, ports []string) ([]bondOption, error) {
	var out []bondOption
	var errs []string
	for _, k := range sortedKeys(opts) {
		v := opts[k]
		spec, ok := bondOptionSpecs[k]
		switch {
		case k == "mode":
			errs = append(errs, "option mode: set Bond.Mode instead")
			continue
		case !ok:
			errs = append(errs, fmt.Sprintf("unknown option %q (known: %s)", truncate(k, 40), strings.Join(BondOptions(), ", ")))
			continue
		case mode != "" && spec.modes != nil && !slices.Contains(spec.modes, mode):
			errs = append(errs, fmt.Sprintf("option %s does not apply to mode %s", k, mode))
			continue
		}
		switch {
		case spec.values != nil:
			if !slices.Contains(spec.values, v) {
				errs = append(errs, fmt.Sprintf("option %s=%q: want one of %s", k, truncate(v, 40), strings.Join(spec.values, ", ")))
				continue
			}
		case spec.check != nil:
			if err := spec.check(v); err != nil {
				errs = append(errs, fmt.Sprintf("option %s: %v", k, err))
				continue
			}
		case k == "primary":
			if !slices.Contains(ports, v) {
				errs = append(errs, fmt.Sprintf("option primary=%q is not a member name", truncate(v, 40)))
				continue
			}
		}
		out = append(out, bondOption{k, v})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func decodeBase64(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("missing")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64")
	}
	return b, nil
}
