package wipe

// The erase job's shell scripts. They run under the ramdisk's /bin/sh
// (dash) with busybox's applets and the tools of ramdisk/tools.txt, take
// every value as a positional parameter checked by the Go side first, and
// keep to what dash, busybox 1.35 and GNU coreutils/util-linux all accept:
// dd's iflag=fullblock, oflag=direct,seek_bytes and status=none; cmp -s -n
// with skips; setsid without -f.

// jobCommon are the functions the launcher and the status script share.
//
// alive reports whether the job of state file $state is running: the PID
// it recorded is a process whose arguments include the job's ID. The ID is
// random per launch, so a reused PID never passes.
//
// reap DEVICE kills what is left of a job that died while running: the
// processes of its process group (the job led it) working on DEVICE, such
// as a dd the job shell started, still writing when the shell was killed;
// and waits up to 50 s for them to end. Linux hands out no PID still in
// use as a process group ID, and the device check keeps a reused PID's
// group safe.
const jobCommon = `field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" "$state" 2>/dev/null | head -n 1; }
alive() {
	[ -f "$state" ] || return 1
	p=$(field pid); i=$(field job)
	[ -n "$p" ] && [ -n "$i" ] && [ -r "/proc/$p/cmdline" ] || return 1
	tr '\000' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -e "$i"
}
reap() {
	d=$1
	[ -f "$state" ] && [ "$(field status)" = running ] || return 0
	g=$(field pid)
	[ -n "$g" ] || return 0
	w=0
	while [ "$w" -lt 50 ]; do
		left=
		for s in /proc/[0-9]*/stat; do
			l=; read -r l <"$s" 2>/dev/null || continue
			p=${l%% *}; r=${l##*) }
			set -- $r
			[ "${3:-}" = "$g" ] && [ "$p" != "$$" ] || continue
			tr '\000' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -e "$d" || continue
			kill -KILL "$p" 2>/dev/null
			left=1
		done
		[ -z "$left" ] && return 0
		sleep 1
		w=$((w + 1))
	done
	return 1
}
`

// statusScript prints "none NOW", or "alive NOW" or "dead NOW" followed by
// the state file of disk $2 under directory $1. NOW is the ramdisk's clock
// (seconds since the epoch), against which the state's times are read.
const statusScript = jobCommon + `state=$1/$2.json
now=$(date +%s)
if [ ! -f "$state" ]; then echo "none $now"; exit 0; fi
if alive; then echo "alive $now"; else echo "dead $now"; fi
cat "$state"`

// launchScript starts the erase job $1 with the job's arguments after it
// ($2 the state directory, $3 the disk's name, $5 the job ID; see
// jobScript), detached: in a session and process group of its own
// (setsid, in a background subshell, so that setsid does not need to
// fork), with standard input from /dev/null and its output appended to a
// log beside the state. It is not a child of the command's shell, so
// neither the end of the SSH session nor the runner killing the command's
// process tree reaches it.
//
// A lock file made with noclobber, holding the launcher's PID, keeps two
// launchers of one disk apart; a lock whose launcher is gone is taken
// over. Under the lock, a live job for the disk is never doubled: the
// launcher prints "attached" and its state. Otherwise it kills what a dead
// job left running, starts the new job, waits up to 10 s for it to write
// its first state, and prints "started" and that state. Another launcher
// at work prints "busy" and exits 75.
const launchScript = jobCommon + `job=$1; shift
dir=$1 name=$2 id=$4
state=$dir/$name.json lock=$dir/$name.lock
mkdir -p "$dir" && chmod 700 "$dir" || exit 1
if ! (set -C; echo "$$" >"$lock") 2>/dev/null; then
	o=; read -r o <"$lock" 2>/dev/null
	if [ -n "$o" ] && tr '\000' '\n' <"/proc/$o/cmdline" 2>/dev/null | grep -qx bareflow-erase-start; then
		echo busy; exit 75
	fi
	rm -f "$lock"
	(set -C; echo "$$" >"$lock") 2>/dev/null || { echo busy; exit 75; }
fi
trap 'rm -f "$lock"' EXIT
if alive; then echo attached; cat "$state"; exit 0; fi
reap "/dev/$name" || { echo "what is left of the last erase job of $name does not die" >&2; exit 1; }
(setsid sh -c "$job" bareflow-erase "$@" </dev/null >>"$dir/$name.log" 2>&1 &)
n=0
while [ "$n" -lt 100 ]; do
	if [ "$(field job)" = "$id" ]; then echo started; cat "$state"; exit 0; fi
	sleep 0.1 2>/dev/null || sleep 1
	n=$((n + 1))
done
echo "the erase job did not start: $(tail -n 5 "$dir/$name.log" 2>/dev/null | tr '\n' ' ')" >&2
exit 1`

// jobScript is the detached erase job. Its positional parameters:
//
//	$1 state directory   $2 disk name       $3 device (/dev/NAME)
//	$4 job ID            $5 method asked    $6 method
//	$7 variant           $8 size in bytes   $9 chunk in bytes
//	$10 parameter        $11 offset         $12 started (epoch s, 0: now)
//	$13 restarts         $14 phase          $15 poll interval (s)
//
// The parameter is the LBA format index (nvme format), the sanitize action
// (nvme sanitize) or the estimated minutes (ata-secure-erase). The job
// rewrites its state file (a temporary file, then mv) after each step:
// for overwrite and discard after each chunk, so that offset is always a
// point up to which the disk is done. Overwrite writes with O_DIRECT and
// fsyncs each chunk before recording it.
const jobScript = `set -u
dir=$1 name=$2 dev=$3 job=$4 asked=$5 method=$6 variant=$7 size=$8 chunk=$9
param=${10} offset=${11} started=${12} restarts=${13} phase=${14} poll=${15}
state=$dir/$name.json
[ "$started" -gt 0 ] || started=$(date +%s)
status=running err= phase_started=$(date +%s) from=$offset
clean() { printf '%s' "$1" | tr '\n\r\t' '   ' | sed 's/[^ -~]//g; s/["\\]/'"'"'/g' | cut -c1-600; }
put() {
	printf '{"disk":"%s","job":"%s","requested":"%s","method":"%s","variant":"%s","pid":%s,"status":"%s","phase":"%s","size":%s,"offset":%s,"from":%s,"chunk":%s,"param":"%s","started":%s,"phase_started":%s,"updated":%s,"restarts":%s,"error":"%s"}\n' \
		"$dev" "$job" "$asked" "$method" "$variant" "$$" "$status" "$phase" "$size" "$offset" "$from" "$chunk" "$param" \
		"$started" "$phase_started" "$(date +%s)" "$restarts" "$(clean "$err")" >"$state.tmp" && mv -f "$state.tmp" "$state"
}
fail() { status=failed err=$1; put; exit 1; }
finish() { status=done offset=$size; put; exit 0; }
enter() { phase=$1 phase_started=$(date +%s); put; }

# zeros: the first and the last MiB (all of a smaller disk) read back as
# zeros, from the device, not the page cache.
zeros() {
	n=1048576
	[ "$size" -lt "$n" ] && n=$size
	blockdev --flushbufs "$dev" >/dev/null 2>&1
	cmp -s -n "$n" "$dev" /dev/zero 0 0 && cmp -s -n "$n" "$dev" /dev/zero $((size - n)) 0
}

# overwrite SRC: SRC over [offset, size) in chunks, each written with
# O_DIRECT and fsynced before the offset after it is recorded.
overwrite() {
	while [ "$offset" -lt "$size" ]; do
		n=$chunk
		[ $((size - offset)) -lt "$n" ] && n=$((size - offset))
		out=$(dd if="$1" of="$dev" bs="$n" count=1 seek="$offset" iflag=fullblock oflag=direct,seek_bytes conv=notrunc,fsync status=none 2>&1) ||
			fail "writing $n bytes at offset $offset: $out"
		offset=$((offset + n))
		put
	done
}

# discard [FLAG]: blkdiscard over [offset, size) in chunks.
discard() {
	while [ "$offset" -lt "$size" ]; do
		n=$chunk
		[ $((size - offset)) -lt "$n" ] && n=$((size - offset))
		out=$(blkdiscard -f "$@" -o "$offset" -l "$n" "$dev" 2>&1) ||
			fail "blkdiscard $* of $n bytes at offset $offset: $out"
		offset=$((offset + n))
		put
	done
}

put
case $method in
overwrite)
	[ -n "$phase" ] || enter overwrite
	if [ "$variant" = random ]; then
		overwrite /dev/urandom
	else
		overwrite /dev/zero
		zeros || fail "the disk does not read back zeros after the zero pass"
	fi
	finish
	;;
discard)
	case $variant in
	secure) [ -n "$phase" ] || enter discard; discard --secure ;;
	zeroout) [ -n "$phase" ] || enter zeroout; discard --zeroout ;;
	verify)
		if [ "$phase" != zeroout ]; then
			[ -n "$phase" ] || enter discard
			discard
			zeros && finish
			offset=0 from=0; enter zeroout
		fi
		discard --zeroout
		zeros || fail "the disk does not read back zeros after discarding and writing zeroes"
		;;
	*) [ -n "$phase" ] || enter discard; discard ;;
	esac
	finish
	;;
nvme)
	case $variant in
	format)
		enter format
		out=$(nvme format "$dev" --ses=1 --lbaf="$param" --force --timeout=14400000 2>&1) || fail "nvme format: $out"
		finish
		;;
	sanitize-*)
		if [ "$phase" != sanitize ]; then
			ow=
			[ "$param" = 3 ] && ow=--owpass=1
			out=$(nvme sanitize "$dev" --sanact="$param" $ow 2>&1) || fail "nvme sanitize: $out"
			enter sanitize
		fi
		idle=0
		while :; do
			log=$(nvme sanitize-log "$dev" -o json 2>&1) || fail "nvme sanitize-log: $log"
			flat=$(printf '%s' "$log" | tr -d '\n')
			st=$(printf '%s' "$flat" | sed -n 's/.*"(\([0-9]\)) .*/\1/p')
			[ -n "$st" ] || st=$(printf '%s' "$flat" | sed -n 's/.*"sstat"[^0-9]*\([0-9][0-9]*\).*/\1/p')
			pr=$(printf '%s' "$flat" | sed -n 's/.*"sprog"[^0-9]*\([0-9][0-9]*\).*/\1/p')
			case ${st:-x} in
			1|4) finish ;;
			2) offset=$((size / 65536 * ${pr:-0})); put ;;
			3) fail "the controller reports the sanitize failed (sanitize log status 3)" ;;
			0)
				idle=$((idle + 1))
				[ "$idle" -gt 24 ] && fail "the controller reports no sanitize after $idle polls"
				;;
			*) fail "cannot read the sanitize status: $flat" ;;
			esac
			sleep "$poll"
		done
		;;
	esac
	;;
ata-secure-erase)
	pw=bareflow
	info=$(hdparm -I "$dev" 2>&1) || fail "hdparm -I: $info"
	sec=$(printf '%s\n' "$info" | sed -n '/^Security:/,/^[^[:space:]]/p')
	flag() { printf '%s\n' "$sec" | grep -q "^[[:space:]]*$1[[:space:]]*\$"; }
	flag frozen && fail "the drive's ATA security is frozen: power-cycle or hot-plug the drive (a suspend and resume also unfreezes many)"
	if ! flag enabled; then
		out=$(hdparm --user-master u --security-set-pass "$pw" "$dev" 2>&1) || fail "hdparm --security-set-pass: $out"
	fi
	enter erase
	how=--security-erase
	[ "$variant" = enhanced ] && how=--security-erase-enhanced
	if ! out=$(hdparm --user-master u "$how" "$pw" "$dev" 2>&1); then
		hdparm --user-master u --security-disable "$pw" "$dev" >/dev/null 2>&1
		fail "hdparm $how: $out"
	fi
	finish
	;;
*) fail "unknown method $method" ;;
esac`
