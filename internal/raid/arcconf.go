package raid

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"bareflow/contract"
)

// arcconf reads Adaptec and Microchip SmartRAID/SmartHBA controllers
// (aacraid, and smartpqi without an HP subsystem) with arcconf:
// "arcconf GETCONFIG <n> AL" for each controller n from 1 to the count the
// first answer gives ("Controllers found: N"). Both the older layout
// ("Logical drive number 1", "Status of logical drive") and the newer one
// ("Logical Device number 0", "Status of Logical Device") are read.
//
// arcconf prints sizes in binary units: "228936 MB" is mebibytes. A drive's
// Enclosure and Slot are its channel and device numbers ("Reported
// Channel,Device"), the pair arcconf's other commands take; its state is
// its State lower-cased (online, ready, hot spare, failed, rebuilding,
// raw (pass through)…). Enclosure services devices are not drives and are
// left out. A logical device's ID is its number, its state its status
// lower-cased (optimal, okay, degraded, failed…).
type arcconf struct{}

func (arcconf) Name() string { return "arcconf" }

func (arcconf) Tools() []string { return []string{"arcconf"} }

func (arcconf) Handles(pci contract.PCIDevice) bool {
	drv := strings.ToLower(strings.TrimSpace(pci.Driver))
	switch {
	case drv == "aacraid":
		return true
	case drv == "smartpqi" || pciID(pci) == "9005:028f":
		return !hpSubsystem(pci.SubVendor)
	case hexID(pci.VendorID) == "9005":
		return strings.HasPrefix(strings.ToLower(pci.ClassID), "0104") || strings.Contains(strings.ToLower(pci.Class), "raid")
	}
	return false
}

func (arcconf) Inventory(ctx context.Context, r CommandRunner, tool string) ([]contract.RAIDController, error) {
	var (
		ctrls []contract.RAIDController
		errs  []error
		total = 1
	)
	for n := 1; n <= total && n <= maxControllers; n++ {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		out, err := run(ctx, r, tool, "GETCONFIG", strconv.Itoa(n), "AL")
		if err != nil && len(out) == 0 {
			errs = append(errs, fmt.Errorf("controller %d: %w", n, err))
			continue
		}
		c, found, perr := parseArcconf(out)
		if n == 1 && found > 1 {
			total = found
		}
		if err := errors.Join(err, perr); err != nil {
			errs = append(errs, fmt.Errorf("controller %d: %w", n, err))
		}
		if c.Model != "" || len(c.PhysicalDisks) > 0 || len(c.LogicalDisks) > 0 {
			ctrls = append(ctrls, c)
		}
	}
	if total > maxControllers {
		errs = append(errs, fmt.Errorf("more than %d controllers, the rest ignored", maxControllers))
	}
	return ctrls, errors.Join(errs...)
}

// parseArcconf reads the output of "arcconf GETCONFIG <n> AL": the
// controller, and the number of controllers arcconf found.
func parseArcconf(out []byte) (contract.RAIDController, int, error) {
	var c contract.RAIDController
	if len(out) > maxOutput {
		return c, 0, ErrOutputTooLarge
	}
	type section int
	const (
		none section = iota
		controller
		logical
		physical
		other
	)
	var (
		where    section
		found    = -1
		seen     bool
		ld       *contract.RAIDLogicalDisk
		pd       *contract.RAIDPhysicalDisk
		pdKeys   map[string]bool
		vendor   string
		lastLine string
	)
	endPD := func() {
		if pd != nil && vendor != "" && !strings.EqualFold(vendor, "ATA") {
			pd.Model = clean(vendor + " " + pd.Model)
		}
		pd, vendor, pdKeys = nil, "", nil
	}
	for _, line := range splitLines(out) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "---") {
			continue
		}
		lastLine = t
		lt := strings.ToLower(t)
		if indent(line) == 0 {
			if key, val, ok := keyValue(t); ok {
				if key == "Controllers found" {
					found = atoi(val)
				}
				continue
			}
			endPD()
			ld = nil
			switch lt {
			case "controller information":
				where, seen = controller, true
			case "logical device information", "logical drive information":
				where = logical
			case "physical device information":
				where = physical
			default:
				if strings.HasPrefix(lt, "logical device number ") || strings.HasPrefix(lt, "logical drive number ") {
					where = logical
					if len(c.LogicalDisks) < maxLogical {
						id := t[strings.LastIndex(lt, "number ")+len("number "):]
						c.LogicalDisks = append(c.LogicalDisks, contract.RAIDLogicalDisk{ID: clean(id)})
						ld = &c.LogicalDisks[len(c.LogicalDisks)-1]
					}
				} else {
					where = other
				}
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
			case "Controller Model":
				c.Model = clean(val)
			case "Controller Serial Number":
				c.Serial = clean(val)
			case "PCI Address (Domain:Bus:Device:Function)":
				c.PCIAddr = normalizePCIAddr(val)
			case "Firmware":
				if c.Firmware == "" {
					c.Firmware = clean(val)
				}
			}
		case logical:
			key, val, ok := keyValue(t)
			if !ok || ld == nil {
				continue
			}
			switch strings.ToLower(key) {
			case "raid level":
				ld.Level = normalizeLevel(val)
			case "status of logical device", "status of logical drive":
				ld.State = lowerState(val)
			case "size":
				if ld.SizeBytes == 0 {
					ld.SizeBytes, _ = parseSize(val, true)
				}
			}
		case physical:
			if strings.HasPrefix(lt, "device #") {
				endPD()
				continue
			}
			if strings.HasPrefix(lt, "device is a") {
				endPD()
				if strings.Contains(lt, "hard drive") && len(c.PhysicalDisks) < maxPhysical {
					c.PhysicalDisks = append(c.PhysicalDisks, contract.RAIDPhysicalDisk{})
					pd, pdKeys = &c.PhysicalDisks[len(c.PhysicalDisks)-1], map[string]bool{}
				}
				continue
			}
			key, val, ok := keyValue(t)
			if !ok || pd == nil || pdKeys[key] {
				continue
			}
			pdKeys[key] = true
			switch key {
			case "State":
				pd.State = lowerState(val)
			case "Transfer Speed":
				pd.Interface = iface(firstField(val))
			case "Reported Channel,Device(T:L)", "Reported Channel,Device":
				if i := strings.IndexByte(val, '('); i >= 0 {
					val = val[:i]
				}
				ch, dev, _ := strings.Cut(val, ",")
				pd.Enclosure, pd.Slot = clean(ch), clean(dev)
			case "Vendor":
				vendor = clean(val)
			case "Model":
				pd.Model = clean(val)
			case "Serial number":
				pd.Serial = clean(val)
			case "Total Size":
				pd.SizeBytes, _ = parseSize(val, true)
			case "Size":
				if !pdKeys["Total Size"] {
					pd.SizeBytes, _ = parseSize(val, true)
				}
			case "SSD":
				switch strings.ToLower(clean(val)) {
				case "yes":
					pd.Media = contract.DiskSSD
				case "no":
					pd.Media = contract.DiskHDD
				}
			}
		}
	}
	endPD()
	var err error
	if !seen {
		msg := strings.ToLower(clean(lastLine))
		if msg == "" {
			msg = "empty output"
		}
		err = fmt.Errorf("%w: no Controller information: %s", ErrUnparsable, msg)
	}
	if found < 0 {
		found = 0
	}
	return c, found, err
}
