package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

// Install steps, besides those of every ramdisk operation.
const (
	stepChooseDisk = "choose_root_disk"
	stepKeep       = "keep_partitions"
	stepWriteImage = "write_image"
	stepConfigure  = "configure_os"
	stepBootDisk   = "boot_from_disk"
	stepReboot     = "reboot"
	stepWaitOS     = "waiting_for_os"
	stepRecord     = "record"
)

// Install timeouts.
const (
	// imageWriteTimeout bounds one attempt of an image write; the writer
	// resumes from its checkpoint on the next.
	imageWriteTimeout = 6 * time.Hour
	configureTimeout  = 30 * time.Minute
	// osProbeSlice is how long one WaitOS call watches; the workflow calls
	// it again until OSTimeout.
	osProbeSlice = 5 * time.Minute
)

var (
	installer *activities.Installer
	imageActs *activities.Images
)

// Install puts an OS on a machine: it gets the machine into the ramdisk,
// builds RAID when asked, picks the root disk, streams the image onto it
// (verified while written, resumed after a crash), fixes and grows the
// partitions, makes the extra ones, configures the OS (hostname, network,
// fstab, password, keys, cloud-init seed, files), makes the machine boot
// from disk, reboots it and waits for the OS to answer. A reinstall is the
// same on a running machine, keeping its RAID and the partitions it is told
// to keep. It runs on the machine's workflow ID.
func Install(ctx workflow.Context, in contract.InstallInput) (contract.InstallResult, error) {
	w := &installWorkflow{in: in}
	if err := w.setup(ctx); err != nil {
		return contract.InstallResult{}, err
	}
	return w.run(ctx)
}

type installWorkflow struct {
	*ramdiskFlow
	in  contract.InstallInput
	res contract.InstallResult
	// rebooted is true once the machine left the ramdisk for its OS.
	rebooted bool
	// host, when set, makes the install a hypervisor host's (host.go).
	host *hostConversion
}

func (w *installWorkflow) setup(ctx workflow.Context) error {
	switch {
	case w.in.MachineID == "":
		return temporal.NewNonRetryableApplicationError("machine ID is required", contract.ErrInvalidInput, nil)
	case w.in.Image == "":
		return temporal.NewNonRetryableApplicationError("an image is required", contract.ErrInvalidInput, nil)
	case w.in.Reinstall && w.in.RAID != nil:
		return temporal.NewNonRetryableApplicationError("a reinstall keeps the RAID: it takes no RAID spec", contract.ErrInvalidInput, nil)
	case !w.in.Reinstall && len(w.in.Keep) > 0:
		return temporal.NewNonRetryableApplicationError("only a reinstall keeps partitions", contract.ErrInvalidInput, nil)
	}
	if w.in.OSTimeout <= 0 {
		w.in.OSTimeout = contract.DefaultOSTimeout
	}
	kind := contract.OperationInstall
	if w.in.Reinstall {
		kind = contract.OperationReinstall
	}
	if w.host != nil {
		kind = contract.OperationConvertHost
	}
	w.res = contract.InstallResult{MachineID: w.in.MachineID}
	op, err := newOperation(ctx, w.in.OperationID, w.in.MachineID, kind, w.in.RequestedBy)
	w.ramdiskFlow = newRamdiskFlow(w.in.MachineID, op, w.in.RamdiskTimeout, false)
	return err
}

func (w *installWorkflow) run(ctx workflow.Context) (contract.InstallResult, error) {
	// A failed install leaves the machine in its ramdisk (unless it was
	// rebooted already), where a new attempt finds it.
	err := w.runOperation(ctx, contract.MachineRunning, func(err error) bool { return err != nil && !w.rebooted }, w.act)
	return w.res, err
}

func (w *installWorkflow) act(ctx workflow.Context) error {
	ready, err := w.ensureRamdisk(ctx, contract.MachineDeploying)
	if err != nil {
		return err
	}
	inv, err := w.collect(ctx, ready, 0.12)
	if err != nil {
		return err
	}
	if w.in.RAID != nil {
		if _, _, inv, err = w.buildRAID(ctx, ready, inv, *w.in.RAID, 0.15); err != nil {
			return err
		}
	}
	w.op.step(ctx, stepChooseDisk, 0.25)
	var extra int64
	for _, p := range w.in.Partitions {
		extra += p.SizeBytes
	}
	var disk activities.ChooseRootDiskResult
	if err := workflow.ExecuteActivity(recordOptions(ctx), installer.ChooseRootDisk, activities.ChooseRootDiskInput{
		MachineID: w.machineID, Inventory: inv, Hint: w.in.RootDisk, Image: w.in.Image, Extra: extra,
	}).Get(ctx, &disk); err != nil {
		return err
	}
	w.res.RootDisk, w.res.Image = disk.Disk, disk.ImageID
	workflow.GetLogger(ctx).Info("root disk chosen", "machine_id", w.machineID, "disk", disk.Disk, "image", disk.ImageID)

	shellCtx := func(timeout time.Duration, attempts int32) workflow.Context {
		return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: timeout,
			HeartbeatTimeout:    shellHeartbeat,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: attempts,
			},
		})
	}
	var kept []activities.KeptPartition
	if len(w.in.Keep) > 0 {
		w.op.step(ctx, stepKeep, 0.27)
		if err := workflow.ExecuteActivity(shellCtx(5*time.Minute, 5), installer.KeepPartitions, activities.KeepPartitionsInput{
			MachineID: w.machineID, Ramdisk: ready, Disk: disk.Disk, Labels: w.in.Keep, ImageSize: disk.VirtualSize,
		}).Get(ctx, &kept); err != nil {
			return err
		}
	}

	w.op.step(ctx, stepWriteImage, 0.3)
	var wrote activities.WriteImageResult
	if err := workflow.ExecuteActivity(shellCtx(imageWriteTimeout, 10), imageActs.WriteImage, activities.WriteImageInput{
		OperationID: w.op.status.OperationID, MachineID: w.machineID, Ramdisk: ready, Image: disk.ImageID, Target: disk.Disk,
	}).Get(ctx, &wrote); err != nil {
		return err
	}
	w.res.BytesWritten, w.res.ResumedAt, w.res.Checksum = wrote.Written, wrote.ResumedAt, wrote.Checksum
	if wrote.ResumedAt > 0 {
		workflow.GetLogger(ctx).Info("image write resumed", "machine_id", w.machineID, "offset", wrote.ResumedAt)
	}

	w.op.step(ctx, stepConfigure, 0.82)
	var conf activities.ConfigureResult
	req := activities.ConfigureRequest{
		Disk: disk.Disk, Family: disk.Family, RootSizeBytes: w.in.RootSizeBytes, Partitions: w.in.Partitions,
		Kept: kept, OS: w.in.OS, InstanceID: w.op.status.OperationID,
	}
	if w.host != nil {
		if err := w.host.configure(ctx, w, ready, inv, &req); err != nil {
			return err
		}
	}
	if err := workflow.ExecuteActivity(shellCtx(configureTimeout, 5), installer.ConfigureOS, activities.ConfigureOSInput{
		MachineID: w.machineID, Ramdisk: ready, Request: req,
	}).Get(ctx, &conf); err != nil {
		return err
	}
	workflow.GetLogger(ctx).Info("OS configured", "machine_id", w.machineID, "family", conf.Family, "flavor", conf.Flavor,
		"root", conf.RootPartition, "root_size", conf.RootSizeBytes, "files", len(conf.Files))

	if err := w.bootOS(ctx, ready); err != nil {
		return err
	}
	probe := w.probeAddress()
	if probe != "" {
		w.op.step(ctx, stepWaitOS, 0.9)
		addr, err := w.waitOS(ctx, probe)
		if err != nil {
			return err
		}
		w.res.Address = addr
	}
	if w.host != nil {
		if err := w.host.waitAgent(ctx, w); err != nil {
			return err
		}
	}
	w.op.step(ctx, stepRecord, 0.95)
	if err := workflow.ExecuteActivity(recordOptions(ctx), installer.RecordInstall, activities.RecordInstallInput{
		MachineID: w.machineID,
		Record:    activities.InstallRecord{Image: disk.ImageID, RootDisk: disk.Disk, Hostname: w.in.OS.Hostname, Address: w.res.Address},
	}).Get(ctx, nil); err != nil || w.host == nil {
		return err
	}
	return w.host.record(ctx, w)
}

// bootOS makes the next boot go to the disk and reboots the machine: the
// boot intent is cleared (the boot service then answers a network boot
// with a local boot), the BMC's next boot device is the disk, and the BMC
// resets the machine; without a BMC the ramdisk reboots it.
func (w *installWorkflow) bootOS(ctx workflow.Context, ready contract.RamdiskReady) error {
	w.op.step(ctx, stepBootDisk, 0.85)
	if err := workflow.ExecuteActivity(recordOptions(ctx), registration.FinishRamdisk, activities.FinishRamdiskInput{
		MachineID: w.machineID, State: contract.MachineDeploying,
	}).Get(ctx, nil); err != nil {
		return err
	}
	w.op.step(ctx, stepReboot, 0.87)
	w.rebooted = true
	if !w.hasBMC {
		return workflow.ExecuteActivity(recordOptions(ctx), installer.RebootRamdisk, activities.RamdiskInput{
			MachineID: w.machineID, Ramdisk: ready,
		}).Get(ctx, nil)
	}
	// With no boot intent the boot service answers a network boot with a
	// local boot: the disk boots all the same.
	if err := w.setNextBoot(ctx, contract.BootDisk, "the boot service sends the network boot to the disk"); err != nil {
		return err
	}
	return w.reset(ctx)
}

// probeAddress is the address the installed OS is probed at: the one the
// request gives, else the first static address of its network settings;
// empty when the probe is skipped or no address is known (DHCP only).
func (w *installWorkflow) probeAddress() string {
	if w.in.Probe.Skip {
		return ""
	}
	if w.in.Probe.Address != "" {
		return w.in.Probe.Address
	}
	n := w.in.OS.Network
	var all [][]string
	for _, i := range n.Interfaces {
		all = append(all, i.Addresses)
	}
	for _, b := range n.Bonds {
		all = append(all, b.Addresses)
	}
	for _, v := range n.VLANs {
		all = append(all, v.Addresses)
	}
	for _, addrs := range all {
		for _, a := range addrs {
			// The API checked the addresses; netip would make the
			// workflow non-deterministic (it interns zones).
			if addr, _, _ := strings.Cut(a, "/"); addr != "" {
				return addr
			}
		}
	}
	return ""
}

// waitOS probes the OS in slices of osProbeSlice until OSTimeout.
func (w *installWorkflow) waitOS(ctx workflow.Context, addr string) (string, error) {
	deadline := workflow.Now(ctx).Add(w.in.OSTimeout)
	for {
		slice := min(osProbeSlice, deadline.Sub(workflow.Now(ctx)))
		if slice < time.Second {
			slice = time.Second
		}
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: slice + time.Minute,
			HeartbeatTimeout:    waitHeartbeat,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
		})
		var got string
		err := workflow.ExecuteActivity(actx, installer.WaitOS, activities.WaitOSInput{
			MachineID: w.machineID, Address: addr, Port: w.in.Probe.Port, For: slice,
		}).Get(ctx, &got)
		if err == nil {
			return got, nil
		}
		if !workflow.Now(ctx).Before(deadline) || ctx.Err() != nil {
			return "", err
		}
	}
}
