// Package raid reads the RAID controllers of a machine, as seen by whichever
// vendor tool is present in the ramdisk, and builds arrays on them.
//
// Each controller family has a Driver in its own file:
//
//   - megaraid.go: Broadcom/LSI MegaRAID and Dell PERC (megaraid_sas), read
//     with storcli64, storcli, perccli64 or perccli in JSON mode.
//   - smartarray.go: HPE Smart Array (hpsa, and smartpqi with an HP
//     subsystem), read with ssacli, hpssacli or hpacucli.
//   - sasircu.go: LSI SAS2/SAS3 HBAs with IT or IR firmware (mpt2sas,
//     mpt3sas), read with sas2ircu or sas3ircu.
//   - marvell.go: Marvell 88SE91xx/92xx SATA RAID (Dell BOSS), read with mvcli.
//   - arcconf.go: Adaptec/Microchip (aacraid, and smartpqi without an HP
//     subsystem), read with arcconf.
//   - mdraid.go: Linux software RAID, read from /proc/mdstat and mdadm, as
//     a pseudo-controller "Linux md".
//
// Inventory ties them together: it asks each family for the controllers of
// the PCI bus that it handles, runs the first of the family's tools that the
// ramdisk has, and merges what the tool reports with the PCI side. A
// controller whose tool is missing or failed is still listed, from the PCI
// bus alone, with a warning.
//
// Building has three parts. Plan (plan.go), with no I/O, checks a
// contract.RAIDSpec against the inventory and turns it into a Layout: per
// controller, the arrays with their disks and logical drives, and the
// command lines that clear the controller (foreign configurations too),
// prepare its disks, create the logical drives and pass the other disks
// through; a spec the hardware cannot satisfy is refused with a *SpecError
// before anything is touched. Each family's file builds its commands from
// words it checked first (slots, addresses, names), never from text as
// given. Apply (apply.go) runs the commands through a CommandRunner, checks
// first, and ResolveDevices finds the block device of each logical drive
// built, for the caller to poll.
//
// Tearing down, for a wipe, reuses the same commands: PlanClear (clear.go)
// plans, for every controller a tool reads, the family's check and clear
// steps, and for Linux md the stop of every array and the zeroing of its
// members; Apply runs it.
//
// Tool output is treated as hostile: it is size-checked, parsed without
// panicking whatever its shape, and every count and string is bounded.
// States are the tool's own words, lower-cased; RAID levels are normalized
// to "raid0", "raid1", "raid5", "raid6", "raid10", "raid50", "raid60" (and
// "raid1e", "raid1adm", "raid10adm" where a tool has them), other levels
// are lower-cased as the tool wrote them. Sizes are in bytes, converted with
// the units each tool uses (its file says which).
package raid

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"bareflow/contract"
)

// CommandRunner runs a command line in the ramdisk and returns its standard
// output. argv[0] is the program; the implementation quotes each argument
// for the remote shell. A non-zero exit is an error; the output read before
// it may be returned with the error, and drivers use it to explain the
// failure.
type CommandRunner interface {
	Run(ctx context.Context, argv []string) ([]byte, error)
}

// Driver reads one family of RAID controllers.
type Driver interface {
	// Name is the family's short name, such as "megaraid".
	Name() string
	// Tools lists the programs the driver can read the controllers with, in
	// order of preference.
	Tools() []string
	// Handles reports whether the PCI function is a controller of this
	// family, by its kernel driver or its vendor and device IDs.
	Handles(pci contract.PCIDevice) bool
	// Inventory lists the controllers that tool reports. It may return
	// controllers together with an error, when only some could be read.
	Inventory(ctx context.Context, r CommandRunner, tool string) ([]contract.RAIDController, error)
}

// Standalone is implemented by drivers whose controllers are not PCI
// functions (Linux md): Inventory runs them on every machine.
type Standalone interface {
	Driver
	// Standalone reports whether the driver runs without a PCI device.
	Standalone() bool
}

// legacyTooled is implemented by drivers that know of a tool they do not
// read, to name it in the warning when it is the only one present.
type legacyTooled interface {
	legacyTools() []string
}

// Errors the drivers wrap; match them with errors.Is.
var (
	// ErrToolFailed means the tool ran but reported a failure of its own.
	ErrToolFailed = errors.New("raid tool reported a failure")
	// ErrOutputTooLarge means a tool's output exceeded 16 MiB.
	ErrOutputTooLarge = errors.New("raid tool output too large")
	// ErrUnparsable means a tool's output was not in a format the driver
	// knows.
	ErrUnparsable = errors.New("raid tool output not understood")
)

// Drivers returns the drivers of every family, in the order Inventory tries
// them when more than one handles a PCI function.
func Drivers() []Driver {
	return []Driver{
		megaRAID{},
		smartArray{},
		sasIRCU{gen: 3},
		sasIRCU{gen: 2},
		marvell{},
		arcconf{},
		mdRAID{},
	}
}

// Inventory lists the RAID controllers of a machine. pci is the machine's
// PCI bus; have reports whether a program is present in the ramdisk (Linux
// md is read when have reports mdadm or cat). For each family with
// controllers on the bus, and always for Linux md, it runs the first of the
// family's tools that is present and merges the tool's controllers with the
// PCI functions: by PCI address when the tool gives one, else in order. A
// PCI function that no tool reported is kept with an empty Tool. The second
// result lists, one line each, what could not be read.
func Inventory(ctx context.Context, r CommandRunner, pci []contract.PCIDevice, have func(tool string) bool) ([]contract.RAIDController, []string) {
	drivers := Drivers()
	var (
		out      []contract.RAIDController
		warnings []string
	)
	// Each PCI function goes to the first family that handles it and has a
	// tool present, else to the first family that handles it.
	groups := make([][]contract.PCIDevice, len(drivers))
	for _, dev := range pci {
		first, chosen := -1, -1
		for i, d := range drivers {
			if !d.Handles(dev) {
				continue
			}
			if first < 0 {
				first = i
			}
			if firstTool(d, have) != "" {
				chosen = i
				break
			}
		}
		if chosen < 0 {
			chosen = first
		}
		if chosen >= 0 {
			groups[chosen] = append(groups[chosen], dev)
		}
	}
	for i, d := range drivers {
		devs := groups[i]
		s, standalone := d.(Standalone)
		standalone = standalone && s.Standalone()
		if len(devs) == 0 && !standalone {
			continue
		}
		tool := firstTool(d, have)
		if tool == "" {
			if standalone && len(devs) == 0 {
				continue
			}
			for _, dev := range devs {
				c := pciOnly(dev)
				warnings = append(warnings, fmt.Sprintf("no %s in the ramdisk for %s%s", toolLabel(d), c.Model, legacyNote(d, have)+atAddr(c.PCIAddr)))
				out = append(out, c)
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			for _, dev := range devs {
				out = append(out, pciOnly(dev))
			}
			warnings = append(warnings, fmt.Sprintf("%s not run: %v", tool, err))
			continue
		}
		ctrls, err := d.Inventory(ctx, r, tool)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: %v", tool, err))
		}
		merged, unreported := merge(devs, ctrls, tool)
		for _, c := range unreported {
			if err == nil {
				warnings = append(warnings, fmt.Sprintf("%s did not report %s%s", tool, c.Model, atAddr(c.PCIAddr)))
			}
		}
		out = append(out, merged...)
	}
	return out, warnings
}

// firstTool returns the first of d's tools that have reports present, or "".
func firstTool(d Driver, have func(string) bool) string {
	if have == nil {
		return ""
	}
	for _, t := range d.Tools() {
		if have(t) {
			return t
		}
	}
	return ""
}

// toolLabel names d's tools for a warning: storcli64, storcli, perccli64,
// perccli become "storcli/perccli".
func toolLabel(d Driver) string {
	var names []string
	for _, t := range d.Tools() {
		t = strings.TrimSuffix(t, "64")
		if !slices.Contains(names, t) {
			names = append(names, t)
		}
	}
	return strings.Join(names, "/")
}

// legacyNote says which tool the ramdisk has that d knows of but does not
// read, or returns "".
func legacyNote(d Driver, have func(string) bool) string {
	l, ok := d.(legacyTooled)
	if !ok || have == nil {
		return ""
	}
	for _, t := range l.legacyTools() {
		if have(t) {
			return " (" + t + " is present but not read)"
		}
	}
	return ""
}

func atAddr(addr string) string {
	if addr == "" {
		return ""
	}
	return " at " + addr
}

// pciOnly is the controller as the PCI bus alone describes it.
func pciOnly(dev contract.PCIDevice) contract.RAIDController {
	model := clean(dev.Device)
	if model == "" {
		model = strings.Trim(clean(dev.VendorID)+":"+clean(dev.DeviceID), ":")
	}
	return contract.RAIDController{
		PCIAddr: clean(dev.Addr),
		Driver:  clean(dev.Driver),
		Vendor:  clean(dev.Vendor),
		Model:   model,
	}
}

// merge pairs the tool's controllers with the PCI functions of their family:
// a controller with a PCI address goes with the function at that address (or
// with none, when the bus has no such function), the others go with the
// remaining functions in order. It returns every controller, and separately
// the PCI functions the tool did not report.
func merge(devs []contract.PCIDevice, ctrls []contract.RAIDController, tool string) (all, unreported []contract.RAIDController) {
	used := make([]bool, len(devs))
	pairs := make([]int, len(ctrls)) // index into devs, or -1
	for i, c := range ctrls {
		pairs[i] = -1
		a := normalizePCIAddr(c.PCIAddr)
		if a == "" {
			continue
		}
		for j, dev := range devs {
			if !used[j] && normalizePCIAddr(dev.Addr) == a {
				pairs[i], used[j] = j, true
				break
			}
		}
	}
	next := 0
	for i, c := range ctrls {
		if normalizePCIAddr(c.PCIAddr) != "" {
			continue
		}
		for next < len(devs) && used[next] {
			next++
		}
		if next < len(devs) {
			pairs[i], used[next] = next, true
		}
	}
	for i, c := range ctrls {
		if c.Tool == "" {
			c.Tool = tool
		}
		if j := pairs[i]; j >= 0 {
			dev := devs[j]
			c.PCIAddr = clean(dev.Addr)
			c.Driver = clean(dev.Driver)
			if c.Vendor == "" {
				c.Vendor = clean(dev.Vendor)
			}
			if c.Model == "" {
				c.Model = pciOnly(dev).Model
			}
		} else {
			c.PCIAddr = normalizePCIAddr(c.PCIAddr)
		}
		all = append(all, c)
	}
	for j, dev := range devs {
		if !used[j] {
			c := pciOnly(dev)
			all = append(all, c)
			unreported = append(unreported, c)
		}
	}
	return all, unreported
}

// run runs argv and checks the size of its output. On a failed run it
// returns the output too, for the caller to look for the tool's reason.
func run(ctx context.Context, r CommandRunner, argv ...string) ([]byte, error) {
	out, err := r.Run(ctx, argv)
	if len(out) > maxOutput {
		return nil, fmt.Errorf("%s: %w (%d bytes)", strings.Join(argv, " "), ErrOutputTooLarge, len(out))
	}
	if err != nil {
		return out, fmt.Errorf("run %s: %w", strings.Join(argv, " "), err)
	}
	return out, nil
}
