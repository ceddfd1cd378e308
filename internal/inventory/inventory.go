package inventory

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"bareflow/contract"
)

// Output is what one Command printed.
type Output struct {
	// Stdout is the command's standard output.
	Stdout []byte
	// Err is empty when the command succeeded; otherwise it says why it
	// failed or that it was missing (its exit status, its error output).
	Err string
}

// Limits on what Parse takes from hostile or broken outputs. Past a count
// the rest is dropped and a warning says so; longer strings are cut.
const (
	// maxOutput is how much of one command's output is read.
	maxOutput = 8 << 20
	// maxValue is the longest string kept from any field.
	maxValue = 256
	// maxWarnings is how many warnings an inventory lists.
	maxWarnings = 200
	// maxWarning is the longest warning line.
	maxWarning = 300

	maxPCI        = 4096
	maxDisks      = 1024
	maxNICs       = 512
	maxDIMMs      = 1024
	maxSockets    = 256
	maxAddrs      = 64
	maxSections   = 4096
	maxDMIRecords = 16384
	maxCoreIDs    = 1 << 16
)

// collector gathers warnings while the outputs are parsed.
type collector struct {
	warnings []string
	dropped  int
}

func (c *collector) warnf(format string, args ...any) {
	w := oneLine(printable(fmt.Sprintf(format, args...)), maxWarning)
	if slices.Contains(c.warnings, w) {
		return
	}
	if len(c.warnings) >= maxWarnings {
		c.dropped++
		return
	}
	c.warnings = append(c.warnings, w)
}

// list is the warnings, with a last line counting those left out.
func (c *collector) list() []string {
	if c.dropped == 0 {
		return c.warnings
	}
	return append(c.warnings, fmt.Sprintf("%d more warnings not listed", c.dropped))
}

// output returns a command's output for parsing: nil when there is nothing
// to parse. It records a warning when the command is missing from outputs
// (unless optional), failed, or printed more than maxOutput.
func (c *collector) output(outputs map[string]Output, name string, optional bool) []byte {
	o, ok := outputs[name]
	if !ok {
		if !optional {
			c.warnf("%s: no output", name)
		}
		return nil
	}
	if o.Err != "" {
		c.warnf("%s: %s", name, o.Err)
	}
	b := o.Stdout
	if len(b) > maxOutput {
		c.warnf("%s: output truncated to %d bytes", name, maxOutput)
		b = b[:maxOutput]
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	return b
}

// Parse turns the commands' outputs, keyed by Command.Name, into an
// inventory. It never fails: a command that is missing, failed or printed
// something unreadable becomes a line in Warnings, and what the other
// commands said is still used. CollectedAt is left for the caller to set.
func Parse(outputs map[string]Output) contract.Inventory {
	var c collector
	optional := map[string]bool{}
	for _, cmd := range Commands() {
		optional[cmd.Name] = cmd.Optional
	}
	parse := func(name string, fn func([]byte) error) {
		b := c.output(outputs, name, optional[name])
		if b == nil {
			return
		}
		if err := fn(b); err != nil {
			c.warnf("%s: %v", name, err)
		}
	}

	var (
		dmi    dmiInfo
		cpu    cpuInfo
		mem    memInfo
		arch   string
		boot   string
		pci    []contract.PCIDevice
		blk    []lsblkDisk
		sysBlk []sysBlockDisk
		links  []ipLink
		addrs  map[string][]string
		sysNet []sysNetIface
		eth    map[string]ethtoolInfo
		lldp   map[string]contract.LLDPNeighbor
	)
	parse(CmdDmidecode, func(b []byte) (err error) { dmi, err = parseDmidecode(b); return })
	parse(CmdCPUInfo, func(b []byte) (err error) { cpu, err = parseCPUInfo(b); return })
	parse(CmdMeminfo, func(b []byte) (err error) { mem, err = parseMeminfo(b); return })
	parse(CmdArch, func(b []byte) (err error) { arch, err = parseArch(b); return })
	parse(CmdEFI, func(b []byte) (err error) { boot, err = parseBootMode(b); return })
	parse(CmdLspci, func(b []byte) (err error) { pci, err = parseLspci(b); return })
	parse(CmdLsblk, func(b []byte) (err error) { blk, err = parseLsblk(b); return })
	parse(CmdSysBlock, func(b []byte) (err error) { sysBlk, err = parseSysBlock(b); return })
	parse(CmdIPLink, func(b []byte) (err error) { links, err = parseIPLink(b); return })
	parse(CmdIPAddr, func(b []byte) (err error) { addrs, err = parseIPAddr(b); return })
	parse(CmdSysNet, func(b []byte) (err error) { sysNet, err = parseSysNet(b); return })
	parse(CmdEthtool, func(b []byte) error {
		var failed []string
		var err error
		eth, failed, err = parseEthtool(b)
		for _, f := range failed {
			c.warnf("%s: %s", CmdEthtool, f)
		}
		return err
	})
	parse(CmdLLDP, func(b []byte) (err error) { lldp, err = parseLLDP(b); return })

	inv := contract.Inventory{
		System: dmi.system,
		CPU:    buildCPU(dmi, cpu, arch),
		Memory: buildMemory(dmi, mem),
		NICs:   buildNICs(links, sysNet, eth, addrs, lldp),
		Disks:  buildDisks(blk, sysBlk),
		PCI:    pci,
		RAID:   RAIDFromPCI(pci),
	}
	inv.System.BootMode = boot
	if len(inv.Disks) > maxDisks {
		inv.Disks = inv.Disks[:maxDisks]
		c.warnf("more than %d disks: the rest are not listed", maxDisks)
	}
	if len(inv.NICs) > maxNICs {
		inv.NICs = inv.NICs[:maxNICs]
		c.warnf("more than %d NICs: the rest are not listed", maxNICs)
	}
	inv.Warnings = c.list()
	return inv
}

// placeholders are the values firmware puts in SMBIOS strings it was never
// given, compared in lower case.
var placeholders = map[string]bool{
	"not specified":            true,
	"not provided":             true,
	"not available":            true,
	"not applicable":           true,
	"not present":              true,
	"not settable":             true,
	"not installed":            true,
	"to be filled by o.e.m.":   true,
	"to be filled by oem":      true,
	"default string":           true,
	"none":                     true,
	"unknown":                  true,
	"n/a":                      true,
	"na":                       true,
	"o.e.m.":                   true,
	"oem":                      true,
	"0123456789":               true,
	"123456789":                true,
	"1234567890":               true,
	"system serial number":     true,
	"system manufacturer":      true,
	"system product name":      true,
	"system version":           true,
	"chassis serial number":    true,
	"chassis manufacture":      true,
	"base board serial number": true,
	"type1productconfigid":     true,
	"empty":                    true,
	"<bad index>":              true,
	"<out of spec>":            true,
}

// isPlaceholder reports whether v says nothing: empty, a known placeholder,
// or only zeros (DIMM and board serials of "00000000").
func isPlaceholder(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || placeholders[strings.ToLower(v)] {
		return true
	}
	return strings.Trim(v, "0") == ""
}

// clean makes a value safe to keep: valid UTF-8 without control
// characters, blanks collapsed to one space, trimmed, at most maxValue
// bytes.
func clean(v string) string {
	if len(v) > 4*maxValue {
		v = v[:4*maxValue]
	}
	var b strings.Builder
	space := false
	for _, r := range v {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r) && !unicode.IsSpace(r):
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if b.Len()+utf8.RuneLen(r) > maxValue {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// printable is s without invalid UTF-8 and with control characters turned
// into blanks.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError:
			return -1
		case unicode.IsControl(r):
			return ' '
		}
		return r
	}, s)
}

// value is clean(v), or "" for a placeholder.
func value(v string) string {
	v = clean(v)
	if isPlaceholder(v) {
		return ""
	}
	return v
}

// oneLine is s on one line, at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) && len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// lines calls fn for each line of b, without its line ending, until fn
// returns false.
func lines(b []byte, fn func(string) bool) {
	for l := range strings.Lines(string(b)) {
		if !fn(strings.TrimRight(l, "\r\n")) {
			return
		}
	}
}

// sections splits the output of a loop script into its sections: each
// starts with a line "@@@ NAME…" and holds the lines up to the next one.
// Lines before the first section are ignored.
type section struct {
	header string // what follows "@@@ "
	lines  []string
}

func splitSections(b []byte) []section {
	var out []section
	lines(b, func(l string) bool {
		if h, ok := strings.CutPrefix(l, sectionMark); ok {
			if len(out) >= maxSections {
				return false
			}
			out = append(out, section{header: strings.TrimSpace(h)})
			return true
		}
		if len(out) > 0 {
			out[len(out)-1].lines = append(out[len(out)-1].lines, l)
		}
		return true
	})
	return out
}

// keyValues reads key=value lines; the first value of a key wins.
func keyValues(ls []string) map[string]string {
	kv := map[string]string{}
	for _, l := range ls {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" || len(k) > 64 {
			continue
		}
		if _, seen := kv[k]; !seen && len(kv) < 64 {
			kv[k] = v
		}
	}
	return kv
}

// atoi parses a non-negative decimal integer of at most 18 digits; ok is
// false for anything else.
func atoi(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// isPCIAddr reports whether s is a PCI function address as the kernel
// writes it: domain (4 to 8 hex digits, VMD domains have 5), bus, device,
// function, lower case ("0000:3b:00.0").
func isPCIAddr(s string) bool {
	dom, rest, ok := strings.Cut(s, ":")
	if !ok || len(dom) < 4 || len(dom) > 8 || !isLowerHex(dom) || len(rest) != 7 {
		return false
	}
	return isLowerHex(rest[0:2]) && rest[2] == ':' && isLowerHex(rest[3:5]) && rest[5] == '.' &&
		rest[6] >= '0' && rest[6] <= '7'
}

func isLowerHex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// lastPCIAddr is the last PCI function address among the components of a
// sysfs path: the function nearest the device, its controller.
func lastPCIAddr(path string) string {
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if isPCIAddr(parts[i]) {
			return parts[i]
		}
	}
	return ""
}

// naturalLess orders names the way people number them: runs of digits
// compare as numbers, so eth2 comes before eth10 and nvme2n1 before
// nvme10n1.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// naturalCompare is naturalLess as a comparison for slices.SortFunc, with
// plain string order breaking ties ("eth01" and "eth1").
func naturalCompare(a, b string) int {
	switch {
	case naturalLess(a, b):
		return -1
	case naturalLess(b, a):
		return 1
	}
	return strings.Compare(a, b)
}

// parseArch reads `uname -m`.
func parseArch(b []byte) (string, error) {
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return "", fmt.Errorf("unexpected output %q", oneLine(string(b), 40))
	}
	return clean(f[0]), nil
}

// parseBootMode reads the efi command: "uefi" or "bios".
func parseBootMode(b []byte) (string, error) {
	switch s := strings.TrimSpace(string(b)); s {
	case contract.FirmwareUEFI, contract.FirmwareBIOS:
		return s, nil
	default:
		return "", fmt.Errorf("unexpected output %q", oneLine(s, 40))
	}
}
