package inventory

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"bareflow/contract"
)

// lsblkDisk is one device of lsblk's JSON output.
type lsblkDisk struct {
	name, typ, tran, model, vendor, serial, wwn, hctl string
	size                                              int64
	rota, rm                                          *bool
}

// parseLsblk reads `lsblk -J -b -d -o NAME,SIZE,ROTA,TYPE,TRAN,MODEL,VENDOR,
// SERIAL,WWN,RM,HCTL`. Versions of util-linux differ in how they type the
// values (before 2.33 every value is a string, since then SIZE is a number
// and ROTA and RM booleans): each form is read. A device that does not
// decode is skipped.
func parseLsblk(b []byte) ([]lsblkDisk, error) {
	var top struct {
		BlockDevices []json.RawMessage `json:"blockdevices"`
	}
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if top.BlockDevices == nil {
		return nil, errors.New(`no "blockdevices" list`)
	}
	var out []lsblkDisk
	bad := 0
	for _, raw := range top.BlockDevices {
		if len(out) >= maxDisks {
			return out, fmt.Errorf("more than %d block devices: the rest are ignored", maxDisks)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			bad++
			continue
		}
		d := lsblkDisk{
			name:   jsonString(m["name"]),
			typ:    jsonString(m["type"]),
			tran:   jsonString(m["tran"]),
			model:  jsonString(m["model"]),
			vendor: jsonString(m["vendor"]),
			serial: jsonString(m["serial"]),
			wwn:    jsonString(m["wwn"]),
			hctl:   jsonString(m["hctl"]),
		}
		if !validDiskName(d.name) {
			bad++
			continue
		}
		if n, ok := jsonInt(m["size"]); ok {
			d.size = n
		}
		d.rota = jsonBool(m["rota"])
		d.rm = jsonBool(m["rm"])
		out = append(out, d)
	}
	if bad > 0 {
		return out, fmt.Errorf("%d block devices could not be read", bad)
	}
	return out, nil
}

// jsonString is a JSON string's value, a number's text, or "" for null and
// anything else.
func jsonString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return clean(s)
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return clean(n.String())
		}
	}
	return ""
}

// jsonInt reads a non-negative integer given as a JSON number or a string.
func jsonInt(raw json.RawMessage) (int64, bool) {
	return atoi(jsonString(raw))
}

// jsonBool reads true/false, 1/0 or "1"/"0"; nil when absent or neither.
func jsonBool(raw json.RawMessage) *bool {
	var v bool
	switch strings.TrimSpace(string(raw)) {
	case "true", "1", `"1"`, `"true"`:
		v = true
	case "false", "0", `"0"`, `"false"`:
	default:
		return nil
	}
	return &v
}

// sysBlockDisk is one section of the sys-block script's output.
type sysBlockDisk struct {
	name                       string
	sectors                    int64
	sizeOK                     bool
	removable, rotational      *bool
	model, vendor, serial, vpd string
	wwid, device, driver       string
}

// parseSysBlock reads the sys-block script's output: a "@@@ NAME" line per
// disk, then its key=value lines (see sysBlockScript).
func parseSysBlock(b []byte) ([]sysBlockDisk, error) {
	var out []sysBlockDisk
	for _, s := range splitSections(b) {
		if !validDiskName(s.header) {
			continue
		}
		if len(out) >= maxDisks {
			return out, fmt.Errorf("more than %d disks: the rest are ignored", maxDisks)
		}
		kv := keyValues(s.lines)
		d := sysBlockDisk{
			name:       s.header,
			removable:  flag01(kv["removable"]),
			rotational: flag01(kv["rotational"]),
			model:      kv["model"],
			vendor:     kv["vendor"],
			serial:     kv["serial"],
			wwid:       kv["wwid"],
			device:     clean(kv["device"]),
			driver:     clean(kv["driver"]),
		}
		d.sectors, d.sizeOK = atoi(kv["size"])
		d.vpd = vpdSerial(kv["vpd_pg80"])
		out = append(out, d)
	}
	if len(out) == 0 && len(bytes.TrimSpace(b)) > 0 && !bytes.Contains(b, []byte(sectionMark)) {
		return nil, errors.New("no disk sections in the output")
	}
	return out, nil
}

// flag01 reads a sysfs boolean, "0" or "1"; nil for anything else.
func flag01(v string) *bool {
	switch strings.TrimSpace(v) {
	case "1":
		t := true
		return &t
	case "0":
		f := false
		return &f
	}
	return nil
}

// validDiskName accepts kernel block device names: short, no path
// separators or blanks.
func validDiskName(n string) bool {
	return n != "" && len(n) <= 32 && !strings.ContainsAny(n, "/ \t") && n != "." && n != ".."
}

// skippedDiskPrefixes are the block devices that are not disks: loop, RAM
// and compressed-RAM disks, device-mapper and md arrays, optical drives,
// network block devices, floppies and ZFS volumes.
var skippedDiskPrefixes = []string{"loop", "ram", "zram", "dm-", "md", "sr", "nbd", "fd", "zd"}

// skippedDisk reports whether a block device is not a disk: one of
// skippedDiskPrefixes, an eMMC boot or RPMB area (mmcblk0boot0,
// mmcblk0rpmb), or a per-path node of NVMe multipath (nvme0c1n1), which
// the namespace's own node (nvme0n1) stands for.
func skippedDisk(name string) bool {
	for _, p := range skippedDiskPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	if rest, ok := strings.CutPrefix(name, "mmcblk"); ok && (strings.Contains(rest, "boot") || strings.HasSuffix(rest, "rpmb")) {
		return true
	}
	if rest, ok := strings.CutPrefix(name, "nvme"); ok && strings.Contains(rest, "c") {
		return true
	}
	return false
}

// vpdSerial decodes the serial number from a hex dump of SCSI VPD page 80h:
// a 4-byte header (the page code 80h in byte 1, the length in bytes 2-3),
// then the serial in ASCII, padded with blanks.
func vpdSerial(h string) string {
	h = strings.TrimSpace(h)
	if len(h) > 2048 {
		h = h[:2048]
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := int(b[2])<<8 | int(b[3])
	b = b[4:]
	if n < len(b) {
		b = b[:n]
	}
	return value(strings.Trim(string(b), " \x00"))
}

// normalizeWWN turns a kernel wwid or an lsblk WWN into one form: NAA
// names as "0x" and hex ("naa.5000c500a1b2c3d4" → "0x5000c500a1b2c3d4",
// as udev writes them), EUI-64 and NGUID names as "eui." and hex. Other
// identifiers (t10 vendor ids, "nvme." ids made of model and serial) are
// not world-wide names and give "".
func normalizeWWN(w string) string {
	w = strings.ToLower(clean(w))
	for _, p := range []struct{ in, out string }{{"naa.", "0x"}, {"0x", "0x"}, {"eui.", "eui."}} {
		if rest, ok := strings.CutPrefix(w, p.in); ok {
			switch len(rest) {
			case 16, 24, 32:
				if isLowerHex(rest) && strings.Trim(rest, "0") != "" {
					return p.out + rest
				}
			}
			return ""
		}
	}
	return ""
}

// diskVendor is a disk's vendor, without the ones that name no vendor:
// libata's "ATA" and virtio's PCI vendor id ("0x1af4").
func diskVendor(v string) string {
	v = value(v)
	if strings.EqualFold(v, "ATA") || strings.HasPrefix(v, "0x") {
		return ""
	}
	return v
}

// transportFromPath derives how a disk is attached from the sysfs path of
// its device: a USB host controller, an NVMe controller, a virtio device,
// a libata port (SATA), a SAS port, end device or expander, else a SCSI
// host. "" when the path says none of these.
func transportFromPath(path string) string {
	comps := strings.Split(path, "/")
	has := func(match func(string) bool) bool { return slices.ContainsFunc(comps, match) }
	numbered := func(prefix string) func(string) bool {
		return func(c string) bool {
			n, ok := strings.CutPrefix(c, prefix)
			_, err := strconv.Atoi(n)
			return ok && n != "" && err == nil
		}
	}
	prefixed := func(prefix string) func(string) bool {
		return func(c string) bool { return strings.HasPrefix(c, prefix) }
	}
	switch {
	case has(numbered("usb")):
		return "usb"
	case has(prefixed("nvme")):
		return "nvme"
	case has(numbered("virtio")):
		return "virtio"
	case has(numbered("ata")):
		return "sata"
	case has(prefixed("end_device-")), has(prefixed("expander-")), has(prefixed("port-")):
		return "sas"
	case has(numbered("host")):
		return "scsi"
	}
	return ""
}

// transportFromName guesses the transport from the device name, the way
// lsblk does: nvme* is NVMe, vd* virtio.
func transportFromName(name string) string {
	switch {
	case strings.HasPrefix(name, "nvme"):
		return "nvme"
	case strings.HasPrefix(name, "vd"):
		return "virtio"
	}
	return ""
}

// buildDisks merges lsblk's view of the disks with the sysfs one. lsblk
// decides the device type (only "disk" is kept), and gives size, model,
// vendor, transport, rotational and removable flags, which sysfs fills in
// when lsblk lacks them; sysfs gives serial and WWN first (without udev,
// lsblk has neither), and the controller. Zero-size devices (empty card
// readers, virtual media without a medium) are skipped. Disks are sorted by
// name.
func buildDisks(blk []lsblkDisk, sys []sysBlockDisk) []contract.Disk {
	lsblkBy := map[string]lsblkDisk{}
	sysBy := map[string]sysBlockDisk{}
	var names []string
	for _, d := range blk {
		if _, dup := lsblkBy[d.name]; !dup {
			lsblkBy[d.name] = d
			names = append(names, d.name)
		}
	}
	for _, d := range sys {
		if _, dup := sysBy[d.name]; dup {
			continue
		}
		sysBy[d.name] = d
		if _, inLsblk := lsblkBy[d.name]; !inLsblk {
			names = append(names, d.name)
		}
	}
	var out []contract.Disk
	for _, name := range names {
		if skippedDisk(name) {
			continue
		}
		l, hasL := lsblkBy[name]
		s := sysBy[name]
		if hasL && l.typ != "" && l.typ != "disk" {
			continue
		}
		var size int64
		switch {
		case hasL && l.size > 0:
			size = l.size
		case s.sizeOK && s.sectors < 1<<54:
			size = s.sectors * 512
		}
		if size <= 0 {
			continue
		}
		d := contract.Disk{
			Name:             name,
			SizeBytes:        size,
			Model:            firstOf(value(l.model), value(s.model)),
			Vendor:           firstOf(diskVendor(l.vendor), diskVendor(s.vendor)),
			Serial:           firstOf(value(s.serial), s.vpd, value(l.serial)),
			WWN:              firstOf(normalizeWWN(s.wwid), normalizeWWN(l.wwn)),
			Transport:        firstOf(strings.ToLower(l.tran), transportFromPath(s.device), transportFromName(name)),
			Controller:       lastPCIAddr(s.device),
			ControllerDriver: s.driver,
		}
		rota := l.rota
		if rota == nil {
			rota = s.rotational
		}
		rm := l.rm
		if rm == nil {
			rm = s.removable
		}
		d.Removable = rm != nil && *rm
		switch {
		case strings.HasPrefix(name, "nvme") || d.Transport == "nvme":
			d.Type = contract.DiskNVMe
		case rota != nil && *rota:
			d.Type = contract.DiskHDD
		default:
			d.Type = contract.DiskSSD
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b contract.Disk) int { return naturalCompare(a.Name, b.Name) })
	return out
}

// firstOf is the first non-empty string.
func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
