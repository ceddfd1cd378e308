#!/usr/bin/env bash
# ci-deps.sh — installs the Debian packages that bareflow's tests use, and
# only those that are missing, so that a machine that has them all makes no
# apt-get call at all. Idempotent; needs root when something is missing.
#
#   openipmi            ipmi_sim, the BMC simulator of the IPMI tests
#   ipmitool            in-band BMC set-up, checked against ipmi_sim
#   iproute2            ip netns / veth for the DHCP tests
#   postgresql-client   pg_isready and psql for scripts/ensure-postgres.sh
#   busybox             udhcpc, the real DHCP client of the boot service tests
#   tftp-hpa, curl      real TFTP clients of the boot service tests
#   ipxe                undionly.kpxe, ipxe.efi, snponly.efi that the boot service serves
#   syslinux, syslinux-common, mtools
#                       the bootable test OS image of internal/lab/osimage: syslinux's
#                       FAT installer and MBR boot code, and mtools to fill FAT
#                       filesystems without mounting them
#   systemd-boot-efi    systemd-boot, the bootable test OS image's UEFI boot loader
#   ovmf                UEFI firmware for QEMU: the test OS image's UEFI boot test
#   isc-dhcp-relay      dhcrelay, the DHCP relay in front of a remote segment in `make e2e`
#   iptables            `make e2e`: a BMC answers at the address bareflow gives it (DNAT)
#   tmux                the pseudo-terminal of the serial console CLI test
#   ramdisk/packages.txt  what `make ramdisk` and its QEMU test use
#
# Usage: scripts/ci-deps.sh
set -euo pipefail

# Each entry: the package to install, then the dpkg-query patterns any of
# which, installed, already satisfies it (a versioned client counts).
needs=(
	"openipmi openipmi"
	"ipmitool ipmitool"
	"iproute2 iproute2"
	"postgresql-client postgresql-client postgresql-client-[0-9]*"
	"busybox busybox busybox-static"
	"tftp-hpa tftp-hpa"
	"curl curl"
	"ipxe ipxe"
	"tmux tmux"
	"syslinux syslinux"
	"syslinux-common syslinux-common"
	"mtools mtools"
	"systemd-boot-efi systemd-boot-efi"
	"ovmf ovmf"
	"isc-dhcp-relay isc-dhcp-relay"
	"iptables iptables"
)

# The ramdisk's build tools, the tools it carries and its QEMU test.
while read -r pkg; do
	case "$pkg" in "" | "#"*) continue ;; esac
	needs+=("$pkg $pkg")
done < "$(dirname "${BASH_SOURCE[0]}")/../ramdisk/packages.txt"

installed() {
	local status
	status=$(dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null) || return 1
	grep -q 'install ok installed' <<<"$status"
}

missing=()
for entry in "${needs[@]}"; do
	read -r -a fields <<<"$entry"
	pkg=${fields[0]}
	ok=0
	for pattern in "${fields[@]:1}"; do
		if installed "$pattern"; then
			ok=1
			break
		fi
	done
	if [ "$ok" -eq 0 ]; then
		missing+=("$pkg")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "ci-deps: all present (${needs[*]%% *})"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "ci-deps: missing ${missing[*]}; run as root, or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi

echo "ci-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq -o Acquire::Retries=3
apt-get install -y -qq --no-install-recommends -o Acquire::Retries=3 "${missing[@]}" >/dev/null
echo "ci-deps: installed ${missing[*]}"
