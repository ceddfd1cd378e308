# Reads ifupdown's /etc/network/interfaces format and prints a plan, one
# item a line, for /etc/bareflow/network:
#
#   auto NAME                  NAME is brought up (auto, allow-auto, allow-hotplug)
#   method NAME FAMILY METHOD  an iface stanza (inet|inet6, static|dhcp|manual|…)
#   address NAME FAMILY A/P    an address with its prefix length
#   gateway NAME FAMILY ADDR
#   mtu NAME N
#   hwaddress NAME MAC
#   up NAME COMMAND…           up and post-up commands, in order
#   dns ADDR / search DOMAIN   dns-nameservers and dns-search
#   unsupported NAME OPTION    bond-*, vlan-raw-device, bridge_*: not handled
#
# Options it does not know are ignored, as ifupdown's own hooks would.

# masklen turns a dotted netmask into a prefix length.
function masklen(mask,    parts, n, i, b) {
	split(mask, parts, ".")
	n = 0
	for (i = 1; i <= 4; i++) {
		b = parts[i] + 0
		while (b > 0) {
			n += b % 2
			b = int(b / 2)
		}
	}
	return n
}

function endstanza() {
	if (cur != "" && addr != "") {
		if (addr !~ /\//) {
			if (mask ~ /\./)
				addr = addr "/" masklen(mask)
			else if (mask != "")
				addr = addr "/" mask
			else if (fam == "inet6")
				addr = addr "/64"
			else
				addr = addr "/24"
		}
		print "address", cur, fam, addr
	}
	cur = ""
	addr = ""
	mask = ""
}

/^[ \t]*#/ { next }
NF == 0 { next }
$1 == "auto" || $1 == "allow-auto" || $1 == "allow-hotplug" {
	endstanza()
	for (i = 2; i <= NF; i++)
		print "auto", $i
	next
}
$1 == "iface" {
	endstanza()
	cur = $2
	fam = $3
	print "method", $2, $3, $4
	next
}
$1 == "mapping" || $1 == "source" || $1 == "source-directory" || $1 ~ /^allow-/ {
	endstanza()
	next
}
cur == "" { next }
$1 == "address" { addr = $2; next }
$1 == "netmask" { mask = $2; next }
$1 == "gateway" { print "gateway", cur, fam, $2; next }
$1 == "mtu" { print "mtu", cur, $2; next }
$1 == "hwaddress" { print "hwaddress", cur, ($2 == "ether" ? $3 : $2); next }
$1 == "dns-nameservers" { for (i = 2; i <= NF; i++) print "dns", $i; next }
$1 == "dns-search" { for (i = 2; i <= NF; i++) print "search", $i; next }
$1 == "up" || $1 == "post-up" {
	$1 = ""
	print "up", cur substr($0, 1)
	next
}
$1 ~ /^bond[-_]/ || $1 == "vlan-raw-device" || $1 ~ /^bridge[-_]/ {
	print "unsupported", cur, $1
	next
}
END { endstanza() }
