#!/usr/bin/env bash
# bench/boot/run.sh — the boot service against its peers, same run, same
# machine (`make bench-boot`):
#
#   DHCP   perfdhcp as a relay (giaddr set) → bareflow, kea-dhcp4 (memfile),
#          dnsmasq: leases/s and loss at fixed rates, a 1,000-client one-shot
#          burst and a 1,000-client avalanche (clients retransmit).
#   TFTP   N curl clients at once fetch ipxe.efi at blksize 1468 → bareflow,
#          tftpd-hpa: makespan, failures, every download's SHA-256 checked.
#   HTTP   N curl clients at once fetch kernel + initrd (random data) →
#          bareflow's HTTP boot, nginx (sendfile): makespan, MB/s, failures;
#          then wrk on the initrd.
#
# Network: two network namespaces created here and joined by a veth pair —
# clients (and the relay address 198.18.0.1) in one, servers in the other
# (198.18.0.2 bareflow, .3 kea, .4 dnsmasq, .5 tftpd-hpa, .6 nginx). Nothing
# touches the host's interfaces. Each server is started fresh for each test
# (bareflow with a fresh PostgreSQL database) and stopped before the next
# one starts. Every process started here is recorded by PID and stopped by
# the exit trap, also on failure; the namespaces and databases are removed.
#
# Needs root, bin/bareflow, a local PostgreSQL reachable on its Unix socket
# (scripts/ensure-postgres.sh), and the peers: Debian packages kea-admin
# (perfdhcp), kea-dhcp4-server, dnsmasq-base, tftpd-hpa, nginx-light, wrk,
# curl (bench/boot/install-peers.sh installs them).
#
# Environment (defaults in brackets):
#   BIN [bin/bareflow]  OUT_DIR [build/bench]  PGSOCK [/var/run/postgresql]
#   DHCP_SECONDS [10]  DHCP_RATES ["500 1000 2000"]  DHCP_BURST [1000]
#   TFTP_CLIENTS ["100 400"]  IPXE_DIR [/usr/lib/ipxe]
#   HTTP_CLIENTS [100]  KERNEL_MB [8]  INITRD_MB [20]  WRK_SECONDS [5]
#   BENCH_AREAS ["dhcp tftp http"]  BENCH_PEERS [all: bareflow kea-dhcp4 dnsmasq
#   tftpd-hpa nginx]  BAREFLOW_DSN_PARAMS [none; appended to bareflow's
#   database URL, e.g. "&pool_max_conns=32" or "&synchronous_commit=off"]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
BIN=${BIN:-$repo/bin/bareflow}
OUT_DIR=${OUT_DIR:-$repo/build/bench}
PGSOCK=${PGSOCK:-/var/run/postgresql}
DHCP_SECONDS=${DHCP_SECONDS:-10}
DHCP_RATES=${DHCP_RATES:-"500 1000 2000"}
DHCP_BURST=${DHCP_BURST:-1000}
TFTP_CLIENTS=${TFTP_CLIENTS:-"100 400"}
IPXE_DIR=${IPXE_DIR:-/usr/lib/ipxe}
HTTP_CLIENTS=${HTTP_CLIENTS:-100}
KERNEL_MB=${KERNEL_MB:-8}
INITRD_MB=${INITRD_MB:-20}
WRK_SECONDS=${WRK_SECONDS:-5}
BENCH_AREAS=${BENCH_AREAS:-"dhcp tftp http"}
BENCH_PEERS=${BENCH_PEERS:-}
BAREFLOW_DSN_PARAMS=${BAREFLOW_DSN_PARAMS:-}
AVALANCHE_LIMIT=${AVALANCHE_LIMIT:-60}

# Addresses (RFC 2544 benchmark range) and names.
CIDR=198.18.0.0/15
NETMASK=255.254.0.0
GIADDR=198.18.0.1
RANGE_START=198.18.1.0
RANGE_END=198.19.255.254
A_BAREFLOW=198.18.0.2
A_KEA=198.18.0.3
A_DNSMASQ=198.18.0.4
A_TFTPD=198.18.0.5
A_NGINX=198.18.0.6
HTTP_PORT=8081

die() { echo "bench-boot: $*" >&2; exit 1; }
log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, port 67)"
[ -x "$BIN" ] || die "$BIN missing: run 'make build' first"
missing=()
for t in perfdhcp kea-dhcp4 dnsmasq in.tftpd nginx wrk curl psql ip ss sha256sum; do
	command -v "$t" >/dev/null || missing+=("$t")
done
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (run bench/boot/install-peers.sh)"
[ -f "$IPXE_DIR/ipxe.efi" ] || die "$IPXE_DIR/ipxe.efi missing (Debian package ipxe)"
psql -h "$PGSOCK" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1 ||
	die "PostgreSQL does not answer on $PGSOCK (scripts/ensure-postgres.sh)"

RUN_ID=$$
NS_S=bfb$RUN_ID-s
NS_C=bfb$RUN_ID-c
VETH_S=bfb${RUN_ID}s
VETH_C=bfb${RUN_ID}c
STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULT_DIR=$OUT_DIR/boot-$STAMP
WORK=$(mktemp -d /tmp/bench-boot.XXXXXX)
chmod 755 "$WORK" # tftpd-hpa and nginx workers read below it
RAW=$RESULT_DIR/raw
RESULTS=$RESULT_DIR/results.tsv
mkdir -p "$RAW" "$WORK/logs"
: >"$RESULTS"

# --- processes, namespaces, databases: recorded, and undone by the trap ----

PIDS=()
DBS=()
NS_MADE=()
LASTPID=

# start NAME LOGFILE CMD... runs CMD in its own session (so that its whole
# process group can be stopped) and records its PID in LASTPID and PIDS.
start() {
	local name=$1 logf=$2
	shift 2
	setsid "$@" >"$logf" 2>&1 </dev/null &
	LASTPID=$!
	PIDS+=("$LASTPID")
	log "started $name (pid $LASTPID)"
}

# stop PID: SIGTERM to its process group, SIGKILL after 10 s.
stop() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid did not stop, killing it"
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	PIDS=("${keep[@]+"${keep[@]}"}")
}

# run_bounded SECONDS LOGFILE CMD...: runs a client to completion (killed
# after SECONDS), recorded like the servers; returns its exit status.
run_bounded() {
	local secs=$1 logf=$2 rc=0
	shift 2
	setsid timeout -k 5 "$secs" "$@" >"$logf" 2>&1 </dev/null &
	local pid=$!
	PIDS+=("$pid")
	wait "$pid" || rc=$?
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	PIDS=("${keep[@]+"${keep[@]}"}")
	return "$rc"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do stop "$p"; done
	for p in "${NS_MADE[@]+"${NS_MADE[@]}"}"; do ip netns del "$p" 2>/dev/null || true; done
	for p in "${DBS[@]+"${DBS[@]}"}"; do
		psql -h "$PGSOCK" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $p WITH (FORCE)" >/dev/null 2>&1 || true
	done
	if [ -d "$WORK/logs" ]; then cp -r "$WORK/logs" "$RESULT_DIR/" 2>/dev/null || true; fi
	rm -rf "$WORK"
	[ "$rc" = 0 ] || echo "bench-boot: failed (exit $rc); logs in $RESULT_DIR/logs" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- network ----------------------------------------------------------------

ip netns add "$NS_S"
NS_MADE+=("$NS_S")
ip netns add "$NS_C"
NS_MADE+=("$NS_C")
ip link add "$VETH_S" type veth peer name "$VETH_C"
ip link set "$VETH_S" netns "$NS_S"
ip link set "$VETH_C" netns "$NS_C"
for a in $A_BAREFLOW $A_KEA $A_DNSMASQ $A_TFTPD $A_NGINX; do
	ip -n "$NS_S" addr add "$a/15" dev "$VETH_S"
done
ip -n "$NS_C" addr add "$GIADDR/15" dev "$VETH_C"
for ns in "$NS_S" "$NS_C"; do ip -n "$ns" link set lo up; done
ip -n "$NS_S" link set "$VETH_S" up
ip -n "$NS_C" link set "$VETH_C" up
# Large enough socket buffers for every peer alike (bareflow asks for 4 MiB).
log "namespaces $NS_S (servers) and $NS_C (clients) up; net.core.rmem_max=$(sysctl -n net.core.rmem_max)"

# wait_port NS PROTO ADDR PORT [PID LOG]: until something listens there
# (30 s); fails at once when process PID has exited.
wait_port() {
	local ns=$1 proto=$2 addr=$3 port=$4 pid=${5:-} logf=${6:-} i
	for ((i = 0; i < 300; i++)); do
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			[ -z "$logf" ] || tail -n 5 "$logf" >&2
			die "pid $pid exited before listening on $proto $addr:$port"
		fi
		if ip netns exec "$ns" ss -Hln"${proto:0:1}" "sport = :$port" 2>/dev/null |
			awk -v a="$addr:$port" '$4 == a || $4 == "0.0.0.0:'"$port"'" {f = 1} END {exit !f}'; then
			return 0
		fi
		sleep 0.1
	done
	die "nothing listens on $proto $addr:$port in $ns after 30 s"
}

# --- results ----------------------------------------------------------------

# result AREA TEST METRIC BETTER(hi|lo|-) PEER VALUE
result() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

# cpu_seconds PID...: user+system CPU of these processes and their reaped
# children, in seconds.
CLK=$(getconf CLK_TCK)
cpu_seconds() {
	local p t=0
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		t=$((t + $(awk '{sub(/^.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t $CLK" | awk '{printf "%.2f", $1 / $2}'
}
# pg_cpu: CPU seconds of every PostgreSQL process.
pg_cpu() {
	local pids
	read -ra pids < <(pgrep -u postgres -d ' ' postgres || true)
	cpu_seconds "${pids[@]+"${pids[@]}"}"
}

# --- servers ----------------------------------------------------------------

DBN=0
SERVER_PID=
BAREFLOW_DEV_PID=

bareflow_start() {
	DBN=$((DBN + 1))
	local db=bfbench_${RUN_ID}_$DBN
	local url="postgres://postgres@/$db?host=$PGSOCK&sslmode=disable"
	DBS+=("$db")
	BAREFLOW_DATABASE_URL=$url "$BIN" migrate >"$WORK/logs/bareflow-migrate-$DBN.log" 2>&1
	psql -h "$PGSOCK" -U postgres -d "$db" -v ON_ERROR_STOP=1 -qc "
		INSERT INTO networks (name, kind, cidr, gateway, range_start, range_end, lease_seconds, relay_addrs)
		VALUES ('bench', 'os', '$CIDR', '$GIADDR', '$RANGE_START', '$RANGE_END', 3600, '{$GIADDR}')" >/dev/null
	rm -rf "$WORK/bareflow-data"
	mkdir -p "$WORK/bareflow-data"
	local bootenv=(BAREFLOW_LOG_LEVEL=info BAREFLOW_BOOT_RELAY_ADDR="$A_BAREFLOW:67"
		BAREFLOW_BOOT_TFTP_ADDR="$A_BAREFLOW:69" BAREFLOW_BOOT_TFTP_ROOT="$WORK/tftp"
		BAREFLOW_BOOT_HTTP_ADDR="$A_BAREFLOW:$HTTP_PORT" BAREFLOW_BOOT_RAMDISK_DIR="$WORK/ramdisk")
	local logf=$WORK/logs/bareflow-$DBN.log
	if [ -z "$BAREFLOW_DSN_PARAMS" ]; then
		# `bareflow dev`: embedded Temporal, API, worker and the boot service.
		start bareflow "$logf" env BAREFLOW_DATABASE_URL="$url" BAREFLOW_DATA_DIR="$WORK/bareflow-data" "${bootenv[@]}" \
			ip netns exec "$NS_S" "$BIN" dev --headless --ephemeral \
			--api-addr 127.0.0.1:18080 --temporal-addr 127.0.0.1:17233
		SERVER_PID=$LASTPID
	else
		# Pool parameters such as pool_max_conns are understood by the
		# connection pool of `bareflow boot` only (migrate and dev pass them
		# to PostgreSQL, which refuses them): `bareflow dev` without DHCP
		# provides Temporal, `bareflow boot` serves.
		start bareflow-dev "$WORK/logs/bareflow-dev-$DBN.log" env BAREFLOW_DATABASE_URL="$url" \
			BAREFLOW_DATA_DIR="$WORK/bareflow-data" ip netns exec "$NS_S" "$BIN" dev --headless --ephemeral \
			--api-addr 127.0.0.1:18080 --temporal-addr 127.0.0.1:17233
		BAREFLOW_DEV_PID=$LASTPID
		wait_port "$NS_S" tcp 127.0.0.1 17233 "$BAREFLOW_DEV_PID" "$WORK/logs/bareflow-dev-$DBN.log"
		start bareflow-boot "$logf" env BAREFLOW_DATABASE_URL="$url$BAREFLOW_DSN_PARAMS" \
			TEMPORAL_ADDRESS=127.0.0.1:17233 "${bootenv[@]}" ip netns exec "$NS_S" "$BIN" boot
		SERVER_PID=$LASTPID
	fi
	wait_port "$NS_S" udp "$A_BAREFLOW" 67 "$SERVER_PID" "$logf"
	wait_port "$NS_S" udp "$A_BAREFLOW" 69 "$SERVER_PID" "$logf"
	wait_port "$NS_S" tcp "$A_BAREFLOW" "$HTTP_PORT" "$SERVER_PID" "$logf"
	BAREFLOW_DB=$db
}

kea_start() {
	rm -rf "$WORK/kea"
	mkdir -p "$WORK/kea"
	sed -e "s|@WORK@|$WORK|g" -e "s|@IFACE@|$VETH_S|g" -e "s|@ADDR@|$A_KEA|g" -e "s|@CIDR@|$CIDR|g" \
		-e "s|@RANGE_START@|$RANGE_START|g" -e "s|@RANGE_END@|$RANGE_END|g" -e "s|@GIADDR@|$GIADDR|g" \
		"$here/kea-dhcp4.json.in" >"$WORK/kea/kea-dhcp4.json"
	start kea-dhcp4 "$WORK/logs/kea-$DBN-$RANDOM.log" env KEA_LOCKFILE_DIR="$WORK/kea" KEA_PIDFILE_DIR="$WORK/kea" \
		ip netns exec "$NS_S" kea-dhcp4 -c "$WORK/kea/kea-dhcp4.json"
	SERVER_PID=$LASTPID
	wait_port "$NS_S" udp "$A_KEA" 67 "$SERVER_PID"
}

dnsmasq_start() {
	rm -rf "$WORK/dnsmasq"
	mkdir -p "$WORK/dnsmasq"
	# DHCP only (port=0: no DNS), no ping before an offer (bareflow and kea
	# do not ping either), no per-lease log lines, leases in a file.
	start dnsmasq "$WORK/logs/dnsmasq-$RANDOM.log" ip netns exec "$NS_S" dnsmasq --keep-in-foreground \
		--conf-file=/dev/null --port=0 --no-resolv --no-hosts --user=root --group=root \
		--pid-file="$WORK/dnsmasq/pid" --listen-address="$A_DNSMASQ" --bind-interfaces --except-interface=lo \
		--dhcp-range="$RANGE_START,$RANGE_END,$NETMASK,1h" --dhcp-option=option:router,"$GIADDR" \
		--dhcp-leasefile="$WORK/dnsmasq/leases" --dhcp-lease-max=200000 --dhcp-authoritative \
		--no-ping --quiet-dhcp --log-facility="$WORK/dnsmasq/dnsmasq.log"
	SERVER_PID=$LASTPID
	wait_port "$NS_S" udp "$A_DNSMASQ" 67 "$SERVER_PID"
}

tftpd_start() {
	start tftpd-hpa "$WORK/logs/tftpd-$RANDOM.log" ip netns exec "$NS_S" in.tftpd -L -s "$WORK/tftp" \
		-a "$A_TFTPD:69" -u nobody
	SERVER_PID=$LASTPID
	wait_port "$NS_S" udp "$A_TFTPD" 69 "$SERVER_PID"
}

nginx_start() {
	rm -rf "$WORK/nginx"
	mkdir -p "$WORK/nginx"
	sed -e "s|@WORK@|$WORK|g" -e "s|@ADDR@|$A_NGINX|g" -e "s|@PORT@|$HTTP_PORT|g" \
		"$here/nginx.conf.in" >"$WORK/nginx/nginx.conf"
	start nginx "$WORK/logs/nginx-$RANDOM.log" ip netns exec "$NS_S" nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" \
		-c "$WORK/nginx/nginx.conf"
	SERVER_PID=$LASTPID
	wait_port "$NS_S" tcp "$A_NGINX" "$HTTP_PORT" "$SERVER_PID"
}

# wanted PEER: whether BENCH_PEERS (empty: all) names PEER.
wanted() { [ -z "$BENCH_PEERS" ] || [[ " $BENCH_PEERS " == *" $1 "* ]]; }

# server_start PEER: starts PEER fresh and sets SERVER_PID and ADDR.
server_start() {
	case $1 in
	bareflow) bareflow_start; ADDR=$A_BAREFLOW ;;
	kea-dhcp4) kea_start; ADDR=$A_KEA ;;
	dnsmasq) dnsmasq_start; ADDR=$A_DNSMASQ ;;
	tftpd-hpa) tftpd_start; ADDR=$A_TFTPD ;;
	nginx) nginx_start; ADDR=$A_NGINX ;;
	esac
}

server_stop() {
	stop "$SERVER_PID"
	SERVER_PID=
	if [ -n "$BAREFLOW_DEV_PID" ]; then
		stop "$BAREFLOW_DEV_PID"
		BAREFLOW_DEV_PID=
	fi
}

# --- DHCP ---------------------------------------------------------------------

# perfdhcp_field FILE: "discover_sent ack_received rate" from a perfdhcp report.
perfdhcp_fields() {
	awk '
		/^Rate:/ { rate = $2 }
		/^sent packets:/ { s[++ns] = $3 }
		/^received packets:/ { r[++nr] = $3 }
		END { printf "%d %d %s\n", s[1], r[2], (rate == "" ? 0 : rate) }' "$1"
}

dhcp_server_cpu() { cpu_seconds "$SERVER_PID"; }

dhcp_bench() {
	local peer mac_base=0 rate out f sent acks r loss secs resent cpu0 cpu1 pg0 pg1
	for peer in bareflow kea-dhcp4 dnsmasq; do
		wanted "$peer" || continue
		for rate in $DHCP_RATES; do
			mac_base=$((mac_base + 1))
			server_start "$peer"
			out=$RAW/dhcp-$peer-rate$rate.txt
			log "DHCP $peer: $rate DORA/s for ${DHCP_SECONDS}s"
			cpu0=$(dhcp_server_cpu); pg0=$(pg_cpu)
			run_bounded $((DHCP_SECONDS + 30)) "$out" ip netns exec "$NS_C" perfdhcp -4 -l "$GIADDR" \
				-r "$rate" -R 16777216 -p "$DHCP_SECONDS" -b "mac=02:$(printf %02x $mac_base):00:00:00:00" "$ADDR" || true
			cpu1=$(dhcp_server_cpu); pg1=$(pg_cpu)
			read -r sent acks r < <(perfdhcp_fields "$out")
			loss=$(awk -v s="$sent" -v a="$acks" 'BEGIN { printf "%.1f", s ? 100 * (s - a) / s : 100 }')
			result dhcp "rate $rate/s, ${DHCP_SECONDS}s" "leases/s" hi "$peer" "$(printf %.0f "$r")"
			result dhcp "rate $rate/s, ${DHCP_SECONDS}s" "loss %" lo "$peer" "$loss"
			result dhcp "rate $rate/s, ${DHCP_SECONDS}s" "server CPU s" lo "$peer" "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{printf "%.1f", b-a}')"
			[ "$peer" != bareflow ] || result dhcp "rate $rate/s, ${DHCP_SECONDS}s" "PostgreSQL CPU s" - "$peer" "$(awk -v a="$pg0" -v b="$pg1" 'BEGIN{printf "%.1f", b-a}')"
			server_stop
		done

		# One-shot burst: DHCP_BURST distinct clients send their DISCOVER at
		# once and never retransmit. perfdhcp 2.2 does not honour -W here: it
		# exits about a second after the burst, so this counts the exchanges
		# completed within about a second, not the leases eventually given.
		mac_base=$((mac_base + 1))
		server_start "$peer"
		out=$RAW/dhcp-$peer-burst.txt
		log "DHCP $peer: one-shot burst of $DHCP_BURST clients"
		# perfdhcp waits 10 s (-W) after the last DISCOVER for late answers;
		# an exchange not completed within 5 s (-d) counts as lost.
		run_bounded 60 "$out" ip netns exec "$NS_C" perfdhcp -4 -l "$GIADDR" -r 100000 -n "$DHCP_BURST" \
			-R 16777216 -d 5 -W 10000000 -b "mac=02:$(printf %02x $mac_base):00:00:00:00" "$ADDR" || true
		read -r sent acks r < <(perfdhcp_fields "$out")
		loss=$(awk -v s="$sent" -v a="$acks" 'BEGIN { printf "%.1f", s ? 100 * (s - a) / s : 100 }')
		result dhcp "one-shot burst $DHCP_BURST, ~1 s window" "ACKs / DISCOVERs sent" - "$peer" "$acks / $sent"
		result dhcp "one-shot burst $DHCP_BURST, ~1 s window" "loss %" lo "$peer" "$loss"
		server_stop

		# Avalanche: DHCP_BURST distinct clients start at once and retransmit
		# with back-off until each has its lease, as PXE ROMs do.
		mac_base=$((mac_base + 1))
		server_start "$peer"
		out=$RAW/dhcp-$peer-avalanche.txt
		log "DHCP $peer: avalanche of $DHCP_BURST clients"
		run_bounded "$AVALANCHE_LIMIT" "$out" ip netns exec "$NS_C" perfdhcp -4 -l "$GIADDR" --scenario avalanche \
			-R "$DHCP_BURST" -b "mac=02:$(printf %02x $mac_base):00:00:00:00" "$ADDR" || true
		secs=$(awk '/^It took/ { split($3, t, ":"); printf "%.2f", t[1] * 3600 + t[2] * 60 + t[3] }' "$out")
		resent=$(awk '/^Requests resent:/ { print $3 }' "$out")
		read -r sent acks r < <(perfdhcp_fields "$out")
		if [ -z "$secs" ]; then
			# Killed at the limit: no report; the progress lines say how many
			# DISCOVERs and REQUESTs were still unanswered.
			local waiting
			# (perfdhcp stops printing a phase once nothing waits in it.)
			waiting=$(awk '/still waiting/ { n++; if ($3 == "DISCOVER-OFFER:") { d = $7; dn = n } else { q = $7; qn = n } }
				END { print (n - dn < 2 ? d : 0) + 0, (n - qn < 2 ? q : 0) + 0 }' "$out")
			secs="> $AVALANCHE_LIMIT"
			acks="$((DHCP_BURST - ${waiting% *} - ${waiting#* }))"
			resent=$(awk '/still waiting/ { r += $10 } END { print r + 0 }' "$out")
			log "DHCP $peer avalanche: not done after ${AVALANCHE_LIMIT}s ($waiting DISCOVERs/REQUESTs unanswered)"
		fi
		result dhcp "avalanche $DHCP_BURST (retransmits)" "seconds to lease all" lo "$peer" "${secs:-timeout}"
		result dhcp "avalanche $DHCP_BURST (retransmits)" "leases" hi "$peer" "$acks"
		result dhcp "avalanche $DHCP_BURST (retransmits)" "retransmissions" lo "$peer" "${resent:-?}"
		if [ "$peer" = bareflow ]; then
			# The storm property: every client its own address, none twice.
			read -r bound distinct < <(psql -h "$PGSOCK" -U postgres -d "$BAREFLOW_DB" -AtF ' ' -c \
				"SELECT count(*), count(DISTINCT addr) FROM leases WHERE state = 'bound'")
			log "bareflow avalanche: $bound bound leases, $distinct distinct addresses"
			result dhcp "avalanche $DHCP_BURST (retransmits)" "bound in PostgreSQL (distinct)" - "$peer" "$bound ($distinct)"
		fi
		server_stop
	done
}

# --- TFTP ---------------------------------------------------------------------

tftp_bench() {
	local want peer n out secs fails bytes mb
	want=$(sha256sum "$WORK/tftp/ipxe.efi" | cut -d' ' -f1)
	for n in $TFTP_CLIENTS; do
		for peer in bareflow tftpd-hpa; do
			wanted "$peer" || continue
			server_start "$peer"
			rm -rf "$WORK/swarm"
			mkdir -p "$WORK/swarm"
			log "TFTP $peer: $n clients fetch ipxe.efi (blksize 1468)"
			run_bounded 300 "$RAW/tftp-$peer-$n.txt" ip netns exec "$NS_C" "$here/swarm.sh" tftp "$n" "$WORK/swarm" \
				"tftp://$ADDR/ipxe.efi" || true
			secs=$(tail -n1 "$RAW/tftp-$peer-$n.txt")
			fails=0
			for ((i = 1; i <= n; i++)); do
				if [ "$(cat "$WORK/swarm/$i.rc" 2>/dev/null)" != 0 ] ||
					[ "$(sha256sum <"$WORK/swarm/$i.bin" 2>/dev/null | cut -d' ' -f1)" != "$want" ]; then
					fails=$((fails + 1))
					cat "$WORK/swarm/$i.err" >>"$RAW/tftp-$peer-$n-errors.txt" 2>/dev/null || true
				fi
			done
			bytes=$(stat -c %s "$WORK/tftp/ipxe.efi")
			mb=$(awk -v n="$n" -v b="$bytes" -v f="$fails" -v s="$secs" 'BEGIN { printf "%.1f", (n - f) * b / 1e6 / s }')
			result tftp "$n clients" "makespan s" lo "$peer" "$secs"
			result tftp "$n clients" "MB/s" hi "$peer" "$mb"
			result tftp "$n clients" "failures (incl. checksum)" lo "$peer" "$fails"
			server_stop
		done
	done
	rm -rf "$WORK/swarm"
}

# --- HTTP ---------------------------------------------------------------------

http_bench() {
	local peer n=$HTTP_CLIENTS secs fails mb base w got f
	local ksize isize ksum isum
	ksize=$(stat -c %s "$WORK/ramdisk/vmlinuz")
	isize=$(stat -c %s "$WORK/ramdisk/initrd.img")
	ksum=$(sha256sum "$WORK/ramdisk/vmlinuz" | cut -d' ' -f1)
	isum=$(sha256sum "$WORK/ramdisk/initrd.img" | cut -d' ' -f1)
	for peer in bareflow nginx; do
		wanted "$peer" || continue
		server_start "$peer"
		base=http://$ADDR:$HTTP_PORT/boot/v1/files
		# Content check first (not timed): both files byte for byte.
		for f in vmlinuz:$ksum initrd.img:$isum; do
			got=$(ip netns exec "$NS_C" curl -sS --max-time 30 "$base/${f%%:*}" | sha256sum | cut -d' ' -f1)
			[ "$got" = "${f#*:}" ] || die "HTTP $peer serves a wrong ${f%%:*}"
		done
		rm -rf "$WORK/swarm"
		mkdir -p "$WORK/swarm"
		log "HTTP $peer: $n clients fetch kernel + initrd"
		run_bounded 300 "$RAW/http-$peer-$n.txt" ip netns exec "$NS_C" "$here/swarm.sh" http "$n" "$WORK/swarm" \
			"$base/vmlinuz" "$base/initrd.img" || true
		secs=$(tail -n1 "$RAW/http-$peer-$n.txt")
		fails=0
		for ((i = 1; i <= n; i++)); do
			w=$(tr '\n' ' ' <"$WORK/swarm/$i.w" 2>/dev/null || true)
			if [ "$(cat "$WORK/swarm/$i.rc" 2>/dev/null)" != 0 ] || [ "$w" != "200 $ksize 200 $isize " ]; then
				fails=$((fails + 1))
			fi
		done
		mb=$(awk -v n="$n" -v b=$((ksize + isize)) -v f="$fails" -v s="$secs" 'BEGIN { printf "%.0f", (n - f) * b / 1e6 / s }')
		result http "$n clients, kernel+initrd" "makespan s" lo "$peer" "$secs"
		result http "$n clients, kernel+initrd" "MB/s" hi "$peer" "$mb"
		result http "$n clients, kernel+initrd" "failures" lo "$peer" "$fails"
		log "HTTP $peer: wrk -c$n for ${WRK_SECONDS}s on the initrd"
		run_bounded $((WRK_SECONDS + 30)) "$RAW/wrk-$peer.txt" ip netns exec "$NS_C" wrk -t2 -c"$n" \
			--timeout 60s -d"${WRK_SECONDS}s" "$base/initrd.img" || true
		result http "wrk -c$n ${WRK_SECONDS}s, initrd" "requests/s" hi "$peer" \
			"$(awk '/^Requests\/sec:/ { printf "%.1f", $2 }' "$RAW/wrk-$peer.txt")"
		result http "wrk -c$n ${WRK_SECONDS}s, initrd" "MB/s" hi "$peer" \
			"$(awk '/^Transfer\/sec:/ { v = $2; u = substr(v, length(v) - 1); v += 0
				if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024
				printf "%.0f", v * 1.048576 }' "$RAW/wrk-$peer.txt")"
		result http "wrk -c$n ${WRK_SECONDS}s, initrd" "socket errors + non-2xx" lo "$peer" \
			"$(awk '/Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 } /Non-2xx/ { e += $NF } END { print e + 0 }' "$RAW/wrk-$peer.txt")"
		server_stop
	done
	rm -rf "$WORK/swarm"
}

# --- files served -----------------------------------------------------------

mkdir -p "$WORK/tftp" "$WORK/ramdisk"
# Debian's /usr/lib/ipxe/ipxe.efi is a symbolic link to /boot/ipxe.efi: copy
# the file itself so that both TFTP servers serve the same bytes.
cp -L "$IPXE_DIR/ipxe.efi" "$WORK/tftp/ipxe.efi"
head -c $((KERNEL_MB << 20)) /dev/urandom >"$WORK/ramdisk/vmlinuz"
head -c $((INITRD_MB << 20)) /dev/urandom >"$WORK/ramdisk/initrd.img"
chmod 755 "$WORK/tftp" "$WORK/ramdisk"
chmod 644 "$WORK/tftp/ipxe.efi" "$WORK/ramdisk/"*

# --- run ------------------------------------------------------------------------

started=$(date +%s)
{
	echo "# bareflow boot service vs peers — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
	echo "- bareflow: $("$BIN" version 2>/dev/null | head -n1 || echo '?') ($(git -C "$repo" describe --always --dirty 2>/dev/null || echo '?'))"
	echo "- peers: $(perfdhcp -v 2>&1 | head -n1 | sed 's/^/perfdhcp /'), kea-dhcp4 $(kea-dhcp4 -v 2>&1 | head -n1), $(dnsmasq --version | head -n1 | awk '{print $1, $3}'), tftpd-hpa $(dpkg-query -W -f='${Version}' tftpd-hpa 2>/dev/null), $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}'), $(curl --version | head -n1 | awk '{print $1, $2}'), PostgreSQL $(psql -h "$PGSOCK" -U postgres -d postgres -Atc 'SHOW server_version'), synchronous_commit=$(psql -h "$PGSOCK" -U postgres -d postgres -Atc 'SHOW synchronous_commit')"
	echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows here)"
	[ -z "$BAREFLOW_DSN_PARAMS$BENCH_PEERS" ] || echo "- variant: BENCH_PEERS='$BENCH_PEERS' BAREFLOW_DSN_PARAMS='$BAREFLOW_DSN_PARAMS'"
	echo "- DHCP: ${DHCP_SECONDS}s per rate, burst/avalanche of $DHCP_BURST; TFTP: ipxe.efi $(stat -c %s "$WORK/tftp/ipxe.efi") bytes; HTTP: kernel ${KERNEL_MB} MiB + initrd ${INITRD_MB} MiB random data"
} >"$RESULT_DIR/header.md"

for area in $BENCH_AREAS; do
	case $area in
	dhcp) dhcp_bench ;;
	tftp) tftp_bench ;;
	http) http_bench ;;
	*) die "unknown area $area" ;;
	esac
done

# --- report ---------------------------------------------------------------------

# One table per area: a row per test and metric, a column per peer, and the
# ratio bareflow / best peer (for "lower is better" metrics: best peer /
# bareflow, so that > 1 always means bareflow is ahead).
report() {
	awk -F'\t' '
		{
			key = $1 SUBSEP $2 SUBSEP $3
			if (!(key in better)) { order[++n] = key; better[key] = $4 }
			if (!(($1 SUBSEP $5) in seenpeer)) { seenpeer[$1 SUBSEP $5] = 1; peers[$1] = peers[$1] (peers[$1] == "" ? "" : "\t") $5 }
			if (!($1 in seenarea)) { seenarea[$1] = 1; areas[++na] = $1 }
			v[key SUBSEP $5] = $6
		}
		function num(x) { return x ~ /^[0-9.]+$/ }
		END {
			title["dhcp"] = "DHCP (perfdhcp, relayed)"; title["tftp"] = "TFTP (curl, blksize 1468, ipxe.efi)"; title["http"] = "HTTP boot (curl / wrk)"
			for (a = 1; a <= na; a++) {
				area = areas[a]
				np = split(peers[area], P, "\t")
				printf "\n### %s\n\n| test | metric |", title[area]
				for (i = 1; i <= np; i++) printf " %s |", P[i]
				printf " bareflow vs best peer |\n|---|---|"
				for (i = 1; i <= np; i++) printf "---:|"
				printf "---:|\n"
				for (k = 1; k <= n; k++) {
					split(order[k], K, SUBSEP)
					if (K[1] != area) continue
					printf "| %s | %s |", K[2], K[3]
					for (i = 1; i <= np; i++) { x = v[order[k] SUBSEP P[i]]; printf " %s |", (x == "" ? "–" : x) }
					b = v[order[k] SUBSEP "bareflow"]; best = ""
					for (i = 1; i <= np; i++) {
						if (P[i] == "bareflow") continue
						x = v[order[k] SUBSEP P[i]]
						if (!num(x)) continue
						if (best == "" || (better[order[k]] == "hi" && x + 0 > best + 0) || (better[order[k]] == "lo" && x + 0 < best + 0)) best = x
					}
					r = "–"
					if (num(b) && best != "" && K[3] !~ /loss|failures|errors/) {
						if (better[order[k]] == "hi" && best + 0 > 0) r = sprintf("%.2f×", b / best)
						if (better[order[k]] == "lo" && b + 0 > 0) r = sprintf("%.2f×", best / b)
					}
					printf " %s |\n", r
				}
			}
		}' "$RESULTS"
}

{
	cat "$RESULT_DIR/header.md"
	report
	echo
	echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Total time: $(($(date +%s) - started)) s. Raw outputs: $RAW"
} >"$RESULT_DIR/results.md"
cp "$RESULT_DIR/results.md" "$OUT_DIR/boot-latest.md"
cat "$RESULT_DIR/results.md"
