// Package osimage builds the OS disk images of bareflow's install tests
// from what the test machine has: Debian's partitioning and filesystem
// tools, busybox, dropbear, syslinux and the kernel of bareflow's own PXE
// ramdisk. Nothing is downloaded.
//
// Two kinds of image, both raw disks with a small vfat partition first and
// an ext4 (or xfs) root partition second that ends well before the disk
// does, so that the installer's grow step has something to do:
//
//	kind       BuildConfig                      BuildBootable
//	table      gpt (or dos)                     gpt (or dos)
//	part 1     ESP, vfat "ESP", EFI/<id>/       ESP type, vfat "BOOT", legacy BIOS
//	                                            bootable: syslinux, vmlinuz,
//	                                            initrd.img, syslinux.cfg
//	part 2     root: GPT type 4F68BCE3-… (Linux root x86-64), GPT name and
//	           filesystem label "root"
//	root       /etc of a Debian 12 or a Rocky   busybox + dropbear, /etc of a
//	           9.3 system, nothing that runs    Debian 12 system that boots
//	boot code  none                             syslinux gptmbr.bin (mbr.bin)
//	needs      mkfs.ext4 -d / mkfs.xfs -p,      the same, and a built ramdisk
//	           sfdisk, mtools, debugfs; no root (make ramdisk), syslinux
//
// Filesystems are made in files of their own and copied into the disk
// (zero blocks skipped, so images stay sparse): mkfs.ext4 -d fills an ext4
// filesystem from a staging folder without mounting it, and debugfs then
// sets owners, so no step needs root; xfs is filled from a mkfs.xfs
// prototype file, which carries owners itself (xfs wants 300 MiB or more).
//
// # The bootable image
//
// syslinux.cfg boots the kernel with
//
//	root=UUID=<root filesystem UUID> console=ttyS0,115200 rw quiet
//
// The installer's grow step (sfdisk -N, resize2fs) keeps the filesystem
// UUID, the partition's start and its legacy-BIOS-bootable attribute, so the
// command line stays right after an install and nothing rewrites it.
//
// The initramfs (a zstd cpio made here) holds busybox, the kernel modules of
// QEMU's disks and NICs taken with their dependencies from the ramdisk's
// initrd (virtio, AHCI, megaraid_sas, e1000, ext4…), and an /init that
// loads them, waits for root=, mounts it read-write and switch_roots. The
// root's busybox init then mounts /proc, /sys, /dev and /run, sets the host
// name from /etc/hostname, brings up the NICs that /etc/network/interfaces
// marks auto or allow-hotplug (its own parser, not ifupdown: static
// addresses with gateway, dhcp, mtu, up commands and dns-nameservers;
// systemd .link files rename NICs by MAC first), starts dropbear on port 22
// (public-key logins only, for root's /root/.ssh/authorized_keys) and
// prints on the console
//
//	bareflow-os-up hostname=<name> addr=<address/prefix of the first NIC with one>
//
// Without udev the kernel names NICs eth0, eth1…; /etc/os-release says
// ID=debian, so bareflow writes ifupdown files into it.
//
// # Cache
//
// Images are built into a cache folder the caller names (build/osimage in
// bareflow's tests), one folder per image named by a hash of everything
// that goes in: the options, the versions of the tools, the contents of
// the kernel, initrd, busybox and dropbear files and of this package's
// scripts. A build runs in a temporary folder beside it and is renamed into
// place, so two processes building the same image at once both succeed and
// one of the two copies wins. Images in the cache are shared: change a copy
// (Image.CopyTo), never the cached file. Conversions (qcow2, raw.zst) are
// cached beside the image the same way.
package osimage
