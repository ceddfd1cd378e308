package osimage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed files
var scripts embed.FS

// Defaults of BootOptions.
const (
	DefaultBootSize     = 96 * MiB
	DefaultBootRootSize = 40 * MiB
	DefaultBootHostname = "bareflow-os"
)

// DefaultBootModules are the kernel modules the bootable image's
// initramfs loads: QEMU's disks and NICs, the root filesystem, and the
// ACPI power button. A name the ramdisk's kernel does not have is skipped.
var DefaultBootModules = []string{
	"virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net",
	"ahci", "ata_piix", "sd_mod", "megaraid_sas",
	"e1000", "e1000e",
	"ext4", "crc32c_generic",
	"button", "evdev",
}

// Syslinux's boot programs and the bootable image's kernel command line.
const (
	syslinuxMBRDir = "/usr/lib/syslinux/mbr"
	cmdlineFormat  = "root=UUID=%s console=ttyS0,115200 rw quiet"
)

// DefaultSystemdBoot is systemd-boot's UEFI program from Debian's
// systemd-boot-efi package: the bootable image's UEFI boot loader.
const DefaultSystemdBoot = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"

// Where the UEFI boot loader and its configuration go on the boot
// partition. EFI/BOOT/BOOTX64.EFI is the removable-media path that UEFI
// firmware boots from a disk without a boot entry of its own in NVRAM,
// which a freshly written disk never has.
const (
	efiLoaderPath   = "::/EFI/BOOT/BOOTX64.EFI"
	loaderConfPath  = "::/loader/loader.conf"
	loaderEntryPath = "::/loader/entries/bareflow.conf"
)

// BootOptions describe a bootable image.
type BootOptions struct {
	// RamdiskDir is a built bareflow PXE ramdisk (make ramdisk): its
	// vmlinuz is the image's kernel and its initrd.img gives the kernel
	// modules. Required.
	RamdiskDir string
	// Size is the disk's size in bytes, whole MiB; default
	// DefaultBootSize.
	Size int64
	// RootSize is the ext4 root partition's size, whole MiB; default
	// DefaultBootRootSize.
	RootSize int64
	// Table is GPT (default: gptmbr.bin and the legacy-BIOS-bootable
	// attribute) or DOS (mbr.bin and the active flag).
	Table Table
	// Hostname is /etc/hostname's content; default DefaultBootHostname.
	Hostname string
	// Modules are the kernel modules the initramfs loads; default
	// DefaultBootModules.
	Modules []string
	// Busybox, Dropbear and Dropbearkey are the host's programs to copy
	// in (with their shared libraries); defaults /bin/busybox (or
	// /usr/bin/busybox), /usr/sbin/dropbear, /usr/bin/dropbearkey.
	Busybox, Dropbear, Dropbearkey string
	// SystemdBoot is the systemd-boot EFI program that becomes the boot
	// partition's EFI/BOOT/BOOTX64.EFI; default DefaultSystemdBoot.
	SystemdBoot string
}

func (o BootOptions) withDefaults() BootOptions {
	if o.Size == 0 {
		o.Size = DefaultBootSize
	}
	if o.RootSize == 0 {
		o.RootSize = DefaultBootRootSize
	}
	if o.Table == "" {
		o.Table = GPT
	}
	if o.Hostname == "" {
		o.Hostname = DefaultBootHostname
	}
	if o.Modules == nil {
		o.Modules = DefaultBootModules
	}
	if o.Busybox == "" {
		o.Busybox = "/bin/busybox"
		if _, err := os.Stat(o.Busybox); err != nil {
			o.Busybox = "/usr/bin/busybox"
		}
	}
	if o.Dropbear == "" {
		o.Dropbear = "/usr/sbin/dropbear"
	}
	if o.Dropbearkey == "" {
		o.Dropbearkey = "/usr/bin/dropbearkey"
	}
	if o.SystemdBoot == "" {
		o.SystemdBoot = DefaultSystemdBoot
	}
	return o
}

// Validate checks the options, defaults applied, and that the files they
// name exist (a missing program wraps ErrMissingTool).
func (o BootOptions) Validate() error {
	o = o.withDefaults()
	if o.RamdiskDir == "" {
		return fmt.Errorf("%w: no ramdisk folder", ErrInvalid)
	}
	if err := o.Table.Validate(); err != nil {
		return err
	}
	if err := validateHostname(o.Hostname); err != nil {
		return err
	}
	if err := validateSizes(o.Size, o.RootSize, Ext4); err != nil {
		return err
	}
	for _, m := range o.Modules {
		if m == "" || strings.ContainsAny(m, "/ \t\n") {
			return fmt.Errorf("%w: module name %q", ErrInvalid, m)
		}
	}
	for _, f := range []string{o.kernel(), o.initrd()} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			return fmt.Errorf("%w: %s is missing or empty (make ramdisk builds it)", ErrInvalid, f)
		}
	}
	for _, f := range []string{o.Busybox, o.Dropbear, o.Dropbearkey, o.mbr(), o.SystemdBoot} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w: %s", ErrMissingTool, f)
		}
	}
	return needTools("syslinux", "modprobe", "ldd", "zstd")
}

func (o BootOptions) kernel() string { return filepath.Join(o.RamdiskDir, "vmlinuz") }
func (o BootOptions) initrd() string { return filepath.Join(o.RamdiskDir, "initrd.img") }

func (o BootOptions) mbr() string {
	if o.Table == DOS {
		return filepath.Join(syslinuxMBRDir, "mbr.bin")
	}
	return filepath.Join(syslinuxMBRDir, "gptmbr.bin")
}

// BuildBootable returns the bootable image for o from the cache folder
// cacheDir, building it there first when it is missing. No step needs
// root.
func BuildBootable(ctx context.Context, cacheDir string, o BootOptions) (Image, error) {
	if err := o.Validate(); err != nil {
		return Image{}, err
	}
	o = o.withDefaults()
	var scriptHash []string
	entries, err := scripts.ReadDir("files")
	if err != nil {
		return Image{}, err
	}
	for _, e := range entries {
		b, err := scripts.ReadFile("files/" + e.Name())
		if err != nil {
			return Image{}, err
		}
		scriptHash = append(scriptHash, e.Name(), string(b))
	}
	parts := append([]string{recipeVersion, "bootable", fmt.Sprint(o.Size), fmt.Sprint(o.RootSize), string(o.Table),
		o.Hostname, strings.Join(o.Modules, ","), toolVersions(ctx),
		"file:" + o.kernel(), "file:" + o.initrd(), "file:" + o.Busybox, "file:" + o.Dropbear,
		"file:" + o.Dropbearkey, "file:" + o.mbr(), "file:" + o.SystemdBoot}, scriptHash...)
	key, err := hashInputs(parts...)
	if err != nil {
		return Image{}, err
	}
	name := fmt.Sprintf("bootable-%s-%s", o.Table, key[:16])
	return cached(ctx, cacheDir, name, func(ctx context.Context, work, disk string) (Image, error) {
		return buildBootable(ctx, work, disk, o, key)
	})
}

func buildBootable(ctx context.Context, work, disk string, o BootOptions, key string) (Image, error) {
	kver, modules, err := moduleSet(ctx, work, o.initrd(), o.Modules)
	if err != nil {
		return Image{}, err
	}
	initrd := filepath.Join(work, "initrd.img")
	if err := writeInitramfs(ctx, initrd, o.Busybox, filepath.Join(work, "kmod"), modules); err != nil {
		return Image{}, fmt.Errorf("initramfs: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(work, "kmod")); err != nil {
		return Image{}, err
	}
	rootUUID := newUUID()
	cmdline := fmt.Sprintf(cmdlineFormat, rootUUID)
	bootVol := randomHex(4)
	t, err := bootTree(ctx, o, rootUUID, bootVol)
	if err != nil {
		return Image{}, err
	}
	syslinuxCfg := filepath.Join(work, "syslinux.cfg")
	cfg := "SERIAL 0 115200\nDEFAULT bareflow\nPROMPT 0\nTIMEOUT 0\n\nLABEL bareflow\n" +
		"  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND " + cmdline + "\n"
	if err := os.WriteFile(syslinuxCfg, []byte(cfg), 0o644); err != nil {
		return Image{}, err
	}
	loaderConf, loaderEntry := filepath.Join(work, "loader.conf"), filepath.Join(work, "bareflow.conf")
	if err := os.WriteFile(loaderConf, []byte(systemdBootLoaderConf), 0o644); err != nil {
		return Image{}, err
	}
	if err := os.WriteFile(loaderEntry, []byte(systemdBootEntry(cmdline)), 0o644); err != nil {
		return Image{}, err
	}
	img, err := assemble(ctx, work, disk, diskSpec{
		size: o.Size, table: o.Table, rootSize: o.RootSize, rootFS: Ext4,
		bootName: "boot", legacyBoot: true, bootVolID: bootVol, bootCode: o.mbr(),
		root: t, rootUUID: rootUUID,
		fillBoot: func(ctx context.Context, fat string) error {
			if err := mtools(ctx, "mmd", "-i", fat, "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries"); err != nil {
				return err
			}
			for _, f := range [][2]string{
				{o.kernel(), "::/vmlinuz"}, {initrd, "::/initrd.img"}, {syslinuxCfg, "::/syslinux.cfg"},
				{o.SystemdBoot, efiLoaderPath}, {loaderConf, loaderConfPath}, {loaderEntry, loaderEntryPath},
			} {
				if err := mtools(ctx, "mcopy", "-i", fat, "-o", f[0], f[1]); err != nil {
					return err
				}
			}
			_, err := runCmd(ctx, command{argv: []string{"syslinux", "--install", fat}, env: []string{"MTOOLS_SKIP_CHECK=1"}})
			return err
		},
	})
	if err != nil {
		return Image{}, err
	}
	img.Key, img.Kind, img.Family, img.Hostname = key, "bootable", Debian, o.Hostname
	img.KernelVersion, img.CmdLine = kver, cmdline
	return img, nil
}

// systemdBootLoaderConf is systemd-boot's loader.conf: boot the one entry
// at once (timeout 0 shows no menu unless a key is held), and offer no
// command line editor.
const systemdBootLoaderConf = "default bareflow.conf\ntimeout 0\neditor no\n"

// systemdBootEntry is the boot loader entry (systemd's Boot Loader
// Specification, type 1) that starts the same kernel, initramfs and
// command line as syslinux.cfg. The kernel is an EFI stub, which
// systemd-boot starts as an EFI program, handing it the initramfs.
func systemdBootEntry(cmdline string) string {
	return "title bareflow lab OS\nlinux /vmlinuz\ninitrd /initrd.img\noptions " + cmdline + "\n"
}

// moduleSet extracts the kernel modules from the ramdisk's initrd into
// work/kmod/lib/modules/VERSION and returns the kernel version and the
// .ko files that the wanted modules need, dependencies first, as paths
// relative to work/kmod/lib/modules.
func moduleSet(ctx context.Context, work, initrd string, wanted []string) (string, []string, error) {
	kmod := filepath.Join(work, "kmod")
	r, closeFn, err := decompress(ctx, initrd)
	if err != nil {
		return "", nil, err
	}
	_, err = extractCPIO(r, kmod, map[string]string{"usr/lib/modules/": "lib/modules/", "lib/modules/": "lib/modules/"})
	if cerr := closeFn(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", initrd, err)
	}
	dirs, err := os.ReadDir(filepath.Join(kmod, "lib", "modules"))
	if err != nil || len(dirs) != 1 {
		return "", nil, fmt.Errorf("%s holds no single lib/modules/VERSION folder", initrd)
	}
	kver := dirs[0].Name()
	base := filepath.Join(kmod, "lib", "modules") + "/"
	var order []string
	for _, m := range wanted {
		out, err := run(ctx, "modprobe", "-d", kmod, "-S", kver, "--show-depends", m)
		if err != nil {
			continue // not in this kernel, or not in the ramdisk
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "insmod" {
				continue
			}
			rel, ok := strings.CutPrefix(f[1], base)
			if ok && !slices.Contains(order, rel) {
				order = append(order, rel)
			}
		}
	}
	if len(order) == 0 {
		return "", nil, fmt.Errorf("none of the modules %v is in %s", wanted, initrd)
	}
	return kver, order, nil
}

// decompress opens a gzip or zstd compressed file (or an uncompressed
// one) for reading.
func decompress(ctx context.Context, p string) (io.Reader, func() error, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil {
		f.Close()
		return nil, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	switch {
	case bytes.Equal(magic[:2], []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		return zr, f.Close, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		f.Close()
		zstd, err := lookTool("zstd")
		if err != nil {
			return nil, nil, err
		}
		cmd := exec.CommandContext(ctx, zstd, "-dc", p)
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, nil, err
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		return out, func() error {
			_, _ = io.Copy(io.Discard, out)
			if err := cmd.Wait(); err != nil {
				return fmt.Errorf("zstd -dc %s: %w: %s", p, err, stderr.String())
			}
			return nil
		}, nil
	}
	return f, f.Close, nil
}

// elfClosure returns prog and the shared libraries it loads (with the
// dynamic loader), as host paths; a static program is alone.
func elfClosure(ctx context.Context, prog string) ([]string, error) {
	ef, err := elf.Open(prog)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prog, err)
	}
	dynamic := false
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			dynamic = true
		}
	}
	ef.Close()
	if !dynamic {
		return []string{prog}, nil
	}
	out, err := run(ctx, "ldd", prog)
	if err != nil {
		return nil, err
	}
	files := []string{prog}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			files = append(files, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			files = append(files, f[0])
		}
	}
	return files, nil
}

// writeInitramfs writes the zstd-compressed cpio initramfs (as bareflow's
// ramdisk is: the kernel unpacks zstd fast): /init, busybox with its
// applets (and libraries), the modules with /etc/modules.order, and the
// console device.
func writeInitramfs(ctx context.Context, dst, busybox, kmod string, modules []string) error {
	archive := dst + ".cpio"
	defer os.Remove(archive)
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	c := newCPIOWriter(f)
	dirs := map[string]bool{}
	mkdirs := func(p string) {
		var parts []string
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			parts = append(parts, d)
		}
		slices.Reverse(parts)
		for _, d := range parts {
			if !dirs[d] {
				dirs[d] = true
				c.dir(d)
			}
		}
	}
	for _, d := range []string{"bin", "dev", "etc", "lib", "lib64", "newroot", "proc", "run", "sys", "tmp"} {
		dirs[d] = true
		c.dir(d)
	}
	c.charDev("dev/console", 0o600, 5, 1)
	c.charDev("dev/null", 0o666, 1, 3)
	init, err := scripts.ReadFile("files/initramfs-init")
	if err != nil {
		return err
	}
	c.file("init", 0o755, init)

	files, err := elfClosure(ctx, busybox)
	if err != nil {
		return err
	}
	for i, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "/")
		if i == 0 {
			name = "bin/busybox"
		}
		mkdirs(name)
		c.file(name, 0o755, b)
	}
	applets, err := run(ctx, busybox, "--list")
	if err != nil {
		return err
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			c.symlink("bin/"+a, "busybox")
		}
	}

	var order strings.Builder
	for _, m := range modules {
		b, err := os.ReadFile(filepath.Join(kmod, "lib", "modules", filepath.FromSlash(m)))
		if err != nil {
			return err
		}
		name := "lib/modules/" + m
		mkdirs(name)
		c.file(name, 0o644, b)
		order.WriteString(m + "\n")
	}
	c.file("etc/modules.order", 0o644, []byte(order.String()))
	if err := c.close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = run(ctx, "zstd", "-q", "-f", "-9", "-T0", "-o", dst, archive)
	return err
}

// bootTree is the root filesystem of the bootable image.
func bootTree(ctx context.Context, o BootOptions, rootUUID, bootVol string) (*tree, error) {
	t := newTree()
	baseTree(t)
	for _, prog := range [][2]string{{o.Busybox, "bin/busybox"}, {o.Dropbear, "usr/sbin/dropbear"}, {o.Dropbearkey, "usr/bin/dropbearkey"}} {
		files, err := elfClosure(ctx, prog[0])
		if err != nil {
			return nil, err
		}
		t.copyFile(prog[1], 0o755, files[0])
		for _, lib := range files[1:] {
			real, err := filepath.EvalSymlinks(lib)
			if err != nil {
				return nil, err
			}
			t.copyFile(lib, 0o755, real)
		}
	}
	applets, err := run(ctx, o.Busybox, "--list-full")
	if err != nil {
		return nil, err
	}
	for _, a := range strings.Fields(string(applets)) {
		if !t.has(a) {
			t.symlink(a, "/bin/busybox")
		}
	}
	if !t.has("sbin/init") || !t.has("bin/sh") {
		return nil, fmt.Errorf("%s has no init or sh applet", o.Busybox)
	}
	for _, s := range []struct {
		name, dst string
		perm      fs.FileMode
	}{
		{"inittab", "etc/inittab", 0o644},
		{"rcS", "etc/init.d/rcS", 0o755},
		{"network", "etc/bareflow/network", 0o755},
		{"interfaces.awk", "etc/bareflow/interfaces.awk", 0o644},
		{"udhcpc.script", "etc/bareflow/udhcpc.script", 0o755},
		{"acpi-power", "etc/acpi/PWRF/00000080", 0o755},
		{"host-agent", "etc/bareflow/host-agent", 0o755},
	} {
		b, err := scripts.ReadFile("files/" + s.name)
		if err != nil {
			return nil, err
		}
		t.file(s.dst, s.perm, string(b))
	}
	t.file("etc/hostname", 0o644, o.Hostname+"\n")
	debianTree(t, ConfigOptions{Family: Debian, RootFS: Ext4}, rootUUID, bootVol)
	// The boot partition is not mounted: nothing in the running system
	// needs it, and the installer may rewrite it.
	t.file("etc/fstab", 0o644, fmt.Sprintf("# /etc/fstab: static file system information.\nUUID=%s / ext4 errors=remount-ro 0 1\n", rootUUID))
	t.file("etc/profile", 0o644, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PATH\nPS1='\\h:\\w\\$ '\n")
	t.file("etc/issue", 0o644, "bareflow lab OS \\n \\l\n")
	t.dir("etc/dropbear", 0o755)
	return t, nil
}

// ErrNoRamdisk is wrapped by FindRamdisk when there is no built ramdisk.
var ErrNoRamdisk = errors.New("no built ramdisk")

// FindRamdisk returns the folder of a built bareflow ramdisk: dir when
// given, else build/ramdisk of the repository that holds the working
// folder. It fails when vmlinuz or initrd.img is missing there.
func FindRamdisk(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, "build", "ramdisk")
				break
			}
			if filepath.Dir(d) == d {
				return "", fmt.Errorf("%w: no go.mod above %s", ErrNoRamdisk, wd)
			}
		}
	}
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			return "", fmt.Errorf("%w: no %s in %s (make ramdisk)", ErrNoRamdisk, f, dir)
		}
	}
	return dir, nil
}
