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

// marvell reads Marvell 88SE9xxx SATA RAID controllers, such as Dell's
// BOSS-S1, with mvcli: "mvcli info -o hba", "-o pd" and "-o vd" each print
// blocks of "Key: value" lines separated by blank lines.
//
// mvcli prints sizes in binary units: a drive's "Size: 234431064 K" is
// kibibytes, a virtual disk's "size: 228872 M" mebibytes. A drive's Slot is
// its PD ID, the number "mvcli create -d" takes; its state is its Status
// lower-cased when mvcli prints one (older builds do, newer ones do not). A
// virtual disk's state is its status lower-cased (functional…). mvcli gives
// no PCI address and no serial number for the adapter: adapters are paired
// with the PCI functions in order, and named after their chip.
type marvell struct{}

func (marvell) Name() string { return "marvell" }

func (marvell) Tools() []string { return []string{"mvcli"} }

// marvellChips are the Marvell SATA RAID chips mvcli reads, by PCI ID.
var marvellChips = map[string]string{
	"1b4b:9123": "88SE9123",
	"1b4b:9128": "88SE9128",
	"1b4b:9220": "88SE9220",
	"1b4b:9230": "88SE9230",
	"1b4b:9235": "88SE9235",
	"1b4b:2241": "88NR2241",
}

func (marvell) Handles(pci contract.PCIDevice) bool {
	_, ok := marvellChips[pciID(pci)]
	return ok
}

func (marvell) Inventory(ctx context.Context, r CommandRunner, tool string) ([]contract.RAIDController, error) {
	var (
		outs [3][]byte
		errs []error
	)
	for i, what := range []string{"hba", "pd", "vd"} {
		out, err := run(ctx, r, tool, "info", "-o", what)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		outs[i] = out
	}
	if len(errs) == 3 {
		return nil, errors.Join(errs...)
	}
	ctrls, err := parseMvcli(outs[0], outs[1], outs[2])
	return ctrls, errors.Join(append(errs, err)...)
}

// mvcliBlocks splits mvcli output into blocks of key/value pairs, at blank
// lines. Within a block, the first value of a key wins.
func mvcliBlocks(out []byte) []map[string]string {
	var (
		blocks []map[string]string
		cur    map[string]string
	)
	for _, line := range splitLines(out) {
		if strings.TrimSpace(line) == "" {
			cur = nil
			continue
		}
		key, val, ok := keyValue(line)
		if !ok {
			continue
		}
		if cur == nil {
			if len(blocks) >= 4*maxPhysical {
				break
			}
			cur = map[string]string{}
			blocks = append(blocks, cur)
		}
		if _, dup := cur[key]; !dup && len(cur) < 256 {
			cur[key] = val
		}
	}
	return blocks
}

// parseMvcli reads the outputs of "mvcli info -o hba", "-o pd" and "-o vd".
func parseMvcli(hba, pds, vds []byte) ([]contract.RAIDController, error) {
	if len(hba) > maxOutput || len(pds) > maxOutput || len(vds) > maxOutput {
		return nil, ErrOutputTooLarge
	}
	var (
		ctrls []contract.RAIDController
		ids   []string   // adapter ID of each controller
		pdIDs [][]string // PD IDs of each controller
		errs  []error
	)
	adapter := func(id string) int {
		if i := slices.Index(ids, id); i >= 0 {
			return i
		}
		if len(ids) > 0 && id == "" {
			return 0
		}
		if len(ctrls) >= maxControllers {
			return -1
		}
		ctrls = append(ctrls, contract.RAIDController{Model: "Marvell"})
		ids = append(ids, id)
		pdIDs = append(pdIDs, nil)
		return len(ctrls) - 1
	}
	for _, b := range mvcliBlocks(hba) {
		id, ok := b["Adapter ID"]
		if !ok {
			continue
		}
		i := adapter(clean(id))
		if i < 0 {
			errs = append(errs, fmt.Errorf("more than %d adapters, the rest ignored", maxControllers))
			break
		}
		c := &ctrls[i]
		product := strings.ToLower(clean(b["Product"]))
		if chip, ok := marvellChips[strings.Replace(product, "-", ":", 1)]; ok {
			c.Model = "Marvell " + chip
		} else if product != "" {
			c.Model = "Marvell " + product
		}
		c.Firmware = clean(b["Firmware version"])
	}
	for _, b := range mvcliBlocks(pds) {
		pdID, ok := b["PD ID"]
		if !ok {
			continue
		}
		i := adapter(clean(b["Adapter"]))
		if i < 0 || len(ctrls[i].PhysicalDisks) >= maxPhysical {
			continue
		}
		d := contract.RAIDPhysicalDisk{
			Slot:      clean(pdID),
			Interface: iface(b["Type"]),
			Model:     clean(b["model"]),
			Serial:    clean(b["Serial"]),
			State:     lowerState(b["Status"]),
		}
		if d.Model == "" {
			d.Model = clean(b["Model"])
		}
		d.SizeBytes, _ = parseSize(b["Size"], true)
		switch ssd := strings.ToLower(clean(b["SSD Type"])); {
		case ssd == "ssd":
			d.Media = contract.DiskSSD
		case ssd != "":
			d.Media = contract.DiskHDD
		}
		ctrls[i].PhysicalDisks = append(ctrls[i].PhysicalDisks, d)
		pdIDs[i] = append(pdIDs[i], d.Slot)
	}
	for _, b := range mvcliBlocks(vds) {
		id, ok := b["id"]
		if !ok {
			continue
		}
		// A virtual disk goes with the adapter of its first member.
		i := -1
		for _, m := range strings.Fields(b["PD RAID setup"]) {
			for j := range pdIDs {
				if slices.Contains(pdIDs[j], m) {
					i = j
					break
				}
			}
			break
		}
		if i < 0 {
			i = adapter("")
		}
		if i < 0 || len(ctrls[i].LogicalDisks) >= maxLogical {
			continue
		}
		l := contract.RAIDLogicalDisk{
			ID:    clean(id),
			Level: normalizeLevel(b["RAID mode"]),
			State: lowerState(b["status"]),
		}
		l.SizeBytes, _ = parseSize(b["size"], true)
		ctrls[i].LogicalDisks = append(ctrls[i].LogicalDisks, l)
	}
	return ctrls, errors.Join(errs...)
}

// The write side of Marvell, after the mvcli calls of public tools
// (metal-toolbox/ironlib, digitalrebar's drp-raid):
//
//	clear    mvcli delete -o vd -i ID -f --waiveconfirmation   (each virtual disk)
//	create   mvcli create -o vd -r 1 -d 0,1 -n NAME -b 64 --waiveconfirmation
//
// mvcli works on one adapter at a time, so a machine with two Marvell
// controllers is refused. The 88SE92xx build RAID 0 and 1 of two disks
// and RAID 10 of four; the BOSS cards have two. Stripe ("block") sizes
// are 16 to 128 KiB. Disks outside virtual disks reach the OS as they
// are. mvcli's exit status is not to be trusted: Apply also looks for an
// error in its output.

func (marvell) capabilities() capabilities {
	return capabilities{
		label: "mvcli",
		levels: map[contract.RAIDLevel]levelRule{
			contract.RAID0:  {min: 2, max: 4},
			contract.RAID1:  {min: 2, max: 2},
			contract.RAID10: {min: 4, max: 4},
		},
		maxVolumes:      2,
		jbod:            jbodAuto,
		strips:          pow2(16, 128),
		mixedInterfaces: true,
	}
}

func (m marvell) steps(c *ControllerLayout, ctrl *contract.RAIDController, inv contract.Inventory) error {
	tool, err := checkedTool(m, c.Tool)
	if err != nil {
		return err
	}
	n := 0
	for _, o := range inv.RAID {
		if familyOfTool(o.Tool) == m.Name() {
			n++
		}
	}
	if n > 1 {
		return specErr(-1, "mvcli works on one adapter at a time and the machine has %d Marvell controllers", n)
	}
	c.Handle = ""
	add := func(kind StepKind, argv ...string) *Step {
		c.Steps = append(c.Steps, Step{Kind: kind, Argv: append([]string{tool}, argv...)})
		return &c.Steps[len(c.Steps)-1]
	}
	if ctrl != nil {
		for _, ld := range ctrl.LogicalDisks {
			if !digits(ld.ID, 3) {
				return badWord("mvcli virtual disk", ld.ID)
			}
			add(StepClear, "delete", "-o", "vd", "-i", ld.ID, "-f", "--waiveconfirmation")
		}
	}
	for _, ai := range raidArrays(c) {
		a := c.Arrays[ai]
		ids := make([]string, len(a.Disks))
		for k, d := range a.Disks {
			if d.Enclosure != "" || !digits(d.Slot, 3) {
				return badWord("mvcli disk", d.ID())
			}
			ids[k] = d.Slot
		}
		if !volumeName(a.Volumes[0].Name) {
			return badWord("volume name", a.Volumes[0].Name)
		}
		argv := []string{"create", "-o", "vd", "-r", string(a.Level), "-d", strings.Join(ids, ","), "-n", a.Volumes[0].Name}
		if a.StripKiB > 0 {
			argv = append(argv, "-b", strconv.Itoa(a.StripKiB))
		}
		argv = append(argv, "--waiveconfirmation")
		add(StepCreate, argv...).Volumes = volumeRefs(c, ai, 0, 1)
	}
	return nil
}

// listVolumes reads "mvcli info -o vd": each virtual disk's id, name and
// size.
func (m marvell) listVolumes(ctx context.Context, r CommandRunner, c ControllerLayout) ([]volumeInfo, error) {
	tool, err := checkedTool(m, c.Tool)
	if err != nil {
		return nil, err
	}
	out, err := run(ctx, r, tool, "info", "-o", "vd")
	if err != nil {
		return nil, err
	}
	var vols []volumeInfo
	for _, b := range mvcliBlocks(out) {
		id, ok := b["id"]
		if !ok || len(vols) >= maxLogical {
			continue
		}
		v := volumeInfo{ID: clean(id), Name: clean(b["name"]), Channel: -1, Target: -1}
		v.SizeBytes, _ = parseSize(b["size"], true)
		vols = append(vols, v)
	}
	sortVolumeInfos(vols)
	return vols, nil
}
