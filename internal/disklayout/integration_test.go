//go:build linux

package disklayout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bareflow/internal/osconfig"
)

// localRunner runs commands on this machine.
type localRunner struct{}

func (localRunner) Run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error) {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdin = stdin
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("BAREFLOW_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("integration required: %s", reason)
	}
	t.Skip("skipping: " + reason)
}

func sh(t *testing.T, ctx context.Context, argv ...string) []byte {
	t.Helper()
	out, err := localRunner{}.Run(ctx, argv, nil)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return out
}

// buildImage makes a 96 MiB GPT disk image with a 64 MiB ext4 partition
// labelled root, filled from a directory holding /etc/os-release,
// /etc/hostname, /etc/fstab and the symlink /etc/evil -> outside.
func buildImage(t *testing.T, ctx context.Context, dir, outside string) string {
	etc := filepath.Join(dir, "tree", "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"os-release": "ID=debian\nVERSION_ID=12\n",
		"hostname":   "image\n",
		"fstab":      "# image fstab\n",
	} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(etc, "evil")); err != nil {
		t.Fatal(err)
	}
	fsImg := filepath.Join(dir, "root.ext4")
	sh(t, ctx, "mkfs.ext4", "-q", "-F", "-L", "root", "-d", filepath.Join(dir, "tree"), fsImg, "64M")
	img := filepath.Join(dir, "disk.img")
	sh(t, ctx, "truncate", "-s", "96M", img)
	sh(t, ctx, "sgdisk", "-n", "1:2048:+64M", "-t", "1:8300", "-c", "1:root", img)
	sh(t, ctx, "dd", "if="+fsImg, "of="+img, "bs=1M", "seek=1", "conv=notrunc", "status=none")
	return img
}

// TestDiskForReal writes a small image onto a 256 MiB loop device, so its
// backup GPT header is not at the end, then inspects, grows, adds a data
// partition, repeats the grow, mounts the root, writes files and edits
// fstab. It needs root and loop devices, and skips (or fails with
// BAREFLOW_REQUIRE_INTEGRATION=1) without them.
func TestDiskForReal(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: uses loop devices (-short)")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for loop devices and mount")
	}
	for _, tool := range []string{"losetup", "sgdisk", "sfdisk", "partx", "blkid", "mkfs.ext4", "e2fsck", "resize2fs", "tune2fs", "wipefs", "mount", "umount", "blockdev"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" not found")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	outside := t.TempDir()
	img := buildImage(t, ctx, dir, outside)

	backing := filepath.Join(dir, "disk256")
	sh(t, ctx, "truncate", "-s", "256M", backing)
	out, err := localRunner{}.Run(ctx, []string{"losetup", "--find", "--show", "--partscan", backing}, nil)
	if err != nil {
		skipOrFail(t, fmt.Sprintf("no loop device: %v", err))
	}
	disk := strings.TrimSpace(string(out))
	mnt := filepath.Join(dir, "mnt")
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = localRunner{}.Run(ctx, []string{"umount", mnt}, nil)
		if _, err := (localRunner{}).Run(ctx, []string{"losetup", "-d", disk}, nil); err != nil {
			t.Errorf("detach %s: %v", disk, err)
		}
	})
	sh(t, ctx, "dd", "if="+img, "of="+disk, "bs=1M", "conv=fsync", "status=none")
	r := localRunner{}

	l, err := Inspect(ctx, r, disk)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if _, err := os.Stat(disk + "p1"); err != nil {
		skipOrFail(t, fmt.Sprintf("kernel made no partition node for %s after partx -u: %v", disk, err))
	}
	root, err := l.RootPartition()
	if err != nil {
		t.Fatalf("RootPartition: %v (layout %+v)", err, l)
	}
	if root.Number != 1 || root.Label != "root" || root.FSType != FSExt4 || l.Table != TableGPT {
		t.Fatalf("root = %+v table %s, want partition 1 labelled root, ext4, gpt", root, l.Table)
	}
	if !backupMisplaced(l) {
		t.Fatalf("backup header at the end before FixAndGrow; want it misplaced (layout %+v)", l)
	}

	extra := []ExtraPartition{{Label: "data", Size: 32 * mib, FSType: FSExt4}}
	l, err = FixAndGrow(ctx, r, disk, root, 160*mib, extra)
	if err != nil {
		t.Fatalf("FixAndGrow: %v", err)
	}
	checkLayout(t, ctx, disk, l)
	tableBefore := sh(t, ctx, "sfdisk", "--json", disk)
	rootFS := sh(t, ctx, "tune2fs", "-l", root.Path)
	data, _ := l.ByLabel("data")

	l2, err := FixAndGrow(ctx, r, disk, root, 160*mib, extra)
	if err != nil {
		t.Fatalf("second FixAndGrow: %v", err)
	}
	if got := sh(t, ctx, "sfdisk", "--json", disk); !bytes.Equal(got, tableBefore) {
		t.Errorf("second FixAndGrow changed the table: got %s, want %s", got, tableBefore)
	}
	if got := sh(t, ctx, "tune2fs", "-l", root.Path); !bytes.Equal(got, rootFS) {
		t.Errorf("second FixAndGrow changed the root filesystem: got %s, want %s", got, rootFS)
	}
	if d2, _ := l2.ByLabel("data"); d2.UUID != data.UUID {
		t.Errorf("data UUID after second run = %s, want %s", d2.UUID, data.UUID)
	}

	unmount, err := MountRoot(ctx, r, root, mnt)
	if err != nil {
		t.Fatalf("MountRoot: %v", err)
	}
	files := []osconfig.File{
		{Path: "/etc/hostname", Mode: 0o644, Content: []byte("node1\n")},
		{Path: "/etc/bareflow", Mode: fs0755Dir},
		{Path: "/etc/bareflow/secret.conf", Mode: 0o600, Content: []byte("token\n")},
		{Path: "/var/lib/new/deep/file", Mode: 0o640, Content: []byte("x")},
	}
	if err := WriteFiles(ctx, r, mnt, files); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	for _, f := range files {
		fi, err := os.Lstat(filepath.Join(mnt, f.Path))
		if err != nil {
			t.Fatalf("stat %s: %v", f.Path, err)
		}
		if fi.Mode() != f.Mode {
			t.Errorf("mode of %s = %v, want %v", f.Path, fi.Mode(), f.Mode)
		}
		if f.IsDir() {
			continue
		}
		if got, _ := os.ReadFile(filepath.Join(mnt, f.Path)); !bytes.Equal(got, f.Content) {
			t.Errorf("content of %s = %q, want %q", f.Path, got, f.Content)
		}
	}
	for _, p := range []string{"/etc/evil/x", "/etc/hostname/x"} {
		err = WriteFiles(ctx, r, mnt, []osconfig.File{{Path: p, Mode: 0o644, Content: []byte("pwned")}})
		if !errors.Is(err, ErrSymlink) {
			t.Errorf("write %s: got %v, want ErrSymlink", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(outside, "x")); !os.IsNotExist(err) {
		t.Errorf("write through /etc/evil reached %s/x: %v", outside, err)
	}
	if _, err := readFile(ctx, r, mnt, "/etc/evil/x"); !errors.Is(err, ErrSymlink) {
		t.Errorf("read /etc/evil/x: got %v, want ErrSymlink", err)
	}

	mounts := []osconfig.Mount{{UUID: data.UUID, MountPoint: "/srv/data", FSType: "ext4", Pass: 2}}
	edit := osconfig.Edit{Path: "/etc/fstab", Apply: func(old []byte) ([]byte, error) { return osconfig.MergeFstab(old, mounts) }}
	fstab := filepath.Join(mnt, "etc", "fstab")
	if err := os.Chmod(fstab, 0o604); err != nil {
		t.Fatal(err)
	}
	var prev []byte
	for i := range 2 {
		if err := ApplyEdits(ctx, r, mnt, []osconfig.Edit{edit}); err != nil {
			t.Fatalf("ApplyEdits run %d: %v", i+1, err)
		}
		got, err := os.ReadFile(fstab)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(got), "# image fstab\n") || !strings.Contains(string(got), "UUID="+data.UUID) {
			t.Errorf("fstab after run %d = %q, want the image's line and UUID=%s", i+1, got, data.UUID)
		}
		if i == 1 && !bytes.Equal(got, prev) {
			t.Errorf("second ApplyEdits changed fstab: got %q, want %q", got, prev)
		}
		prev = got
	}
	if fi, _ := os.Stat(fstab); fi.Mode().Perm() != 0o604 {
		t.Errorf("fstab mode = %v, want 0604 kept", fi.Mode().Perm())
	}
	if err := unmount(ctx); err != nil {
		t.Fatalf("unmount: %v", err)
	}
}

const fs0755Dir = os.ModeDir | 0o755

// checkLayout checks the table and filesystems after FixAndGrow with
// sfdisk and tune2fs.
func checkLayout(t *testing.T, ctx context.Context, disk string, l Layout) {
	t.Helper()
	var d sfdiskDump
	if err := json.Unmarshal(sh(t, ctx, "sfdisk", "--json", disk), &d); err != nil {
		t.Fatal(err)
	}
	ps := d.Table.Partitions
	if len(ps) != 2 {
		t.Fatalf("partitions = %+v, want 2", ps)
	}
	if got, want := ps[0].Size*512, int64(160*mib); got != want {
		t.Errorf("root partition size = %d, want %d", got, want)
	}
	if ps[1].Name != "data" || ps[1].Size*512 != 32*mib || ps[1].Start*512 < (ps[0].Start+ps[0].Size)*512 {
		t.Errorf("data partition = %+v, want 32 MiB named data after root", ps[1])
	}
	if got, want := d.Table.LastLBA, int64(256*mib/512-34); got != want {
		t.Errorf("last usable LBA = %d, want %d (backup header at the end)", got, want)
	}
	count, bsize, err := parseTune2fs(sh(t, ctx, "tune2fs", "-l", ps[0].Node))
	if err != nil {
		t.Fatal(err)
	}
	if count*bsize != 160*mib {
		t.Errorf("root filesystem = %d bytes, want %d", count*bsize, 160*mib)
	}
	data, ok := l.ByLabel("data")
	if !ok || data.FSType != FSExt4 || data.UUID == "" || data.FSLabel != "data" {
		t.Errorf("data partition in layout = %+v, want ext4 labelled data with a UUID", data)
	}
}
