package inventory

// Command is one shell script the worker runs in the ramdisk, each in its
// own SSH session with `sh -c` (dash, POSIX sh). Its standard output is what
// Parse reads under Name.
type Command struct {
	// Name is the stable key of the command's output in Parse's input.
	Name string
	// Script is the POSIX sh script. It ends on its own: every loop is
	// bounded by a count, and no step waits for input.
	Script string
	// Optional commands may be absent from Parse's input without a warning;
	// their tool is not part of the standard ramdisk.
	Optional bool
}

// Names of the commands, the keys of Parse's input.
const (
	CmdDmidecode = "dmidecode"
	CmdLsblk     = "lsblk"
	CmdIPLink    = "ip-link"
	CmdIPAddr    = "ip-addr"
	CmdEthtool   = "ethtool"
	CmdLspci     = "lspci"
	CmdCPUInfo   = "cpuinfo"
	CmdMeminfo   = "meminfo"
	CmdArch      = "arch"
	CmdSysBlock  = "sys-block"
	CmdSysNet    = "sys-net"
	CmdEFI       = "efi"
	CmdLLDP      = "lldp"
)

// sectionMark starts a line that opens a section in the outputs of the loop
// scripts (sys-block, sys-net, ethtool). Interface and block device names
// contain neither spaces nor slashes, so a name always follows it whole.
const sectionMark = "@@@ "

// prologue starts every script: the standard PATH (dropbear gives sessions
// a short one) and untranslated tool messages.
const prologue = `export PATH="${PATH:+$PATH:}/usr/sbin:/usr/bin:/sbin:/bin" LC_ALL=C
`

// readAttr is a shell function that prints the first line of a sysfs file,
// without leading and trailing blanks (read strips them), or nothing when
// the file is missing or unreadable. It runs no program.
const readAttr = `rd() { v=; [ -r "$1" ] && read -r v 2>/dev/null <"$1"; printf '%s' "$v"; }
`

// sysBlockScript prints, for each whole disk in /sys/block (loop, ram, zram,
// device-mapper, md, optical, nbd, floppy, eMMC boot and RPMB devices
// skipped, and hidden ones: the per-path nodes of NVMe multipath), a section of
// key=value lines. device is the resolved sysfs path of the disk's device
// (for an NVMe namespace behind the multipath subsystem node, the first
// controller's path), driver the driver of the last PCI function on that
// path: the controller the disk hangs off. vpd_pg80 is the SCSI unit serial
// number page as hex, since it is binary.
const sysBlockScript = prologue + readAttr + `i=0
for d in /sys/block/*; do
	[ -e "$d" ] || continue
	n=${d##*/}
	case $n in loop*|ram*|zram*|dm-*|md*|sr*|nbd*|fd*|zd*|mmcblk*boot*|mmcblk*rpmb) continue ;; esac
	[ "$(rd "$d/hidden")" = 1 ] && continue
	i=$((i + 1))
	[ "$i" -gt 1024 ] && break
	echo "@@@ $n"
	echo "size=$(rd "$d/size")"
	echo "removable=$(rd "$d/removable")"
	echo "rotational=$(rd "$d/queue/rotational")"
	echo "model=$(rd "$d/device/model")"
	echo "vendor=$(rd "$d/device/vendor")"
	s=$(rd "$d/device/serial")
	[ -n "$s" ] || s=$(rd "$d/serial")
	echo "serial=$s"
	w=$(rd "$d/wwid")
	[ -n "$w" ] || w=$(rd "$d/device/wwid")
	echo "wwid=$w"
	if [ -r "$d/device/vpd_pg80" ]; then
		echo "vpd_pg80=$(od -An -v -tx1 "$d/device/vpd_pg80" 2>/dev/null | tr -d ' \n')"
	fi
	dev=
	[ -e "$d/device" ] && dev=$(cd -P "$d/device" 2>/dev/null && pwd -P)
	case $dev in
	*/nvme-subsystem/*)
		for c in "$dev"/nvme[0-9]*; do
			if [ -r "$c/transport" ]; then
				dev=$(cd -P "$c" 2>/dev/null && pwd -P)
				break
			fi
		done
		;;
	esac
	echo "device=$dev"
	p=$dev
	j=0
	while [ -n "$p" ] && [ "$j" -lt 64 ]; do
		case ${p##*/} in
		*:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f].[0-7])
			drv=
			[ -e "$p/driver" ] && drv=$(cd -P "$p/driver" 2>/dev/null && pwd -P)
			echo "driver=${drv##*/}"
			break
			;;
		esac
		p=${p%/*}
		j=$((j + 1))
	done
done
exit 0
`

// sysNetScript prints, for each interface in /sys/class/net, a section of
// key=value lines: the ARP hardware type (1 is Ethernet), address, state,
// carrier, MTU and speed, and for interfaces with a device behind them (the
// physical ones) the device's resolved sysfs path and its driver. kind marks
// bridges, bonds and wireless interfaces.
const sysNetScript = prologue + readAttr + `i=0
for d in /sys/class/net/*; do
	[ -e "$d" ] || continue
	i=$((i + 1))
	[ "$i" -gt 1024 ] && break
	echo "@@@ ${d##*/}"
	echo "type=$(rd "$d/type")"
	echo "address=$(rd "$d/address")"
	echo "operstate=$(rd "$d/operstate")"
	echo "carrier=$(rd "$d/carrier")"
	echo "mtu=$(rd "$d/mtu")"
	echo "speed=$(rd "$d/speed")"
	if [ -e "$d/device" ]; then
		echo "device=$(cd -P "$d/device" 2>/dev/null && pwd -P)"
		drv=
		[ -e "$d/device/driver" ] && drv=$(cd -P "$d/device/driver" 2>/dev/null && pwd -P)
		echo "driver=${drv##*/}"
	fi
	if [ -d "$d/bridge" ]; then echo "kind=bridge"; fi
	if [ -d "$d/bonding" ]; then echo "kind=bond"; fi
	if [ -d "$d/wireless" ] || [ -e "$d/phy80211" ]; then echo "kind=wireless"; fi
done
exit 0
`

// ethtoolScript runs `ethtool NAME` and `ethtool -i NAME` for each physical
// Ethernet interface (not lo, ARP type 1, a device behind it), each output
// after a "@@@ ethtool NAME" or "@@@ ethtool-i NAME" line, with
// "@@@ exit N" after an output when ethtool failed. A timeout program, when
// the ramdisk has one (busybox's), bounds each call to 10 seconds.
const ethtoolScript = prologue + `command -v ethtool >/dev/null 2>&1 || { echo "ethtool: not found" >&2; exit 127; }
t=
command -v timeout >/dev/null 2>&1 && t="timeout 10"
i=0
for d in /sys/class/net/*; do
	n=${d##*/}
	[ "$n" = lo ] && continue
	[ -e "$d/device" ] || continue
	ty=
	[ -r "$d/type" ] && read -r ty 2>/dev/null <"$d/type"
	[ "$ty" = 1 ] || continue
	i=$((i + 1))
	[ "$i" -gt 512 ] && break
	echo "@@@ ethtool $n"
	$t ethtool "$n" 2>&1 || echo "@@@ exit $?"
	echo "@@@ ethtool-i $n"
	$t ethtool -i "$n" 2>&1 || echo "@@@ exit $?"
done
exit 0
`

// lldpScript asks lldpd for the neighbours it has heard, when the ramdisk
// carries lldpctl; without it the script prints nothing and succeeds.
const lldpScript = prologue + `command -v lldpctl >/dev/null 2>&1 || exit 0
t=
command -v timeout >/dev/null 2>&1 && t="timeout 10"
exec $t lldpctl -f json
`

// Commands returns the commands that collect a machine's inventory, in the
// order they are best run. The caller runs each one and hands the outputs,
// keyed by Name, to Parse.
func Commands() []Command {
	return []Command{
		{Name: CmdDmidecode, Script: prologue + "exec dmidecode -t 0,1,2,3,4,17\n"},
		{Name: CmdCPUInfo, Script: prologue + "exec cat /proc/cpuinfo\n"},
		{Name: CmdMeminfo, Script: prologue + "exec cat /proc/meminfo\n"},
		{Name: CmdArch, Script: prologue + "exec uname -m\n"},
		{Name: CmdEFI, Script: prologue + "if [ -d /sys/firmware/efi ]; then echo uefi; else echo bios; fi\n"},
		{Name: CmdLspci, Script: prologue + "exec lspci -vmm -nn -k -D\n"},
		{Name: CmdLsblk, Script: prologue + "exec lsblk -J -b -d -o NAME,SIZE,ROTA,TYPE,TRAN,MODEL,VENDOR,SERIAL,WWN,RM,HCTL\n"},
		{Name: CmdSysBlock, Script: sysBlockScript},
		{Name: CmdIPLink, Script: prologue + "exec ip -j link show\n"},
		{Name: CmdIPAddr, Script: prologue + "exec ip -j addr show\n"},
		{Name: CmdSysNet, Script: sysNetScript},
		{Name: CmdEthtool, Script: ethtoolScript},
		{Name: CmdLLDP, Script: lldpScript, Optional: true},
	}
}
