// Package contract holds every name and type that crosses a bareflow process
// boundary: task queues, workflow type names, signal and query names,
// workflow-ID helpers and the input and result structs of each workflow.
//
// Other automations import this package to start bareflow workflows with the
// Temporal SDK alone. It imports nothing that does I/O.
package contract

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// TaskQueue is the default task queue served by bareflow workers. A site whose
// machines are reachable only from inside runs workers on its own queue.
const TaskQueue = "bareflow"

// Workflow type names. They are registered explicitly so that renaming a Go
// function never breaks the histories of running workflows.
const (
	WorkflowPower         = "bareflow.Power"
	WorkflowSetBootDevice = "bareflow.SetBootDevice"
	WorkflowPowerSync     = "bareflow.PowerSync"
	WorkflowPowerStatus   = "bareflow.PowerStatus"
	WorkflowRegister      = "bareflow.Register"
)

// Query and signal names.
const (
	// QueryStatus returns an OperationStatus for any operation workflow.
	QueryStatus = "status"
	// SignalBootEvent carries a BootEvent from the boot service to the
	// machine's workflow: the machine asked for an address or a script.
	SignalBootEvent = "boot-event"
	// SignalRamdiskReady carries a RamdiskReady from the boot service to the
	// machine's workflow: the ramdisk phoned home and its SSH server is up.
	SignalRamdiskReady = "ramdisk-ready"
)

// PowerSyncScheduleID is the ID of the Temporal schedule that refreshes the
// power state of the fleet.
const PowerSyncScheduleID = "bareflow-power-sync"

// MachineWorkflowID is the workflow ID shared by every mutating operation on
// one machine, so that two of them can never run at once.
func MachineWorkflowID(machineID string) string { return "machine/" + machineID }

// MachineIDFromWorkflowID returns the machine ID in a workflow ID made by
// MachineWorkflowID, and false for any other workflow ID.
func MachineIDFromWorkflowID(workflowID string) (string, bool) {
	id, ok := strings.CutPrefix(workflowID, "machine/")
	return id, ok && id != ""
}

// PowerState is the power state of a chassis as its BMC reports it.
type PowerState string

// Power states.
const (
	PowerOn      PowerState = "on"
	PowerOff     PowerState = "off"
	PowerUnknown PowerState = "unknown"
)

// Validate reports whether s is a known power state.
func (s PowerState) Validate() error {
	switch s {
	case PowerOn, PowerOff, PowerUnknown:
		return nil
	}
	return fmt.Errorf("unknown power state %q", string(s))
}

// PowerAction is a power change an operator can ask for.
type PowerAction string

// Power actions.
const (
	// PowerActionOn turns the chassis on.
	PowerActionOn PowerAction = "on"
	// PowerActionOff asks the OS to shut down (ACPI soft off) and, when the
	// chassis is still on after the grace period, turns it off hard.
	PowerActionOff PowerAction = "off"
	// PowerActionHardOff turns the chassis off at once.
	PowerActionHardOff PowerAction = "hard_off"
	// PowerActionReset is a warm reset; the chassis stays on.
	PowerActionReset PowerAction = "reset"
	// PowerActionCycle turns the chassis off, waits, and turns it on again.
	PowerActionCycle PowerAction = "cycle"
)

// PowerActions lists every PowerAction, in the order the API documents them.
var PowerActions = []PowerAction{PowerActionOn, PowerActionOff, PowerActionHardOff, PowerActionReset, PowerActionCycle}

// Validate reports whether a is a known power action.
func (a PowerAction) Validate() error {
	return oneOf(a, PowerActions, "power action", "one of on, off, hard_off, reset, cycle")
}

// oneOf reports whether v is one of known; otherwise an error names what v
// was meant to be and what is wanted.
func oneOf[T ~string](v T, known []T, what, want string) error {
	if slices.Contains(known, v) {
		return nil
	}
	return fmt.Errorf("unknown %s %q (want %s)", what, string(v), want)
}

// BootDevice is the device a machine boots from next.
type BootDevice string

// Boot devices.
const (
	BootPXE  BootDevice = "pxe"
	BootDisk BootDevice = "disk"
	// BootNone means no override: the machine follows its firmware's order.
	BootNone BootDevice = "none"
)

// Validate reports whether d is a known boot device.
func (d BootDevice) Validate() error {
	switch d {
	case BootPXE, BootDisk, BootNone:
		return nil
	}
	return fmt.Errorf("unknown boot device %q (want pxe, disk or none)", string(d))
}

// BootMode is the firmware mode a boot device override applies to.
type BootMode string

// Boot modes.
const (
	BootModeLegacy BootMode = "legacy"
	BootModeEFI    BootMode = "efi"
)

// Validate reports whether m is a known boot mode.
func (m BootMode) Validate() error {
	switch m {
	case BootModeLegacy, BootModeEFI:
		return nil
	}
	return fmt.Errorf("unknown boot mode %q (want legacy or efi)", string(m))
}

// MachineState is where a machine stands in its life cycle.
type MachineState string

// Machine states.
const (
	MachineDiscovered  MachineState = "discovered"
	MachineEnrolled    MachineState = "enrolled"
	MachineRegistering MachineState = "registering"
	MachineReady       MachineState = "ready"
	MachineDeploying   MachineState = "deploying"
	MachineRunning     MachineState = "running"
	MachineWiping      MachineState = "wiping"
	MachineError       MachineState = "error"
)

// MachineStates lists every MachineState.
var MachineStates = []MachineState{MachineDiscovered, MachineEnrolled, MachineRegistering, MachineReady, MachineDeploying, MachineRunning, MachineWiping, MachineError}

// Validate reports whether s is a known machine state.
func (s MachineState) Validate() error {
	for _, k := range MachineStates {
		if s == k {
			return nil
		}
	}
	return fmt.Errorf("unknown machine state %q", string(s))
}

// OperationKind names what an operation does.
type OperationKind string

// Operation kinds.
const (
	OperationPower         OperationKind = "power"
	OperationSetBootDevice OperationKind = "set_boot_device"
	OperationRegister      OperationKind = "register"
)

// OperationState is where an operation stands.
type OperationState string

// Operation states. Succeeded, failed and canceled are final.
const (
	OperationPending   OperationState = "pending"
	OperationRunning   OperationState = "running"
	OperationSucceeded OperationState = "succeeded"
	OperationFailed    OperationState = "failed"
	OperationCanceled  OperationState = "canceled"
)

// Final reports whether s is a state an operation never leaves.
func (s OperationState) Final() bool {
	return s == OperationSucceeded || s == OperationFailed || s == OperationCanceled
}

// Stable error types carried by non-retryable application errors. API clients
// and other automations may match on them.
const (
	ErrBMCAuthFailed     = "BMCAuthFailed"
	ErrBMCUnreachable    = "BMCUnreachable"
	ErrBMCNotConfigured  = "BMCNotConfigured"
	ErrBMCUnsupported    = "BMCUnsupported"
	ErrPowerStateTimeout = "PowerStateTimeout"
	ErrBootDeviceNotSet  = "BootDeviceNotSet"
	ErrMachineNotFound   = "MachineNotFound"
	ErrInvalidInput      = "InvalidInput"
	// ErrRamdiskTimeout: the ramdisk did not phone home in time.
	ErrRamdiskTimeout = "RamdiskTimeout"
	// ErrHostKeyMismatch: the ramdisk's SSH host key is not the one it
	// phoned home with.
	ErrHostKeyMismatch = "RamdiskHostKeyMismatch"
	// ErrRamdiskUnreachable: the ramdisk's SSH server did not answer or
	// refused bareflow's key.
	ErrRamdiskUnreachable = "RamdiskUnreachable"
	// ErrBMCSetupFailed: the in-band BMC set-up failed for good (no LAN
	// channel, no free user slot, a password refused, no address).
	ErrBMCSetupFailed = "BMCSetupFailed"
	// ErrDuplicateMachine: the hardware is already another machine.
	ErrDuplicateMachine = "DuplicateMachine"
	// ErrMachineBusy: the machine is in a state the operation cannot start from.
	ErrMachineBusy = "MachineBusy"
)

// PowerInput starts a Power workflow.
type PowerInput struct {
	// OperationID is the operation record this run reports to. When empty,
	// the workflow uses its own run ID.
	OperationID string
	MachineID   string
	Action      PowerAction
	// SoftOffGrace is how long an "off" waits for the OS to shut down before
	// it turns the chassis off hard. Zero means DefaultSoftOffGrace.
	SoftOffGrace time.Duration
	// CycleDelay is how long a "cycle" keeps the chassis off. Zero means
	// DefaultCycleDelay.
	CycleDelay time.Duration
	// RequestedBy names who asked, for the audit trail.
	RequestedBy string
}

// Power defaults.
const (
	DefaultSoftOffGrace = 3 * time.Minute
	DefaultCycleDelay   = 5 * time.Second
)

// PowerResult is what a Power workflow returns.
type PowerResult struct {
	MachineID  string
	Action     PowerAction
	PowerState PowerState
	// HardOff is true when a soft off had to be followed by a hard off.
	HardOff bool
}

// SetBootDeviceInput starts a SetBootDevice workflow.
type SetBootDeviceInput struct {
	OperationID string
	MachineID   string
	Device      BootDevice
	Mode        BootMode
	// Persistent keeps the override for every boot; otherwise it applies to
	// the next boot only.
	Persistent  bool
	RequestedBy string
}

// SetBootDeviceResult is what a SetBootDevice workflow returns.
type SetBootDeviceResult struct {
	MachineID string
	Device    BootDevice
	Mode      BootMode
	// Verified is true when the BMC reported the new boot flags back.
	Verified bool
}

// PowerSyncInput starts a PowerSync workflow.
type PowerSyncInput struct {
	// Concurrency bounds how many BMCs are asked at once. Zero means
	// DefaultPowerSyncConcurrency.
	Concurrency int
}

// DefaultPowerSyncConcurrency is how many BMCs a fleet power sync asks at once.
const DefaultPowerSyncConcurrency = 16

// PowerSyncResult is what a PowerSync workflow returns.
type PowerSyncResult struct {
	Machines int
	Recorded int
	Failed   int
}

// OperationStatus is what QueryStatus returns: where an operation stands now.
type OperationStatus struct {
	OperationID string
	MachineID   string
	Kind        OperationKind
	Step        string
	// Progress is the share of the operation done, from 0 to 1.
	Progress float64
}

// PowerStatusWorkflowID is the workflow ID of a power-status read of one
// machine. It differs from MachineWorkflowID: a read never waits for, nor
// blocks, an operation on the machine.
func PowerStatusWorkflowID(machineID string) string { return "power-status/" + machineID }

// PowerStatusInput starts a PowerStatus workflow.
type PowerStatusInput struct {
	MachineID string
}

// PowerStatusResult is the power state a machine's BMC reported.
type PowerStatusResult struct {
	MachineID  string
	PowerState PowerState
	At         time.Time
}

// BootEventKind names what the boot service saw a machine do.
type BootEventKind string

// Boot event kinds.
const (
	BootEventDHCP   BootEventKind = "dhcp"
	BootEventScript BootEventKind = "ipxe_script"
)

// BootEvent is sent as SignalBootEvent when a machine network-boots.
type BootEvent struct {
	MachineID string
	Kind      BootEventKind
	MAC       string
	// Addr is the address the machine was given, when any.
	Addr string
	// Arch is the DHCP client architecture (option 93) name, when sent.
	Arch string
	At   time.Time
}

// RamdiskReady is sent as SignalRamdiskReady when the ramdisk phones home
// with a valid token.
type RamdiskReady struct {
	MachineID string
	// Addr is the ramdisk's address; SSH listens there on SSHPort.
	Addr string
	// SSHPort is the ramdisk's SSH port; zero means 22.
	SSHPort int
	// MACs lists every NIC the ramdisk found.
	MACs []string
	// SSHHostKey is the ramdisk's SSH host public key in authorized_keys
	// form; sessions pin it.
	SSHHostKey string
	// ImageCacheURL is where the boot service the ramdisk phoned home
	// through serves cached images (the image's ID follows); empty when
	// it caches none.
	ImageCacheURL string `json:",omitempty"`
	At            time.Time
}

// RegisterInput starts a Register workflow.
type RegisterInput struct {
	OperationID string
	MachineID   string
	// Discovered is true when the boot service created the machine on its
	// first PXE request: it is booting already, so Register does not power
	// cycle it.
	Discovered bool
	// BMC says how the machine's BMC is set up in-band.
	BMC BMCSetup
	// LeaveInRamdisk keeps the machine running its ramdisk when Register is
	// done; otherwise it is powered off.
	LeaveInRamdisk bool
	// RamdiskTimeout bounds the wait for the ramdisk to phone home. Zero
	// means DefaultRamdiskTimeout.
	RamdiskTimeout time.Duration
	RequestedBy    string
}

// DefaultRamdiskTimeout is how long an operation waits for a machine's
// ramdisk to phone home.
const DefaultRamdiskTimeout = 30 * time.Minute

// BMCSetupMode says what Register does to a machine's BMC.
type BMCSetupMode string

// BMC set-up modes.
const (
	// BMCSetupAuto keeps the BMC a machine was created with (verifying it),
	// and otherwise sets one up: with a static address from the BMC network
	// when there is one, keeping the BMC's own address otherwise.
	BMCSetupAuto BMCSetupMode = ""
	// BMCSetupStatic gives the BMC a reserved address of a BMC network.
	BMCSetupStatic BMCSetupMode = "static"
	// BMCSetupDHCP makes the BMC take its address by DHCP.
	BMCSetupDHCP BMCSetupMode = "dhcp"
	// BMCSetupKeep keeps the BMC's address and only adds bareflow's user.
	BMCSetupKeep BMCSetupMode = "keep"
	// BMCSetupSkip leaves the BMC alone.
	BMCSetupSkip BMCSetupMode = "skip"
)

// Validate reports whether m is a known mode.
func (m BMCSetupMode) Validate() error {
	switch m {
	case BMCSetupAuto, BMCSetupStatic, BMCSetupDHCP, BMCSetupKeep, BMCSetupSkip:
		return nil
	}
	return fmt.Errorf("unknown BMC set-up mode %q (want static, dhcp, keep or skip)", string(m))
}

// BMCSetup says how Register sets up a machine's BMC.
type BMCSetup struct {
	Mode BMCSetupMode
	// Network names the BMC network of a static set-up; empty means the
	// only network of kind bmc.
	Network string
	// Username is the BMC user bareflow creates; empty means
	// DefaultBMCUsername.
	Username string
	// VerifyWithin is how long the new credentials may take to work over
	// the network (BMCs restart their LAN stack after a change). Zero means
	// DefaultBMCVerifyWithin.
	VerifyWithin time.Duration
}

// DefaultBMCVerifyWithin is how long Register retries logging in to a BMC
// it has just set up.
const DefaultBMCVerifyWithin = 3 * time.Minute

// DefaultBMCUsername is the BMC user Register creates.
const DefaultBMCUsername = "bareflow"

// RegisterResult is what a Register workflow returns.
type RegisterResult struct {
	MachineID string
	Ramdisk   RamdiskReady
	// Vendor, Model, Serial, CPUs (logical), MemoryBytes and Disks sum up
	// the inventory recorded.
	Vendor      string
	Model       string
	Serial      string
	CPUs        int
	MemoryBytes int64
	Disks       int
	// BMCAddr is the BMC's address and port ("" when the BMC was left
	// alone) and BMCUser the user bareflow uses there.
	BMCAddr    string
	BMCUser    string
	PowerState PowerState
}
