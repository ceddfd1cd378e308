package contract

import "time"

// Inventory is the hardware of a machine as its ramdisk (or, for an adopted
// machine, its running OS) reports it. Sizes are in bytes, speeds in
// megabits or megatransfers per second. A field the tools did not report is
// left at its zero value; Warnings says which source was missing or could
// not be read.
type Inventory struct {
	CollectedAt time.Time        `json:"collected_at"`
	System      SystemInfo       `json:"system"`
	CPU         CPUInfo          `json:"cpu"`
	Memory      MemoryInfo       `json:"memory"`
	NICs        []NIC            `json:"nics"`
	Disks       []Disk           `json:"disks"`
	RAID        []RAIDController `json:"raid_controllers"`
	PCI         []PCIDevice      `json:"pci_devices"`
	// Warnings lists, one line each, what could not be collected or
	// parsed. An inventory with warnings is still recorded.
	Warnings []string `json:"warnings,omitempty"`
}

// Boot modes of a machine's firmware.
const (
	FirmwareUEFI = "uefi"
	FirmwareBIOS = "bios"
)

// SystemInfo is the SMBIOS system, baseboard and BIOS information.
type SystemInfo struct {
	Vendor       string `json:"vendor"`
	Model        string `json:"model"`
	Serial       string `json:"serial"`
	UUID         string `json:"uuid"`
	SKU          string `json:"sku,omitempty"`
	Family       string `json:"family,omitempty"`
	BIOSVendor   string `json:"bios_vendor,omitempty"`
	BIOSVersion  string `json:"bios_version"`
	BIOSDate     string `json:"bios_date,omitempty"`
	BoardVendor  string `json:"board_vendor,omitempty"`
	BoardModel   string `json:"board_model,omitempty"`
	BoardSerial  string `json:"board_serial,omitempty"`
	ChassisType  string `json:"chassis_type,omitempty"`
	ChassisAsset string `json:"chassis_asset_tag,omitempty"`
	// BootMode is FirmwareUEFI or FirmwareBIOS: how the ramdisk was booted.
	BootMode string `json:"boot_mode"`
}

// CPUInfo sums up the processors.
type CPUInfo struct {
	Model   string `json:"model"`
	Vendor  string `json:"vendor,omitempty"`
	Arch    string `json:"arch,omitempty"`
	Sockets int    `json:"sockets"`
	// Cores is the number of physical cores over all sockets.
	Cores int `json:"cores"`
	// Threads is the number of logical CPUs the OS sees.
	Threads int     `json:"threads"`
	MHz     float64 `json:"mhz,omitempty"`
}

// MemoryInfo is the installed memory.
type MemoryInfo struct {
	// TotalBytes is the sum of the installed DIMMs, or, when SMBIOS lists
	// none, the memory the kernel sees.
	TotalBytes int64 `json:"total_bytes"`
	// UsableBytes is the memory the kernel sees (MemTotal).
	UsableBytes int64  `json:"usable_bytes"`
	DIMMs       []DIMM `json:"dimms,omitempty"`
}

// DIMM is one populated memory slot.
type DIMM struct {
	Locator      string `json:"locator"`
	Bank         string `json:"bank,omitempty"`
	SizeBytes    int64  `json:"size_bytes"`
	Type         string `json:"type,omitempty"`
	SpeedMTs     int    `json:"speed_mts,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Serial       string `json:"serial,omitempty"`
	PartNumber   string `json:"part_number,omitempty"`
}

// NIC is one Ethernet interface.
type NIC struct {
	Name   string `json:"name"`
	MAC    string `json:"mac"`
	Driver string `json:"driver,omitempty"`
	// SpeedMbps is the negotiated speed; 0 when the link is down or unknown.
	SpeedMbps int    `json:"speed_mbps,omitempty"`
	Link      bool   `json:"link"`
	MTU       int    `json:"mtu,omitempty"`
	PCIAddr   string `json:"pci_addr,omitempty"`
	Firmware  string `json:"firmware,omitempty"`
	// Addrs are the IP prefixes the interface holds in the ramdisk.
	Addrs []string      `json:"addrs,omitempty"`
	LLDP  *LLDPNeighbor `json:"lldp,omitempty"`
}

// LLDPNeighbor is the switch port a NIC is cabled to, as LLDP announced it.
type LLDPNeighbor struct {
	ChassisID       string `json:"chassis_id"`
	PortID          string `json:"port_id"`
	SystemName      string `json:"system_name,omitempty"`
	PortDescription string `json:"port_description,omitempty"`
	VLAN            int    `json:"vlan,omitempty"`
}

// Disk media types.
const (
	DiskHDD  = "hdd"
	DiskSSD  = "ssd"
	DiskNVMe = "nvme"
)

// Disk is one block device the kernel sees (a whole disk, not a
// partition): a plain disk or a logical drive of a RAID controller.
type Disk struct {
	Name      string `json:"name"`
	SizeBytes int64  `json:"size_bytes"`
	// Type is DiskHDD, DiskSSD or DiskNVMe.
	Type   string `json:"type"`
	Model  string `json:"model,omitempty"`
	Vendor string `json:"vendor,omitempty"`
	Serial string `json:"serial,omitempty"`
	WWN    string `json:"wwn,omitempty"`
	// Transport is how the disk is attached: sata, sas, nvme, virtio, usb,
	// scsi.
	Transport string `json:"transport,omitempty"`
	// Controller is the PCI address of the controller the disk hangs off,
	// and ControllerDriver its kernel driver (ahci, megaraid_sas, hpsa…).
	Controller       string `json:"controller,omitempty"`
	ControllerDriver string `json:"controller_driver,omitempty"`
	Removable        bool   `json:"removable,omitempty"`
}

// RAIDController is a storage controller that builds logical drives, with
// what its vendor tool reports, when the tool is present.
type RAIDController struct {
	// PCIAddr and Driver come from the PCI bus; the rest from the tool.
	PCIAddr  string `json:"pci_addr,omitempty"`
	Driver   string `json:"driver,omitempty"`
	Vendor   string `json:"vendor,omitempty"`
	Model    string `json:"model"`
	Serial   string `json:"serial,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	// Tool is the vendor tool that answered (storcli, ssacli, sas3ircu…);
	// empty when none is present in the ramdisk.
	Tool          string             `json:"tool,omitempty"`
	PhysicalDisks []RAIDPhysicalDisk `json:"physical_disks,omitempty"`
	LogicalDisks  []RAIDLogicalDisk  `json:"logical_disks,omitempty"`
}

// RAIDPhysicalDisk is a disk behind a RAID controller.
type RAIDPhysicalDisk struct {
	// Enclosure and Slot locate the disk as the tool names it.
	Enclosure string `json:"enclosure,omitempty"`
	Slot      string `json:"slot"`
	SizeBytes int64  `json:"size_bytes"`
	// Media is DiskHDD or DiskSSD.
	Media     string `json:"media,omitempty"`
	Interface string `json:"interface,omitempty"`
	Model     string `json:"model,omitempty"`
	Serial    string `json:"serial,omitempty"`
	// State is the tool's word for the disk's state (Onln, UGood, Failed,
	// JBOD, hot spare…), lower-cased.
	State string `json:"state,omitempty"`
}

// RAIDLogicalDisk is a logical drive a RAID controller exports.
type RAIDLogicalDisk struct {
	ID        string `json:"id"`
	Level     string `json:"level"`
	SizeBytes int64  `json:"size_bytes"`
	State     string `json:"state,omitempty"`
}

// PCIDevice is one PCI function.
type PCIDevice struct {
	Addr      string `json:"addr"`
	Class     string `json:"class"`
	Vendor    string `json:"vendor"`
	Device    string `json:"device"`
	SubVendor string `json:"sub_vendor,omitempty"`
	SubDevice string `json:"sub_device,omitempty"`
	// VendorID, DeviceID and ClassID are the numeric IDs in hex.
	VendorID string `json:"vendor_id,omitempty"`
	DeviceID string `json:"device_id,omitempty"`
	ClassID  string `json:"class_id,omitempty"`
	Driver   string `json:"driver,omitempty"`
	// GPU is true for display and 3D controllers.
	GPU bool `json:"gpu,omitempty"`
}

// DiskCount is the number of whole disks the kernel sees.
func (inv *Inventory) DiskCount() int { return len(inv.Disks) }

// GPUCount is the number of GPUs on the PCI bus.
func (inv *Inventory) GPUCount() int {
	n := 0
	for _, d := range inv.PCI {
		if d.GPU {
			n++
		}
	}
	return n
}
