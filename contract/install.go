package contract

import "time"

// Workflow types of the OS lifecycle.
const (
	WorkflowInstall = "bareflow.Install"
	WorkflowWipe    = "bareflow.Wipe"
)

// Operation kinds of the OS lifecycle.
const (
	OperationInstall   OperationKind = "install"
	OperationReinstall OperationKind = "reinstall"
	OperationWipe      OperationKind = "wipe"
)

// Error codes of installs and wipes.
const (
	// ErrNoRootDisk: no disk matches the root disk hint, or none is big
	// enough for the image.
	ErrNoRootDisk = "NoRootDisk"
	// ErrImageChecksumMismatch: the image does not match its checksum; the
	// disk holds what was written and is not booted.
	ErrImageChecksumMismatch = "ImageChecksumMismatch"
	// ErrImageNotFound: the image named does not exist.
	ErrImageNotFound = "ImageNotFound"
	// ErrImageUnsupportedFormat: the writer cannot stream the image.
	ErrImageUnsupportedFormat = "ImageUnsupportedFormat"
	// ErrImageCorrupt: the image's structure is invalid (a qcow2 table
	// pointing past the file's end, overlapping clusters).
	ErrImageCorrupt = "ImageCorrupt"
	// ErrDiskLayout: the written image's partitions cannot be grown or
	// completed as asked.
	ErrDiskLayout = "DiskLayout"
	// ErrKeepConflict: a partition a reinstall was told to keep is missing
	// or lies where the new image would overwrite it.
	ErrKeepConflict = "KeepConflict"
	// ErrOSConfig: the OS configuration cannot be written on the image.
	ErrOSConfig = "OSConfig"
	// ErrOSNotUp: the installed OS did not answer its probe in time.
	ErrOSNotUp = "OSNotUp"
	// ErrWipeFailed: a disk still carries a signature after the wipe, or
	// its erase failed.
	ErrWipeFailed = "WipeFailed"
	// ErrEraseUnsupported: the erase method asked for does not work on a
	// disk.
	ErrEraseUnsupported = "EraseUnsupported"
)

// RootDiskHint picks the disk the OS is written to. Every field given must
// match; with none, the machine's recorded RAID root volume is taken, else
// the smallest disk that holds the image.
type RootDiskHint struct {
	// Path is the block device, /dev/sda or /dev/disk/by-path/….
	Path   string `json:"path,omitempty"`
	Serial string `json:"serial,omitempty"`
	WWN    string `json:"wwn,omitempty"`
	// MinSizeBytes and MaxSizeBytes bound the disk's size.
	MinSizeBytes int64 `json:"min_size_bytes,omitempty"`
	MaxSizeBytes int64 `json:"max_size_bytes,omitempty"`
}

// IsZero reports whether the hint names nothing.
func (h RootDiskHint) IsZero() bool { return h == RootDiskHint{} }

// PartitionSpec is an extra partition made after the root partition.
type PartitionSpec struct {
	// Label names the partition (GPT name and filesystem label): 1–11
	// letters, digits, '_' or '-'. A reinstall keeps a partition by it.
	Label     string `json:"label"`
	SizeBytes int64  `json:"size_bytes"`
	// Filesystem is ext4, xfs, vfat or swap.
	Filesystem string `json:"filesystem"`
	// MountPoint is an absolute path for the fstab entry; empty for none
	// (swap gets "none").
	MountPoint string `json:"mount_point,omitempty"`
	// Options are the fstab options; empty means defaults.
	Options string `json:"options,omitempty"`
}

// NetworkSettings is the installed OS's network, in the order the OS brings
// it up: NICs, bonds over NICs, VLANs over either.
type NetworkSettings struct {
	Interfaces []NICSettings  `json:"interfaces,omitempty"`
	Bonds      []BondSettings `json:"bonds,omitempty"`
	VLANs      []VLANSettings `json:"vlans,omitempty"`
	DNS        []string       `json:"dns,omitempty"`
	Search     []string       `json:"search,omitempty"`
	Routes     []RouteSpec    `json:"routes,omitempty"`
}

// Addressing is the layer 3 of a link: DHCP, or static addresses in CIDR
// form with an optional gateway.
type Addressing struct {
	DHCP      bool     `json:"dhcp,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	Gateway   string   `json:"gateway,omitempty"`
	MTU       int      `json:"mtu,omitempty"`
}

// NICSettings configures one physical NIC, named Name in the OS and
// matched by MAC when given.
type NICSettings struct {
	Name string `json:"name"`
	MAC  string `json:"mac,omitempty"`
	Addressing
}

// BondSettings configures a Linux bond.
type BondSettings struct {
	Name string `json:"name"`
	// Members are NIC names or MACs.
	Members []string `json:"members"`
	// Mode is 0–6 or its name (balance-rr … balance-alb).
	Mode    string            `json:"mode"`
	Options map[string]string `json:"options,omitempty"`
	Addressing
}

// VLANSettings configures an 802.1Q device over a NIC or a bond.
type VLANSettings struct {
	Name   string `json:"name,omitempty"`
	Parent string `json:"parent"`
	ID     int    `json:"id"`
	Addressing
}

// RouteSpec is a static route.
type RouteSpec struct {
	To        string `json:"to"`
	Via       string `json:"via"`
	Metric    uint32 `json:"metric,omitempty"`
	Interface string `json:"interface,omitempty"`
}

// FileSpec is an extra file written into the installed OS.
type FileSpec struct {
	Path    string `json:"path"`
	Content string `json:"content"`
	// Mode is the permission bits in octal ("0644"); empty means 0644.
	Mode string `json:"mode,omitempty"`
}

// OSSettings is what an install configures in the written OS.
type OSSettings struct {
	Hostname string          `json:"hostname"`
	Domain   string          `json:"domain,omitempty"`
	Network  NetworkSettings `json:"network"`
	// RootPasswordHash is a crypt(3) hash ($6$, $5$ or $y$); never a
	// password in clear.
	RootPasswordHash  string   `json:"root_password_hash,omitempty"`
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys,omitempty"`
	// UserData is cloud-init user-data for a NoCloud seed.
	UserData string     `json:"user_data,omitempty"`
	Files    []FileSpec `json:"files,omitempty"`
}

// OSProbe says how Install checks that the installed OS came up: a TCP
// connection to Port on Address (default: the first static address of the
// network settings; port 22).
type OSProbe struct {
	Address string `json:"address,omitempty"`
	Port    int    `json:"port,omitempty"`
	// Skip ends the install when the machine has rebooted, without a probe.
	Skip bool `json:"skip,omitempty"`
}

// InstallInput is the input of the Install workflow, for an install and a
// reinstall alike.
type InstallInput struct {
	OperationID string
	MachineID   string
	// Reinstall marks a reinstall of a running machine: RAID stays, and
	// Keep names the partitions that stay.
	Reinstall bool
	// Image is the image's ID or name.
	Image string
	// RAID, when set, is built before the root disk is chosen.
	RAID *RAIDSpec
	// RootDisk picks the disk.
	RootDisk RootDiskHint
	// RootSizeBytes grows the root partition to that size; 0 grows it to
	// the end of the disk (less the extra partitions).
	RootSizeBytes int64
	Partitions    []PartitionSpec
	// Keep lists the labels of partitions a reinstall leaves as they are.
	Keep  []string
	OS    OSSettings
	Probe OSProbe
	// RamdiskTimeout bounds the wait for the ramdisk; OSTimeout the wait
	// for the installed OS after the reboot.
	RamdiskTimeout time.Duration
	OSTimeout      time.Duration
	RequestedBy    string
}

// DefaultOSTimeout is how long Install waits for the installed OS.
const DefaultOSTimeout = 20 * time.Minute

// InstallResult is what an install did.
type InstallResult struct {
	MachineID string `json:"machine_id"`
	// RootDisk is the disk written, Image the image's ID.
	RootDisk string `json:"root_disk"`
	Image    string `json:"image"`
	// BytesWritten is what went to the disk; ResumedAt the offset a
	// resumed write continued from.
	BytesWritten int64  `json:"bytes_written"`
	ResumedAt    int64  `json:"resumed_at,omitempty"`
	Checksum     string `json:"checksum"`
	// Address is where the OS answered its probe.
	Address string `json:"address,omitempty"`
}

// EraseMethod is how a wipe erases a disk's data.
type EraseMethod string

// Erase methods. EraseNone only removes tables and signatures.
const (
	EraseNone      EraseMethod = ""
	EraseAuto      EraseMethod = "auto"
	EraseNVMe      EraseMethod = "nvme"
	EraseATA       EraseMethod = "ata-secure-erase"
	EraseDiscard   EraseMethod = "discard"
	EraseOverwrite EraseMethod = "overwrite"
)

// Validate reports whether m is a known method.
func (m EraseMethod) Validate() error {
	return oneOf(m, []EraseMethod{EraseNone, EraseAuto, EraseNVMe, EraseATA, EraseDiscard, EraseOverwrite},
		"erase method", `"", auto, nvme, ata-secure-erase, discard or overwrite`)
}

// WipeInput is the input of the Wipe workflow.
type WipeInput struct {
	OperationID string
	MachineID   string
	// Erase, when set, erases every disk's data after its tables and
	// signatures are gone.
	Erase EraseMethod
	// KeepRAID leaves the RAID controllers' configuration alone.
	KeepRAID       bool
	RamdiskTimeout time.Duration
	// EraseTimeout bounds the erase of the slowest disk; zero means 48h.
	EraseTimeout time.Duration
	RequestedBy  string
}

// DefaultEraseTimeout bounds a disk erase.
const DefaultEraseTimeout = 48 * time.Hour

// WipeResult is what a wipe did.
type WipeResult struct {
	MachineID string   `json:"machine_id"`
	Disks     []string `json:"disks"`
	// Erased maps a disk to the method that erased it.
	Erased map[string]string `json:"erased,omitempty"`
	// LeasesReleased counts the OS network addresses given back.
	LeasesReleased int `json:"leases_released"`
}
