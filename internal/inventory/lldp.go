package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"bareflow/contract"
)

// parseLLDP reads `lldpctl -f json`: the LLDP neighbours lldpd heard, by
// interface. lldpd's JSON is irregular (a list of one element is written as
// the element; the chassis is keyed by the switch's system name when it has
// one), so each level is read in either form; the regular form of
// `lldpctl -f json0` (lists everywhere, values under "value") is read too.
// The ramdisk carries no lldpd: the map is empty unless a site adds it.
func parseLLDP(b []byte) (map[string]contract.LLDPNeighbor, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	out := map[string]contract.LLDPNeighbor{}
	for _, l := range listOf(top["lldp"]) {
		m, _ := l.(map[string]any)
		for _, ifc := range lldpInterfaces(m["interface"]) {
			if _, dup := out[ifc.name]; dup || len(out) >= maxNICs {
				continue
			}
			if nb, ok := lldpNeighbor(ifc.details); ok {
				out[ifc.name] = nb
			}
		}
	}
	return out, nil
}

type lldpInterface struct {
	name    string
	details map[string]any
}

// lldpInterfaces lists the interfaces of lldpd's "interface" value: an
// object keyed by interface name, a list of such objects, or (json0) a list
// of objects with a "name".
func lldpInterfaces(v any) []lldpInterface {
	var out []lldpInterface
	for _, e := range listOf(v) {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		if name, ok := m["name"].(string); ok {
			if validIfName(name) {
				out = append(out, lldpInterface{name, m})
			}
			continue
		}
		keys := sortedKeys(m)
		for _, k := range keys {
			if d, ok := m[k].(map[string]any); ok && validIfName(k) {
				out = append(out, lldpInterface{k, d})
			}
		}
	}
	return out
}

// lldpNeighbor reads one interface's neighbour; ok is false when it names
// neither a chassis nor a port.
func lldpNeighbor(d map[string]any) (contract.LLDPNeighbor, bool) {
	var nb contract.LLDPNeighbor
	if c, ok := first(d["chassis"]).(map[string]any); ok {
		if _, direct := c["id"]; direct {
			nb.ChassisID = lldpString(c["id"])
			nb.SystemName = lldpString(c["name"])
		} else if keys := sortedKeys(c); len(keys) > 0 {
			nb.SystemName = clean(keys[0])
			if cd, ok := c[keys[0]].(map[string]any); ok {
				nb.ChassisID = lldpString(cd["id"])
			}
		}
	}
	if p, ok := first(d["port"]).(map[string]any); ok {
		nb.PortID = lldpString(p["id"])
		nb.PortDescription = lldpString(p["descr"])
	}
	for _, v := range listOf(d["vlan"]) {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		id, ok := atoi(lldpString(m["vlan-id"]))
		if !ok || id == 0 || id > 4094 {
			continue
		}
		if pvid, _ := m["pvid"].(bool); pvid || nb.VLAN == 0 {
			nb.VLAN = int(id)
		}
		if pvid, _ := m["pvid"].(bool); pvid {
			break
		}
	}
	return nb, nb.ChassisID != "" || nb.PortID != ""
}

// listOf is v as a list: v itself when it is one, else a list of v (nil for
// nil).
func listOf(v any) []any {
	switch t := v.(type) {
	case nil:
		return nil
	case []any:
		return t
	default:
		return []any{t}
	}
}

// first is the first element of a list, or v when it is not one.
func first(v any) any {
	if l, ok := v.([]any); ok {
		if len(l) == 0 {
			return nil
		}
		return l[0]
	}
	return v
}

// lldpString reads a value lldpd writes as a string, a number, an object
// with a "value", or a list of those.
func lldpString(v any) string {
	switch t := first(v).(type) {
	case string:
		return clean(t)
	case json.Number:
		return clean(t.String())
	case bool:
		return strconv.FormatBool(t)
	case map[string]any:
		return lldpString(t["value"])
	}
	return ""
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
