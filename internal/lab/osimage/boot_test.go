//go:build linux

package osimage

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"bareflow/internal/lab/qemulab"
	"bareflow/internal/osconfig"
)

// ramdiskOrSkip is the built ramdisk (BAREFLOW_RAMDISK_DIR, else the
// repository's build/ramdisk); without one the test skips, or fails with
// BAREFLOW_REQUIRE_INTEGRATION=1 (CI runs make ramdisk first).
func ramdiskOrSkip(t *testing.T) string {
	t.Helper()
	dir, err := FindRamdisk(os.Getenv("BAREFLOW_RAMDISK_DIR"))
	if err != nil {
		qemulab.SkipOrFail(t, "%v", err)
	}
	return dir
}

// imageCache is where the tests keep bootable images between runs:
// BAREFLOW_OSIMAGE_CACHE, else build/osimage of the repository.
func imageCache(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("BAREFLOW_OSIMAGE_CACHE"); d != "" {
		return d
	}
	d, err := filepath.Abs(filepath.Join("..", "..", "..", "build", "osimage"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBootableImage(t *testing.T) {
	ramdisk := ramdiskOrSkip(t)
	ctx := context.Background()
	for _, table := range []Table{GPT, DOS} {
		t.Run(string(table), func(t *testing.T) {
			start := time.Now()
			img, err := BuildBootable(ctx, t.TempDir(), BootOptions{RamdiskDir: ramdisk, Table: table})
			needOrSkip(t, err)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("built %s in %v; %d bytes in use", img.Path, time.Since(start).Round(time.Millisecond), diskUsage(t, img.Path))
			checkLayout(t, img, DefaultBootSize, DefaultBootRootSize, table, true)
			if img.Size >= 128*MiB {
				t.Errorf("image size %d: want below 128 MiB", img.Size)
			}
			if want := "root=UUID=" + img.Root.UUID + " console=ttyS0,115200 rw quiet"; img.CmdLine != want {
				t.Errorf("command line: got %q, want %q", img.CmdLine, want)
			}
			if img.KernelVersion == "" {
				t.Error("no kernel version")
			}

			// The MBR boot code is syslinux's.
			disk, err := os.ReadFile(img.Path)
			if err != nil {
				t.Fatal(err)
			}
			mbr := "gptmbr.bin"
			if table == DOS {
				mbr = "mbr.bin"
			}
			code, err := os.ReadFile(filepath.Join(syslinuxMBRDir, mbr))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(disk[:440], code[:min(440, len(code))]) {
				t.Errorf("MBR boot code is not %s", mbr)
			}

			// The boot partition: syslinux, kernel, initramfs, config.
			fat := img.Path + "@@" + strconv.FormatInt(img.Boot.Start, 10)
			dir := sh(t, "env", "MTOOLS_SKIP_CHECK=1", "mdir", "-a", "-b", "-i", fat, "::/")
			for _, f := range []string{"::/LDLINUX.SYS", "::/LDLINUX.C32", "::/VMLINUZ", "::/INITRD.IMG", "::/SYSLINUX.CFG"} {
				if !strings.Contains(strings.ToUpper(dir), f+"\n") {
					t.Errorf("boot partition: got %q, want %s", dir, f)
				}
			}
			cfg := sh(t, "env", "MTOOLS_SKIP_CHECK=1", "mtype", "-i", fat, "::/syslinux.cfg")
			if !strings.Contains(cfg, "APPEND "+img.CmdLine+"\n") {
				t.Errorf("syslinux.cfg: got %q, want APPEND %s", cfg, img.CmdLine)
			}

			// UEFI: systemd-boot at the removable-media path, its
			// loader.conf and one entry with syslinux's command line.
			loader := filepath.Join(t.TempDir(), "BOOTX64.EFI")
			sh(t, "env", "MTOOLS_SKIP_CHECK=1", "mcopy", "-i", fat, efiLoaderPath, loader)
			got, err := os.ReadFile(loader)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(DefaultSystemdBoot)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, want %s's %d", efiLoaderPath, len(got), DefaultSystemdBoot, len(want))
			}
			if conf := sh(t, "env", "MTOOLS_SKIP_CHECK=1", "mtype", "-i", fat, loaderConfPath); conf != systemdBootLoaderConf {
				t.Errorf("%s: got %q, want %q", loaderConfPath, conf, systemdBootLoaderConf)
			}
			entry := sh(t, "env", "MTOOLS_SKIP_CHECK=1", "mtype", "-i", fat, loaderEntryPath)
			for _, w := range []string{"linux /vmlinuz\n", "initrd /initrd.img\n", "options " + img.CmdLine + "\n"} {
				if !strings.Contains(entry, w) {
					t.Errorf("%s: got %q, want %q in it", loaderEntryPath, entry, w)
				}
			}

			// The root: Debian, busybox init, dropbear, the scripts.
			osr, err := img.ReadRootFile(ctx, "/etc/os-release")
			if err != nil || !bytes.Contains(osr, []byte("\nID=debian\n")) {
				t.Errorf("/etc/os-release: got %q, %v, want ID=debian", osr, err)
			}
			for _, p := range []string{"/bin/busybox", "/usr/sbin/dropbear", "/usr/bin/dropbearkey", "/etc/init.d/rcS", "/etc/bareflow/network", "/etc/inittab"} {
				if st := extStat(t, img, p); !strings.Contains(st, "Type: regular") || !strings.Contains(st, "Mode:  0755") && !strings.HasSuffix(p, "inittab") {
					t.Errorf("%s: got %q, want an executable file", p, modeLine(st))
				}
			}
			if st := extStat(t, img, "/sbin/init"); !strings.Contains(st, "Type: symlink") || !strings.Contains(st, `Fast link dest: "/bin/busybox"`) {
				t.Errorf("/sbin/init: got %q, want a link to /bin/busybox", st)
			}
			fstab, err := img.ReadRootFile(ctx, "/etc/fstab")
			if err != nil || !strings.Contains(string(fstab), "UUID="+img.Root.UUID+" / ext4") {
				t.Errorf("/etc/fstab: got %q, %v, want the root by UUID", fstab, err)
			}
			if _, err := img.ReadRootFile(ctx, "/root/.ssh/authorized_keys"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("authorized_keys: got %v, want none in the image", err)
			}
		})
	}
}

// TestBootableInitramfs checks what the initramfs holds: /init, busybox,
// the console node and the drivers of QEMU's disks and NICs in load order.
func TestBootableInitramfs(t *testing.T) {
	ramdisk := ramdiskOrSkip(t)
	ctx := context.Background()
	work := t.TempDir()
	o := BootOptions{RamdiskDir: ramdisk}.withDefaults()
	if err := o.Validate(); err != nil {
		needOrSkip(t, err)
		t.Fatal(err)
	}
	kver, modules, err := moduleSet(ctx, work, o.initrd(), o.Modules)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s, %d module files", kver, len(modules))
	base := func(m string) string { return strings.TrimSuffix(filepath.Base(m), ".ko") }
	index := map[string]int{}
	for i, m := range modules {
		index[base(m)] = i
	}
	for _, m := range []string{"virtio_blk", "virtio_net", "virtio_pci", "ahci", "sd_mod", "megaraid_sas", "e1000", "ext4", "jbd2"} {
		if _, ok := index[m]; !ok {
			t.Errorf("module %s: not in the set %v", m, modules)
		}
	}
	for _, dep := range [][2]string{{"virtio", "virtio_blk"}, {"libata", "ahci"}, {"jbd2", "ext4"}, {"scsi_mod", "sd_mod"}} {
		if index[dep[0]] >= index[dep[1]] {
			t.Errorf("load order: %s at %d, %s at %d: want the dependency first", dep[0], index[dep[0]], dep[1], index[dep[1]])
		}
	}
	initrd := filepath.Join(work, "initrd.img")
	if err := writeInitramfs(ctx, initrd, o.Busybox, filepath.Join(work, "kmod"), modules); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(initrd)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("initramfs: %d bytes", st.Size())
	if st.Size() > 16*MiB {
		t.Errorf("initramfs of %d bytes: want it small", st.Size())
	}
	r, closeFn, err := decompress(ctx, initrd)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	got, err := extractCPIO(r, out, map[string]string{"": ""})
	if cerr := closeFn(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"init", "bin/busybox", "etc/modules.order", "lib/modules/" + modules[0]} {
		if !slices.Contains(got, want) {
			t.Errorf("initramfs: no %s", want)
		}
	}
	order, err := os.ReadFile(filepath.Join(out, "etc", "modules.order"))
	if err != nil || string(order) != strings.Join(modules, "\n")+"\n" {
		t.Errorf("modules.order: got %q, %v", order, err)
	}
}

// TestInterfacesPlan runs the image's ifupdown parser (busybox awk, as in
// the image) over what bareflow's osconfig renders for Debian, and over
// older hand-written stanzas.
func TestInterfacesPlan(t *testing.T) {
	bb, err := lookTool("busybox")
	if err != nil {
		needOrSkip(t, err)
	}
	cfg := osconfig.Config{
		Hostname: "node01",
		Domain:   "lab.example",
		Interfaces: []osconfig.Interface{
			{Name: "eth0", Addressing: osconfig.Addressing{
				Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("192.0.2.11/24"), netip.MustParsePrefix("2001:db8::10/64")},
				Gateway:   netip.MustParseAddr("192.0.2.1"),
				MTU:       9000,
			}},
			{Name: "lan1", MAC: mustMAC("52:54:00:00:00:02"), Addressing: osconfig.Addressing{DHCP4: true}},
			{Name: "eth2"},
			{Name: "eth3"},
		},
		Bonds: []osconfig.Bond{{Name: "bond0", Members: []string{"eth2", "eth3"}, Mode: "active-backup",
			Addressing: osconfig.Addressing{Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.5/24")}}}},
		DNS:           []netip.Addr{netip.MustParseAddr("192.0.2.53")},
		SearchDomains: []string{"lab.example"},
		Routes:        []osconfig.Route{{To: netip.MustParsePrefix("203.0.113.0/24"), Via: netip.MustParseAddr("192.0.2.254")}},
	}
	files, err := osconfig.Render(osconfig.Debian, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var rendered []byte
	for _, f := range files {
		if f.Path == "/etc/network/interfaces" {
			rendered = f.Content
		}
	}
	if rendered == nil {
		t.Fatal("osconfig rendered no /etc/network/interfaces")
	}
	legacy := "allow-hotplug eth9\niface eth9 inet static\n  address 203.0.113.9\n  netmask 255.255.255.128\n  gateway 203.0.113.1\n" +
		"# a comment\n\nauto eth10\niface eth10 inet6 static\n\taddress 2001:db8:1::10\n\tnetmask 48\n"
	var golden strings.Builder
	for _, in := range []struct{ name, text string }{{"osconfig", string(rendered)}, {"legacy", legacy}} {
		p := filepath.Join(t.TempDir(), "interfaces")
		if err := os.WriteFile(p, []byte(in.text), 0o644); err != nil {
			t.Fatal(err)
		}
		plan, err := run(context.Background(), bb, "awk", "-f", "files/interfaces.awk", p)
		if err != nil {
			t.Fatal(err)
		}
		golden.WriteString("=== " + in.name + " input\n" + in.text + "=== " + in.name + " plan\n" + string(plan))
	}
	compareGolden(t, "testdata/interfaces-plan.golden", golden.String())
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s: got\n%s\nwant\n%s", path, got, want)
	}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
