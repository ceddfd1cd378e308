package raid

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
