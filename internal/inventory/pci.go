package inventory

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"bareflow/contract"
)

// parseLspci reads `lspci -vmm -nn -k -D`: one block of "Key:<TAB>Value"
// lines per PCI function, blocks separated by blank lines. Names come with
// their IDs ("Broadcom / LSI [1000]"); the name goes to Vendor, Device,
// Class and the IDs to VendorID, DeviceID, ClassID. The devices are sorted
// by address.
func parseLspci(b []byte) ([]contract.PCIDevice, error) {
	var (
		out      []contract.PCIDevice
		cur      map[string]string
		overflow bool
	)
	flush := func() {
		if cur == nil {
			return
		}
		d, ok := pciDevice(cur)
		cur = nil
		if !ok {
			return
		}
		if len(out) >= maxPCI {
			overflow = true
			return
		}
		out = append(out, d)
	}
	lines(b, func(l string) bool {
		if strings.TrimSpace(l) == "" {
			flush()
			return !overflow
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || len(k) > 32 {
			return true
		}
		if cur == nil {
			cur = map[string]string{}
		}
		// Module may repeat; the first of each key wins.
		if _, seen := cur[k]; !seen && len(cur) < 32 {
			cur[k] = strings.TrimSpace(v)
		}
		return true
	})
	flush()
	slices.SortStableFunc(out, func(a, b contract.PCIDevice) int { return strings.Compare(a.Addr, b.Addr) })
	out = slices.CompactFunc(out, func(a, b contract.PCIDevice) bool { return a.Addr == b.Addr })
	var err error
	switch {
	case overflow:
		err = fmt.Errorf("more than %d PCI devices: the rest are ignored", maxPCI)
	case len(out) == 0:
		err = errors.New("no PCI devices in the output")
	}
	return out, err
}

// pciDevice makes a PCIDevice of one lspci block; ok is false without a
// valid Slot.
func pciDevice(f map[string]string) (contract.PCIDevice, bool) {
	addr := strings.ToLower(strings.TrimSpace(f["Slot"]))
	if len(addr) == 7 {
		// lspci without -D leaves out domain 0000.
		addr = "0000:" + addr
	}
	if !isPCIAddr(addr) {
		return contract.PCIDevice{}, false
	}
	d := contract.PCIDevice{Addr: addr, Driver: clean(f["Driver"])}
	d.Class, d.ClassID = splitNameID(f["Class"])
	d.Vendor, d.VendorID = splitNameID(f["Vendor"])
	d.Device, d.DeviceID = splitNameID(f["Device"])
	d.SubVendor, _ = splitNameID(f["SVendor"])
	d.SubDevice, _ = splitNameID(f["SDevice"])
	d.GPU = isGPU(d.ClassID, d.VendorID)
	return d, true
}

// splitNameID splits lspci's "Name [id]" into the name and the lower-case
// hex id. Names may hold brackets of their own ("MegaRAID SAS-3 3108
// [Invader] [005d]"): the id is the last bracket. lspci names what
// pci.ids lacks "Vendor [1234]" or "Device [1111]": those names become
// empty.
func splitNameID(v string) (name, id string) {
	v = clean(v)
	if strings.HasSuffix(v, "]") {
		if i := strings.LastIndex(v, " ["); i >= 0 {
			cand := strings.ToLower(v[i+2 : len(v)-1])
			if len(cand) >= 2 && len(cand) <= 6 && isLowerHex(cand) {
				name, id = strings.TrimSpace(v[:i]), cand
			}
		}
	}
	if id == "" {
		name = v
	}
	switch name {
	case "Vendor", "Device", "Class":
		name = ""
	}
	return name, id
}

// PCI classes of display controllers: VGA compatible, 3D and other display
// controllers.
var displayClasses = map[string]bool{"0300": true, "0302": true, "0380": true}

// nonGPUDisplayVendors make display functions that are not GPUs: the video
// of baseboard management controllers and the emulated adapters of virtual
// machines. ASPEED (1a03) is the BMC of most white-box and many OEM
// servers; Matrox G200 variants (102b) are the video of Dell iDRAC, HPE iLO
// and Lenovo XCC; Huawei (19e5) is the Hi171x iBMC's VGA; 1234 is QEMU's
// standard VGA (Bochs), 1013 Cirrus, 1af4 virtio-gpu, 1b36 QXL, 15ad VMware
// SVGA, 80ee VirtualBox, 1414 Hyper-V.
var nonGPUDisplayVendors = map[string]bool{
	"1a03": true,
	"102b": true,
	"19e5": true,
	"1234": true,
	"1013": true,
	"1af4": true,
	"1b36": true,
	"15ad": true,
	"80ee": true,
	"1414": true,
}

// isGPU reports whether a PCI function is a GPU: a display controller (VGA
// 0300, 3D 0302 or other display 0380) by a vendor not in
// nonGPUDisplayVendors. NVIDIA (10de), AMD (1002) and Intel (8086) display
// functions, discrete or integrated, count.
func isGPU(classID, vendorID string) bool {
	return displayClasses[classID] && !nonGPUDisplayVendors[vendorID]
}

// raidDrivers are the kernel drivers of hardware RAID controllers, for the
// controllers that do not say "RAID" in their PCI class (Smart Array and
// MegaRAID parts report themselves as SAS controllers).
var raidDrivers = map[string]bool{
	"megaraid_sas": true,
	"megaraid":     true,
	"hpsa":         true,
	"smartpqi":     true,
	"mpt3sas":      true,
	"mpt2sas":      true,
	"aacraid":      true,
	"mvsas":        true,
	"mptsas":       true,
}

// pciClassRAID is the PCI class of RAID bus controllers.
const pciClassRAID = "0104"

// RAIDFromPCI lists the storage controllers among pci that can build
// logical drives: the RAID bus controllers (class 0104) and the functions
// bound to a RAID or SAS HBA driver (megaraid_sas, megaraid, hpsa, smartpqi,
// mpt3sas, mpt2sas, aacraid, mvsas, mptsas). Each has its PCI address,
// driver, vendor and model (the PCI device name); the fields a vendor tool
// reports are left for the caller to fill in. The order is pci's.
func RAIDFromPCI(pci []contract.PCIDevice) []contract.RAIDController {
	var out []contract.RAIDController
	for _, d := range pci {
		if d.ClassID != pciClassRAID && !raidDrivers[d.Driver] {
			continue
		}
		out = append(out, contract.RAIDController{
			PCIAddr: d.Addr,
			Driver:  d.Driver,
			Vendor:  d.Vendor,
			Model:   d.Device,
		})
	}
	return out
}
