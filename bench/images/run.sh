#!/usr/bin/env bash
# Image writer benchmark: the same image onto the same target through
#   writer    bareflow-imagewriter from the .zst URL, --target-zeroed
#   download  curl the raw image to a file, then qemu-img convert -O raw onto the target
#   pipe      curl | zstd -d | dd oflag=direct bs=4M
#   local     qemu-img convert -W -O raw from a local raw file
# and the same image as qcow2 (qemu-img convert -O qcow2: 64 KiB clusters, not compressed):
#   writer-qcow2     bareflow-imagewriter from the .qcow2 URL, --target-zeroed
#   writer-qcow2-nz  the same without --target-zeroed: the holes are zeroed (BLKZEROOUT)
#   download-qcow2   curl the qcow2 image to a file, then qemu-img convert -O raw onto the target
#   local-qcow2      qemu-img convert -W -O raw from a local qcow2 file
# Wall time includes a final sync; device writes come from the loop device's
# /sys/block/*/stat (a file's allocated blocks without a loop device); peak
# RSS is /usr/bin/time's maximum over the processes of the command.
# Needs root (loop device, drop_caches), curl, zstd, qemu-img, /usr/bin/time.
# Environment: SIZE_MIB (1024), DATA_MIB (300), RUNS (3), WORK (build/bench/images),
# METHODS (all of the above, in that order).
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZE_MIB=${SIZE_MIB:-1024}
DATA_MIB=${DATA_MIB:-300}
RUNS=${RUNS:-3}
WORK=${WORK:-build/bench/images}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
for c in curl zstd qemu-img /usr/bin/time; do
	command -v "$c" >/dev/null || { echo "missing $c" >&2; exit 1; }
done

CGO_ENABLED=0 go build -trimpath -o "$WORK/bareflow-imagewriter" ./cmd/bareflow-imagewriter
go build -o "$WORK/server" ./bench/images/server

img="$WORK/srv/image.raw"
mkdir -p "$WORK/srv"
if [[ ! -f "$img.zst" || ! -f "$WORK/.built-$SIZE_MIB-$DATA_MIB" ]]; then
	echo "building a ${SIZE_MIB} MiB image with ${DATA_MIB} MiB of random data" >&2
	rm -f "$img" "$img.zst"
	truncate -s "${SIZE_MIB}M" "$img"
	head -c "${DATA_MIB}M" /dev/urandom >"$WORK/random"
	i=0
	for slot in $(shuf -i 0-$((SIZE_MIB - 1)) -n "$DATA_MIB" --random-source=<(yes)); do
		dd if="$WORK/random" of="$img" bs=1M skip=$i seek="$slot" count=1 conv=notrunc status=none
		i=$((i + 1))
	done
	rm "$WORK/random"
	zstd -q -T0 -3 -f "$img" -o "$img.zst"
	touch "$WORK/.built-$SIZE_MIB-$DATA_MIB"
fi
if [[ ! -f "$img.qcow2" || "$img.qcow2" -ot "$WORK/.built-$SIZE_MIB-$DATA_MIB" ]]; then
	qemu-img convert -f raw -O qcow2 -o cluster_size=64k "$img" "$img.qcow2"
fi
sum=$(sha256sum "$img.zst" | cut -d' ' -f1)
qsum=$(sha256sum "$img.qcow2" | cut -d' ' -f1)
data_bytes=$(( $(du -B1 "$img" | cut -f1) ))

"$WORK/server" -dir "$WORK/srv" >"$WORK/server.addr" &
server=$!
trap 'kill $server 2>/dev/null; [[ -n ${loop:-} ]] && losetup -d "$loop"' EXIT
sleep 0.5
url=$(head -1 "$WORK/server.addr")

backing="$WORK/target.img"
loop=""
truncate -s 0 "$backing"
truncate -s "$((SIZE_MIB + 64))M" "$backing"
if loop=$(losetup -f --show --direct-io=on "$backing" 2>/dev/null || losetup -f --show "$backing" 2>/dev/null); then
	target=$loop
else
	loop=""
	target=$backing
fi

# reset zeroes the target and drops the caches, then warms the served files
# (the source stands for a remote server, not this disk).
reset() {
	if [[ -n $loop ]]; then blkdiscard "$loop"; else truncate -s 0 "$backing"; truncate -s "$((SIZE_MIB + 64))M" "$backing"; fi
	rm -f "$WORK/download.raw" "$WORK/download.qcow2"
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	cat "$img" "$img.zst" "$img.qcow2" >/dev/null
}

written() {
	if [[ -n $loop ]]; then
		echo $(( $(awk '{print $7}' "/sys/block/${loop#/dev/}/stat") * 512 ))
	else
		du -B1 "$backing" | cut -f1
	fi
}

declare -A cmds=(
	[writer]="$WORK/bareflow-imagewriter --url $url/image.raw.zst --checksum sha256:$sum --target $target --target-zeroed --state-dir $WORK/state >/dev/null"
	[download]="curl -sf -o $WORK/download.raw $url/image.raw && qemu-img convert -n -O raw $WORK/download.raw $target; rm -f $WORK/download.raw"
	[pipe]="curl -sf $url/image.raw.zst | zstd -dc | dd of=$target oflag=direct bs=4M status=none"
	[local]="qemu-img convert -n -W -O raw $img $target"
	[writer-qcow2]="$WORK/bareflow-imagewriter --url $url/image.raw.qcow2 --checksum sha256:$qsum --target $target --target-zeroed --state-dir $WORK/state >/dev/null"
	[writer-qcow2-nz]="$WORK/bareflow-imagewriter --url $url/image.raw.qcow2 --checksum sha256:$qsum --target $target --state-dir $WORK/state >/dev/null"
	[download-qcow2]="curl -sf -o $WORK/download.qcow2 $url/image.raw.qcow2 && qemu-img convert -n -f qcow2 -O raw $WORK/download.qcow2 $target; rm -f $WORK/download.qcow2"
	[local-qcow2]="qemu-img convert -n -W -f qcow2 -O raw $img.qcow2 $target"
)
read -r -a methods <<<"${METHODS:-writer download pipe local writer-qcow2 writer-qcow2-nz download-qcow2 local-qcow2}"

printf '%s\n' "machine: $(nproc) cpus, $(awk '/MemTotal/{print $2/1024 " MiB"}' /proc/meminfo), $(uname -r), target ${target}" \
	"image: ${SIZE_MIB} MiB raw, ${data_bytes} bytes allocated, zst $(stat -c %s "$img.zst") bytes, qcow2 $(stat -c %s "$img.qcow2") bytes"
echo "method run wall_s device_bytes peak_rss_kib" >"$WORK/results.txt"
for run in $(seq "$RUNS"); do
	for m in "${methods[@]}"; do
		reset
		before=$(written)
		start=$(date +%s.%N)
		/usr/bin/time -f %M -o "$WORK/rss" bash -c "set -o pipefail; ${cmds[$m]}; sync"
		end=$(date +%s.%N)
		after=$(written)
		if [[ -n $loop ]] && ! cmp -s -n $((SIZE_MIB << 20)) "$img" "$target"; then
			echo "$m: target content differs" >&2
		fi
		echo "$m $run $(echo "$end - $start" | bc) $((after - before)) $(tail -1 "$WORK/rss")" | tee -a "$WORK/results.txt"
	done
done

echo
echo "median of $RUNS runs:"
for m in "${methods[@]}"; do
	gawk -v m="$m" '$1 == m {w[++n] = $3; b[n] = $4; r[n] = $5} END {
		asort(w); asort(b); asort(r); i = int((n + 1) / 2)
		printf "%-15s wall %6.2f s  device %7.1f MiB  peak RSS %7.1f MiB\n", m, w[i], b[i] / 1048576, r[i] / 1024 }' "$WORK/results.txt"
done
