package workflows

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/activities"
	"bareflow/contract"
)

// Host steps, besides those of Install and Wipe.
const (
	stepHostLayout = "host_layout"
	stepWaitAgent  = "waiting_for_host_agent"
	stepRecordHost = "record_host"
	stepClaimHost  = "claim_host"
	stepRemoveHost = "remove_host"
)

// hostLayoutTimeout bounds the read of the written disk's table.
const hostLayoutTimeout = 5 * time.Minute

// agentProbePause is the pause between two probes of the host agent.
const agentProbePause = 5 * time.Second

const mib = 1 << 20

var hostActs *activities.Hosts

// ConvertToHost makes a machine a hypervisor host: it is the Install
// workflow (same steps, on the machine's workflow ID) with the host disk
// layout (a root of a fixed size, the rest of the disk one workspace
// partition) and the host configuration (host.conf for the host agent, the
// KVM modules), then it waits for the host agent to answer on its port and
// records the machine as a host with its capacity.
func ConvertToHost(ctx workflow.Context, in contract.ConvertHostInput) (contract.ConvertHostResult, error) {
	in.Host = in.Host.WithDefaults()
	if in.AgentTimeout <= 0 {
		in.AgentTimeout = contract.DefaultAgentTimeout
	}
	h := &hostConversion{in: in}
	w := &installWorkflow{in: in.Install, host: h}
	if err := h.validate(w); err != nil {
		return contract.ConvertHostResult{}, err
	}
	if err := w.setup(ctx); err != nil {
		return contract.ConvertHostResult{}, err
	}
	res, err := w.run(ctx)
	return contract.ConvertHostResult{Install: res, Host: h.capacity}, err
}

// hostConversion is what ConvertToHost adds to an install.
type hostConversion struct {
	in       contract.ConvertHostInput
	inv      contract.Inventory
	capacity contract.HostCapacity
}

func (h *hostConversion) validate(w *installWorkflow) error {
	invalid := func(msg string) error {
		return temporal.NewNonRetryableApplicationError(msg, contract.ErrInvalidInput, nil)
	}
	hs := h.in.Host
	switch {
	case h.in.Install.Reinstall || len(h.in.Install.Keep) > 0:
		return invalid("a host conversion is a fresh install: it keeps no partitions")
	case hs.AgentPort < 1 || hs.AgentPort > 65535:
		return invalid("the agent port must be from 1 to 65535")
	case hs.WorkspaceFS != "xfs" && hs.WorkspaceFS != "ext4":
		return invalid("the workspace filesystem must be xfs or ext4")
	case !strings.HasPrefix(hs.WorkspacePath, "/") || hs.WorkspacePath == "/" || strings.ContainsAny(hs.WorkspacePath, " \t\n\"'\\$`"):
		return invalid("the workspace path must be an absolute path other than /, without spaces or quotes")
	case strings.ContainsAny(hs.ControllerURL+h.in.MachineName, " \t\r\n\"'\\$`"):
		return invalid("the controller URL and machine name must not hold spaces or quotes")
	case w.probeAddress() == "":
		return invalid("a host conversion needs the address its agent is probed at: a static address or probe.address")
	}
	for _, p := range h.in.Install.Partitions {
		if p.Label == contract.WorkspaceLabel {
			return invalid("the partition label " + contract.WorkspaceLabel + " is the host's workspace")
		}
	}
	return nil
}

// configure sizes the host layout on the written disk and adds the
// workspace partition and the host's files to the configuration request.
func (h *hostConversion) configure(ctx workflow.Context, w *installWorkflow, ready contract.RamdiskReady, inv contract.Inventory,
	req *activities.ConfigureRequest) error {
	h.inv = inv
	w.op.step(ctx, stepHostLayout, 0.8)
	var reserved int64
	for _, p := range req.Partitions {
		reserved += (p.SizeBytes + mib - 1) / mib * mib
	}
	lctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: hostLayoutTimeout,
		HeartbeatTimeout:    shellHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5,
		},
	})
	var plan activities.HostLayoutPlan
	if err := workflow.ExecuteActivity(lctx, hostActs.PlanHostLayout, activities.PlanHostLayoutInput{
		MachineID: w.machineID, Ramdisk: ready, Disk: req.Disk, RootSizeBytes: req.RootSizeBytes, ReservedBytes: reserved,
	}).Get(ctx, &plan); err != nil {
		return err
	}
	hs := h.in.Host
	req.RootSizeBytes = plan.RootSizeBytes
	req.Partitions = append(slices.Clone(req.Partitions), contract.PartitionSpec{
		Label: contract.WorkspaceLabel, SizeBytes: plan.WorkspaceSizeBytes, Filesystem: hs.WorkspaceFS, MountPoint: hs.WorkspacePath,
	})
	req.OS.Files = append(slices.Clone(req.OS.Files), hostFiles(w.machineID, h.in.MachineName, hs, inv.CPU.Vendor)...)
	h.capacity = contract.HostCapacity{
		CPUs: inv.CPU.Threads, MemoryBytes: inv.Memory.TotalBytes, StorageBytes: plan.WorkspaceSizeBytes, WorkspacePath: hs.WorkspacePath,
	}
	if h.capacity.MemoryBytes <= 0 {
		h.capacity.MemoryBytes = inv.Memory.UsableBytes
	}
	workflow.GetLogger(ctx).Info("host layout planned", "machine_id", w.machineID, "root_size", plan.RootSizeBytes,
		"workspace_size", plan.WorkspaceSizeBytes)
	return nil
}

// hostFiles are the files a conversion writes into the OS: the host agent's
// configuration (the host image starts its agent when it exists) and the
// KVM modules for the CPU's vendor (both when it is not known).
func hostFiles(machineID, name string, hs contract.HostSettings, cpuVendor string) []contract.FileSpec {
	conf := "# bareflow hypervisor host, written by bareflow's ConvertToHost.\n" +
		"# The host agent starts when this file exists.\n" +
		"BAREFLOW_MACHINE_ID=" + machineID + "\n" +
		"BAREFLOW_MACHINE_NAME=" + name + "\n" +
		"BAREFLOW_CONTROLLER_URL=" + hs.ControllerURL + "\n" +
		"BAREFLOW_AGENT_PORT=" + strconv.Itoa(hs.AgentPort) + "\n" +
		"BAREFLOW_WORKSPACE=" + hs.WorkspacePath + "\n"
	mods := "# KVM for bareflow's hypervisor host.\nkvm\n"
	switch v := strings.ToLower(cpuVendor); {
	case strings.Contains(v, "intel"):
		mods += "kvm_intel\n"
	case strings.Contains(v, "amd"):
		mods += "kvm_amd\n"
	default:
		mods += "kvm_intel\nkvm_amd\n"
	}
	mods += "vhost_net\n"
	return []contract.FileSpec{
		{Path: contract.HostConfPath, Content: conf, Mode: "0644"},
		{Path: contract.HostModulesPath, Content: mods, Mode: "0644"},
	}
}

// waitAgent probes the host agent's port at the OS's address until
// AgentTimeout, in slices like the OS probe.
func (h *hostConversion) waitAgent(ctx workflow.Context, w *installWorkflow) error {
	w.op.step(ctx, stepWaitAgent, 0.92)
	addr, port := w.probeAddress(), h.in.Host.AgentPort
	host := addr
	if strings.Contains(addr, ":") {
		host = "[" + addr + "]"
	}
	h.capacity.AgentURL = "http://" + host + ":" + strconv.Itoa(port)
	deadline := workflow.Now(ctx).Add(h.in.AgentTimeout)
	for {
		slice := max(min(osProbeSlice, deadline.Sub(workflow.Now(ctx))), time.Second)
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: slice + time.Minute,
			HeartbeatTimeout:    waitHeartbeat,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
		})
		err := workflow.ExecuteActivity(actx, installer.WaitOS, activities.WaitOSInput{
			MachineID: w.machineID, Address: addr, Port: port, For: slice,
		}).Get(ctx, nil)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if !workflow.Now(ctx).Before(deadline) {
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) && appErr.Type() == contract.ErrOSNotUp {
				return temporal.NewNonRetryableApplicationError("the host agent did not answer at "+h.capacity.AgentURL+
					" within "+h.in.AgentTimeout.String()+" (check that the image carries the agent and starts it when "+
					contract.HostConfPath+" exists)", contract.ErrHostAgentNotUp, err)
			}
			return err
		}
		// A probe that failed early (the OS refused the connection at
		// once, say) is not retried in a tight loop.
		if err := workflow.Sleep(ctx, agentProbePause); err != nil {
			return err
		}
	}
}

// record records the machine as a host with its capacity.
func (h *hostConversion) record(ctx workflow.Context, w *installWorkflow) error {
	w.op.step(ctx, stepRecordHost, 0.96)
	return workflow.ExecuteActivity(recordOptions(ctx), hostActs.RecordHost, activities.RecordHostInput{
		MachineID: w.machineID, Capacity: h.capacity,
	}).Get(ctx, nil)
}

// UndoHost turns a hypervisor host without guests back into a blank ready
// machine: it claims the host (refused while it has guests, so that the
// guest controller cannot add one meanwhile), runs the Wipe workflow's
// steps as itself, on the machine's workflow ID, and removes the host
// record at the end. A refused claim leaves the machine as it was; a failed
// wipe leaves the host record, claimed, for another undo.
func UndoHost(ctx workflow.Context, in contract.UndoHostInput) (contract.WipeResult, error) {
	wi := in.Wipe
	if wi.MachineID == "" {
		return contract.WipeResult{}, temporal.NewNonRetryableApplicationError("machine ID is required", contract.ErrInvalidInput, nil)
	}
	if err := wi.Erase.Validate(); err != nil {
		return contract.WipeResult{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrInvalidInput, nil)
	}
	if wi.EraseTimeout <= 0 {
		wi.EraseTimeout = contract.DefaultEraseTimeout
	}
	op, err := newOperation(ctx, wi.OperationID, wi.MachineID, contract.OperationUndoHost, wi.RequestedBy)
	w := &wipeWorkflow{in: wi, ramdiskFlow: newRamdiskFlow(wi.MachineID, op, wi.RamdiskTimeout, false),
		res: contract.WipeResult{MachineID: wi.MachineID}}
	if err != nil {
		return w.res, err
	}
	err = w.op.begin(ctx)
	if err == nil {
		w.op.step(ctx, stepClaimHost, 0.01)
		err = workflow.ExecuteActivity(recordOptions(ctx), hostActs.ClaimHostUndo, activities.HostInput{MachineID: wi.MachineID}).Get(ctx, nil)
	}
	if err != nil {
		return w.res, w.op.finish(ctx, err, "")
	}
	err = resetIntoRamdisk(ctx, w.ramdiskFlow)
	if err == nil {
		err = w.act(ctx)
	}
	if err == nil {
		w.op.step(ctx, stepRemoveHost, 0.93)
		err = workflow.ExecuteActivity(recordOptions(ctx), hostActs.RemoveHost, activities.HostInput{MachineID: wi.MachineID}).Get(ctx, nil)
	}
	state := contract.MachineReady
	if err != nil {
		state = contract.MachineError
	}
	w.finishMachine(ctx, state, err != nil)
	power := w.power
	if power == contract.PowerUnknown {
		power = ""
	}
	return w.res, w.op.finish(ctx, err, power)
}

// resetIntoRamdisk gets a running host into the ramdisk with a BMC reset
// rather than a power cycle: the host is on, and a reset works on BMCs that
// cannot power a machine on. A BMC that cannot set the next boot device is
// tolerated, as when an install boots the disk: with the boot intent set the
// boot service answers the host's network boot with the ramdisk (the host
// must network-boot first). Without a BMC someone resets the host. The
// wipe's own ensureRamdisk then finds the host in its ramdisk.
func resetIntoRamdisk(ctx workflow.Context, w *ramdiskFlow) error {
	if err := w.prepare(ctx, contract.MachineWiping); err != nil {
		return err
	}
	if _, ok := w.stillInRamdisk(ctx); ok {
		return nil
	}
	if !w.hasBMC {
		w.op.step(ctx, stepWaitPowerOn, 0.05)
		_, err := w.waitRamdisk(ctx)
		return err
	}
	w.op.step(ctx, stepBootRamdisk, 0.05)
	if err := w.setNextBoot(ctx, contract.BootPXE, "the host must network-boot first"); err != nil {
		return err
	}
	if err := w.reset(ctx); err != nil {
		return err
	}
	_, err := w.waitRamdisk(ctx)
	return err
}
