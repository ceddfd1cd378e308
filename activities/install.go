package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

// KeptPartition is a partition a reinstall leaves in place, as it was read
// before the image was written: where it lies and what names it.
type KeptPartition struct {
	Number   int
	Label    string
	Start    int64
	Size     int64
	Type     string
	PartUUID string
	FSType   string
	UUID     string
}

// ConfigureRequest is what the OS configuration step does on the written
// disk.
type ConfigureRequest struct {
	Disk string
	// Family is the image's OS family; the written system's os-release
	// decides the flavor.
	Family        contract.OSFamily
	RootSizeBytes int64
	Partitions    []contract.PartitionSpec
	Kept          []KeptPartition
	OS            contract.OSSettings
	// InstanceID is the NoCloud instance-id (the operation's ID), written
	// when the request carries user-data.
	InstanceID string
}

// ConfigureResult is what the configuration found and did.
type ConfigureResult struct {
	// Family and Flavor are those the configuration was written for.
	Family string
	Flavor string
	// RootPartition is the root's device; RootUUID its filesystem UUID.
	RootPartition string
	RootUUID      string
	RootSizeBytes int64
	// Files are the paths written or edited in the OS.
	Files []string
}

// OSInstaller lays out and configures an OS written onto a disk, through a
// ramdisk shell. Its errors wrap ErrInstallPermanent when the disk or the
// request cannot work however often it is retried.
type OSInstaller interface {
	// ChooseRootDisk picks the disk: the hint's, else the recorded root
	// volume, else the smallest disk of at least need bytes.
	ChooseRootDisk(inv contract.Inventory, recorded string, hint contract.RootDiskHint, need int64) (string, error)
	// Kept reads the partitions with the given labels from disk.
	Kept(ctx context.Context, sh RamdiskShell, disk string, labels []string) ([]KeptPartition, error)
	// Configure restores kept partitions, grows root, makes the extra
	// partitions and writes the OS configuration.
	Configure(ctx context.Context, sh RamdiskShell, req ConfigureRequest, beat func(string)) (ConfigureResult, error)
}

// ErrInstallPermanent marks an install step that cannot succeed as asked.
var ErrInstallPermanent = errors.New("the install cannot be done as asked")

// InstallKeeper reads and records what an install needs of a machine.
type InstallKeeper interface {
	// RootDevice returns the machine's recorded root device (from its last
	// RAID build); empty when none.
	RootDevice(ctx context.Context, machineID string) (string, error)
	// RecordInstall records the OS a machine runs; an empty image clears
	// it (after a wipe).
	RecordInstall(ctx context.Context, machineID string, rec InstallRecord) error
}

// InstallRecord is the OS a machine was given.
type InstallRecord struct {
	Image    string
	RootDisk string
	Hostname string
	Address  string
}

// Installer holds the activities of the Install workflow besides the ramdisk
// handshake and the image write.
type Installer struct {
	Dialer    RamdiskDialer
	Keeper    InstallKeeper
	Images    ImageKeeper
	Installer OSInstaller
	// ProbeEvery is the pause between OS probes; zero means 5s.
	ProbeEvery time.Duration
}

// ChooseRootDiskInput asks which disk the image goes to.
type ChooseRootDiskInput struct {
	MachineID string
	Inventory contract.Inventory
	Hint      contract.RootDiskHint
	Image     string
	// Extra is the room the request needs besides the image: a root size
	// beyond the image and the extra partitions.
	Extra int64
}

// ChooseRootDiskResult is the disk chosen and the image's facts.
type ChooseRootDiskResult struct {
	Disk        string
	ImageID     string
	Family      contract.OSFamily
	VirtualSize int64
}

// ChooseRootDisk checks the image and picks the disk it is written to.
//
// Idempotent: reads only. No heartbeat.
func (a *Installer) ChooseRootDisk(ctx context.Context, in ChooseRootDiskInput) (ChooseRootDiskResult, error) {
	src, err := a.Images.ImageSource(ctx, in.Image)
	if errors.Is(err, ErrNotFound) {
		return ChooseRootDiskResult{}, temporal.NewNonRetryableApplicationError("image "+in.Image+" does not exist", contract.ErrImageNotFound, nil)
	}
	if err != nil {
		return ChooseRootDiskResult{}, fmt.Errorf("read image %s: %w", in.Image, err)
	}
	recorded, err := a.Keeper.RootDevice(ctx, in.MachineID)
	if err != nil {
		return ChooseRootDiskResult{}, recordError("read the machine's root device", err)
	}
	disk, err := a.Installer.ChooseRootDisk(in.Inventory, recorded, in.Hint, src.VirtualSize+in.Extra)
	if err != nil {
		return ChooseRootDiskResult{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrNoRootDisk, nil)
	}
	return ChooseRootDiskResult{Disk: disk, ImageID: src.ID, Family: src.Family, VirtualSize: src.VirtualSize}, nil
}

// KeepPartitionsInput reads the partitions a reinstall keeps.
type KeepPartitionsInput struct {
	MachineID string
	Ramdisk   contract.RamdiskReady
	Disk      string
	Labels    []string
	// ImageSize is the image's virtual size: every kept partition must
	// start at or beyond it, or the write would overwrite it.
	ImageSize int64
}

// KeepPartitions reads the partitions a reinstall keeps, before the image
// is written over the disk's start, and checks that the image ends before
// each of them.
//
// Idempotent: reads only. Once the image is written the partitions are
// gone from the table: the workflow keeps this result in its history and
// does not run it again. Heartbeats every few seconds.
func (a *Installer) KeepPartitions(ctx context.Context, in KeepPartitionsInput) ([]KeptPartition, error) {
	if len(in.Labels) == 0 {
		return nil, nil
	}
	if in.ImageSize <= 0 {
		return nil, temporal.NewNonRetryableApplicationError(
			"the image has no virtual size recorded: bareflow cannot tell whether it would overwrite the partitions to keep",
			contract.ErrKeepConflict, nil)
	}
	defer keepBeating(ctx, "read the partitions to keep")()
	sh, err := (&Registration{Dialer: a.Dialer}).dial(ctx, RamdiskInput{MachineID: in.MachineID, Ramdisk: in.Ramdisk})
	if err != nil {
		return nil, err
	}
	defer sh.Close()
	kept, err := a.Installer.Kept(ctx, sh, in.Disk, in.Labels)
	if err != nil {
		return nil, installError(contract.ErrKeepConflict, err)
	}
	for _, p := range kept {
		if p.Start < in.ImageSize {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"partition %d (%s) of %s starts at %d bytes, inside the image's %d bytes: writing the image would destroy it",
				p.Number, p.Label, in.Disk, p.Start, in.ImageSize), contract.ErrKeepConflict, nil)
		}
	}
	return kept, nil
}

// ConfigureOSInput configures the written OS.
type ConfigureOSInput struct {
	MachineID string
	Ramdisk   contract.RamdiskReady
	Request   ConfigureRequest
}

// ConfigureOS fixes the partition table of the written image, restores the
// kept partitions, grows the root partition and filesystem, makes the
// extra partitions, and writes hostname, network, fstab, password, keys,
// cloud-init seed and files into the OS.
//
// Idempotent: every part finds what a previous run did and leaves it (a
// grown partition is not grown again, an existing extra partition with its
// filesystem is kept, files are rewritten with the same content).
// Heartbeats before every command and every few seconds.
func (a *Installer) ConfigureOS(ctx context.Context, in ConfigureOSInput) (ConfigureResult, error) {
	defer keepBeating(ctx, "configure the OS")()
	sh, err := (&Registration{Dialer: a.Dialer}).dial(ctx, RamdiskInput{MachineID: in.MachineID, Ramdisk: in.Ramdisk})
	if err != nil {
		return ConfigureResult{}, err
	}
	defer sh.Close()
	res, err := a.Installer.Configure(ctx, sh, in.Request, func(step string) { activity.RecordHeartbeat(ctx, step) })
	if err != nil {
		return ConfigureResult{}, installError(contract.ErrOSConfig, err)
	}
	return res, nil
}

// installError makes a permanent installer error non-retryable with code.
func installError(code string, err error) error {
	if errors.Is(err, ErrInstallPermanent) {
		return temporal.NewNonRetryableApplicationError(err.Error(), code, nil)
	}
	return err
}

// RebootRamdisk reboots the machine from inside its ramdisk, for a machine
// without a BMC. The command returns before the machine goes down.
//
// Idempotent: a machine that already went down does not answer, which
// counts as done. No heartbeat.
func (a *Installer) RebootRamdisk(ctx context.Context, in RamdiskInput) error {
	sh, err := a.Dialer.Dial(ctx, sshAddr(in.Ramdisk), in.Ramdisk.SSHHostKey)
	if errors.Is(err, ErrShellUnreachable) {
		return nil
	}
	if err != nil {
		_, derr := (&Registration{Dialer: a.Dialer}).dial(ctx, in)
		return derr
	}
	defer sh.Close()
	_, err = sh.Run(ctx, ShellCommand{Script: "sync; (sleep 1; reboot -f) >/dev/null 2>&1 </dev/null &", Timeout: 30 * time.Second, MaxOutput: 4096})
	if err != nil {
		return fmt.Errorf("reboot from the ramdisk: %w", err)
	}
	return nil
}

// WaitOSInput waits for the installed OS.
type WaitOSInput struct {
	MachineID string
	// Address and Port are where the OS is probed with a TCP connection.
	Address string
	Port    int
	// For is how long this call watches before failing.
	For time.Duration
}

// WaitOS waits until a TCP connection to the installed OS's address and
// port succeeds: the agent-free sign that it booted, brought its network
// up and runs its SSH server (or whatever listens there).
//
// Idempotent: connects only. Heartbeats after every attempt; fails with
// OSNotUp when For passes.
func (a *Installer) WaitOS(ctx context.Context, in WaitOSInput) (string, error) {
	if in.Port <= 0 || in.Port > 65535 {
		in.Port = 22
	}
	addr := in.Address + ":" + strconv.Itoa(in.Port)
	if strings.Contains(in.Address, ":") {
		addr = "[" + in.Address + "]:" + strconv.Itoa(in.Port)
	}
	every := a.ProbeEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	deadline := time.Now().Add(in.For)
	var last error
	for {
		err := a.Dialer.Reachable(ctx, addr)
		if err == nil {
			return addr, nil
		}
		last = err
		activity.RecordHeartbeat(ctx, "probe "+addr+": "+err.Error())
		if time.Now().After(deadline) {
			return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"the installed OS did not answer on %s within %s (last: %v); check its console for boot or network errors",
				addr, in.For, last), contract.ErrOSNotUp, nil)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(every):
		}
	}
}

// RecordInstallInput records a machine's installed OS.
type RecordInstallInput struct {
	MachineID string
	Record    InstallRecord
}

// RecordInstall records what the machine runs.
//
// Idempotent: an overwrite. No heartbeat.
func (a *Installer) RecordInstall(ctx context.Context, in RecordInstallInput) error {
	if err := a.Keeper.RecordInstall(ctx, in.MachineID, in.Record); err != nil {
		return recordError("record the install", err)
	}
	return nil
}
