package wipe

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// A 1 TB disk with three partitions: md127 on the first, an LVM volume on
// the second (mounted), swap on the third; md127 is mounted on a path with
// a space.
const (
	sdaInUse = `attr size 1953525168
attr ro 0
attr removable 0
attr queue/rotational 1
attr queue/discard_max_bytes 0
attr queue/discard_granularity 0
attr queue/logical_block_size 512
node disk sda 8:0 - - -
node part sda1 8:1 sda - -
node holder md127 9:127 sda1 - -
node part sda2 8:2 sda - -
node holder dm-0 253:0 sda2 LVM-Qm9kY2x0bV1a2b3c4d5e6f7g8h9i0j1k2l3m4n5o6p7q8r9s0t1u2v3w4x5y6z7a8b vg0-data
node part sda3 8:3 sda - -
`
	sdaReleased = `attr size 1953525168
attr ro 0
attr removable 0
attr queue/rotational 1
attr queue/discard_max_bytes 0
attr queue/discard_granularity 0
attr queue/logical_block_size 512
node disk sda 8:0 - - -
node part sda1 8:1 sda - -
node part sda2 8:2 sda - -
node part sda3 8:3 sda - -
`
	sdaBlank = `attr size 1953525168
attr ro 0
attr removable 0
attr queue/rotational 1
attr queue/discard_max_bytes 0
attr queue/discard_granularity 0
attr queue/logical_block_size 512
node disk sda 8:0 - - -
`
	mountinfo = `22 1 0:21 / / rw,relatime - rootfs rootfs rw
25 22 0:23 / /run rw,nosuid,nodev - tmpfs tmpfs rw,mode=755
31 22 9:127 / /mnt/data\040dir rw,relatime - ext4 /dev/md127 rw
32 31 253:0 / /mnt/data\040dir/srv rw,relatime - xfs /dev/mapper/vg0-data rw
`
	swaps = `Filename				Type		Size		Used		Priority
/dev/sda3                               partition	8388604		0		-2
`
)

func TestDisksOrder(t *testing.T) {
	f := &fakeRunner{outputs: map[string][]string{
		"have mdadm vgchange dmsetup partx": {"mdadm\nvgchange\npartx\n"},
		"inspect sda":                       {sdaInUse, sdaReleased, sdaBlank},
		"cat /proc/self/mountinfo":          {mountinfo},
		"swaps":                             {swaps},
		"blkid /dev/sda":                    {"blkid-exit=2\n"},
	}}
	for _, k := range []string{"umount /mnt/data dir/srv", "umount /mnt/data dir", "swapoff /dev/sda3", "vgchange -an vg0",
		"mdadm --stop /dev/md127", "mdadm --zero-superblock /dev/sda1", "wipefs -a /dev/sda1", "wipefs -a /dev/sda2",
		"wipefs -a /dev/sda3", "wipefs -a /dev/sda", "sgdisk --zap-all /dev/sda",
		"dd if=/dev/zero of=/dev/sda bs=1048576 count=1 conv=notrunc,fsync status=none",
		"dd if=/dev/zero of=/dev/sda bs=1048576 count=1 seek=1000203837440 oflag=seek_bytes conv=notrunc,fsync status=none",
		"partx -d /dev/sda", "blockdev --rereadpt /dev/sda", "wipefs -n /dev/sda"} {
		f.outputs[k] = []string{""}
	}
	if err := Disks(context.Background(), f, []string{"/dev/sda", "/dev/sda"}); err != nil {
		t.Fatalf("Disks: %v\nran: %q", err, f.commands())
	}
	want := []string{
		"have mdadm vgchange dmsetup partx",
		"inspect sda", "cat /proc/self/mountinfo", "swaps",
		"umount /mnt/data dir/srv", "umount /mnt/data dir", "swapoff /dev/sda3",
		"vgchange -an vg0", "mdadm --stop /dev/md127", "mdadm --zero-superblock /dev/sda1",
		"inspect sda",
		"wipefs -a /dev/sda1", "wipefs -a /dev/sda2", "wipefs -a /dev/sda3", "wipefs -a /dev/sda",
		"sgdisk --zap-all /dev/sda",
		"dd if=/dev/zero of=/dev/sda bs=1048576 count=1 conv=notrunc,fsync status=none",
		"dd if=/dev/zero of=/dev/sda bs=1048576 count=1 seek=1000203837440 oflag=seek_bytes conv=notrunc,fsync status=none",
		"partx -d /dev/sda", "blockdev --rereadpt /dev/sda", "inspect sda",
		"wipefs -n /dev/sda", "blkid /dev/sda",
	}
	if got := f.commands(); !slices.Equal(got, want) {
		t.Errorf("commands:\ngot  %q\nwant %q", got, want)
	}
}

func TestDisksRefuses(t *testing.T) {
	blank := func() *fakeRunner {
		return &fakeRunner{outputs: map[string][]string{
			"have mdadm vgchange dmsetup partx": {""},
			"cat /proc/self/mountinfo":          {mountinfo},
			"swaps":                             {"Filename Type Size Used Priority\n"},
		}}
	}
	tests := map[string]struct {
		disks    []string
		setup    func(f *fakeRunner)
		want     error
		contains string
	}{
		"a path that is not /dev/NAME": {disks: []string{"/dev/sda", "/dev/../etc/passwd"}, want: ErrInvalid, contains: "/dev/../etc/passwd"},
		"a partition": {disks: []string{"/dev/sda1"}, want: ErrNoDisk, contains: "is a partition",
			setup: func(f *fakeRunner) { f.outputs["inspect sda1"] = []string{"partition\n"} }},
		"no such disk": {disks: []string{"/dev/sdz"}, want: ErrNoDisk, contains: "/dev/sdz",
			setup: func(f *fakeRunner) { f.outputs["inspect sdz"] = []string{"nodisk\n"} }},
		"md without mdadm": {disks: []string{"/dev/sda"}, want: ErrBusy, contains: "no mdadm",
			setup: func(f *fakeRunner) {
				f.outputs["inspect sda"] = []string{strings.Replace(sdaInUse, "node holder dm-0", "node skip dm-0", 1)}
				f.outputs["umount /mnt/data dir"] = []string{""}
				f.outputs["umount /mnt/data dir/srv"] = []string{""}
			}},
		"LVM without vgchange": {disks: []string{"/dev/sda"}, want: ErrBusy, contains: "no vgchange",
			setup: func(f *fakeRunner) {
				f.outputs["inspect sda"] = []string{sdaInUse}
				f.outputs["umount /mnt/data dir"] = []string{""}
				f.outputs["umount /mnt/data dir/srv"] = []string{""}
			}},
		"a busy mount": {disks: []string{"/dev/sda"}, want: ErrBusy, contains: "unmount /mnt/data dir/srv",
			setup: func(f *fakeRunner) {
				f.outputs["inspect sda"] = []string{sdaInUse}
				f.fails = map[string]string{"umount /mnt/data dir/srv": "umount: /mnt/data dir/srv: target is busy."}
			}},
		"a signature survives": {disks: []string{"/dev/sda"}, want: ErrSurvived, contains: "blkid -p finds PTUUID=1b2c PTTYPE=gpt (exit status 0)",
			setup: func(f *fakeRunner) {
				f.outputs["inspect sda"] = []string{sdaBlank}
				for _, k := range []string{"wipefs -a /dev/sda", "sgdisk --zap-all /dev/sda", "blockdev --rereadpt /dev/sda",
					"dd if=/dev/zero of=/dev/sda bs=1048576 count=1 conv=notrunc,fsync status=none",
					"dd if=/dev/zero of=/dev/sda bs=1048576 count=1 seek=1000203837440 oflag=seek_bytes conv=notrunc,fsync status=none"} {
					f.outputs[k] = []string{""}
				}
				f.outputs["wipefs -n /dev/sda"] = []string{"DEVICE OFFSET TYPE UUID LABEL\nsda 0x200 gpt\n"}
				f.outputs["blkid /dev/sda"] = []string{"DEVNAME=/dev/sda\nPTUUID=1b2c\nPTTYPE=gpt\nblkid-exit=0\n"}
			}},
		"partitions the kernel keeps": {disks: []string{"/dev/sda"}, want: ErrSurvived, contains: "still lists partitions sda1, sda2, sda3",
			setup: func(f *fakeRunner) {
				f.outputs["inspect sda"] = []string{sdaReleased}
				for _, k := range []string{"wipefs -a /dev/sda1", "wipefs -a /dev/sda2", "wipefs -a /dev/sda3", "wipefs -a /dev/sda",
					"sgdisk --zap-all /dev/sda", "blockdev --rereadpt /dev/sda",
					"dd if=/dev/zero of=/dev/sda bs=1048576 count=1 conv=notrunc,fsync status=none",
					"dd if=/dev/zero of=/dev/sda bs=1048576 count=1 seek=1000203837440 oflag=seek_bytes conv=notrunc,fsync status=none"} {
					f.outputs[k] = []string{""}
				}
			}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := blank()
			if tc.setup != nil {
				tc.setup(f)
			}
			err := Disks(context.Background(), f, tc.disks)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("got %v, want %v containing %q (ran %q)", err, tc.want, tc.contains, f.commands())
			}
		})
	}
	t.Run("nothing runs for a bad path", func(t *testing.T) {
		f := blank()
		_ = Disks(context.Background(), f, []string{"/dev/sda", "/dev/sda;reboot"})
		if len(f.commands()) != 0 {
			t.Errorf("ran %q, want nothing", f.commands())
		}
	})
	t.Run("the other disks are wiped when one fails", func(t *testing.T) {
		f := blank()
		f.outputs["inspect sdy"] = []string{"nodisk\n"}
		f.outputs["inspect sdz"] = []string{"nodisk\n"}
		err := Disks(context.Background(), f, []string{"/dev/sdy", "/dev/sdz"})
		if err == nil || !strings.Contains(err.Error(), "wipe /dev/sdy") || !strings.Contains(err.Error(), "wipe /dev/sdz") {
			t.Errorf("got %v, want an error per disk", err)
		}
	})
}

func TestDiskName(t *testing.T) {
	for path, want := range map[string]string{"/dev/sda": "sda", "/dev/nvme0n1": "nvme0n1", "/dev/loop7": "loop7", "/dev/vdb": "vdb"} {
		if got, err := diskName(path); err != nil || got != want {
			t.Errorf("diskName(%q) = %q, %v; want %q", path, got, err, want)
		}
	}
	for _, path := range []string{"sda", "/dev/", "/dev/sda;rm -rf /", "/dev/../sda", "/dev/disk/by-id/x", "/dev/sda ", "/dev/SDA",
		"/dev/-sda", "/dev/$(reboot)", "/dev/sda\n", "/dev/dm-0", "/dev/" + strings.Repeat("a", 33)} {
		if _, err := diskName(path); !errors.Is(err, ErrInvalid) {
			t.Errorf("diskName(%q): got %v, want ErrInvalid", path, err)
		}
	}
}

func TestLVMVG(t *testing.T) {
	for name, want := range map[string]string{"vg0-root": "vg0", "my--vg-lv--x": "my-vg", "vg-lv-with-dashes": "vg", "novg": "", "a--b": ""} {
		if got := lvmVG(name); got != want {
			t.Errorf("lvmVG(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestParseInspect(t *testing.T) {
	f, err := parseInspect("sda", []byte(sdaInUse))
	if err != nil {
		t.Fatal(err)
	}
	if f.sizeBytes != 1953525168*512 || !f.rotational || f.logicalBlock != 512 {
		t.Errorf("facts: got %+v", f)
	}
	if got := nodeNames(f.partitions()); got != "sda1, sda2, sda3" {
		t.Errorf("partitions: got %s", got)
	}
	if got := nodeNames(f.holders()); got != "md127, dm-0" {
		t.Errorf("holders: got %s", got)
	}
	if hs := f.holders(); !hs[0].isMD() || !hs[1].isDM() || hs[1].dmName != "vg0-data" {
		t.Errorf("holders: got %+v", hs)
	}
	if _, err := parseInspect("sda", []byte("node disk sda;x 8:0 - - -\n")); err == nil {
		t.Error("a device name with a ';' was taken")
	}
	if _, err := parseInspect("sda", []byte("")); err == nil {
		t.Error("empty output was taken")
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/mnt/a\040b`: "/mnt/a b", `/x\011y\134z`: "/x\ty\\z", "/plain": "/plain", `/bad\09`: `/bad\09`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
