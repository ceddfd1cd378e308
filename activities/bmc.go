package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

// PowerOp is one command sent to a chassis.
type PowerOp string

// Power commands.
const (
	OpOn      PowerOp = "on"
	OpSoftOff PowerOp = "soft_off"
	OpHardOff PowerOp = "hard_off"
	OpReset   PowerOp = "reset"
)

// BootOverride is a boot device override as a BMC holds it.
type BootOverride struct {
	Device     contract.BootDevice
	Mode       contract.BootMode
	Persistent bool
	// Valid is false when the BMC reports no override in effect.
	Valid bool
}

// BMCSession is an open session with one machine's BMC.
type BMCSession interface {
	PowerController
	BootDeviceController
	Close(ctx context.Context) error
}

// PowerController reads and changes the chassis power.
type PowerController interface {
	PowerState(ctx context.Context) (contract.PowerState, error)
	Power(ctx context.Context, op PowerOp) error
}

// BootDeviceController sets and reads the next boot device.
type BootDeviceController interface {
	SetBootDevice(ctx context.Context, o BootOverride) error
	BootDevice(ctx context.Context) (BootOverride, error)
}

// BMCConnector opens a session with the BMC of a machine, looking up its
// address and credentials itself so that no password ever enters a workflow
// history. It wraps ErrNoBMC, ErrNotFound, ErrBMCAuth and ErrBMCUnreachable.
type BMCConnector interface {
	Connect(ctx context.Context, machineID string) (BMCSession, error)
}

// BMC holds the activities that talk to baseboard management controllers.
type BMC struct {
	Connector BMCConnector
	// PollInterval is how often WaitPowerState asks the BMC. Zero means 2s.
	PollInterval time.Duration
	// Records, when set, receives each power state observed by SyncPower.
	Records PowerRecorder
}

// PowerRecorder keeps the last power state seen of a machine.
type PowerRecorder interface {
	SetPowerState(ctx context.Context, machineID string, s contract.PowerState, at time.Time) error
}

// MachineInput names the machine an activity acts on.
type MachineInput struct {
	MachineID string
}

// PowerStateResult is the power state a BMC reported.
type PowerStateResult struct {
	State contract.PowerState
	At    time.Time
}

// SetPowerInput asks for one power command.
type SetPowerInput struct {
	MachineID string
	Op        PowerOp
}

// SetPowerResult says what SetPower did.
type SetPowerResult struct {
	// Skipped is true when the chassis was already in the wanted state.
	Skipped bool
	Before  contract.PowerState
}

// WaitPowerStateInput asks WaitPowerState to wait for a power state.
type WaitPowerStateInput struct {
	MachineID string
	Want      contract.PowerState
	Timeout   time.Duration
	// Quiet makes a timeout an ordinary result instead of an error, for a
	// caller that has a plan B (a soft off followed by a hard off).
	Quiet bool
}

// WaitPowerStateResult is what WaitPowerState observed last.
type WaitPowerStateResult struct {
	State   contract.PowerState
	Reached bool
	Polls   int
}

// SetBootDeviceInput asks for a boot device override.
type SetBootDeviceInput struct {
	MachineID  string
	Device     contract.BootDevice
	Mode       contract.BootMode
	Persistent bool
}

// SetBootDeviceResult is the override the BMC reported after the change.
type SetBootDeviceResult struct {
	Reported BootOverride
	// Verified is true when the BMC reported back the device that was set.
	Verified bool
}

func (a *BMC) connect(ctx context.Context, machineID string) (BMCSession, error) {
	s, err := a.Connector.Connect(ctx, machineID)
	if err != nil {
		return nil, bmcError("connect to BMC of machine "+machineID, err)
	}
	return s, nil
}

func closeSession(ctx context.Context, s BMCSession) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.Close(cctx)
}

// PowerState reads the chassis power state.
//
// Idempotent: it only reads. No heartbeat: one short exchange.
func (a *BMC) PowerState(ctx context.Context, in MachineInput) (PowerStateResult, error) {
	s, err := a.connect(ctx, in.MachineID)
	if err != nil {
		return PowerStateResult{}, err
	}
	defer closeSession(ctx, s)
	st, err := s.PowerState(ctx)
	if err != nil {
		return PowerStateResult{}, bmcError("read power state", err)
	}
	return PowerStateResult{State: st, At: time.Now().UTC()}, nil
}

// SetPower sends one power command.
//
// Idempotent by check-then-act: "on" and the two "off" commands read the power
// state first and do nothing when the chassis is already there, so a retry
// after a lost result sends nothing twice. "reset" cannot be checked and may
// be sent again on a retry; a second warm reset is harmless for a machine
// that is being reset. It does not verify: the workflow follows it with
// WaitPowerState. No heartbeat: two short exchanges.
func (a *BMC) SetPower(ctx context.Context, in SetPowerInput) (SetPowerResult, error) {
	s, err := a.connect(ctx, in.MachineID)
	if err != nil {
		return SetPowerResult{}, err
	}
	defer closeSession(ctx, s)
	before, err := s.PowerState(ctx)
	if err != nil {
		return SetPowerResult{}, bmcError("read power state", err)
	}
	res := SetPowerResult{Before: before}
	switch in.Op {
	case OpOn:
		res.Skipped = before == contract.PowerOn
	case OpSoftOff, OpHardOff:
		res.Skipped = before == contract.PowerOff
	case OpReset:
		if before != contract.PowerOn {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("cannot reset machine %s: its chassis is %s", in.MachineID, before), contract.ErrInvalidInput, nil)
		}
	default:
		return res, temporal.NewNonRetryableApplicationError("unknown power command "+string(in.Op), contract.ErrInvalidInput, nil)
	}
	if res.Skipped {
		activity.GetLogger(ctx).Info("chassis already in the wanted state", "machine_id", in.MachineID, "op", string(in.Op), "power", string(before))
		return res, nil
	}
	if err := s.Power(ctx, in.Op); err != nil {
		return res, bmcError("power "+string(in.Op), err)
	}
	return res, nil
}

// WaitPowerState polls the BMC until it reports the wanted power state or the
// timeout passes: a power change counts only once the BMC says so.
//
// Idempotent: it only reads. Heartbeats every poll with the last state seen;
// a BMC that stops answering for a while is polled again until the deadline.
func (a *BMC) WaitPowerState(ctx context.Context, in WaitPowerStateInput) (WaitPowerStateResult, error) {
	interval := a.PollInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	deadline := time.Now().Add(in.Timeout)
	var res WaitPowerStateResult
	var lastErr error
	for {
		res.Polls++
		st, err := a.pollOnce(ctx, in.MachineID)
		switch {
		case err == nil:
			res.State, lastErr = st, nil
			if st == in.Want {
				res.Reached = true
				return res, nil
			}
		case errors.Is(err, ErrBMCAuth), errors.Is(err, ErrNoBMC), errors.Is(err, ErrNotFound):
			return res, bmcError("read power state", err)
		default:
			lastErr = err
		}
		activity.RecordHeartbeat(ctx, res)
		if time.Now().Add(interval).After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(interval):
		}
	}
	if in.Quiet {
		return res, nil
	}
	if lastErr != nil {
		return res, bmcError(fmt.Sprintf("wait for power %s", in.Want), lastErr)
	}
	return res, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("machine %s still reports power %s after %s; wanted %s", in.MachineID, res.State, in.Timeout, in.Want),
		contract.ErrPowerStateTimeout, nil)
}

func (a *BMC) pollOnce(ctx context.Context, machineID string) (contract.PowerState, error) {
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := a.Connector.Connect(pctx, machineID)
	if err != nil {
		return "", err
	}
	defer closeSession(pctx, s)
	return s.PowerState(pctx)
}

// SetBootDevice sets the next boot device, then reads the boot flags back.
//
// Idempotent: setting the same override twice leaves the same flags. No
// heartbeat: three short exchanges. Verified is false, not an error, when the
// BMC accepts the override but reports other flags back (some BMCs clear the
// valid bit or drop the EFI bit on read); the workflow decides what that means.
func (a *BMC) SetBootDevice(ctx context.Context, in SetBootDeviceInput) (SetBootDeviceResult, error) {
	s, err := a.connect(ctx, in.MachineID)
	if err != nil {
		return SetBootDeviceResult{}, err
	}
	defer closeSession(ctx, s)
	want := BootOverride{Device: in.Device, Mode: in.Mode, Persistent: in.Persistent, Valid: in.Device != contract.BootNone}
	if err := s.SetBootDevice(ctx, want); err != nil {
		return SetBootDeviceResult{}, bmcError(fmt.Sprintf("set boot device %s", in.Device), err)
	}
	got, err := s.BootDevice(ctx)
	if err != nil {
		return SetBootDeviceResult{}, bmcError("read boot device back", err)
	}
	verified := got.Device == in.Device
	if in.Device == contract.BootNone {
		verified = !got.Valid || got.Device == contract.BootNone
	}
	return SetBootDeviceResult{Reported: got, Verified: verified}, nil
}

// SyncPowerInput asks SyncPower to refresh the power state of some machines.
type SyncPowerInput struct {
	MachineIDs  []string
	Concurrency int
}

// SyncPowerResult counts what SyncPower saw.
type SyncPowerResult struct {
	Asked    int
	Recorded int
	Failed   int
	// Errors holds one line per machine that could not be read, bounded.
	Errors []string
}

const maxSyncErrors = 20

// SyncPower reads the power state of each machine, at most Concurrency BMCs
// at a time, and records what it read. A BMC that does not answer is counted
// and skipped: one dead BMC must not hold up the fleet.
//
// Idempotent: it reads BMCs and overwrites the last observed state. Heartbeats
// with the count done.
func (a *BMC) SyncPower(ctx context.Context, in SyncPowerInput) (SyncPowerResult, error) {
	conc := in.Concurrency
	if conc <= 0 {
		conc = contract.DefaultPowerSyncConcurrency
	}
	var (
		mu  sync.Mutex
		res = SyncPowerResult{Asked: len(in.MachineIDs)}
		sem = make(chan struct{}, conc)
		wg  sync.WaitGroup
	)
	for _, id := range in.MachineIDs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return res, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, err := a.pollOnce(ctx, id)
			if err == nil && a.Records != nil {
				err = a.Records.SetPowerState(ctx, id, st, time.Now().UTC())
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				if len(res.Errors) < maxSyncErrors {
					res.Errors = append(res.Errors, fmt.Sprintf("machine %s: %v", id, err))
				}
				return
			}
			res.Recorded++
			activity.RecordHeartbeat(ctx, res.Recorded+res.Failed)
		}()
	}
	wg.Wait()
	return res, nil
}
