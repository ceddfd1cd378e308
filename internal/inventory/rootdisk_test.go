package inventory

import (
	"errors"
	"strings"
	"testing"

	"bareflow/contract"
)

func TestRootDisk(t *testing.T) {
	disks := []contract.Disk{
		{Name: "sdb", SizeBytes: 960 << 30},
		{Name: "sda", SizeBytes: 480 << 30},
		{Name: "sdc", SizeBytes: 480 << 30},
		{Name: "sdd", SizeBytes: 8 << 30, Removable: true},
		{Name: "sde", SizeBytes: 1 << 30},
	}
	for name, tc := range map[string]struct {
		disks   []contract.Disk
		volumes []contract.BuiltVolume
		want    string
		err     error
	}{
		"root volume":            {disks, []contract.BuiltVolume{{Device: "/dev/md126"}, {Device: "/dev/md127", Root: true}}, "/dev/md127", nil},
		"first volume":           {disks, []contract.BuiltVolume{{Device: "sdf"}, {Device: "sdg"}}, "/dev/sdf", nil},
		"smallest suitable disk": {disks, nil, "/dev/sda", nil},
		"none fit":               {[]contract.Disk{{Name: "sde", SizeBytes: 1 << 30}}, nil, "", ErrNoRootDisk},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := RootDisk(contract.Inventory{Disks: tc.disks}, tc.volumes)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("got %q, %v, want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestChooseRootDisk(t *testing.T) {
	inv := contract.Inventory{Disks: []contract.Disk{
		{Name: "sda", SizeBytes: 960 << 30, Serial: "S1", WWN: "0x5000c500a1b2c3d4"},
		{Name: "sdb", SizeBytes: 480 << 30, Serial: "S2"},
		{Name: "nvme0n1", SizeBytes: 240 << 30, Serial: "N1"},
		{Name: "sdc", SizeBytes: 64 << 30, Removable: true},
		{Name: "sdd", SizeBytes: 480 << 30, Serial: "S4"},
	}}
	for _, tc := range []struct {
		name     string
		recorded string
		hint     contract.RootDiskHint
		need     int64
		want     string
		wantErr  string
	}{
		{name: "smallest that holds the image", need: 10 << 30, want: "/dev/nvme0n1"},
		{name: "smallest skips too small", need: 300 << 30, want: "/dev/sdb"},
		{name: "nothing big enough", need: 2 << 40, wantErr: "no disk of the 5"},
		{name: "by serial", hint: contract.RootDiskHint{Serial: "s2"}, want: "/dev/sdb"},
		{name: "by wwn in another spelling", hint: contract.RootDiskHint{WWN: "naa.5000C500A1B2C3D4"}, want: "/dev/sda"},
		{name: "by path", hint: contract.RootDiskHint{Path: "/dev/sdd"}, want: "/dev/sdd"},
		{name: "ambiguous size range", hint: contract.RootDiskHint{MinSizeBytes: 400 << 30, MaxSizeBytes: 500 << 30}, wantErr: "2 disks match"},
		{name: "no match", hint: contract.RootDiskHint{Serial: "nope"}, wantErr: "no disk matches"},
		{name: "hinted disk too small", hint: contract.RootDiskHint{Serial: "N1"}, need: 300 << 30, wantErr: "holds"},
		{name: "recorded listed", recorded: "sdd", need: 1, want: "/dev/sdd"},
		{name: "recorded md array not listed", recorded: "/dev/md127", need: 1 << 40, want: "/dev/md127"},
		{name: "hint names the recorded md array", recorded: "md127", hint: contract.RootDiskHint{Path: "/dev/md127"}, want: "/dev/md127"},
		{name: "recorded too small", recorded: "nvme0n1", need: 300 << 30, wantErr: "recorded root disk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ChooseRootDisk(inv, tc.recorded, tc.hint, tc.need)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrNoRootDisk) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want an ErrNoRootDisk saying %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
