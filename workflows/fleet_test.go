package workflows

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"bareflow/contract"
)

// fakeChildren stands in for the machines' workflows: each registered under
// the real type name, each "works" for a while (a timer) and fails when told
// to. It records what the fleet asked for and how many ran at once.
type fakeChildren struct {
	mu sync.Mutex
	// fail maps a machine ID to the error code its operation fails with.
	fail map[string]string
	// work is how long a machine's operation takes; default one minute.
	work map[string]time.Duration
	// group maps a machine ID to its group, to count per group.
	group        map[string]string
	running      int
	maxRunning   int
	groupRunning map[string]int
	maxGroup     map[string]int
	started      []string
	startedAt    map[string]time.Time
	canceled     []string
	inputs       map[string]any
}

func newFakeChildren() *fakeChildren {
	return &fakeChildren{fail: map[string]string{}, work: map[string]time.Duration{}, group: map[string]string{},
		groupRunning: map[string]int{}, maxGroup: map[string]int{}, startedAt: map[string]time.Time{}, inputs: map[string]any{}}
}

func (f *fakeChildren) operate(ctx workflow.Context, machineID string, in any) error {
	f.mu.Lock()
	g := f.group[machineID]
	f.running++
	f.maxRunning = max(f.maxRunning, f.running)
	f.groupRunning[g]++
	f.maxGroup[g] = max(f.maxGroup[g], f.groupRunning[g])
	f.started = append(f.started, machineID)
	f.startedAt[machineID] = workflow.Now(ctx)
	f.inputs[machineID] = in
	d := f.work[machineID]
	code := f.fail[machineID]
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.groupRunning[g]--
		f.mu.Unlock()
	}()
	if d == 0 {
		d = time.Minute
	}
	if err := workflow.Sleep(ctx, d); err != nil {
		f.mu.Lock()
		f.canceled = append(f.canceled, machineID)
		f.mu.Unlock()
		return err
	}
	if code != "" {
		return temporal.NewNonRetryableApplicationError("machine "+machineID+" failed on purpose", code, nil)
	}
	return nil
}

func (f *fakeChildren) register(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterWorkflowWithOptions(Fleet, workflow.RegisterOptions{Name: contract.WorkflowFleet})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in contract.PowerInput) (contract.PowerResult, error) {
		return contract.PowerResult{MachineID: in.MachineID}, f.operate(ctx, in.MachineID, in)
	}, workflow.RegisterOptions{Name: contract.WorkflowPower})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in contract.WipeInput) (contract.WipeResult, error) {
		return contract.WipeResult{MachineID: in.MachineID}, f.operate(ctx, in.MachineID, in)
	}, workflow.RegisterOptions{Name: contract.WorkflowWipe})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in contract.InstallInput) (contract.InstallResult, error) {
		return contract.InstallResult{MachineID: in.MachineID}, f.operate(ctx, in.MachineID, in)
	}, workflow.RegisterOptions{Name: contract.WorkflowInstall})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in contract.RegisterInput) (contract.RegisterResult, error) {
		return contract.RegisterResult{MachineID: in.MachineID}, f.operate(ctx, in.MachineID, in)
	}, workflow.RegisterOptions{Name: contract.WorkflowRegister})
}

func (f *fakeChildren) wasStarted(id string) bool {
	_, ok := f.startedAt[id]
	return ok
}

// fleetMachines makes n machines m01…mNN, in four racks r1…r4 by turn.
func fleetMachines(n int) []contract.FleetMachine {
	ms := make([]contract.FleetMachine, n)
	for i := range ms {
		ms[i] = contract.FleetMachine{ID: fmt.Sprintf("m%02d", i+1), Name: fmt.Sprintf("node-%02d", i+1), Group: fmt.Sprintf("r%d", i%4+1)}
	}
	return ms
}

func fleetInput(op contract.FleetOp, n int) contract.FleetInput {
	in := contract.FleetInput{FleetID: "f-1", Op: op, Machines: fleetMachines(n), Concurrency: 5, RequestedBy: "alice"}
	switch op {
	case contract.FleetPower:
		in.Template.Power = &contract.PowerInput{Action: contract.PowerActionCycle}
	case contract.FleetWipe:
		in.Template.Wipe = &contract.WipeInput{Erase: contract.EraseAuto}
	case contract.FleetInstall:
		in.Template.Install = &contract.InstallInput{Image: "debian-12", OS: contract.OSSettings{Hostname: "template", Domain: "example.net"}}
	case contract.FleetRegister:
		in.Template.Register = &contract.RegisterInput{BMC: contract.BMCSetup{Mode: contract.BMCSetupKeep}}
	}
	return in
}

func newFleetEnv(t *testing.T, in contract.FleetInput) (*testsuite.TestWorkflowEnvironment, *fakeChildren) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	f := newFakeChildren()
	for _, m := range in.Machines {
		f.group[m.ID] = m.Group
	}
	f.register(env)
	return env, f
}

// fleetOutcome returns the fleet's final progress: its result, or the
// details of the error it ended with.
func fleetOutcome(t *testing.T, env *testsuite.TestWorkflowEnvironment) (contract.FleetProgress, error) {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("the fleet did not end")
	}
	var p contract.FleetProgress
	err := env.GetWorkflowError()
	if err == nil {
		if gerr := env.GetWorkflowResult(&p); gerr != nil {
			t.Fatal(gerr)
		}
		return p, nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() {
		if derr := appErr.Details(&p); derr != nil {
			t.Fatalf("error details: %v", derr)
		}
	}
	return p, err
}

func queryFleet(t *testing.T, env *testsuite.TestWorkflowEnvironment) contract.FleetProgress {
	t.Helper()
	v, err := env.QueryWorkflow(contract.QueryFleetProgress)
	if err != nil {
		t.Fatalf("query progress: %v", err)
	}
	var p contract.FleetProgress
	if err := v.Get(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// updateResult is how an update went.
type updateResult struct {
	rejected error
	err      error
	progress contract.FleetProgress
	done     bool
}

func sendUpdate(env *testsuite.TestWorkflowEnvironment, name string) *updateResult {
	r := &updateResult{}
	env.UpdateWorkflow(name, name, &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { r.rejected, r.done = err, true },
		OnComplete: func(v any, err error) {
			r.err, r.done = err, true
			if p, ok := v.(contract.FleetProgress); ok {
				r.progress = p
			}
		},
	}, contract.FleetControl{RequestedBy: "bob"})
	return r
}

func machineByID(p contract.FleetProgress, id string) contract.FleetMachineProgress {
	for _, m := range p.Machines {
		if m.ID == id {
			return m
		}
	}
	return contract.FleetMachineProgress{}
}

func TestFleetFailureBudget(t *testing.T) {
	tests := map[string]struct {
		op        contract.FleetOp
		fail      []string
		wantState contract.FleetState
		wantCode  string
	}{
		"power, three failures exceed a budget of two": {op: contract.FleetPower, fail: []string{"m03", "m07", "m09"},
			wantState: contract.FleetFailed, wantCode: contract.ErrFleetFailed},
		"wipe, three failures exceed a budget of two": {op: contract.FleetWipe, fail: []string{"m03", "m07", "m09"},
			wantState: contract.FleetFailed, wantCode: contract.ErrFleetFailed},
		"power, two failures are within the budget": {op: contract.FleetPower, fail: []string{"m03", "m07"},
			wantState: contract.FleetSucceeded},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := fleetInput(tc.op, 20)
			in.FailureBudget, in.GroupLimit, in.GroupBy = 2, 2, "label:rack"
			env, f := newFleetEnv(t, in)
			for i, m := range in.Machines {
				// Uneven durations, so that machines end one by one.
				f.work[m.ID] = time.Minute + time.Duration(i%3)*20*time.Second
			}
			for _, id := range tc.fail {
				f.fail[id] = contract.ErrBMCUnreachable
			}
			env.ExecuteWorkflow(contract.WorkflowFleet, in)
			p, err := fleetOutcome(t, env)
			if got := errType(err); got != tc.wantCode {
				t.Fatalf("fleet error: got %q (%v), want %q", got, err, tc.wantCode)
			}
			if p.State != tc.wantState {
				t.Errorf("state: got %s (%s), want %s", p.State, p.Reason, tc.wantState)
			}
			c := p.Counts
			if c.Failed != len(tc.fail) || c.Running != 0 || c.Waiting != 0 || c.Total != 20 {
				t.Errorf("counts: got %+v, want %d failed, none running or waiting, 20 in all", c, len(tc.fail))
			}
			if c.Done+c.Failed+c.Skipped != 20 || c.Done != len(f.started)-len(tc.fail) {
				t.Errorf("counts: got %+v with %d started, want done = started - failed and done+failed+skipped = 20", c, len(f.started))
			}
			if f.maxRunning > 5 || p.MaxRunning > 5 {
				t.Errorf("most children at once: got %d (fleet says %d), want at most 5", f.maxRunning, p.MaxRunning)
			}
			if f.maxRunning != 5 {
				t.Errorf("most children at once: got %d, want 5 (the limit is used)", f.maxRunning)
			}
			for g, n := range f.maxGroup {
				if n > 2 {
					t.Errorf("group %s: got %d children at once, want at most 2", g, n)
				}
			}
			if tc.wantState == contract.FleetSucceeded {
				if c.Done != 18 || c.Skipped != 0 {
					t.Errorf("counts: got %+v, want 18 done and none skipped", c)
				}
				return
			}
			if c.Skipped == 0 {
				t.Errorf("counts: got %+v, want machines left unstarted after the budget was exceeded", c)
			}
			if !strings.Contains(p.Reason, "failure budget exceeded: 3 machines failed, budget 2") {
				t.Errorf("reason: got %q", p.Reason)
			}
			// No child started after the third failure.
			third := machineByID(p, tc.fail[2]).FinishedAt
			for _, m := range p.Machines {
				switch m.State {
				case contract.FleetMachineSkipped:
					if f.wasStarted(m.ID) {
						t.Errorf("machine %s: skipped but its workflow ran", m.ID)
					}
				default:
					if m.StartedAt.After(third) {
						t.Errorf("machine %s started at %s, after the third failure at %s", m.ID, m.StartedAt, third)
					}
				}
			}
			for _, id := range tc.fail {
				if m := machineByID(p, id); m.State != contract.FleetMachineFailed || m.ErrorCode != contract.ErrBMCUnreachable || m.Error == "" {
					t.Errorf("machine %s: got %s %q %q, want failed with BMCUnreachable", id, m.State, m.ErrorCode, m.Error)
				}
			}
		})
	}
}

func TestFleetGroupLimit(t *testing.T) {
	in := fleetInput(contract.FleetWipe, 12)
	for i := range in.Machines {
		in.Machines[i].Group = fmt.Sprintf("net-%d", i%2)
	}
	in.GroupBy, in.GroupLimit = "network", 2
	env, f := newFleetEnv(t, in)
	env.ExecuteWorkflow(contract.WorkflowFleet, in)
	p, err := fleetOutcome(t, env)
	if err != nil || p.Counts.Done != 12 {
		t.Fatalf("fleet: got %s %+v, %v; want 12 done", p.State, p.Counts, err)
	}
	// Two groups of at most two: the concurrency of 5 is never reached.
	if f.maxRunning != 4 || p.MaxRunning != 4 {
		t.Errorf("most children at once: got %d (fleet says %d), want 4", f.maxRunning, p.MaxRunning)
	}
	if f.maxGroup["net-0"] != 2 || f.maxGroup["net-1"] != 2 {
		t.Errorf("most children of a group at once: got %v, want 2 each", f.maxGroup)
	}
}

func TestFleetFailureBudgetCancelsRunning(t *testing.T) {
	in := fleetInput(contract.FleetPower, 10)
	in.Concurrency, in.CancelOnFailure = 4, true
	env, f := newFleetEnv(t, in)
	f.fail["m01"] = contract.ErrBMCAuthFailed
	for _, id := range []string{"m02", "m03", "m04"} {
		f.work[id] = time.Hour
	}
	env.ExecuteWorkflow(contract.WorkflowFleet, in)
	p, err := fleetOutcome(t, env)
	if errType(err) != contract.ErrFleetFailed || p.State != contract.FleetFailed {
		t.Fatalf("fleet: got %s, %v; want failed", p.State, err)
	}
	if c := p.Counts; c.Failed != 1 || c.Canceled != 3 || c.Skipped != 6 {
		t.Errorf("counts: got %+v, want 1 failed, 3 canceled, 6 not started", c)
	}
	if len(f.canceled) != 3 {
		t.Errorf("children that saw their cancel: got %v, want m02, m03, m04", f.canceled)
	}
}

func TestFleetCanaries(t *testing.T) {
	t.Run("a failed canary stops the fleet", func(t *testing.T) {
		in := fleetInput(contract.FleetWipe, 20)
		in.Canaries, in.FailureBudget = 2, 5
		env, f := newFleetEnv(t, in)
		f.fail["m02"] = contract.ErrWipeFailed
		f.work["m01"] = 3 * time.Minute
		env.ExecuteWorkflow(contract.WorkflowFleet, in)
		p, err := fleetOutcome(t, env)
		if errType(err) != contract.ErrFleetFailed || p.State != contract.FleetFailed {
			t.Fatalf("fleet: got %s, %v; want failed", p.State, err)
		}
		if len(f.started) != 2 {
			t.Errorf("started: got %v, want the two canaries only", f.started)
		}
		if c := p.Counts; c.Done != 1 || c.Failed != 1 || c.Skipped != 18 {
			t.Errorf("counts: got %+v, want 1 done, 1 failed, 18 not started", c)
		}
		if p.CanariesPassed || !strings.Contains(p.Reason, "canary node-02 failed: WipeFailed") {
			t.Errorf("canaries: got passed=%v, reason %q", p.CanariesPassed, p.Reason)
		}
	})
	t.Run("the others start once every canary succeeded", func(t *testing.T) {
		in := fleetInput(contract.FleetPower, 8)
		in.Canaries = 2
		env, f := newFleetEnv(t, in)
		f.work["m02"] = 5 * time.Minute
		env.ExecuteWorkflow(contract.WorkflowFleet, in)
		p, err := fleetOutcome(t, env)
		if err != nil || p.State != contract.FleetSucceeded || p.Counts.Done != 8 || !p.CanariesPassed {
			t.Fatalf("fleet: got %s %+v, %v; want 8 done", p.State, p.Counts, err)
		}
		last := machineByID(p, "m02").FinishedAt
		for _, m := range p.Machines[2:] {
			if m.StartedAt.Before(last) {
				t.Errorf("machine %s started at %s, before the last canary ended at %s", m.ID, m.StartedAt, last)
			}
		}
	})
}

func TestFleetPauseResume(t *testing.T) {
	in := fleetInput(contract.FleetPower, 20)
	env, f := newFleetEnv(t, in)
	var (
		paused, resumed *updateResult
		atPause         contract.FleetProgress
		whilePaused     contract.FleetProgress
	)
	pauseAt, resumeAt := 30*time.Second, 10*time.Minute
	env.RegisterDelayedCallback(func() {
		paused = sendUpdate(env, contract.UpdateFleetPause)
		atPause = queryFleet(t, env)
	}, pauseAt)
	env.RegisterDelayedCallback(func() {
		whilePaused = queryFleet(t, env)
		resumed = sendUpdate(env, contract.UpdateFleetResume)
	}, resumeAt)
	env.ExecuteWorkflow(contract.WorkflowFleet, in)
	p, err := fleetOutcome(t, env)
	if err != nil || p.State != contract.FleetSucceeded || p.Counts.Done != 20 {
		t.Fatalf("fleet: got %s %+v, %v; want 20 done", p.State, p.Counts, err)
	}
	if paused == nil || !paused.done || paused.rejected != nil || paused.err != nil || paused.progress.State != contract.FleetPaused {
		t.Fatalf("pause: got %+v, want accepted with the fleet paused", paused)
	}
	if resumed == nil || !resumed.done || resumed.rejected != nil || resumed.progress.State != contract.FleetRunning {
		t.Fatalf("resume: got %+v, want accepted with the fleet running", resumed)
	}
	if atPause.Counts.Running != 5 || atPause.Counts.Waiting != 15 {
		t.Errorf("progress at the pause: got %+v, want 5 running, 15 waiting", atPause.Counts)
	}
	if whilePaused.State != contract.FleetPaused || whilePaused.Counts.Running != 0 || whilePaused.Counts.Done != 5 || whilePaused.Counts.Waiting != 15 {
		t.Errorf("progress while paused: got %s %+v, want paused with 5 done, 15 waiting", whilePaused.State, whilePaused.Counts)
	}
	if len(whilePaused.Machines) != 20 || whilePaused.Machines[0].State != contract.FleetMachineSucceeded || whilePaused.Machines[0].OperationID == "" {
		t.Errorf("progress while paused, first machine: got %+v, want succeeded with its operation ID", whilePaused.Machines[0])
	}
	start := p.StartedAt
	for _, m := range p.Machines {
		at := m.StartedAt.Sub(start)
		if at > pauseAt && at < resumeAt {
			t.Errorf("machine %s started %s after the fleet, while paused (%s–%s)", m.ID, at, pauseAt, resumeAt)
		}
	}
	if len(f.started) != 20 {
		t.Errorf("started: got %d children, want 20", len(f.started))
	}
}

func TestFleetCancel(t *testing.T) {
	t.Run("by update", func(t *testing.T) {
		in := fleetInput(contract.FleetWipe, 20)
		env, f := newFleetEnv(t, in)
		for _, m := range in.Machines {
			f.work[m.ID] = time.Hour
		}
		var canceled, pauseAfter *updateResult
		env.RegisterDelayedCallback(func() {
			canceled = sendUpdate(env, contract.UpdateFleetCancel)
			pauseAfter = sendUpdate(env, contract.UpdateFleetPause)
		}, 10*time.Minute)
		env.ExecuteWorkflow(contract.WorkflowFleet, in)
		p, err := fleetOutcome(t, env)
		if errType(err) != contract.ErrFleetCanceled || p.State != contract.FleetCanceled {
			t.Fatalf("fleet: got %s, %v; want canceled", p.State, err)
		}
		if canceled == nil || canceled.rejected != nil || canceled.progress.State != contract.FleetCanceling {
			t.Fatalf("cancel: got %+v, want accepted, fleet canceling", canceled)
		}
		if pauseAfter == nil || pauseAfter.rejected == nil {
			t.Errorf("pause after cancel: got %+v, want rejected by the validator", pauseAfter)
		} else if !strings.Contains(pauseAfter.rejected.Error(), "starts no machine any more") {
			t.Errorf("pause after cancel: got %v", pauseAfter.rejected)
		}
		if c := p.Counts; c.Canceled != 5 || c.Skipped != 15 || c.Done != 0 || c.Running != 0 {
			t.Errorf("counts: got %+v, want 5 canceled, 15 not started", c)
		}
		if len(f.canceled) != 5 || len(f.started) != 5 {
			t.Errorf("children: got %v started, %v canceled; want the same 5", f.started, f.canceled)
		}
		if m := p.Machines[0]; m.State != contract.FleetMachineCanceled || m.ErrorCode != errCodeCanceled {
			t.Errorf("first machine: got %s %q, want canceled", m.State, m.ErrorCode)
		}
	})
	t.Run("the fleet's workflow canceled", func(t *testing.T) {
		in := fleetInput(contract.FleetPower, 8)
		in.Concurrency = 3
		env, f := newFleetEnv(t, in)
		for _, m := range in.Machines {
			f.work[m.ID] = time.Hour
		}
		env.RegisterDelayedCallback(env.CancelWorkflow, 5*time.Minute)
		env.ExecuteWorkflow(contract.WorkflowFleet, in)
		err := env.GetWorkflowError()
		if !temporal.IsCanceledError(err) {
			t.Fatalf("fleet: got %v, want canceled", err)
		}
		if len(f.canceled) != 3 {
			t.Errorf("children that saw their cancel: got %v, want 3", f.canceled)
		}
		p := queryFleet(t, env)
		if p.State != contract.FleetCanceled || p.Counts.Canceled != 3 || p.Counts.Skipped != 5 {
			t.Errorf("progress: got %s %+v, want canceled: 3 canceled, 5 not started", p.State, p.Counts)
		}
	})
}

func TestFleetMachineBusy(t *testing.T) {
	in := fleetInput(contract.FleetPower, 4)
	in.FailureBudget = 1
	env, f := newFleetEnv(t, in)
	// The test environment knows only the workflows it runs: the fleet
	// itself, run on machine m02's workflow ID, holds that ID as another
	// operation on m02 would.
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: contract.MachineWorkflowID("m02")})
	env.ExecuteWorkflow(contract.WorkflowFleet, in)
	p, err := fleetOutcome(t, env)
	if err != nil || p.State != contract.FleetSucceeded {
		t.Fatalf("fleet: got %s, %v; want succeeded within its budget", p.State, err)
	}
	m := machineByID(p, "m02")
	if m.State != contract.FleetMachineFailed || m.ErrorCode != contract.ErrMachineBusy {
		t.Errorf("busy machine: got %s %q %q, want failed with MachineBusy", m.State, m.ErrorCode, m.Error)
	}
	if f.wasStarted("m02") {
		t.Error("the busy machine's workflow ran")
	}
	if p.Counts.Done != 3 || p.Counts.Failed != 1 {
		t.Errorf("counts: got %+v, want 3 done, 1 failed", p.Counts)
	}
}

func TestFleetChildInputs(t *testing.T) {
	t.Run("install names each machine from the pattern", func(t *testing.T) {
		in := fleetInput(contract.FleetInstall, 3)
		in.HostnamePattern = "web-{index}"
		env, f := newFleetEnv(t, in)
		env.ExecuteWorkflow(contract.WorkflowFleet, in)
		if _, err := fleetOutcome(t, env); err != nil {
			t.Fatal(err)
		}
		for i, m := range in.Machines {
			got, _ := f.inputs[m.ID].(contract.InstallInput)
			want := fmt.Sprintf("web-%d", i+1)
			if got.MachineID != m.ID || got.OS.Hostname != want || got.OS.Domain != "example.net" || got.Image != "debian-12" ||
				!strings.Contains(got.RequestedBy, "fleet f-1") {
				t.Errorf("install input of %s: got %+v, want hostname %s and the template's image and domain", m.ID, got, want)
			}
		}
	})
	t.Run("register", func(t *testing.T) {
		in := fleetInput(contract.FleetRegister, 2)
		env, f := newFleetEnv(t, in)
		env.ExecuteWorkflow(contract.WorkflowFleet, in)
		if _, err := fleetOutcome(t, env); err != nil {
			t.Fatal(err)
		}
		got, _ := f.inputs["m02"].(contract.RegisterInput)
		if got.MachineID != "m02" || got.BMC.Mode != contract.BMCSetupKeep {
			t.Errorf("register input: got %+v", got)
		}
	})
}

func TestFleetContinuesAsNew(t *testing.T) {
	in := fleetInput(contract.FleetPower, 6)
	in.Concurrency = 2
	env, f := newFleetEnv(t, in)
	f.fail["m01"] = contract.ErrBMCUnreachable
	in.FailureBudget = 1
	env.SetContinueAsNewSuggested(true)
	env.ExecuteWorkflow(contract.WorkflowFleet, in)
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("first run: got %v, want continue-as-new", err)
	}
	var next contract.FleetInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if can.WorkflowType.Name != contract.WorkflowFleet || next.Carry == nil {
		t.Fatalf("continue-as-new: got type %s, carry %v", can.WorkflowType.Name, next.Carry)
	}
	if c := next.Carry.Counts; c.Done != 1 || c.Failed != 1 || c.Waiting != 4 || c.Running != 0 {
		t.Fatalf("carried counts: got %+v, want 1 done, 1 failed, 4 waiting", c)
	}

	env2, f2 := newFleetEnv(t, next)
	env2.ExecuteWorkflow(contract.WorkflowFleet, next)
	p, err := fleetOutcome(t, env2)
	if err != nil || p.State != contract.FleetSucceeded {
		t.Fatalf("second run: got %s, %v; want succeeded", p.State, err)
	}
	if c := p.Counts; c.Done != 5 || c.Failed != 1 || p.Runs != 2 {
		t.Errorf("after two runs: got %+v in %d runs, want 5 done, 1 failed, 2 runs", c, p.Runs)
	}
	if len(f2.started) != 4 || f2.wasStarted("m01") || f2.wasStarted("m02") {
		t.Errorf("second run started %v, want only the 4 waiting machines", f2.started)
	}
	if m := machineByID(p, "m01"); m.ErrorCode != contract.ErrBMCUnreachable {
		t.Errorf("carried failure: got %+v", m)
	}
}

func TestFleetRefusesBadInput(t *testing.T) {
	dup := fleetInput(contract.FleetPower, 2)
	dup.Machines[1].ID = dup.Machines[0].ID
	tests := map[string]contract.FleetInput{
		"no machines":       {Op: contract.FleetPower, Template: contract.FleetTemplate{Power: &contract.PowerInput{}}},
		"unknown operation": {Op: "reboot", Machines: fleetMachines(1)},
		"no template":       {Op: contract.FleetWipe, Machines: fleetMachines(1)},
		"a machine twice":   dup,
		"more canaries":     func() contract.FleetInput { in := fleetInput(contract.FleetPower, 2); in.Canaries = 3; return in }(),
		"negative budget":   func() contract.FleetInput { in := fleetInput(contract.FleetPower, 2); in.FailureBudget = -1; return in }(),
		"unknown placeholder": func() contract.FleetInput {
			in := fleetInput(contract.FleetInstall, 2)
			in.HostnamePattern = "{rack}-1"
			return in
		}(),
		"carry of other fleet": func() contract.FleetInput {
			in := fleetInput(contract.FleetPower, 2)
			in.Carry = &contract.FleetProgress{}
			return in
		}(),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			env, _ := newFleetEnv(t, in)
			env.ExecuteWorkflow(contract.WorkflowFleet, in)
			if got := errType(env.GetWorkflowError()); got != contract.ErrInvalidInput {
				t.Errorf("got %q (%v), want InvalidInput", got, env.GetWorkflowError())
			}
		})
	}
}
