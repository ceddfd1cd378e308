#!/usr/bin/env bash
# swarm.sh — starts N curl clients at once and waits for all of them; run by
# bench/boot/run.sh inside the client network namespace.
#
# Usage: swarm.sh tftp N OUTDIR URL      each client saves URL to OUTDIR/I.bin
#        swarm.sh http N OUTDIR URL...   each client fetches every URL in turn
#                                        (one connection) into /dev/null
# Every client leaves its exit status in OUTDIR/I.rc (and for http what curl
# saw, "code size" per URL, in OUTDIR/I.w). The last line printed is the
# makespan in seconds: from before the first client starts to after the last
# one ends.
set -uo pipefail

mode=$1 n=$2 out=$3
shift 3
max_time=${SWARM_MAX_TIME:-120}

client() {
	local i=$1
	shift
	case $mode in
	tftp)
		curl -sS --max-time "$max_time" --tftp-blksize 1468 -o "$out/$i.bin" "$1" 2>"$out/$i.err"
		;;
	http)
		local outs=() _
		for _ in "$@"; do outs+=(-o /dev/null); done
		curl -sS --max-time "$max_time" "${outs[@]}" -w '%{http_code} %{size_download}\n' "$@" \
			>"$out/$i.w" 2>"$out/$i.err"
		;;
	esac
	echo $? >"$out/$i.rc"
}

start=$(date +%s.%N)
for ((i = 1; i <= n; i++)); do
	client "$i" "$@" &
done
wait
end=$(date +%s.%N)
echo "$start $end" | awk '{printf "%.3f\n", $2 - $1}'
