#!/usr/bin/env bash
# install-peers.sh — installs the benchmark peers and clients of
# bench/boot/run.sh from Debian (needs root). dnsmasq-base is the binary
# without the system service; the services of kea-dhcp4-server, tftpd-hpa
# and nginx are not wanted here either (the benchmark starts its own
# instances inside network namespaces), so stop and disable them if the
# packages started them.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install-peers: needs root" >&2; exit 1; }
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	kea-admin kea-dhcp4-server dnsmasq-base tftpd-hpa nginx-light wrk curl ipxe
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
	systemctl disable --now kea-dhcp4-server tftpd-hpa nginx 2>/dev/null || true
fi
