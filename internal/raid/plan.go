package raid

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"bareflow/contract"
)

// Layout is what Plan decided for a spec: per controller, the arrays with
// their disks and logical drives, the disks passed through, and the
// commands that build it all. It is plain data (it crosses a workflow as
// JSON) and holds for the inventory it was planned from: after a failed
// Apply, collect the inventory again and plan again.
type Layout struct {
	Controllers []ControllerLayout `json:"controllers"`
}

// ControllerLayout is the part of a Layout on one controller.
type ControllerLayout struct {
	// Controller is the controller's PCI address, or MDController.
	Controller string `json:"controller"`
	// Family is the driver's name (megaraid, smartarray, sas2ircu,
	// sas3ircu, marvell, arcconf, md) and Tool the program run.
	Family string `json:"family"`
	Tool   string `json:"tool"`
	Model  string `json:"model,omitempty"`
	Serial string `json:"serial,omitempty"`
	// Handle is the tool's own name for the controller: storcli's /cN and
	// sasXircu's adapter index, arcconf's controller number, ssacli's
	// serial number; empty for mvcli and md.
	Handle string        `json:"handle,omitempty"`
	Arrays []ArrayLayout `json:"arrays,omitempty"`
	// JBOD lists the disks passed through to the OS one by one.
	JBOD []DiskRef `json:"jbod,omitempty"`
	// Notes say what the plan left as it was, and why.
	Notes []string `json:"notes,omitempty"`
	// Steps are the commands, in order.
	Steps []Step `json:"steps"`
}

// ArrayLayout is one array of the spec as planned.
type ArrayLayout struct {
	// Spec is the array's index in RAIDSpec.Arrays.
	Spec  int                `json:"spec"`
	Level contract.RAIDLevel `json:"level"`
	Name  string             `json:"name"`
	Disks []DiskRef          `json:"disks"`
	// Spans is the number of spans of a RAID 10, 50 or 60; the disks are
	// split evenly among them in order.
	Spans int `json:"spans,omitempty"`
	// UsableBytes is the array's capacity, from its level and its
	// smallest disk (before the controller's own reserve).
	UsableBytes int64          `json:"usable_bytes"`
	Volumes     []VolumeLayout `json:"volumes,omitempty"`
	StripKiB    int            `json:"strip_kib,omitempty"`
	ReadAhead   *bool          `json:"read_ahead,omitempty"`
	WriteBack   *bool          `json:"write_back,omitempty"`
	Root        bool           `json:"root,omitempty"`
}

// VolumeLayout is one logical drive of an array.
type VolumeLayout struct {
	Name string `json:"name"`
	// SizeBytes is a whole number of MiB, or 0 for the rest of the array.
	SizeBytes int64 `json:"size_bytes,omitempty"`
	Root      bool  `json:"root,omitempty"`
}

// DiskRef is a disk as the controller's tool names it: Enclosure and Slot
// for hardware, Slot alone for mvcli, and for md the block device name in
// Slot.
type DiskRef struct {
	Enclosure string `json:"enclosure,omitempty"`
	Slot      string `json:"slot"`
	SizeBytes int64  `json:"size_bytes"`
	Media     string `json:"media,omitempty"`
	Interface string `json:"interface,omitempty"`
	State     string `json:"state,omitempty"`
}

// ID is the disk as a spec names it: "252:0", "1I:1:3", "0", "vdb".
func (d DiskRef) ID() string {
	if d.Enclosure == "" {
		return d.Slot
	}
	return d.Enclosure + ":" + d.Slot
}

// StepKind says what a step does.
type StepKind string

// Kinds of steps, in the order Apply runs them. Check steps of every
// controller run before anything is touched.
const (
	// StepCheck reads the controller to confirm the tool's handle still
	// names the controller planned for.
	StepCheck StepKind = "check"
	// StepClear deletes logical drives, foreign configurations, spares and
	// pass-through.
	StepClear StepKind = "clear"
	// StepPrepare readies member disks (initialization, a controller mode).
	StepPrepare StepKind = "prepare"
	// StepCreate builds logical drives.
	StepCreate StepKind = "create"
	// StepJBOD passes disks through.
	StepJBOD StepKind = "jbod"
)

// Step is one command of a Layout.
type Step struct {
	Kind StepKind `json:"kind"`
	Argv []string `json:"argv"`
	// Volumes are the logical drives a create step builds.
	Volumes []VolumeRef `json:"volumes,omitempty"`
	// MayFail marks a step whose failure is recorded but does not stop
	// Apply: storcli fails to delete foreign configurations when there
	// are none.
	MayFail bool `json:"may_fail,omitempty"`
}

// VolumeRef names a volume of a ControllerLayout: Arrays[Array].Volumes[Volume].
type VolumeRef struct {
	Array  int `json:"array"`
	Volume int `json:"volume"`
}

// String is the step as a shell line, for logs and progress.
func (s Step) String() string {
	q := make([]string, len(s.Argv))
	for i, a := range s.Argv {
		q[i] = shellWord(a)
	}
	return string(s.Kind) + ": " + strings.Join(q, " ")
}

// shellWord quotes s for reading as one shell word.
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// MDController is the Controller of Linux software RAID in a spec and a
// Layout.
const MDController = "md"

// SpecError is a spec the hardware cannot satisfy, found before anything
// was touched.
type SpecError struct {
	// Array is the index in RAIDSpec.Arrays of the array at fault, or -1
	// for the spec as a whole. The message counts arrays from 1.
	Array  int
	Reason string
	// Code is contract.ErrRAIDSpecInvalid, contract.ErrUnsupportedRAIDLevel
	// or contract.ErrRAIDToolMissing.
	Code string
}

func (e *SpecError) Error() string {
	if e.Array < 0 {
		return e.Reason
	}
	return fmt.Sprintf("array %d: %s", e.Array+1, e.Reason)
}

func specErr(array int, format string, args ...any) *SpecError {
	return &SpecError{Array: array, Reason: fmt.Sprintf(format, args...), Code: contract.ErrRAIDSpecInvalid}
}

// Bounds of a spec.
const (
	maxArrays = 64
	maxSplits = 16
)

// jbodKind is how a family passes disks through.
type jbodKind int

const (
	// jbodPerDisk: a command per disk.
	jbodPerDisk jbodKind = iota
	// jbodAuto: disks outside logical drives reach the OS as they are.
	jbodAuto
	// jbodController: only the whole controller, in HBA mode.
	jbodController
)

// levelRule is the number of disks a level takes on a family.
type levelRule struct {
	min, max  int // max 0: no upper bound
	even, odd bool
}

// capabilities is what a family can build.
type capabilities struct {
	label  string // "sas3ircu", "storcli/perccli"…
	levels map[contract.RAIDLevel]levelRule
	// splits: several logical drives on one array.
	splits bool
	// maxVolumes per controller; 0 means no limit worth checking.
	maxVolumes int
	jbod       jbodKind
	// strips are the strip sizes taken, in KiB; nil: none can be set.
	strips []int
	// cache: read-ahead and write-back can be set per array.
	cache bool
	// mixedInterfaces: SAS and SATA disks may share an array.
	mixedInterfaces bool
	// maxSpans of a RAID 50 or 60 (and of a RAID 10 with tenSpans).
	maxSpans int
	// tenSpans: a RAID 10 is given as spans of mirrors (storcli's
	// pdperarray).
	tenSpans bool
}

func pow2(from, to int) []int {
	var s []int
	for k := from; k <= to; k *= 2 {
		s = append(s, k)
	}
	return s
}

// builder is the write side of a family.
type builder interface {
	Driver
	capabilities() capabilities
	// steps turns a controller's layout into commands; ctrl is the
	// controller as the inventory saw it (nil for md) and inv the whole
	// inventory.
	steps(c *ControllerLayout, ctrl *contract.RAIDController, inv contract.Inventory) error
}

// builderFor returns the family's builder, or nil.
func builderFor(family string) builder {
	for _, d := range Drivers() {
		if b, ok := d.(builder); ok && d.Name() == family {
			return b
		}
	}
	return nil
}

// familyOfTool returns the family whose driver reads the controller with
// tool, or "".
func familyOfTool(tool string) string {
	if tool == "mdstat" {
		return MDController
	}
	for _, d := range Drivers() {
		if slices.Contains(d.Tools(), tool) {
			return d.Name()
		}
	}
	return ""
}

// levelName is a level as messages write it.
func levelName(l contract.RAIDLevel) string {
	switch l {
	case contract.RAIDJBOD:
		return "JBOD"
	case contract.RAID1E:
		return "RAID 1E"
	}
	return "RAID " + string(l)
}

// hwController is a controller of the inventory that a family can build on.
type hwController struct {
	ctrl   *contract.RAIDController
	family string
	b      builder
	handle int // index among the inventory's controllers of its tool
}

// planner holds the state of one Plan.
type planner struct {
	spec    contract.RAIDSpec
	inv     contract.Inventory
	hw      []hwController
	layouts []*ControllerLayout
	byCtrl  map[string]*ControllerLayout
	// taken maps a disk ("controller|id") to the array that took it.
	taken map[string]int
	// takenSerials are the serial numbers of hardware disks taken, so
	// that md does not take the same disk by its block device.
	takenSerials map[string]bool
}

// Plan decides how spec is built on the hardware of inv: for each array,
// the controller, the disks (explicit slots, else Count disks matching the
// selector, smallest first then in slot order), the logical drives and the
// commands. It does no I/O. A spec the hardware cannot satisfy is refused
// with a *SpecError saying why.
//
// An array's Controller is a PCI address, MDController, or empty for the
// only controller whose disks can satisfy it; a machine whose RAID
// controllers have no tool or list no disks gets md on its whole disks.
// Count 0 without slots takes every matching disk. Disks in a failed,
// offline or missing state are never taken; disks of a foreign
// configuration are, as clearing deletes it. Mixed media are refused
// unless allowed, and so are splits larger than the array, levels the
// family cannot build, wrong disk counts, and a disk taken twice.
func Plan(spec contract.RAIDSpec, inv contract.Inventory) (Layout, error) {
	if len(spec.Arrays) == 0 {
		return Layout{}, specErr(-1, "the spec has no arrays")
	}
	if len(spec.Arrays) > maxArrays {
		return Layout{}, specErr(-1, "the spec has %d arrays, at most %d are taken", len(spec.Arrays), maxArrays)
	}
	p := &planner{spec: spec, inv: inv, byCtrl: map[string]*ControllerLayout{}, taken: map[string]int{}, takenSerials: map[string]bool{}}
	seen := map[string]int{}
	for i := range inv.RAID {
		c := &inv.RAID[i]
		fam := familyOfTool(c.Tool)
		if fam == "" || fam == MDController {
			continue
		}
		b := builderFor(fam)
		if b == nil {
			continue
		}
		p.hw = append(p.hw, hwController{ctrl: c, family: fam, b: b, handle: seen[c.Tool]})
		seen[c.Tool]++
	}
	roots := 0
	names := map[string]int{}
	for i, a := range spec.Arrays {
		if err := p.array(i, a); err != nil {
			return Layout{}, err
		}
		if a.Root {
			roots++
			if roots > 1 {
				return Layout{}, specErr(i, "only one array can hold the root")
			}
		}
		name := arrayName(i, a)
		if j, dup := names[strings.ToLower(name)]; dup {
			return Layout{}, specErr(i, "name %q is already array %d's", name, j+1)
		}
		names[strings.ToLower(name)] = i
	}
	vols := map[string]bool{}
	for _, c := range p.layouts {
		for _, a := range c.Arrays {
			for _, v := range a.Volumes {
				if vols[strings.ToLower(v.Name)] {
					return Layout{}, specErr(a.Spec, "logical drive name %q is taken twice; rename the array", v.Name)
				}
				vols[strings.ToLower(v.Name)] = true
			}
		}
	}
	var out Layout
	for _, c := range p.layouts {
		if err := p.finish(c); err != nil {
			return Layout{}, err
		}
		out.Controllers = append(out.Controllers, *c)
	}
	return out, nil
}

// arrayName is the array's name, or its default.
func arrayName(i int, a contract.RAIDArray) string {
	if a.Name != "" {
		return a.Name
	}
	return "bf" + strconv.Itoa(i)
}

// validName reports whether s is a name a spec may give.
func validName(s string) bool {
	if s == "" || len(s) > 12 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_')
		if !ok {
			return false
		}
	}
	return true
}

// candidate is a disk an array may take.
type candidate struct {
	ref    DiskRef
	key    string // "controller|id"
	serial string
	num    int // slot number, -1 when not numeric
	// named: taken only when a spec names it (md on loop or md devices).
	named bool
}

// array plans spec array i.
func (p *planner) array(i int, a contract.RAIDArray) error {
	if err := a.Level.Validate(); err != nil {
		return specErr(i, "%v", err)
	}
	if a.Name != "" && !validName(a.Name) {
		return specErr(i, "name %q: want a letter or digit, then letters, digits, '-' or '_', 12 characters at most", a.Name)
	}
	if err := checkSelector(i, a.Disks); err != nil {
		return err
	}
	c, cands, err := p.controller(i, a)
	if err != nil {
		return err
	}
	caps := capabilitiesOf(c)
	if a.Level != contract.RAIDJBOD {
		if _, ok := caps.levels[a.Level]; !ok {
			return &SpecError{Array: i, Code: contract.ErrUnsupportedRAIDLevel,
				Reason: fmt.Sprintf("%s cannot build %s; it builds %s", describeController(c), levelName(a.Level), levelList(caps))}
		}
	}
	disks, err := p.pick(i, a, c, cands)
	if err != nil {
		return err
	}
	if err := checkCount(i, a, caps, len(disks)); err != nil {
		return err
	}
	if !caps.mixedInterfaces && a.Level != contract.RAIDJBOD {
		ifs := map[string]bool{}
		for _, d := range disks {
			if d.ref.Interface == "sas" || d.ref.Interface == "sata" {
				ifs[d.ref.Interface] = true
			}
		}
		if len(ifs) > 1 {
			return specErr(i, "%s cannot mix SAS and SATA disks in one array", caps.label)
		}
	}
	al := ArrayLayout{Spec: i, Level: a.Level, Name: arrayName(i, a), StripKiB: a.StripKiB,
		ReadAhead: a.ReadAhead, WriteBack: a.WriteBack, Root: a.Root}
	for _, d := range disks {
		al.Disks = append(al.Disks, d.ref)
	}
	if err := p.options(i, a, c, caps, &al); err != nil {
		return err
	}
	for _, d := range disks {
		p.taken[d.key] = i
		if d.serial != "" {
			p.takenSerials[strings.ToLower(d.serial)] = true
		}
	}
	c.Arrays = append(c.Arrays, al)
	return nil
}

// checkSelector refuses selectors that make no sense.
func checkSelector(i int, s contract.DiskSelector) error {
	switch {
	case s.Count < 0:
		return specErr(i, "disk count %d is negative", s.Count)
	case s.Count > maxPhysical:
		return specErr(i, "disk count %d is more than %d", s.Count, maxPhysical)
	case len(s.Slots) > maxPhysical:
		return specErr(i, "%d slots named, at most %d are taken", len(s.Slots), maxPhysical)
	case s.MinSizeBytes < 0 || s.MaxSizeBytes < 0:
		return specErr(i, "disk size bounds must not be negative")
	case s.MaxSizeBytes > 0 && s.MinSizeBytes > s.MaxSizeBytes:
		return specErr(i, "min_size_bytes %d is more than max_size_bytes %d", s.MinSizeBytes, s.MaxSizeBytes)
	case s.SlotFrom != nil && *s.SlotFrom < 0, s.SlotTo != nil && *s.SlotTo < 0:
		return specErr(i, "slot bounds must not be negative")
	case s.SlotFrom != nil && s.SlotTo != nil && *s.SlotFrom > *s.SlotTo:
		return specErr(i, "slot_from %d is after slot_to %d", *s.SlotFrom, *s.SlotTo)
	case len(s.Slots) > 0 && s.Count > 0 && s.Count != len(s.Slots):
		return specErr(i, "count %d disagrees with the %d slots named", s.Count, len(s.Slots))
	}
	switch s.Media {
	case "", contract.DiskHDD, contract.DiskSSD, contract.DiskNVMe:
	default:
		return specErr(i, "media %q: want %s, %s or %s", s.Media, contract.DiskHDD, contract.DiskSSD, contract.DiskNVMe)
	}
	seen := map[string]bool{}
	for _, id := range s.Slots {
		if seen[id] {
			return specErr(i, "slot %q is named twice", id)
		}
		seen[id] = true
	}
	return nil
}

// capabilitiesOf returns the capabilities of the layout's family.
func capabilitiesOf(c *ControllerLayout) capabilities {
	return builderFor(c.Family).capabilities()
}

// describeController names a controller for messages.
func describeController(c *ControllerLayout) string {
	if c.Family == MDController {
		return "Linux md"
	}
	model := c.Model
	if model == "" {
		model = "the controller"
	}
	return fmt.Sprintf("%s (%s at %s)", c.Family, model, c.Controller)
}

func levelList(caps capabilities) string {
	var ls []string
	for _, l := range contract.RAIDLevels {
		if _, ok := caps.levels[l]; ok {
			ls = append(ls, strings.TrimPrefix(levelName(l), "RAID "))
		}
	}
	if len(ls) == 1 {
		return "RAID " + ls[0]
	}
	return "RAID " + strings.Join(ls[:len(ls)-1], ", ") + " and " + ls[len(ls)-1]
}

// controller resolves the array's controller and returns its layout with
// the disks the array could take there.
func (p *planner) controller(i int, a contract.RAIDArray) (*ControllerLayout, []candidate, error) {
	switch want := strings.TrimSpace(a.Controller); {
	case strings.EqualFold(want, MDController):
		return p.mdLayout(), p.mdCandidates(), nil
	case want != "":
		addr := normalizePCIAddr(want)
		if addr == "" {
			return nil, nil, specErr(i, "controller %q is neither a PCI address nor %q", want, MDController)
		}
		for _, c := range p.inv.RAID {
			if normalizePCIAddr(c.PCIAddr) == addr && familyOfTool(c.Tool) == "" {
				return nil, nil, &SpecError{Array: i, Code: contract.ErrRAIDToolMissing,
					Reason: fmt.Sprintf("controller %s (%s) was not read by a RAID tool of the ramdisk", addr, orUnknown(c.Model))}
			}
		}
		for k := range p.hw {
			if normalizePCIAddr(p.hw[k].ctrl.PCIAddr) == addr {
				c := p.hwLayout(i, k)
				if c == nil {
					return nil, nil, p.hwRefusal(i, k)
				}
				return c, p.hwCandidates(k), nil
			}
		}
		return nil, nil, specErr(i, "no RAID controller at %s (the inventory has %s)", addr, p.listControllers())
	}
	// No controller named: the only one that can satisfy the array.
	var (
		fits, usable []int
		why          []string
	)
	for k := range p.hw {
		if len(p.hw[k].ctrl.PhysicalDisks) == 0 {
			continue
		}
		usable = append(usable, k)
		if _, ok := p.hw[k].b.capabilities().levels[a.Level]; !ok && a.Level != contract.RAIDJBOD {
			why = append(why, fmt.Sprintf("%s at %s cannot build %s", p.hw[k].family, orUnknown(p.hw[k].ctrl.PCIAddr), levelName(a.Level)))
			continue
		}
		c := &ControllerLayout{Family: p.hw[k].family, Controller: normalizePCIAddr(p.hw[k].ctrl.PCIAddr), Model: p.hw[k].ctrl.Model}
		if _, err := p.pick(i, a, c, p.hwCandidates(k)); err == nil {
			fits = append(fits, k)
		} else {
			var se *SpecError
			if errors.As(err, &se) {
				why = append(why, se.Reason)
			}
		}
	}
	one := func(k int) (*ControllerLayout, []candidate, error) {
		c := p.hwLayout(i, k)
		if c == nil {
			return nil, nil, p.hwRefusal(i, k)
		}
		return c, p.hwCandidates(k), nil
	}
	switch {
	case len(usable) == 0:
		return p.mdLayout(), p.mdCandidates(), nil
	case len(usable) == 1:
		// The machine's only controller: its own reasons, if any, follow.
		return one(usable[0])
	case len(fits) == 1:
		return one(fits[0])
	case len(fits) == 0:
		return nil, nil, specErr(i, "no controller can give it its disks: %s", strings.Join(why, "; "))
	}
	var addrs []string
	for _, k := range fits {
		addrs = append(addrs, orUnknown(p.hw[k].ctrl.PCIAddr))
	}
	return nil, nil, specErr(i, "%d controllers could build it (%s); name one in controller", len(fits), strings.Join(addrs, ", "))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// listControllers names the inventory's RAID controllers for messages.
func (p *planner) listControllers() string {
	var s []string
	for _, c := range p.inv.RAID {
		if familyOfTool(c.Tool) == MDController {
			continue
		}
		s = append(s, fmt.Sprintf("%s at %s", orUnknown(c.Model), orUnknown(c.PCIAddr)))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// hwRefusal says why hardware controller k cannot be planned for.
func (p *planner) hwRefusal(i, k int) error {
	h := p.hw[k]
	if normalizePCIAddr(h.ctrl.PCIAddr) == "" {
		return specErr(i, "controller %s has no PCI address in the inventory", orUnknown(h.ctrl.Model))
	}
	return specErr(i, "controller %s cannot be addressed by %s", h.ctrl.PCIAddr, h.ctrl.Tool)
}

// hwLayout returns the layout of hardware controller k, creating it, or nil
// when the controller cannot be addressed.
func (p *planner) hwLayout(i, k int) *ControllerLayout {
	h := p.hw[k]
	addr := normalizePCIAddr(h.ctrl.PCIAddr)
	if addr == "" {
		return nil
	}
	if c, ok := p.byCtrl[addr]; ok {
		return c
	}
	c := &ControllerLayout{Controller: addr, Family: h.family, Tool: h.ctrl.Tool, Model: h.ctrl.Model,
		Serial: h.ctrl.Serial, Handle: strconv.Itoa(h.handle)}
	p.byCtrl[addr] = c
	p.layouts = append(p.layouts, c)
	return c
}

func (p *planner) mdLayout() *ControllerLayout {
	if c, ok := p.byCtrl[MDController]; ok {
		return c
	}
	c := &ControllerLayout{Controller: MDController, Family: MDController, Tool: "mdadm", Model: "Linux md"}
	p.byCtrl[MDController] = c
	p.layouts = append(p.layouts, c)
	return c
}

// hwCandidates are the disks of hardware controller k.
func (p *planner) hwCandidates(k int) []candidate {
	h := p.hw[k]
	addr := normalizePCIAddr(h.ctrl.PCIAddr)
	var out []candidate
	for _, d := range h.ctrl.PhysicalDisks {
		ref := DiskRef{Enclosure: d.Enclosure, Slot: d.Slot, SizeBytes: d.SizeBytes, Media: d.Media, Interface: d.Interface, State: d.State}
		out = append(out, candidate{ref: ref, key: addr + "|" + ref.ID(), serial: d.Serial, num: atoi(d.Slot)})
	}
	return out
}

// mdCandidates are the machine's whole disks, less those behind a
// controller that an array of the spec uses (they are about to change).
// Loop, md, device-mapper and other virtual devices are taken only when a
// spec names them.
func (p *planner) mdCandidates() []candidate {
	used := map[string]bool{}
	for _, c := range p.layouts {
		if c.Family != MDController {
			used[c.Controller] = true
		}
	}
	var out []candidate
	for _, d := range p.inv.Disks {
		if used[normalizePCIAddr(d.Controller)] {
			continue
		}
		ref := DiskRef{Slot: d.Name, SizeBytes: d.SizeBytes, Media: d.Type, Interface: d.Transport}
		if d.Removable {
			ref.State = "removable"
		}
		virtual := false
		for _, p := range []string{"md", "dm-", "loop", "ram", "zram", "nbd", "sr"} {
			virtual = virtual || strings.HasPrefix(d.Name, p)
		}
		out = append(out, candidate{ref: ref, key: MDController + "|" + d.Name, serial: d.Serial, num: -1, named: virtual})
	}
	return out
}

// badState reports whether a disk in state s must not be taken, and why.
func badState(s string) (string, bool) {
	s = strings.ToLower(s)
	for _, w := range []string{"fail", "ubad", "bad", "offln", "offline", "missing", "predictive", "removable", "unsupported"} {
		if strings.Contains(s, w) {
			return s, true
		}
	}
	return "", false
}

// mediaWord names disks of a media for messages.
func mediaWord(media string, n int) string {
	w := "disk"
	switch media {
	case contract.DiskSSD:
		w = "SSD"
	case contract.DiskHDD:
		w = "HDD"
	case contract.DiskNVMe:
		w = "NVMe disk"
	}
	if n != 1 {
		w += "s"
	}
	return w
}

// matchesMedia reports whether a disk is of the media asked for.
func matchesMedia(d DiskRef, media string) bool {
	switch media {
	case "":
		return true
	case contract.DiskNVMe:
		return d.Media == contract.DiskNVMe || d.Interface == "nvme"
	case contract.DiskSSD:
		return d.Media == contract.DiskSSD || d.Media == contract.DiskNVMe
	}
	return d.Media == media
}

// pick chooses the array's disks among cands.
func (p *planner) pick(i int, a contract.RAIDArray, c *ControllerLayout, cands []candidate) ([]candidate, error) {
	s := a.Disks
	md := c.Family == MDController
	if md && (s.SlotFrom != nil || s.SlotTo != nil) {
		return nil, specErr(i, "slot ranges apply to controller slots; md disks are named by block device in slots")
	}
	free := func(d candidate) (string, bool) {
		if j, ok := p.taken[d.key]; ok {
			return fmt.Sprintf("array %d took it", j+1), false
		}
		if md && d.serial != "" && p.takenSerials[strings.ToLower(d.serial)] {
			return "a hardware array took it", false
		}
		if why, bad := badState(d.ref.State); bad {
			return "it is " + why, false
		}
		return "", true
	}
	var chosen []candidate
	if len(s.Slots) > 0 {
		for _, id := range s.Slots {
			want := strings.TrimPrefix(strings.TrimSpace(id), "/dev/")
			k := slices.IndexFunc(cands, func(d candidate) bool { return d.ref.ID() == want })
			if k < 0 {
				return nil, specErr(i, "%s has no disk %q", describeController(c), id)
			}
			if why, ok := free(cands[k]); !ok {
				return nil, specErr(i, "disk %s cannot be used: %s", id, why)
			}
			chosen = append(chosen, cands[k])
		}
	} else {
		var match []candidate
		for _, d := range cands {
			if _, ok := free(d); !ok || d.named {
				continue
			}
			if !matchesMedia(d.ref, s.Media) ||
				s.MinSizeBytes > 0 && d.ref.SizeBytes < s.MinSizeBytes ||
				s.MaxSizeBytes > 0 && d.ref.SizeBytes > s.MaxSizeBytes {
				continue
			}
			if s.SlotFrom != nil || s.SlotTo != nil {
				if d.num < 0 || s.SlotFrom != nil && d.num < *s.SlotFrom || s.SlotTo != nil && d.num > *s.SlotTo {
					continue
				}
			}
			match = append(match, d)
		}
		slices.SortStableFunc(match, func(x, y candidate) int {
			if c := cmp.Compare(x.ref.SizeBytes, y.ref.SizeBytes); c != 0 {
				return c
			}
			return compareSlots(x, y)
		})
		n := s.Count
		if n == 0 {
			n = len(match)
		}
		if n == 0 || len(match) < n {
			if rule, ok := capabilitiesOf(c).levels[a.Level]; ok && s.Count == 0 {
				n = rule.min
			}
			return nil, specErr(i, "%s needs %d %s; %d %s on %s", levelName(a.Level), n, mediaWord(s.Media, n),
				len(match), matchVerb(mediaWord(s.Media, len(match)), len(match)), describeController(c))
		}
		chosen = match[:n]
		// Keep slot order within the array.
		slices.SortStableFunc(chosen, compareSlots)
	}
	if !s.AllowMixedMedia {
		count := map[string]int{}
		for _, d := range chosen {
			if d.ref.Media != "" {
				count[d.ref.Media]++
			}
		}
		if len(count) > 1 {
			var parts []string
			for _, m := range []string{contract.DiskHDD, contract.DiskSSD, contract.DiskNVMe} {
				if count[m] > 0 {
					parts = append(parts, fmt.Sprintf("%d %s", count[m], mediaWord(m, count[m])))
				}
			}
			return nil, specErr(i, "the %d disks chosen mix media (%s); set media, or allow_mixed_media", len(chosen), strings.Join(parts, ", "))
		}
	}
	return chosen, nil
}

func matchVerb(w string, n int) string {
	if n == 1 {
		return w + " matches"
	}
	return w + " match"
}

// compareSlots orders disks by enclosure, then slot number, then name.
func compareSlots(x, y candidate) int {
	if c := naturalCompare(x.ref.Enclosure, y.ref.Enclosure); c != 0 {
		return c
	}
	return naturalCompare(x.ref.Slot, y.ref.Slot)
}

// naturalCompare orders strings with their runs of digits compared as
// numbers: "vdb" < "vdc", "2" < "10", "sda" < "sdaa".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// checkCount refuses a number of disks the level does not take.
func checkCount(i int, a contract.RAIDArray, caps capabilities, n int) error {
	if a.Level == contract.RAIDJBOD {
		return nil
	}
	r := caps.levels[a.Level]
	ok := n >= r.min && (r.max == 0 || n <= r.max) && (!r.even || n%2 == 0) && (!r.odd || n%2 == 1)
	if ok {
		return nil
	}
	var need string
	switch {
	case r.min == r.max:
		need = fmt.Sprintf("exactly %d disks", r.min)
	case r.even && r.max > 0:
		need = fmt.Sprintf("an even number of %d to %d disks", r.min, r.max)
	case r.even:
		need = fmt.Sprintf("an even number of at least %d disks", r.min)
	case r.odd && r.max > 0:
		need = fmt.Sprintf("an odd number of %d to %d disks", r.min, r.max)
	case r.odd:
		need = fmt.Sprintf("an odd number of at least %d disks", r.min)
	case r.max > 0:
		need = fmt.Sprintf("%d to %d disks", r.min, r.max)
	default:
		need = fmt.Sprintf("at least %d disks", r.min)
	}
	var got string
	switch s := a.Disks; {
	case len(s.Slots) > 0:
		got = fmt.Sprintf("%d %s named", n, plural(n, "is", "are"))
	case s.Count > 0:
		got = fmt.Sprintf("the spec asks for %d", n)
	default:
		got = fmt.Sprintf("%d %s", n, matchVerb(mediaWord(s.Media, n), n))
	}
	return specErr(i, "%s on %s needs %s; %s", levelName(a.Level), caps.label, need, got)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// options plans the array's spans, capacity, volumes, strip and cache.
func (p *planner) options(i int, a contract.RAIDArray, c *ControllerLayout, caps capabilities, al *ArrayLayout) error {
	if a.Level == contract.RAIDJBOD {
		switch {
		case len(a.Splits) > 0:
			return specErr(i, "pass-through disks cannot be split")
		case a.StripKiB != 0 || a.ReadAhead != nil || a.WriteBack != nil:
			return specErr(i, "pass-through disks take no strip size or cache policy")
		case a.Root:
			return specErr(i, "the root must be on a RAID array, not on pass-through disks")
		}
		if caps.jbod == jbodController {
			for _, o := range c.Arrays {
				if o.Level != contract.RAIDJBOD {
					return specErr(i, "%s passes disks through only controller-wide (HBA mode), and array %d is a RAID array there", caps.label, o.Spec+1)
				}
			}
		}
		return nil
	}
	if caps.jbod == jbodController {
		for _, o := range c.Arrays {
			if o.Level == contract.RAIDJBOD {
				return specErr(i, "%s passes disks through only controller-wide (HBA mode), and array %d passes disks through there", caps.label, o.Spec+1)
			}
		}
	}
	n := len(al.Disks)
	smallest := al.Disks[0].SizeBytes
	for _, d := range al.Disks {
		smallest = min(smallest, d.SizeBytes)
	}
	if smallest <= 0 {
		return specErr(i, "the inventory gives no size for a disk of the array")
	}
	data := 0
	switch a.Level {
	case contract.RAID0:
		data = n
	case contract.RAID1:
		data = 1
	case contract.RAID1E, contract.RAID10:
		data = n / 2
	case contract.RAID5:
		data = n - 1
	case contract.RAID6:
		data = n - 2
	case contract.RAID50, contract.RAID60:
		per := 3
		if a.Level == contract.RAID60 {
			per = 4
		}
		spans := 0
		for s := 2; s <= max(caps.maxSpans, 2) && s <= n/per; s++ {
			if n%s == 0 {
				spans = s
				break
			}
		}
		if spans == 0 {
			return specErr(i, "%s needs its %d disks split evenly into 2 to %d spans of at least %d", levelName(a.Level), n, max(caps.maxSpans, 2), per)
		}
		al.Spans = spans
		data = n - spans*(per-2)
	}
	if a.Level == contract.RAID10 && caps.tenSpans {
		// Mirror pairs, as many spans as the tool takes.
		al.Spans = n / 2
		for al.Spans > caps.maxSpans || n%al.Spans != 0 || (n/al.Spans)%2 != 0 {
			al.Spans--
			if al.Spans < 2 {
				return specErr(i, "%s cannot span %d disks", caps.label, n)
			}
		}
	}
	if a.Level == contract.RAID1E {
		al.UsableBytes = mulCap(smallest, int64(n)) / 2
	} else {
		al.UsableBytes = mulCap(smallest, int64(data))
	}
	if a.StripKiB != 0 {
		strips := caps.strips
		if c.Family == MDController && a.Level == contract.RAID1 {
			strips = nil
		}
		if len(strips) == 0 {
			return specErr(i, "%s takes no strip size for %s; leave strip_kib out", caps.label, levelName(a.Level))
		}
		if !slices.Contains(strips, a.StripKiB) {
			return specErr(i, "strip size %d KiB: %s takes %s KiB", a.StripKiB, caps.label, intList(strips))
		}
	}
	if (a.ReadAhead != nil || a.WriteBack != nil) && !caps.cache {
		return specErr(i, "%s sets no cache policy per array; leave read_ahead and write_back out", caps.label)
	}
	vols, err := volumes(i, a, caps, al)
	if err != nil {
		return err
	}
	al.Volumes = vols
	return nil
}

// mulCap is a×b, or math.MaxInt64 when that overflows.
func mulCap(a, b int64) int64 {
	if a > 0 && b > 0 && a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

func intList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// volumes turns the array's splits into logical drives.
func volumes(i int, a contract.RAIDArray, caps capabilities, al *ArrayLayout) ([]VolumeLayout, error) {
	if len(a.Splits) == 0 {
		return []VolumeLayout{{Name: al.Name, Root: a.Root}}, nil
	}
	if !caps.splits {
		return nil, specErr(i, "%s cannot carve an array into several logical drives; leave splits out", caps.label)
	}
	if len(a.Splits) > maxSplits {
		return nil, specErr(i, "%d splits, at most %d are taken", len(a.Splits), maxSplits)
	}
	var (
		out     []VolumeLayout
		sum     int64
		percent int
	)
	for k, s := range a.Splits {
		var size int64
		switch {
		case s.SizeBytes < 0 || s.Percent < 0:
			return nil, specErr(i, "split %d: sizes must not be negative", k+1)
		case s.SizeBytes > 0 && s.Percent > 0:
			return nil, specErr(i, "split %d: give size_bytes or percent, not both", k+1)
		case s.Percent > 100:
			return nil, specErr(i, "split %d: percent %d is more than 100", k+1, s.Percent)
		case s.SizeBytes > 0:
			size = s.SizeBytes / mebibyte * mebibyte
			if size == 0 {
				return nil, specErr(i, "split %d: %d bytes is less than 1 MiB", k+1, s.SizeBytes)
			}
		case s.Percent > 0:
			percent += s.Percent
			size = int64(float64(al.UsableBytes)*float64(s.Percent)/100) / mebibyte * mebibyte
			if size == 0 {
				return nil, specErr(i, "split %d: %d%% of the array is less than 1 MiB", k+1, s.Percent)
			}
		case k != len(a.Splits)-1:
			return nil, specErr(i, "split %d has no size; only the last split may take the rest", k+1)
		}
		sum += size
		name := al.Name
		if len(a.Splits) > 1 {
			name = fmt.Sprintf("%s-%d", al.Name, k+1)
		}
		out = append(out, VolumeLayout{Name: name, SizeBytes: size, Root: a.Root && k == 0})
	}
	last := &out[len(out)-1]
	switch {
	case percent > 100:
		return nil, specErr(i, "the splits take %d%% of the array", percent)
	case sum > al.UsableBytes:
		return nil, specErr(i, "the splits add up to %s, more than the %s a %s of %d disks of %s holds",
			humanBytes(sum), humanBytes(al.UsableBytes), levelName(a.Level), len(al.Disks), humanBytes(smallestDisk(al)))
	case last.SizeBytes == 0 && sum+mebibyte > al.UsableBytes:
		return nil, specErr(i, "the splits before the last take the whole array, leaving nothing for the last")
	case last.SizeBytes > 0 && sum+int64(len(out))*mebibyte > al.UsableBytes:
		// What is left is rounding: the last split takes the rest.
		last.SizeBytes = 0
	}
	return out, nil
}

func smallestDisk(al *ArrayLayout) int64 {
	s := int64(math.MaxInt64)
	for _, d := range al.Disks {
		s = min(s, d.SizeBytes)
	}
	return s
}

// humanBytes writes a size in binary units with three significant figures
// ("894 GiB", "1.75 TiB").
func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	switch {
	case u == 0:
		return fmt.Sprintf("%d B", n)
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, units[u])
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, units[u])
	}
	return fmt.Sprintf("%.2f %s", v, units[u])
}

// finish adds the controller's pass-through disks, checks its limits and
// builds its steps.
func (p *planner) finish(c *ControllerLayout) error {
	caps := capabilitiesOf(c)
	first := -1
	if len(c.Arrays) > 0 {
		first = c.Arrays[0].Spec
	}
	volumes := 0
	raid := false
	for _, a := range c.Arrays {
		if a.Level == contract.RAIDJBOD {
			c.JBOD = append(c.JBOD, a.Disks...)
			continue
		}
		raid = true
		volumes += len(a.Volumes)
		if caps.maxVolumes > 0 && volumes > caps.maxVolumes {
			return specErr(a.Spec, "%s holds at most %d logical drives; the spec puts %d on %s", caps.label, caps.maxVolumes, volumes, c.Controller)
		}
	}
	if p.spec.JBODRest && c.Family != MDController {
		var rest []DiskRef
		for k := range p.hw {
			if normalizePCIAddr(p.hw[k].ctrl.PCIAddr) != c.Controller {
				continue
			}
			for _, d := range p.hwCandidates(k) {
				if _, took := p.taken[d.key]; took {
					continue
				}
				if _, bad := badState(d.ref.State); bad {
					continue
				}
				rest = append(rest, d.ref)
			}
		}
		switch {
		case len(rest) == 0:
		case caps.jbod == jbodAuto:
			c.Notes = append(c.Notes, fmt.Sprintf("%d disks outside the arrays reach the OS as they are", len(rest)))
		case caps.jbod == jbodController && raid:
			c.Notes = append(c.Notes, fmt.Sprintf("%d disks left unassigned: %s passes disks through only controller-wide (HBA mode); in Mixed mode unassigned disks reach the OS anyway", len(rest), caps.label))
		default:
			c.JBOD = append(c.JBOD, rest...)
		}
	}
	var inv *contract.RAIDController
	for k := range p.hw {
		if normalizePCIAddr(p.hw[k].ctrl.PCIAddr) == c.Controller && c.Family != MDController {
			inv = p.hw[k].ctrl
		}
	}
	if err := builderFor(c.Family).steps(c, inv, p.inv); err != nil {
		if se := (*SpecError)(nil); errors.As(err, &se) {
			if se.Array < 0 {
				se.Array = first
			}
			return se
		}
		return specErr(first, "%v", err)
	}
	return nil
}
