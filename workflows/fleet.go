package workflows

import (
	"fmt"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"bareflow/contract"
)

// Fleet runs one operation (install, wipe, power or register) over a set of
// machines. Each machine's operation is a child workflow of the usual type
// on the machine's own workflow ID (contract.MachineWorkflowID), so a fleet
// never runs beside another operation on a machine: a machine that is busy
// fails at once with MachineBusy. The children's inputs come from the
// fleet's template with the machine filled in (and, for an install, the
// host name from HostnamePattern).
//
// At most Concurrency machines run at once, and at most GroupLimit of one
// group (a network, a rack label: the API resolves each machine's group).
// The first Canaries machines run first, alone; every one must succeed
// before the others start, and a failure of one stops the fleet. Once more
// than FailureBudget machines have failed, no machine starts any more: the
// running ones finish (or are canceled, with CancelOnFailure) and the fleet
// ends failed.
//
//	running ──pause──► paused ──resume──► running
//	   │ canary failed, budget exceeded                 all machines ended
//	   ├──────────────► stopping ──(running ones end)──► failed    succeeded ◄── running
//	   │ cancel (update, or the workflow canceled)
//	   └──────────────► canceling ──(children canceled, ended)──► canceled
//
// Pause, resume and cancel are updates whose validators refuse what the
// fleet's state does not allow; the fleet-progress query and every update
// answer a contract.FleetProgress. Canceling the fleet's workflow cancels
// its children too (they are canceled with the fleet's context, and the
// parent-close policy is REQUEST_CANCEL should the fleet's run end another
// way).
//
// Large fleets: when Temporal suggests continue-as-new (the history is
// long), the fleet starts no more machines, waits for the running ones and
// continues as new, carrying its progress in FleetInput.Carry; pause,
// counts and per-machine outcomes survive the hand-over.
func Fleet(ctx workflow.Context, in contract.FleetInput) (contract.FleetProgress, error) {
	w := &fleetWorkflow{in: in}
	if err := w.setup(ctx); err != nil {
		return contract.FleetProgress{}, err
	}
	return w.run(ctx)
}

type fleetWorkflow struct {
	in contract.FleetInput
	p  contract.FleetProgress
	// cancels cancels the child of a running machine, by its index.
	cancels map[int]workflow.CancelFunc
	// groupRunning counts the running machines of each group.
	groupRunning map[string]int
	// startedThisRun counts the machines this run started, so that a run
	// always makes progress before it continues as new.
	startedThisRun int
	// handingOver is true once the run waits for its machines to end
	// before it continues as new.
	handingOver bool
	// changes counts the events that may let the fleet go on: a machine
	// ended or started, an update.
	changes int
}

func invalidFleet(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), contract.ErrInvalidInput, nil)
}

func (w *fleetWorkflow) validate() error {
	in := &w.in
	if err := in.Op.Validate(); err != nil {
		return invalidFleet("%v", err)
	}
	switch {
	case len(in.Machines) == 0:
		return invalidFleet("a fleet needs at least one machine")
	case len(in.Machines) > contract.MaxFleetMachines:
		return invalidFleet("a fleet has at most %d machines, got %d", contract.MaxFleetMachines, len(in.Machines))
	case in.Concurrency < 0 || in.GroupLimit < 0 || in.Canaries < 0 || in.FailureBudget < 0:
		return invalidFleet("concurrency, group limit, canaries and failure budget must not be negative")
	case in.Canaries > len(in.Machines):
		return invalidFleet("%d canaries for %d machines", in.Canaries, len(in.Machines))
	}
	if in.Concurrency == 0 {
		in.Concurrency = contract.DefaultFleetConcurrency
	}
	seen := make(map[string]bool, len(in.Machines))
	for i, m := range in.Machines {
		if m.ID == "" {
			return invalidFleet("machine %d has no ID", i+1)
		}
		if seen[m.ID] {
			return invalidFleet("machine %s is named twice", m.ID)
		}
		seen[m.ID] = true
	}
	t := in.Template
	missing := in.Op == contract.FleetInstall && t.Install == nil || in.Op == contract.FleetWipe && t.Wipe == nil ||
		in.Op == contract.FleetPower && t.Power == nil || in.Op == contract.FleetRegister && t.Register == nil
	if missing {
		return invalidFleet("a %s fleet needs its template", in.Op)
	}
	if err := contract.ValidateHostnamePattern(in.HostnamePattern); err != nil {
		return invalidFleet("%v", err)
	}
	if c := in.Carry; c != nil && len(c.Machines) != len(in.Machines) {
		return invalidFleet("carried progress has %d machines, the fleet %d", len(c.Machines), len(in.Machines))
	}
	return nil
}

func (w *fleetWorkflow) setup(ctx workflow.Context) error {
	if err := w.validate(); err != nil {
		return err
	}
	if w.in.FleetID == "" {
		id := workflow.GetInfo(ctx).WorkflowExecution.ID
		if fid, ok := contract.FleetIDFromWorkflowID(id); ok {
			id = fid
		}
		w.in.FleetID = id
	}
	w.cancels = map[int]workflow.CancelFunc{}
	w.groupRunning = map[string]int{}
	if w.in.Carry != nil {
		w.p = *w.in.Carry
		w.in.Carry = nil
		w.p.Runs++
	} else {
		w.p = contract.FleetProgress{
			FleetID: w.in.FleetID, Op: w.in.Op, State: contract.FleetRunning, CanariesPassed: w.in.Canaries == 0,
			Concurrency: w.in.Concurrency, GroupBy: w.in.GroupBy, GroupLimit: w.in.GroupLimit, Canaries: w.in.Canaries,
			FailureBudget: w.in.FailureBudget, Runs: 1, RequestedBy: w.in.RequestedBy, StartedAt: workflow.Now(ctx),
			Machines: make([]contract.FleetMachineProgress, len(w.in.Machines)),
		}
		for i, m := range w.in.Machines {
			w.p.Machines[i] = contract.FleetMachineProgress{ID: m.ID, Name: m.Name, Group: m.Group,
				Canary: i < w.in.Canaries, State: contract.FleetMachineWaiting}
		}
	}
	w.recount()
	if err := workflow.SetQueryHandler(ctx, contract.QueryFleetProgress, func() (contract.FleetProgress, error) {
		return w.p, nil
	}); err != nil {
		return err
	}
	for _, u := range []struct {
		name     string
		validate func() error
		apply    func(ctx workflow.Context, c contract.FleetControl)
	}{
		{contract.UpdateFleetPause, w.canPause, w.pause},
		{contract.UpdateFleetResume, w.canResume, w.resume},
		{contract.UpdateFleetCancel, w.canCancel, w.cancel},
	} {
		err := workflow.SetUpdateHandlerWithOptions(ctx, u.name,
			func(ctx workflow.Context, c contract.FleetControl) (contract.FleetProgress, error) {
				u.apply(ctx, c)
				w.changes++
				return w.p, nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, _ contract.FleetControl) error {
				if err := u.validate(); err != nil {
					return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrFleetState, nil)
				}
				return nil
			}})
		if err != nil {
			return err
		}
	}
	return nil
}

// ending reports whether the fleet starts no machine any more.
func (w *fleetWorkflow) ending() bool {
	return w.p.State == contract.FleetStopping || w.p.State == contract.FleetCanceling || w.p.State.Final()
}

func (w *fleetWorkflow) canPause() error {
	if w.ending() {
		return fmt.Errorf("fleet %s is %s: it starts no machine any more", w.in.FleetID, w.p.State)
	}
	return nil
}

func (w *fleetWorkflow) canResume() error {
	if w.ending() {
		return fmt.Errorf("fleet %s is %s: it cannot be resumed", w.in.FleetID, w.p.State)
	}
	return nil
}

func (w *fleetWorkflow) canCancel() error {
	if w.p.State.Final() {
		return fmt.Errorf("fleet %s has ended %s", w.in.FleetID, w.p.State)
	}
	return nil
}

// pause stops the fleet from starting machines; pausing a paused fleet
// changes nothing.
func (w *fleetWorkflow) pause(ctx workflow.Context, c contract.FleetControl) {
	if w.p.State == contract.FleetRunning {
		w.p.State = contract.FleetPaused
		workflow.GetLogger(ctx).Info("fleet paused", "workflow_id", contract.FleetWorkflowID(w.in.FleetID), "requested_by", c.RequestedBy)
	}
}

// resume lets a paused fleet start machines again; resuming a running
// fleet changes nothing.
func (w *fleetWorkflow) resume(ctx workflow.Context, c contract.FleetControl) {
	if w.p.State == contract.FleetPaused {
		w.p.State = contract.FleetRunning
		workflow.GetLogger(ctx).Info("fleet resumed", "workflow_id", contract.FleetWorkflowID(w.in.FleetID), "requested_by", c.RequestedBy)
	}
}

// cancel cancels every running machine and starts no more.
func (w *fleetWorkflow) cancel(ctx workflow.Context, c contract.FleetControl) {
	if w.p.State == contract.FleetCanceling {
		return
	}
	w.p.State = contract.FleetCanceling
	w.p.Reason = "canceled"
	if c.RequestedBy != "" {
		w.p.Reason += " by " + c.RequestedBy
	}
	workflow.GetLogger(ctx).Info("fleet canceled", "workflow_id", contract.FleetWorkflowID(w.in.FleetID), "requested_by", c.RequestedBy)
	w.cancelRunning()
}

// cancelRunning cancels the children of the running machines, in the
// fleet's order.
func (w *fleetWorkflow) cancelRunning() {
	for i := range w.p.Machines {
		if cancel, ok := w.cancels[i]; ok {
			cancel()
		}
	}
}

// stop ends the fleet's starts because of a failure: a canary's, or one too
// many. With CancelOnFailure the running machines are canceled too.
func (w *fleetWorkflow) stop(ctx workflow.Context, reason string) {
	if w.ending() {
		return
	}
	w.p.State = contract.FleetStopping
	w.p.Reason = reason
	workflow.GetLogger(ctx).Warn("fleet stopping", "workflow_id", contract.FleetWorkflowID(w.in.FleetID), "reason", reason)
	if w.in.CancelOnFailure {
		w.cancelRunning()
	}
}

func (w *fleetWorkflow) run(ctx workflow.Context) (contract.FleetProgress, error) {
	for {
		if w.p.State == contract.FleetRunning && !w.handingOver {
			w.startEligible(ctx)
		}
		if !w.handingOver && w.startedThisRun > 0 && w.p.Counts.Waiting > 0 && !w.ending() &&
			workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			workflow.GetLogger(ctx).Info("fleet history is long: continue as new once the running machines end",
				"workflow_id", contract.FleetWorkflowID(w.in.FleetID), "running", w.p.Counts.Running)
			w.handingOver = true
		}
		if w.p.Counts.Running == 0 && (w.p.Counts.Waiting == 0 || w.ending() || w.handingOver) {
			break
		}
		seen := w.changes
		if err := workflow.Await(ctx, func() bool { return w.changes != seen }); err != nil {
			return w.canceled(ctx, err)
		}
	}
	if w.handingOver && !w.ending() && w.p.Counts.Waiting > 0 {
		return w.continueAsNew(ctx)
	}
	return w.finish(ctx)
}

// startEligible starts waiting machines in the fleet's order while the
// concurrency and group limits allow; before the canaries have passed,
// only canaries.
func (w *fleetWorkflow) startEligible(ctx workflow.Context) {
	for i := range w.p.Machines {
		if w.p.Counts.Running >= w.in.Concurrency {
			return
		}
		m := w.p.Machines[i]
		if m.State != contract.FleetMachineWaiting {
			continue
		}
		if !w.p.CanariesPassed && !m.Canary {
			return
		}
		if w.in.GroupLimit > 0 && w.groupRunning[m.Group] >= w.in.GroupLimit {
			continue
		}
		w.start(ctx, i)
	}
}

// start runs machine i's operation as a child workflow on the machine's
// workflow ID, and follows it in a coroutine.
func (w *fleetWorkflow) start(ctx workflow.Context, i int) {
	m := &w.p.Machines[i]
	cctx, cancel := workflow.WithCancel(ctx)
	cctx = workflow.WithChildOptions(cctx, workflow.ChildWorkflowOptions{
		WorkflowID:            contract.MachineWorkflowID(m.ID),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		// A canceled machine is counted once its workflow has cleaned up.
		WaitForCancellation: true,
	})
	child := workflow.ExecuteChildWorkflow(cctx, w.in.Op.WorkflowType(), w.childInput(i))
	m.State, m.StartedAt = contract.FleetMachineRunning, workflow.Now(ctx)
	w.cancels[i] = cancel
	w.groupRunning[m.Group]++
	w.startedThisRun++
	w.recount()
	w.p.MaxRunning = max(w.p.MaxRunning, w.p.Counts.Running)
	workflow.Go(ctx, func(gctx workflow.Context) {
		var exec workflow.Execution
		err := child.GetChildWorkflowExecution().Get(gctx, &exec)
		if err == nil {
			w.p.Machines[i].OperationID = exec.RunID
			w.changes++
			err = child.Get(gctx, nil)
		}
		w.ended(gctx, i, err)
	})
}

// childInput is the fleet's template for machine i.
func (w *fleetWorkflow) childInput(i int) any {
	m := w.in.Machines[i]
	by := w.in.RequestedBy + " (fleet " + w.in.FleetID + ")"
	t := w.in.Template
	switch w.in.Op {
	case contract.FleetInstall:
		in := *t.Install
		in.OperationID, in.MachineID, in.RequestedBy = "", m.ID, by
		if w.in.HostnamePattern != "" {
			in.OS.Hostname = contract.ExpandHostname(w.in.HostnamePattern, m.Name, i+1)
		}
		return in
	case contract.FleetWipe:
		in := *t.Wipe
		in.OperationID, in.MachineID, in.RequestedBy = "", m.ID, by
		return in
	case contract.FleetPower:
		in := *t.Power
		in.OperationID, in.MachineID, in.RequestedBy = "", m.ID, by
		return in
	default:
		in := *t.Register
		in.OperationID, in.MachineID, in.RequestedBy, in.Discovered = "", m.ID, by, false
		return in
	}
}

// ended records how machine i's operation ended and stops the fleet when a
// canary failed or the failure budget is exceeded.
func (w *fleetWorkflow) ended(ctx workflow.Context, i int, err error) {
	m := &w.p.Machines[i]
	m.FinishedAt = workflow.Now(ctx)
	switch {
	case err == nil:
		m.State = contract.FleetMachineSucceeded
	case temporal.IsWorkflowExecutionAlreadyStartedError(err):
		m.State, m.ErrorCode = contract.FleetMachineFailed, contract.ErrMachineBusy
		m.Error = "another operation holds the machine (workflow " + contract.MachineWorkflowID(m.ID) + ")"
	default:
		state, code, msg := classify(err)
		m.State, m.ErrorCode, m.Error = contract.FleetMachineFailed, code, truncateUTF8(msg, contract.MaxFleetErrorLen)
		if state == contract.OperationCanceled {
			m.State = contract.FleetMachineCanceled
		}
	}
	if cancel, ok := w.cancels[i]; ok {
		cancel()
		delete(w.cancels, i)
	}
	w.groupRunning[m.Group]--
	w.recount()
	w.changes++
	workflow.GetLogger(ctx).Info("fleet machine ended", "workflow_id", contract.FleetWorkflowID(w.in.FleetID),
		"machine_id", m.ID, "state", m.State, "error_code", m.ErrorCode)
	switch {
	case m.State == contract.FleetMachineFailed && m.Canary:
		w.stop(ctx, fmt.Sprintf("canary %s failed: %s", m.Name, m.ErrorCode))
	case w.p.Counts.Failed > w.in.FailureBudget:
		w.stop(ctx, fmt.Sprintf("failure budget exceeded: %d machines failed, budget %d", w.p.Counts.Failed, w.in.FailureBudget))
	}
	if !w.p.CanariesPassed && !w.ending() && w.canariesSucceeded() {
		w.p.CanariesPassed = true
		workflow.GetLogger(ctx).Info("fleet canaries passed", "workflow_id", contract.FleetWorkflowID(w.in.FleetID))
	}
}

func (w *fleetWorkflow) canariesSucceeded() bool {
	for _, m := range w.p.Machines[:w.in.Canaries] {
		if m.State != contract.FleetMachineSucceeded {
			return false
		}
	}
	return true
}

// recount sums the machines up by state.
func (w *fleetWorkflow) recount() {
	c := contract.FleetCounts{Total: len(w.p.Machines)}
	for _, m := range w.p.Machines {
		switch m.State {
		case contract.FleetMachineWaiting:
			c.Waiting++
		case contract.FleetMachineRunning:
			c.Running++
		case contract.FleetMachineSucceeded:
			c.Done++
		case contract.FleetMachineFailed:
			c.Failed++
		case contract.FleetMachineCanceled:
			c.Canceled++
		case contract.FleetMachineSkipped:
			c.Skipped++
		}
	}
	w.p.Counts = c
}

// finish closes the fleet: machines never started are skipped, and the
// state follows from how it stopped.
func (w *fleetWorkflow) finish(ctx workflow.Context) (contract.FleetProgress, error) {
	for i := range w.p.Machines {
		if w.p.Machines[i].State == contract.FleetMachineWaiting {
			w.p.Machines[i].State = contract.FleetMachineSkipped
		}
	}
	w.recount()
	w.p.FinishedAt = workflow.Now(ctx)
	c := w.p.Counts
	summary := fmt.Sprintf("%d done, %d failed, %d canceled, %d not started", c.Done, c.Failed, c.Canceled, c.Skipped)
	log := workflow.GetLogger(ctx)
	switch w.p.State {
	case contract.FleetCanceling:
		w.p.State = contract.FleetCanceled
		log.Info("fleet canceled", "workflow_id", contract.FleetWorkflowID(w.in.FleetID), "summary", summary)
		return w.p, temporal.NewNonRetryableApplicationError("fleet "+w.p.Reason+": "+summary, contract.ErrFleetCanceled, nil, w.p)
	case contract.FleetStopping:
		w.p.State = contract.FleetFailed
		log.Warn("fleet failed", "workflow_id", contract.FleetWorkflowID(w.in.FleetID), "summary", summary)
		return w.p, temporal.NewNonRetryableApplicationError("fleet failed: "+w.p.Reason+": "+summary, contract.ErrFleetFailed, nil, w.p)
	}
	w.p.State = contract.FleetSucceeded
	if c.Failed > 0 {
		w.p.Reason = fmt.Sprintf("%d machines failed, within the budget of %d", c.Failed, w.in.FailureBudget)
	}
	log.Info("fleet succeeded", "workflow_id", contract.FleetWorkflowID(w.in.FleetID), "summary", summary)
	return w.p, nil
}

// canceled ends a fleet whose own workflow was canceled: its children were
// canceled with it; the fleet waits for them to end, then says so.
func (w *fleetWorkflow) canceled(ctx workflow.Context, err error) (contract.FleetProgress, error) {
	if w.p.State != contract.FleetCanceling {
		w.p.State, w.p.Reason = contract.FleetCanceling, "the fleet's workflow was canceled"
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	w.cancelRunning()
	if werr := workflow.Await(dctx, func() bool { return w.p.Counts.Running == 0 }); werr != nil {
		return w.p, werr
	}
	_, _ = w.finish(dctx)
	return w.p, err
}

// continueAsNew hands the fleet's progress to a new run once every update
// handler has returned.
func (w *fleetWorkflow) continueAsNew(ctx workflow.Context) (contract.FleetProgress, error) {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return w.canceled(ctx, err)
	}
	next := w.in
	carry := w.p
	carry.Machines = append([]contract.FleetMachineProgress(nil), w.p.Machines...)
	next.Carry = &carry
	workflow.GetLogger(ctx).Info("fleet continues as new", "workflow_id", contract.FleetWorkflowID(w.in.FleetID),
		"waiting", w.p.Counts.Waiting, "runs", w.p.Runs)
	return w.p, workflow.NewContinueAsNewError(ctx, contract.WorkflowFleet, next)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
