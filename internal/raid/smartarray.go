package raid

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"bareflow/contract"
)

// smartArray reads HPE Smart Array controllers with ssacli, or with its
// older names hpssacli and hpacucli, which share its syntax:
// "ssacli ctrl all show config detail". Each controller starts with a line
// "<model> in Slot <n>"; its Array, Logical Drive and physicaldrive blocks
// follow, then the unassigned and HBA-mode drives.
//
// ssacli prints a physical drive's size in decimal units (the drive's
// label: "Size: 480 GB" is 480 × 10⁹ bytes) and a logical drive's in
// binary units ("Size: 447.07 GB" is 447.07 × 1024³ bytes). A physical
// drive's state is its Status lower-cased (ok, failed, predictive failure,
// rebuilding…); a drive with Status OK that is not a data drive gets its
// role instead: "spare", "unassigned" or "hba mode". Enclosure is the
// drive's port and box ("1I:1"), Slot its bay. A logical drive's level
// comes from its Fault Tolerance ("1+0" is "raid10").
type smartArray struct{}

func (smartArray) Name() string { return "smartarray" }

func (smartArray) Tools() []string { return []string{"ssacli", "hpssacli", "hpacucli"} }

func (smartArray) Handles(pci contract.PCIDevice) bool {
	drv := strings.ToLower(strings.TrimSpace(pci.Driver))
	switch {
	case drv == "hpsa" || drv == "cciss":
		return true
	case drv == "smartpqi" || pciID(pci) == "9005:028f":
		// Gen10 Smart Array is a Microchip SmartROC with an HP subsystem;
		// the same chip under other subsystems is read with arcconf.
		return hpSubsystem(pci.SubVendor)
	case hexID(pci.VendorID) == "103c":
		return strings.HasPrefix(strings.ToLower(pci.ClassID), "0104") || strings.Contains(strings.ToLower(pci.Class), "raid")
	}
	return false
}

// hpSubsystem reports whether a PCI subsystem vendor, as an ID or a name,
// is HP or HPE.
func hpSubsystem(s string) bool {
	switch hexID(s) {
	case "103c", "1590":
		return true
	}
	l := strings.ToLower(s)
	return strings.Contains(l, "hewlett") || l == "hp" || l == "hpe" || strings.HasPrefix(l, "hp ") || strings.HasPrefix(l, "hpe ")
}

func (smartArray) Inventory(ctx context.Context, r CommandRunner, tool string) ([]contract.RAIDController, error) {
	out, err := run(ctx, r, tool, "ctrl", "all", "show", "config", "detail")
	if err != nil && len(out) == 0 {
		return nil, err
	}
	ctrls, perr := parseSSACLI(out)
	return ctrls, errors.Join(err, perr)
}

// parseSSACLI reads the output of "ssacli ctrl all show config detail".
func parseSSACLI(out []byte) ([]contract.RAIDController, error) {
	if len(out) > maxOutput {
		return nil, ErrOutputTooLarge
	}
	type block int
	const (
		inController block = iota
		inArray
		inLogical
		inPhysical
		inOther
	)
	var (
		ctrls    []contract.RAIDController
		errs     []error
		cur      *contract.RAIDController
		where    block
		ld       *contract.RAIDLogicalDisk
		pd       *contract.RAIDPhysicalDisk
		pdStatus string
		pdType   string
		dropped  bool
	)
	endPD := func() {
		if pd != nil {
			pd.State = ssacliPDState(pdStatus, pdType)
		}
		pd, pdStatus, pdType = nil, "", ""
	}
	for _, line := range splitLines(out) {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		lt := strings.ToLower(t)
		ind := indent(line)
		if ind == 0 {
			if i := strings.Index(t, " in Slot "); i > 0 {
				endPD()
				ld = nil
				if len(ctrls) >= maxControllers {
					dropped = true
					cur = nil
					continue
				}
				ctrls = append(ctrls, contract.RAIDController{Model: clean(t[:i])})
				cur, where = &ctrls[len(ctrls)-1], inController
				continue
			}
			if strings.HasPrefix(lt, "error:") {
				errs = append(errs, fmt.Errorf("%w: %s", ErrToolFailed, strings.ToLower(clean(strings.TrimSpace(t[len("error:"):])))))
			}
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case strings.HasPrefix(lt, "array:") || strings.HasPrefix(lt, "array ") && len(strings.Fields(t)) <= 2 && ind <= 3:
			endPD()
			ld, where = nil, inArray
			continue
		case strings.HasPrefix(lt, "logical drive:"):
			endPD()
			ld, where = nil, inOther
			if len(cur.LogicalDisks) < maxLogical {
				_, id, _ := keyValue(t)
				cur.LogicalDisks = append(cur.LogicalDisks, contract.RAIDLogicalDisk{ID: clean(id)})
				ld, where = &cur.LogicalDisks[len(cur.LogicalDisks)-1], inLogical
			}
			continue
		case strings.HasPrefix(lt, "physicaldrive ") && !strings.Contains(t, "("):
			endPD()
			ld, where = nil, inOther
			if len(cur.PhysicalDisks) < maxPhysical {
				id := clean(strings.TrimSpace(t[len("physicaldrive "):]))
				d := contract.RAIDPhysicalDisk{Slot: id}
				if i := strings.LastIndexByte(id, ':'); i > 0 {
					d.Enclosure, d.Slot = id[:i], id[i+1:]
				}
				cur.PhysicalDisks = append(cur.PhysicalDisks, d)
				pd, where = &cur.PhysicalDisks[len(cur.PhysicalDisks)-1], inPhysical
			}
			continue
		case ind <= 3 && (lt == "unassigned" || lt == "hba drives" || lt == "unassigned drives"):
			endPD()
			ld, where = nil, inArray
			continue
		}
		key, val, ok := keyValue(t)
		if !ok {
			if ind <= 3 {
				// Another section: a drive cage, an expander, a SEP.
				endPD()
				ld, where = nil, inOther
			}
			continue
		}
		switch where {
		case inController:
			if ind > 3 {
				continue
			}
			switch key {
			case "Serial Number":
				cur.Serial = clean(val)
			case "Firmware Version":
				cur.Firmware = clean(val)
			case "PCI Address (Domain:Bus:Device.Function)":
				cur.PCIAddr = normalizePCIAddr(val)
			}
		case inLogical:
			switch key {
			case "Size":
				ld.SizeBytes, _ = parseSize(val, true)
			case "Fault Tolerance":
				ld.Level = normalizeLevel(val)
			case "Status":
				ld.State = lowerState(val)
			}
		case inPhysical:
			switch key {
			case "Status":
				pdStatus = val
			case "Drive Type":
				pdType = val
			case "Interface Type":
				pd.Interface = iface(val)
				pd.Media = media(val)
				if pd.Media == "" && (pd.Interface == "sas" || pd.Interface == "sata") {
					pd.Media = contract.DiskHDD
				}
			case "Size":
				pd.SizeBytes, _ = parseSize(val, false)
			case "Model":
				pd.Model = clean(val)
			case "Serial Number":
				pd.Serial = clean(val)
			}
		}
	}
	endPD()
	if dropped {
		errs = append(errs, fmt.Errorf("more than %d controllers, the rest ignored", maxControllers))
	}
	if len(ctrls) == 0 && len(errs) == 0 && len(strings.TrimSpace(string(out))) > 0 {
		errs = append(errs, fmt.Errorf("%w: no controller line", ErrUnparsable))
	}
	return ctrls, errors.Join(errs...)
}

// ssacliPDState is the state of a physical drive from its Status and Drive
// Type.
func ssacliPDState(status, driveType string) string {
	s := lowerState(status)
	if s != "ok" {
		return s
	}
	switch dt := strings.ToLower(driveType); {
	case strings.Contains(dt, "spare"):
		return "spare"
	case strings.Contains(dt, "unassigned"):
		return "unassigned"
	case strings.Contains(dt, "hba"):
		return "hba mode"
	}
	return s
}

// The write side of Smart Array. ssacli, hpssacli and hpacucli take the
// same commands; the controller is addressed by its serial number, which
// the inventory has ("ctrl serialnumber=…", a target ssacli's help lists):
//
//	clear    ssacli ctrl serialnumber=S ld all delete forced   (when there are logical drives)
//	prepare  ssacli ctrl serialnumber=S modify hbamode=off forced (when a disk to use is in HBA mode)
//	create   ssacli ctrl serialnumber=S create type=ld drives=1I:1:1,1I:1:2 raid=1+0 size=MiB stripsize=256 forced
//	         ssacli ctrl serialnumber=S array B create type=ld raid=1+0 size=MiB forced  (further splits)
//	jbod     ssacli ctrl serialnumber=S modify hbamode=on forced (controller-wide only)
//
// An array's first logical drive creates it; the arrays of a cleared
// controller are lettered A, B… in the order they are created, which is
// how later splits name theirs. RAID 50 and 60 take paritygroups=, the
// number of spans. Sizes are whole MiB; the last split without a size
// takes what is left. Smart Array has no read-ahead or write-back setting
// per logical drive (its cache ratio is the controller's), so a spec that
// sets them is refused.

func (smartArray) capabilities() capabilities {
	return capabilities{
		label: "ssacli",
		levels: map[contract.RAIDLevel]levelRule{
			contract.RAID0:  {min: 1},
			contract.RAID1:  {min: 2, max: 2},
			contract.RAID5:  {min: 3},
			contract.RAID6:  {min: 4},
			contract.RAID10: {min: 4, even: true},
			contract.RAID50: {min: 6},
			contract.RAID60: {min: 8},
		},
		splits:     true,
		maxVolumes: 64,
		jbod:       jbodController,
		strips:     pow2(8, 1024),
		maxSpans:   8,
	}
}

// ssacliLevel is a level as ssacli's raid= takes it.
func ssacliLevel(l contract.RAIDLevel) string {
	if l == contract.RAID10 {
		return "1+0"
	}
	return string(l)
}

// ssacliDrive checks a drive's id: port:box:bay ("1I:1:3") or box:bay.
func ssacliDrive(d DiskRef) (string, error) {
	parts := strings.Split(d.ID(), ":")
	if len(parts) < 2 || len(parts) > 3 {
		return "", badWord("ssacli drive", d.ID())
	}
	for _, p := range parts {
		if !alnum(p, 6) {
			return "", badWord("ssacli drive", d.ID())
		}
	}
	return d.ID(), nil
}

func (s smartArray) steps(c *ControllerLayout, ctrl *contract.RAIDController, _ contract.Inventory) error {
	tool, err := checkedTool(s, c.Tool)
	if err != nil {
		return err
	}
	if !alnum(c.Serial, 40) {
		return specErr(-1, "controller %s has no usable serial number in the inventory (%q); ssacli addresses controllers by it", c.Controller, clean(c.Serial))
	}
	c.Handle = c.Serial
	target := []string{tool, "ctrl", "serialnumber=" + c.Serial}
	add := func(kind StepKind, argv ...string) *Step {
		c.Steps = append(c.Steps, Step{Kind: kind, Argv: append(slices.Clone(target), argv...)})
		return &c.Steps[len(c.Steps)-1]
	}
	if ctrl != nil && len(ctrl.LogicalDisks) > 0 {
		add(StepClear, "ld", "all", "delete", "forced")
	}
	arrays := raidArrays(c)
	hba := false
	for _, ai := range arrays {
		for _, d := range c.Arrays[ai].Disks {
			hba = hba || hasState(d.State, "hba")
		}
	}
	if hba {
		add(StepPrepare, "modify", "hbamode=off", "forced")
	}
	for n, ai := range arrays {
		a := c.Arrays[ai]
		if n >= 26 {
			return specErr(a.Spec, "ssacli letters at most 26 arrays per controller")
		}
		sizes, ok := volumeSizes(a)
		if !ok {
			return specErr(a.Spec, "the splits leave nothing for the last one")
		}
		ids := make([]string, len(a.Disks))
		for k, d := range a.Disks {
			if ids[k], err = ssacliDrive(d); err != nil {
				return err
			}
		}
		for k, v := range a.Volumes {
			var argv []string
			if k == 0 {
				argv = []string{"create", "type=ld", "drives=" + strings.Join(ids, ","), "raid=" + ssacliLevel(a.Level)}
			} else {
				argv = []string{"array", string(rune('A' + n)), "create", "type=ld", "raid=" + ssacliLevel(a.Level)}
			}
			if v.SizeBytes > 0 {
				argv = append(argv, "size="+mibString(sizes[k]))
			}
			if a.StripKiB > 0 {
				argv = append(argv, "stripsize="+strconv.Itoa(a.StripKiB))
			}
			if a.Spans > 0 && (a.Level == contract.RAID50 || a.Level == contract.RAID60) {
				argv = append(argv, "paritygroups="+strconv.Itoa(a.Spans))
			}
			argv = append(argv, "forced")
			add(StepCreate, argv...).Volumes = volumeRefs(c, ai, k, k+1)
		}
	}
	if len(c.JBOD) > 0 {
		add(StepJBOD, "modify", "hbamode=on", "forced")
	}
	return nil
}

// listVolumes reads "ssacli ctrl serialnumber=S ld all show detail": each
// logical drive's number, size, block device ("Disk Name") and unique
// identifier.
func (s smartArray) listVolumes(ctx context.Context, r CommandRunner, c ControllerLayout) ([]volumeInfo, error) {
	tool, err := checkedTool(s, c.Tool)
	if err != nil {
		return nil, err
	}
	if !alnum(c.Serial, 40) {
		return nil, badWord("ssacli serial number", c.Serial)
	}
	out, err := run(ctx, r, tool, "ctrl", "serialnumber="+c.Serial, "ld", "all", "show", "detail")
	if err != nil {
		return nil, err
	}
	return parseSSACLIVolumes(out), nil
}

// parseSSACLIVolumes reads the logical drives of "ld all show detail".
func parseSSACLIVolumes(out []byte) []volumeInfo {
	if len(out) > maxOutput {
		return nil
	}
	var vols []volumeInfo
	for _, line := range splitLines(out) {
		key, val, ok := keyValue(line)
		if !ok {
			continue
		}
		if key == "Logical Drive" {
			if len(vols) >= maxLogical {
				break
			}
			vols = append(vols, volumeInfo{ID: clean(val), Channel: -1, Target: -1})
			continue
		}
		if len(vols) == 0 {
			continue
		}
		v := &vols[len(vols)-1]
		switch key {
		case "Size":
			if v.SizeBytes == 0 {
				v.SizeBytes, _ = parseSize(val, true)
			}
		case "Disk Name":
			v.Device = clean(val)
		case "Unique Identifier":
			v.WWN = clean(val)
		case "Logical Drive Label":
			v.Name = clean(val)
		}
	}
	sortVolumeInfos(vols)
	return vols
}
