package raid

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"bareflow/contract"
)

// PlanClear plans tearing down every RAID configuration of inv that a
// tool of the ramdisk can reach, for a wipe. It does no I/O; Apply runs
// the layout (check steps first, as for Plan).
//
// Linux md comes first, as its arrays may sit on logical drives of a
// controller: every array is stopped, arrays holding other arrays before
// those, then the superblock of every member that is not itself an array
// is zeroed (mdadm --stop, mdadm --zero-superblock, the commands Plan's
// clear uses). Then, per hardware controller read by a tool, the family's
// own check and clear steps, those Plan puts before building: storcli
// deletes hot spares, virtual drives and foreign configurations; ssacli
// deletes every logical drive; sasXircu deletes the IR configuration;
// mvcli deletes each virtual disk; arcconf deletes every logical drive.
//
// Disks passed through to the OS stay passed through, so that a wiped
// machine still shows its disks (storcli's clear would make them
// unconfigured-good). A controller with nothing to clear gets no steps.
// Controllers left as they are get a note saying why: no tool of the
// ramdisk read them (also md read from /proc/mdstat without mdadm), the
// inventory gives no PCI address to address them by, or the family cannot
// address them (two Marvell adapters, an ssacli controller without a
// serial number). Such a layout has a ControllerLayout with the note and
// no steps.
//
// PlanClear fails only on an inventory that lists two controllers at one
// PCI address.
func PlanClear(inv contract.Inventory) (Layout, error) {
	var out Layout
	if c, ok := mdClearLayout(inv); ok {
		out.Controllers = append(out.Controllers, c)
	}
	seen := map[string]int{} // handles per tool, as Plan counts them
	addrs := map[string]bool{}
	for i := range inv.RAID {
		ctrl := &inv.RAID[i]
		fam := familyOfTool(ctrl.Tool)
		if fam == MDController {
			continue
		}
		var b builder
		if fam != "" {
			b = builderFor(fam)
		}
		addr := normalizePCIAddr(ctrl.PCIAddr)
		if b == nil {
			out.Controllers = append(out.Controllers, ControllerLayout{
				Controller: cmp.Or(addr, clean(ctrl.PCIAddr)), Model: ctrl.Model, Serial: ctrl.Serial,
				Notes: []string{"no RAID tool of the ramdisk read this controller; its configuration is left as it is"},
			})
			continue
		}
		handle := seen[ctrl.Tool]
		seen[ctrl.Tool]++
		c := ControllerLayout{Controller: addr, Family: fam, Tool: ctrl.Tool, Model: ctrl.Model,
			Serial: ctrl.Serial, Handle: strconv.Itoa(handle)}
		if addr == "" {
			c.Notes = append(c.Notes, "the inventory gives no PCI address to address this controller by; its configuration is left as it is")
			out.Controllers = append(out.Controllers, c)
			continue
		}
		if addrs[addr] {
			return Layout{}, specErr(-1, "the inventory lists two RAID controllers at %s", addr)
		}
		addrs[addr] = true
		kept := withoutPassThrough(*ctrl)
		if err := b.steps(&c, &kept, inv); err != nil {
			c.Steps = nil
			c.Notes = append(c.Notes, fmt.Sprintf("cannot be cleared: %v; its configuration is left as it is", err))
			out.Controllers = append(out.Controllers, c)
			continue
		}
		if n := len(ctrl.PhysicalDisks) - len(kept.PhysicalDisks); n > 0 {
			c.Notes = append(c.Notes, fmt.Sprintf("%d pass-through %s passed through", n, plural(n, "disk stays", "disks stay")))
		}
		if !slices.ContainsFunc(c.Steps, func(s Step) bool { return s.Kind == StepClear }) {
			c.Steps = nil
			c.Notes = append(c.Notes, "nothing to clear")
		}
		out.Controllers = append(out.Controllers, c)
	}
	return out, nil
}

// withoutPassThrough is ctrl without its pass-through disks, so that a
// clear leaves them as they are.
func withoutPassThrough(ctrl contract.RAIDController) contract.RAIDController {
	ctrl.PhysicalDisks = slices.DeleteFunc(slices.Clone(ctrl.PhysicalDisks), func(d contract.RAIDPhysicalDisk) bool {
		return hasState(d.State, "jbod")
	})
	return ctrl
}

// mdClearLayout is the layout that stops every md array of inv, or false
// when inv has none.
func mdClearLayout(inv contract.Inventory) (ControllerLayout, bool) {
	arrays := mdArrays(inv)
	if len(arrays) == 0 {
		return ControllerLayout{}, false
	}
	c := ControllerLayout{Controller: MDController, Family: MDController, Tool: "mdadm", Model: "Linux md"}
	var ids []string
	for _, a := range arrays {
		ids = append(ids, a.id)
	}
	for _, rc := range inv.RAID {
		if familyOfTool(rc.Tool) == MDController && rc.Tool != "mdadm" {
			c.Tool = rc.Tool
			c.Notes = append(c.Notes, fmt.Sprintf("mdadm is not in the ramdisk; %s %s left running", strings.Join(ids, ", "), plural(len(ids), "is", "are")))
			return c, true
		}
	}
	// Every array is stopped, outer arrays first; a member that is itself
	// an array is stopped, not zeroed: once its own members are zeroed it
	// cannot be assembled again.
	arrays = outerFirst(arrays)
	isArray := func(m string) bool { return slices.Contains(ids, m) }
	steps, err := mdTeardown(arrays, func(mdArray) bool { return true }, func(m string) bool { return !isArray(m) })
	if err != nil {
		c.Notes = append(c.Notes, fmt.Sprintf("cannot be cleared: %v", err))
		return c, true
	}
	c.Steps = steps
	return c, true
}

// outerFirst orders arrays so that an array comes before the arrays it is
// built on, keeping the inventory's order otherwise.
func outerFirst(arrays []mdArray) []mdArray {
	// height is how many arrays are stacked on an array; memoized, and 0
	// on a loop, which only a hostile inventory has.
	height := map[string]int{}
	visiting := map[string]bool{}
	var up func(id string) int
	up = func(id string) int {
		if h, ok := height[id]; ok {
			return h
		}
		if visiting[id] {
			return 0
		}
		visiting[id] = true
		h := 0
		for _, a := range arrays {
			if slices.Contains(a.members, id) {
				h = max(h, 1+up(a.id))
			}
		}
		visiting[id] = false
		height[id] = h
		return h
	}
	out := slices.Clone(arrays)
	for _, a := range out {
		up(a.id)
	}
	slices.SortStableFunc(out, func(x, y mdArray) int { return cmp.Compare(height[x.id], height[y.id]) })
	return out
}
