package contract

import "time"

// WorkflowMakeRAID is the workflow type that builds a machine's RAID.
const WorkflowMakeRAID = "bareflow.MakeRAID"

// OperationRAID is the operation kind of MakeRAID.
const OperationRAID OperationKind = "raid"

// RAIDLevel is a RAID level a spec asks for.
type RAIDLevel string

// RAID levels. JBOD passes the disks through one by one.
const (
	RAID0    RAIDLevel = "0"
	RAID1    RAIDLevel = "1"
	RAID1E   RAIDLevel = "1e"
	RAID5    RAIDLevel = "5"
	RAID6    RAIDLevel = "6"
	RAID10   RAIDLevel = "10"
	RAID50   RAIDLevel = "50"
	RAID60   RAIDLevel = "60"
	RAIDJBOD RAIDLevel = "jbod"
)

// RAIDLevels lists every level a spec may name.
var RAIDLevels = []RAIDLevel{RAID0, RAID1, RAID1E, RAID5, RAID6, RAID10, RAID50, RAID60, RAIDJBOD}

// Validate reports whether l is a known level.
func (l RAIDLevel) Validate() error {
	return oneOf(l, RAIDLevels, "RAID level", "0, 1, 1e, 5, 6, 10, 50, 60 or jbod")
}

// RAIDSpec is the RAID layout asked for a machine. Building it first clears
// every controller the spec names (foreign configurations included).
type RAIDSpec struct {
	Arrays []RAIDArray `json:"arrays"`
	// JBODRest passes the disks no array takes through to the OS, where the
	// controller can.
	JBODRest bool `json:"jbod_rest,omitempty"`
}

// RAIDArray is one array of a spec.
type RAIDArray struct {
	Level RAIDLevel `json:"level"`
	// Controller picks the controller by PCI address ("0000:3b:00.0") or,
	// for Linux software RAID, "md". Empty means the only controller whose
	// disks can satisfy the array; for machines without a RAID controller,
	// md.
	Controller string `json:"controller,omitempty"`
	// Name labels the array's logical drives where the tool takes a name
	// (for md, /dev/md/NAME): a letter or digit, then letters, digits, '-'
	// or '_', 12 characters at most. Splits add "-1", "-2"… Empty means
	// "bf" and the array's index ("bf0").
	Name  string       `json:"name,omitempty"`
	Disks DiskSelector `json:"disks"`
	// Splits carve the array into several logical drives; none means one
	// logical drive of the whole array.
	Splits []RAIDSplit `json:"splits,omitempty"`
	// StripKiB is the strip size; zero leaves the controller's default.
	StripKiB int `json:"strip_kib,omitempty"`
	// ReadAhead and WriteBack set the cache policy where the controller
	// has one; nil leaves its default.
	ReadAhead *bool `json:"read_ahead,omitempty"`
	WriteBack *bool `json:"write_back,omitempty"`
	// Root marks the array (its first logical drive) that holds the OS.
	Root bool `json:"root,omitempty"`
}

// DiskSelector picks the disks of an array. Explicit slots win; otherwise
// Count disks matching every criterion given are taken, smallest first,
// in slot order.
type DiskSelector struct {
	// Slots names the disks as the controller's tool does ("252:0", "1I:1:3",
	// or for md the block device "vdb").
	Slots []string `json:"slots,omitempty"`
	Count int      `json:"count,omitempty"`
	// Media is DiskHDD, DiskSSD or DiskNVMe; empty takes any, but not mixed
	// unless AllowMixedMedia.
	Media           string `json:"media,omitempty"`
	AllowMixedMedia bool   `json:"allow_mixed_media,omitempty"`
	MinSizeBytes    int64  `json:"min_size_bytes,omitempty"`
	MaxSizeBytes    int64  `json:"max_size_bytes,omitempty"`
	// SlotFrom and SlotTo bound the slot numbers taken (inclusive).
	SlotFrom *int `json:"slot_from,omitempty"`
	SlotTo   *int `json:"slot_to,omitempty"`
}

// RAIDSplit is one logical drive carved from an array: SizeBytes, or
// Percent of the array. The last split may leave both zero to take the rest.
type RAIDSplit struct {
	SizeBytes int64 `json:"size_bytes,omitempty"`
	Percent   int   `json:"percent,omitempty"`
}

// MakeRAIDInput starts a MakeRAID workflow.
type MakeRAIDInput struct {
	OperationID string
	MachineID   string
	Spec        RAIDSpec
	// LeaveInRamdisk keeps the machine in its ramdisk afterwards (an install
	// follows); otherwise it is powered off.
	LeaveInRamdisk bool
	// RamdiskTimeout bounds the wait for the ramdisk. Zero means
	// DefaultRamdiskTimeout.
	RamdiskTimeout time.Duration
	RequestedBy    string
}

// BuiltVolume is a logical drive MakeRAID built and the block device the
// OS sees it as.
type BuiltVolume struct {
	Controller string    `json:"controller"`
	Level      RAIDLevel `json:"level"`
	ID         string    `json:"id"`
	Device     string    `json:"device"`
	SizeBytes  int64     `json:"size_bytes"`
	Root       bool      `json:"root,omitempty"`
}

// MakeRAIDResult is what a MakeRAID workflow returns.
type MakeRAIDResult struct {
	MachineID string
	Volumes   []BuiltVolume
	// RootDevice is the block device of the root volume, when one was
	// marked.
	RootDevice string
}

// Stable error types of RAID operations.
const (
	// ErrRAIDSpecInvalid: the spec cannot be built on this hardware; the
	// message says why. Nothing was touched.
	ErrRAIDSpecInvalid = "RAIDSpecInvalid"
	// ErrUnsupportedRAIDLevel: the controller cannot build the level.
	ErrUnsupportedRAIDLevel = "UnsupportedRAIDLevel"
	// ErrRAIDToolMissing: the controller's tool is not in the ramdisk.
	ErrRAIDToolMissing = "RAIDToolMissing"
	// ErrRAIDBuildFailed: the controller refused a command; the machine's
	// last error lists what was built.
	ErrRAIDBuildFailed = "RAIDBuildFailed"
	// ErrRAIDVolumesMissing: the logical drives did not show up as block
	// devices in time.
	ErrRAIDVolumesMissing = "RAIDVolumesMissing"
)
