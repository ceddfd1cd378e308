package raid

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"bareflow/contract"
)

// scriptRunner answers each command line with a file of testdata, an
// error, or, for any other command, success with no output, and records
// what ran.
type scriptRunner struct {
	files map[string]string // command line → file under testdata
	fail  map[string]string // command line → output of a failure
	// okOut is output with a success exit status (a tool reporting its own
	// failure).
	okOut map[string]string

	mu  sync.Mutex
	ran []string
}

func (s *scriptRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	cmd := strings.Join(argv, " ")
	s.mu.Lock()
	s.ran = append(s.ran, cmd)
	s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if out, ok := s.fail[cmd]; ok {
		return []byte(out), errors.New("exit status 255")
	}
	if out, ok := s.okOut[cmd]; ok {
		return []byte(out), nil
	}
	if f, ok := s.files[cmd]; ok {
		return os.ReadFile(filepath.Join("testdata", f))
	}
	return nil, nil
}

func (s *scriptRunner) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ran)
}

// layoutOf plans one of planCases.
func layoutOf(t *testing.T, name string) Layout {
	t.Helper()
	tc := planCases(t)[name]
	l, err := Plan(tc.spec, tc.inv)
	if err != nil {
		t.Fatalf("Plan %s: %v", name, err)
	}
	return l
}

// argvLines are the layout's steps as Apply passes them to the runner.
func argvLines(l Layout, kinds ...StepKind) []string {
	var out []string
	for _, c := range l.Controllers {
		for _, s := range c.Steps {
			if len(kinds) == 0 || slices.Contains(kinds, s.Kind) {
				out = append(out, strings.Join(s.Argv, " "))
			}
		}
	}
	return out
}

func TestApply(t *testing.T) {
	storcli := "storcli-raid1-raid10-splits-jbod-rest"
	tests := map[string]struct {
		layout      string
		files       map[string]string
		fail        map[string]string
		okOut       map[string]string
		wantErr     error
		wantVolumes []string // BuiltVolume IDs
		wantRan     func(l Layout) []string
		check       func(t *testing.T, a Applied)
	}{
		"every step in order, a failed foreign delete tolerated": {
			layout:      storcli,
			files:       map[string]string{"storcli64 /c0 show all J": "storcli/mr416i-gib-units.json"},
			fail:        map[string]string{"storcli64 /c0/fall del": "Status = Failure\nDescription = No foreign configuration found"},
			wantVolumes: []string{"os", "data-1", "data-2", "data-3"},
			wantRan:     func(l Layout) []string { return argvLines(l) },
			check: func(t *testing.T, a Applied) {
				expect(t, "steps done", len(a.Done), 9)
				if !strings.Contains(a.Done[2], "failed, went on") || !strings.Contains(a.Done[2], "No foreign configuration found") {
					t.Errorf("done[2]: got %q, want the tolerated failure with storcli's reason", a.Done[2])
				}
				expect(t, "root", a.Volumes[0].Root, true)
				expect(t, "controller", a.Volumes[0].Controller, "0000:a1:00.0")
				expect(t, "os size", a.Volumes[0].SizeBytes, int64(959656755200/mebibyte*mebibyte))
				expect(t, "data-1 size", a.Volumes[1].SizeBytes, int64(500<<30))
				expect(t, "data-3 level", a.Volumes[3].Level, contract.RAID10)
			},
		},
		"a failed create stops the rest and keeps what was built": {
			layout: storcli,
			files:  map[string]string{"storcli64 /c0 show all J": "storcli/mr416i-gib-units.json"},
			fail: map[string]string{
				"storcli64 /c0 add vd type=raid10 size=512000MB,914882MB,2232648MB names=data-1,data-2,data-3 drives=251:1-4 pdperarray=2 strip=256 wb nora": "Status = Failure\nDescription = Add VD Failed",
			},
			wantErr:     ErrStepFailed,
			wantVolumes: []string{"os"},
			wantRan: func(l Layout) []string {
				all := argvLines(l)
				return all[:slices.IndexFunc(all, func(s string) bool { return strings.Contains(s, "type=raid10") })+1]
			},
		},
		"a check that finds another controller touches nothing": {
			layout:  storcli,
			files:   map[string]string{"storcli64 /c0 show all J": "storcli/perc-h730p-mixed.json"},
			wantErr: ErrWrongController,
			wantRan: func(l Layout) []string { return []string{"storcli64 /c0 show all J"} },
		},
		"a check command that fails touches nothing": {
			layout:  "sas3ircu-raid1-raid10",
			fail:    map[string]string{"sas3ircu LIST": "SAS3IRCU: No Controllers found"},
			wantErr: ErrWrongController,
			wantRan: func(l Layout) []string { return []string{"sas3ircu LIST"} },
		},
		"sas3ircu adapter checked by its address": {
			layout:      "sas3ircu-raid1-raid10",
			files:       map[string]string{"sas3ircu LIST": "sas3ircu/two-hba.list.txt"},
			wantVolumes: []string{"os", "data"},
			wantRan:     func(l Layout) []string { return argvLines(l) },
		},
		"mvcli reporting an error with status 0": {
			layout:  "mvcli-raid1",
			okOut:   map[string]string{"mvcli create -o vd -r 1 -d 0,1 -n boss -b 64 --waiveconfirmation": "SG driver version 3.5.36\nError: Specified RAID mode is not supported.\n"},
			wantErr: ErrStepFailed,
			wantRan: func(l Layout) []string { return argvLines(l) },
		},
		"md, no check": {
			layout:      "md-raid10-over-old-arrays",
			wantVolumes: []string{"data", "os"},
			wantRan:     func(l Layout) []string { return argvLines(l) },
			check: func(t *testing.T, a Applied) {
				expect(t, "os root", a.Volumes[1].Root, true)
				expect(t, "data size", a.Volumes[0].SizeBytes, int64(8*tb/mebibyte*mebibyte))
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := layoutOf(t, tc.layout)
			r := &scriptRunner{files: tc.files, fail: tc.fail, okOut: tc.okOut}
			var progress []string
			a, err := Apply(context.Background(), r, l, func(s string) { progress = append(progress, s) })
			if tc.wantErr == nil && err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Apply: got %v, want %v", err, tc.wantErr)
			}
			ran := r.commands()
			if want := tc.wantRan(l); !slices.Equal(ran, want) {
				t.Errorf("commands: got\n%s\nwant\n%s", strings.Join(ran, "\n"), strings.Join(want, "\n"))
			}
			expect(t, "progress reports", len(progress), len(ran))
			var ids []string
			for _, v := range a.Volumes {
				ids = append(ids, v.ID)
				if v.Device != "" {
					t.Errorf("volume %s: device %q before ResolveDevices", v.ID, v.Device)
				}
			}
			if !slices.Equal(ids, tc.wantVolumes) {
				t.Errorf("volumes: got %q, want %q", ids, tc.wantVolumes)
			}
			if tc.check != nil {
				tc.check(t, a)
			}
		})
	}
}

func TestApplyCanceled(t *testing.T) {
	l := layoutOf(t, "md-raid1-nvme-plain")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &scriptRunner{}
	if _, err := Apply(ctx, r, l, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply: got %v, want context.Canceled", err)
	}
	expect(t, "commands run", len(r.commands()), 0)
}

func TestResolveDevices(t *testing.T) {
	vallCmd := "storcli64 /c0/vall show all J"
	lsblkCmd := "lsblk -J -b -d -o NAME,SIZE,WWN,HCTL,TYPE"
	sysCmd := "ls -l /sys/block/"
	tests := map[string]struct {
		layout    string
		files     map[string]string
		wantFound bool
		want      map[string]string // volume ID → device
	}{
		"storcli: by the tool's name, by NAA, by channel and target": {
			layout:    "storcli-raid1-raid10-splits-jbod-rest",
			files:     map[string]string{vallCmd: "apply/storcli-vall.json", lsblkCmd: "apply/lsblk-all.json", sysCmd: "apply/sys-block.txt"},
			wantFound: true,
			want:      map[string]string{"os": "/dev/sda", "data-1": "/dev/sdb", "data-2": "/dev/sdc", "data-3": "/dev/sdd"},
		},
		"storcli: one drive not there yet": {
			layout: "storcli-raid1-raid10-splits-jbod-rest",
			files:  map[string]string{vallCmd: "apply/storcli-vall.json", lsblkCmd: "apply/lsblk-partial.json", sysCmd: "apply/sys-block.txt"},
			want:   map[string]string{"os": "/dev/sda", "data-1": "/dev/sdb", "data-2": "/dev/sdc", "data-3": ""},
		},
		"ssacli: in the order built, devices as ssacli names them": {
			layout: "ssacli-raid10-splits",
			files: map[string]string{
				"ssacli ctrl serialnumber=5001438025A1B2C0 ld all show detail": "apply/ssacli-ld-detail.txt",
				lsblkCmd: "apply/lsblk-all.json", sysCmd: "apply/sys-block.txt",
			},
			wantFound: true,
			want:      map[string]string{"bf0-1": "/dev/sda", "bf0-2": "/dev/sdb"},
		},
		"md: by the name mdadm keeps": {
			layout: "md-raid10-over-old-arrays",
			files: map[string]string{
				"cat /proc/mdstat":          "apply/mdstat.txt",
				"mdadm --detail /dev/md126": "apply/md126-detail.txt",
				"mdadm --detail /dev/md127": "apply/md127-detail.txt",
			},
			wantFound: true,
			want:      map[string]string{"data": "/dev/md126", "os": "/dev/md127"},
		},
		"md: not running yet": {
			layout: "md-raid1-nvme-plain",
			files:  map[string]string{"cat /proc/mdstat": "mdadm/empty.mdstat.txt"},
			want:   map[string]string{"os": ""},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := layoutOf(t, tc.layout)
			var applied Applied
			for _, c := range l.Controllers {
				for _, s := range c.Steps {
					for _, v := range s.Volumes {
						applied.Volumes = append(applied.Volumes, builtVolume(c, v))
					}
				}
			}
			r := &scriptRunner{files: tc.files}
			vols, found, err := ResolveDevices(context.Background(), r, l, applied)
			if err != nil {
				t.Fatalf("ResolveDevices: %v", err)
			}
			expect(t, "found", found, tc.wantFound)
			got := map[string]string{}
			for _, v := range vols {
				got[v.ID] = v.Device
			}
			for id, dev := range tc.want {
				expect(t, id+" device", got[id], dev)
			}
			expect(t, "volumes", len(vols), len(tc.want))
		})
	}
}

func TestResolveDevicesToolFails(t *testing.T) {
	l := layoutOf(t, "storcli-raid1-raid10-splits-jbod-rest")
	applied := Applied{Volumes: []contract.BuiltVolume{{Controller: "0000:a1:00.0", ID: "os", Level: contract.RAID1}}}
	r := &scriptRunner{fail: map[string]string{"storcli64 /c0/vall show all J": ""}}
	if _, found, err := ResolveDevices(context.Background(), r, l, applied); err == nil || found {
		t.Fatalf("ResolveDevices: got found=%v, %v; want an error", found, err)
	}
}
