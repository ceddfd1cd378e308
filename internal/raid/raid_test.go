package raid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"bareflow/contract"
)

var update = flag.Bool("update", false, "rewrite testdata/*/*.golden.json")

// Sizes the cases assert, in bytes.
const (
	gib = 1 << 30
	mib = 1 << 20
)

// fakeRunner answers commands from files under testdata. A command it does
// not know fails as a missing program would.
type fakeRunner struct {
	outputs map[string]string // command line → file under testdata
	errs    map[string]error  // command line → error, with no output

	mu  sync.Mutex
	ran []string
}

func (f *fakeRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	cmd := strings.Join(argv, " ")
	f.mu.Lock()
	f.ran = append(f.ran, cmd)
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err, ok := f.errs[cmd]; ok {
		return nil, err
	}
	file, ok := f.outputs[cmd]
	if !ok {
		return nil, fmt.Errorf("exit status 127: %s: not found", argv[0])
	}
	return os.ReadFile(filepath.Join("testdata", file))
}

func (f *fakeRunner) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ran)
}

// golden compares got with testdata/<name>.golden.json, or rewrites that
// file with -update.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s: got\n%s\nwant\n%s", path, b, want)
	}
}

// result is what a golden file holds for a driver case.
type result struct {
	Controllers []contract.RAIDController `json:"controllers"`
	Error       string                    `json:"error,omitempty"`
}

func pdAt(t *testing.T, c contract.RAIDController, enclosure, slot string) contract.RAIDPhysicalDisk {
	t.Helper()
	for _, d := range c.PhysicalDisks {
		if d.Enclosure == enclosure && d.Slot == slot {
			return d
		}
	}
	t.Fatalf("%s: no physical disk %s:%s among %d", c.Model, enclosure, slot, len(c.PhysicalDisks))
	return contract.RAIDPhysicalDisk{}
}

func ldByID(t *testing.T, c contract.RAIDController, id string) contract.RAIDLogicalDisk {
	t.Helper()
	for _, l := range c.LogicalDisks {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("%s: no logical disk %q among %d", c.Model, id, len(c.LogicalDisks))
	return contract.RAIDLogicalDisk{}
}

// expect reports a field that is not what the case says.
func expect[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func countState(c contract.RAIDController, state string) int {
	n := 0
	for _, d := range c.PhysicalDisks {
		if d.State == state {
			n++
		}
	}
	return n
}

func TestDrivers(t *testing.T) {
	tests := map[string]struct {
		drv     Driver
		tool    string
		outputs map[string]string
		golden  string
		wantErr error
		check   func(t *testing.T, cs []contract.RAIDController)
	}{
		"storcli perc h730p mixed states": {
			drv:     megaRAID{},
			tool:    "perccli64",
			outputs: map[string]string{"perccli64 /call show all J": "storcli/perc-h730p-mixed.json"},
			golden:  "storcli/perc-h730p-mixed",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "model", c.Model, "PERC H730P Mini")
				expect(t, "serial", c.Serial, "8A2019X")
				expect(t, "firmware", c.Firmware, "25.5.9.0001")
				expect(t, "pci address", c.PCIAddr, "0000:18:00.0")
				expect(t, "physical disks", len(c.PhysicalDisks), 8)
				d := pdAt(t, c, "32", "0")
				expect(t, "32:0 size", d.SizeBytes, int64(893750*gib/1000))
				expect(t, "32:0 media", d.Media, contract.DiskSSD)
				expect(t, "32:0 interface", d.Interface, "sata")
				expect(t, "32:0 model", d.Model, "SSDSC2KG960G8R")
				expect(t, "32:0 state", d.State, "onln")
				expect(t, "32:2 state", pdAt(t, c, "32", "2").State, "dhs")
				expect(t, "32:4 state", pdAt(t, c, "32", "4").State, "jbod")
				expect(t, "32:4 size", pdAt(t, c, "32", "4").SizeBytes, int64(3998923790221))
				expect(t, "32:5 state", pdAt(t, c, "32", "5").State, "ubad")
				expect(t, "32:6 state", pdAt(t, c, "32", "6").State, "ugood (foreign)")
				expect(t, "32:7 state", pdAt(t, c, "32", "7").State, "ghs")
				expect(t, "32:3 media", pdAt(t, c, "32", "3").Media, contract.DiskHDD)
				expect(t, "32:3 size", pdAt(t, c, "32", "3").SizeBytes, int64(599583876973))
				expect(t, "logical disks", len(c.LogicalDisks), 1)
				l := ldByID(t, c, "0")
				expect(t, "vd 0 level", l.Level, "raid1")
				expect(t, "vd 0 state", l.State, "optl")
				expect(t, "vd 0 size", l.SizeBytes, int64(959656755200))
			},
		},
		"storcli two controllers degraded and rebuilding": {
			drv:     megaRAID{},
			tool:    "storcli64",
			outputs: map[string]string{"storcli64 /call show all J": "storcli/two-controllers-degraded.json"},
			golden:  "storcli/two-controllers-degraded",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 2)
				c := cs[0]
				expect(t, "c0 model", c.Model, "AVAGO MegaRAID SAS 9361-8i")
				expect(t, "c0 pci address", c.PCIAddr, "0000:03:00.0")
				expect(t, "c0 physical disks", len(c.PhysicalDisks), 8)
				expect(t, "252:1 state", pdAt(t, c, "252", "1").State, "rbld")
				expect(t, "252:4 state", pdAt(t, c, "252", "4").State, "offln")
				expect(t, "252:6 state", pdAt(t, c, "252", "6").State, "ubad")
				expect(t, "252:7 state", pdAt(t, c, "252", "7").State, "ghs")
				expect(t, "c0 logical disks", len(c.LogicalDisks), 2)
				expect(t, "vd 0 state", ldByID(t, c, "0").State, "dgrd")
				expect(t, "vd 1 level", ldByID(t, c, "1").Level, "raid5")
				expect(t, "vd 1 size", ldByID(t, c, "1").SizeBytes, int64(11998970393919))
				c = cs[1]
				expect(t, "c1 model", c.Model, "MegaRAID 9460-16i")
				expect(t, "c1 firmware", c.Firmware, "51.10.0-2880")
				expect(t, "c1 pci address", c.PCIAddr, "0000:5e:00.0")
				expect(t, "c1 physical disks", len(c.PhysicalDisks), 4)
				expect(t, "134:2 state", pdAt(t, c, "134", "2").State, "jbod")
				expect(t, "134:0 size", pdAt(t, c, "134", "0").SizeBytes, int64(1918647790469))
			},
		},
		"storcli 7.27 with GiB and TiB units": {
			drv:     megaRAID{},
			tool:    "storcli64",
			outputs: map[string]string{"storcli64 /call show all J": "storcli/mr416i-gib-units.json"},
			golden:  "storcli/mr416i-gib-units",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "pci address", c.PCIAddr, "0000:a1:00.0")
				expect(t, "physical disks", len(c.PhysicalDisks), 9)
				expect(t, "251:9 state", pdAt(t, c, "251", "9").State, "ugood")
				expect(t, "vd 239 level", ldByID(t, c, "239").Level, "raid10")
				expect(t, "vd 239 size", ldByID(t, c, "239").SizeBytes, int64(3838395092566))
				expect(t, "vd 238 state", ldByID(t, c, "238").State, "pdgd")
				expect(t, "vd 238 size", ldByID(t, c, "238").SizeBytes, int64(2878521441518))
			},
		},
		"storcli one controller failed": {
			drv:     megaRAID{},
			tool:    "storcli64",
			outputs: map[string]string{"storcli64 /call show all J": "storcli/partial-failure.json"},
			golden:  "storcli/partial-failure",
			wantErr: ErrToolFailed,
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "model", c.Model, "PERC H330 Mini")
				expect(t, "physical disks", len(c.PhysicalDisks), 2)
				expect(t, "jbod disks", countState(c, "jbod"), 2)
				expect(t, "logical disks", len(c.LogicalDisks), 0)
				expect(t, "32:1 size", pdAt(t, c, "32", "1").SizeBytes, int64(1998912139297))
			},
		},
		"ssacli gen10 spare, predictive failure and hba mode": {
			drv:     smartArray{},
			tool:    "ssacli",
			outputs: map[string]string{"ssacli ctrl all show config detail": "ssacli/p408i-gen10.txt"},
			golden:  "ssacli/p408i-gen10",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "model", c.Model, "HPE Smart Array P408i-a SR Gen10")
				expect(t, "serial", c.Serial, "PEYHB0BRHBW1GC")
				expect(t, "firmware", c.Firmware, "3.53")
				expect(t, "pci address", c.PCIAddr, "0000:5c:00.0")
				expect(t, "physical disks", len(c.PhysicalDisks), 6)
				d := pdAt(t, c, "1I:1", "1")
				expect(t, "1I:1:1 size", d.SizeBytes, int64(480_000_000_000))
				expect(t, "1I:1:1 media", d.Media, contract.DiskSSD)
				expect(t, "1I:1:1 interface", d.Interface, "sata")
				expect(t, "1I:1:1 model", d.Model, "ATA MK000480GWSSC")
				expect(t, "1I:1:1 serial", d.Serial, "S45PNA0M812907")
				expect(t, "1I:1:1 state", d.State, "ok")
				expect(t, "1I:1:3 state", pdAt(t, c, "1I:1", "3").State, "spare")
				expect(t, "2I:2:5 state", pdAt(t, c, "2I:2", "5").State, "predictive failure")
				expect(t, "2I:2:5 size", pdAt(t, c, "2I:2", "5").SizeBytes, int64(1_200_000_000_000))
				expect(t, "2I:2:5 media", pdAt(t, c, "2I:2", "5").Media, contract.DiskHDD)
				expect(t, "2I:2:6 state", pdAt(t, c, "2I:2", "6").State, "unassigned")
				expect(t, "2I:2:7 state", pdAt(t, c, "2I:2", "7").State, "hba mode")
				expect(t, "logical disks", len(c.LogicalDisks), 1)
				l := ldByID(t, c, "1")
				expect(t, "ld 1 level", l.Level, "raid1")
				expect(t, "ld 1 state", l.State, "ok")
				expect(t, "ld 1 size", l.SizeBytes, int64(480037757256))
			},
		},
		"hpssacli two controllers, one without pci address": {
			drv:     smartArray{},
			tool:    "hpssacli",
			outputs: map[string]string{"hpssacli ctrl all show config detail": "ssacli/gen8-two-controllers.txt"},
			golden:  "ssacli/gen8-two-controllers",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 2)
				c := cs[0]
				expect(t, "c0 model", c.Model, "Smart Array P420i")
				expect(t, "c0 pci address", c.PCIAddr, "0000:02:00.0")
				expect(t, "c0 physical disks", len(c.PhysicalDisks), 5)
				expect(t, "1I:1:2 state", pdAt(t, c, "1I:1", "2").State, "failed")
				expect(t, "2I:1:5 state", pdAt(t, c, "2I:1", "5").State, "rebuilding")
				l := ldByID(t, c, "1")
				expect(t, "ld 1 level", l.Level, "raid10")
				expect(t, "ld 1 state", l.State, "recovering, 12% complete")
				expect(t, "ld 1 size", l.SizeBytes, int64(599899557069))
				c = cs[1]
				expect(t, "c1 model", c.Model, "Smart Array P822")
				expect(t, "c1 pci address", c.PCIAddr, "")
				expect(t, "c1 physical disks", len(c.PhysicalDisks), 4)
				expect(t, "6I:1:5 state", pdAt(t, c, "6I:1", "5").State, "failed")
				expect(t, "c1 ld 1 level", ldByID(t, c, "1").Level, "raid5")
				expect(t, "c1 ld 1 size", ldByID(t, c, "1").SizeBytes, int64(1209462790554))
			},
		},
		"ssacli without controllers": {
			drv:     smartArray{},
			tool:    "ssacli",
			outputs: map[string]string{"ssacli ctrl all show config detail": "ssacli/no-controller.txt"},
			golden:  "ssacli/no-controller",
			wantErr: ErrToolFailed,
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 0)
			},
		},
		"sas3ircu it and ir adapters": {
			drv:  sasIRCU{gen: 3},
			tool: "sas3ircu",
			outputs: map[string]string{
				"sas3ircu LIST":      "sas3ircu/two-hba.list.txt",
				"sas3ircu 0 DISPLAY": "sas3ircu/two-hba.display0.txt",
				"sas3ircu 1 DISPLAY": "sas3ircu/two-hba.display1.txt",
			},
			golden: "sas3ircu/two-hba",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 2)
				c := cs[0]
				expect(t, "c0 model", c.Model, "SAS3008")
				expect(t, "c0 firmware", c.Firmware, "16.17.01.00")
				expect(t, "c0 pci address", c.PCIAddr, "0000:19:00.0")
				expect(t, "c0 physical disks", len(c.PhysicalDisks), 4)
				expect(t, "c0 logical disks", len(c.LogicalDisks), 0)
				d := pdAt(t, c, "2", "0")
				expect(t, "2:0 size", d.SizeBytes, int64(1_200_243_695_616))
				expect(t, "2:0 media", d.Media, contract.DiskHDD)
				expect(t, "2:0 interface", d.Interface, "sas")
				expect(t, "2:0 state", d.State, "ready")
				expect(t, "2:2 media", pdAt(t, c, "2", "2").Media, contract.DiskSSD)
				expect(t, "2:3 state", pdAt(t, c, "2", "3").State, "available")
				c = cs[1]
				expect(t, "c1 pci address", c.PCIAddr, "0000:3b:00.0")
				l := ldByID(t, c, "323")
				expect(t, "volume 323 level", l.Level, "raid1")
				expect(t, "volume 323 state", l.State, "okay")
				expect(t, "volume 323 size", l.SizeBytes, int64(456809*mib))
				expect(t, "1:0 state", pdAt(t, c, "1", "0").State, "optimal")
				expect(t, "1:2 state", pdAt(t, c, "1", "2").State, "hot spare")
				expect(t, "1:2 size", pdAt(t, c, "1", "2").SizeBytes, int64(480_103_981_056))
			},
		},
		"sas2ircu degraded volume with rebuilding and failed disks": {
			drv:  sasIRCU{gen: 2},
			tool: "sas2ircu",
			outputs: map[string]string{
				"sas2ircu LIST":      "sas2ircu/degraded-ir.list.txt",
				"sas2ircu 0 DISPLAY": "sas2ircu/degraded-ir.display0.txt",
			},
			golden: "sas2ircu/degraded-ir",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "pci address", c.PCIAddr, "0000:04:00.0")
				expect(t, "physical disks", len(c.PhysicalDisks), 7)
				expect(t, "logical disks", len(c.LogicalDisks), 2)
				expect(t, "volume 79 state", ldByID(t, c, "79").State, "degraded")
				expect(t, "volume 79 size", ldByID(t, c, "79").SizeBytes, int64(952720*mib))
				expect(t, "volume 78 level", ldByID(t, c, "78").Level, "raid10")
				expect(t, "1:1 state", pdAt(t, c, "1", "1").State, "rebuilding")
				expect(t, "1:2 state", pdAt(t, c, "1", "2").State, "failed")
				expect(t, "1:2 size", pdAt(t, c, "1", "2").SizeBytes, int64(1_000_204_886_016))
			},
		},
		"mvcli boss-s1": {
			drv:  marvell{},
			tool: "mvcli",
			outputs: map[string]string{
				"mvcli info -o hba": "mvcli/boss-s1.hba.txt",
				"mvcli info -o pd":  "mvcli/boss-s1.pd.txt",
				"mvcli info -o vd":  "mvcli/boss-s1.vd.txt",
			},
			golden: "mvcli/boss-s1",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "model", c.Model, "Marvell 88SE9230")
				expect(t, "firmware", c.Firmware, "2.5.13.3024")
				expect(t, "physical disks", len(c.PhysicalDisks), 2)
				d := pdAt(t, c, "", "1")
				expect(t, "pd 1 size", d.SizeBytes, int64(240_057_409_536))
				expect(t, "pd 1 media", d.Media, contract.DiskSSD)
				expect(t, "pd 1 serial", d.Serial, "2035290C4E2F")
				l := ldByID(t, c, "0")
				expect(t, "vd 0 level", l.Level, "raid1")
				expect(t, "vd 0 state", l.State, "functional")
				expect(t, "vd 0 size", l.SizeBytes, int64(228872*mib))
			},
		},
		"mvcli older build, degraded": {
			drv:  marvell{},
			tool: "mvcli",
			outputs: map[string]string{
				"mvcli info -o hba": "mvcli/legacy-degraded.hba.txt",
				"mvcli info -o pd":  "mvcli/legacy-degraded.pd.txt",
				"mvcli info -o vd":  "mvcli/legacy-degraded.vd.txt",
			},
			golden: "mvcli/legacy-degraded",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "model", c.Model, "Marvell 88SE9128")
				expect(t, "physical disks", len(c.PhysicalDisks), 1)
				d := pdAt(t, c, "", "0")
				expect(t, "pd 0 state", d.State, "idle")
				expect(t, "pd 0 media", d.Media, contract.DiskHDD)
				expect(t, "pd 0 size", d.SizeBytes, int64(500_107_862_016))
				expect(t, "vd 0 state", ldByID(t, c, "0").State, "degrade")
			},
		},
		"arcconf two controllers, raid and hba": {
			drv:  arcconf{},
			tool: "arcconf",
			outputs: map[string]string{
				"arcconf GETCONFIG 1 AL": "arcconf/smartraid-two.c1.txt",
				"arcconf GETCONFIG 2 AL": "arcconf/smartraid-two.c2.txt",
			},
			golden: "arcconf/smartraid-two",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 2)
				c := cs[0]
				expect(t, "c0 model", c.Model, "Adaptec SmartRAID 3154-8i")
				expect(t, "c0 serial", c.Serial, "8A4720B3F61")
				expect(t, "c0 firmware", c.Firmware, "4.72")
				expect(t, "c0 pci address", c.PCIAddr, "0000:41:00.0")
				expect(t, "c0 physical disks", len(c.PhysicalDisks), 9)
				d := pdAt(t, c, "0", "0")
				expect(t, "0,0 model", d.Model, "INTEL SSDSC2KB240G8")
				expect(t, "0,0 media", d.Media, contract.DiskSSD)
				expect(t, "0,0 interface", d.Interface, "sata")
				expect(t, "0,0 size", d.SizeBytes, int64(228936*mib))
				expect(t, "0,2 state", pdAt(t, c, "0", "2").State, "hot spare")
				expect(t, "0,3 state", pdAt(t, c, "0", "3").State, "ready")
				expect(t, "0,3 size", pdAt(t, c, "0", "3").SizeBytes, int64(3815447*mib))
				expect(t, "0,4 model", pdAt(t, c, "0", "4").Model, "SEAGATE ST900MM0168")
				expect(t, "0,6 state", pdAt(t, c, "0", "6").State, "rebuilding")
				expect(t, "0,8 state", pdAt(t, c, "0", "8").State, "failed")
				expect(t, "ld 0 level", ldByID(t, c, "0").Level, "raid1")
				expect(t, "ld 0 size", ldByID(t, c, "0").SizeBytes, int64(228902*mib))
				expect(t, "ld 1 state", ldByID(t, c, "1").State, "degraded")
				expect(t, "ld 1 level", ldByID(t, c, "1").Level, "raid5")
				c = cs[1]
				expect(t, "c1 model", c.Model, "Adaptec HBA 1100-8i")
				expect(t, "c1 pci address", c.PCIAddr, "0000:c3:00.0")
				expect(t, "c1 pass-through disks", countState(c, "raw (pass through)"), 2)
				expect(t, "c1 logical disks", len(c.LogicalDisks), 0)
			},
		},
		"arcconf older layout": {
			drv:     arcconf{},
			tool:    "arcconf",
			outputs: map[string]string{"arcconf GETCONFIG 1 AL": "arcconf/legacy-5805.txt"},
			golden:  "arcconf/legacy-5805",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "model", c.Model, "Adaptec 5805")
				expect(t, "firmware", c.Firmware, "5.2-0 (18512)")
				expect(t, "physical disks", len(c.PhysicalDisks), 5)
				expect(t, "0,1 state", pdAt(t, c, "0", "1").State, "failed")
				expect(t, "0,4 interface", pdAt(t, c, "0", "4").Interface, "sata")
				expect(t, "0,0 model", pdAt(t, c, "0", "0").Model, "SEAGATE ST31000640SS")
				expect(t, "0,0 size", pdAt(t, c, "0", "0").SizeBytes, int64(953869*mib))
				l := ldByID(t, c, "0")
				expect(t, "ld 0 level", l.Level, "raid10")
				expect(t, "ld 0 state", l.State, "degraded")
				expect(t, "ld 0 size", l.SizeBytes, int64(1904630*mib))
			},
		},
		"mdadm degraded raid5 recovering": {
			drv:  mdRAID{},
			tool: "mdadm",
			outputs: map[string]string{
				"cat /proc/mdstat":        "mdadm/degraded.mdstat.txt",
				"mdadm --detail /dev/md0": "mdadm/degraded.md0.txt",
				"mdadm --detail /dev/md1": "mdadm/degraded.md1.txt",
			},
			golden: "mdadm/degraded",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "model", c.Model, "Linux md")
				expect(t, "tool", c.Tool, "mdadm")
				expect(t, "logical disks", len(c.LogicalDisks), 2)
				l := ldByID(t, c, "md1")
				expect(t, "md1 level", l.Level, "raid5")
				expect(t, "md1 state", l.State, "clean, degraded, recovering")
				expect(t, "md1 size", l.SizeBytes, int64(3906764800*1024))
				expect(t, "md0 state", ldByID(t, c, "md0").State, "clean")
				expect(t, "physical disks", len(c.PhysicalDisks), 6)
				expect(t, "sdc1 state", pdAt(t, c, "md1", "sdc1").State, "faulty")
				expect(t, "sdd1 state", pdAt(t, c, "md1", "sdd1").State, "spare rebuilding")
				expect(t, "sde2 state", pdAt(t, c, "md0", "sde2").State, "active sync")
			},
		},
		"mdstat alone": {
			drv:     mdRAID{},
			tool:    "cat",
			outputs: map[string]string{"cat /proc/mdstat": "mdadm/degraded.mdstat.txt"},
			golden:  "mdadm/mdstat-only",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "tool", c.Tool, "mdstat")
				expect(t, "md1 state", ldByID(t, c, "md1").State, "active, degraded, recovery")
				expect(t, "md1 size", ldByID(t, c, "md1").SizeBytes, int64(3906764800*1024))
				expect(t, "sdc1 state", pdAt(t, c, "md1", "sdc1").State, "faulty")
				expect(t, "sdd1 state", pdAt(t, c, "md1", "sdd1").State, "active")
				expect(t, "physical disks", len(c.PhysicalDisks), 6)
			},
		},
		"mdstat with an inactive array": {
			drv:     mdRAID{},
			tool:    "cat",
			outputs: map[string]string{"cat /proc/mdstat": "mdadm/inactive.mdstat.txt"},
			golden:  "mdadm/inactive",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				l := ldByID(t, c, "md127")
				expect(t, "md127 state", l.State, "inactive")
				expect(t, "md127 level", l.Level, "")
				expect(t, "md127 size", l.SizeBytes, int64(1953262600*1024))
				expect(t, "md126 state", ldByID(t, c, "md126").State, "active (auto-read-only), resync")
				expect(t, "md126 level", ldByID(t, c, "md126").Level, "raid10")
				expect(t, "spares", countState(c, "spare"), 2)
			},
		},
		"mdstat without arrays": {
			drv:     mdRAID{},
			tool:    "mdadm",
			outputs: map[string]string{"cat /proc/mdstat": "mdadm/empty.mdstat.txt"},
			golden:  "mdadm/empty",
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 0)
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &fakeRunner{outputs: tc.outputs}
			cs, err := tc.drv.Inventory(context.Background(), r, tc.tool)
			if tc.wantErr == nil && err != nil {
				t.Errorf("Inventory: got error %v, want none", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Inventory: got error %v, want %v", err, tc.wantErr)
			}
			res := result{Controllers: cs}
			if err != nil {
				res.Error = err.Error()
			}
			golden(t, tc.golden, res)
			tc.check(t, cs)
			for _, cmd := range r.commands() {
				if _, ok := tc.outputs[cmd]; !ok {
					t.Errorf("ran %q, which the case does not expect", cmd)
				}
			}
		})
	}
}

// pciDev is a PCI function as the inventory's lspci reader gives it.
func pciDev(addr, vendorID, deviceID, driver, vendor, device string) contract.PCIDevice {
	return contract.PCIDevice{Addr: addr, VendorID: vendorID, DeviceID: deviceID, Driver: driver, Vendor: vendor, Device: device, Class: "RAID bus controller", ClassID: "0104"}
}

func haveOnly(tools ...string) func(string) bool {
	return func(t string) bool { return slices.Contains(tools, t) }
}

func TestInventory(t *testing.T) {
	nic := contract.PCIDevice{Addr: "0000:01:00.0", VendorID: "8086", DeviceID: "1521", Driver: "igb", Class: "Ethernet controller", ClassID: "0200"}
	h730 := pciDev("0000:18:00.0", "1000", "005d", "megaraid_sas", "Broadcom / LSI", "MegaRAID SAS-3 3108 [Invader]")
	tests := map[string]struct {
		pci       []contract.PCIDevice
		have      func(string) bool
		outputs   map[string]string
		errs      map[string]error
		ctx       func() context.Context
		check     func(t *testing.T, cs []contract.RAIDController)
		warnings  []string // each must be a prefix of one warning, in order
		wantRan   []string
		forbidRan []string
	}{
		"megaraid read with perccli, matched by pci address": {
			pci:     []contract.PCIDevice{nic, h730},
			have:    haveOnly("perccli64"),
			outputs: map[string]string{"perccli64 /call show all J": "storcli/perc-h730p-mixed.json"},
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				c := cs[0]
				expect(t, "tool", c.Tool, "perccli64")
				expect(t, "model", c.Model, "PERC H730P Mini")
				expect(t, "pci address", c.PCIAddr, "0000:18:00.0")
				expect(t, "driver", c.Driver, "megaraid_sas")
				expect(t, "vendor", c.Vendor, "Broadcom / LSI")
				expect(t, "physical disks", len(c.PhysicalDisks), 8)
			},
			wantRan: []string{"perccli64 /call show all J"},
		},
		"no storcli in the ramdisk": {
			pci:  []contract.PCIDevice{h730},
			have: haveOnly(),
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				expect(t, "tool", cs[0].Tool, "")
				expect(t, "model", cs[0].Model, "MegaRAID SAS-3 3108 [Invader]")
				expect(t, "pci address", cs[0].PCIAddr, "0000:18:00.0")
			},
			warnings: []string{"no storcli/perccli in the ramdisk for MegaRAID SAS-3 3108 [Invader] at 0000:18:00.0"},
		},
		"only MegaCli64 in the ramdisk": {
			pci:      []contract.PCIDevice{h730},
			have:     haveOnly("MegaCli64"),
			warnings: []string{"no storcli/perccli in the ramdisk for MegaRAID SAS-3 3108 [Invader] (MegaCli64 is present but not read) at 0000:18:00.0"},
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
			},
		},
		"storcli fails to run": {
			pci:  []contract.PCIDevice{h730},
			have: haveOnly("storcli64", "storcli"),
			errs: map[string]error{"storcli64 /call show all J": errors.New("exit status 1")},
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				expect(t, "tool", cs[0].Tool, "")
				expect(t, "pci address", cs[0].PCIAddr, "0000:18:00.0")
			},
			warnings:  []string{"storcli64: run storcli64 /call show all J: exit status 1"},
			forbidRan: []string{"storcli /call show all J"},
		},
		"two megaraid controllers paired by address whatever the order": {
			pci: []contract.PCIDevice{
				pciDev("0000:5e:00.0", "1000", "0014", "megaraid_sas", "Broadcom / LSI", "MegaRAID Tri-Mode SAS3516"),
				pciDev("0000:03:00.0", "1000", "005d", "megaraid_sas", "Broadcom / LSI", "MegaRAID SAS-3 3108 [Invader]"),
			},
			have:    haveOnly("storcli64"),
			outputs: map[string]string{"storcli64 /call show all J": "storcli/two-controllers-degraded.json"},
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 2)
				expect(t, "c0 model", cs[0].Model, "AVAGO MegaRAID SAS 9361-8i")
				expect(t, "c0 pci address", cs[0].PCIAddr, "0000:03:00.0")
				expect(t, "c1 model", cs[1].Model, "MegaRAID 9460-16i")
				expect(t, "c1 pci address", cs[1].PCIAddr, "0000:5e:00.0")
			},
		},
		"smart array without an address paired in order": {
			pci: []contract.PCIDevice{
				pciDev("0000:02:00.0", "103c", "323b", "hpsa", "Hewlett-Packard Company", "Smart Array Gen8 Controllers"),
				pciDev("0000:08:00.0", "103c", "323b", "hpsa", "Hewlett-Packard Company", "Smart Array Gen8 Controllers"),
			},
			have:    haveOnly("ssacli"),
			outputs: map[string]string{"ssacli ctrl all show config detail": "ssacli/gen8-two-controllers.txt"},
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 2)
				expect(t, "c0 model", cs[0].Model, "Smart Array P420i")
				expect(t, "c0 pci address", cs[0].PCIAddr, "0000:02:00.0")
				expect(t, "c1 model", cs[1].Model, "Smart Array P822")
				expect(t, "c1 pci address", cs[1].PCIAddr, "0000:08:00.0")
				expect(t, "c1 driver", cs[1].Driver, "hpsa")
			},
		},
		"smartpqi split between ssacli and arcconf by subsystem": {
			pci: []contract.PCIDevice{
				func() contract.PCIDevice {
					d := pciDev("0000:5c:00.0", "9005", "028f", "smartpqi", "Adaptec", "Smart Storage PQI SAS")
					d.SubVendor = "Hewlett Packard Enterprise"
					return d
				}(),
				func() contract.PCIDevice {
					d := pciDev("0000:41:00.0", "9005", "028f", "smartpqi", "Adaptec", "Smart Storage PQI SAS")
					d.SubVendor = "Adaptec"
					return d
				}(),
			},
			have: haveOnly("ssacli", "arcconf"),
			outputs: map[string]string{
				"ssacli ctrl all show config detail": "ssacli/p408i-gen10.txt",
				"arcconf GETCONFIG 1 AL":             "arcconf/legacy-5805.txt",
			},
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 2)
				expect(t, "c0 tool", cs[0].Tool, "ssacli")
				expect(t, "c0 pci address", cs[0].PCIAddr, "0000:5c:00.0")
				expect(t, "c1 tool", cs[1].Tool, "arcconf")
				expect(t, "c1 model", cs[1].Model, "Adaptec 5805")
				expect(t, "c1 pci address", cs[1].PCIAddr, "0000:41:00.0")
			},
		},
		"sas3ircu reports one of two adapters": {
			pci: []contract.PCIDevice{
				pciDev("0000:19:00.0", "1000", "0097", "mpt3sas", "Broadcom / LSI", "SAS3008 PCI-Express Fusion-MPT SAS-3"),
				pciDev("0000:3b:00.0", "1000", "0097", "mpt3sas", "Broadcom / LSI", "SAS3008 PCI-Express Fusion-MPT SAS-3"),
				pciDev("0000:d8:00.0", "1000", "00ac", "mpt3sas", "Broadcom / LSI", "SAS3416 Fusion-MPT Tri-Mode I/O Controller Chip (IOC)"),
			},
			have: haveOnly("sas3ircu", "sas2ircu"),
			outputs: map[string]string{
				"sas3ircu LIST":      "sas3ircu/two-hba.list.txt",
				"sas3ircu 0 DISPLAY": "sas3ircu/two-hba.display0.txt",
				"sas3ircu 1 DISPLAY": "sas3ircu/two-hba.display1.txt",
			},
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 3)
				expect(t, "c2 tool", cs[2].Tool, "")
				expect(t, "c2 pci address", cs[2].PCIAddr, "0000:d8:00.0")
				expect(t, "c1 logical disks", len(cs[1].LogicalDisks), 1)
			},
			warnings:  []string{"sas3ircu did not report SAS3416 Fusion-MPT Tri-Mode I/O Controller Chip (IOC) at 0000:d8:00.0"},
			forbidRan: []string{"sas2ircu LIST"},
		},
		"marvell on ahci paired in order, md alongside": {
			pci:  []contract.PCIDevice{pciDev("0000:65:00.0", "1b4b", "9230", "ahci", "Marvell Technology Group Ltd.", "88SE9230 PCIe 2.0 x2 4-port SATA 6 Gb/s RAID Controller")},
			have: haveOnly("mvcli", "cat", "mdadm"),
			outputs: map[string]string{
				"mvcli info -o hba":       "mvcli/boss-s1.hba.txt",
				"mvcli info -o pd":        "mvcli/boss-s1.pd.txt",
				"mvcli info -o vd":        "mvcli/boss-s1.vd.txt",
				"cat /proc/mdstat":        "mdadm/degraded.mdstat.txt",
				"mdadm --detail /dev/md0": "mdadm/degraded.md0.txt",
				"mdadm --detail /dev/md1": "mdadm/degraded.md1.txt",
			},
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 2)
				expect(t, "c0 model", cs[0].Model, "Marvell 88SE9230")
				expect(t, "c0 pci address", cs[0].PCIAddr, "0000:65:00.0")
				expect(t, "c0 driver", cs[0].Driver, "ahci")
				expect(t, "c1 model", cs[1].Model, "Linux md")
				expect(t, "c1 pci address", cs[1].PCIAddr, "")
			},
		},
		"md only, without arrays": {
			have:    haveOnly("cat", "mdadm"),
			outputs: map[string]string{"cat /proc/mdstat": "mdadm/empty.mdstat.txt"},
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 0)
			},
			wantRan: []string{"cat /proc/mdstat"},
		},
		"canceled before running": {
			pci:  []contract.PCIDevice{h730},
			have: haveOnly("storcli64"),
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			check: func(t *testing.T, cs []contract.RAIDController) {
				expect(t, "controllers", len(cs), 1)
				expect(t, "tool", cs[0].Tool, "")
			},
			warnings:  []string{"storcli64 not run: context canceled"},
			forbidRan: []string{"storcli64 /call show all J"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			r := &fakeRunner{outputs: tc.outputs, errs: tc.errs}
			cs, warnings := Inventory(ctx, r, tc.pci, tc.have)
			tc.check(t, cs)
			if len(warnings) != len(tc.warnings) {
				t.Errorf("warnings: got %q, want %d starting with %q", warnings, len(tc.warnings), tc.warnings)
			} else {
				for i, w := range tc.warnings {
					if !strings.HasPrefix(warnings[i], w) {
						t.Errorf("warning %d: got %q, want it to start with %q", i, warnings[i], w)
					}
				}
			}
			ran := r.commands()
			for _, cmd := range tc.wantRan {
				if !slices.Contains(ran, cmd) {
					t.Errorf("commands: got %q, want %q among them", ran, cmd)
				}
			}
			for _, cmd := range tc.forbidRan {
				if slices.Contains(ran, cmd) {
					t.Errorf("commands: got %q, want no %q", ran, cmd)
				}
			}
		})
	}
}

func TestHandles(t *testing.T) {
	hpe := pciDev("0000:5c:00.0", "9005", "028f", "smartpqi", "Adaptec", "Smart Storage PQI SAS")
	hpe.SubVendor = "103c"
	tests := map[string]struct {
		dev  contract.PCIDevice
		want string // the driver's Name, or "" for none
	}{
		"perc by driver":               {pciDev("0000:18:00.0", "1000", "005d", "megaraid_sas", "", ""), "megaraid"},
		"aero without a driver":        {pciDev("0000:18:00.0", "0x1000", "0x10E2", "", "", ""), "megaraid"},
		"hba330":                       {pciDev("0000:19:00.0", "1000", "0097", "mpt3sas", "", ""), "sas3ircu"},
		"sas2008 on mpt3sas":           {pciDev("0000:04:00.0", "1000", "0072", "mpt3sas", "", ""), "sas2ircu"},
		"gen10 smart array":            {hpe, "smartarray"},
		"smartraid":                    {pciDev("0000:41:00.0", "9005", "028f", "smartpqi", "", ""), "arcconf"},
		"aacraid":                      {pciDev("0000:03:00.0", "9005", "028b", "aacraid", "", ""), "arcconf"},
		"p410i by class":               {pciDev("0000:05:00.0", "103c", "323a", "", "", ""), "smartarray"},
		"boss-s1":                      {pciDev("0000:65:00.0", "1b4b", "9230", "ahci", "", ""), "marvell"},
		"intel ahci is not a raid one": {pciDev("0000:00:17.0", "8086", "a352", "ahci", "", ""), ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ""
			for _, d := range Drivers() {
				if d.Handles(tc.dev) {
					got = d.Name()
					break
				}
			}
			if got != tc.want {
				t.Errorf("first driver handling %+v: got %q, want %q", tc.dev, got, tc.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := map[string]struct {
		in     string
		binary bool
		want   int64
		ok     bool
	}{
		"storcli gb":          {"893.750 GB", true, 959656755200, true},
		"storcli tb":          {"3.637 TB", true, 3998923790221, true},
		"storcli gib":         {"744.687 GiB", true, 799601577689, true},
		"storcli kb":          {"0 KB", true, 0, true},
		"ssacli drive":        {"480 GB", false, 480_000_000_000, true},
		"ssacli drive tb":     {"1.2 TB", false, 1_200_000_000_000, true},
		"gib whatever binary": {"1 GiB", false, gib, true},
		"mvcli k":             {"488386584 K", true, 500107862016, true},
		"arcconf mb no space": {"228936MB", true, 228936 * mib, true},
		"with sectors":        {"13.972 TB [0x6fc7cd2af Sectors]", true, 15362376463286, true},
		"bytes":               {"512 B", true, 512, true},
		"empty":               {"", true, 0, false},
		"negative":            {"-1 GB", true, 0, false},
		"unknown unit":        {"12 parsecs", true, 0, false},
		"too large":           {"9999999 PB", true, 0, false},
		"no number":           {"GB", true, 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := parseSize(tc.in, tc.binary)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parseSize(%q, %v): got %d, %v, want %d, %v", tc.in, tc.binary, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestNormalizePCIAddr(t *testing.T) {
	tests := map[string]string{
		"0000:18:00.0":    "0000:18:00.0",
		"18:00.0":         "0000:18:00.0",
		"00:5e:00:00":     "0000:5e:00.0",
		"0:4b:0:0":        "0000:4b:00.0",
		"00h:3bh:00h:00h": "0000:3b:00.0",
		"0000:5C:00.0":    "0000:5c:00.0",
		"":                "",
		"garbage":         "",
		"00:00:20:00":     "",
		"1:2:3:4:5":       "",
	}
	for in, want := range tests {
		if got := normalizePCIAddr(in); got != want {
			t.Errorf("normalizePCIAddr(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeLevel(t *testing.T) {
	tests := map[string]string{
		"RAID1": "raid1", "1": "raid1", "1+0": "raid10", "RAID 1+0": "raid10", "RAID10": "raid10",
		"raid5": "raid5", "1 (ADM)": "raid1adm", "1+0 (ADM)": "raid10adm", "RAID1E": "raid1e",
		"linear": "linear", "Simple_Volume": "simple_volume", "": "",
	}
	for in, want := range tests {
		if got := normalizeLevel(in); got != want {
			t.Errorf("normalizeLevel(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestClean(t *testing.T) {
	tests := map[string]string{
		"  ST600MM0099     ":     "ST600MM0099",
		"ATA     MK000480":       "ATA MK000480",
		"a\x00b\x1b[31mc":        "a b [31mc",
		"\xff\xfebad":            "bad",
		strings.Repeat("x", 500): strings.Repeat("x", maxField),
	}
	for in, want := range tests {
		if got := clean(in); got != want {
			t.Errorf("clean(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestOutputTooLarge(t *testing.T) {
	big := bytes.Repeat([]byte("x"), maxOutput+1)
	r := runnerFunc(func(context.Context, []string) ([]byte, error) { return big, nil })
	for _, d := range Drivers() {
		_, err := d.Inventory(context.Background(), r, d.Tools()[0])
		if !errors.Is(err, ErrOutputTooLarge) {
			t.Errorf("%s: got error %v, want %v", d.Name(), err, ErrOutputTooLarge)
		}
	}
}

type runnerFunc func(context.Context, []string) ([]byte, error)

func (f runnerFunc) Run(ctx context.Context, argv []string) ([]byte, error) { return f(ctx, argv) }

func TestToolErrors(t *testing.T) {
	partial, err := os.ReadFile("testdata/storcli/partial-failure.json")
	if err != nil {
		t.Fatal(err)
	}
	exit1 := errors.New("exit status 1")
	tests := map[string]struct {
		drv      Driver
		out      []byte
		err      error
		wantErrs []error
		wantN    int
	}{
		"storcli exits non-zero with json": {megaRAID{}, partial, exit1, []error{exit1, ErrToolFailed}, 1},
		"storcli prints garbage":           {megaRAID{}, []byte("Segmentation fault\n"), nil, []error{ErrUnparsable}, 0},
		"storcli prints no controllers":    {megaRAID{}, []byte(`{"Controllers":[]}`), nil, []error{ErrUnparsable}, 0},
		"ssacli prints garbage":            {smartArray{}, []byte("\x00\x01garbage\n"), nil, []error{ErrUnparsable}, 0},
		"arcconf invalid controller":       {arcconf{}, []byte("Controllers found: 0\nInvalid controller number.\n"), exit1, []error{exit1, ErrUnparsable}, 0},
		"sas3ircu list fails":              {sasIRCU{gen: 3}, nil, exit1, []error{exit1}, 0},
		"mvcli missing":                    {marvell{}, nil, exit1, []error{exit1}, 0},
		"mdstat unreadable":                {mdRAID{}, nil, exit1, []error{exit1}, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := runnerFunc(func(context.Context, []string) ([]byte, error) { return tc.out, tc.err })
			cs, err := tc.drv.Inventory(context.Background(), r, tc.drv.Tools()[0])
			for _, want := range tc.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("Inventory: got error %v, want %v in it", err, want)
				}
			}
			if len(cs) != tc.wantN {
				t.Errorf("controllers: got %d, want %d", len(cs), tc.wantN)
			}
		})
	}
}
