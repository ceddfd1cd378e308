package inventory

import (
	"errors"
	"fmt"
	"strings"

	"bareflow/contract"
)

// dmiInfo is what parseDmidecode takes from SMBIOS.
type dmiInfo struct {
	system     contract.SystemInfo
	processors []dmiProcessor
	dimms      []contract.DIMM
}

// dmiProcessor is one SMBIOS type 4 entry: a socket.
type dmiProcessor struct {
	socket       string
	version      string
	manufacturer string
	populated    bool
	cores        int
	threads      int
}

// dmiRecord is one decoded structure of dmidecode's output.
type dmiRecord struct {
	typ    int
	fields map[string]string
}

// parseDmidecode reads the text output of dmidecode 2.x and 3.x (`dmidecode`
// or `dmidecode -t 0,1,2,3,4,17`): BIOS (type 0), system (1), baseboard
// (2), chassis (3), processors (4) and memory devices (17). Placeholder
// strings ("Not Specified", "To Be Filled By O.E.M."…) become empty.
func parseDmidecode(b []byte) (dmiInfo, error) {
	var (
		recs    []dmiRecord
		cur     *dmiRecord
		title   bool
		tooMany bool
	)
	lines(b, func(l string) bool {
		if strings.HasPrefix(l, "Handle 0x") {
			if len(recs) >= maxDMIRecords {
				tooMany = true
				return false
			}
			recs = append(recs, dmiRecord{typ: dmiType(l), fields: map[string]string{}})
			cur = &recs[len(recs)-1]
			title = true
			return true
		}
		if cur == nil || l == "" {
			return true
		}
		if title {
			// The line after the handle names the structure.
			title = false
			return true
		}
		// Fields have one tab of indent; list items under a field
		// (Flags, Characteristics) have two and are skipped.
		if !strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "\t\t") {
			return true
		}
		k, v, ok := strings.Cut(l[1:], ":")
		if !ok || len(k) > 64 || len(cur.fields) >= 128 {
			return true
		}
		if _, seen := cur.fields[k]; !seen {
			cur.fields[k] = strings.TrimSpace(v)
		}
		return true
	})
	var info dmiInfo
	var errs []error
	if len(recs) == 0 {
		return info, errors.New("no SMBIOS structures in the output")
	}
	if tooMany {
		errs = append(errs, fmt.Errorf("more than %d SMBIOS structures: the rest are ignored", maxDMIRecords))
	}
	seen := map[int]bool{}
	dimmOverflow := false
	for _, r := range recs {
		f := func(k string) string { return value(r.fields[k]) }
		first := !seen[r.typ]
		seen[r.typ] = true
		switch r.typ {
		case 0:
			if first {
				info.system.BIOSVendor = f("Vendor")
				info.system.BIOSVersion = f("Version")
				info.system.BIOSDate = f("Release Date")
			}
		case 1:
			if first {
				info.system.Vendor = f("Manufacturer")
				info.system.Model = f("Product Name")
				info.system.Serial = f("Serial Number")
				info.system.UUID = normalizeUUID(r.fields["UUID"])
				info.system.SKU = f("SKU Number")
				info.system.Family = f("Family")
			}
		case 2:
			if first {
				info.system.BoardVendor = f("Manufacturer")
				info.system.BoardModel = f("Product Name")
				info.system.BoardSerial = f("Serial Number")
			}
		case 3:
			if first {
				info.system.ChassisType = f("Type")
				info.system.ChassisAsset = f("Asset Tag")
			}
		case 4:
			if len(info.processors) >= maxSockets {
				continue
			}
			p := dmiProcessor{
				socket:       f("Socket Designation"),
				version:      f("Version"),
				manufacturer: f("Manufacturer"),
				populated:    strings.HasPrefix(strings.TrimSpace(r.fields["Status"]), "Populated"),
			}
			if n, ok := atoi(r.fields["Core Count"]); ok && n < 1<<16 {
				p.cores = int(n)
			}
			if n, ok := atoi(r.fields["Thread Count"]); ok && n < 1<<16 {
				p.threads = int(n)
			}
			info.processors = append(info.processors, p)
		case 17:
			size, ok := parseDIMMSize(r.fields["Size"])
			if !ok {
				continue
			}
			if len(info.dimms) >= maxDIMMs {
				dimmOverflow = true
				continue
			}
			speed := parseSpeedMTs(r.fields["Speed"])
			if speed == 0 {
				speed = parseSpeedMTs(r.fields["Configured Memory Speed"])
			}
			if speed == 0 {
				speed = parseSpeedMTs(r.fields["Configured Clock Speed"])
			}
			info.dimms = append(info.dimms, contract.DIMM{
				Locator:      f("Locator"),
				Bank:         f("Bank Locator"),
				SizeBytes:    size,
				Type:         f("Type"),
				SpeedMTs:     speed,
				Manufacturer: f("Manufacturer"),
				Serial:       f("Serial Number"),
				PartNumber:   f("Part Number"),
			})
		}
	}
	if dimmOverflow {
		errs = append(errs, fmt.Errorf("more than %d memory devices: the rest are ignored", maxDIMMs))
	}
	return info, errors.Join(errs...)
}

// dmiType reads the type from "Handle 0x0100, DMI type 1, 27 bytes"; -1
// when the line is garbled.
func dmiType(l string) int {
	_, rest, ok := strings.Cut(l, "DMI type ")
	if !ok {
		return -1
	}
	t, _, _ := strings.Cut(rest, ",")
	n, ok := atoi(t)
	if !ok || n > 255 {
		return -1
	}
	return int(n)
}

// normalizeUUID lower-cases an SMBIOS UUID; placeholders, and the all-zero
// and all-F UUIDs firmware uses for "not set", become empty.
func normalizeUUID(v string) string {
	v = strings.ToLower(clean(v))
	if len(v) != 36 || strings.Count(v, "-") != 4 {
		return ""
	}
	hex := strings.ReplaceAll(v, "-", "")
	if !isLowerHex(hex) || strings.Trim(hex, "0") == "" || strings.Trim(hex, "f") == "" {
		return ""
	}
	return v
}

// parseDIMMSize reads a type 17 Size ("16 GB", "16384 MB", "512 kB"); ok
// is false for an empty slot ("No Module Installed"), an unknown size or
// garbage.
func parseDIMMSize(v string) (int64, bool) {
	f := strings.Fields(v)
	if len(f) < 2 {
		return 0, false
	}
	n, ok := atoi(f[0])
	if !ok || n == 0 {
		return 0, false
	}
	var unit int64
	switch strings.ToLower(f[1]) {
	case "bytes":
		unit = 1
	case "kb":
		unit = 1 << 10
	case "mb":
		unit = 1 << 20
	case "gb":
		unit = 1 << 30
	case "tb":
		unit = 1 << 40
	default:
		return 0, false
	}
	// No DIMM holds a petabyte: anything larger is garbage, and it keeps
	// the product below 2^63.
	if n > (1<<50)/unit {
		return 0, false
	}
	return n * unit, true
}

// parseSpeedMTs reads a memory speed, "2933 MT/s" or, from dmidecode before
// 3.2, "2933 MHz"; 0 when unknown.
func parseSpeedMTs(v string) int {
	f := strings.Fields(v)
	if len(f) != 2 || (f[1] != "MT/s" && f[1] != "MHz") {
		return 0
	}
	n, ok := atoi(f[0])
	if !ok || n > 1<<20 {
		return 0
	}
	return int(n)
}
