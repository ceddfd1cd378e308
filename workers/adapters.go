package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"bareflow/activities"
	"bareflow/contract"
	"bareflow/internal/bmc"
	"bareflow/internal/store"
)

// recordKeeper implements activities.RecordKeeper on the store, translating
// its errors into the activities' sentinels.
type recordKeeper struct{ st *store.Store }

func storeErr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %w", activities.ErrNotFound, err)
	}
	return err
}

func (k *recordKeeper) UpsertOperation(ctx context.Context, op activities.OperationRecord) error {
	return storeErr(k.st.UpsertOperation(ctx, store.Operation{
		ID: op.ID, MachineID: op.MachineID, Kind: op.Kind, WorkflowID: op.WorkflowID, RunID: op.RunID,
		State: op.State, Step: op.Step, Progress: op.Progress, ErrorCode: op.ErrorCode, Error: op.Error,
		RequestedBy: op.RequestedBy, StartedAt: op.StartedAt,
	}))
}

func (k *recordKeeper) UpdateOperation(ctx context.Context, id string, ch activities.OperationChange) error {
	return storeErr(k.st.UpdateOperation(ctx, id, store.OperationUpdate{
		State: ch.State, Step: ch.Step, Progress: ch.Progress, ErrorCode: ch.ErrorCode, Error: ch.Error,
	}))
}

func (k *recordKeeper) SetPowerState(ctx context.Context, machineID string, s contract.PowerState, at time.Time) error {
	return storeErr(k.st.SetPowerState(ctx, machineID, s, at))
}

func (k *recordKeeper) SetMachineError(ctx context.Context, machineID, code, msg string) error {
	return storeErr(k.st.SetMachineError(ctx, machineID, code, msg))
}

func (k *recordKeeper) ClearMachineError(ctx context.Context, machineID string) error {
	return storeErr(k.st.ClearMachineError(ctx, machineID))
}

func (k *recordKeeper) MachinesWithBMC(ctx context.Context) ([]string, error) {
	refs, err := k.st.ListMachinesWithBMC(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	return ids, nil
}

func (k *recordKeeper) MachineExists(ctx context.Context, machineID string) error {
	_, err := k.st.GetMachine(ctx, machineID)
	return storeErr(err)
}

// bmcConnector implements activities.BMCConnector: it reads the machine's
// BMC address and credentials from the store and opens a go-ipmi session.
type bmcConnector struct {
	st  *store.Store
	cfg bmc.Config
}

func (b *bmcConnector) Connect(ctx context.Context, machineID string) (activities.BMCSession, error) {
	cred, err := b.st.BMCCredentials(ctx, machineID)
	switch {
	case errors.Is(err, store.ErrNoBMC):
		return nil, fmt.Errorf("%w: %w", activities.ErrNoBMC, err)
	case err != nil:
		return nil, storeErr(err)
	}
	c, err := bmc.Dial(ctx, bmc.Target{Addr: cred.Addr, Username: cred.User, Password: cred.Password, CipherSuite: cred.CipherSuite}, b.cfg)
	if err != nil {
		return nil, bmcErr(err)
	}
	return &bmcSession{c: c}, nil
}

// bmcErr wraps a bmc error with the matching activities sentinel.
func bmcErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bmc.ErrAuth):
		return fmt.Errorf("%w: %w", activities.ErrBMCAuth, err)
	case errors.Is(err, bmc.ErrUnreachable):
		return fmt.Errorf("%w: %w", activities.ErrBMCUnreachable, err)
	case errors.Is(err, bmc.ErrUnsupported):
		return fmt.Errorf("%w: %w", activities.ErrBMCUnsupported, err)
	case errors.Is(err, bmc.ErrInvalidTarget):
		return fmt.Errorf("%w: %w", activities.ErrNoBMC, err)
	}
	return err
}

type bmcSession struct{ c *bmc.Client }

func (s *bmcSession) PowerState(ctx context.Context) (contract.PowerState, error) {
	st, err := s.c.PowerState(ctx)
	return st, bmcErr(err)
}

func (s *bmcSession) Power(ctx context.Context, op activities.PowerOp) error {
	switch op {
	case activities.OpOn:
		return bmcErr(s.c.PowerOn(ctx))
	case activities.OpSoftOff:
		return bmcErr(s.c.PowerOffSoft(ctx))
	case activities.OpHardOff:
		return bmcErr(s.c.PowerOffHard(ctx))
	case activities.OpReset:
		return bmcErr(s.c.Reset(ctx))
	}
	return fmt.Errorf("unknown power command %q", op)
}

func (s *bmcSession) SetBootDevice(ctx context.Context, o activities.BootOverride) error {
	return bmcErr(s.c.SetBootDevice(ctx, o.Device, o.Mode, o.Persistent))
}

func (s *bmcSession) BootDevice(ctx context.Context) (activities.BootOverride, error) {
	o, err := s.c.BootDevice(ctx)
	if err != nil {
		return activities.BootOverride{}, bmcErr(err)
	}
	return activities.BootOverride{Device: o.Device, Mode: o.Mode, Persistent: o.Persistent, Valid: o.Valid}, nil
}

func (s *bmcSession) Close(ctx context.Context) error { return s.c.Close(ctx) }
