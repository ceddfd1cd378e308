package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

// EraseState is the state of one disk's erase, as the detached job in the
// ramdisk reports it.
type EraseState struct {
	Disk    string  `json:"disk"`
	Method  string  `json:"method"`
	Percent float64 `json:"percent"`
	Done    bool    `json:"done"`
	Error   string  `json:"error,omitempty"`
	// Running is false when no job runs for the disk (finished, failed, or
	// never started).
	Running bool `json:"running"`
}

// DiskWiper removes what a machine's disks hold, through a ramdisk shell.
// Errors wrap ErrWipePermanent when retrying cannot help (a signature that
// survives, an erase method the disk does not support).
type DiskWiper interface {
	// ClearRAID tears down every RAID configuration the machine's
	// controllers and Linux md hold.
	ClearRAID(ctx context.Context, sh RamdiskShell, inv contract.Inventory, beat func(string)) error
	// Wipe stops md arrays on the disks, removes partition tables and
	// filesystem signatures, and checks nothing is left.
	Wipe(ctx context.Context, sh RamdiskShell, disks []string, beat func(string)) error
	// StartErase starts (or finds running, or finished) the detached erase
	// of disk for request (the operation) and returns the method it uses.
	StartErase(ctx context.Context, sh RamdiskShell, disk string, method contract.EraseMethod, request string) (string, error)
	// EraseStatus reads the erase's state; a job that died unfinished is
	// started again where it stopped.
	EraseStatus(ctx context.Context, sh RamdiskShell, disk string) (EraseState, error)
}

// ErrWipePermanent marks a wipe that cannot succeed as asked.
var ErrWipePermanent = errors.New("the wipe cannot be done as asked")

// WipeKeeper forgets what a wipe removes.
type WipeKeeper interface {
	// ClearRAID forgets the machine's recorded volumes and root device.
	ClearRAID(ctx context.Context, machineID string) error
	// ReleaseMachineLeases gives back the machine's addresses on OS
	// networks and returns how many.
	ReleaseMachineLeases(ctx context.Context, machineID string) (int, error)
}

// Wiper holds the activities of the Wipe workflow.
type Wiper struct {
	Dialer  RamdiskDialer
	Wiper   DiskWiper
	Keeper  WipeKeeper
	Install InstallKeeper
	// PollEvery is how often EraseDisks reads the erase jobs' state; zero
	// means 5s.
	PollEvery time.Duration
}

// WipeDisksInput wipes a machine's disks.
type WipeDisksInput struct {
	MachineID string
	Ramdisk   contract.RamdiskReady
	Inventory contract.Inventory
	// ClearRAID tears the RAID configuration down after the signatures are
	// gone.
	ClearRAID bool
}

// WipeDisksResult lists the disks wiped.
type WipeDisksResult struct {
	Disks []string
}

// WipeDisks removes partition tables and signatures from every disk of the
// inventory (md arrays stopped first), and then, when asked, tears the RAID
// configuration down.
//
// Idempotent: a blank disk is wiped again without harm, a controller
// without logical drives is cleared again. Heartbeats before every command
// and every few seconds.
func (a *Wiper) WipeDisks(ctx context.Context, in WipeDisksInput) (WipeDisksResult, error) {
	defer keepBeating(ctx, "wipe")()
	sh, err := (&Registration{Dialer: a.Dialer}).dial(ctx, RamdiskInput{MachineID: in.MachineID, Ramdisk: in.Ramdisk})
	if err != nil {
		return WipeDisksResult{}, err
	}
	defer sh.Close()
	beat := func(step string) { activity.RecordHeartbeat(ctx, step) }
	disks := diskPaths(in.Inventory)
	if err := a.Wiper.Wipe(ctx, sh, disks, beat); err != nil {
		return WipeDisksResult{}, wipeError(err)
	}
	if in.ClearRAID {
		if err := a.Wiper.ClearRAID(ctx, sh, in.Inventory, beat); err != nil {
			return WipeDisksResult{}, wipeError(err)
		}
	}
	return WipeDisksResult{Disks: disks}, nil
}

func diskPaths(inv contract.Inventory) []string {
	var out []string
	for _, d := range inv.Disks {
		if !d.Removable {
			out = append(out, "/dev/"+d.Name)
		}
	}
	sort.Strings(out)
	return out
}

func wipeError(err error) error {
	if errors.Is(err, ErrWipePermanent) {
		return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrWipeFailed, nil)
	}
	return err
}

// EraseDisksInput erases the data of disks.
type EraseDisksInput struct {
	// OperationID names the erase: a finished erase of an earlier
	// operation in the same ramdisk does not count for this one.
	OperationID string
	MachineID   string
	Ramdisk     contract.RamdiskReady
	Disks       []string
	Method      contract.EraseMethod
}

// EraseDisksResult maps each disk to the method that erased it.
type EraseDisksResult struct {
	Methods map[string]string
}

// EraseDisks erases every disk at once with detached jobs in the ramdisk
// and waits for them, heartbeating their progress.
//
// Idempotent and resumable: the jobs run in the ramdisk, not in this
// activity, so a worker that dies leaves them running; the retry finds
// them (StartErase starts nothing new for a disk whose job runs or is
// done) and goes on waiting. An overwrite whose job died continues from
// its last recorded offset. Heartbeats every poll.
func (a *Wiper) EraseDisks(ctx context.Context, in EraseDisksInput) (EraseDisksResult, error) {
	if err := in.Method.Validate(); err != nil || in.Method == contract.EraseNone {
		return EraseDisksResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("erase method %q", in.Method), contract.ErrInvalidInput, nil)
	}
	sh, err := (&Registration{Dialer: a.Dialer}).dial(ctx, RamdiskInput{MachineID: in.MachineID, Ramdisk: in.Ramdisk})
	if err != nil {
		return EraseDisksResult{}, err
	}
	defer sh.Close()
	res := EraseDisksResult{Methods: map[string]string{}}
	for _, d := range in.Disks {
		m, err := a.Wiper.StartErase(ctx, sh, d, in.Method, in.OperationID)
		if err != nil {
			if errors.Is(err, ErrWipePermanent) {
				return EraseDisksResult{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrEraseUnsupported, nil)
			}
			return EraseDisksResult{}, fmt.Errorf("start the erase of %s: %w", d, err)
		}
		res.Methods[d] = m
	}
	every := a.PollEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	for {
		states := make([]EraseState, 0, len(in.Disks))
		done := 0
		for _, d := range in.Disks {
			st, err := a.Wiper.EraseStatus(ctx, sh, d)
			if err != nil {
				return EraseDisksResult{}, fmt.Errorf("read the erase of %s: %w", d, err)
			}
			if st.Error != "" {
				return EraseDisksResult{}, temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("erase of %s (%s) failed: %s", d, st.Method, st.Error), contract.ErrWipeFailed, nil)
			}
			if st.Done {
				done++
			}
			states = append(states, st)
		}
		activity.RecordHeartbeat(ctx, states)
		if done == len(in.Disks) {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return EraseDisksResult{}, ctx.Err()
		case <-time.After(every):
		}
	}
}

// ReleaseMachineInput forgets what a wiped machine held.
type ReleaseMachineInput struct {
	MachineID string
	ClearRAID bool
}

// ReleaseMachine gives back the machine's OS network addresses, forgets
// its installed OS and, when the RAID was torn down, its volumes.
//
// Idempotent: deletes and overwrites. No heartbeat.
func (a *Wiper) ReleaseMachine(ctx context.Context, in ReleaseMachineInput) (int, error) {
	n, err := a.Keeper.ReleaseMachineLeases(ctx, in.MachineID)
	if err != nil {
		return 0, recordError("release addresses", err)
	}
	if in.ClearRAID {
		if err := a.Keeper.ClearRAID(ctx, in.MachineID); err != nil {
			return 0, recordError("forget the RAID", err)
		}
	}
	if err := a.Install.RecordInstall(ctx, in.MachineID, InstallRecord{}); err != nil {
		return 0, recordError("forget the installed OS", err)
	}
	return n, nil
}
