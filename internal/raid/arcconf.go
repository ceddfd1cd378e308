package raid

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"bareflow/contract"
)

// arcconf reads Adaptec and Microchip SmartRAID/SmartHBA controllers
// (aacraid, and smartpqi without an HP subsystem) with arcconf:
// "arcconf GETCONFIG <n> AL" for each controller n from 1 to the count the
// first answer gives ("Controllers found: N"). Both the older layout
// ("Logical drive number 1", "Status of logical drive") and the newer one
// ("Logical Device number 0", "Status of Logical Device") are read.
//
// arcconf prints sizes in binary units: "228936 MB" is mebibytes. A drive's
// Enclosure and Slot are its channel and device numbers ("Reported
// Channel,Device"), the pair arcconf's other commands take; its state is
// its State lower-cased (online, ready, hot spare, failed, rebuilding,
// raw (pass through)…). Enclosure services devices are not drives and are
// left out. A logical device's ID is its number, its state its status
// lower-cased (optimal, okay, degraded, failed…).
type arcconf struct{}

func (arcconf) Name() string { return "arcconf" }

func (arcconf) Tools() []string { return []string{"arcconf"} }

func (arcconf) Handles(pci contract.PCIDevice) bool {
	drv := strings.ToLower(strings.TrimSpace(pci.Driver))
	switch {
	case drv == "aacraid":
		return true
	case drv == "smartpqi" || pciID(pci) == "9005:028f":
		return !hpSubsystem(pci.SubVendor)
	case hexID(pci.VendorID) == "9005":
		return strings.HasPrefix(strings.ToLower(pci.ClassID), "0104") || strings.Contains(strings.ToLower(pci.Class), "raid")
	}
	return false
}

func (arcconf) Inventory(ctx context.Context, r CommandRunner, tool string) ([]contract.RAIDController, error) {
	var (
		ctrls []contract.RAIDController
		errs  []error
		total = 1
	)
	for n := 1; n <= total && n <= maxControllers; n++ {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		out, err := run(ctx, r, tool, "GETCONFIG", strconv.Itoa(n), "AL")
		if err != nil && len(out) == 0 {
			errs = append(errs, fmt.Errorf("controller %d: %w", n, err))
			continue
		}
		c, found, perr := parseArcconf(out)
		if n == 1 && found > 1 {
			total = found
		}
		if err := errors.Join(err, perr); err != nil {
			errs = append(errs, fmt.Errorf("controller %d: %w", n, err))
		}
		if c.Model != "" || len(c.PhysicalDisks) > 0 || len(c.LogicalDisks) > 0 {
			ctrls = append(ctrls, c)
		}
	}
	if total > maxControllers {
		errs = append(errs, fmt.Errorf("more than %d controllers, the rest ignored", maxControllers))
	}
	return ctrls, errors.Join(errs...)
}

// parseArcconf reads the output of "arcconf GETCONFIG <n> AL": the
// controller, and the number of controllers arcconf found.
func parseArcconf(out []byte) (contract.RAIDController, int, error) {
	var c contract.RAIDController
	if len(out) > maxOutput {
		return c, 0, ErrOutputTooLarge
	}
	type section int
	const (
		none section = iota
		controller
		logical
		physical
		other
	)
	var (
		where    section
		found    = -1
		seen     bool
		ld       *contract.RAIDLogicalDisk
		pd       *contract.RAIDPhysicalDisk
		pdKeys   map[string]bool
		vendor   string
		lastLine string
	)
	endPD := func() {
		if pd != nil && vendor != "" && !strings.EqualFold(vendor, "ATA") {
			pd.Model = clean(vendor + " " + pd.Model)
		}
		pd, vendor, pdKeys = nil, "", nil
	}
	for _, line := range splitLines(out) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "---") {
			continue
		}
		lastLine = t
		lt := strings.ToLower(t)
		if indent(line) == 0 {
			if key, val, ok := keyValue(t); ok {
				if key == "Controllers found" {
					found = atoi(val)
				}
				continue
			}
			endPD()
			ld = nil
			switch lt {
			case "controller information":
				where, seen = controller, true
			case "logical device information", "logical drive information":
				where = logical
			case "physical device information":
				where = physical
			default:
				if strings.HasPrefix(lt, "logical device number ") || strings.HasPrefix(lt, "logical drive number ") {
					where = logical
					if len(c.LogicalDisks) < maxLogical {
						id := t[strings.LastIndex(lt, "number ")+len("number "):]
						c.LogicalDisks = append(c.LogicalDisks, contract.RAIDLogicalDisk{ID: clean(id)})
						ld = &c.LogicalDisks[len(c.LogicalDisks)-1]
					}
				} else {
					where = other
				}
			}
			continue
		}
		switch where {
		case controller:
			key, val, ok := keyValue(t)
			if !ok {
				continue
			}
			switch key {
			case "Controller Model":
				c.Model = clean(val)
			case "Controller Serial Number":
				c.Serial = clean(val)
			case "PCI Address (Domain:Bus:Device:Function)":
				c.PCIAddr = normalizePCIAddr(val)
			case "Firmware":
				if c.Firmware == "" {
					c.Firmware = clean(val)
				}
			}
		case logical:
			key, val, ok := keyValue(t)
			if !ok || ld == nil {
				continue
			}
			switch strings.ToLower(key) {
			case "raid level":
				ld.Level = normalizeLevel(val)
			case "status of logical device", "status of logical drive":
				ld.State = lowerState(val)
			case "size":
				if ld.SizeBytes == 0 {
					ld.SizeBytes, _ = parseSize(val, true)
				}
			}
		case physical:
			if strings.HasPrefix(lt, "device #") {
				endPD()
				continue
			}
			if strings.HasPrefix(lt, "device is a") {
				endPD()
				if strings.Contains(lt, "hard drive") && len(c.PhysicalDisks) < maxPhysical {
					c.PhysicalDisks = append(c.PhysicalDisks, contract.RAIDPhysicalDisk{})
					pd, pdKeys = &c.PhysicalDisks[len(c.PhysicalDisks)-1], map[string]bool{}
				}
				continue
			}
			key, val, ok := keyValue(t)
			if !ok || pd == nil || pdKeys[key] {
				continue
			}
			pdKeys[key] = true
			switch key {
			case "State":
				pd.State = lowerState(val)
			case "Transfer Speed":
				pd.Interface = iface(firstField(val))
			case "Reported Channel,Device(T:L)", "Reported Channel,Device":
				if i := strings.IndexByte(val, '('); i >= 0 {
					val = val[:i]
				}
				ch, dev, _ := strings.Cut(val, ",")
				pd.Enclosure, pd.Slot = clean(ch), clean(dev)
			case "Vendor":
				vendor = clean(val)
			case "Model":
				pd.Model = clean(val)
			case "Serial number":
				pd.Serial = clean(val)
			case "Total Size":
				pd.SizeBytes, _ = parseSize(val, true)
			case "Size":
				if !pdKeys["Total Size"] {
					pd.SizeBytes, _ = parseSize(val, true)
				}
			case "SSD":
				switch strings.ToLower(clean(val)) {
				case "yes":
					pd.Media = contract.DiskSSD
				case "no":
					pd.Media = contract.DiskHDD
				}
			}
		}
	}
	endPD()
	var err error
	if !seen {
		msg := strings.ToLower(clean(lastLine))
		if msg == "" {
			msg = "empty output"
		}
		err = fmt.Errorf("%w: no Controller information: %s", ErrUnparsable, msg)
	}
	if found < 0 {
		found = 0
	}
	return c, found, err
}

// The write side of arcconf (Adaptec/Microchip's CLI reference as public
// scripts use it; yunion's and idcos' drivers):
//
//	check    arcconf GETCONFIG N AD                         (the PCI address and serial of controller N)
//	clear    arcconf DELETE N LOGICALDRIVE ALL noprompt     (when there are logical drives)
//	prepare  arcconf SETSTATE N DEVICE CH ID RDY noprompt    (a hot spare to use)
//	         arcconf TASK START N DEVICE CH ID INITIALIZE noprompt (a raw drive to use)
//	create   arcconf CREATE N LOGICALDRIVE Stripesize 256 Name NAME Wcache WB Rcache RON Legs 2 MAX 5 0 0 0 1 0 2 noprompt
//	jbod     arcconf TASK START N DEVICE CH ID UNINITIALIZE noprompt (the drive goes raw)
//
// Drives are named by channel and device. Splits are logical drives of
// the same drives, each CREATE with its size in MiB, the last MAX. A raw
// drive reaches the OS only when the controller is in "RAID: Expose RAW"
// or Mixed mode; the inventory does not report the mode.

func (arcconf) capabilities() capabilities {
	return capabilities{
		label: "arcconf",
		levels: map[contract.RAIDLevel]levelRule{
			contract.RAID0:  {min: 2},
			contract.RAID1:  {min: 2, max: 2},
			contract.RAID1E: {min: 3},
			contract.RAID5:  {min: 3},
			contract.RAID6:  {min: 4},
			contract.RAID10: {min: 4, even: true},
			contract.RAID50: {min: 6},
			contract.RAID60: {min: 8},
		},
		splits:     true,
		maxVolumes: 64,
		jbod:       jbodPerDisk,
		strips:     pow2(16, 1024),
		cache:      true,
		maxSpans:   16,
	}
}

// arcconfDevice checks a drive's channel and device.
func arcconfDevice(d DiskRef) ([]string, error) {
	if !digits(d.Enclosure, 3) || !digits(d.Slot, 4) {
		return nil, badWord("arcconf channel,device", d.ID())
	}
	return []string{d.Enclosure, d.Slot}, nil
}

func (a arcconf) steps(c *ControllerLayout, ctrl *contract.RAIDController, _ contract.Inventory) error {
	tool, err := checkedTool(a, c.Tool)
	if err != nil {
		return err
	}
	// The planner's handle counts from 0; arcconf's controllers from 1.
	if !digits(c.Handle, 3) {
		return badWord("arcconf controller", c.Handle)
	}
	n, _ := strconv.Atoi(c.Handle)
	c.Handle = strconv.Itoa(n + 1)
	add := func(kind StepKind, argv ...string) *Step {
		c.Steps = append(c.Steps, Step{Kind: kind, Argv: append([]string{tool}, argv...)})
		return &c.Steps[len(c.Steps)-1]
	}
	add(StepCheck, "GETCONFIG", c.Handle, "AD")
	if ctrl != nil && len(ctrl.LogicalDisks) > 0 {
		add(StepClear, "DELETE", c.Handle, "LOGICALDRIVE", "ALL", "noprompt")
	}
	// Hot spares to use or pass through become ready; raw drives to use
	// are initialized.
	var touched []DiskRef
	for _, ai := range raidArrays(c) {
		touched = append(touched, c.Arrays[ai].Disks...)
	}
	for _, d := range append(touched, c.JBOD...) {
		dev, err := arcconfDevice(d)
		if err != nil {
			return err
		}
		if hasState(d.State, "hot spare") {
			add(StepPrepare, append(append([]string{"SETSTATE", c.Handle, "DEVICE"}, dev...), "RDY", "noprompt")...)
		}
	}
	for _, d := range touched {
		if hasState(d.State, "raw") {
			dev, _ := arcconfDevice(d)
			add(StepPrepare, append(append([]string{"TASK", "START", c.Handle, "DEVICE"}, dev...), "INITIALIZE", "noprompt")...)
		}
	}
	for _, ai := range raidArrays(c) {
		al := c.Arrays[ai]
		sizes, ok := volumeSizes(al)
		if !ok {
			return specErr(al.Spec, "the splits leave nothing for the last one")
		}
		var devs []string
		for _, d := range al.Disks {
			dev, err := arcconfDevice(d)
			if err != nil {
				return err
			}
			devs = append(devs, dev...)
		}
		for k, v := range al.Volumes {
			argv := []string{"CREATE", c.Handle, "LOGICALDRIVE"}
			if al.StripKiB > 0 {
				argv = append(argv, "Stripesize", strconv.Itoa(al.StripKiB))
			}
			if !volumeName(v.Name) {
				return badWord("volume name", v.Name)
			}
			argv = append(argv, "Name", v.Name)
			if al.WriteBack != nil {
				argv = append(argv, "Wcache", map[bool]string{true: "WB", false: "WT"}[*al.WriteBack])
			}
			if al.ReadAhead != nil {
				argv = append(argv, "Rcache", map[bool]string{true: "RON", false: "ROFF"}[*al.ReadAhead])
			}
			if al.Spans > 0 && (al.Level == contract.RAID50 || al.Level == contract.RAID60) {
				argv = append(argv, "Legs", strconv.Itoa(al.Spans))
			}
			size := "MAX"
			if v.SizeBytes > 0 {
				size = mibString(sizes[k])
			}
			argv = append(argv, size, strings.ToUpper(string(al.Level)))
			argv = append(argv, devs...)
			argv = append(argv, "noprompt")
			add(StepCreate, argv...).Volumes = volumeRefs(c, ai, k, k+1)
		}
	}
	for _, d := range c.JBOD {
		if hasState(d.State, "raw") {
			continue
		}
		dev, err := arcconfDevice(d)
		if err != nil {
			return err
		}
		add(StepJBOD, append(append([]string{"TASK", "START", c.Handle, "DEVICE"}, dev...), "UNINITIALIZE", "noprompt")...)
	}
	return nil
}

// verify confirms with "arcconf GETCONFIG N AD" that controller N is the
// one planned for.
func (arcconf) verify(c ControllerLayout, out []byte) error {
	got, _, err := parseArcconf(out)
	if err != nil && got.Model == "" {
		return fmt.Errorf("%w: arcconf GETCONFIG %s AD: %w", ErrWrongController, c.Handle, err)
	}
	return sameController(c, got.PCIAddr, got.Serial)
}

// listVolumes reads "arcconf GETCONFIG N LD": each logical drive's number,
// name, size and, when arcconf gives it, its block device ("Disk Name").
func (a arcconf) listVolumes(ctx context.Context, r CommandRunner, c ControllerLayout) ([]volumeInfo, error) {
	tool, err := checkedTool(a, c.Tool)
	if err != nil {
		return nil, err
	}
	if !digits(c.Handle, 3) {
		return nil, badWord("arcconf controller", c.Handle)
	}
	out, err := run(ctx, r, tool, "GETCONFIG", c.Handle, "LD")
	if err != nil && len(out) == 0 {
		return nil, err
	}
	return parseArcconfVolumes(out), nil
}

// parseArcconfVolumes reads the logical drives of "GETCONFIG N LD", in
// either layout.
func parseArcconfVolumes(out []byte) []volumeInfo {
	if len(out) > maxOutput {
		return nil
	}
	var vols []volumeInfo
	for _, line := range splitLines(out) {
		t := strings.TrimSpace(line)
		lt := strings.ToLower(t)
		if strings.HasPrefix(lt, "logical device number ") || strings.HasPrefix(lt, "logical drive number ") {
			if len(vols) >= maxLogical {
				break
			}
			vols = append(vols, volumeInfo{ID: clean(t[strings.LastIndex(lt, "number ")+len("number "):]), Channel: -1, Target: -1})
			continue
		}
		key, val, ok := keyValue(t)
		if !ok || len(vols) == 0 {
			continue
		}
		v := &vols[len(vols)-1]
		switch strings.ToLower(key) {
		case "logical device name", "logical drive name":
			v.Name = clean(val)
		case "size":
			if v.SizeBytes == 0 {
				v.SizeBytes, _ = parseSize(val, true)
			}
		case "disk name":
			v.Device = clean(val)
		case "unique identifier":
			v.WWN = clean(val)
		}
	}
	sortVolumeInfos(vols)
	return vols
}
