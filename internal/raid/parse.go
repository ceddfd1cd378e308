package raid

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"bareflow/contract"
)

// Bounds on what a tool's output can make the drivers hold.
const (
	// maxOutput is the largest tool output a driver parses.
	maxOutput = 16 << 20
	// maxLines is the most lines of one output a text parser reads.
	maxLines = 500_000
	// maxControllers is the most controllers kept from one tool.
	maxControllers = 32
	// maxPhysical is the most physical disks kept per controller.
	maxPhysical = 1024
	// maxLogical is the most logical disks kept per controller.
	maxLogical = 512
	// maxField is the most runes kept of one string field.
	maxField = 128
	// maxSize is the largest size in bytes believed: 2^60 (an exbibyte).
	maxSize = 1 << 60
)

// clean makes s safe to keep: valid UTF-8, no control characters, runs of
// white space collapsed to one space, trimmed, at most maxField runes.
func clean(s string) string {
	if len(s) > 4*maxField*4 {
		s = s[:4*maxField*4]
	}
	s = strings.ToValidUTF8(s, "")
	var b strings.Builder
	space, n := false, 0
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		if n >= maxField {
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// lowerState is the tool's word for a state, cleaned and lower-cased.
func lowerState(s string) string {
	return strings.ToLower(clean(s))
}

// dropAbbrev removes a trailing parenthesized abbreviation, as sas2ircu
// writes states: "Okay (OKY)" becomes "Okay".
func dropAbbrev(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '('); i > 0 && strings.HasSuffix(s, ")") {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// normalizeLevel turns a tool's RAID level into "raid0", "raid1", "raid10",
// and the like: "RAID1", "RAID 1", "1", "1+0", "RAID 1+0", "1 (ADM)" and
// "Raid1" are all understood. Another level comes back cleaned and
// lower-cased.
func normalizeLevel(s string) string {
	s = clean(s)
	if s == "" {
		return ""
	}
	l := strings.ToLower(s)
	k := strings.NewReplacer(" ", "", "+", "", "(", "", ")", "", "-", "", "_", "").Replace(l)
	k = strings.TrimPrefix(k, "raid")
	switch k {
	case "0", "1", "5", "6", "10", "50", "60", "00", "1e", "1adm", "10adm", "4", "3", "2":
		return "raid" + k
	}
	return l
}

// unitMultiplier is the number of bytes of one unit as a tool writes it;
// binary says whether KB, MB, GB, TB and PB are powers of 1024. KiB, MiB,
// GiB, TiB and PiB are powers of 1024 whatever binary says.
func unitMultiplier(unit string, binary bool) (float64, bool) {
	u := strings.ToLower(strings.TrimSpace(unit))
	if strings.HasSuffix(u, "ib") {
		binary = true
		u = strings.TrimSuffix(u, "ib")
	} else {
		u = strings.TrimSuffix(u, "b")
	}
	base := 1000.0
	if binary {
		base = 1024
	}
	switch u {
	case "":
		return 1, true
	case "k":
		return base, true
	case "m":
		return base * base, true
	case "g":
		return base * base * base, true
	case "t":
		return base * base * base * base, true
	case "p":
		return base * base * base * base * base, true
	}
	return 0, false
}

// parseSize parses a size as tools print it: "893.750 GB", "3.637 TB",
// "744.687 GiB", "480 GB", "488386584 K", "228936MB", "0 KB". binary says
// whether KB, MB, GB, TB and PB are powers of 1024 for this tool. It
// returns false for anything else, and for sizes over maxSize.
func parseSize(s string, binary bool) (int64, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "[("); i > 0 {
		// storcli adds "[0x... Sectors]", mdadm "(931.39 GiB ...)".
		s = strings.TrimSpace(s[:i])
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == ',') {
		i++
	}
	num := strings.ReplaceAll(s[:i], ",", "")
	if num == "" || len(num) > 32 {
		return 0, false
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	mult, ok := unitMultiplier(s[i:], binary)
	if !ok {
		return 0, false
	}
	return toBytes(v, mult)
}

// toBytes is v units of mult bytes, rounded, when it is at most maxSize.
func toBytes(v, mult float64) (int64, bool) {
	b := math.Round(v * mult)
	if b < 0 || b > maxSize || math.IsNaN(b) {
		return 0, false
	}
	return int64(b), true
}

// atoi parses a small non-negative decimal integer, or returns -1.
func atoi(s string) int {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 9 {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// pciAddr formats a PCI address as lspci -D does: 0000:18:00.0. It returns
// "" when a part is out of range.
func pciAddr(domain, bus, dev, fn int64) string {
	if domain < 0 || domain > 0xffff || bus < 0 || bus > 0xff || dev < 0 || dev > 0x1f || fn < 0 || fn > 7 {
		return ""
	}
	return fmt.Sprintf("%04x:%02x:%02x.%x", domain, bus, dev, fn)
}

// normalizePCIAddr turns the PCI addresses of lspci and of the tools into
// lspci -D's form: "0000:03:00.0" and "03:00.0" (lspci), "00:18:00:00"
// (storcli, domain:bus:device:function), "0:4b:0:0" (arcconf), and
// "00h:01h:00h:00h" (sas2ircu) all in hexadecimal. It returns "" for
// anything else.
func normalizePCIAddr(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > 32 {
		return ""
	}
	s = strings.ReplaceAll(s, "h", "")
	s = strings.Replace(s, ".", ":", 1)
	parts := strings.Split(s, ":")
	if len(parts) == 3 {
		parts = append([]string{"0"}, parts...)
	}
	if len(parts) != 4 {
		return ""
	}
	var n [4]int64
	for i, p := range parts {
		if p == "" || len(p) > 4 {
			return ""
		}
		v, err := strconv.ParseInt(p, 16, 32)
		if err != nil {
			return ""
		}
		n[i] = v
	}
	return pciAddr(n[0], n[1], n[2], n[3])
}

// hexID normalizes a PCI vendor or device ID ("0x1000", "1000", "1000h",
// "10E2") to four lower-case hex digits, or returns "".
func hexID(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	s = strings.TrimSuffix(s, "h")
	if s == "" || len(s) > 4 {
		return ""
	}
	v, err := strconv.ParseUint(s, 16, 16)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%04x", v)
}

// pciID is a device's "vendor:device" in hex, such as "1000:005d", or "".
func pciID(d contract.PCIDevice) string {
	v, dv := hexID(d.VendorID), hexID(d.DeviceID)
	if v == "" || dv == "" {
		return ""
	}
	return v + ":" + dv
}

// splitLines splits a tool's output into at most maxLines lines, without
// their line endings.
func splitLines(out []byte) []string {
	var lines []string
	for len(out) > 0 && len(lines) < maxLines {
		i := bytes.IndexByte(out, '\n')
		var line []byte
		if i < 0 {
			line, out = out, nil
		} else {
			line, out = out[:i], out[i+1:]
		}
		lines = append(lines, string(bytes.TrimRight(line, "\r")))
	}
	return lines
}

// keyValue splits "  Key   : value" at the first ": " (or at a colon that
// ends the line) into a trimmed key and value. A colon followed by other
// text, as in "PCI Address (Domain:Bus:Device.Function): 0000:03:00.0", is
// part of the key.
func keyValue(line string) (key, value string, ok bool) {
	line = strings.TrimSpace(line)
	i := strings.Index(line, ": ")
	switch {
	case i >= 0:
		key, value = line[:i], line[i+2:]
	case strings.HasSuffix(line, ":"):
		key = line[:len(line)-1]
	default:
		j := strings.Index(line, ":\t")
		if j < 0 {
			return "", "", false
		}
		key, value = line[:j], line[j+2:]
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return "", "", false
	}
	return key, strings.TrimSpace(value), true
}

// indent is the number of leading spaces (a tab counts as one) of line.
func indent(line string) int {
	return len(line) - len(strings.TrimLeft(line, " \t"))
}

// media maps a tool's media word to contract.DiskHDD or contract.DiskSSD.
func media(s string) string {
	switch l := strings.ToLower(s); {
	case strings.Contains(l, "ssd"), strings.Contains(l, "solid state"), strings.Contains(l, "nvme"), strings.Contains(l, "flash"):
		return contract.DiskSSD
	case strings.Contains(l, "hdd"), strings.Contains(l, "hard"), strings.Contains(l, "rotat"):
		return contract.DiskHDD
	}
	return ""
}

// iface maps a tool's interface word to sas, sata or nvme, or to the word
// cleaned and lower-cased.
func iface(s string) string {
	switch l := strings.ToLower(s); {
	case strings.Contains(l, "nvme"), strings.Contains(l, "pcie"):
		return "nvme"
	case strings.Contains(l, "sata"):
		return "sata"
	case strings.Contains(l, "sas"):
		return "sas"
	case l == "":
		return ""
	default:
		return lowerState(s)
	}
}

// firstField is the first white-space separated field of s, or "".
func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}
