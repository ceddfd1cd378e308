// Package osimage builds the OS disk images of bareflow's install tests
// from what the test machine has: Debian's partitioning and filesystem
// tools, busybox, dropbear, syslinux, systemd-boot and the kernel of
// bareflow's own PXE ramdisk. Nothing is downloaded.
//
// Two kinds of image, both raw disks with a small vfat partition first and
// an ext4 (or xfs) root partition second that ends well before the disk
// does, so that the installer's grow step has something to do:
//
//	kind       BuildConfig                      BuildBootable
//	table      gpt (or dos)                     gpt (or dos)
//	part 1     ESP, vfat "ESP", EFI/<id>/       ESP type, vfat "BOOT", legacy BIOS
//	                                            bootable: syslinux, vmlinuz,
//	                                            initrd.img, syslinux.cfg,
//	                                            EFI/BOOT/BOOTX64.EFI, loader/
//	part 2     root: GPT type 4F68BCE3-… (Linux root x86-64), GPT name and
//	           filesystem label "root"
//	root       /etc of a Debian 12 or a Rocky   busybox + dropbear, /etc of a
//	           9.3 system, nothing that runs    Debian 12 system that boots
//	boot code  none                             syslinux gptmbr.bin (mbr.bin)
//	needs      mkfs.ext4 -d / mkfs.xfs -p,      the same, and a built ramdisk
//	           sfdisk, mtools, debugfs; no root (make ramdisk), syslinux,
//	                                            systemd-boot-efi
//
// Filesystems are made in files of their own and copied into the disk
// (zero blocks skipped, so images stay sparse): mkfs.ext4 -d fills an ext4
// filesystem from a staging folder without mounting it, and debugfs then
// sets owners, so no step needs root; xfs is filled from a mkfs.xfs
// prototype file, which carries owners itself (xfs wants 300 MiB or more).
//
// # The bootable image
//
// It boots under a BIOS and under UEFI from the one boot partition:
//
//	BIOS  MBR boot code (gptmbr.bin on gpt, mbr.bin on dos) → the partition
//	      marked legacy-BIOS-bootable (gpt) or active (dos) → syslinux
//	      (ldlinux.sys) → syslinux.cfg
//	UEFI  the firmware finds the FAT filesystem (GPT type ESP, dos type
//	      0xef) → EFI/BOOT/BOOTX64.EFI, systemd-boot from Debian's
//	      systemd-boot-efi → loader/loader.conf (one entry, timeout 0) →
//	      loader/entries/bareflow.conf
//
// Both start /vmlinuz and /initrd.img with the same command line:
//
//	root=UUID=<root filesystem UUID> console=ttyS0,115200 rw quiet
//
// (syslinux adds BOOT_IMAGE= and initrd=, systemd-boot initrd=). Under UEFI
// the kernel, an EFI stub, runs as an EFI program and systemd-boot hands it
// the initramfs. systemd-boot rather than syslinux.efi: it is one file,
// with no ldlinux.e64 module to keep beside it and in step with it, and
// its entry is plain key-value text (the Boot Loader Specification) with
// nothing of its own to parse. OVMF boots both tables: the ESP type with the
// legacy-BIOS attribute on gpt, type 0xef with the active flag on dos.
//
// The installer's grow step (sfdisk -N, resize2fs) keeps the filesystem
// UUID, the partition's start and its legacy-BIOS-bootable attribute, so the
// command line of both loaders stays right after an install and nothing
// rewrites it.
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
// the kernel, initrd, busybox, dropbear, MBR boot code and systemd-boot
// files and of this package's scripts. A build runs in a temporary folder beside it and is renamed into
// place, so two processes building the same image at once both succeed and
// one of the two copies wins. Images in the cache are shared: change a copy
// (Image.CopyTo), never the cached file. Conversions (qcow2, raw.zst) are
// cached beside the image the same way.
package osimage
