package wipe

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// inspectScript prints what sysfs says of whole disk $1: its queue
// attributes as "attr NAME VALUE" lines, then one "node KIND NAME MAJ:MIN
// PARENT DMUUID DMNAME" line per block device of its tree, depth first:
// the disk, its partitions, and every device stacked on them (holders: md
// arrays, device-mapper targets, and theirs in turn), each followed by its
// own partitions and holders. "-" stands for an empty field. A path that
// is not a whole disk prints "nodisk", or "partition" for a partition.
const inspectScript = `n=$1 b=/sys/block/$1
if [ ! -d "$b" ]; then
	if [ -e "/sys/class/block/$n/partition" ]; then echo partition; else echo nodisk; fi
	exit 0
fi
for a in size ro removable queue/rotational queue/discard_max_bytes queue/discard_granularity queue/logical_block_size; do
	v=; read -r v <"$b/$a" 2>/dev/null
	echo "attr $a ${v:--}"
done
walk() {
	local d k p name dev u m q h
	d=$1 k=$2 p=$3 name=${1##*/}
	dev=; u=; m=
	read -r dev <"$d/dev" 2>/dev/null
	if [ -r "$d/dm/uuid" ]; then
		read -r u <"$d/dm/uuid" 2>/dev/null
		read -r m <"$d/dm/name" 2>/dev/null
	fi
	echo "node $k $name ${dev:--} $p ${u:--} ${m:--}"
	for q in "$d/$name"*; do
		[ -r "$q/partition" ] && walk "$q" part "$name"
	done
	for h in "$d"/holders/*; do
		[ -e "$h" ] && walk "/sys/class/block/${h##*/}" holder "$name"
	done
	return 0
}
walk "$b" disk -`

// node is a block device of a disk's tree.
type node struct {
	// kind is disk, part or holder.
	kind   string
	name   string
	dev    string // major:minor
	parent string // the device it sits on; "" for the disk
	// dmUUID and dmName are a device-mapper target's; empty otherwise.
	dmUUID, dmName string
}

func (n node) isMD() bool {
	return n.kind == "holder" && strings.HasPrefix(n.name, "md") && n.dmUUID == ""
}
func (n node) isDM() bool { return n.kind == "holder" && n.dmUUID != "" }

// diskFacts is what inspectScript printed.
type diskFacts struct {
	name string
	// sizeBytes, from /sys/block/NAME/size (512-byte sectors).
	sizeBytes    int64
	readOnly     bool
	removable    bool
	rotational   bool
	discardMax   int64
	discardGran  int64
	logicalBlock int64
	// nodes are the tree in the order printed: the disk first.
	nodes []node
}

func (f diskFacts) partitions() []node {
	var out []node
	for _, n := range f.nodes {
		if n.kind == "part" && n.parent == f.name {
			out = append(out, n)
		}
	}
	return out
}

func (f diskFacts) holders() []node {
	var out []node
	seen := map[string]bool{}
	for _, n := range f.nodes {
		if n.kind == "holder" && !seen[n.name] {
			seen[n.name] = true
			out = append(out, n)
		}
	}
	return out
}

// devs are the major:minor numbers of every device of the tree.
func (f diskFacts) devs() map[string]string {
	out := map[string]string{}
	for _, n := range f.nodes {
		if n.dev != "" {
			out[n.dev] = n.name
		}
	}
	return out
}

// inspect reads the tree of whole disk name.
func inspect(ctx context.Context, r CommandRunner, name string) (diskFacts, error) {
	out, err := run(ctx, r, script("inspect", inspectScript, name))
	if err != nil {
		return diskFacts{}, err
	}
	return parseInspect(name, out)
}

// parseInspect reads inspectScript's output.
func parseInspect(name string, out []byte) (diskFacts, error) {
	f := diskFacts{name: name}
	for l := range strings.Lines(string(out)) {
		fields := strings.Fields(l)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nodisk":
			return f, fmt.Errorf("/dev/%s: %w", name, ErrNoDisk)
		case "partition":
			return f, fmt.Errorf("/dev/%s is a partition, not a whole disk: %w", name, ErrNoDisk)
		case "attr":
			if len(fields) != 3 {
				continue
			}
			v, _ := strconv.ParseInt(fields[2], 10, 64)
			switch fields[1] {
			case "size":
				f.sizeBytes = v * 512
			case "ro":
				f.readOnly = v == 1
			case "removable":
				f.removable = v == 1
			case "queue/rotational":
				f.rotational = v == 1
			case "queue/discard_max_bytes":
				f.discardMax = v
			case "queue/discard_granularity":
				f.discardGran = v
			case "queue/logical_block_size":
				f.logicalBlock = v
			}
		case "node":
			if len(fields) < 7 {
				continue
			}
			dash := func(s string) string {
				if s == "-" {
					return ""
				}
				return s
			}
			n := node{kind: fields[1], name: fields[2], dev: dash(fields[3]), parent: dash(fields[4]),
				dmUUID: dash(fields[5]), dmName: dash(strings.Join(fields[6:], " "))}
			if !kernelName(n.name) && !strings.HasPrefix(n.name, "dm-") {
				return f, fmt.Errorf("/dev/%s: unexpected device name %q in sysfs", name, shorten(n.name, 40))
			}
			f.nodes = append(f.nodes, n)
		}
	}
	if len(f.nodes) == 0 || f.nodes[0].name != name {
		return f, fmt.Errorf("/dev/%s: sysfs gave no device tree: %s", name, shorten(string(out), 200))
	}
	if f.logicalBlock <= 0 {
		f.logicalBlock = 512
	}
	return f, nil
}

// mount is a line of /proc/self/mountinfo.
type mount struct {
	dev    string // major:minor
	target string
}

// readMounts reads /proc/self/mountinfo.
func readMounts(ctx context.Context, r CommandRunner) ([]mount, error) {
	out, err := run(ctx, r, cmd("cat", "/proc/self/mountinfo"))
	if err != nil {
		return nil, err
	}
	var ms []mount
	for l := range strings.Lines(string(out)) {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		ms = append(ms, mount{dev: f[2], target: unescapeMount(f[4])})
	}
	return ms, nil
}

// unescapeMount undoes the octal escapes (\040 for a space…) of
// /proc/self/mountinfo and /proc/swaps.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readSwaps reads the devices and files of /proc/swaps.
func readSwaps(ctx context.Context, r CommandRunner) ([]string, error) {
	out, err := run(ctx, r, script("swaps", `cat /proc/swaps 2>/dev/null; true`))
	if err != nil {
		return nil, err
	}
	var ss []string
	for i, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if i == 0 || len(f) == 0 {
			continue // the header
		}
		ss = append(ss, unescapeMount(f[0]))
	}
	return ss, nil
}

// usage is what uses a disk's tree: mount points, swap areas.
type usage struct {
	mounts []string // mount targets, innermost last
	swaps  []string
}

// usageOf finds the mounts and swap areas of f's devices.
func usageOf(ctx context.Context, r CommandRunner, f diskFacts) (usage, error) {
	ms, err := readMounts(ctx, r)
	if err != nil {
		return usage{}, err
	}
	ss, err := readSwaps(ctx, r)
	if err != nil {
		return usage{}, err
	}
	devs := f.devs()
	names := map[string]bool{}
	for _, n := range f.nodes {
		names[n.name] = true
		if n.dmName != "" {
			names["mapper/"+n.dmName] = true
		}
	}
	var u usage
	for _, m := range ms {
		if _, ok := devs[m.dev]; ok {
			u.mounts = append(u.mounts, m.target)
		}
	}
	for _, s := range ss {
		if rest, ok := strings.CutPrefix(s, "/dev/"); ok && names[rest] {
			u.swaps = append(u.swaps, s)
		}
	}
	return u, nil
}
