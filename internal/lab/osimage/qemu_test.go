//go:build linux

package osimage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"bareflow/internal/disklayout"
	"bareflow/internal/lab/qemulab"
	"bareflow/internal/osconfig"
)

// Bounds of the QEMU test. Under software emulation the image boots in
// 10–30 s; the bound leaves room for a loaded machine. Measured on two
// host cores without KVM, QEMU start to the console's up line, two runs:
// 11.6–12.6 s through SeaBIOS and syslinux, 14.6–17.6 s through OVMF and
// systemd-boot (gpt the faster, dos the slower).
const (
	bootTimeout    = 4 * time.Minute
	sshTimeout     = 30 * time.Second
	poweroffWithin = 90 * time.Second
	// installedSize is the disk the image is "installed" onto: larger
	// than the image, so the grow step has work to do.
	installedSize = 160 * MiB
)

// OVMF, the UEFI firmware of Debian's ovmf package: the code read-only as
// the first flash device, a copy of the variable store writable as the
// second (the 4 MiB builds: Debian's OVMF_CODE.fd is a link to them).
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// ovmfArgs are QEMU's arguments for booting through OVMF, with a copy of
// the variable store in dir.
func ovmfArgs(t *testing.T, dir string) []string {
	t.Helper()
	vars, err := os.ReadFile(ovmfVars)
	if err != nil {
		t.Fatal(err)
	}
	varsCopy := filepath.Join(dir, "OVMF_VARS.fd")
	if err := os.WriteFile(varsCopy, vars, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + ovmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + varsCopy,
	}
}

// localRunner runs disklayout's commands on this machine.
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

// TestQEMUBootInstalledImage installs the bootable image the way bareflow's
// installer does after writing it (disklayout grows the root to fill a
// larger disk, osconfig's Debian files and edits go into the root), boots
// it in QEMU under software emulation on a tap in a network namespace, and
// checks the console line, TCP port 22, and an SSH session with the key
// osconfig wrote. Then the ACPI power button must power it off. The same
// images boot through SeaBIOS (syslinux) and through OVMF (systemd-boot).
func TestQEMUBootInstalledImage(t *testing.T) {
	if os.Geteuid() != 0 {
		qemulab.SkipOrFail(t, "loop devices, mounts, network namespaces and taps need root")
	}
	for _, tool := range []string{"qemu-system-x86_64", "losetup", "ip", "partx", "sgdisk", "resize2fs", "e2fsck", "blkid", "mount"} {
		if _, err := lookTool(tool); err != nil {
			qemulab.SkipOrFail(t, "%s is not installed (scripts/ci-deps.sh)", tool)
		}
	}
	for _, f := range []string{ovmfCode, ovmfVars} {
		if _, err := os.Stat(f); err != nil {
			qemulab.SkipOrFail(t, "%s: %v (the ovmf package; scripts/ci-deps.sh)", f, err)
		}
	}
	ramdisk := ramdiskOrSkip(t)
	cache := imageCache(t)

	for _, tc := range []struct {
		name  string
		table Table
		// disk and nic are QEMU's -device arguments (the drive is d0,
		// the netdev n0).
		disk, nic []string
		// iface is the NIC's configuration; mac matches it when set,
		// and the image renames the kernel's eth0 to iface.
		iface string
		mac   string
		// uefi boots through OVMF instead of SeaBIOS.
		uefi bool
	}{
		{
			name: "gpt-virtio-blk-e1000", table: GPT, iface: "eth0",
			disk: []string{"-device", "virtio-blk-pci,drive=d0,bootindex=1"},
			nic:  []string{"-device", "e1000,netdev=n0,mac=52:54:00:0b:00:01,romfile="},
		},
		{
			name: "dos-ahci-virtio-net-by-mac", table: DOS, iface: "lan0", mac: "52:54:00:0b:00:02",
			disk: []string{"-device", "ahci,id=a0", "-device", "ide-hd,drive=d0,bus=a0.0,bootindex=1"},
			nic:  []string{"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:0b:00:02,romfile="},
		},
		{
			name: "uefi-gpt-virtio-blk-virtio-net", table: GPT, iface: "eth0", uefi: true,
			disk: []string{"-device", "virtio-blk-pci,drive=d0,bootindex=1"},
			nic:  []string{"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:0b:00:03,romfile="},
		},
		{
			name: "uefi-dos-ahci-e1000-by-mac", table: DOS, iface: "lan0", mac: "52:54:00:0b:00:04", uefi: true,
			disk: []string{"-device", "ahci,id=a0", "-device", "ide-hd,drive=d0,bus=a0.0,bootindex=1"},
			nic:  []string{"-device", "e1000,netdev=n0,mac=52:54:00:0b:00:04,romfile="},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			start := time.Now()
			img, err := BuildBootable(ctx, cache, BootOptions{RamdiskDir: ramdisk, Table: tc.table})
			needOrSkip(t, err)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("image %s ready in %v", img.Path, time.Since(start).Round(time.Millisecond))

			work := t.TempDir()
			disk := filepath.Join(work, "disk.raw")
			if err := img.CopyTo(disk); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(disk, installedSize); err != nil {
				t.Fatal(err)
			}
			_, priv, err := ed25519.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := ssh.NewSignerFromKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			ifc := osconfig.Interface{Name: tc.iface, Addressing: osconfig.Addressing{
				Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")},
				Gateway:   netip.MustParseAddr("192.0.2.1"),
			}}
			if tc.mac != "" {
				ifc.MAC = mustMAC(tc.mac)
			}
			cfg := osconfig.Config{
				Hostname:          "lab-os-1",
				Domain:            "lab.example",
				Interfaces:        []osconfig.Interface{ifc},
				DNS:               []netip.Addr{netip.MustParseAddr("192.0.2.53")},
				Routes:            []osconfig.Route{{To: netip.MustParsePrefix("203.0.113.0/24"), Via: netip.MustParseAddr("192.0.2.254")}},
				SSHAuthorizedKeys: []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))},
				RootPasswordHash:  "$6$bareflow$" + strings.Repeat("x", 86),
			}
			grown := install(t, disk, img, cfg)

			lab := qemulab.New(t, 1, 0)
			lab.Exec(t, "ip", "addr", "add", "192.0.2.1/24", "dev", qemulab.Bridge)
			serial := filepath.Join(work, "serial.log")
			qmp := filepath.Join(work, "qmp.sock")
			args := []string{
				"-accel", "tcg", "-m", "512", "-smp", "1", "-nographic", "-nodefaults", "-no-user-config",
				"-serial", "file:" + serial, "-qmp", "unix:" + qmp + ",server=on,wait=off",
				"-drive", "if=none,id=d0,format=raw,file=" + disk,
				"-netdev", "tap,id=n0,ifname=" + lab.Taps[0] + ",script=no,downscript=no",
			}
			if tc.uefi {
				args = append(args, ovmfArgs(t, work)...)
			}
			args = append(append(args, tc.disk...), tc.nic...)
			q := qemulab.StartQEMU(t, lab.NS, args, serial, qmp)

			want := "bareflow-os-up hostname=lab-os-1 addr=192.0.2.10/24"
			if !waitSerial(q, regexp.MustCompile(`bareflow-os-up [^\r\n]*`), bootTimeout, want) {
				t.Fatalf("no %q on the console within %v:\n%s", want, bootTimeout, q.SerialTail(40))
			}
			booted := time.Since(q.Started)
			t.Logf("booted in %v (QEMU start to %q)", booted.Round(100*time.Millisecond), want)

			// TCP port 22 at the configured address answers with dropbear's banner.
			banner, err := sshBanner(lab.NS, "192.0.2.10:22")
			if err != nil {
				t.Fatalf("%v (QEMU running: %v)\nneighbours in the lab: %s\nconsole:\n%s", err, q.Running(),
					lab.Exec(t, "ip", "neigh", "show"), q.SerialTail(30))
			}
			if !strings.HasPrefix(banner, "SSH-2.0-") {
				t.Fatalf("port 22: got banner %q, want SSH-2.0-…", banner)
			}
			t.Logf("port 22: %s, %v after QEMU start", banner, time.Since(q.Started).Round(100*time.Millisecond))

			// An SSH session with the key the installer wrote.
			out, err := sshRun(lab.NS, "192.0.2.10:22", signer,
				"hostname; cat /proc/cmdline; df -k / | tail -n 1; cat /etc/resolv.conf; ip route; ip -o link show "+tc.iface+
					"; if [ -d /sys/firmware/efi ]; then echo firmware=uefi; else echo firmware=bios; fi")
			if err != nil {
				t.Fatalf("%v (QEMU running: %v)\nneighbours in the lab: %s\nconsole:\n%s", err, q.Running(),
					lab.Exec(t, "ip", "neigh", "show"), q.SerialTail(30))
			}
			t.Logf("in the VM:\n%s", out)
			lines := strings.Split(out, "\n")
			if len(lines) < 3 || lines[0] != "lab-os-1" {
				t.Fatalf("session output: got %q, want the host name first", out)
			}
			// syslinux adds BOOT_IMAGE= before and initrd= after,
			// systemd-boot initrd= before.
			if !strings.Contains(" "+lines[1]+" ", " "+img.CmdLine+" ") {
				t.Errorf("kernel command line: got %q, want the image's %q in it", lines[1], img.CmdLine)
			}
			if f := strings.Fields(lines[2]); len(f) < 2 {
				t.Errorf("df: got %q", lines[2])
			} else if kb, _ := strconv.ParseInt(f[1], 10, 64); kb*1024 <= img.Root.Size {
				t.Errorf("root filesystem: %d KiB, want more than the image's %d-byte partition (grown to %d)", kb, img.Root.Size, grown)
			}
			for _, w := range []string{"nameserver 192.0.2.53", "default via 192.0.2.1 dev " + tc.iface, "203.0.113.0/24 via 192.0.2.254 dev " + tc.iface} {
				if !strings.Contains(out, w) {
					t.Errorf("session output: no %q", w)
				}
			}
			firmware := "firmware=bios"
			if tc.uefi {
				firmware = "firmware=uefi"
			}
			if got := lines[len(lines)-1]; got != firmware {
				t.Errorf("booted by: got %q, want %q", got, firmware)
			}
			if tc.mac != "" && !strings.Contains(out, tc.mac) {
				t.Errorf("NIC %s: want MAC %s", tc.iface, tc.mac)
			}

			// The ACPI power button: busybox acpid runs poweroff.
			if _, err := qemulab.QMPCommand(qmp, "system_powerdown"); err != nil {
				t.Fatalf("system_powerdown: %v", err)
			}
			select {
			case <-q.Exited:
				t.Logf("powered off by the power button")
			case <-time.After(poweroffWithin):
				t.Errorf("still running %v after the power button:\n%s", poweroffWithin, q.SerialTail(20))
			}
		})
	}
}

// install does what bareflow's installer does after writing the image onto
// a disk: on a loop device over disk, disklayout inspects it, grows the
// root to fill the disk, mounts it and writes osconfig's Debian files and
// edits. It returns the grown root partition's size.
func install(t *testing.T, disk string, img Image, cfg osconfig.Config) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := localRunner{}
	out, err := r.Run(ctx, []string{"losetup", "--find", "--show", disk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	loop := strings.TrimSpace(string(out))
	detached := false
	detach := func() {
		if detached {
			return
		}
		detached = true
		if _, err := r.Run(context.Background(), []string{"losetup", "-d", loop}, nil); err != nil {
			t.Errorf("detach %s: %v", loop, err)
		}
	}
	t.Cleanup(detach)

	l, err := disklayout.Inspect(ctx, r, loop)
	if err != nil {
		t.Fatal(err)
	}
	root, ok := l.Partition(l.Root)
	if !ok || l.Root != img.Root.Number || root.UUID != img.Root.UUID {
		t.Fatalf("disklayout picked root %d (%+v), want partition %d with UUID %s", l.Root, root, img.Root.Number, img.Root.UUID)
	}
	grownLayout, err := disklayout.FixAndGrow(ctx, r, loop, root, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	grown, _ := grownLayout.Partition(root.Number)
	if grown.Size <= root.Size || grown.Start != root.Start || grown.UUID != root.UUID {
		t.Fatalf("grown root: got %+v, want %+v larger with the same start and UUID", grown, root)
	}
	t.Logf("root grown from %d to %d MiB", root.Size/MiB, grown.Size/MiB)

	files, err := osconfig.Render(osconfig.Debian, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	edits, err := osconfig.Edits(osconfig.Debian, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(t.TempDir(), "root")
	unmount, err := disklayout.MountRoot(ctx, r, grown, mnt)
	if err != nil {
		t.Fatal(err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_, _ = r.Run(context.Background(), []string{"umount", "-l", mnt}, nil)
		}
	})
	if err := disklayout.WriteFiles(ctx, r, mnt, files); err != nil {
		t.Fatal(err)
	}
	if err := disklayout.ApplyEdits(ctx, r, mnt, edits); err != nil {
		t.Fatal(err)
	}
	if err := unmount(ctx); err != nil {
		t.Fatal(err)
	}
	mounted = false
	detach()
	return grown.Size
}

// waitSerial waits for a console line matching re and reports whether one
// equal to want came; it gives up when QEMU exits or after timeout.
func waitSerial(q *qemulab.QEMU, re *regexp.Regexp, timeout time.Duration, want string) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(q.Serial); err == nil {
			for _, m := range re.FindAll(b, -1) {
				if strings.TrimSpace(string(m)) == want {
					return true
				}
			}
		}
		if !q.Running() {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// sshBanner connects to addr inside the namespace and reads the server's
// first line, retrying until sshTimeout.
func sshBanner(ns, addr string) (string, error) {
	deadline := time.Now().Add(sshTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		conn, err := qemulab.DialIn(ns, addr, 5*time.Second)
		if err != nil {
			lastErr = err
			time.Sleep(500 * time.Millisecond)
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err == nil {
			return strings.TrimSpace(line), nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("TCP %s: %w", addr, lastErr)
}

// sshRun runs cmd as root over SSH inside the namespace and returns its
// output. The host key is new at each boot, so none is pinned.
func sshRun(ns, addr string, signer ssh.Signer, cmd string) (string, error) {
	conn, err := qemulab.DialIn(ns, addr, 10*time.Second)
	if err != nil {
		return "", err
	}
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // a fresh key per boot: nothing to pin
		// The image's dropbear has an ed25519 key only, and closes the
		// connection when offered x/crypto's whole default list.
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           30 * time.Second,
	})
	if err != nil {
		conn.Close()
		return "", fmt.Errorf("SSH to %s with the installed key: %w", addr, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		return "", fmt.Errorf("SSH %q: %w: %s", cmd, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}
