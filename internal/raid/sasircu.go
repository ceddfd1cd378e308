package raid

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"bareflow/contract"
)

// sasIRCU reads LSI/Broadcom SAS2 (gen 2, sas2ircu) and SAS3 (gen 3,
// sas3ircu) host bus adapters, with IT or IR firmware: "sas3ircu LIST"
// names the adapters and their PCI addresses, then "sas3ircu <index>
// DISPLAY" gives each one's firmware, IR volumes and drives.
//
// Sizes are in binary units: "Size (in MB)" is mebibytes. A drive's size is
// taken from its sector count (the tool prints the last LBA, so the size is
// (n+1)×512 bytes) when that agrees with its MB figure, else from the MB
// figure. States are the tool's words without their abbreviation, lower-
// cased: a drive is optimal, ready, failed, hot spare, available, missing,
// out of sync, degraded or rebuilding; a volume okay, degraded, failed,
// missing, initializing or online. A volume's ID is its Volume ID, the
// number the tool's other commands take. The SAS35xx adapters (HBA 9400 and
// later) are not sas3ircu's: they are listed from the PCI bus alone.
type sasIRCU struct {
	gen int // 2 or 3
}

func (s sasIRCU) Name() string { return fmt.Sprintf("sas%dircu", s.gen) }

func (s sasIRCU) Tools() []string { return []string{s.Name()} }

// PCI IDs of the SAS2 and SAS3 Fusion-MPT chips that sas2ircu and sas3ircu
// read (MPI2_MFGPAGE_DEVID_* and MPI25/26_MFGPAGE_DEVID_* of the mpt3sas
// driver's headers).
var (
	sas2IDs = []string{
		"1000:0070", "1000:0072", "1000:0074", "1000:0076", "1000:0077",
		"1000:0064", "1000:0065", "1000:0080", "1000:0081", "1000:0082",
		"1000:0083", "1000:0084", "1000:0085", "1000:0086", "1000:0087",
		"1000:006e", "1000:007e",
	}
	sas3IDs = []string{
		"1000:0096", "1000:0097", "1000:0090", "1000:0091", "1000:0094",
		"1000:0095", "1000:00c4", "1000:00c5", "1000:00c6", "1000:00c7",
		"1000:00c8", "1000:00c9",
	}
)

func (s sasIRCU) Handles(pci contract.PCIDevice) bool {
	id := pciID(pci)
	drv := strings.ToLower(strings.TrimSpace(pci.Driver))
	if s.gen == 2 {
		return slices.Contains(sas2IDs, id) || drv == "mpt2sas"
	}
	return slices.Contains(sas3IDs, id) || drv == "mpt3sas" && !slices.Contains(sas2IDs, id)
}

func (s sasIRCU) Inventory(ctx context.Context, r CommandRunner, tool string) ([]contract.RAIDController, error) {
	out, err := run(ctx, r, tool, "LIST")
	if err != nil {
		return nil, err
	}
	adapters, err := parseIRCUList(out)
	if err != nil {
		return nil, err
	}
	var (
		ctrls []contract.RAIDController
		errs  []error
	)
	for _, a := range adapters {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		out, err := run(ctx, r, tool, strconv.Itoa(a.index), "DISPLAY")
		if err != nil {
			errs = append(errs, fmt.Errorf("adapter %d: %w", a.index, err))
			ctrls = append(ctrls, contract.RAIDController{Model: a.model, PCIAddr: a.pciAddr})
			continue
		}
		c, err := parseIRCUDisplay(out)
		if err != nil {
			errs = append(errs, fmt.Errorf("adapter %d: %w", a.index, err))
		}
		if a.pciAddr != "" {
			c.PCIAddr = a.pciAddr
		}
		if c.Model == "" {
			c.Model = a.model
		}
		ctrls = append(ctrls, c)
	}
	return ctrls, errors.Join(errs...)
}

type ircuAdapter struct {
	index   int
	model   string
	pciAddr string
}

// parseIRCUList reads the table of "sas3ircu LIST":
//
//	Index    Type          ID      ID    Pci Address          Ven ID  Dev ID
//	  0     SAS3008     1000h    97h   00h:01h:00h:00h      1028h   1f53h
func parseIRCUList(out []byte) ([]ircuAdapter, error) {
	if len(out) > maxOutput {
		return nil, ErrOutputTooLarge
	}
	var (
		adapters []ircuAdapter
		header   bool
	)
	for _, line := range splitLines(out) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "Index" {
			header = true
		}
		if len(f) < 5 {
			continue
		}
		idx := atoi(f[0])
		if idx < 0 || idx > 255 {
			continue
		}
		a := ircuAdapter{index: idx, model: clean(f[1])}
		for _, x := range f[2:] {
			if strings.Count(x, ":") == 3 {
				a.pciAddr = normalizePCIAddr(x)
				break
			}
		}
		if a.pciAddr == "" && !header {
			continue
		}
		if len(adapters) >= maxControllers {
			return adapters, fmt.Errorf("more than %d adapters, the rest ignored", maxControllers)
		}
		adapters = append(adapters, a)
	}
	return adapters, nil
}

// parseIRCUDisplay reads the output of "sas3ircu <index> DISPLAY".
func parseIRCUDisplay(out []byte) (contract.RAIDController, error) {
	var c contract.RAIDController
	if len(out) > maxOutput {
		return c, ErrOutputTooLarge
	}
	type section int
	const (
		none section = iota
		controller
		volumes
		devices
		other
	)
	var (
		where            section
		seen             bool
		vol              *contract.RAIDLogicalDisk
		pd               *contract.RAIDPhysicalDisk
		seg, bus, dv, fn = -1, -1, -1, -1
		errs             []error
	)
	for _, line := range splitLines(out) {
		t := strings.TrimSpace(line)
		lt := strings.ToLower(t)
		switch lt {
		case "controller information":
			where, seen = controller, true
			continue
		case "ir volume information":
			where, vol = volumes, nil
			continue
		case "physical device information":
			where, pd = devices, nil
			continue
		case "enclosure information":
			where = other
			continue
		}
		if t == "" || strings.HasPrefix(t, "---") {
			continue
		}
		if strings.HasPrefix(lt, "sas2ircu:") || strings.HasPrefix(lt, "sas3ircu:") {
			if strings.Contains(lt, "fail") || strings.Contains(lt, "error") {
				errs = append(errs, fmt.Errorf("%w: %s", ErrToolFailed, strings.ToLower(clean(t))))
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
			case "Controller type":
				c.Model = clean(val)
			case "Firmware version":
				c.Firmware = clean(val)
			case "Segment":
				seg = atoi(val)
			case "Bus":
				bus = atoi(val)
			case "Device":
				dv = atoi(val)
			case "Function":
				fn = atoi(val)
			}
		case volumes:
			if strings.HasPrefix(lt, "ir volume ") {
				vol = nil
				if len(c.LogicalDisks) < maxLogical {
					c.LogicalDisks = append(c.LogicalDisks, contract.RAIDLogicalDisk{ID: clean(t[len("ir volume "):])})
					vol = &c.LogicalDisks[len(c.LogicalDisks)-1]
				}
				continue
			}
			key, val, ok := keyValue(t)
			if !ok || vol == nil {
				continue
			}
			switch key {
			case "Volume ID":
				if id := clean(val); id != "" {
					vol.ID = id
				}
			case "Status of volume":
				vol.State = lowerState(dropAbbrev(val))
			case "RAID level":
				vol.Level = normalizeLevel(val)
			case "Size (in MB)":
				if mb, ok := parseSize(val, true); ok {
					vol.SizeBytes, _ = toBytes(float64(mb), 1<<20)
				}
			}
		case devices:
			if strings.HasPrefix(lt, "device is a") {
				pd = nil
				if strings.Contains(lt, "hard disk") && len(c.PhysicalDisks) < maxPhysical {
					c.PhysicalDisks = append(c.PhysicalDisks, contract.RAIDPhysicalDisk{})
					pd = &c.PhysicalDisks[len(c.PhysicalDisks)-1]
				}
				continue
			}
			key, val, ok := keyValue(t)
			if !ok || pd == nil {
				continue
			}
			switch key {
			case "Enclosure #":
				pd.Enclosure = clean(val)
			case "Slot #":
				pd.Slot = clean(val)
			case "State":
				pd.State = lowerState(dropAbbrev(val))
			case "Size (in MB)/(in sectors)":
				pd.SizeBytes = ircuDriveSize(val)
			case "Model Number":
				pd.Model = clean(val)
			case "Serial No":
				pd.Serial = clean(val)
			case "Protocol":
				pd.Interface = iface(val)
			case "Drive Type":
				pd.Media = media(val)
			}
		}
	}
	if seg < 0 {
		seg = 0
	}
	if bus >= 0 && dv >= 0 && fn >= 0 {
		c.PCIAddr = pciAddr(int64(seg), int64(bus), int64(dv), int64(fn))
	}
	if !seen {
		errs = append(errs, fmt.Errorf("%w: no Controller information", ErrUnparsable))
	}
	return c, errors.Join(errs...)
}

// ircuDriveSize reads "457862/937703087": mebibytes, then the last LBA of
// 512-byte sectors.
func ircuDriveSize(s string) int64 {
	mbText, secText, _ := strings.Cut(s, "/")
	mb, mbOK := strconv.ParseUint(strings.TrimSpace(mbText), 10, 40)
	sec, secErr := strconv.ParseUint(strings.TrimSpace(secText), 10, 50)
	if secErr == nil && sec < math.MaxInt64/512-1 {
		b := int64(sec+1) * 512
		if mbOK != nil || math.Abs(float64(b)/(1<<20)-float64(mb)) < 2 {
			if b <= maxSize {
				return b
			}
		}
	}
	if mbOK == nil {
		b, _ := toBytes(float64(mb), 1<<20)
		return b
	}
	return 0
}

// The write side of SAS2/SAS3 IR. The commands and limits are those of
// LSI's "SAS-3 Integrated RAID Solution User Guide", appendix A (sas2ircu
// takes the same):
//
//	check    sas3ircu LIST                              (adapter N is at the PCI address planned)
//	clear    sas3ircu N DELETE noprompt                 (every volume and hot spare)
//	create   sas3ircu N CREATE RAID1 MAX 2:0 2:1 NAME noprompt
//
// IR firmware builds RAID 0 (2 to 10 disks), RAID 1 (2), RAID 1E (3 or
// more, odd here: an even count is RAID 10's) and RAID 10 (4 to 10, even),
// at most two volumes per adapter, no splits, no strip size or cache
// policy, and never mixes SAS and SATA. Disks outside volumes reach the
// OS as they are: there is no pass-through step. IT firmware builds
// nothing; the inventory does not tell it from IR, so its create fails.

func (s sasIRCU) capabilities() capabilities {
	return capabilities{
		label: s.Name(),
		levels: map[contract.RAIDLevel]levelRule{
			contract.RAID0:  {min: 2, max: 10},
			contract.RAID1:  {min: 2, max: 2},
			contract.RAID1E: {min: 3, max: 9, odd: true},
			contract.RAID10: {min: 4, max: 10, even: true},
		},
		maxVolumes: 2,
		jbod:       jbodAuto,
	}
}

// ircuLevel is a level as CREATE takes it.
func ircuLevel(l contract.RAIDLevel) string {
	if l == contract.RAID1E {
		return "RAID1E"
	}
	return "RAID" + string(l)
}

func (s sasIRCU) steps(c *ControllerLayout, ctrl *contract.RAIDController, _ contract.Inventory) error {
	tool, err := checkedTool(s, c.Tool)
	if err != nil {
		return err
	}
	if !digits(c.Handle, 3) {
		return badWord(s.Name()+" adapter index", c.Handle)
	}
	add := func(kind StepKind, argv ...string) *Step {
		c.Steps = append(c.Steps, Step{Kind: kind, Argv: append([]string{tool}, argv...)})
		return &c.Steps[len(c.Steps)-1]
	}
	add(StepCheck, "LIST")
	spares := false
	if ctrl != nil {
		for _, pd := range ctrl.PhysicalDisks {
			spares = spares || hasState(pd.State, "hot spare")
		}
	}
	if ctrl != nil && len(ctrl.LogicalDisks) > 0 || spares {
		add(StepClear, c.Handle, "DELETE", "noprompt")
	}
	for _, ai := range raidArrays(c) {
		a := c.Arrays[ai]
		argv := []string{c.Handle, "CREATE", ircuLevel(a.Level), "MAX"}
		for _, d := range a.Disks {
			if !digits(d.Enclosure, 4) || !digits(d.Slot, 4) {
				return badWord(s.Name()+" drive", d.ID())
			}
			argv = append(argv, d.Enclosure+":"+d.Slot)
		}
		if !volumeName(a.Volumes[0].Name) {
			return badWord("volume name", a.Volumes[0].Name)
		}
		argv = append(argv, a.Volumes[0].Name, "noprompt")
		add(StepCreate, argv...).Volumes = volumeRefs(c, ai, 0, 1)
	}
	return nil
}

// verify confirms with the output of "sasXircu LIST" that adapter Handle
// is at the PCI address planned.
func (s sasIRCU) verify(c ControllerLayout, out []byte) error {
	adapters, err := parseIRCUList(out)
	if err != nil {
		return fmt.Errorf("%s LIST: %w", s.Name(), err)
	}
	for _, a := range adapters {
		if strconv.Itoa(a.index) == c.Handle {
			if a.pciAddr == "" {
				return fmt.Errorf("%w: %s LIST gives no PCI address for adapter %s", ErrWrongController, s.Name(), c.Handle)
			}
			return sameController(c, a.pciAddr, "")
		}
	}
	return fmt.Errorf("%w: %s LIST has no adapter %s", ErrWrongController, s.Name(), c.Handle)
}

// listVolumes reads the IR volumes of "sasXircu N DISPLAY": ID, name,
// WWID and size. mpt2sas and mpt3sas put volumes on SCSI channel 1.
func (s sasIRCU) listVolumes(ctx context.Context, r CommandRunner, c ControllerLayout) ([]volumeInfo, error) {
	tool, err := checkedTool(s, c.Tool)
	if err != nil {
		return nil, err
	}
	if !digits(c.Handle, 3) {
		return nil, badWord(s.Name()+" adapter index", c.Handle)
	}
	out, err := run(ctx, r, tool, c.Handle, "DISPLAY")
	if err != nil {
		return nil, err
	}
	return parseIRCUVolumes(out), nil
}

// parseIRCUVolumes reads the "IR Volume information" section of DISPLAY.
func parseIRCUVolumes(out []byte) []volumeInfo {
	if len(out) > maxOutput {
		return nil
	}
	var (
		vols []volumeInfo
		in   bool
	)
	for _, line := range splitLines(out) {
		t := strings.TrimSpace(line)
		lt := strings.ToLower(t)
		switch lt {
		case "ir volume information":
			in = true
			continue
		case "physical device information", "enclosure information", "controller information":
			in = false
			continue
		}
		if !in {
			continue
		}
		if strings.HasPrefix(lt, "ir volume ") {
			if len(vols) >= maxLogical {
				break
			}
			vols = append(vols, volumeInfo{ID: clean(t[len("ir volume "):]), Channel: 1, Target: -1})
			continue
		}
		key, val, ok := keyValue(t)
		if !ok || len(vols) == 0 {
			continue
		}
		v := &vols[len(vols)-1]
		switch key {
		case "Volume ID":
			if id := clean(val); id != "" {
				v.ID = id
			}
		case "Volume Name":
			v.Name = clean(val)
		case "Volume wwid":
			v.WWN = clean(val)
		case "Size (in MB)":
			if mb, ok := parseSize(val, true); ok {
				v.SizeBytes, _ = toBytes(float64(mb), 1<<20)
			}
		}
	}
	sortVolumeInfos(vols)
	return vols
}
