//go:build linux

package osimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bareflow/internal/lab/qemulab"
	"bareflow/internal/osconfig"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// needOrSkip skips the test (or fails it with BAREFLOW_REQUIRE_INTEGRATION=1)
// when a build reports a missing tool.
func needOrSkip(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, ErrMissingTool) {
		qemulab.SkipOrFail(t, "%v (scripts/ci-deps.sh installs it)", err)
	}
}

func sh(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := run(context.Background(), argv...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// sfdiskTable is sfdisk --json's view of an image.
type sfdiskTable struct {
	Label      string `json:"label"`
	FirstLBA   int64  `json:"firstlba"`
	LastLBA    int64  `json:"lastlba"`
	Partitions []struct {
		Start int64  `json:"start"`
		Size  int64  `json:"size"`
		Type  string `json:"type"`
		Name  string `json:"name"`
		Attrs string `json:"attrs"`
		Boot  bool   `json:"bootable"`
	} `json:"partitions"`
}

func readTable(t *testing.T, disk string) sfdiskTable {
	t.Helper()
	var d struct {
		Table sfdiskTable `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(sh(t, "sfdisk", "--json", disk)), &d); err != nil {
		t.Fatal(err)
	}
	return d.Table
}

// probe is blkid's low-level probe of the filesystem at offset in disk.
func probe(t *testing.T, disk string, offset int64) map[string]string {
	t.Helper()
	out := sh(t, "blkid", "-p", "-o", "export", "-O", fmt.Sprint(offset), disk)
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

// extStat is debugfs's stat of path in the ext4 root of img.
func extStat(t *testing.T, img Image, p string) string {
	t.Helper()
	out, err := runCmd(context.Background(), command{
		argv: []string{"debugfs", "-R", "stat " + p, fmt.Sprintf("%s?offset=%d", img.Path, img.Root.Start)},
		env:  []string{"DEBUGFS_PAGER=__none__"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestConfigImages(t *testing.T) {
	cache := t.TempDir()
	for _, tc := range []struct {
		name  string
		opts  ConfigOptions
		files map[string][]string // path → lines it must hold
		dirs  []string            // folders that must exist
		gone  []string            // paths that must not exist
		mode  map[string]string   // path → debugfs "Mode:" value
	}{
		{
			name: "debian-gpt",
			opts: ConfigOptions{Family: Debian},
			files: map[string][]string{
				"/etc/os-release":         {"ID=debian", `VERSION_ID="12"`},
				"/etc/hostname":           {"debian"},
				"/etc/hosts":              {"127.0.0.1\tlocalhost"},
				"/etc/shadow":             {"root:*:19700:0:99999:7:::"},
				"/etc/network/interfaces": {"source /etc/network/interfaces.d/*", "iface lo inet loopback"},
			},
			dirs: []string{"/etc/network/interfaces.d", "/root", "/var/lib", "/tmp"},
			gone: []string{"/root/.ssh", "/var/lib/cloud"},
			mode: map[string]string{"/etc/shadow": "0640", "/tmp": "01777", "/root": "0700"},
		},
		{
			name: "rhel-gpt",
			opts: ConfigOptions{Family: RHEL, Hostname: "rocky9"},
			files: map[string][]string{
				"/etc/os-release": {`ID="rocky"`, `ID_LIKE="rhel centos fedora"`, `VERSION_ID="9.3"`},
				"/etc/hostname":   {"rocky9"},
				"/etc/shadow":     {"root:*:19700:0:99999:7:::"},
			},
			dirs: []string{"/etc/NetworkManager/system-connections", "/etc/sysconfig/network-scripts"},
			gone: []string{"/root/.ssh", "/var/lib/cloud", "/etc/network"},
			mode: map[string]string{"/etc/shadow": "0000", "/etc/NetworkManager/system-connections": "0700"},
		},
		{
			name:  "debian-dos-small",
			opts:  ConfigOptions{Family: Debian, Table: DOS, Size: 96 * MiB, RootSize: 48 * MiB},
			files: map[string][]string{"/etc/os-release": {"ID=debian"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			start := time.Now()
			img, err := BuildConfig(ctx, cache, tc.opts)
			needOrSkip(t, err)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("built %s in %v", img.Path, time.Since(start).Round(time.Millisecond))
			o := tc.opts.withDefaults()
			checkLayout(t, img, o.Size, o.RootSize, o.Table, false)

			// The root filesystem, as blkid sees it.
			fsys := probe(t, img.Path, img.Root.Start)
			if fsys["TYPE"] != "ext4" || fsys["LABEL"] != RootLabel || fsys["UUID"] != img.Root.UUID {
				t.Errorf("root filesystem: got %v, want ext4 labelled root with UUID %s", fsys, img.Root.UUID)
			}
			esp := probe(t, img.Path, img.Boot.Start)
			if esp["TYPE"] != "vfat" || esp["UUID"] != img.Boot.UUID {
				t.Errorf("ESP filesystem: got %v, want vfat with UUID %s", esp, img.Boot.UUID)
			}

			for p, lines := range tc.files {
				b, err := img.ReadRootFile(ctx, p)
				if err != nil {
					t.Errorf("read %s: %v", p, err)
					continue
				}
				for _, l := range lines {
					if !bytes.Contains(b, []byte(l+"\n")) {
						t.Errorf("%s: got %q, want a line %q", p, b, l)
					}
				}
			}
			fstab, err := img.ReadRootFile(ctx, "/etc/fstab")
			if err != nil {
				t.Fatal(err)
			}
			if want := "UUID=" + img.Root.UUID + " / "; !strings.Contains(string(fstab), want) {
				t.Errorf("fstab: got %q, want the root by UUID (%q)", fstab, want)
			}
			if want := "UUID=" + img.Boot.UUID + " "; !strings.Contains(strings.Join(strings.Fields(string(fstab)), " "), want) {
				t.Errorf("fstab: got %q, want the ESP by UUID (%q)", fstab, want)
			}
			for _, d := range tc.dirs {
				if st := extStat(t, img, d); !strings.Contains(st, "Type: directory") {
					t.Errorf("%s: got %q, want a directory", d, firstLine(st))
				}
			}
			for _, p := range tc.gone {
				if _, err := img.ReadRootFile(ctx, p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: got %v, want it absent", p, err)
				}
				if st := extStat(t, img, p); strings.Contains(st, "Type:") {
					t.Errorf("%s: got %q, want it absent", p, firstLine(st))
				}
			}
			for p, mode := range tc.mode {
				if st := extStat(t, img, p); !strings.Contains(st, "Mode:  "+mode+" ") {
					t.Errorf("%s: got %q, want mode %s", p, modeLine(st), mode)
				}
			}
			// Everything belongs to root (the build ran as whoever runs the
			// test), and /etc/shadow's group is shadow on Debian.
			if st := extStat(t, img, "/etc/passwd"); !strings.Contains(st, "User:     0   Group:     0") {
				t.Errorf("/etc/passwd: got %q, want owner 0:0", modeLine(st))
			}

			// bareflow's own edits apply to the image's files.
			shadow, err := img.ReadRootFile(ctx, "/etc/shadow")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := osconfig.SetShadowPassword(shadow, "root", "$6$salt$"+strings.Repeat("a", 86)); err != nil {
				t.Errorf("SetShadowPassword on the image's shadow: %v", err)
			}
			if _, err := osconfig.MergeFstab(fstab, []osconfig.Mount{{UUID: newUUID(), MountPoint: "/data", FSType: "ext4", Pass: 2}}); err != nil {
				t.Errorf("MergeFstab on the image's fstab: %v", err)
			}
		})
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func modeLine(st string) string {
	for _, l := range strings.Split(st, "\n") {
		if strings.Contains(l, "Mode:") {
			return strings.TrimSpace(l)
		}
	}
	return st
}

// checkLayout checks the partition table of an image against its options.
func checkLayout(t *testing.T, img Image, size, rootSize int64, table Table, legacyBoot bool) {
	t.Helper()
	st, err := os.Stat(img.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size || img.Size != size {
		t.Errorf("disk size: got %d (Image says %d), want %d", st.Size(), img.Size, size)
	}
	pt := readTable(t, img.Path)
	if pt.Label != string(table) || len(pt.Partitions) != 2 {
		t.Fatalf("table: got %s with %d partitions, want %s with 2", pt.Label, len(pt.Partitions), table)
	}
	boot, root := pt.Partitions[0], pt.Partitions[1]
	if boot.Start*sector != firstOffset || boot.Size*sector != bootSize {
		t.Errorf("boot partition: got start %d size %d sectors, want 1 MiB and 32 MiB", boot.Start, boot.Size)
	}
	if root.Start*sector != rootOffset || root.Size*sector != rootSize {
		t.Errorf("root partition: got start %d size %d sectors, want %d and %d bytes", root.Start, root.Size, rootOffset, rootSize)
	}
	if end := (root.Start + root.Size) * sector; end >= size-8*MiB {
		t.Errorf("root partition ends at %d of %d bytes: want room to grow", end, size)
	}
	if img.Root.Start != root.Start*sector || img.Root.Size != root.Size*sector {
		t.Errorf("Image.Root: got start %d size %d, want %d %d", img.Root.Start, img.Root.Size, root.Start*sector, root.Size*sector)
	}
	switch table {
	case GPT:
		if boot.Type != TypeESP || root.Type != TypeRootX86_64 || root.Name != RootLabel {
			t.Errorf("gpt types: got %s and %s (%q), want ESP and x86-64 root named root", boot.Type, root.Type, root.Name)
		}
		if got := strings.Contains(boot.Attrs, "LegacyBIOSBootable"); got != legacyBoot {
			t.Errorf("boot partition attrs %q: legacy BIOS bootable %v, want %v", boot.Attrs, got, legacyBoot)
		}
		// The backup table is at the end of the disk.
		if want := size/sector - 34; pt.LastLBA != want {
			t.Errorf("last usable LBA: got %d, want %d", pt.LastLBA, want)
		}
	case DOS:
		if boot.Type != "ef" || root.Type != "83" {
			t.Errorf("dos types: got %s and %s, want ef and 83", boot.Type, root.Type)
		}
		if boot.Boot != legacyBoot {
			t.Errorf("boot partition active: got %v, want %v", boot.Boot, legacyBoot)
		}
	}
}

func TestXFSConfigImage(t *testing.T) {
	ctx := context.Background()
	img, err := BuildConfig(ctx, t.TempDir(), ConfigOptions{Family: RHEL, RootFS: XFS})
	needOrSkip(t, err)
	if err != nil {
		t.Fatal(err)
	}
	o := ConfigOptions{Family: RHEL, RootFS: XFS}.withDefaults()
	checkLayout(t, img, o.Size, o.RootSize, GPT, false)
	fsys := probe(t, img.Path, img.Root.Start)
	if fsys["TYPE"] != "xfs" || fsys["LABEL"] != RootLabel || fsys["UUID"] != img.Root.UUID {
		t.Errorf("root filesystem: got %v, want xfs labelled root with UUID %s", fsys, img.Root.UUID)
	}
	if _, err := img.ReadRootFile(ctx, "/etc/os-release"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ReadRootFile on xfs: got %v, want ErrInvalid", err)
	}
	// xfs_db reads the partition, copied out of the disk.
	part := filepath.Join(t.TempDir(), "root.xfs")
	if err := createSparse(part, img.Root.Size); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(img.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := os.OpenFile(part, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := copySparse(out, io.NewSectionReader(f, img.Root.Start, img.Root.Size), 0); err != nil {
		t.Fatal(err)
	}
	out.Close()
	ls := sh(t, "xfs_db", "-r", "-c", "path /etc", "-c", "ls", part)
	for _, name := range []string{"os-release", "shadow", "fstab", "NetworkManager", "sysconfig"} {
		if !strings.Contains(ls, " "+name+" (good)\n") {
			t.Errorf("/etc of the xfs root: got %s, want %s in it", ls, name)
		}
	}
	inode := sh(t, "xfs_db", "-r", "-c", "path /tmp", "-c", "print core.mode core.uid", part)
	if !strings.Contains(inode, "core.mode = 041777") || !strings.Contains(inode, "core.uid = 0") {
		t.Errorf("/tmp on the xfs root: got %q, want mode 041777 owned by root", inode)
	}
}

func TestCacheReusesAndRacesSafely(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	opts := ConfigOptions{Family: Debian, Size: 64 * MiB, RootSize: 16 * MiB}
	const builders = 4
	imgs := make([]Image, builders)
	errs := make([]error, builders)
	var wg sync.WaitGroup
	for i := range builders {
		wg.Go(func() { imgs[i], errs[i] = BuildConfig(ctx, cache, opts) })
	}
	wg.Wait()
	for i := range builders {
		needOrSkip(t, errs[i])
		if errs[i] != nil {
			t.Fatalf("builder %d: %v", i, errs[i])
		}
		if imgs[i] != imgs[0] {
			t.Errorf("builder %d: got %+v, want %+v", i, imgs[i], imgs[0])
		}
	}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(filepath.Dir(imgs[0].Path)) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("cache folder: got %v, want only the image's folder", names)
	}
	// A second call reuses the image.
	before, err := os.Stat(imgs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := BuildConfig(ctx, cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(again.Path)
	if err != nil {
		t.Fatal(err)
	}
	if again != imgs[0] || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("second build: got %+v, want the cached %+v untouched", again, imgs[0])
	}
	// Other options, another image.
	other, err := BuildConfig(ctx, cache, ConfigOptions{Family: Debian, Size: 64 * MiB, RootSize: 24 * MiB})
	if err != nil {
		t.Fatal(err)
	}
	if other.Key == imgs[0].Key || other.Path == imgs[0].Path {
		t.Errorf("other options: got key %s, want one other than %s", other.Key, imgs[0].Key)
	}
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestConversions(t *testing.T) {
	ctx := context.Background()
	img, err := BuildConfig(ctx, t.TempDir(), ConfigOptions{Family: Debian, Size: 64 * MiB, RootSize: 24 * MiB})
	needOrSkip(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if err := needTools("qemu-img", "zstd"); err != nil {
		needOrSkip(t, err)
	}
	raw, err := img.Raw()
	if err != nil {
		t.Fatal(err)
	}
	if raw.SHA256 != fileSHA(t, img.Path) || raw.Size != img.Size || raw.Format != FormatRaw {
		t.Errorf("raw: got %+v, want the file's digest and size %d", raw, img.Size)
	}
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("qcow2-compress=%v", compress), func(t *testing.T) {
			start := time.Now()
			q, err := img.QCOW2(ctx, compress)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("qcow2 (compressed %v): %d bytes in %v", compress, q.Size, time.Since(start).Round(time.Millisecond))
			if q.SHA256 != fileSHA(t, q.Path) || q.Format != FormatQCOW2 || !strings.HasPrefix(q.Checksum(), "sha256:") {
				t.Errorf("artifact %+v: digest does not match the file", q)
			}
			var info struct {
				Format      string `json:"format"`
				VirtualSize int64  `json:"virtual-size"`
			}
			if err := json.Unmarshal([]byte(sh(t, "qemu-img", "info", "--output=json", q.Path)), &info); err != nil {
				t.Fatal(err)
			}
			if info.Format != "qcow2" || info.VirtualSize != img.Size {
				t.Errorf("qemu-img info: got %+v, want qcow2 of %d bytes", info, img.Size)
			}
			sh(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", img.Path, q.Path)
			again, err := img.QCOW2(ctx, compress)
			if err != nil || again != q {
				t.Errorf("second QCOW2: got %+v, %v, want the cached %+v", again, err, q)
			}
		})
	}
	t.Run("raw.zst", func(t *testing.T) {
		z, err := img.RawZstd(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if z.SHA256 != fileSHA(t, z.Path) || z.Format != FormatRawZstd || z.Size >= img.Size/4 {
			t.Errorf("artifact %+v: digest does not match the file, or it is not small", z)
		}
		cmd := exec.Command("zstd", "-dc", z.Path)
		h := sha256.New()
		cmd.Stdout = h
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != raw.SHA256 {
			t.Errorf("decompressed digest: got %s, want the raw image's %s", got, raw.SHA256)
		}
	})
}

func TestCopyToIsSparse(t *testing.T) {
	img, err := BuildConfig(context.Background(), t.TempDir(), ConfigOptions{Family: Debian, Size: 64 * MiB, RootSize: 24 * MiB})
	needOrSkip(t, err)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.raw")
	if err := img.CopyTo(dst); err != nil {
		t.Fatal(err)
	}
	if got, want := fileSHA(t, dst), fileSHA(t, img.Path); got != want {
		t.Errorf("copy digest: got %s, want %s", got, want)
	}
	if used := diskUsage(t, dst); used > 24*MiB {
		t.Errorf("copy of a 64 MiB image uses %d bytes: want it sparse", used)
	}
}

// diskUsage is the bytes a file's blocks take.
func diskUsage(t *testing.T, p string) int64 {
	t.Helper()
	out := sh(t, "stat", "-c", "%b %B", p)
	var blocks, size int64
	if _, err := fmt.Sscan(out, &blocks, &size); err != nil {
		t.Fatal(err)
	}
	return blocks * size
}

func TestOptionsValidate(t *testing.T) {
	for name, o := range map[string]ConfigOptions{
		"no family":        {},
		"unknown family":   {Family: "arch"},
		"root too big":     {Family: Debian, Size: 64 * MiB, RootSize: 64 * MiB},
		"not whole MiB":    {Family: Debian, Size: 64*MiB + 1},
		"xfs too small":    {Family: RHEL, RootFS: XFS, Size: 512 * MiB, RootSize: 200 * MiB},
		"bad table":        {Family: Debian, Table: "mbr"},
		"bad host name":    {Family: Debian, Hostname: "a b"},
		"unknown root fs":  {Family: Debian, RootFS: "btrfs"},
		"root below 8 MiB": {Family: Debian, RootSize: 4 * MiB},
	} {
		if err := o.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	if err := (ConfigOptions{Family: RHEL, RootFS: XFS}).Validate(); err != nil {
		t.Errorf("xfs defaults: got %v, want valid", err)
	}
	if err := (BootOptions{}).Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("boot options without a ramdisk: got %v, want ErrInvalid", err)
	}
	if err := (BootOptions{RamdiskDir: t.TempDir()}).Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("boot options with an empty ramdisk folder: got %v, want ErrInvalid", err)
	}
}

func TestCPIORoundTrip(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.dir("usr")
	c.dir("usr/lib")
	c.file("usr/lib/modules/6.1/kernel/a.ko", 0o644, []byte("module a"))
	c.file("usr/lib/modules/6.1/modules.dep", 0o644, []byte("kernel/a.ko:\n"))
	c.symlink("usr/lib/modules/6.1/link", "/etc")
	c.charDev("dev/console", 0o600, 5, 1)
	c.file("etc/passwd", 0o644, []byte("x"))
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	got, err := extractCPIO(bytes.NewReader(buf.Bytes()), dir, map[string]string{"usr/lib/modules/": "lib/modules/"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"lib/modules/6.1/kernel/a.ko", "lib/modules/6.1/modules.dep"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("extracted: got %v, want %v (no symlink, nothing outside the prefix)", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "lib/modules/6.1/kernel/a.ko")); err != nil || string(b) != "module a" {
		t.Errorf("a.ko: got %q, %v", b, err)
	}
	// The system's cpio reads the archive too.
	if _, err := lookTool("cpio"); err == nil {
		out, err := runCmd(context.Background(), command{argv: []string{"cpio", "-t", "--quiet"}, stdin: bytes.NewReader(buf.Bytes())})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "dev/console\n") || !strings.Contains(string(out), "usr/lib/modules/6.1/kernel/a.ko\n") {
			t.Errorf("cpio -t: got %q", out)
		}
	}
}
