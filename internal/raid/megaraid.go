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

// The write side of MegaRAID. storcli and perccli take the same commands
// (Broadcom's StorCLI reference, public examples):
//
//	check    storcli64 /cN show all J          (the PCI address and serial of /cN)
//	clear    storcli64 /cN/eE/sS delete hotsparedrive   (each hot spare)
//	         storcli64 /cN/vall del force                (when there are virtual drives)
//	         storcli64 /cN/fall del                      (foreign configurations; fails when there are none)
//	         storcli64 /cN/eE/sS set good force          (each JBOD drive)
//	create   storcli64 /cN add vd type=raid10 size=100MB,200MB names=a-1,a-2 drives=252:0-3 pdperarray=2 strip=256 wb ra
//	jbod     storcli64 /cN set jbod=on, then storcli64 /cN/eE/sS set jbod
//
// Sizes are whole MiB ("MB": storcli's units are binary). A split taking
// the rest gets the array's capacity less the other splits, worked out
// from the inventory's drive sizes, which storcli reports already coerced.
// Drives without an enclosure are written as slots alone (/cN/sS,
// drives=0,1).

func (megaRAID) capabilities() capabilities {
	return capabilities{
		label: "storcli/perccli",
		levels: map[contract.RAIDLevel]levelRule{
			contract.RAID0:  {min: 1, max: 32},
			contract.RAID1:  {min: 2, max: 2},
			contract.RAID5:  {min: 3, max: 32},
			contract.RAID6:  {min: 4, max: 32},
			contract.RAID10: {min: 4, max: 256, even: true},
			contract.RAID50: {min: 6, max: 256},
			contract.RAID60: {min: 8, max: 256},
		},
		splits:     true,
		maxVolumes: 64,
		jbod:       jbodPerDisk,
		strips:     pow2(64, 1024),
		cache:      true,
		maxSpans:   8,
		tenSpans:   true,
	}
}

// storcliDrive is the path of a drive: /cN/eE/sS, or /cN/sS without an
// enclosure.
func storcliDrive(cN string, d DiskRef) (string, error) {
	if !digits(d.Slot, 4) || d.Enclosure != "" && !digits(d.Enclosure, 4) {
		return "", badWord("storcli drive", d.ID())
	}
	if d.Enclosure == "" {
		return cN + "/s" + d.Slot, nil
	}
	return cN + "/e" + d.Enclosure + "/s" + d.Slot, nil
}

// storcliDrives writes drives as storcli's drives= takes them: per
// enclosure, runs of consecutive slots as ranges ("252:0-3,6"), enclosures
// separated by ';'; drives without an enclosure as slots alone ("0,1").
func storcliDrives(ds []DiskRef) (string, error) {
	type group struct {
		enc   string
		slots []int
	}
	var groups []group
	for _, d := range ds {
		if !digits(d.Slot, 4) || d.Enclosure != "" && !digits(d.Enclosure, 4) {
			return "", badWord("storcli drive", d.ID())
		}
		n, _ := strconv.Atoi(d.Slot)
		if len(groups) == 0 || groups[len(groups)-1].enc != d.Enclosure {
			groups = append(groups, group{enc: d.Enclosure})
		}
		g := &groups[len(groups)-1]
		g.slots = append(g.slots, n)
	}
	var parts []string
	for _, g := range groups {
		if (g.enc == "") != (groups[0].enc == "") {
			return "", specErr(-1, "drives with and without an enclosure cannot share an array")
		}
		var runs []string
		for i := 0; i < len(g.slots); {
			j := i
			for j+1 < len(g.slots) && g.slots[j+1] == g.slots[j]+1 {
				j++
			}
			if j > i {
				runs = append(runs, fmt.Sprintf("%d-%d", g.slots[i], g.slots[j]))
			} else {
				runs = append(runs, strconv.Itoa(g.slots[i]))
			}
			i = j + 1
		}
		if g.enc == "" {
			parts = append(parts, strings.Join(runs, ","))
		} else {
			parts = append(parts, g.enc+":"+strings.Join(runs, ","))
		}
	}
	return strings.Join(parts, ";"), nil
}

func (m megaRAID) steps(c *ControllerLayout, ctrl *contract.RAIDController, _ contract.Inventory) error {
	tool, err := checkedTool(m, c.Tool)
	if err != nil {
		return err
	}
	if !digits(c.Handle, 3) {
		return badWord("storcli controller index", c.Handle)
	}
	cN := "/c" + c.Handle
	add := func(kind StepKind, argv ...string) *Step {
		c.Steps = append(c.Steps, Step{Kind: kind, Argv: append([]string{tool}, argv...)})
		return &c.Steps[len(c.Steps)-1]
	}
	add(StepCheck, cN, "show", "all", "J")

	// Clear: spares, virtual drives, foreign configurations, JBOD.
	var pds []contract.RAIDPhysicalDisk
	if ctrl != nil {
		pds = ctrl.PhysicalDisks
	}
	for _, pd := range pds {
		if pd.State == "ghs" || pd.State == "dhs" {
			path, err := storcliDrive(cN, DiskRef{Enclosure: pd.Enclosure, Slot: pd.Slot})
			if err != nil {
				return err
			}
			add(StepClear, path, "delete", "hotsparedrive")
		}
	}
	if ctrl != nil && len(ctrl.LogicalDisks) > 0 {
		add(StepClear, cN+"/vall", "del", "force")
	}
	add(StepClear, cN+"/fall", "del").MayFail = true
	for _, pd := range pds {
		if hasState(pd.State, "jbod") && usableDisk(pd.State) {
			path, err := storcliDrive(cN, DiskRef{Enclosure: pd.Enclosure, Slot: pd.Slot})
			if err != nil {
				return err
			}
			add(StepClear, path, "set", "good", "force")
		}
	}

	// Create: one command per array, its splits as a list of sizes.
	for _, ai := range raidArrays(c) {
		a := c.Arrays[ai]
		drives, err := storcliDrives(a.Disks)
		if err != nil {
			return err
		}
		argv := []string{cN, "add", "vd", "type=raid" + string(a.Level)}
		if len(a.Volumes) > 1 || a.Volumes[0].SizeBytes > 0 {
			sizes, ok := volumeSizes(a)
			if !ok {
				return specErr(a.Spec, "the splits leave nothing for the last one")
			}
			s := make([]string, len(sizes))
			for k, n := range sizes {
				s[k] = mibString(n) + "MB"
			}
			argv = append(argv, "size="+strings.Join(s, ","))
		}
		names := make([]string, len(a.Volumes))
		for k, v := range a.Volumes {
			if !volumeName(v.Name) {
				return badWord("volume name", v.Name)
			}
			names[k] = v.Name
		}
		argv = append(argv, "names="+strings.Join(names, ","), "drives="+drives)
		if a.Spans > 0 {
			argv = append(argv, "pdperarray="+strconv.Itoa(len(a.Disks)/a.Spans))
		}
		if a.StripKiB > 0 {
			argv = append(argv, "strip="+strconv.Itoa(a.StripKiB))
		}
		if a.WriteBack != nil {
			argv = append(argv, map[bool]string{true: "wb", false: "wt"}[*a.WriteBack])
		}
		if a.ReadAhead != nil {
			argv = append(argv, map[bool]string{true: "ra", false: "nora"}[*a.ReadAhead])
		}
		add(StepCreate, argv...).Volumes = volumeRefs(c, ai, 0, len(a.Volumes))
	}

	// Pass-through: JBOD mode on the controller, then each drive.
	if len(c.JBOD) > 0 {
		add(StepJBOD, cN, "set", "jbod=on")
		for _, d := range c.JBOD {
			path, err := storcliDrive(cN, d)
			if err != nil {
				return err
			}
			add(StepJBOD, path, "set", "jbod")
		}
	}
	return nil
}

// verify confirms that the output of "storcli /cN show all J" is the
// controller planned for: same PCI address, and same serial number when
// both are known.
func (megaRAID) verify(c ControllerLayout, out []byte) error {
	ctrls, err := parseStorcli(out)
	if len(ctrls) != 1 {
		return fmt.Errorf("%s /c%s show all J: %w: want one controller, got %d (%v)", c.Tool, c.Handle, ErrWrongController, len(ctrls), err)
	}
	return sameController(c, ctrls[0].PCIAddr, ctrls[0].Serial)
}

// listVolumes reads "storcli /cN/vall show all J": each virtual drive's
// number, name and size, and the block device and NAA identifier storcli
// gives for it. megaraid_sas puts virtual drives on SCSI channel 2 with
// the drive's number as target.
func (m megaRAID) listVolumes(ctx context.Context, r CommandRunner, c ControllerLayout) ([]volumeInfo, error) {
	tool, err := checkedTool(m, c.Tool)
	if err != nil {
		return nil, err
	}
	if !digits(c.Handle, 3) {
		return nil, badWord("storcli controller index", c.Handle)
	}
	out, err := run(ctx, r, tool, "/c"+c.Handle+"/vall", "show", "all", "J")
	if err != nil && len(out) == 0 {
		return nil, err
	}
	return parseStorcliVolumes(out)
}

// parseStorcliVolumes reads the output of "storcli /cN/vall show all J".
func parseStorcliVolumes(out []byte) ([]volumeInfo, error) {
	if len(out) > maxOutput {
		return nil, ErrOutputTooLarge
	}
	out = bytes.TrimSpace(out)
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	var doc struct {
		Controllers []storcliEntry `json:"Controllers"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Controllers) != 1 {
		return nil, fmt.Errorf("storcli virtual drives: %w", ErrUnparsable)
	}
	var status map[string]jsonText
	_ = json.Unmarshal(doc.Controllers[0].CommandStatus, &status)
	var data map[string]json.RawMessage
	_ = json.Unmarshal(doc.Controllers[0].ResponseData, &data)
	if st := clean(status["Status"].String()); !strings.EqualFold(st, "Success") {
		desc := strings.ToLower(clean(status["Description"].String()))
		if len(data) == 0 {
			return nil, fmt.Errorf("storcli virtual drives: %w: %s", ErrToolFailed, desc)
		}
	}
	byID := map[string]*volumeInfo{}
	var order []string
	get := func(id string) *volumeInfo {
		if v, ok := byID[id]; ok {
			return v
		}
		v := &volumeInfo{ID: id, Channel: 2, Target: atoi(id)}
		byID[id] = v
		order = append(order, id)
		return v
	}
	for key, raw := range data {
		switch {
		case strings.HasPrefix(key, "/c") && strings.Contains(key, "/v"):
			id := key[strings.LastIndex(key, "/v")+2:]
			if !digits(id, 4) {
				continue
			}
			var rows []map[string]jsonText
			if json.Unmarshal(raw, &rows) != nil || len(rows) == 0 {
				continue
			}
			v := get(id)
			v.Name = clean(rows[0]["Name"].String())
			v.SizeBytes, _ = parseSize(rows[0]["Size"].String(), true)
		case strings.HasPrefix(key, "VD") && strings.HasSuffix(key, " Properties"):
			id := strings.TrimSuffix(strings.TrimPrefix(key, "VD"), " Properties")
			if !digits(id, 4) {
				continue
			}
			var props map[string]jsonText
			if json.Unmarshal(raw, &props) != nil {
				continue
			}
			v := get(id)
			v.Device = clean(props["OS Drive Name"].String())
			v.WWN = clean(props["SCSI NAA Id"].String())
		}
	}
	if len(order) > maxLogical {
		order = order[:maxLogical]
	}
	out2 := make([]volumeInfo, 0, len(order))
	for _, id := range order {
		out2 = append(out2, *byID[id])
	}
	sortVolumeInfos(out2)
	return out2, nil
}
