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

// mdRAID reads Linux software RAID. /proc/mdstat lists the arrays, their
// level, size and members; with mdadm present, "mdadm --detail /dev/<md>"
// then gives each array's state and its members' states in mdadm's words.
// All arrays make one pseudo-controller, "Linux md", whose Tool is "mdadm",
// or "mdstat" when only /proc/mdstat could be read. It is listed only when
// the machine has arrays.
//
// Sizes are in kibibytes in both sources ("blocks", "Array Size"). A
// logical disk's ID is the array's name (md0), its state mdadm's State
// ("clean", "clean, degraded, recovering"…) or, from /proc/mdstat alone,
// "active" or "inactive" with ", degraded" when a member is missing and the
// running operation ("recovery", "resync"…) appended. A member's Enclosure
// is its array's name and its Slot its device name (sda1); its state is
// mdadm's ("active sync", "faulty", "spare", "spare rebuilding"…) or, from
// /proc/mdstat, active, faulty, spare, replacement, journal or write-mostly.
// Members' sizes are not reported (the disk inventory has them).
type mdRAID struct{}

func (mdRAID) Name() string { return "md" }

// Tools are mdadm, and cat to read /proc/mdstat alone.
func (mdRAID) Tools() []string { return []string{"mdadm", "cat"} }

func (mdRAID) Handles(contract.PCIDevice) bool { return false }

func (mdRAID) Standalone() bool { return true }

func (mdRAID) Inventory(ctx context.Context, r CommandRunner, tool string) ([]contract.RAIDController, error) {
	out, err := run(ctx, r, "cat", "/proc/mdstat")
	if err != nil {
		// Without the md driver loaded there is no /proc/mdstat, and no
		// array.
		if strings.Contains(err.Error(), "No such file") {
			return nil, nil
		}
		return nil, err
	}
	c, members, err := parseMdstat(out)
	if err != nil || len(c.LogicalDisks) == 0 {
		return nil, err
	}
	c.Tool = "mdstat"
	if tool != "mdadm" {
		for _, ms := range members {
			c.PhysicalDisks = append(c.PhysicalDisks, ms...)
		}
		if len(c.PhysicalDisks) > maxPhysical {
			c.PhysicalDisks = c.PhysicalDisks[:maxPhysical]
		}
		return []contract.RAIDController{c}, nil
	}
	c.Tool = "mdadm"
	var (
		errs []error
		pds  []contract.RAIDPhysicalDisk
	)
	for i := range c.LogicalDisks {
		ld := &c.LogicalDisks[i]
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			pds = append(pds, members[i]...)
			continue
		}
		out, err := run(ctx, r, "mdadm", "--detail", "/dev/"+ld.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ld.ID, err))
			pds = append(pds, members[i]...)
			continue
		}
		d, ms := parseMdadmDetail(out, ld.ID)
		if d.Level != "" {
			ld.Level = d.Level
		}
		if d.SizeBytes > 0 {
			ld.SizeBytes = d.SizeBytes
		}
		if d.State != "" {
			ld.State = d.State
		}
		if len(ms) == 0 {
			ms = members[i]
		}
		pds = append(pds, ms...)
	}
	if len(pds) > maxPhysical {
		pds = pds[:maxPhysical]
	}
	c.PhysicalDisks = pds
	return []contract.RAIDController{c}, errors.Join(errs...)
}

// mdName reports whether s is a safe md device name, to put in a path.
func mdName(s string) bool {
	if s == "" || len(s) > 32 || !strings.HasPrefix(s, "md") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// mdLevels are the personalities /proc/mdstat names as levels.
var mdLevels = []string{"raid0", "raid1", "raid4", "raid5", "raid6", "raid10", "linear", "multipath", "faulty"}

// parseMdstat reads /proc/mdstat: the pseudo-controller with one logical
// disk per array, and each array's members.
func parseMdstat(out []byte) (contract.RAIDController, [][]contract.RAIDPhysicalDisk, error) {
	c := contract.RAIDController{Vendor: "Linux", Model: "Linux md"}
	if len(out) > maxOutput {
		return c, nil, ErrOutputTooLarge
	}
	var (
		members [][]contract.RAIDPhysicalDisk
		ld      *contract.RAIDLogicalDisk
		seen    bool
	)
	for _, line := range splitLines(out) {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		if strings.HasPrefix(t, "Personalities") || strings.HasPrefix(t, "unused devices") {
			seen = true
			ld = nil
			continue
		}
		if indent(line) == 0 {
			ld = nil
			name, rest, ok := strings.Cut(t, " : ")
			name = strings.TrimSpace(name)
			if !ok || !mdName(name) || len(c.LogicalDisks) >= maxLogical {
				continue
			}
			seen = true
			f := strings.Fields(rest)
			l := contract.RAIDLogicalDisk{ID: name}
			var ms []contract.RAIDPhysicalDisk
			for i, x := range f {
				switch {
				case i == 0:
					l.State = lowerState(x)
				case strings.HasPrefix(x, "(") && strings.HasSuffix(x, ")"):
					// (auto-read-only), (read-only)
					l.State = strings.TrimSpace(l.State + " " + lowerState(x))
				case l.Level == "" && containsFold(mdLevels, x):
					l.Level = normalizeLevel(x)
				case strings.Contains(x, "["):
					if len(ms) < maxPhysical {
						ms = append(ms, mdstatMember(name, x))
					}
				}
			}
			c.LogicalDisks = append(c.LogicalDisks, l)
			members = append(members, ms)
			ld = &c.LogicalDisks[len(c.LogicalDisks)-1]
			continue
		}
		if ld == nil {
			continue
		}
		f := strings.Fields(t)
		switch {
		case len(f) >= 2 && f[1] == "blocks":
			if n, ok := parseSize(f[0], true); ok {
				ld.SizeBytes, _ = toBytes(float64(n), 1024)
			}
			if last := f[len(f)-1]; strings.HasPrefix(last, "[") && strings.Contains(last, "_") {
				ld.State += ", degraded"
			}
		default:
			for _, op := range []string{"recovery", "resync", "reshape", "check", "repair"} {
				if strings.Contains(t, op+" =") || strings.Contains(t, op+"=") {
					ld.State += ", " + op
					break
				}
			}
		}
	}
	if !seen {
		return c, nil, fmt.Errorf("%w: not /proc/mdstat", ErrUnparsable)
	}
	return c, members, nil
}

// mdstatMember reads a member as /proc/mdstat writes it: "sdc1[2](F)".
func mdstatMember(array, s string) contract.RAIDPhysicalDisk {
	dev, flags, _ := strings.Cut(s, "[")
	d := contract.RAIDPhysicalDisk{Enclosure: array, Slot: clean(dev), State: "active"}
	switch {
	case strings.Contains(flags, "(F)"):
		d.State = "faulty"
	case strings.Contains(flags, "(S)"):
		d.State = "spare"
	case strings.Contains(flags, "(R)"):
		d.State = "replacement"
	case strings.Contains(flags, "(J)"):
		d.State = "journal"
	case strings.Contains(flags, "(W)"):
		d.State = "write-mostly"
	}
	return d
}

// parseMdadmDetail reads "mdadm --detail /dev/<array>": the array's level,
// size and state, and its members from the device table.
func parseMdadmDetail(out []byte, array string) (contract.RAIDLogicalDisk, []contract.RAIDPhysicalDisk) {
	var (
		l     contract.RAIDLogicalDisk
		ms    []contract.RAIDPhysicalDisk
		table bool
	)
	if len(out) > maxOutput {
		return l, nil
	}
	for _, line := range splitLines(out) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "Number" && len(f) >= 5 && f[len(f)-1] == "State" {
			table = true
			continue
		}
		if table {
			// Number Major Minor RaidDevice State... /dev/sdX
			last := f[len(f)-1]
			if len(f) < 6 || !strings.HasPrefix(last, "/dev/") || len(ms) >= maxPhysical {
				continue
			}
			ms = append(ms, contract.RAIDPhysicalDisk{
				Enclosure: array,
				Slot:      clean(strings.TrimPrefix(last, "/dev/")),
				State:     lowerState(strings.Join(f[4:len(f)-1], " ")),
			})
			continue
		}
		key, val, ok := keyValue(line)
		if !ok {
			continue
		}
		switch key {
		case "Raid Level":
			l.Level = normalizeLevel(val)
		case "Array Size":
			if n, ok := parseSize(firstField(val), true); ok {
				l.SizeBytes, _ = toBytes(float64(n), 1024)
			}
		case "State":
			l.State = lowerState(val)
		}
	}
	return l, ms
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// The write side of Linux md, on whole disks (mdadm(8)):
//
//	clear    mdadm --stop /dev/mdN              (each array with a member on a disk of the layout)
//	         mdadm --zero-superblock /dev/sdX1  (each such member on a disk of the layout)
//	         wipefs -a /dev/sdX                 (each disk of the layout)
//	create   mdadm --create /dev/md/NAME --run --level=10 --raid-devices=4 --metadata=1.2 --homehost=any [--chunk=K] /dev/sdb …
//
// Arrays of pass-through level take their disks through the clear only:
// that is how a layout gives disks back plain. md builds one device per
// array, so splits are refused (partition the array after the install
// instead); RAID 1 takes no chunk size. --homehost=any keeps the name
// usable by the installed system, whose host name is not the ramdisk's.
// Members on other disks of an array that is stopped are left as they
// are. Nothing is done for disks outside the layout.

func (mdRAID) capabilities() capabilities {
	return capabilities{
		label: "md",
		levels: map[contract.RAIDLevel]levelRule{
			contract.RAID0:  {min: 2},
			contract.RAID1:  {min: 2},
			contract.RAID5:  {min: 3},
			contract.RAID6:  {min: 4},
			contract.RAID10: {min: 4, even: true},
		},
		jbod:            jbodAuto,
		strips:          pow2(4, 4096),
		mixedInterfaces: true,
	}
}

// onDisk reports whether member (sda1, nvme0n1p2, loop7) is disk or one
// of its partitions.
func onDisk(member, disk string) bool {
	if member == disk {
		return true
	}
	rest, ok := strings.CutPrefix(member, disk)
	if !ok {
		return false
	}
	rest = strings.TrimPrefix(rest, "p")
	return digits(rest, 3)
}

func (mdRAID) steps(c *ControllerLayout, _ *contract.RAIDController, inv contract.Inventory) error {
	c.Tool, c.Handle = "mdadm", ""
	var disks []string
	for _, a := range c.Arrays {
		for _, d := range a.Disks {
			if !blockName(d.Slot) {
				return badWord("block device", d.Slot)
			}
			disks = append(disks, d.Slot)
		}
	}
	add := func(kind StepKind, argv ...string) *Step {
		c.Steps = append(c.Steps, Step{Kind: kind, Argv: argv})
		return &c.Steps[len(c.Steps)-1]
	}
	// Arrays of the inventory with a member on a disk of the layout.
	onLayout := func(member string) bool {
		return slices.ContainsFunc(disks, func(d string) bool { return onDisk(member, d) })
	}
	teardown, err := mdTeardown(mdArrays(inv),
		func(a mdArray) bool { return slices.ContainsFunc(a.members, onLayout) }, onLayout)
	if err != nil {
		return err
	}
	c.Steps = append(c.Steps, teardown...)
	for _, d := range disks {
		add(StepClear, "wipefs", "-a", "/dev/"+d)
	}
	for _, ai := range raidArrays(c) {
		a := c.Arrays[ai]
		name := a.Volumes[0].Name
		if !volumeName(name) {
			return badWord("array name", name)
		}
		argv := []string{"mdadm", "--create", "/dev/md/" + name, "--run", "--level=" + string(a.Level),
			"--raid-devices=" + strconv.Itoa(len(a.Disks)), "--metadata=1.2", "--homehost=any"}
		if a.StripKiB > 0 {
			argv = append(argv, "--chunk="+strconv.Itoa(a.StripKiB))
		}
		for _, d := range a.Disks {
			argv = append(argv, "/dev/"+d.Slot)
		}
		add(StepCreate, argv...).Volumes = volumeRefs(c, ai, 0, 1)
	}
	return nil
}

// mdArray is an array of the inventory and its members, in the order the
// inventory lists them.
type mdArray struct {
	id      string
	members []string
}

// mdArrays lists the arrays of the inventory's Linux md controllers.
func mdArrays(inv contract.Inventory) []mdArray {
	var out []mdArray
	for _, rc := range inv.RAID {
		if familyOfTool(rc.Tool) != MDController {
			continue
		}
		for _, ld := range rc.LogicalDisks {
			a := mdArray{id: ld.ID}
			for _, m := range rc.PhysicalDisks {
				if m.Enclosure == ld.ID {
					a.members = append(a.members, m.Slot)
				}
			}
			out = append(out, a)
		}
	}
	return out
}

// mdTeardown returns the clear steps that stop each array stop reports
// true for, then zero the superblock, once, of each member of those arrays
// that zero reports true for.
func mdTeardown(arrays []mdArray, stop func(mdArray) bool, zero func(member string) bool) ([]Step, error) {
	var (
		steps  []Step
		zeroed []string
	)
	for _, a := range arrays {
		if !stop(a) {
			continue
		}
		if !mdName(a.id) {
			return nil, badWord("md array", a.id)
		}
		steps = append(steps, Step{Kind: StepClear, Argv: []string{"mdadm", "--stop", "/dev/" + a.id}})
		for _, m := range a.members {
			if !zero(m) {
				continue
			}
			if !blockName(m) {
				return nil, badWord("md member", m)
			}
			if !slices.Contains(zeroed, m) {
				zeroed = append(zeroed, m)
			}
		}
	}
	for _, m := range zeroed {
		steps = append(steps, Step{Kind: StepClear, Argv: []string{"mdadm", "--zero-superblock", "/dev/" + m}})
	}
	return steps, nil
}

// listVolumes lists the running arrays of /proc/mdstat with the name each
// was created with, from "mdadm --detail" ("Name : host:NAME").
func (mdRAID) listVolumes(ctx context.Context, r CommandRunner, _ ControllerLayout) ([]volumeInfo, error) {
	out, err := run(ctx, r, "cat", "/proc/mdstat")
	if err != nil {
		// Without the md driver loaded there is no /proc/mdstat, and no
		// array.
		if strings.Contains(err.Error(), "No such file") {
			return nil, nil
		}
		return nil, err
	}
	c, _, err := parseMdstat(out)
	if err != nil {
		return nil, err
	}
	var vols []volumeInfo
	for _, ld := range c.LogicalDisks {
		if !mdName(ld.ID) || strings.HasPrefix(ld.State, "inactive") {
			continue
		}
		out, err := run(ctx, r, "mdadm", "--detail", "/dev/"+ld.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ld.ID, err)
		}
		v := volumeInfo{ID: ld.ID, Device: "/dev/" + ld.ID, SizeBytes: ld.SizeBytes, Channel: -1, Target: -1}
		for _, line := range splitLines(out) {
			if key, val, ok := keyValue(line); ok && key == "Name" {
				name := firstField(val)
				if i := strings.LastIndexByte(name, ':'); i >= 0 {
					name = name[i+1:]
				}
				v.Name = clean(name)
				break
			}
		}
		vols = append(vols, v)
	}
	return vols, nil
}
