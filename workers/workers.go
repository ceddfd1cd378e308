// Package workers registers bareflow's workflows and activities on a Temporal
// worker, under the stable names of package contract, and wires the
// activities to their adapters: go-ipmi for BMCs, PostgreSQL for records.
package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/crypto/ssh"

	"bareflow/activities"
	"bareflow/contract"
	"bareflow/internal/bmc"
	"bareflow/internal/store"
	"bareflow/workflows"
)

// Config configures the activities a worker runs.
type Config struct {
	// BMC configures each BMC exchange (timeout, quick retransmits).
	BMC bmc.Config
	// PowerPollInterval is how often a power change is checked. Zero means 2s.
	PowerPollInterval time.Duration
	// SSHSigner is bareflow's SSH key (SSHKey), for ramdisk sessions.
	SSHSigner ssh.Signer
	// RamdiskPollInterval is how often a waiting operation looks for a
	// phone-home record. Zero means 5s.
	RamdiskPollInterval time.Duration
	// BMCAddrWait bounds how long a BMC set to DHCP may take to get an
	// address. Zero means 2 minutes.
	BMCAddrWait time.Duration
	Logger      *slog.Logger
}

// Register adds every workflow and activity to r.
func Register(r worker.Registry, st *store.Store, cfg Config) {
	for _, wf := range []struct {
		fn   any
		name string
	}{
		{workflows.Power, contract.WorkflowPower},
		{workflows.SetBootDevice, contract.WorkflowSetBootDevice},
		{workflows.PowerSync, contract.WorkflowPowerSync},
		{workflows.PowerStatus, contract.WorkflowPowerStatus},
		{workflows.Register, contract.WorkflowRegister},
		{workflows.MakeRAID, contract.WorkflowMakeRAID},
		{workflows.Install, contract.WorkflowInstall},
		{workflows.Wipe, contract.WorkflowWipe},
		{workflows.Adopt, contract.WorkflowAdopt},
		{workflows.Fleet, contract.WorkflowFleet},
		{workflows.ConvertToHost, contract.WorkflowConvertToHost},
		{workflows.UndoHost, contract.WorkflowUndoHost},
	} {
		r.RegisterWorkflowWithOptions(wf.fn, workflow.RegisterOptions{Name: wf.name})
	}
	keeper := &recordKeeper{st: st}
	r.RegisterActivity(&activities.Records{Keeper: keeper})
	connector := &bmcConnector{st: st, cfg: cfg.BMC}
	r.RegisterActivity(&activities.BMC{
		Connector:    connector,
		PollInterval: cfg.PowerPollInterval,
		Records:      keeper,
	})
	dialer := &ramdiskDialer{signer: cfg.SSHSigner}
	r.RegisterActivity(&activities.RAID{Builder: raidBuilder{}, Dialer: dialer, Keeper: raidKeeper{st: st}})
	r.RegisterActivity(&activities.Images{Keeper: imageKeeper{st: st}, Dialer: dialer, Progress: imageProgress(st)})
	r.RegisterActivity(&activities.Installer{Dialer: dialer, Keeper: installKeeper{st: st}, Images: imageKeeper{st: st}, Installer: osInstaller{}})
	r.RegisterActivity(&activities.Wiper{Dialer: dialer, Wiper: diskWiper{}, Keeper: wipeKeeper{st: st}, Install: installKeeper{st: st}})
	r.RegisterActivity(&activities.Registration{
		Keeper:       &registrationKeeper{st: st},
		Dialer:       dialer,
		Pending:      connector,
		Collector:    inventoryCollector{},
		Configurer:   bmcConfigurer{},
		PollInterval: cfg.RamdiskPollInterval,
		BMCAddrWait:  cfg.BMCAddrWait,
	})
	r.RegisterActivity(newAdoption(st, cfg))
	r.RegisterActivity(newHosts(st, dialer))
}

// New returns a worker on taskQueue with everything registered.
func New(c client.Client, taskQueue string, st *store.Store, cfg Config) worker.Worker {
	w := worker.New(c, taskQueue, worker.Options{})
	Register(w, st, cfg)
	return w
}

// EnsurePowerSyncSchedule creates the schedule that refreshes the fleet's
// power state every interval, or updates its interval when it exists. Runs
// that would overlap a running one are skipped.
func EnsurePowerSyncSchedule(ctx context.Context, c client.Client, taskQueue string, every time.Duration) error {
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   contract.PowerSyncScheduleID,
		Spec: spec,
		Action: &client.ScheduleWorkflowAction{
			ID:        contract.PowerSyncScheduleID,
			Workflow:  contract.WorkflowPowerSync,
			Args:      []any{contract.PowerSyncInput{}},
			TaskQueue: taskQueue,
			// A sync that fails is simply done again at the next interval.
			RetryPolicy:              &temporal.RetryPolicy{MaximumAttempts: 1},
			WorkflowExecutionTimeout: every * 4,
		},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	})
	var exists *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, temporal.ErrScheduleAlreadyRunning) && !errors.As(err, &exists):
		return fmt.Errorf("create power sync schedule: %w", err)
	}
	// The schedule exists: keep it, with this interval.
	h := c.ScheduleClient().GetHandle(ctx, contract.PowerSyncScheduleID)
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &spec
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return fmt.Errorf("update power sync schedule: %w", err)
	}
	return nil
}
