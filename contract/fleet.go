package contract

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WorkflowFleet is the workflow type that runs one operation over many
// machines.
const WorkflowFleet = "bareflow.Fleet"

// Query and update names of the Fleet workflow.
const (
	// QueryFleetProgress returns a FleetProgress.
	QueryFleetProgress = "fleet-progress"
	// UpdateFleetPause stops the fleet from starting machines; the running
	// ones go on. It takes a FleetControl and returns a FleetProgress.
	UpdateFleetPause = "fleet-pause"
	// UpdateFleetResume lets a paused fleet start machines again.
	UpdateFleetResume = "fleet-resume"
	// UpdateFleetCancel cancels the running machines' operations and starts
	// no more; the fleet ends canceled once they have ended.
	UpdateFleetCancel = "fleet-cancel"
)

// Error codes of fleets.
const (
	// ErrFleetFailed: a canary failed, or more machines failed than the
	// failure budget allows. The error's details carry the FleetProgress.
	ErrFleetFailed = "FleetFailed"
	// ErrFleetCanceled: an operator canceled the fleet.
	ErrFleetCanceled = "FleetCanceled"
	// ErrFleetState: a pause, resume or cancel the fleet's state does not
	// allow (resume of a fleet that is not paused, anything on a fleet that
	// is ending).
	ErrFleetState = "FleetState"
)

// Fleet bounds.
const (
	// MaxFleetMachines bounds a fleet's size; the fleet's input and its
	// progress (carried over continue-as-new) stay well under Temporal's
	// payload limit.
	MaxFleetMachines = 1000
	// MaxFleetErrorLen bounds the error message kept per machine.
	MaxFleetErrorLen = 300
)

// FleetWorkflowID is the workflow ID of a fleet. A fleet never takes a
// machine's workflow ID: its children do.
func FleetWorkflowID(fleetID string) string { return "fleet/" + fleetID }

// FleetIDFromWorkflowID returns the fleet ID in a workflow ID made by
// FleetWorkflowID, and false for any other workflow ID.
func FleetIDFromWorkflowID(workflowID string) (string, bool) {
	id, ok := strings.CutPrefix(workflowID, "fleet/")
	return id, ok && id != ""
}

// FleetOp is the operation a fleet runs on each machine.
type FleetOp string

// Fleet operations, each the workflow type it runs as a child.
const (
	FleetInstall  FleetOp = "install"
	FleetWipe     FleetOp = "wipe"
	FleetPower    FleetOp = "power"
	FleetRegister FleetOp = "register"
)

// FleetOps lists every FleetOp.
var FleetOps = []FleetOp{FleetInstall, FleetWipe, FleetPower, FleetRegister}

// Validate reports whether o is a known fleet operation.
func (o FleetOp) Validate() error {
	return oneOf(o, FleetOps, "fleet operation", "install, wipe, power or register")
}

// WorkflowType is the workflow type a machine of the fleet runs.
func (o FleetOp) WorkflowType() string {
	switch o {
	case FleetInstall:
		return WorkflowInstall
	case FleetWipe:
		return WorkflowWipe
	case FleetPower:
		return WorkflowPower
	case FleetRegister:
		return WorkflowRegister
	}
	return ""
}

// FleetMachine is one machine of a fleet, with the group the caller
// resolved for it.
type FleetMachine struct {
	ID   string
	Name string
	// Group is the machine's group (its network's name, or the value of
	// a label); empty when it has none. Machines with no group share the
	// group "" and GroupLimit applies to it as to any other.
	Group string `json:",omitempty"`
}

// FleetTemplate is the input every machine's operation is built from; only
// the one of the fleet's Op is used. MachineID, OperationID and RequestedBy
// are filled in per machine, and for an install the host name from
// FleetInput.HostnamePattern.
type FleetTemplate struct {
	Install  *InstallInput  `json:",omitempty"`
	Wipe     *WipeInput     `json:",omitempty"`
	Power    *PowerInput    `json:",omitempty"`
	Register *RegisterInput `json:",omitempty"`
}

// FleetInput starts a Fleet workflow.
type FleetInput struct {
	FleetID string
	Op      FleetOp
	// Machines are started in this order, the first Canaries of them
	// first.
	Machines []FleetMachine
	Template FleetTemplate
	// HostnamePattern names each installed machine (see ExpandHostname);
	// empty keeps the template's host name, which only makes sense for a
	// fleet of one.
	HostnamePattern string `json:",omitempty"`
	// Concurrency bounds how many machines run at once; zero means
	// DefaultFleetConcurrency.
	Concurrency int
	// GroupBy says what the machines' groups are ("network" or
	// "label:<key>"), for display; GroupLimit bounds how many machines of
	// one group run at once (zero: no bound).
	GroupBy    string `json:",omitempty"`
	GroupLimit int    `json:",omitempty"`
	// Canaries is how many machines run first, alone: every one must
	// succeed before the others start, and a failure of one ends the
	// fleet.
	Canaries int `json:",omitempty"`
	// FailureBudget is how many machines may fail: once more have, no
	// machine starts any more and the fleet ends failed when the running
	// ones have ended. Zero means the first failure ends the fleet.
	FailureBudget int
	// CancelOnFailure cancels the running machines as soon as the budget
	// is exceeded (or a canary failed) instead of letting them finish.
	CancelOnFailure bool `json:",omitempty"`
	RequestedBy     string
	// Carry is the state a run hands to the next over continue-as-new;
	// nil on the first run.
	Carry *FleetProgress `json:",omitempty"`
}

// DefaultFleetConcurrency is how many machines a fleet runs at once when
// it is not told.
const DefaultFleetConcurrency = 10

// FleetState is where a fleet stands.
type FleetState string

// Fleet states. Succeeded, failed and canceled are final.
const (
	FleetRunning FleetState = "running"
	FleetPaused  FleetState = "paused"
	// FleetStopping: a canary failed or the budget is exceeded; no machine
	// starts any more and the fleet waits for the running ones.
	FleetStopping FleetState = "stopping"
	// FleetCanceling: the running machines' operations are being canceled.
	FleetCanceling FleetState = "canceling"
	FleetSucceeded FleetState = "succeeded"
	FleetFailed    FleetState = "failed"
	FleetCanceled  FleetState = "canceled"
)

// Final reports whether s is a state a fleet never leaves.
func (s FleetState) Final() bool {
	return s == FleetSucceeded || s == FleetFailed || s == FleetCanceled
}

// FleetMachineState is where one machine of a fleet stands.
type FleetMachineState string

// Machine states within a fleet. Waiting machines become skipped when the
// fleet ends without starting them.
const (
	FleetMachineWaiting   FleetMachineState = "waiting"
	FleetMachineRunning   FleetMachineState = "running"
	FleetMachineSucceeded FleetMachineState = "succeeded"
	FleetMachineFailed    FleetMachineState = "failed"
	FleetMachineCanceled  FleetMachineState = "canceled"
	FleetMachineSkipped   FleetMachineState = "skipped"
)

// FleetMachineProgress is where one machine of a fleet stands.
type FleetMachineProgress struct {
	ID     string
	Name   string
	Group  string `json:",omitempty"`
	Canary bool   `json:",omitempty"`
	State  FleetMachineState
	// OperationID is the machine's operation: its child workflow's run ID,
	// which the operation record takes as its ID.
	OperationID string `json:",omitempty"`
	// ErrorCode and Error say why the machine failed or was canceled;
	// ErrorCode is a stable code (contract.Err*), MachineBusy when another
	// operation held the machine.
	ErrorCode  string    `json:",omitempty"`
	Error      string    `json:",omitempty"`
	StartedAt  time.Time `json:",omitzero"`
	FinishedAt time.Time `json:",omitzero"`
}

// FleetCounts sums a fleet's machines up by state. Done counts the
// machines that succeeded.
type FleetCounts struct {
	Total    int
	Waiting  int
	Running  int
	Done     int
	Failed   int
	Canceled int
	Skipped  int
}

// FleetProgress is what QueryFleetProgress and the fleet's updates return,
// and what the Fleet workflow returns when it succeeds.
type FleetProgress struct {
	FleetID string
	Op      FleetOp
	State   FleetState
	// Reason says why the fleet stopped, failed or was canceled.
	Reason string `json:",omitempty"`
	// CanariesPassed is true once every canary succeeded (or when there
	// are none).
	CanariesPassed bool
	Counts         FleetCounts
	Concurrency    int
	GroupBy        string `json:",omitempty"`
	GroupLimit     int    `json:",omitempty"`
	Canaries       int    `json:",omitempty"`
	FailureBudget  int
	// MaxRunning is the most machines that ran at once.
	MaxRunning int
	// Runs counts the workflow runs the fleet took (continue-as-new).
	Runs        int
	RequestedBy string `json:",omitempty"`
	StartedAt   time.Time
	FinishedAt  time.Time `json:",omitzero"`
	Machines    []FleetMachineProgress
}

// FleetControl is the input of the fleet's updates.
type FleetControl struct {
	// RequestedBy names who asked, for the fleet's log.
	RequestedBy string `json:",omitempty"`
}

// ExpandHostname makes a machine's host name from a pattern: {name} is the
// machine's name and {index} its position in the fleet, from 1; other text
// is kept. "web-{index}" names the third machine web-3, "{name}" names each
// machine after itself.
func ExpandHostname(pattern, name string, index int) string {
	return strings.NewReplacer("{name}", name, "{index}", strconv.Itoa(index)).Replace(pattern)
}

// ValidateHostnamePattern reports whether p holds only the placeholders
// ExpandHostname knows.
func ValidateHostnamePattern(p string) error {
	rest := strings.NewReplacer("{name}", "", "{index}", "").Replace(p)
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("host name pattern %q: only {name} and {index} may be used", p)
	}
	return nil
}
