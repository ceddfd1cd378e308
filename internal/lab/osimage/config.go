package osimage

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
)

// Defaults of ConfigOptions.
const (
	DefaultConfigSize     = 256 * MiB
	DefaultConfigRootSize = 128 * MiB
	// DefaultXFSRootSize is the default root size with RootFS XFS.
	DefaultXFSRootSize = 320 * MiB
)

// ConfigOptions describe a config image: a disk whose root holds the /etc
// of a Debian or RHEL-like system and nothing that runs.
type ConfigOptions struct {
	// Family is required.
	Family Family
	// Size is the disk's size in bytes, whole MiB; default
	// DefaultConfigSize, or with XFS the root size plus 64 MiB.
	Size int64
	// RootSize is the root partition's size, whole MiB, leaving room after
	// it so that a grow shows; default DefaultConfigRootSize (ext4) or
	// DefaultXFSRootSize (xfs, which needs 300 MiB).
	RootSize int64
	// RootFS is Ext4 (default) or XFS.
	RootFS FSType
	// Table is GPT (default) or DOS.
	Table Table
	// Hostname is /etc/hostname's content; default "debian" or
	// "localhost.localdomain".
	Hostname string
}

func (o ConfigOptions) withDefaults() ConfigOptions {
	if o.RootFS == "" {
		o.RootFS = Ext4
	}
	if o.Table == "" {
		o.Table = GPT
	}
	if o.RootSize == 0 {
		o.RootSize = DefaultConfigRootSize
		if o.RootFS == XFS {
			o.RootSize = DefaultXFSRootSize
		}
	}
	if o.Size == 0 {
		o.Size = DefaultConfigSize
		if need := rootOffset + o.RootSize + 64*MiB; need > o.Size {
			o.Size = need
		}
	}
	if o.Hostname == "" {
		o.Hostname = "debian"
		if o.Family == RHEL {
			o.Hostname = "localhost.localdomain"
		}
	}
	return o
}

// Validate checks the options, defaults applied.
func (o ConfigOptions) Validate() error {
	o = o.withDefaults()
	if err := o.Family.Validate(); err != nil {
		return err
	}
	if err := o.RootFS.Validate(); err != nil {
		return err
	}
	if err := o.Table.Validate(); err != nil {
		return err
	}
	if err := validateHostname(o.Hostname); err != nil {
		return err
	}
	return validateSizes(o.Size, o.RootSize, o.RootFS)
}

// BuildConfig returns the config image for o from the cache folder
// cacheDir, building it there first when it is missing. No step needs
// root.
func BuildConfig(ctx context.Context, cacheDir string, o ConfigOptions) (Image, error) {
	if err := o.Validate(); err != nil {
		return Image{}, err
	}
	o = o.withDefaults()
	key, err := hashInputs(recipeVersion, "config", string(o.Family), fmt.Sprint(o.Size), fmt.Sprint(o.RootSize),
		string(o.RootFS), string(o.Table), o.Hostname, toolVersions(ctx))
	if err != nil {
		return Image{}, err
	}
	name := fmt.Sprintf("config-%s-%s-%s-%s", o.Family, o.RootFS, o.Table, key[:16])
	return cached(ctx, cacheDir, name, func(ctx context.Context, work, disk string) (Image, error) {
		rootUUID := newUUID()
		espVol := randomHex(4)
		t := configTree(o, rootUUID, espVol)
		img, err := assemble(ctx, work, disk, diskSpec{
			size: o.Size, table: o.Table, rootSize: o.RootSize, rootFS: o.RootFS,
			bootName: "ESP", root: t, rootUUID: rootUUID, bootVolID: espVol,
			fillBoot: func(ctx context.Context, fat string) error {
				dir := "::/EFI/debian"
				if o.Family == RHEL {
					dir = "::/EFI/rocky"
				}
				return mtools(ctx, "mmd", "-i", fat, "::/EFI", dir)
			},
		})
		if err != nil {
			return Image{}, err
		}
		img.Key, img.Kind, img.Family, img.Hostname = key, "config", o.Family, o.Hostname
		return img, nil
	})
}

// espUUID is how blkid and fstab name a vfat volume ID.
func espUUID(vol string) string {
	return strings.ToUpper(vol[:4] + "-" + vol[4:])
}

// configTree is the root filesystem of a config image.
func configTree(o ConfigOptions, rootUUID, espVol string) *tree {
	t := newTree()
	baseTree(t)
	t.file("etc/hostname", 0o644, o.Hostname+"\n")
	if o.Family == RHEL {
		rhelTree(t, o, rootUUID, espVol)
	} else {
		debianTree(t, o, rootUUID, espVol)
	}
	return t
}

// baseTree adds the folders and files every image has.
func baseTree(t *tree) {
	for _, d := range []string{"bin", "sbin", "lib", "lib64", "usr/bin", "usr/sbin", "usr/lib", "usr/share",
		"etc", "home", "mnt", "opt", "srv", "var/lib", "var/log", "var/cache", "var/spool", "boot", "dev", "proc", "sys", "run"} {
		t.dir(d, 0o755)
	}
	t.dir("root", 0o700)
	t.dir("tmp", fs.ModeSticky|0o777)
	t.dir("var/tmp", fs.ModeSticky|0o777)
	t.symlink("var/run", "/run")
	t.file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n"+
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"+
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	t.file("etc/group", 0o644, "root:x:0:\ndaemon:x:1:\ntty:x:5:\nshadow:x:42:\nnogroup:x:65534:\n")
	t.file("etc/shells", 0o644, "/bin/sh\n/bin/ash\n")
	t.file("etc/nsswitch.conf", 0o644, "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n")
	t.file("etc/hosts", 0o644, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	t.file("etc/motd", 0o644, "")
}

// shadowEntries: root's password is locked ("*"), the date of the last
// change is fixed so the image does not depend on the day it is built.
const shadowEntries = "root:*:19700:0:99999:7:::\n" +
	"daemon:*:19700:0:99999:7:::\n" +
	"nobody:*:19700:0:99999:7:::\n"

func debianTree(t *tree, o ConfigOptions, rootUUID, espVol string) {
	t.file("etc/os-release", 0o644, `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`)
	t.file("etc/debian_version", 0o644, "12.5\n")
	t.file("etc/shadow", 0o640, shadowEntries)
	t.own("etc/shadow", 0, 42)
	t.file("etc/fstab", 0o644, fmt.Sprintf(`# /etc/fstab: static file system information.
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=%s / %s 0 1
UUID=%s /boot/efi vfat umask=0077 0 1
`, rootUUID, rootOptions(o.RootFS, "errors=remount-ro"), espUUID(espVol)))
	t.dir("boot/efi", 0o755)
	t.file("etc/network/interfaces", 0o644, `# This file describes the network interfaces available on your system
# and how to activate them. For more information, see interfaces(5).

source /etc/network/interfaces.d/*

# The loopback network interface
auto lo
iface lo inet loopback
`)
	t.dir("etc/network/interfaces.d", 0o755)
	t.dir("etc/systemd/network", 0o755)
	t.dir("etc/cloud/cloud.cfg.d", 0o755)
	t.file("etc/resolv.conf", 0o644, "")
}

func rhelTree(t *tree, o ConfigOptions, rootUUID, espVol string) {
	t.file("etc/os-release", 0o644, `NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
ANSI_COLOR="0;32"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:rocky:rocky:9::baseos"
HOME_URL="https://rockylinux.org/"
`)
	t.file("etc/redhat-release", 0o644, "Rocky Linux release 9.3 (Blue Onyx)\n")
	t.symlink("etc/system-release", "redhat-release")
	// RHEL keeps /etc/shadow unreadable to all.
	t.file("etc/shadow", 0o000, shadowEntries)
	t.file("etc/fstab", 0o644, fmt.Sprintf(`
#
# /etc/fstab
# Created by anaconda
#
UUID=%s /                       %s     defaults        0 0
UUID=%s          /boot/efi               vfat    umask=0077,shortname=winnt 0 2
`, rootUUID, o.RootFS, espUUID(espVol)))
	t.dir("boot/efi", 0o700)
	t.dir("etc/NetworkManager/system-connections", 0o700)
	t.dir("etc/NetworkManager/conf.d", 0o755)
	t.dir("etc/sysconfig/network-scripts", 0o755)
	t.file("etc/sysconfig/network-scripts/readme-ifcfg-rh.txt", 0o644,
		"NetworkManager stores new network profiles in keyfile format in\n/etc/NetworkManager/system-connections/.\n")
	t.file("etc/sysconfig/network", 0o644, "# Created by anaconda\n")
	t.dir("etc/cloud/cloud.cfg.d", 0o755)
	t.file("etc/resolv.conf", 0o644, "")
}

// rootOptions are the fstab options of the root: Debian's
// errors=remount-ro is an ext option.
func rootOptions(fs FSType, extOpts string) string {
	if fs == XFS {
		return "xfs defaults"
	}
	return "ext4 " + extOpts
}
