package disklayout

import "testing"

func TestFindRoot(t *testing.T) {
	esp := Partition{Number: 1, Type: typeESP, FSType: FSVFAT, Size: 512 * mib}
	boot := Partition{Number: 2, Type: typeLinuxFS, FSType: FSExt4, FSLabel: "boot", Size: 4096 * mib}
	root := Partition{Number: 3, Type: typeLinuxFS, FSType: FSXFS, Size: 2048 * mib}
	swap := Partition{Number: 4, Type: typeLinuxFS, FSType: FSSwap, Size: 8192 * mib}
	typed := Partition{Number: 5, Type: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", FSType: FSExt4, Size: mib}
	tests := map[string]struct {
		parts []Partition
		want  int
	}{
		"largest linux filesystem":  {[]Partition{esp, boot, root, swap}, 3},
		"discoverable root type":    {[]Partition{esp, root, typed}, 5},
		"nothing but esp and swap":  {[]Partition{esp, swap}, 0},
		"tie goes to the lower one": {[]Partition{{Number: 2, FSType: FSExt4, Size: mib}, {Number: 1, FSType: FSExt4, Size: mib}}, 1},
		"gpt name boot is not root": {[]Partition{{Number: 1, Label: "BOOT", FSType: FSExt4, Size: 9 * mib}, {Number: 2, FSType: FSExt4, Size: mib}}, 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := findRoot(tc.parts); got != tc.want {
				t.Errorf("findRoot = %d, want %d", got, tc.want)
			}
		})
	}
	if got := findESP([]Partition{root, esp}); got != 1 {
		t.Errorf("findESP = %d, want 1", got)
	}
}

func TestPartitionPath(t *testing.T) {
	for disk, want := range map[string]string{"/dev/sda": "/dev/sda2", "/dev/nvme0n1": "/dev/nvme0n1p2", "/dev/loop3": "/dev/loop3p2"} {
		if got := partitionPath(disk, 2); got != want {
			t.Errorf("partitionPath(%s, 2) = %s, want %s", disk, got, want)
		}
		if n, err := partitionNumber(disk, want); err != nil || n != 2 {
			t.Errorf("partitionNumber(%s, %s) = %d, %v, want 2", disk, want, n, err)
		}
	}
}

func TestValidation(t *testing.T) {
	for _, d := range []string{"/dev/sda;rm", "/dev/../etc/passwd", "sda", "/dev/sda "} {
		if validateDevice(d) == nil {
			t.Errorf("validateDevice(%q) = nil, want error", d)
		}
	}
	for _, p := range []string{"etc/x", "/etc/../x", "/etc/x/", "/", "/etc/\nx"} {
		if validateImagePath(p) == nil {
			t.Errorf("validateImagePath(%q) = nil, want error", p)
		}
	}
	if (ExtraPartition{Label: "a b", Size: mib, FSType: FSExt4}).Validate() == nil {
		t.Error("label with a space validated, want error")
	}
}
