package raid

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"bareflow/contract"
)

// seed adds the files of testdata/<dir> matching pattern to f's corpus.
func seed(f *testing.F, pattern string) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		f.Fatal(err)
	}
	var all [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		all = append(all, b)
	}
	return all
}

// checkBounded fails when a parser kept more, or longer, than its bounds
// allow, or produced a size out of range or a string that is not UTF-8.
func checkBounded(t *testing.T, cs []contract.RAIDController) {
	t.Helper()
	if len(cs) > maxControllers {
		t.Fatalf("controllers: got %d, want at most %d", len(cs), maxControllers)
	}
	str := func(what, s string) {
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxField+32 {
			t.Fatalf("%s: got %q, want valid UTF-8 of at most %d runes", what, s, maxField+32)
		}
	}
	size := func(what string, n int64) {
		if n < 0 || n > maxSize {
			t.Fatalf("%s: got %d, want 0 to %d", what, n, int64(maxSize))
		}
	}
	for _, c := range cs {
		for _, s := range []string{c.PCIAddr, c.Driver, c.Vendor, c.Model, c.Serial, c.Firmware, c.Tool} {
			str("controller field", s)
		}
		if len(c.PhysicalDisks) > maxPhysical || len(c.LogicalDisks) > maxLogical {
			t.Fatalf("disks: got %d physical and %d logical, want at most %d and %d", len(c.PhysicalDisks), len(c.LogicalDisks), maxPhysical, maxLogical)
		}
		for _, d := range c.PhysicalDisks {
			for _, s := range []string{d.Enclosure, d.Slot, d.Media, d.Interface, d.Model, d.Serial, d.State} {
				str("physical disk field", s)
			}
			size("physical disk size", d.SizeBytes)
		}
		for _, l := range c.LogicalDisks {
			for _, s := range []string{l.ID, l.Level, l.State} {
				str("logical disk field", s)
			}
			size("logical disk size", l.SizeBytes)
		}
	}
}

func FuzzStorcli(f *testing.F) {
	for _, b := range seed(f, "storcli/*.json") {
		f.Add(b)
	}
	f.Add([]byte(`{"Controllers":[{"Command Status":{"Status":"Success"},"Response Data":{"PD LIST":[{"EID:Slt":7,"Size":[1],"DG":{}}],"VD LIST":"x"}}]}`))
	f.Add([]byte(`{"Controllers":[null,1,"x",{"Command Status":[]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, _ := parseStorcli(b)
		checkBounded(t, cs)
	})
}

func FuzzSSACLI(f *testing.F) {
	for _, b := range seed(f, "ssacli/*.txt") {
		f.Add(b)
	}
	f.Add([]byte("X in Slot 1\n   Array: A\n      Logical Drive: \n         Size: 1e309 GB\n      physicaldrive :\n         Size: -1 TB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, _ := parseSSACLI(b)
		checkBounded(t, cs)
	})
}

func FuzzIRCU(f *testing.F) {
	for _, b := range seed(f, "sas*ircu/*.txt") {
		f.Add(b)
	}
	f.Add([]byte("Controller information\n  Bus : 999999\nIR Volume information\n  Volume ID : 1\nIR volume \nPhysical device information\nDevice is a Hard disk\n  Size (in MB)/(in sectors) : 18446744073709551615/18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		adapters, _ := parseIRCUList(b)
		if len(adapters) > maxControllers {
			t.Fatalf("adapters: got %d, want at most %d", len(adapters), maxControllers)
		}
		c, _ := parseIRCUDisplay(b)
		checkBounded(t, []contract.RAIDController{c})
	})
}

func FuzzMvcli(f *testing.F) {
	hba, pd, vd := seed(f, "mvcli/*.hba.txt"), seed(f, "mvcli/*.pd.txt"), seed(f, "mvcli/*.vd.txt")
	for i := range hba {
		f.Add(hba[i], pd[i], vd[i])
	}
	f.Add([]byte("Adapter ID: 0\nAdapter ID: 1\n"), []byte("Adapter: 7\nPD ID: 3\nSize: 99999999999999999999 K\n"), []byte("id: 0\nPD RAID setup: 3 3 3\nsize: x M\n"))
	f.Fuzz(func(t *testing.T, hba, pd, vd []byte) {
		cs, _ := parseMvcli(hba, pd, vd)
		checkBounded(t, cs)
	})
}

func FuzzArcconf(f *testing.F) {
	for _, b := range seed(f, "arcconf/*.txt") {
		f.Add(b)
	}
	f.Add([]byte("Controllers found: 99999999999\nController information\nLogical Device number \n   Size : 1 PB\nPhysical Device information\n      Device is a Hard drive\n         Transfer Speed : \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, _, _ := parseArcconf(b)
		checkBounded(t, []contract.RAIDController{c})
	})
}

func FuzzMd(f *testing.F) {
	for _, b := range seed(f, "mdadm/*.txt") {
		f.Add(b)
	}
	f.Add([]byte("md0 : active raid1 [0](F) sda[\n      99999999999999999999 blocks [2/1] [U_]\nmd/../x : active\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, members, _ := parseMdstat(b)
		checkBounded(t, []contract.RAIDController{c})
		if len(members) != len(c.LogicalDisks) && members != nil {
			t.Fatalf("members: got %d lists for %d arrays", len(members), len(c.LogicalDisks))
		}
		for _, l := range c.LogicalDisks {
			if !mdName(l.ID) {
				t.Fatalf("array name %q is not a safe md name", l.ID)
			}
		}
		l, ms := parseMdadmDetail(b, "md0")
		checkBounded(t, []contract.RAIDController{{LogicalDisks: []contract.RAIDLogicalDisk{l}, PhysicalDisks: ms}})
	})
}

// FuzzDrivers runs every driver against a runner that answers every
// command with the same hostile output.
func FuzzDrivers(f *testing.F) {
	for _, pattern := range []string{"storcli/*.json", "ssacli/*.txt", "sas3ircu/*.txt", "arcconf/*.txt", "mdadm/*.txt"} {
		for _, b := range seed(f, pattern) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := runnerFunc(func(context.Context, []string) ([]byte, error) { return b, nil })
		for _, d := range Drivers() {
			cs, _ := d.Inventory(context.Background(), r, d.Tools()[0])
			checkBounded(t, cs)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"893.750 GB", "1.2 TB", "488386584 K", "1e300 PB", "0x10 GB", "NaN GB", "..5 MB", "1,024 KB"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, binary bool) {
		n, ok := parseSize(s, binary)
		if n < 0 || n > maxSize || !ok && n != 0 {
			t.Fatalf("parseSize(%q, %v): got %d, %v", s, binary, n, ok)
		}
	})
}

func FuzzNormalizePCIAddr(f *testing.F) {
	for _, s := range []string{"0000:18:00.0", "00:5e:00:00", "0:4b:0:0", "00h:3bh:00h:00h", "ffff:ff:1f.7", "-1:0:0:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := normalizePCIAddr(s)
		if a != "" && normalizePCIAddr(a) != a {
			t.Fatalf("normalizePCIAddr(%q) = %q, which does not normalize to itself", s, a)
		}
		if a != "" && len(a) != len("0000:00:00.0") {
			t.Fatalf("normalizePCIAddr(%q) = %q, want the lspci -D form", s, a)
		}
	})
}

// FuzzVolumeLists feeds hostile output to the readers of the write side:
// the logical drive lists of each tool, lsblk and /sys/block.
func FuzzVolumeLists(f *testing.F) {
	for _, pattern := range []string{"apply/*", "storcli/*.json", "ssacli/*.txt", "sas3ircu/*.txt", "arcconf/*.txt"} {
		for _, b := range seed(f, pattern) {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"Controllers":[{"Command Status":{"Status":"Success"},"Response Data":{"/c0/v":[{}],"/c0/v99999":[],"VD1 Properties":[]}}]}`))
	f.Add([]byte(`{"blockdevices":[{"name":"../x","size":"1e400"},{"name":"sda","size":-1,"wwn":{}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, _ := parseStorcliVolumes(b)
		for _, list := range [][]volumeInfo{vs, parseSSACLIVolumes(b), parseIRCUVolumes(b), parseArcconfVolumes(b)} {
			if len(list) > maxLogical {
				t.Fatalf("volumes: got %d, want at most %d", len(list), maxLogical)
			}
			for _, v := range list {
				if v.SizeBytes < 0 || v.SizeBytes > maxSize || !utf8.ValidString(v.Name+v.ID+v.Device+v.WWN) {
					t.Fatalf("volume %+v out of bounds", v)
				}
			}
		}
		devs, _ := parseLsblk(b)
		for _, d := range devs {
			if !blockName(d.Name) || d.SizeBytes < 0 {
				t.Fatalf("block device %+v out of bounds", d)
			}
		}
		_ = parseSysBlock(b)
	})
}

// FuzzPlan plans hostile specs on hostile inventories: Plan never panics,
// refuses with a *SpecError, or builds command lines whose every word is
// plain (letters, digits and _ . / : = , + @ - ;).
func FuzzPlan(f *testing.F) {
	for _, tc := range planCases(f) {
		spec, _ := json.Marshal(tc.spec)
		inv, _ := json.Marshal(tc.inv)
		f.Add(spec, inv)
	}
	f.Add([]byte(`{"arrays":[{"level":"1","name":"a;b","disks":{"slots":["$(x)","y"]}}]}`),
		[]byte(`{"disks":[{"name":"sd a","size_bytes":1},{"name":"sdb;","size_bytes":1}],"raid_controllers":[{"pci_addr":"0000:01:00.0","tool":"storcli64","physical_disks":[{"enclosure":"1 2","slot":"0","size_bytes":9}]}]}`))
	plain := func(s string) bool {
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:=,+@-;", r)) {
				return false
			}
		}
		return s != ""
	}
	f.Fuzz(func(t *testing.T, specJSON, invJSON []byte) {
		var spec contract.RAIDSpec
		var inv contract.Inventory
		if json.Unmarshal(specJSON, &spec) != nil || json.Unmarshal(invJSON, &inv) != nil {
			return
		}
		l, err := Plan(spec, inv)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("Plan: got %T %v, want a *SpecError", err, err)
			}
			return
		}
		for _, c := range l.Controllers {
			for _, s := range c.Steps {
				for _, a := range s.Argv {
					if !plain(a) {
						t.Fatalf("step %s: word %q is not plain", s, a)
					}
				}
			}
		}
	})
}
