package raid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bareflow/contract"
)

// clearCases are the inventories whose teardown testdata/clear/*.golden
// hold.
func clearCases(t testing.TB) map[string]contract.Inventory {
	mr416i := fixtureControllers(t, "storcli/mr416i-gib-units", "storcli64")
	perc := fixtureControllers(t, "storcli/perc-h730p-mixed", "perccli64")
	gen8 := fixtureControllers(t, "ssacli/gen8-two-controllers", "ssacli", "", "0000:08:00.0")
	p408i := fixtureControllers(t, "ssacli/p408i-gen10", "ssacli")
	twoHBA := fixtureControllers(t, "sas3ircu/two-hba", "sas3ircu")
	degradedIR := fixtureControllers(t, "sas2ircu/degraded-ir", "sas2ircu")
	boss := fixtureControllers(t, "mvcli/boss-s1", "mvcli", "0000:65:00.0")
	smartraid := fixtureControllers(t, "arcconf/smartraid-two", "arcconf")
	md := fixtureControllers(t, "mdadm/degraded", "mdadm")
	mdstatOnly := fixtureControllers(t, "mdadm/mdstat-only", "mdstat")
	noTool := contract.RAIDController{PCIAddr: "0000:3b:00.0", Model: "MegaRAID SAS-3 3108 [Invader]", Driver: "megaraid_sas"}
	noAddr := boss[0]
	noAddr.PCIAddr = ""

	return map[string]contract.Inventory{
		"storcli-vds-jbod":                {RAID: mr416i},
		"perccli-spares-foreign-jbod":     {RAID: perc},
		"ssacli-two-controllers":          {RAID: gen8},
		"ssacli-gen10":                    {RAID: p408i},
		"sas3ircu-volume-and-nothing":     {RAID: twoHBA},
		"sas2ircu-degraded-ir":            {RAID: degradedIR},
		"mvcli-boss":                      {RAID: boss},
		"arcconf-two":                     {RAID: smartraid},
		"md-degraded":                     {Disks: plainDisks(), RAID: md},
		"md-without-mdadm":                {Disks: plainDisks(), RAID: mdstatOnly},
		"a controller without its tool":   {RAID: []contract.RAIDController{noTool}},
		"mvcli-without-pci-address":       {RAID: []contract.RAIDController{noAddr}},
		"perccli-md-and-an-unread-device": {Disks: plainDisks(), RAID: append(append(slices.Clone(perc), md...), noTool)},
	}
}

func TestPlanClearGolden(t *testing.T) {
	for name, inv := range clearCases(t) {
		t.Run(name, func(t *testing.T) {
			l, err := PlanClear(inv)
			if err != nil {
				t.Fatalf("PlanClear: %v", err)
			}
			got := []byte(renderLayout(l))
			path := filepath.Join("testdata", "clear", strings.ReplaceAll(name, " ", "-")+".golden")
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
			for _, c := range l.Controllers {
				for _, s := range c.Steps {
					if s.Kind != StepCheck && s.Kind != StepClear {
						t.Errorf("%s: step %s, want only check and clear steps", c.Controller, s)
					}
				}
			}
		})
	}
}

// TestPlanClearMatchesPlan checks that each hardware controller's clear
// steps are those Plan puts before building on it: the teardown uses the
// family's commands, not a second copy of them.
func TestPlanClearMatchesPlan(t *testing.T) {
	cases := planCases(t)
	for _, name := range []string{"perccli-raid5-spares-foreign-jbod", "ssacli-raid10-splits", "sas2ircu-raid1e", "mvcli-raid1", "arcconf-raid5-jbod-rest"} {
		t.Run(name, func(t *testing.T) {
			tc := cases[name]
			built, err := Plan(tc.spec, tc.inv)
			if err != nil {
				t.Fatal(err)
			}
			cleared, err := PlanClear(tc.inv)
			if err != nil {
				t.Fatal(err)
			}
			for _, bc := range built.Controllers {
				i := slices.IndexFunc(cleared.Controllers, func(c ControllerLayout) bool { return c.Controller == bc.Controller })
				if i < 0 {
					t.Fatalf("PlanClear has no controller %s", bc.Controller)
				}
				cc := cleared.Controllers[i]
				var want []string
				for _, s := range bc.Steps {
					// Plan makes pass-through disks unconfigured-good first;
					// a wipe keeps them passed through.
					if s.Kind == StepCheck || s.Kind == StepClear && !slices.Equal(s.Argv[len(s.Argv)-3:], []string{"set", "good", "force"}) {
						want = append(want, s.String())
					}
				}
				var got []string
				for _, s := range cc.Steps {
					got = append(got, s.String())
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: got\n%s\nwant\n%s", bc.Controller, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				expect(t, "handle", cc.Handle, bc.Handle)
			}
		})
	}
}

func TestPlanClearChoices(t *testing.T) {
	cases := clearCases(t)
	plan := func(name string) Layout {
		t.Helper()
		l, err := PlanClear(cases[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return l
	}
	t.Run("md first, every array stopped, every member zeroed", func(t *testing.T) {
		l := plan("perccli-md-and-an-unread-device")
		expect(t, "first controller", l.Controllers[0].Controller, MDController)
		got := argvLines(Layout{Controllers: l.Controllers[:1]})
		want := []string{"mdadm --stop /dev/md1", "mdadm --stop /dev/md0",
			"mdadm --zero-superblock /dev/sda1", "mdadm --zero-superblock /dev/sdb1", "mdadm --zero-superblock /dev/sdd1",
			"mdadm --zero-superblock /dev/sdc1", "mdadm --zero-superblock /dev/sde2", "mdadm --zero-superblock /dev/sdf2"}
		if !slices.Equal(got, want) {
			t.Errorf("md steps: got %q, want %q", got, want)
		}
		last := l.Controllers[len(l.Controllers)-1]
		if last.Controller != "0000:3b:00.0" || len(last.Steps) != 0 || len(last.Notes) != 1 || !strings.Contains(last.Notes[0], "no RAID tool") {
			t.Errorf("the unread controller: got %+v, want a note and no steps", last)
		}
	})
	t.Run("pass-through disks stay passed through", func(t *testing.T) {
		for _, s := range argvLines(plan("perccli-spares-foreign-jbod")) {
			if strings.HasSuffix(s, "set good force") {
				t.Errorf("step %q makes a pass-through disk unconfigured", s)
			}
		}
	})
	t.Run("a controller with nothing to clear gets no steps", func(t *testing.T) {
		l := plan("sas3ircu-volume-and-nothing")
		expect(t, "controllers", len(l.Controllers), 2)
		expect(t, "steps of the first", len(l.Controllers[0].Steps), 0)
		expect(t, "note of the first", strings.Join(l.Controllers[0].Notes, "; "), "nothing to clear")
		expect(t, "steps of the second", len(l.Controllers[1].Steps), 2)
	})
	t.Run("nested md arrays: the outer one stops first, the inner one is not zeroed", func(t *testing.T) {
		inv := contract.Inventory{RAID: []contract.RAIDController{{Tool: "mdadm", Model: "Linux md",
			LogicalDisks: []contract.RAIDLogicalDisk{{ID: "md0"}, {ID: "md1"}, {ID: "md2"}},
			PhysicalDisks: []contract.RAIDPhysicalDisk{
				{Enclosure: "md0", Slot: "sda1"}, {Enclosure: "md0", Slot: "sdb1"},
				{Enclosure: "md1", Slot: "sdc1"}, {Enclosure: "md1", Slot: "sdd1"},
				{Enclosure: "md2", Slot: "md0"}, {Enclosure: "md2", Slot: "md1"},
			}}}}
		l, err := PlanClear(inv)
		if err != nil {
			t.Fatal(err)
		}
		got := argvLines(l)
		want := []string{"mdadm --stop /dev/md2", "mdadm --stop /dev/md0", "mdadm --stop /dev/md1",
			"mdadm --zero-superblock /dev/sda1", "mdadm --zero-superblock /dev/sdb1",
			"mdadm --zero-superblock /dev/sdc1", "mdadm --zero-superblock /dev/sdd1"}
		if !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("a loop of md arrays in a hostile inventory ends", func(t *testing.T) {
		inv := contract.Inventory{RAID: []contract.RAIDController{{Tool: "mdadm",
			LogicalDisks:  []contract.RAIDLogicalDisk{{ID: "md0"}, {ID: "md1"}},
			PhysicalDisks: []contract.RAIDPhysicalDisk{{Enclosure: "md0", Slot: "md1"}, {Enclosure: "md1", Slot: "md0"}}}}}
		if _, err := PlanClear(inv); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a hostile md name is not run", func(t *testing.T) {
		inv := contract.Inventory{RAID: []contract.RAIDController{{Tool: "mdadm",
			LogicalDisks:  []contract.RAIDLogicalDisk{{ID: "md0;reboot"}},
			PhysicalDisks: []contract.RAIDPhysicalDisk{{Enclosure: "md0;reboot", Slot: "sda1"}}}}}
		l, err := PlanClear(inv)
		if err != nil {
			t.Fatal(err)
		}
		if len(argvLines(l)) != 0 || len(l.Controllers[0].Notes) != 1 {
			t.Errorf("got %+v, want no steps and a note", l.Controllers)
		}
	})
	t.Run("two controllers at one address", func(t *testing.T) {
		perc := fixtureControllers(t, "storcli/perc-h730p-mixed", "perccli64")
		_, err := PlanClear(contract.Inventory{RAID: append(perc, perc...)})
		var se *SpecError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "two RAID controllers at 0000:18:00.0") {
			t.Errorf("got %v, want a *SpecError naming the address", err)
		}
	})
	t.Run("an empty inventory", func(t *testing.T) {
		l, err := PlanClear(contract.Inventory{Disks: plainDisks()})
		if err != nil || len(l.Controllers) != 0 {
			t.Errorf("got %+v, %v; want nothing to do", l, err)
		}
	})
}

// TestApplyClear runs a teardown through Apply: checks first, then the
// clear steps, storcli's failing foreign-configuration delete tolerated.
func TestApplyClear(t *testing.T) {
	perc := fixtureControllers(t, "storcli/perc-h730p-mixed", "perccli64")
	md := fixtureControllers(t, "mdadm/degraded", "mdadm")
	l, err := PlanClear(contract.Inventory{RAID: append(slices.Clone(perc), md...)})
	if err != nil {
		t.Fatal(err)
	}
	r := &scriptRunner{
		files: map[string]string{"perccli64 /c0 show all J": "storcli/perc-h730p-mixed.json"},
		fail:  map[string]string{"perccli64 /c0/fall del": "Status = Failure\nDescription = No foreign configuration"},
	}
	applied, err := Apply(context.Background(), r, l, nil)
	if err != nil {
		t.Fatalf("Apply: %v\ndone: %q", err, applied.Done)
	}
	got := r.commands()
	if got[0] != "perccli64 /c0 show all J" {
		t.Errorf("first command: got %q, want the check", got[0])
	}
	want := append([]string{"perccli64 /c0 show all J"}, argvLines(l, StepClear)...)
	if !slices.Equal(got, want) {
		t.Errorf("commands: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(applied.Volumes) != 0 {
		t.Errorf("volumes built: got %+v, want none", applied.Volumes)
	}
}

// FuzzPlanClear checks that PlanClear never panics on an inventory and
// puts only checked words on its command lines.
func FuzzPlanClear(f *testing.F) {
	for _, inv := range clearCases(f) {
		b, _ := json.Marshal(inv)
		f.Add(b)
	}
	f.Add([]byte(`{"raid_controllers":[{"pci_addr":"0000:01:00.0","tool":"mdadm","logical_disks":[{"id":"md0"},{"id":"md 1"}],"physical_disks":[{"enclosure":"md0","slot":"md0"},{"enclosure":"md 1","slot":"sda;1"}]},{"pci_addr":"1:2","tool":"storcli64","physical_disks":[{"enclosure":"$(x)","slot":"0","state":"ghs"}]}]}`))
	f.Fuzz(func(t *testing.T, invJSON []byte) {
		var inv contract.Inventory
		if json.Unmarshal(invJSON, &inv) != nil {
			return
		}
		l, err := PlanClear(inv)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("PlanClear: got %T %v, want a *SpecError", err, err)
			}
			return
		}
		for _, c := range l.Controllers {
			for _, s := range c.Steps {
				if s.Kind != StepCheck && s.Kind != StepClear {
					t.Fatalf("step %s: want only check and clear steps", s)
				}
				for _, a := range s.Argv {
					if a == "" || strings.ContainsAny(a, " \t\n;$`'\"\\|&<>(){}*?") {
						t.Fatalf("step %s: word %q is not plain", s, a)
					}
				}
			}
		}
	})
}
