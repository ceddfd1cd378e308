package raid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"bareflow/contract"
)

// megaRAID reads Broadcom/LSI MegaRAID controllers and Dell's PERC
// (megaraid_sas) with storcli or its Dell build perccli, in JSON mode:
// "storcli64 /call show all J". It reads, per controller, Basics (model,
// serial, PCI address), Version (firmware package), Bus (PCI address, when
// present), "PD LIST" and "VD LIST".
//
// storcli prints sizes with binary units whether it writes "GB" or "GiB":
// "558.406 GB" is 558.406 × 1024³ bytes. A drive's state is storcli's word
// lower-cased (onln, ugood, ubad, offln, ghs, dhs, jbod, rbld, cpybck…);
// a drive of a foreign configuration (DG "F") gets " (foreign)" appended.
// A logical drive's ID is its virtual drive number, its state storcli's word
// (optl, dgrd, pdgd, ofln, rec…).
//
// MegaCli64 is not read: its text output is left to storcli's JSON.
type megaRAID struct{}

func (megaRAID) Name() string { return "megaraid" }

func (megaRAID) Tools() []string { return []string{"storcli64", "storcli", "perccli64", "perccli"} }

func (megaRAID) legacyTools() []string { return []string{"MegaCli64", "MegaCli", "megacli"} }

// megaRAIDIDs are the PCI IDs the Linux megaraid_sas driver binds
// (drivers/scsi/megaraid/megaraid_sas.h and megasas_pci_table).
var megaRAIDIDs = []string{
	"1000:0411", "1000:0060", "1000:007c", "1000:0413", "1000:0078",
	"1000:0079", "1000:0073", "1000:0071", "1000:005b", "1000:002f",
	"1000:005d", "1000:005f", "1000:00ce", "1000:00cf", "1000:0052",
	"1000:0053", "1000:0014", "1000:0015", "1000:0016", "1000:0017",
	"1000:001b", "1000:001c", "1000:10e0", "1000:10e1", "1000:10e2",
	"1000:10e3", "1000:10e4", "1000:10e5", "1000:10e6", "1000:10e7",
	"1028:0015", // Dell PERC 5
}

func (megaRAID) Handles(pci contract.PCIDevice) bool {
	if strings.EqualFold(strings.TrimSpace(pci.Driver), "megaraid_sas") {
		return true
	}
	return slices.Contains(megaRAIDIDs, pciID(pci))
}

func (megaRAID) Inventory(ctx context.Context, r CommandRunner, tool string) ([]contract.RAIDController, error) {
	out, err := run(ctx, r, tool, "/call", "show", "all", "J")
	if err != nil && len(out) == 0 {
		return nil, err
	}
	ctrls, perr := parseStorcli(out)
	if err != nil {
		// storcli exits non-zero when a controller's command failed; its
		// JSON then says why.
		return ctrls, errors.Join(err, perr)
	}
	return ctrls, perr
}

// jsonText holds a JSON string, number, or boolean as text; objects, arrays
// and null become "". It never fails, so that one field of an odd type
// cannot make a whole controller unreadable.
type jsonText string

func (t *jsonText) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			*t = jsonText(s)
		}
	case '{', '[', 'n':
		*t = ""
	default:
		if len(b) <= 64 {
			*t = jsonText(b)
		}
	}
	return nil
}

func (t jsonText) String() string { return string(t) }

type storcliEntry struct {
	CommandStatus json.RawMessage `json:"Command Status"`
	ResponseData  json.RawMessage `json:"Response Data"`
}

// parseStorcli reads the output of "storcli /call show all J". It returns the
// controllers it could read and an error for those it could not.
func parseStorcli(out []byte) ([]contract.RAIDController, error) {
	if len(out) > maxOutput {
		return nil, ErrOutputTooLarge
	}
	out = bytes.TrimSpace(out)
	if i := bytes.IndexByte(out, '{'); i > 0 {
		// Text before the first brace, such as a banner, is skipped.
		out = out[i:]
	}
	var doc struct {
		Controllers []json.RawMessage `json:"Controllers"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("storcli json: %w: %v", ErrUnparsable, err)
	}
	if len(doc.Controllers) == 0 {
		return nil, fmt.Errorf("storcli json: %w: no Controllers", ErrUnparsable)
	}
	var (
		ctrls []contract.RAIDController
		errs  []error
	)
	for i, raw := range doc.Controllers {
		if i >= maxControllers {
			errs = append(errs, fmt.Errorf("storcli: more than %d controllers, the rest ignored", maxControllers))
			break
		}
		var (
			e      storcliEntry
			status map[string]jsonText
			data   map[string]json.RawMessage
		)
		if json.Unmarshal(raw, &e) != nil || json.Unmarshal(e.CommandStatus, &status) != nil {
			errs = append(errs, fmt.Errorf("controller entry %d: %w: no Command Status object", i, ErrUnparsable))
			continue
		}
		id := clean(status["Controller"].String())
		if id == "" {
			id = strconv.Itoa(i)
		}
		if st := clean(status["Status"].String()); !strings.EqualFold(st, "Success") {
			desc := clean(status["Description"].String())
			if desc == "" {
				desc = "status " + strconv.Quote(st)
			}
			errs = append(errs, fmt.Errorf("controller %s: %w: %s", id, ErrToolFailed, strings.ToLower(desc)))
			continue
		}
		if len(e.ResponseData) > 0 && json.Unmarshal(e.ResponseData, &data) != nil {
			errs = append(errs, fmt.Errorf("controller %s: %w: Response Data is not an object", id, ErrUnparsable))
			continue
		}
		ctrl, err := storcliController(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("controller %s: %w", id, err))
		}
		if data == nil {
			continue
		}
		ctrls = append(ctrls, ctrl)
	}
	return ctrls, errors.Join(errs...)
}

func storcliController(data map[string]json.RawMessage) (contract.RAIDController, error) {
	var (
		c    contract.RAIDController
		errs []error
	)
	object := func(key string) map[string]jsonText {
		var m map[string]jsonText
		if raw, ok := data[key]; ok {
			if json.Unmarshal(raw, &m) != nil {
				errs = append(errs, fmt.Errorf("%w: %q is not an object", ErrUnparsable, key))
			}
		}
		return m
	}
	list := func(key string) []map[string]jsonText {
		var l []map[string]jsonText
		if raw, ok := data[key]; ok {
			if json.Unmarshal(raw, &l) != nil {
				errs = append(errs, fmt.Errorf("%w: %q is not a list of objects", ErrUnparsable, key))
			}
		}
		return l
	}
	basics, version, bus := object("Basics"), object("Version"), object("Bus")
	c.Model = clean(basics["Model"].String())
	c.Serial = clean(basics["Serial Number"].String())
	c.Firmware = clean(version["Firmware Package Build"].String())
	if c.Firmware == "" {
		c.Firmware = clean(version["Firmware Version"].String())
	}
	c.PCIAddr = storcliPCIAddr(basics, bus)
	if data == nil {
		errs = append(errs, fmt.Errorf("%w: no Response Data", ErrUnparsable))
	}

	for i, pd := range list("PD LIST") {
		if i >= maxPhysical {
			errs = append(errs, fmt.Errorf("more than %d physical drives, the rest ignored", maxPhysical))
			break
		}
		c.PhysicalDisks = append(c.PhysicalDisks, storcliPD(pd))
	}
	for i, vd := range list("VD LIST") {
		if i >= maxLogical {
			errs = append(errs, fmt.Errorf("more than %d virtual drives, the rest ignored", maxLogical))
			break
		}
		c.LogicalDisks = append(c.LogicalDisks, storcliVD(vd))
	}
	return c, errors.Join(errs...)
}

// storcliPCIAddr prefers the Bus section's decimal numbers and falls back to
// Basics' "PCI Address" (domain:bus:device:function in hexadecimal).
func storcliPCIAddr(basics, bus map[string]jsonText) string {
	b, d, f := atoi(bus["Bus Number"].String()), atoi(bus["Device Number"].String()), atoi(bus["Function Number"].String())
	dom := atoi(bus["Domain ID"].String())
	if dom < 0 {
		dom = 0
	}
	if b >= 0 && d >= 0 && f >= 0 {
		if a := pciAddr(int64(dom), int64(b), int64(d), int64(f)); a != "" {
			return a
		}
	}
	return normalizePCIAddr(basics["PCI Address"].String())
}

func storcliPD(pd map[string]jsonText) contract.RAIDPhysicalDisk {
	var d contract.RAIDPhysicalDisk
	loc := pd["EID:Slt"].String()
	if enc, slot, ok := strings.Cut(loc, ":"); ok {
		d.Enclosure, d.Slot = clean(enc), clean(slot)
	} else {
		d.Slot = clean(loc)
	}
	d.SizeBytes, _ = parseSize(pd["Size"].String(), true)
	d.Media = media(pd["Med"].String())
	d.Interface = iface(pd["Intf"].String())
	d.Model = clean(pd["Model"].String())
	d.State = lowerState(pd["State"].String())
	if dg := clean(pd["DG"].String()); strings.EqualFold(dg, "F") || strings.EqualFold(clean(pd["Sp"].String()), "F") {
		d.State = strings.TrimSpace(d.State + " (foreign)")
	}
	return d
}

func storcliVD(vd map[string]jsonText) contract.RAIDLogicalDisk {
	var l contract.RAIDLogicalDisk
	dgvd := clean(vd["DG/VD"].String())
	if _, v, ok := strings.Cut(dgvd, "/"); ok {
		l.ID = clean(v)
	} else {
		l.ID = dgvd
	}
	l.Level = normalizeLevel(vd["TYPE"].String())
	l.SizeBytes, _ = parseSize(vd["Size"].String(), true)
	l.State = lowerState(vd["State"].String())
	return l
}
