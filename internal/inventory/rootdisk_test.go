package inventory

import (
	"errors"
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
