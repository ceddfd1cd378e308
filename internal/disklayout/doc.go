// Package disklayout prepares a root disk after an OS image was written
// onto it from the ramdisk: it reads the partition table, moves a GPT
// backup header to the end of the disk, grows the root partition and its
// filesystem, adds extra partitions, mounts the root and writes the files
// that osconfig renders into it without following symlinks in the image.
//
// Every command runs through a CommandRunner as an argv whose words are
// built from validated values; the shell scripts it runs (sh -c) are
// constants that take their values as positional parameters.
//
// # Commands
//
//	step                      command
//	sync the kernel's view    partx -u DISK (BLKPG per partition: works on a
//	                          busy disk and without a kernel GPT parser)
//	read the table            sfdisk --json DISK, blockdev --getsize64 DISK
//	filesystems               blkid -p -o export PART... (low-level probe,
//	                          no cache; lsblk has no FSTYPE without udev)
//	backup GPT header         sgdisk -e DISK, only when it is not at the end
//	grow the root partition   sfdisk -N N --no-reread --no-tell-kernel DISK
//	                          with ",SECTORS" on stdin (keeps start, type,
//	                          PARTUUID and name; gpt and dos alike)
//	extra partitions          sgdisk -n N:START:END -t N:CODE -c N:LABEL DISK
//	                          with explicit, MiB-aligned sectors after the
//	                          last partition (gpt only)
//	grow ext2/3/4             e2fsck -f -y PART, resize2fs PART
//	grow xfs                  mount PART on a directory under /run,
//	                          xfs_growfs DIR, umount DIR
//	make filesystems          wipefs -a, then mkfs.ext4 / mkfs.xfs /
//	                          mkfs.vfat / mkswap with -L LABEL
//
// # Root partition
//
// Inspect picks the root partition by this rule, first match wins:
//
//  1. the only partition whose GPT type is a discoverable-partitions root
//     type (x86-64, aarch64, x86, arm, riscv64);
//  2. the largest partition holding ext2/3/4, xfs or btrfs that is neither
//     an ESP, nor an XBOOTLDR partition, nor labelled "boot" (partition or
//     filesystem label); ties go to the lower partition number.
//
// Layout.Select overrides it with a partition number or label. Inspect does
// not mount partitions to look for /etc/os-release.
//
// # Idempotence
//
// FixAndGrow compares what it wants with what the disk holds and acts only
// on differences: the backup header is moved only when it is not at the end,
// the root partition is grown only when it ends before the target, an
// ext filesystem is checked and resized only when it is smaller than its
// partition, and an extra partition is created only when no partition has
// its GPT name; an existing one gets a filesystem only when blkid finds
// none with the same type and label. XFS is always mounted and grown, which
// xfs_growfs turns into a no-op when it already fills the partition.
//
// # Writes into the image
//
// WriteFiles and ApplyEdits walk each path below the mount point one
// component at a time and refuse a component that is a symlink or not a
// directory; missing directories are created (0755) only after the
// components above them passed. Content goes to a mktemp file in the final
// directory, gets its mode (or, for edits, the old file's mode and owner)
// and is renamed over the target with mv -T, which replaces a symlink at
// the final component instead of following it. Edits read with cat only a
// regular, non-symlink file. MountRoot mounts with nodev,nosuid.
package disklayout
