#!/usr/bin/env bash
# Builds bareflow's PXE ramdisk from Debian packages:
#
#   build/ramdisk/vmlinuz      Debian's kernel (linux-image-amd64's image package)
#   build/ramdisk/initrd.img   zstd (or gzip) cpio: busybox, dropbear, the install tools
#                              with their shared libraries, the kernel modules of
#                              ramdisk/modules.txt with their dependencies, /init
#   build/ramdisk/manifest.txt every tool, module and vendor tool, with sizes
#
# The tools are installed on the build machine with apt-get (ramdisk/
# packages.txt); the kernel and busybox-static are fetched with
# `apt-get download` and unpacked with `dpkg -x`, never installed.
# A stamp of the inputs (package versions, the hashes of this folder's files,
# the vendor and firmware folders) makes a second run with nothing changed a
# no-op.
#
# Environment:
#   RAMDISK_OUT          output folder (default: build/ramdisk)
#   RAMDISK_VENDOR_DIR   vendor RAID tools to copy in (default: ramdisk/vendor-tools)
#   RAMDISK_FIRMWARE_DIR firmware files for /lib/firmware (default: ramdisk/firmware)
#   RAMDISK_NO_INSTALL=1 do not apt-get install missing packages; fail instead
#   RAMDISK_FORCE=1      rebuild even when the stamp matches
set -eu  # no pipefail: `… | head -n1` would fail on SIGPIPE

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# The Go toolchain, for bareflow's own tools in the ramdisk.
go_bin="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
out="${RAMDISK_OUT:-$repo/build/ramdisk}"
vendor_dir="${RAMDISK_VENDOR_DIR:-$here/vendor-tools}"
firmware_dir="${RAMDISK_FIRMWARE_DIR:-$here/firmware}"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin"
export LC_ALL=C

# Vendor RAID tools the build looks for (not redistributable).
vendor_tools=(storcli64 perccli64 MegaCli64 ssacli hpssacli sas2ircu sas3ircu mvcli arcconf)

log() { printf 'ramdisk: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# lines FILE: the non-comment, non-empty lines of FILE.
lines() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^[[:space:]]*$/d' "$1"; }

[ "$(id -u)" = 0 ] || log "warning: not root; apt-get install and device nodes may fail"

# --- packages on the build machine -------------------------------------------
mapfile -t packages < <(lines "$here/packages.txt")
installed=" $(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' "${packages[@]}" 2>/dev/null | awk '/^ii/ {print $2}' | tr '\n' ' ') "
missing=()
for p in "${packages[@]}"; do
	case "$installed" in *" $p "*) ;; *) missing+=("$p") ;; esac
done
if [ "${#missing[@]}" -gt 0 ]; then
	[ "${RAMDISK_NO_INSTALL:-}" = 1 ] && die "packages not installed: ${missing[*]}"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >&2; then
		apt-get -o DPkg::Lock::Timeout=600 update -q >&2
		apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >&2
	fi
fi

# --- kernel and busybox packages (downloaded, not installed) -----------------
kernel_pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$kernel_pkg" ]; then
	apt-get -o DPkg::Lock::Timeout=600 update -q >&2
	kernel_pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
fi
[ -n "$kernel_pkg" ] || die "cannot find linux-image-amd64's kernel package"
# Candidate versions of both packages, in one apt-cache call.
policy="$(apt-cache policy "$kernel_pkg" busybox-static)"
cand() { printf '%s\n' "$policy" | awk -v p="$1:" '$1 == p {f = 1} f && /Candidate:/ {print $2; exit}'; }
kernel_ver="$(cand "$kernel_pkg")"
busybox_ver="$(cand busybox-static)"
[ -n "$kernel_ver" ] && [ "$kernel_ver" != "(none)" ] || die "no candidate for $kernel_pkg"
[ -n "$busybox_ver" ] && [ "$busybox_ver" != "(none)" ] || die "no candidate for busybox-static"

# --- stamp of the inputs -----------------------------------------------------
listing() { # names, sizes and times of a folder's files
	[ -d "$1" ] && find "$1" -type f -printf '%P %s %T@\n' | sort || true
}
stamp="$(
	{
		echo "kernel $kernel_pkg $kernel_ver"
		echo "busybox-static $busybox_ver"
		dpkg-query -W -f '${Package} ${Version}\n' "${packages[@]}" 2>/dev/null | sort
		(cd "$here" && find . -maxdepth 2 -type f \( -name '*.sh' -o -name '*.txt' -o -name init -o -path './files/*' \) -print0 |
			sort -z | xargs -0 sha256sum)
		echo bareflow-tools; (cd "$repo" && sha256sum go.mod go.sum internal/images/*.go cmd/bareflow-imagewriter/*.go)
		echo vendor; listing "$vendor_dir"
		echo firmware; listing "$firmware_dir"
	} | sha256sum | cut -d' ' -f1
)"
if [ "${RAMDISK_FORCE:-}" != 1 ] && [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] &&
	[ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ] && [ -s "$out/manifest.txt" ]; then
	log "up to date: $out (stamp $stamp)"
	exit 0
fi

start=$(date +%s)
mkdir -p "$out/debs"
work="$out/work"
rm -rf "$work" "$out/stamp"
mkdir -p "$work"

fetch_deb() { # package version → path of the .deb in $out/debs
	local pkg="$1" ver="$2" f
	f="$(find "$out/debs" -maxdepth 1 -name "${pkg}_*.deb" | while read -r d; do
		[ "$(dpkg-deb -f "$d" Version)" = "$ver" ] && echo "$d"; done | head -n1)"
	if [ -z "$f" ]; then
		find "$out/debs" -maxdepth 1 -name "${pkg}_*.deb" -delete
		log "downloading $pkg $ver"
		(cd "$out/debs" && apt-get download -q "$pkg=$ver" >&2 2>/dev/null) ||
			(cd "$out/debs" && apt-get download -q "$pkg=$ver" >&2)
		f="$(find "$out/debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)"
	fi
	[ -n "$f" ] || die "cannot download $pkg"
	echo "$f"
}
kernel_deb="$(fetch_deb "$kernel_pkg" "$kernel_ver")"
busybox_deb="$(fetch_deb busybox-static "$busybox_ver")"
dpkg -x "$kernel_deb" "$work/kernel"
dpkg -x "$busybox_deb" "$work/busybox"
kver="$(ls "$work/kernel/lib/modules" | head -n1)"
[ -n "$kver" ] && [ -f "$work/kernel/boot/vmlinuz-$kver" ] || die "no kernel in $kernel_deb"
depmod -b "$work/kernel" "$kver"

root="$work/root"
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,usr/lib/firmware,etc,dev,proc,sys,run,tmp,var/log,root/.ssh,mnt}
# Debian's layout with /usr merged: /bin, /sbin, /lib and /lib64 point into
# /usr, so every program has one name whatever PATH a shell has.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
ln -s ../run "$root/var/run"
chmod 1777 "$root/tmp"
chmod 700 "$root/root" "$root/root/.ssh"

manifest="$work/manifest.txt"
: >"$manifest"
man() { printf '%s\n' "$*" >>"$manifest"; }

# --- ELF files with their libraries ------------------------------------------
# dest PATH: where PATH goes inside the root (/bin, /sbin and /lib map into /usr).
dest() {
	case "$1" in
	/bin/*) echo "/usr$1" ;;
	/sbin/*) echo "/usr$1" ;;
	/lib/*) echo "/usr$1" ;;
	/lib64/*) echo "/usr$1" ;;
	*) echo "$1" ;;
	esac
}
declare -A copied=()
copy_file() { # host path → same place in the root, symlinks followed
	local src="$1" d
	d="$(dest "$src")"
	[ -n "${copied[$d]:-}" ] && return 0
	copied[$d]=1
	mkdir -p "$root$(dirname "$d")"
	cp -L --preserve=mode "$src" "$root$d"
}
copy_elf() { # an ELF file and its ldd closure
	local f="$1" lib
	copy_file "$f"
	if ldd "$f" >/dev/null 2>&1; then
		while read -r lib; do
			[ -n "$lib" ] && copy_file "$lib"
		done < <(ldd "$f" | awk '/=> \// {print $3} /^[[:space:]]*\/[^ ]*ld-linux/ {print $1}')
	fi
}
# The loader, and libgcc_s, which glibc loads at run time for thread
# cancellation and unwinding.
copy_file /lib64/ld-linux-x86-64.so.2
for l in /lib/x86_64-linux-gnu/libgcc_s.so.1; do [ -e "$l" ] && copy_elf "$l"; done

man "# bareflow ramdisk manifest"
man "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
man "stamp: $stamp"
man "kernel: $kernel_pkg $kernel_ver ($kver)"
man "busybox-static: $busybox_ver"
man ""
man "## tools (name, path in the ramdisk, file size in bytes, package)"
while read -r name _; do
	p="$(command -v "$name" || true)"
	[ -n "$p" ] || die "tool $name not found (is its package in packages.txt installed?)"
	d="$(dest "$p")"
	if [ -L "$p" ]; then
		# A symlink (mkfs.ext4 → mke2fs, modprobe → kmod): copy the program
		# once and keep the name a link.
		target="$(readlink -f "$p")"
		copy_elf "$target"
		if [ "$(dest "$target")" != "$d" ]; then
			mkdir -p "$root$(dirname "$d")"
			ln -sf "$(dest "$target")" "$root$d"
		fi
	else
		copy_elf "$p"
	fi
	# dpkg knows a file by the path its package ships (/sbin/x or /usr/sbin/x).
	pkg=""
	real="$(readlink -f "$p")"
	for q in "$p" "$real" "${p#/usr}" "${real#/usr}" "/usr${p#/usr}" "/usr${real#/usr}"; do
		pkg="$(dpkg -S "$q" 2>/dev/null | head -n1 | cut -d: -f1 || true)"
		[ -n "$pkg" ] && break
	done
	man "tool $name $d $(stat -L -c %s "$root$d") ${pkg:-?}"
done < <(lines "$here/tools.txt")
# kmod's other names.
for n in insmod rmmod lsmod modinfo depmod; do ln -sf kmod "$root/usr/bin/$n"; done
[ -e "$root/usr/sbin/modprobe" ] || ln -sf ../bin/kmod "$root/usr/sbin/modprobe"
# busybox for everything else: an applet gets a name only where no real
# program has it (ip, modprobe, mke2fs… stay the real ones).
install -m 755 "$work/busybox/bin/busybox" "$root/usr/bin/busybox"
for applet in $("$root/usr/bin/busybox" --list); do
	[ -e "$root/usr/bin/$applet" ] || [ -L "$root/usr/bin/$applet" ] ||
		[ -e "$root/usr/sbin/$applet" ] || [ -L "$root/usr/sbin/$applet" ] ||
		ln -s busybox "$root/usr/bin/$applet"
done
# /bin/sh is dash (the shell of SSH sessions); the init runs busybox sh.
ln -sf dash "$root/usr/bin/sh"
man "busybox $(stat -c %s "$root/usr/bin/busybox") bytes, $(find "$root/usr/bin" -lname busybox | wc -l) applets linked"
# qemu-img reads http(s) sources through its curl block module.
qemu_moddir=/usr/lib/x86_64-linux-gnu/qemu
if [ -f "$qemu_moddir/block-curl.so" ]; then
	copy_elf "$qemu_moddir/block-curl.so"
	man "module-file qemu block-curl $qemu_moddir/block-curl.so $(stat -c %s "$qemu_moddir/block-curl.so")"
else
	die "qemu-img's block-curl.so is missing (package qemu-block-extra)"
fi
# Data files the tools read.
for f in /usr/share/misc/pci.ids /etc/mke2fs.conf /usr/share/misc/enterprise-numbers; do
	if [ -f "$f" ]; then
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
	fi
done

# --- bareflow's own tools -----------------------------------------------------
# The image writer, static: it streams, verifies and resumes image writes.
[ -x "$go_bin" ] || die "Go is needed to build bareflow-imagewriter (set GO)"
(cd "$repo" && CGO_ENABLED=0 "$go_bin" build -trimpath -ldflags='-s -w' -o "$work/bareflow-imagewriter" ./cmd/bareflow-imagewriter) ||
	die "cannot build bareflow-imagewriter"
install -m 755 "$work/bareflow-imagewriter" "$root/usr/bin/bareflow-imagewriter"
man "bareflow-tool bareflow-imagewriter $(stat -c %s "$root/usr/bin/bareflow-imagewriter")"

# --- vendor RAID tools --------------------------------------------------------
man ""
man "## vendor tools (from ${vendor_dir})"
mkdir -p "$root/opt/vendor/bin"
for v in "${vendor_tools[@]}"; do
	src=""
	[ -d "$vendor_dir" ] && src="$(find "$vendor_dir" -name "$v" -type f | head -n1)"
	if [ -n "$src" ]; then
		install -m 755 "$src" "$root/opt/vendor/bin/$v"
		if ldd "$src" >/dev/null 2>&1; then
			while read -r lib; do [ -n "$lib" ] && copy_file "$lib"; done < <(ldd "$src" | awk '/=> \// {print $3}')
		fi
		man "vendor $v present $(stat -c %s "$src")"
	else
		man "vendor $v missing"
	fi
done
if [ -d "$vendor_dir" ]; then
	# Anything else in the folder (libraries, other tools) comes along too.
	find "$vendor_dir" -type f ! -name README.md | while read -r f; do
		b="$(basename "$f")"
		[ -e "$root/opt/vendor/bin/$b" ] && continue
		install -m 755 "$f" "$root/opt/vendor/bin/$b"
		printf 'vendor-extra %s %s\n' "$b" "$(stat -c %s "$f")" >>"$manifest"
	done
fi
if [ -d "$firmware_dir" ]; then
	cp -a "$firmware_dir/." "$root/usr/lib/firmware/"
	man "firmware $(du -sb "$firmware_dir" | cut -f1) bytes from $firmware_dir"
fi

# --- kernel modules -----------------------------------------------------------
man ""
man "## kernel modules (requested name, files with dependencies, bytes)"
kroot="$work/kernel"
mdir="lib/modules/$kver"
mkdir -p "$root/usr/$mdir"
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -f "$kroot/$mdir/$f" ] && cp "$kroot/$mdir/$f" "$root/usr/$mdir/"
done
skipped=()
while read -r mod _; do
	if ! deps="$(modprobe -d "$kroot" -S "$kver" --show-depends "$mod" 2>/dev/null)"; then
		skipped+=("$mod")
		man "module $mod missing (not in the Debian kernel)"
		continue
	fi
	files=()
	bytes=0
	while read -r kind path _; do
		case "$kind" in
		insmod)
			rel="${path#"$kroot"/}"
			if [ ! -f "$root/usr/$rel" ]; then
				mkdir -p "$root/usr/$(dirname "$rel")"
				cp "$path" "$root/usr/$rel"
			fi
			files+=("$(basename "$path")")
			bytes=$((bytes + $(stat -c %s "$path")))
			;;
		builtin) files+=("builtin") ;;
		esac
	done <<<"$deps"
	man "module $mod ${files[*]} $bytes"
done < <(lines "$here/modules.txt")
depmod -b "$root/usr" "$kver" 2>/dev/null || depmod -b "$root" "$kver"

# --- init and configuration --------------------------------------------------
install -m 755 "$here/init" "$root/init"
install -m 755 "$here/files/udhcpc.script" "$root/etc/udhcpc.script"
install -m 755 "$here/files/acpi-power" "$root/etc/acpi-power"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:*:1::::::\n' >"$root/etc/shadow"
chmod 600 "$root/etc/shadow"
printf 'root:x:0:\n' >"$root/etc/group"
printf '/bin/sh\n/bin/dash\n/bin/ash\n' >"$root/etc/shells"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
printf 'bareflow-ramdisk\n' >"$root/etc/hostname"
printf 'PATH=/usr/sbin:/usr/bin:/sbin:/bin:/opt/vendor/bin\nexport PATH\nPS1="bareflow-ramdisk# "\n' >"$root/etc/profile"
mkdir -p "$root/etc/acpi/PWRF"
ln -sf /etc/acpi-power "$root/etc/acpi/PWRF/00000080"
ln -sf /etc/acpi-power "$root/etc/acpi/power"
mkdir -p "$root/etc/dropbear"
printf '%s\n' "$kver" >"$root/etc/bareflow-kernel"

# --- pack ---------------------------------------------------------------------
# zstd when the build machine has it: the kernel unpacks it several times
# faster than gzip, which matters under emulation and on slow BMC consoles.
tmp_initrd="$work/initrd.img"
if command -v zstd >/dev/null; then
	compress="zstd -q -9 -T0"
else
	compress="gzip -6 -n"
fi
(cd "$root" && find . -mindepth 1 -print0 | sort -z | cpio --null -o -H newc --owner=0:0 --quiet) | $compress >"$tmp_initrd"
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz"
mv "$tmp_initrd" "$out/initrd.img"

man ""
man "## sizes"
man "vmlinuz $(stat -c %s "$out/vmlinuz")"
man "initrd.img $(stat -c %s "$out/initrd.img") (${compress%% *})"
man "unpacked $(du -sb "$root" | cut -f1)"
man "modules $(du -sb "$root/usr/$mdir" | cut -f1) ($(find "$root/usr/$mdir" -name '*.ko' | wc -l) files)"
man "libraries $(du -sb "$root/usr/lib/x86_64-linux-gnu" | cut -f1)"
mv "$manifest" "$out/manifest.txt"
rm -rf "$work"
echo "$stamp" >"$out/stamp"
log "built $out in $(($(date +%s) - start)) s: vmlinuz $(stat -c %s "$out/vmlinuz") bytes, initrd.img $(stat -c %s "$out/initrd.img") bytes"
[ "${#skipped[@]}" -eq 0 ] || log "modules not in the Debian kernel: ${skipped[*]}"
