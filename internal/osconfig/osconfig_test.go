package osconfig

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	testKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops@example"
	testHash = "$6$saltsalt$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./abcdefghijklmnopqrstuv"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

// baseConfig has what every golden case shares besides the network.
func baseConfig() Config {
	return Config{
		Hostname:          "node01",
		Domain:            "lab.example.com",
		SSHAuthorizedKeys: []string{testKey},
		InstanceID:        "machine-0001",
		UserData:          []byte("#cloud-config\nruncmd:\n  - [touch, /root/provisioned]\n"),
		Files:             []File{{Path: "/etc/motd", Mode: 0o644, Content: []byte("provisioned by bareflow\n")}},
	}
}

// bondConfig is an 802.3ad bond over two NICs matched by MAC, with VLAN
// 100 on it, DNS and a route.
func bondConfig(mode string, opts map[string]string) Config {
	c := baseConfig()
	c.Bonds = []Bond{{
		Name:    "bond0",
		Members: []string{"0c:c4:7a:00:00:01", "0c:c4:7a:00:00:02"},
		Mode:    mode,
		Options: opts,
		Addressing: Addressing{
			Addresses: []netip.Prefix{pfx("10.0.0.5/24")},
			Gateway:   ip("10.0.0.1"),
			MTU:       9000,
		},
	}}
	c.VLANs = []VLAN{{Parent: "bond0", ID: 100, Addressing: Addressing{
		Addresses: []netip.Prefix{pfx("192.168.100.5/24"), pfx("2001:db8:100::5/64")},
	}}}
	c.DNS = []netip.Addr{ip("10.0.0.53"), ip("2001:db8::53")}
	c.SearchDomains = []string{"lab.example.com"}
	c.Routes = []Route{{To: pfx("172.16.0.0/12"), Via: ip("192.168.100.254"), Metric: 100}}
	return c
}

var lacp = map[string]string{"miimon": "100", "lacp_rate": "fast", "xmit_hash_policy": "layer3+4"}

type goldenCase struct {
	name   string
	family Family
	flavor string
	cfg    Config
}

func goldenCases() []goldenCase {
	debian := baseConfig()
	debian.Interfaces = []Interface{
		{Name: "eno1", Addressing: Addressing{Addresses: []netip.Prefix{pfx("10.0.0.5/24"), pfx("10.0.0.6/24")}, Gateway: ip("10.0.0.1")}},
		{Name: "eno2", MAC: mac("0c:c4:7a:00:00:02"), Addressing: Addressing{DHCP4: true}},
	}
	debian.DNS = []netip.Addr{ip("10.0.0.53")}
	debian.Routes = []Route{{To: pfx("172.16.0.0/12"), Via: ip("10.0.0.254")}}
	debian.Filesystems = []Mount{{UUID: "0a1b2c3d-0000-4000-8000-000000000001", MountPoint: "/data", FSType: "xfs", Pass: 2}}

	suse := bondConfig("active-backup", map[string]string{"miimon": "100", "primary": "bond0p0"})
	return []goldenCase{
		{"debian-ifupdown", Debian, FlavorDebian, debian},
		{"ubuntu-netplan-bond", Debian, FlavorUbuntu, bondConfig("802.3ad", lacp)},
		{"rhel9-keyfile-bond", RHEL, "9", bondConfig("4", lacp)},
		{"rhel8-ifcfg-bond", RHEL, "8", bondConfig("802.3ad", lacp)},
		{"suse-ifcfg-active-backup", SUSE, "15", suse},
		{"generic-cloud-init", Generic, "", debian},
	}
}

// dump writes files as one text: a header line per file, then its content.
func dump(files []File) []byte {
	var b bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&b, "==> %s %04o", f.Path, f.Mode.Perm())
		if f.IsDir() {
			b.WriteString(" dir\n")
			continue
		}
		fmt.Fprintf(&b, " %d bytes\n", len(f.Content))
		b.Write(f.Content)
		if len(f.Content) > 0 && f.Content[len(f.Content)-1] != '\n' {
			b.WriteString("\n\\ no newline at end of file\n")
		}
	}
	return b.Bytes()
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Render(tc.family, tc.flavor, tc.cfg)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			got := dump(files)
			again, err := Render(tc.family, tc.flavor, tc.cfg)
			if err != nil || !bytes.Equal(dump(again), got) {
				t.Fatalf("second Render differs (err %v)", err)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render output differs from %s; got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestValidateRefusals(t *testing.T) {
	withNet := func(f func(*Config)) Config {
		c := bondConfig("802.3ad", lacp)
		f(&c)
		return c
	}
	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"hostname with underscore": {Config{Hostname: "node_01"}, "hostname"},
		"hostname with dot":        {Config{Hostname: "node.lab"}, "hostname"},
		"hostname leading hyphen":  {Config{Hostname: "-node"}, "hostname"},
		"hostname too long":        {Config{Hostname: strings.Repeat("a", 64)}, "hostname"},
		"domain bad label":         {Config{Hostname: "n", Domain: "lab..example"}, "domain"},
		"newline in key":           {Config{SSHAuthorizedKeys: []string{testKey + "\nssh-ed25519 AAAA evil"}}, "newline"},
		"carriage return in key":   {Config{SSHAuthorizedKeys: []string{"ssh-ed25519 AAAA\r"}}, "control"},
		"unknown key type":         {Config{SSHAuthorizedKeys: []string{"ssh-foo AAAA"}}, "key type"},
		"key blob mismatch":        {Config{SSHAuthorizedKeys: []string{"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"}}, "does not hold"},
		"key options unbalanced":   {Config{SSHAuthorizedKeys: []string{`command="x ` + testKey}}, "unbalanced"},
		"hash plain text":          {Config{RootPasswordHash: "hunter2"}, "crypt"},
		"hash md5":                 {Config{RootPasswordHash: "$1$salt$abcdefghijklmnopqrstuv"}, "$1$"},
		"hash with colon":          {Config{RootPasswordHash: testHash + ":0:99999"}, "':'"},
		"hash with newline":        {Config{RootPasswordHash: testHash + "\nroot2"}, "control"},
		"hash short digest":        {Config{RootPasswordHash: "$6$salt$abc"}, "digest"},
		"vlan id 0":                {withNet(func(c *Config) { c.VLANs[0].ID = 0 }), "1–4094"},
		"vlan id 4095":             {withNet(func(c *Config) { c.VLANs[0].ID = 4095 }), "1–4094"},
		"vlan parent missing":      {withNet(func(c *Config) { c.VLANs[0].Parent = "bond9"; c.VLANs[0].Name = "v100" }), "parent"},
		"unknown bond option":      {withNet(func(c *Config) { c.Bonds[0].Options = map[string]string{"frobnicate": "1"} }), "unknown option"},
		"option wrong for mode":    {withNet(func(c *Config) { c.Bonds[0].Mode = "active-backup" }), "does not apply"},
		"option bad value":         {withNet(func(c *Config) { c.Bonds[0].Options = map[string]string{"lacp_rate": "turbo"} }), "lacp_rate"},
		"bond mode 7":              {withNet(func(c *Config) { c.Bonds[0].Mode = "7" }), "mode"},
		"member used twice":        {withNet(func(c *Config) { c.Bonds[0].Members = []string{"eno1", "eno1"} }), "already a member"},
		"member in two bonds": {withNet(func(c *Config) {
			c.Bonds = append(c.Bonds, Bond{Name: "bond1", Mode: "1", Members: []string{"0c:c4:7a:00:00:01"}})
		}), "already a member"},
		"member configured alone": {withNet(func(c *Config) {
			c.Interfaces = []Interface{{Name: "eno1", Addressing: Addressing{DHCP4: true}}}
			c.Bonds[0].Members = []string{"eno1", "eno2"}
		}), "configured on its own"},
		"duplicate names": {withNet(func(c *Config) {
			c.Interfaces = []Interface{{Name: "bond0"}}
		}), "already used"},
		"unsafe interface name":   {Config{Interfaces: []Interface{{Name: "../etc"}}}, "name"},
		"interface name too long": {Config{Interfaces: []Interface{{Name: "averyveryverylongname"}}}, "name"},
		"dhcp and static v4": {Config{Interfaces: []Interface{{Name: "eno1", Addressing: Addressing{
			DHCP4: true, Addresses: []netip.Prefix{pfx("10.0.0.5/24")}}}}}, "exclusive"},
		"gateway without address": {Config{Interfaces: []Interface{{Name: "eno1", Addressing: Addressing{
			DHCP4: true, Gateway: ip("10.0.0.1")}}}}, "gateway"},
		"route off subnet":     {withNet(func(c *Config) { c.Routes[0].Via = ip("10.9.9.9") }), "no link"},
		"route host bits set":  {withNet(func(c *Config) { c.Routes[0].To = pfx("172.16.0.1/12") }), "host bits"},
		"file path traversal":  {Config{Files: []File{{Path: "/etc/../root/x", Mode: 0o644}}}, "not clean"},
		"file relative":        {Config{Files: []File{{Path: "etc/x", Mode: 0o644}}}, "not absolute"},
		"file under proc":      {Config{Files: []File{{Path: "/proc/sys/kernel/x", Mode: 0o644}}}, "under /proc"},
		"file under dev":       {Config{Files: []File{{Path: "/dev/sda", Mode: 0o644}}}, "under /dev"},
		"file clobbers hosts":  {Config{Files: []File{{Path: "/etc/hosts", Mode: 0o644}}}, "written by bareflow"},
		"file is a symlink":    {Config{Files: []File{{Path: "/etc/x", Mode: fs.ModeSymlink | 0o777}}}, "regular file"},
		"user-data too big":    {Config{InstanceID: "i", UserData: make([]byte, MaxUserData+1)}, "user-data"},
		"user-data without id": {Config{UserData: []byte("#cloud-config\n")}, "instance-id"},
		"mount bad uuid":       {Config{Filesystems: []Mount{{UUID: "x y", MountPoint: "/data", FSType: "xfs"}}}, "uuid"},
		"mount point space":    {Config{Filesystems: []Mount{{UUID: "0a1b2c3d-0000-4000-8000-000000000001", MountPoint: "/da ta", FSType: "xfs"}}}, "whitespace"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tc.want)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate() = %v, want it to wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want it to mention %q", err, tc.want)
			}
			if _, err := Render(Debian, "", tc.cfg); err == nil {
				t.Errorf("Render accepted what Validate refused")
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, tc := range goldenCases() {
		if err := tc.cfg.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", tc.name, err)
		}
	}
	keys := []string{
		testKey,
		`from="10.0.0.0/8",command="echo \"hi there\"" ` + testKey,
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f",
	}
	for _, k := range keys {
		if err := ValidateAuthorizedKey(k); err != nil {
			t.Errorf("ValidateAuthorizedKey(%q) = %v, want nil", k, err)
		}
	}
	for _, h := range []string{
		testHash,
		"$6$rounds=5000$saltsalt$" + testHash[len("$6$saltsalt$"):],
		"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
		"$5$salt$" + strings.Repeat("a", 43),
	} {
		if err := ValidatePasswordHash(h); err != nil {
			t.Errorf("ValidatePasswordHash(%q) = %v, want nil", h, err)
		}
	}
}

func TestUnsupportedFamily(t *testing.T) {
	for _, tc := range []struct {
		family Family
		flavor string
	}{{"windows", ""}, {RHEL, "6"}, {RHEL, "x"}, {Debian, "mint"}, {Generic, "ifupdown"}} {
		if _, err := Render(tc.family, tc.flavor, Config{}); !errors.Is(err, ErrUnsupportedFamily) {
			t.Errorf("Render(%q, %q) = %v, want ErrUnsupportedFamily", tc.family, tc.flavor, err)
		}
	}
}

func TestMergeFstab(t *testing.T) {
	existing := []byte("# /etc/fstab\nUUID=1111-2222 /boot/efi vfat umask=0077 0 1\n" +
		"UUID=0A1B2C3D-0000-4000-8000-000000000001 /olddata ext4 defaults 0 2\n" +
		"/dev/sdb1 /data ext4 defaults 0 2\n" +
		"UUID=0a1b2c3d-0000-4000-8000-0000000000ff /gone xfs defaults 0 2 # bareflow\n")
	mounts := []Mount{
		{UUID: "0a1b2c3d-0000-4000-8000-000000000001", MountPoint: "/data", FSType: "xfs", Pass: 2},
		{UUID: "0a1b2c3d-0000-4000-8000-000000000002", MountPoint: "none", FSType: "swap"},
	}
	got, err := MergeFstab(existing, mounts)
	if err != nil {
		t.Fatal(err)
	}
	want := "# /etc/fstab\nUUID=1111-2222 /boot/efi vfat umask=0077 0 1\n" +
		"UUID=0a1b2c3d-0000-4000-8000-000000000001 /data xfs defaults 0 2 # bareflow\n" +
		"UUID=0a1b2c3d-0000-4000-8000-000000000002 none swap defaults 0 0 # bareflow\n"
	if string(got) != want {
		t.Errorf("MergeFstab:\ngot:\n%s\nwant:\n%s", got, want)
	}
	again, err := MergeFstab(got, mounts)
	if err != nil || !bytes.Equal(again, got) {
		t.Errorf("MergeFstab is not idempotent: got:\n%s\nwant:\n%s", again, got)
	}
	if _, err := MergeFstab(nil, []Mount{{UUID: "x\n", MountPoint: "/a", FSType: "xfs"}}); err == nil {
		t.Error("MergeFstab accepted a hostile uuid")
	}
}

func TestSetShadowPassword(t *testing.T) {
	shadow := []byte("root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
	got, err := SetShadowPassword(shadow, "root", testHash)
	if err != nil {
		t.Fatal(err)
	}
	want := "root:" + testHash + ":19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
	if string(got) != want {
		t.Errorf("SetShadowPassword:\ngot  %q\nwant %q", got, want)
	}
	again, _ := SetShadowPassword(got, "root", testHash)
	if !bytes.Equal(again, got) {
		t.Errorf("SetShadowPassword is not idempotent: got %q, want %q", again, got)
	}
	for name, tc := range map[string]struct {
		shadow     string
		user, hash string
	}{
		"no such user": {"daemon:*:1:0:99999:7:::\n", "root", testHash},
		"short entry":  {"root:*:1\n", "root", testHash},
		"bad hash":     {"root:*:1:0:99999:7:::\n", "root", "x:y"},
		"hostile user": {"root:*:1:0:99999:7:::\n", "root\n", testHash},
		"two entries":  {"root:*:1:0:99999:7:::\nroot:*:1:0:99999:7:::\n", "root", testHash},
	} {
		if _, err := SetShadowPassword([]byte(tc.shadow), tc.user, tc.hash); err == nil {
			t.Errorf("%s: SetShadowPassword succeeded, want an error", name)
		}
	}
}

func TestEdits(t *testing.T) {
	c := bondConfig("active-backup", map[string]string{"miimon": "100"})
	c.RootPasswordHash = testHash
	c.Filesystems = []Mount{{UUID: "0a1b2c3d-0000-4000-8000-000000000001", MountPoint: "/data", FSType: "xfs"}}
	edits, err := Edits(SUSE, "", c)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range edits {
		paths = append(paths, e.Path)
	}
	if got, want := strings.Join(paths, " "), "/etc/fstab /etc/shadow /etc/sysconfig/network/config"; got != want {
		t.Fatalf("Edits paths = %s, want %s", got, want)
	}
	got, err := edits[2].Apply([]byte("NETCONFIG_DNS_POLICY=\"auto\"\nNETCONFIG_DNS_STATIC_SERVERS=\"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "NETCONFIG_DNS_POLICY=\"auto\"\nNETCONFIG_DNS_STATIC_SERVERS=\"10.0.0.53 2001:db8::53\"\nNETCONFIG_DNS_STATIC_SEARCHLIST=\"lab.example.com\"\n"
	if string(got) != want {
		t.Errorf("network/config edit:\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestYAMLString(t *testing.T) {
	for in, want := range map[string]string{
		"bond0":       "bond0",
		"layer3+4":    "layer3+4",
		"802.3ad":     `"802.3ad"`,
		"yes":         `"yes"`,
		"Off":         `"Off"`,
		"":            `""`,
		"a: b":        `"a: b"`,
		"x\ny":        `"x\ny"`,
		`q"\`:         `"q\"\\"`,
		"\x00\u2028":  `"\u0000\u2028"`,
		"\xff":        `"\uFFFD"`,
		"10.0.0.5/24": `"10.0.0.5/24"`,
	} {
		if got := yamlString(in); got != want {
			t.Errorf("yamlString(%q) = %s, want %s", in, got, want)
		}
	}
}
