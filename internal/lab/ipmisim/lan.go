package ipmisim

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// lanControlScript is the file name, in Sim.Dir, of the LAN store script.
const lanControlScript = "lancontrol"

// defaultMAC is the LAN interface's MAC address when LANConfig names none: a
// locally administered unicast address.
var defaultMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x62, 0x66}

// LANConfig is the initial state of the LAN channel's IP settings when they
// are backed by files (Options.LAN).
//
// ipmi_sim asks its lan_config_program for the address source, address,
// netmask, gateways and MAC each time a client reads them, and hands it the
// changed values when a client commits a set (ipmitool wraps every "lan set"
// in set-in-progress and commit). The program here keeps them in files of
// Sim.Dir/lan, accepts only "static" and "dhcp" as the address source (so
// "lan set N ipsrc none|bios" is refused with "Invalid data field"), and
// plays a DHCP server: while the source is dhcp the BMC reports the lease,
// or 0.0.0.0 before it has arrived, instead of the static settings.
type LANConfig struct {
	// IPSource is "static" or "dhcp". Empty means "static".
	IPSource string
	// Addr, Netmask and Gateway are the static settings, IPv4. The zero
	// Addr means 0.0.0.0.
	Addr, Netmask, Gateway netip.Addr
	// MAC is the LAN interface's MAC address. Nil means 02:00:00:00:62:66.
	MAC net.HardwareAddr
	// DHCPLease is the address and prefix a DHCP server hands out. The zero
	// value means that no server answers: the address stays 0.0.0.0.
	DHCPLease netip.Prefix
	// DHCPGateway is the router the lease names, if any.
	DHCPGateway netip.Addr
	// DHCPDelay is how long after the switch to dhcp (or after Start, when
	// IPSource is "dhcp") the lease arrives, in whole seconds.
	DHCPDelay time.Duration
}

// LANState is what the BMC reports for its LAN channel's IP settings.
type LANState struct {
	// IPSource is "static" or "dhcp".
	IPSource string
	Addr     netip.Addr
	Netmask  netip.Addr
	Gateway  netip.Addr
	MAC      net.HardwareAddr
}

// LAN returns the LAN channel's IP settings as the BMC reports them: the
// static ones, or the DHCP lease while the source is dhcp. It needs
// Options.LAN.
func (s *Sim) LAN() (LANState, error) {
	if !s.lan {
		return LANState{}, fmt.Errorf("ipmisim: the LAN settings have no store: set Options.LAN")
	}
	out, err := exec.Command(filepath.Join(s.Dir, lanControlScript), fmt.Sprint(lanChannel), "get",
		"ip_addr_src", "ip_addr", "subnet_mask", "default_gw_ip_addr", "mac_addr").CombinedOutput()
	if err != nil {
		return LANState{}, fmt.Errorf("ipmisim: read LAN settings: %v: %s", err, out)
	}
	var st LANState
	for line := range strings.Lines(string(out)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "ip_addr_src":
			st.IPSource = v
		case "ip_addr":
			st.Addr, err = netip.ParseAddr(v)
		case "subnet_mask":
			st.Netmask, err = netip.ParseAddr(v)
		case "default_gw_ip_addr":
			st.Gateway, err = netip.ParseAddr(v)
		case "mac_addr":
			st.MAC, err = net.ParseMAC(v)
		}
		if err != nil {
			return LANState{}, fmt.Errorf("ipmisim: LAN setting %s: %v", k, err)
		}
	}
	return st, nil
}

// LANWrites returns, in order, every value ipmi_sim committed to the LAN
// store, one "NAME VALUE" string each, such as "ip_addr 192.0.2.10" or
// "ip_addr_src dhcp". NAME is one of ip_addr_src, ip_addr, subnet_mask,
// mac_addr, default_gw_ip_addr, default_gw_mac_addr, backup_gw_ip_addr and
// backup_gw_mac_addr.
func (s *Sim) LANWrites() []string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "lan", "writes"))
	if err != nil {
		return nil
	}
	var w []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			w = append(w, line)
		}
	}
	return w
}

// writeLANFiles writes the LAN store's initial files and its script.
func (s *Sim) writeLANFiles(c LANConfig) error {
	src := c.IPSource
	switch src {
	case "":
		src = "static"
	case "static", "dhcp":
	default:
		return fmt.Errorf("LAN IP source %q: want static or dhcp", c.IPSource)
	}
	mac := c.MAC
	if mac == nil {
		mac = defaultMAC
	}
	if len(mac) != 6 {
		return fmt.Errorf("LAN MAC %s: want 6 bytes", mac)
	}
	ip := func(name string, a netip.Addr) (string, error) {
		if !a.IsValid() {
			return "0.0.0.0", nil
		}
		if !a.Is4() {
			return "", fmt.Errorf("LAN %s %s: want an IPv4 address", name, a)
		}
		return a.String(), nil
	}
	values := map[string]string{
		"ip_addr_src":         src,
		"mac_addr":            mac.String(),
		"default_gw_mac_addr": "00:00:00:00:00:00",
		"backup_gw_ip_addr":   "0.0.0.0",
		"backup_gw_mac_addr":  "00:00:00:00:00:00",
		"dhcp_delay":          fmt.Sprint(int(c.DHCPDelay / time.Second)),
	}
	for name, a := range map[string]netip.Addr{"ip_addr": c.Addr, "subnet_mask": c.Netmask, "default_gw_ip_addr": c.Gateway} {
		v, err := ip(name, a)
		if err != nil {
			return err
		}
		values[name] = v
	}
	if c.DHCPLease.IsValid() {
		if !c.DHCPLease.Addr().Is4() {
			return fmt.Errorf("LAN DHCP lease %s: want IPv4", c.DHCPLease)
		}
		mask := net.CIDRMask(c.DHCPLease.Bits(), 32)
		values["dhcp_ip_addr"] = c.DHCPLease.Addr().String()
		values["dhcp_subnet_mask"] = net.IP(mask).String()
		gw, err := ip("DHCP gateway", c.DHCPGateway)
		if err != nil {
			return err
		}
		values["dhcp_default_gw_ip_addr"] = gw
	}
	if src == "dhcp" {
		values["dhcp_at"] = fmt.Sprint(time.Now().Add(c.DHCPDelay).Unix())
	}

	dir := filepath.Join(s.Dir, "lan")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for name, v := range values {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(s.Dir, lanControlScript), []byte(lanControlProgram(dir)), 0o755)
}

// lanControlProgram is ipmi_sim's lan_config_program. ipmi_sim runs it as
// "lancontrol CHANNEL get NAME...", expecting "NAME:VALUE" lines back, as
// "lancontrol CHANNEL set NAME VALUE..." to commit values, and as
// "lancontrol CHANNEL check ip_addr_src VALUE" to ask whether an address
// source is supported (exit status 0). Each value lives in a file of dir,
// replaced atomically; every call returns at once, since ipmi_sim waits for
// it.
func lanControlProgram(dir string) string {
	return `#!/bin/sh
# LAN configuration store of a bareflow test BMC (package ipmisim).
D=` + shellQuote(dir) + `
shift # the channel
op=$1
shift
val() { v=; [ -r "$D/$1" ] && read -r v < "$D/$1"; printf '%s' "$v"; }
put() { printf '%s\n' "$2" > "$D/$1.tmp" && mv -f "$D/$1.tmp" "$D/$1"; }
# leased: the source is dhcp and a lease has arrived.
leased() {
	[ "$(val ip_addr_src)" = dhcp ] || return 1
	at=$(val dhcp_at)
	[ -n "$at" ] && [ -n "$(val dhcp_ip_addr)" ] && [ "$(date +%s)" -ge "$at" ]
}
case $op in
get)
	for k in "$@"; do
		case $k in
		ip_addr|subnet_mask|default_gw_ip_addr)
			if [ "$(val ip_addr_src)" != dhcp ]; then
				v=$(val "$k")
			elif leased; then
				v=$(val "dhcp_$k")
			else
				v=0.0.0.0
			fi
			;;
		ip_addr_src|mac_addr|default_gw_mac_addr|backup_gw_ip_addr|backup_gw_mac_addr)
			v=$(val "$k")
			;;
		*)
			echo "unknown parameter $k"
			exit 1
			;;
		esac
		printf '%s:%s\n' "$k" "$v"
	done
	;;
set)
	while [ $# -ge 2 ]; do
		k=$1 v=$2
		shift 2
		printf '%s %s\n' "$k" "$v" >> "$D/writes"
		case $k in
		ip_addr_src)
			if [ "$v" = dhcp ] && [ "$(val ip_addr_src)" != dhcp ]; then
				put dhcp_at $(( $(date +%s) + $(val dhcp_delay) ))
			fi
			put "$k" "$v"
			;;
		ip_addr|subnet_mask|default_gw_ip_addr|mac_addr|default_gw_mac_addr|backup_gw_ip_addr|backup_gw_mac_addr)
			put "$k" "$v"
			;;
		*)
			echo "unknown parameter $k"
			exit 1
			;;
		esac
	done
	;;
check)
	while [ $# -ge 2 ]; do
		case $1:$2 in
		ip_addr_src:static|ip_addr_src:dhcp) ;;
		*)
			echo "unsupported $1 $2"
			exit 1
			;;
		esac
		shift 2
	done
	;;
*)
	echo "unknown operation $op"
	exit 1
	;;
esac
exit 0
`
}
