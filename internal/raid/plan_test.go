package raid

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bareflow/contract"
)

const (
	gb = 1000 * 1000 * 1000
	tb = 1000 * gb
)

func ptr[T any](v T) *T { return &v }

// fixtureControllers reads the controllers of a parser's golden file
// (testdata/<name>.golden.json) as the inventory holds them: with the tool
// that read them and, where the tool gives none, the PCI address the
// inventory pairs them with.
func fixtureControllers(t testing.TB, name, tool string, addrs ...string) []contract.RAIDController {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	for i := range r.Controllers {
		r.Controllers[i].Tool = tool
		if r.Controllers[i].PCIAddr == "" && i < len(addrs) {
			r.Controllers[i].PCIAddr = addrs[i]
		}
	}
	return r.Controllers
}

// plainDisks is a machine without RAID controllers: four 4 TB HDDs on
// AHCI, two 1.92 TB NVMe drives and a USB stick.
func plainDisks() []contract.Disk {
	var ds []contract.Disk
	for _, n := range []string{"sda", "sdb", "sdc", "sdd"} {
		ds = append(ds, contract.Disk{Name: n, SizeBytes: 4 * tb, Type: contract.DiskHDD, Transport: "sata",
			Controller: "0000:00:17.0", ControllerDriver: "ahci", Serial: "ZL" + n})
	}
	for _, n := range []string{"nvme0n1", "nvme1n1"} {
		ds = append(ds, contract.Disk{Name: n, SizeBytes: 1920 * gb, Type: contract.DiskNVMe, Transport: "nvme", Serial: "S4" + n})
	}
	ds = append(ds, contract.Disk{Name: "sde", SizeBytes: 16 * gb, Type: contract.DiskSSD, Transport: "usb", Removable: true})
	return ds
}

// sixSASDisks is c with six 1.2 TB SAS HDDs, ready, in enclosure 2.
func sixSASDisks(c contract.RAIDController) contract.RAIDController {
	c.PhysicalDisks = nil
	for s := range 6 {
		c.PhysicalDisks = append(c.PhysicalDisks, contract.RAIDPhysicalDisk{Enclosure: "2", Slot: fmt.Sprint(s),
			SizeBytes: 1200243695616, Media: contract.DiskHDD, Interface: "sas", State: "ready"})
	}
	return c
}

// planCases are the specs whose command lines testdata/plans/*.golden
// hold.
func planCases(t testing.TB) map[string]struct {
	inv  contract.Inventory
	spec contract.RAIDSpec
} {
	mr416i := fixtureControllers(t, "storcli/mr416i-gib-units", "storcli64")
	perc := fixtureControllers(t, "storcli/perc-h730p-mixed", "perccli64")
	gen8 := fixtureControllers(t, "ssacli/gen8-two-controllers", "ssacli", "", "0000:08:00.0")
	p408i := fixtureControllers(t, "ssacli/p408i-gen10", "ssacli")
	twoHBA := fixtureControllers(t, "sas3ircu/two-hba", "sas3ircu")
	degradedIR := fixtureControllers(t, "sas2ircu/degraded-ir", "sas2ircu")
	boss := fixtureControllers(t, "mvcli/boss-s1", "mvcli", "0000:65:00.0")
	smartraid := fixtureControllers(t, "arcconf/smartraid-two", "arcconf")
	md := fixtureControllers(t, "mdadm/degraded", "mdadm")

	sas3 := sixSASDisks(twoHBA[0])

	return map[string]struct {
		inv  contract.Inventory
		spec contract.RAIDSpec
	}{
		"storcli-raid1-raid10-splits-jbod-rest": {
			inv: contract.Inventory{RAID: mr416i},
			spec: contract.RAIDSpec{JBODRest: true, Arrays: []contract.RAIDArray{
				{Level: contract.RAID1, Name: "os", Root: true, Disks: contract.DiskSelector{Slots: []string{"251:5", "251:6"}}},
				{Level: contract.RAID10, Name: "data", Disks: contract.DiskSelector{Count: 4, Media: contract.DiskSSD, MinSizeBytes: 1500 * gb},
					Splits:   []contract.RAIDSplit{{SizeBytes: 500 << 30}, {Percent: 25}, {}},
					StripKiB: 256, WriteBack: ptr(true), ReadAhead: ptr(false)},
			}},
		},
		"perccli-raid5-spares-foreign-jbod": {
			inv: contract.Inventory{RAID: perc},
			spec: contract.RAIDSpec{JBODRest: true, Arrays: []contract.RAIDArray{
				{Level: contract.RAID5, Root: true, Disks: contract.DiskSelector{Count: 3, Media: contract.DiskSSD, MaxSizeBytes: tb}},
			}},
		},
		"ssacli-raid10-splits": {
			inv: contract.Inventory{RAID: gen8},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{
				{Level: contract.RAID10, Controller: "0000:02:00.0", Root: true, StripKiB: 256,
					Disks:  contract.DiskSelector{Count: 4, Media: contract.DiskHDD},
					Splits: []contract.RAIDSplit{{SizeBytes: 100 << 30}, {}}},
			}},
		},
		"ssacli-raid1-jbod-rest-left": {
			inv: contract.Inventory{RAID: p408i},
			spec: contract.RAIDSpec{JBODRest: true, Arrays: []contract.RAIDArray{
				{Level: contract.RAID1, Root: true, Disks: contract.DiskSelector{Slots: []string{"1I:1:1", "1I:1:2"}}},
			}},
		},
		"sas3ircu-raid1-raid10": {
			inv: contract.Inventory{RAID: []contract.RAIDController{sas3, twoHBA[1]}},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{
				{Level: contract.RAID1, Name: "os", Root: true, Controller: "0000:19:00.0", Disks: contract.DiskSelector{Slots: []string{"2:0", "2:1"}}},
				{Level: contract.RAID10, Name: "data", Controller: "0000:19:00.0", Disks: contract.DiskSelector{Count: 4}},
			}},
		},
		"sas3ircu-raid1-existing-volume": {
			inv: contract.Inventory{RAID: twoHBA},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{
				{Level: contract.RAID1, Root: true, Controller: "0000:3b:00.0", Disks: contract.DiskSelector{Count: 2}},
			}},
		},
		"sas2ircu-raid1e": {
			inv: contract.Inventory{RAID: degradedIR},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{
				{Level: contract.RAID1E, Root: true, Disks: contract.DiskSelector{Count: 5}},
			}},
		},
		"mvcli-raid1": {
			inv: contract.Inventory{RAID: boss},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{
				{Level: contract.RAID1, Name: "boss", Root: true, StripKiB: 64, Disks: contract.DiskSelector{Count: 2}},
			}},
		},
		"arcconf-raid5-jbod-rest": {
			inv: contract.Inventory{RAID: smartraid[:1]},
			spec: contract.RAIDSpec{JBODRest: true, Arrays: []contract.RAIDArray{
				{Level: contract.RAID5, Root: true, StripKiB: 256, WriteBack: ptr(true),
					Disks:  contract.DiskSelector{Count: 4, Media: contract.DiskHDD, MaxSizeBytes: tb},
					Splits: []contract.RAIDSplit{{SizeBytes: 200 << 30}, {}}},
			}},
		},
		"md-raid1-nvme-plain": {
			inv: contract.Inventory{Disks: plainDisks()},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{
				{Level: contract.RAID1, Name: "os", Root: true, Disks: contract.DiskSelector{Count: 2, Media: contract.DiskNVMe}},
			}},
		},
		"md-raid10-over-old-arrays": {
			inv: contract.Inventory{Disks: plainDisks(), RAID: md},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{
				{Level: contract.RAID10, Name: "data", Controller: "md", StripKiB: 512, Disks: contract.DiskSelector{Media: contract.DiskHDD}},
				{Level: contract.RAID1, Name: "os", Root: true, Controller: "md", Disks: contract.DiskSelector{Slots: []string{"nvme0n1", "/dev/nvme1n1"}}},
			}},
		},
	}
}

// renderLayout writes a layout as testdata/plans/*.golden hold it: a
// comment line per controller and array, then each step as a shell line.
func renderLayout(l Layout) string {
	var b strings.Builder
	for _, c := range l.Controllers {
		fmt.Fprintf(&b, "# controller %s: %s, %s", c.Controller, c.Family, c.Tool)
		if c.Handle != "" {
			fmt.Fprintf(&b, " %s", c.Handle)
		}
		fmt.Fprintf(&b, " (%s)\n", c.Model)
		for _, a := range c.Arrays {
			var ids []string
			for _, d := range a.Disks {
				ids = append(ids, d.ID())
			}
			fmt.Fprintf(&b, "# array %d %s: %s of %s", a.Spec+1, a.Name, levelName(a.Level), strings.Join(ids, " "))
			if a.Level != contract.RAIDJBOD {
				fmt.Fprintf(&b, ", %d bytes usable", a.UsableBytes)
				for _, v := range a.Volumes {
					size := "the rest"
					if v.SizeBytes > 0 {
						size = fmt.Sprint(v.SizeBytes)
					}
					fmt.Fprintf(&b, "; %s %s", v.Name, size)
					if v.Root {
						b.WriteString(" (root)")
					}
				}
			}
			b.WriteString("\n")
		}
		if len(c.JBOD) > 0 {
			var ids []string
			for _, d := range c.JBOD {
				ids = append(ids, d.ID())
			}
			fmt.Fprintf(&b, "# pass-through: %s\n", strings.Join(ids, " "))
		}
		for _, n := range c.Notes {
			fmt.Fprintf(&b, "# note: %s\n", n)
		}
		for _, s := range c.Steps {
			b.WriteString(s.String())
			if s.MayFail {
				b.WriteString("  # may fail")
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestPlanGolden(t *testing.T) {
	for name, tc := range planCases(t) {
		t.Run(name, func(t *testing.T) {
			l, err := Plan(tc.spec, tc.inv)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			got := []byte(renderLayout(l))
			path := filepath.Join("testdata", "plans", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: got\n%s\nwant\n%s", path, got, want)
			}
			// A layout crosses a workflow as JSON.
			b, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			var back Layout
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if r := renderLayout(back); r != string(got) {
				t.Errorf("layout after a JSON round trip: got\n%s\nwant\n%s", r, got)
			}
		})
	}
}

// TestPlanChoices checks facts of some layouts independently of their
// golden files.
func TestPlanChoices(t *testing.T) {
	cases := planCases(t)
	plan := func(name string) Layout {
		t.Helper()
		tc := cases[name]
		l, err := Plan(tc.spec, tc.inv)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return l
	}
	t.Run("smallest first then slot order, bad disks skipped", func(t *testing.T) {
		l := plan("perccli-raid5-spares-foreign-jbod")
		c := l.Controllers[0]
		var ids []string
		for _, d := range c.Arrays[0].Disks {
			ids = append(ids, d.ID())
		}
		expect(t, "raid 5 disks", strings.Join(ids, " "), "32:0 32:1 32:2")
		var jbod []string
		for _, d := range c.JBOD {
			jbod = append(jbod, d.ID())
		}
		// 32:5 is ubad: never passed through.
		expect(t, "pass-through", strings.Join(jbod, " "), "32:3 32:4 32:6 32:7")
		expect(t, "handle", c.Handle, "0")
	})
	t.Run("splits in MiB, the last the rest", func(t *testing.T) {
		a := plan("storcli-raid1-raid10-splits-jbod-rest").Controllers[0].Arrays[1]
		expect(t, "volumes", len(a.Volumes), 3)
		expect(t, "first", a.Volumes[0].SizeBytes, int64(500<<30))
		expect(t, "second is 25% in MiB", a.Volumes[1].SizeBytes, a.UsableBytes/4/mebibyte*mebibyte)
		expect(t, "third takes the rest", a.Volumes[2].SizeBytes, int64(0))
		expect(t, "usable: half of four 1.92 TB", a.UsableBytes, int64(2*1918647790469))
		expect(t, "spans of mirror pairs", a.Spans, 2)
	})
	t.Run("md skips the USB stick and disks of other arrays", func(t *testing.T) {
		l := plan("md-raid10-over-old-arrays")
		expect(t, "controllers", len(l.Controllers), 1)
		c := l.Controllers[0]
		expect(t, "raid 10 disks", len(c.Arrays[0].Disks), 4)
		for _, d := range c.Arrays[0].Disks {
			if d.Slot == "sde" {
				t.Errorf("the removable sde was taken")
			}
		}
	})
	t.Run("md takes loop and md devices only when named", func(t *testing.T) {
		disks := append([]contract.Disk{
			{Name: "loop0", SizeBytes: 4 * tb, Type: contract.DiskHDD},
			{Name: "md127", SizeBytes: 4 * tb, Type: contract.DiskHDD},
		}, plainDisks()...)
		spec := contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, Disks: contract.DiskSelector{Count: 2, Media: contract.DiskHDD}}}}
		l, err := Plan(spec, contract.Inventory{Disks: disks})
		if err != nil {
			t.Fatal(err)
		}
		expect(t, "disks", l.Controllers[0].Arrays[0].Disks[0].Slot+" "+l.Controllers[0].Arrays[0].Disks[1].Slot, "sda sdb")
		spec.Arrays[0].Disks = contract.DiskSelector{Slots: []string{"loop0", "sdc"}}
		if _, err := Plan(spec, contract.Inventory{Disks: disks}); err != nil {
			t.Errorf("loop0 named: %v", err)
		}
	})
	t.Run("no controller named, the only one that fits", func(t *testing.T) {
		l := plan("sas2ircu-raid1e")
		expect(t, "controller", l.Controllers[0].Controller, "0000:04:00.0")
	})
}

func TestPlanRefuses(t *testing.T) {
	perc := fixtureControllers(t, "storcli/perc-h730p-mixed", "perccli64")
	p408i := fixtureControllers(t, "ssacli/p408i-gen10", "ssacli")
	gen8 := fixtureControllers(t, "ssacli/gen8-two-controllers", "ssacli", "", "0000:08:00.0")
	twoHBA := fixtureControllers(t, "sas3ircu/two-hba", "sas3ircu")
	boss := fixtureControllers(t, "mvcli/boss-s1", "mvcli", "0000:65:00.0")
	noTool := []contract.RAIDController{{PCIAddr: "0000:18:00.0", Model: "MegaRAID SAS-3 3108 [Invader]", Driver: "megaraid_sas"}}
	withPerc := contract.Inventory{RAID: perc}
	raid1 := func(slots ...string) contract.RAIDArray {
		return contract.RAIDArray{Level: contract.RAID1, Disks: contract.DiskSelector{Slots: slots}}
	}
	tests := map[string]struct {
		inv      contract.Inventory
		spec     contract.RAIDSpec
		code     string
		array    int
		contains string
	}{
		"RAID 5 on sas3ircu": {
			inv:  contract.Inventory{RAID: twoHBA},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID5, Controller: "0000:19:00.0", Disks: contract.DiskSelector{Slots: []string{"2:0", "2:1", "2:3"}}}}},
			code: contract.ErrUnsupportedRAIDLevel, contains: "cannot build RAID 5; it builds RAID 0, 1, 1E and 10",
		},
		"not enough disks on the controller named": {
			inv:  withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID10, Controller: "0000:18:00.0", Disks: contract.DiskSelector{Count: 6, Media: contract.DiskSSD}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "RAID 10 needs 6 SSDs; 5 SSDs match on megaraid (PERC H730P Mini at 0000:18:00.0)",
		},
		"RAID 10 of an odd count": {
			inv:  contract.Inventory{RAID: p408i},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID10, Controller: "0000:5c:00.0", Disks: contract.DiskSelector{Media: contract.DiskSSD}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "RAID 10 on ssacli needs an even number of at least 4 disks; 3 SSDs match",
		},
		"mixed media when forbidden": {
			inv:  withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{raid1("32:0", "32:3")}},
			code: contract.ErrRAIDSpecInvalid, contains: "mix media (1 HDD, 1 SSD); set media, or allow_mixed_media",
		},
		"a split larger than the array": {
			inv: withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, Disks: contract.DiskSelector{Slots: []string{"32:0", "32:1"}},
				Splits: []contract.RAIDSplit{{SizeBytes: 1 << 40}}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "the splits add up to 1.00 TiB, more than the 894 GiB a RAID 1 of 2 disks of 894 GiB holds",
		},
		"splits over 100 percent": {
			inv: withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, Disks: contract.DiskSelector{Slots: []string{"32:0", "32:1"}},
				Splits: []contract.RAIDSplit{{Percent: 60}, {Percent: 50}}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "the splits take 110% of the array",
		},
		"a failed disk named": {
			inv:  contract.Inventory{RAID: gen8},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{raid1("1I:1:1", "1I:1:2")}},
			code: contract.ErrRAIDSpecInvalid, contains: "disk 1I:1:2 cannot be used: it is failed",
		},
		"an unbad disk named": {
			inv:  withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID0, Disks: contract.DiskSelector{Slots: []string{"32:5"}}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "disk 32:5 cannot be used: it is ubad",
		},
		"an unknown controller address": {
			inv:  withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, Controller: "0000:99:00.0", Disks: contract.DiskSelector{Count: 2}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "no RAID controller at 0000:99:00.0 (the inventory has PERC H730P Mini at 0000:18:00.0)",
		},
		"two arrays asking for the same disk": {
			inv:  withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{raid1("32:0", "32:1"), raid1("32:1", "32:2")}},
			code: contract.ErrRAIDSpecInvalid, array: 1, contains: "array 2: disk 32:1 cannot be used: array 1 took it",
		},
		"a slot the controller does not have": {
			inv:  withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{raid1("32:0", "33:1")}},
			code: contract.ErrRAIDSpecInvalid, contains: `has no disk "33:1"`,
		},
		"a controller without its tool": {
			inv:  contract.Inventory{RAID: noTool},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, Controller: "0000:18:00.0", Disks: contract.DiskSelector{Count: 2}}}},
			code: contract.ErrRAIDToolMissing, contains: "was not read by a RAID tool",
		},
		"three volumes on sas3ircu": {
			inv: contract.Inventory{RAID: []contract.RAIDController{sixSASDisks(twoHBA[0])}},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{
				{Level: contract.RAID0, Disks: contract.DiskSelector{Count: 2}},
				{Level: contract.RAID0, Disks: contract.DiskSelector{Count: 2}},
				{Level: contract.RAID0, Disks: contract.DiskSelector{Count: 2}},
			}},
			code: contract.ErrRAIDSpecInvalid, array: 2, contains: "sas3ircu holds at most 2 logical drives; the spec puts 3 on 0000:19:00.0",
		},
		"SAS and SATA in one IR volume": {
			inv: contract.Inventory{RAID: twoHBA},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{
				{Level: contract.RAID0, Controller: "0000:19:00.0", Disks: contract.DiskSelector{Slots: []string{"2:1", "2:3"}}},
			}},
			code: contract.ErrRAIDSpecInvalid, contains: "sas3ircu cannot mix SAS and SATA disks in one array",
		},
		"not enough disks on any of two controllers": {
			inv:  contract.Inventory{RAID: twoHBA},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID10, Disks: contract.DiskSelector{Count: 4, Media: contract.DiskHDD}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "no controller can give it its disks: RAID 10 needs 4 HDDs; 3 HDDs match on sas3ircu (SAS3008 at 0000:19:00.0); RAID 10 needs 4 HDDs; 0 HDDs match on sas3ircu (SAS3008 at 0000:3b:00.0)",
		},
		"splits on sas3ircu": {
			inv: contract.Inventory{RAID: twoHBA},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, Controller: "0000:19:00.0",
				Disks: contract.DiskSelector{Slots: []string{"2:0", "2:1"}}, Splits: []contract.RAIDSplit{{Percent: 50}, {}}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "sas3ircu cannot carve an array into several logical drives",
		},
		"splits on md": {
			inv: contract.Inventory{Disks: plainDisks()},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, Disks: contract.DiskSelector{Media: contract.DiskNVMe},
				Splits: []contract.RAIDSplit{{Percent: 50}, {}}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "md cannot carve an array",
		},
		"a chunk size for an md mirror": {
			inv:  contract.Inventory{Disks: plainDisks()},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, StripKiB: 64, Disks: contract.DiskSelector{Media: contract.DiskNVMe}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "md takes no strip size for RAID 1",
		},
		"a strip size storcli does not take": {
			inv:  withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, StripKiB: 48, Disks: contract.DiskSelector{Slots: []string{"32:0", "32:1"}}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "strip size 48 KiB: storcli/perccli takes 64, 128, 256, 512 or 1024 KiB",
		},
		"a cache policy on ssacli": {
			inv:  contract.Inventory{RAID: p408i},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, WriteBack: ptr(true), Disks: contract.DiskSelector{Slots: []string{"1I:1:1", "1I:1:2"}}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "ssacli sets no cache policy per array",
		},
		"RAID 5 on mvcli": {
			inv:  contract.Inventory{RAID: boss},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID5, Controller: "0000:65:00.0", Disks: contract.DiskSelector{Count: 2}}}},
			code: contract.ErrUnsupportedRAIDLevel, contains: "cannot build RAID 5; it builds RAID 0, 1 and 10",
		},
		"RAID 50 of seven disks": {
			inv: contract.Inventory{Disks: plainDisks(), RAID: []contract.RAIDController{func() contract.RAIDController {
				c := perc[0]
				c.PhysicalDisks = nil
				for s := range 7 {
					c.PhysicalDisks = append(c.PhysicalDisks, contract.RAIDPhysicalDisk{Enclosure: "32", Slot: fmt.Sprint(s), SizeBytes: tb, Media: contract.DiskHDD, Interface: "sas", State: "ugood"})
				}
				return c
			}()}},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID50, Disks: contract.DiskSelector{Count: 7}}}},
			code: contract.ErrRAIDSpecInvalid, contains: "RAID 50 needs its 7 disks split evenly into 2 to 8 spans of at least 3",
		},
		"two roots": {
			inv:  withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, Root: true, Disks: contract.DiskSelector{Slots: []string{"32:0", "32:1"}}}, {Level: contract.RAID0, Root: true, Disks: contract.DiskSelector{Slots: []string{"32:3"}}}}},
			code: contract.ErrRAIDSpecInvalid, array: 1, contains: "only one array can hold the root",
		},
		"a name that is no name": {
			inv:  withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID1, Name: "a b;rm", Disks: contract.DiskSelector{Slots: []string{"32:0", "32:1"}}}}},
			code: contract.ErrRAIDSpecInvalid, contains: `name "a b;rm"`,
		},
		"a level that is no level": {
			inv:  withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: "7", Disks: contract.DiskSelector{Count: 2}}}},
			code: contract.ErrRAIDSpecInvalid, contains: `unknown RAID level "7"`,
		},
		"pass-through on Smart Array beside an array": {
			inv: contract.Inventory{RAID: gen8},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{raid1("1I:1:1", "1I:1:3"),
				{Level: contract.RAIDJBOD, Disks: contract.DiskSelector{Slots: []string{"1I:1:4"}}}}},
			code: contract.ErrRAIDSpecInvalid, array: 1, contains: "passes disks through only controller-wide",
		},
		"a logical drive name taken twice": {
			inv: withPerc,
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{
				{Level: contract.RAID1, Name: "data", Disks: contract.DiskSelector{Slots: []string{"32:0", "32:1"}}, Splits: []contract.RAIDSplit{{Percent: 50}, {}}},
				{Level: contract.RAID0, Name: "data-2", Disks: contract.DiskSelector{Slots: []string{"32:3"}}},
			}},
			code: contract.ErrRAIDSpecInvalid, array: 1, contains: `logical drive name "data-2" is taken twice`,
		},
		"a level the controller lacks, whatever the disks": {
			inv:  contract.Inventory{RAID: twoHBA},
			spec: contract.RAIDSpec{Arrays: []contract.RAIDArray{{Level: contract.RAID6, Controller: "0000:3b:00.0", Disks: contract.DiskSelector{Count: 9}}}},
			code: contract.ErrUnsupportedRAIDLevel, contains: "sas3ircu (SAS3008 at 0000:3b:00.0) cannot build RAID 6",
		},
		"an empty spec": {
			inv:  withPerc,
			spec: contract.RAIDSpec{},
			code: contract.ErrRAIDSpecInvalid, array: -1, contains: "the spec has no arrays",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Plan(tc.spec, tc.inv)
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("Plan: got %v, want a *SpecError", err)
			}
			expect(t, "code", se.Code, tc.code)
			expect(t, "array", se.Array, tc.array)
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("message: got %q, want it to contain %q", err, tc.contains)
			}
		})
	}
}
