package disklayout

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// GPT and dos partition types the package recognises.
const (
	typeESP       = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	typeXBOOTLDR  = "BC13C2FF-59E6-4262-A352-B275FD6F7172"
	typeLinuxFS   = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	dosTypeESP    = "ef"
	dosTypeLinux  = "83"
	gptEntryBytes = 128 * 128
)

// rootTypes are the discoverable-partitions root types.
var rootTypes = map[string]bool{
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": true, // x86-64
	"B921B045-1DF0-41C3-AF44-4C6F280D3FAE": true, // aarch64
	"44479540-F297-41B2-9AF7-D131D5F0458A": true, // x86
	"69DAD710-2CE4-4E3C-B16C-21A1D49ABED3": true, // arm
	"72EC70A6-CF74-40E6-BD49-4BDA08E8F224": true, // riscv64
}

// blkidScript probes the filesystems of its arguments; blkid exits 2 when
// it finds nothing, which is not a failure here.
const blkidScript = `blkid -p -o export "$@"; rc=$?; [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ]`

// Inspect reads the partition table of disk, tells the kernel about it
// (partx -u), probes each partition's filesystem and picks the root
// partition and the ESP (see the package comment for the rule). It changes
// nothing on the disk.
func Inspect(ctx context.Context, r CommandRunner, disk string) (Layout, error) {
	if err := validateDevice(disk); err != nil {
		return Layout{}, err
	}
	l, err := readTable(ctx, r, disk)
	if err != nil {
		return Layout{}, err
	}
	if len(l.Partitions) > 0 {
		if _, err := run(ctx, r, cmd("partx", "-u", disk)); err != nil {
			return Layout{}, err
		}
		if err := probe(ctx, r, &l); err != nil {
			return Layout{}, err
		}
	}
	l.ESP = findESP(l.Partitions)
	l.Root = findRoot(l.Partitions)
	return l, nil
}

type sfdiskDump struct {
	Table struct {
		Label      string `json:"label"`
		Device     string `json:"device"`
		FirstLBA   int64  `json:"firstlba"`
		LastLBA    int64  `json:"lastlba"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			UUID  string `json:"uuid"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func readTable(ctx context.Context, r CommandRunner, disk string) (Layout, error) {
	c := cmd("blockdev", "--getsize64", disk)
	out, err := run(ctx, r, c)
	if err != nil {
		return Layout{}, err
	}
	size, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return Layout{}, fmt.Errorf("%s: parse %q: %w", c.display, out, err)
	}
	c = cmd("sfdisk", "--json", disk)
	out, err = run(ctx, r, c)
	if err != nil {
		return Layout{}, fmt.Errorf("%w (%w)", err, ErrNoPartitionTable)
	}
	l, err := parseSfdisk(disk, size, out)
	if err != nil {
		return Layout{}, fmt.Errorf("%s: %w", c.display, err)
	}
	return l, nil
}

// parseSfdisk turns sfdisk --json output into a Layout without filesystem
// fields.
func parseSfdisk(disk string, diskSize int64, out []byte) (Layout, error) {
	var d sfdiskDump
	if err := json.Unmarshal(out, &d); err != nil {
		return Layout{}, fmt.Errorf("parse: %w", err)
	}
	t := d.Table
	l := Layout{Disk: disk, Table: TableType(t.Label), SectorSize: t.SectorSize, DiskSize: diskSize}
	if l.SectorSize == 0 {
		l.SectorSize = 512
	}
	switch l.Table {
	case TableGPT:
		l.FirstUsable = t.FirstLBA * l.SectorSize
		l.LastUsable = (t.LastLBA + 1) * l.SectorSize
	case TableDOS:
		l.FirstUsable = l.SectorSize
		l.LastUsable = min(diskSize, (1<<32)*l.SectorSize)
	default:
		return Layout{}, fmt.Errorf("table %q: %w", t.Label, ErrNoPartitionTable)
	}
	for _, p := range t.Partitions {
		n, err := partitionNumber(disk, p.Node)
		if err != nil {
			return Layout{}, err
		}
		if err := validateDevice(p.Node); err != nil {
			return Layout{}, err
		}
		l.Partitions = append(l.Partitions, Partition{
			Number:   n,
			Path:     p.Node,
			Start:    p.Start * l.SectorSize,
			Size:     p.Size * l.SectorSize,
			Type:     strings.ToUpper(p.Type),
			PartUUID: strings.ToUpper(p.UUID),
			Label:    p.Name,
		})
	}
	if l.Table == TableDOS {
		for i := range l.Partitions {
			l.Partitions[i].Type = strings.ToLower(l.Partitions[i].Type)
		}
	}
	slices.SortFunc(l.Partitions, func(a, b Partition) int { return cmp.Compare(a.Start, b.Start) })
	return l, nil
}

// partitionPath returns the node of partition n of disk: a "p" separates
// them when the disk's name ends in a digit.
func partitionPath(disk string, n int) string {
	if c := disk[len(disk)-1]; c >= '0' && c <= '9' {
		return disk + "p" + strconv.Itoa(n)
	}
	return disk + strconv.Itoa(n)
}

func partitionNumber(disk, node string) (int, error) {
	rest, ok := strings.CutPrefix(node, disk)
	if ok {
		if c := disk[len(disk)-1]; c >= '0' && c <= '9' {
			rest, ok = strings.CutPrefix(rest, "p")
		}
	}
	n, err := strconv.Atoi(rest)
	if !ok || err != nil || n < 1 {
		return 0, fmt.Errorf("partition node %q of %s has no number", node, disk)
	}
	return n, nil
}

// probe fills the filesystem fields of l's partitions from blkid.
func probe(ctx context.Context, r CommandRunner, l *Layout) error {
	var paths []string
	for _, p := range l.Partitions {
		paths = append(paths, p.Path)
	}
	out, err := run(ctx, r, script("blkid", blkidScript, paths...))
	if err != nil {
		return err
	}
	found := parseBlkid(out)
	for i, p := range l.Partitions {
		kv := found[p.Path]
		l.Partitions[i].FSType = FSType(kv["TYPE"])
		l.Partitions[i].UUID = kv["UUID"]
		l.Partitions[i].FSLabel = kv["LABEL"]
	}
	return nil
}

// parseBlkid splits blkid -o export output into key-value maps by DEVNAME.
func parseBlkid(out []byte) map[string]map[string]string {
	res := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			cur = nil
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if k == "DEVNAME" {
			cur = map[string]string{}
			res[v] = cur
			continue
		}
		if cur != nil {
			cur[k] = unescapeBlkid(v)
		}
	}
	return res
}

// unescapeBlkid undoes blkid's backslash escaping of export values.
func unescapeBlkid(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func isESP(p Partition) bool { return p.Type == typeESP || p.Type == dosTypeESP }

func findESP(ps []Partition) int {
	for _, p := range ps {
		if isESP(p) && (p.FSType == FSVFAT || p.FSType == "") {
			return p.Number
		}
	}
	return 0
}

func findRoot(ps []Partition) int {
	var typed []Partition
	for _, p := range ps {
		if rootTypes[p.Type] {
			typed = append(typed, p)
		}
	}
	if len(typed) == 1 {
		return typed[0].Number
	}
	best := Partition{}
	for _, p := range ps {
		switch p.FSType {
		case FSExt2, FSExt3, FSExt4, FSXFS, "btrfs":
		default:
			continue
		}
		if isESP(p) || p.Type == typeXBOOTLDR || strings.EqualFold(p.Label, "boot") || strings.EqualFold(p.FSLabel, "boot") {
			continue
		}
		if p.Size > best.Size || (p.Size == best.Size && p.Number < best.Number) {
			best = p
		}
	}
	return best.Number
}
