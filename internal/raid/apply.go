package raid

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"bareflow/contract"
)

// Errors of Apply and ResolveDevices; match them with errors.Is.
var (
	// ErrWrongController means a check found another controller (or none)
	// where the plan found one: the machine changed since its inventory.
	// Nothing was touched.
	ErrWrongController = errors.New("the controller is not the one planned for")
	// ErrStepFailed means a command of the layout failed; Applied says
	// what was done before it.
	ErrStepFailed = errors.New("raid step failed")
)

// verifier is implemented by families whose layouts have a check step.
type verifier interface {
	verify(c ControllerLayout, out []byte) error
}

// lister is implemented by every family: it lists the logical drives of a
// controller after Apply.
type lister interface {
	listVolumes(ctx context.Context, r CommandRunner, c ControllerLayout) ([]volumeInfo, error)
}

// volumeInfo is a logical drive as its tool lists it.
type volumeInfo struct {
	ID        string
	Name      string
	SizeBytes int64
	// Device is the block device when the tool names it ("/dev/sda").
	Device string
	// WWN is the identifier the tool gives (NAA, WWID, unique identifier).
	WWN string
	// Channel and Target are the SCSI channel and target the kernel driver
	// gives the drive, or -1 when it is not fixed.
	Channel, Target int
}

// sortVolumeInfos orders volumes by their number, then their ID.
func sortVolumeInfos(v []volumeInfo) {
	slices.SortStableFunc(v, func(a, b volumeInfo) int { return naturalCompare(a.ID, b.ID) })
}

// sameController checks a controller read back against the layout: the
// PCI address must match when both are known, and so must the serial
// number; at least one of them must be known.
func sameController(c ControllerLayout, pci, serial string) error {
	pci = normalizePCIAddr(pci)
	compared := false
	if pci != "" && c.Controller != "" {
		if pci != c.Controller {
			return fmt.Errorf("%w: controller %s of %s is at %s, the plan is for %s", ErrWrongController, c.Handle, c.Tool, pci, c.Controller)
		}
		compared = true
	}
	if serial != "" && c.Serial != "" {
		if !strings.EqualFold(serial, c.Serial) {
			return fmt.Errorf("%w: controller %s of %s has serial number %s, the plan is for %s", ErrWrongController, c.Handle, c.Tool, clean(serial), c.Serial)
		}
		compared = true
	}
	if !compared {
		return fmt.Errorf("%w: controller %s of %s reports neither a PCI address nor a serial number to confirm it", ErrWrongController, c.Handle, c.Tool)
	}
	return nil
}

// Applied is what Apply did.
type Applied struct {
	// Volumes are the logical drives built, in order; Device is empty
	// until ResolveDevices finds it, and ID is the name the drive was
	// created with.
	Volumes []contract.BuiltVolume `json:"volumes"`
	// Done lists the steps run, as shell lines; a step whose failure was
	// tolerated says so.
	Done []string `json:"done"`
}

// Apply runs the layout's commands through r: first every controller's
// check, then per controller its clear, prepare, create and pass-through
// steps, in order. It stops at the first failure and returns what was
// built so far with an error wrapping ErrStepFailed (or ErrWrongController
// when a check failed, before anything was touched). progress, when not
// nil, is called with each step before it runs.
//
// Apply is not idempotent: it clears what the layout's inventory showed.
// To try again after a failure, collect the inventory and plan again.
func Apply(ctx context.Context, r CommandRunner, p Layout, progress func(step string)) (Applied, error) {
	var done Applied
	report := func(s Step) {
		if progress != nil {
			progress(s.String())
		}
	}
	for _, c := range p.Controllers {
		for _, s := range c.Steps {
			if s.Kind != StepCheck {
				continue
			}
			if err := ctx.Err(); err != nil {
				return done, err
			}
			report(s)
			out, err := runStep(ctx, r, s)
			if err != nil {
				return done, fmt.Errorf("check %s at %s: %w: %s: %w", c.Tool, c.Controller, ErrWrongController, s, withOutput(err, out))
			}
			v, ok := builderFor(c.Family).(verifier)
			if !ok {
				return done, fmt.Errorf("check %s at %s: %w: the family has no check", c.Tool, c.Controller, ErrWrongController)
			}
			if err := v.verify(c, out); err != nil {
				return done, fmt.Errorf("check %s at %s: %w", c.Tool, c.Controller, err)
			}
			done.Done = append(done.Done, s.String())
		}
	}
	for _, c := range p.Controllers {
		for _, s := range c.Steps {
			if s.Kind == StepCheck {
				continue
			}
			if err := ctx.Err(); err != nil {
				return done, err
			}
			report(s)
			out, err := runStep(ctx, r, s)
			if err == nil {
				if why := outputFailure(c.Family, out); why != "" {
					err = fmt.Errorf("%w: %s", ErrToolFailed, why)
				}
			}
			if err != nil {
				if s.MayFail {
					done.Done = append(done.Done, s.String()+" (failed, went on: "+shorten(withOutput(err, out).Error(), 200)+")")
					continue
				}
				return done, fmt.Errorf("%s on %s: %w: %w", s, c.Controller, ErrStepFailed, withOutput(err, out))
			}
			done.Done = append(done.Done, s.String())
			for _, v := range s.Volumes {
				done.Volumes = append(done.Volumes, builtVolume(c, v))
			}
		}
	}
	return done, nil
}

// runStep runs a step's command and bounds its output.
func runStep(ctx context.Context, r CommandRunner, s Step) ([]byte, error) {
	out, err := r.Run(ctx, s.Argv)
	if len(out) > maxOutput {
		return nil, fmt.Errorf("%w (%d bytes)", ErrOutputTooLarge, len(out))
	}
	return out, err
}

// builtVolume is volume v of c as a contract.BuiltVolume, without its
// device.
func builtVolume(c ControllerLayout, v VolumeRef) contract.BuiltVolume {
	a := c.Arrays[v.Array]
	vol := a.Volumes[v.Volume]
	size := vol.SizeBytes
	if sizes, ok := volumeSizes(a); ok && v.Volume < len(sizes) {
		size = sizes[v.Volume]
	}
	return contract.BuiltVolume{Controller: c.Controller, Level: a.Level, ID: vol.Name, SizeBytes: size, Root: vol.Root}
}

// outputFailure returns why a tool's output shows a failure although it
// exited with status 0, or "". Some tools do: mvcli always, storcli and
// ssacli on some errors.
func outputFailure(family string, out []byte) string {
	lines := splitLines(out)
	find := func(pred func(l string) bool) string {
		for _, l := range lines {
			if pred(strings.TrimSpace(l)) {
				return shorten(clean(l), 200)
			}
		}
		return ""
	}
	switch family {
	case "megaraid":
		return find(func(l string) bool { return strings.HasPrefix(l, "Status = Failure") })
	case "smartarray":
		return find(func(l string) bool { return strings.HasPrefix(l, "Error:") })
	case "marvell":
		return find(func(l string) bool {
			ll := strings.ToLower(l)
			return strings.Contains(ll, "error") || strings.Contains(ll, "fail") || strings.Contains(ll, "not supported")
		})
	case "arcconf":
		return find(func(l string) bool {
			return strings.Contains(l, "Command aborted") || strings.Contains(l, "Command failed")
		})
	}
	return ""
}

// withOutput adds the end of a failed command's output to its error.
func withOutput(err error, out []byte) error {
	var tail []string
	lines := splitLines(out)
	for i := len(lines) - 1; i >= 0 && len(tail) < 3; i-- {
		if l := clean(lines[i]); l != "" {
			tail = append([]string{l}, tail...)
		}
	}
	if len(tail) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s", err, shorten(strings.Join(tail, " / "), 300))
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ResolveDevices finds the block device of each volume Apply built: for md
// the array /dev/mdN whose name is the volume's; for hardware, the device
// the tool names, else the one whose WWN the tool gives, else the one
// under the controller's PCI address with the drive's SCSI channel and
// target or, failing those, with its size. It returns every volume, those
// found with Device set, and whether all were found: when not, the caller
// polls, as a new logical drive can take a while to appear. An error means
// a command failed.
func ResolveDevices(ctx context.Context, r CommandRunner, p Layout, applied Applied) ([]contract.BuiltVolume, bool, error) {
	vols := slices.Clone(applied.Volumes)
	var blocks *blockDevices
	for _, c := range p.Controllers {
		var pending []int
		for i, v := range vols {
			if v.Controller == c.Controller && v.Device == "" {
				pending = append(pending, i)
			}
		}
		if len(pending) == 0 {
			continue
		}
		l, ok := builderFor(c.Family).(lister)
		if !ok {
			return vols, false, fmt.Errorf("%s: no way to list logical drives", c.Family)
		}
		infos, err := l.listVolumes(ctx, r, c)
		if err != nil {
			return vols, false, fmt.Errorf("list logical drives of %s at %s: %w", c.Tool, c.Controller, err)
		}
		matched := matchVolumes(c, vols, pending, infos)
		if c.Family != MDController && blocks == nil {
			b, err := readBlockDevices(ctx, r)
			if err != nil {
				return vols, false, err
			}
			blocks = &b
		}
		for _, i := range pending {
			info, ok := matched[i]
			if !ok {
				continue
			}
			if info.SizeBytes > 0 {
				vols[i].SizeBytes = info.SizeBytes
			}
			if c.Family == MDController {
				vols[i].Device = info.Device
				continue
			}
			vols[i].Device = blocks.find(c.Controller, info, vols[i].SizeBytes)
		}
	}
	for _, v := range vols {
		if v.Device == "" {
			return vols, false, nil
		}
	}
	return vols, true, nil
}

// matchVolumes pairs the pending volumes of c with the tool's logical
// drives: by name, or, when the tool kept none of the names, in order
// (drives sorted by number, volumes in the order they were built).
func matchVolumes(c ControllerLayout, vols []contract.BuiltVolume, pending []int, infos []volumeInfo) map[int]volumeInfo {
	out := map[int]volumeInfo{}
	byName := false
	for _, i := range pending {
		for _, in := range infos {
			if in.Name != "" && strings.EqualFold(in.Name, vols[i].ID) {
				out[i] = in
				byName = true
				break
			}
		}
	}
	if byName || c.Family == MDController {
		return out
	}
	// In order: the k-th volume built on the controller is the k-th drive.
	k := 0
	for i, v := range vols {
		if v.Controller != c.Controller {
			continue
		}
		if slices.Contains(pending, i) && k < len(infos) {
			out[i] = infos[k]
		}
		k++
	}
	return out
}

// blockDevice is a whole disk the kernel sees.
type blockDevice struct {
	Name      string
	SizeBytes int64
	WWN       string
	HCTL      string
	Type      string
	// Path is where /sys/block's link points
	// (../devices/pci0000:00/0000:00:01.0/0000:03:00.0/host0/…/block/sda).
	Path string
}

type blockDevices struct {
	devs []blockDevice
	used map[string]bool
}

// readBlockDevices lists the disks with lsblk and their sysfs paths with
// ls -l /sys/block.
func readBlockDevices(ctx context.Context, r CommandRunner) (blockDevices, error) {
	b := blockDevices{used: map[string]bool{}}
	out, err := run(ctx, r, "lsblk", "-J", "-b", "-d", "-o", "NAME,SIZE,WWN,HCTL,TYPE")
	if err != nil {
		return b, fmt.Errorf("list block devices: %w", err)
	}
	devs, err := parseLsblk(out)
	if err != nil {
		return b, err
	}
	links, err := run(ctx, r, "ls", "-l", "/sys/block/")
	if err != nil {
		return b, fmt.Errorf("list /sys/block: %w", err)
	}
	paths := parseSysBlock(links)
	for i := range devs {
		devs[i].Path = paths[devs[i].Name]
	}
	b.devs = devs
	return b, nil
}

// parseLsblk reads "lsblk -J -b -d -o NAME,SIZE,WWN,HCTL,TYPE".
func parseLsblk(out []byte) ([]blockDevice, error) {
	if len(out) > maxOutput {
		return nil, ErrOutputTooLarge
	}
	var doc struct {
		Devices []map[string]jsonText `json:"blockdevices"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("lsblk: %w: %v", ErrUnparsable, err)
	}
	var devs []blockDevice
	for _, d := range doc.Devices {
		name := clean(d["name"].String())
		if !blockName(name) || len(devs) >= maxPhysical {
			continue
		}
		size, _ := parseSize(d["size"].String(), true)
		devs = append(devs, blockDevice{Name: name, SizeBytes: size, WWN: clean(d["wwn"].String()),
			HCTL: clean(d["hctl"].String()), Type: clean(d["type"].String())})
	}
	return devs, nil
}

// parseSysBlock reads "ls -l /sys/block/": each device's link target.
func parseSysBlock(out []byte) map[string]string {
	paths := map[string]string{}
	for _, line := range splitLines(out) {
		left, target, ok := strings.Cut(line, " -> ")
		if !ok {
			continue
		}
		f := strings.Fields(left)
		if len(f) == 0 {
			continue
		}
		paths[f[len(f)-1]] = strings.TrimSpace(target)
	}
	return paths
}

// normWWN is a WWN without its "0x" or "naa." prefix, lower-cased.
func normWWN(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	s = strings.TrimPrefix(s, "naa.")
	return s
}

// find returns the device ("/dev/sdX") of a logical drive of the
// controller at pci, and marks it taken, or returns "".
func (b *blockDevices) find(pci string, info volumeInfo, size int64) string {
	take := func(d blockDevice) string {
		b.used[d.Name] = true
		return "/dev/" + d.Name
	}
	free := func(d blockDevice) bool { return !b.used[d.Name] && d.Type == "disk" }
	if name := strings.TrimPrefix(info.Device, "/dev/"); info.Device != "" && blockName(name) {
		for _, d := range b.devs {
			if d.Name == name && free(d) {
				return take(d)
			}
		}
	}
	if w := normWWN(info.WWN); len(w) >= 8 {
		for _, d := range b.devs {
			dw := normWWN(d.WWN)
			if free(d) && dw != "" && (dw == w || len(dw) >= 16 && len(w) >= 16 && (strings.HasSuffix(dw, w) || strings.HasSuffix(w, dw))) {
				return take(d)
			}
		}
	}
	var under []blockDevice
	for _, d := range b.devs {
		if free(d) && pci != "" && strings.Contains(d.Path, "/"+pci+"/") {
			under = append(under, d)
		}
	}
	if info.Channel >= 0 {
		var hit []blockDevice
		for _, d := range under {
			f := strings.Split(d.HCTL, ":")
			if len(f) == 4 && atoi(f[1]) == info.Channel && (info.Target < 0 || atoi(f[2]) == info.Target) {
				hit = append(hit, d)
			}
		}
		if len(hit) == 1 {
			return take(hit[0])
		}
		if len(hit) > 1 {
			under = hit
		}
	}
	if size > 0 {
		var hit []blockDevice
		for _, d := range under {
			if diff := d.SizeBytes - size; d.SizeBytes > 0 && max(diff, -diff) <= size/50 {
				hit = append(hit, d)
			}
		}
		if len(hit) == 1 {
			return take(hit[0])
		}
		if len(hit) > 1 {
			// The closest in size, when it is closest by far.
			slices.SortFunc(hit, func(x, y blockDevice) int {
				return cmp.Compare(absDiff(x.SizeBytes, size), absDiff(y.SizeBytes, size))
			})
			if absDiff(hit[0].SizeBytes, size) < absDiff(hit[1].SizeBytes, size)/4 {
				return take(hit[0])
			}
		}
	}
	return ""
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}
