// Package wipe is the machine side of the wipe workflow: it destroys the
// partition tables and signatures of a machine's disks, and fully erases
// disks, from the PXE ramdisk. Every command runs through a CommandRunner
// (SSH into the ramdisk) as an argv of checked words; device paths must be
// /dev/NAME, and the shell scripts it runs (sh -c) are constants that take
// their values as positional parameters.
//
// # Destroying signatures (Disks)
//
// Per whole disk, in this order:
//
//	step                         command                         why first
//	1 unmount, swap off          umount, swapoff                 nothing may hold a device that goes away
//	2 LVM off                    vgchange -an VG                 a volume group on the disk (or on an md
//	                                                             array on it) keeps its devices open
//	3 md arrays stopped          mdadm --stop, then              a running array holds its members and
//	                             mdadm --zero-superblock         rewrites its superblock; zeroed, it
//	                                                             cannot be assembled again
//	4 partitions wiped           wipefs -a PART…                 a filesystem's signature lies inside a
//	                                                             partition, where wiping the disk's own
//	                                                             (the tables) leaves it to be found again
//	                                                             by the next table that has a partition there
//	5 the disk wiped             wipefs -a DISK                  MBR, GPT and whole-disk signatures
//	6 GPT zapped                 sgdisk --zap-all DISK           both GPT headers and the protective MBR,
//	                                                             even when wipefs did not recognize them
//	7 the ends zeroed            dd, first and last MiB          boot code, stale boot sectors, md 0.90
//	                                                             and 1.0 superblocks and other metadata
//	                                                             kept at the end of a disk
//	8 the kernel told            partx -d, blockdev --rereadpt   the kernel forgets the partitions
//	9 verified                   wipefs -n, blkid -p             nothing must be found; the kernel must
//	                                                             list no partition
//
// Stacked devices are found in sysfs (/sys/block/NAME, its partitions and
// their holders, recursively) and released deepest first; mounts are
// matched by device number in /proc/self/mountinfo. A holder the package
// cannot release (a device-mapper target without dmsetup, bcache…) is
// refused with ErrBusy rather than wiped under. Every step is idempotent:
// on a blank disk each succeeds and changes nothing.
//
// # Full erase (StartErase, EraseStatus)
//
// The methods are an NVMe format with a user data erase (or a sanitize,
// as the controller's SANICAP allows), the ATA security erase (hdparm,
// refused while the drive's security is frozen), a discard (blkdiscard,
// or a secure discard or a write of zeroes) and an overwrite (one pass of
// zeros or random data, with O_DIRECT). Auto picks the format for an NVMe
// namespace, a discard verified by reading zeros back (followed by a zero
// pass where they do not) for a non-rotational disk that discards, and an
// overwrite otherwise. StartErase checks the disk supports the method
// before anything is started, and refuses clearly when it does not.
//
// An erase takes minutes to days, longer than any SSH command or worker
// should live, so it runs as a detached job in the ramdisk:
//
//	StartErase ──SSH──> launcher (sh) ──(setsid sh -c JOB &)──> erase job
//	                      │ lock, re-attach,                     own session and process group,
//	                      │ reap a dead job's leftovers          stdin /dev/null, output to a log,
//	                      └ waits for the job's first state      parent: init
//	                                                             │
//	EraseStatus ──SSH──> status script <── reads ── /run/bareflow/erase/NAME.json
//	                      alive? (PID + job ID)                  rewritten (tmp + mv) after each step
//
// The job is not a child of the SSH session's shell: bareflow's SSH runner
// kills every process of a command's session and process group, and its
// descendants, when the command times out or is canceled, and the
// session's end sends nothing to a process in another session without a
// terminal. The launcher starts setsid in a background subshell, so that
// setsid need not fork (busybox's has no -f) and the job is reparented to
// init at once.
//
// The state file holds the method, the job's PID and random ID, when it
// started, the size, the offset done, the phase, the restarts and the
// error. An overwrite writes each chunk with O_DIRECT and fsyncs it before
// recording the offset after it; a discard records the offset after each
// blkdiscard; a sanitize records the controller's progress. EraseStatus
// tells a live job from a dead one by the recorded PID's arguments holding
// the job's ID, and restarts a job that died before it ended: an
// overwrite or a discard from its recorded offset, a sanitize by polling
// the controller again, a format or an ATA erase from the start; it kills
// what was left of the dead job's process group first. StartErase is
// idempotent: it re-attaches to a running job of the same request, returns
// a finished one, and resumes one that died or failed. The state lives on
// the ramdisk's tmpfs: a reboot ends the jobs and forgets them.
package wipe
