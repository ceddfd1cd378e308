package workers

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"bareflow/activities"
	"bareflow/contract"
	"bareflow/internal/lab/fakeramdisk"
	"bareflow/internal/lab/osimage"
	"bareflow/internal/ramdisk"
	"bareflow/workflows"
)

// installLab is a machine stand-in for the Install and Wipe workflows run
// with their real activities: a ramdisk stand-in (real dropbear, the real
// bareflow-imagewriter, the host's disk tools) whose disks are loop
// devices, an HTTP server with the images the test built, and a TCP
// listener standing for the installed OS.
type installLab struct {
	*imageLab
	disks  []string
	images staticImages
	files  string
	osAddr string
	osPort int
	// recorded is what RecordInstall received.
	mu       sync.Mutex
	recorded []activities.InstallRecord
	root     string
	released int
	// delay slows the HTTP server down, per 64 KiB; it changes while a
	// download runs.
	delay atomic.Int64
}

func (l *installLab) records() []activities.InstallRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]activities.InstallRecord(nil), l.recorded...)
}

const installDiskSize = 640 << 20

func newInstallLab(t *testing.T, disks int) *installLab {
	t.Helper()
	requireRoot(t, "dropbear", "losetup", "sfdisk", "sgdisk", "mkfs.ext4", "resize2fs", "wipefs", "qemu-img", "zstd")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bareflow-imagewriter")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/bareflow-imagewriter").CombinedOutput(); err != nil {
		t.Fatalf("build bareflow-imagewriter: %v\n%s", err, out)
	}
	l := &installLab{imageLab: &imageLab{bin: bin}, images: staticImages{}, files: filepath.Join(dir, "www")}
	if err := os.MkdirAll(l.files, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range disks {
		backing := filepath.Join(dir, "disk"+strconv.Itoa(i)+".img")
		if err := os.WriteFile(backing, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(backing, installDiskSize); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("losetup", "--find", "--show", "--partscan", backing).Output()
		if err != nil {
			t.Fatalf("losetup: %v", err)
		}
		disk := strings.TrimSpace(string(out))
		t.Cleanup(func() {
			_ = exec.Command("umount", "-R", "/run/bareflow-root").Run()
			_ = exec.Command("losetup", "-d", disk).Run()
		})
		l.disks = append(l.disks, disk)
	}
	_, signer, err := ramdisk.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	l.dialer = &ramdiskDialer{signer: signer}
	l.rd = fakeramdisk.Start(t, fakeramdisk.Options{
		AuthorizedKey: ramdisk.AuthorizedKey(signer, "bareflow-test"),
		Tools:         map[string]string{"bareflow-imagewriter": "exec " + bin + ` "$@"` + "\n"},
	})
	host, port, _ := strings.Cut(l.rd.Addr(), ":")
	p, _ := strconv.Atoi(port)
	l.ready = contract.RamdiskReady{MachineID: "m", Addr: host, SSHPort: p, SSHHostKey: l.rd.HostKey()}
	fsrv := http.FileServer(http.Dir(l.files))
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fsrv.ServeHTTP(&slowWriter{ResponseWriter: w, delay: time.Duration(l.delay.Load())}, r)
	}))
	t.Cleanup(l.srv.Close)
	// The installed OS: something that accepts TCP connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	l.osAddr, l.osPort = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	return l
}

// addImage builds a config image of family, publishes it in format (raw,
// raw.zst or qcow2) and registers it as name.
func (l *installLab) addImage(t *testing.T, name string, family osimage.Family, format contract.ImageFormat) osimage.Image {
	t.Helper()
	ctx := context.Background()
	img, err := osimage.BuildConfig(ctx, buildCache(t), osimage.ConfigOptions{Family: family})
	if err != nil {
		t.Fatalf("build %s image: %v", family, err)
	}
	dst := filepath.Join(l.files, name)
	var art osimage.Artifact
	switch format {
	case contract.ImageRawZstd:
		art, err = osimage.CompressZstd(ctx, img.Path, dst)
	case contract.ImageQCOW2:
		art, err = osimage.ConvertQCOW2(ctx, img.Path, dst, true)
	case contract.ImageRaw:
		if err = os.Symlink(img.Path, dst); err == nil {
			art, err = osimage.FileArtifact(dst, string(format))
		}
	default:
		t.Fatalf("format %s", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	fam := contract.OSDebian
	if family == osimage.RHEL {
		fam = contract.OSRHEL
	}
	l.images[name] = activities.ImageSource{ID: name, Family: fam, URL: l.srv.URL + "/" + name, Format: format,
		ChecksumAlgo: "sha256", Checksum: art.SHA256, VirtualSize: img.Size}
	return img
}

// buildCache is the folder built test images are kept in across runs.
func buildCache(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../build/osimage")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// env is a workflow test environment running Install and Wipe with their
// real activities on the lab; registration and record keeping are mocked.
func (l *installLab) env(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetTestTimeout(10 * time.Minute)
	env.RegisterWorkflow(workflows.Install)
	env.RegisterWorkflow(workflows.Wipe)
	keeper := labKeeper{l}
	env.RegisterActivity(&activities.Images{Keeper: l.images, Dialer: l.dialer})
	env.RegisterActivity(&activities.Installer{Dialer: l.dialer, Keeper: keeper, Images: l.images, Installer: osInstaller{},
		ProbeEvery: 200 * time.Millisecond})
	env.RegisterActivity(&activities.Wiper{Dialer: l.dialer, Wiper: diskWiper{}, Keeper: keeper, Install: keeper,
		PollEvery: 200 * time.Millisecond})
	env.RegisterActivity(&activities.Records{})
	env.RegisterActivity(&activities.Registration{Dialer: l.dialer})

	var recs activities.Records
	env.OnActivity(recs.StartOperation, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(recs.RecordStep, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(recs.FinishOperation, mock.Anything, mock.Anything).Return(nil).Maybe()
	var reg activities.Registration
	env.OnActivity(reg.PrepareRamdisk, mock.Anything, mock.Anything).Return(activities.PrepareRamdiskResult{
		Facts: activities.MachineFacts{State: contract.MachineReady}, Since: time.Unix(1, 0)}, nil).Maybe()
	env.OnActivity(reg.AwaitRamdisk, mock.Anything, mock.Anything).Return(activities.AwaitRamdiskResult{Found: true, Ready: l.ready}, nil).Maybe()
	env.OnActivity(reg.CollectInventory, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RamdiskInput) (contract.Inventory, error) { return l.inventory(), nil }).Maybe()
	env.OnActivity(reg.SaveInventory, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(reg.FinishRamdisk, mock.Anything, mock.Anything).Return(nil).Maybe()
	return env
}

// inventory lists the lab's loop devices as the machine's disks (the
// ramdisk's own inventory leaves loop devices out).
func (l *installLab) inventory() contract.Inventory {
	inv := contract.Inventory{System: contract.SystemInfo{Vendor: "QEMU", Model: "Standard PC"}}
	for _, d := range l.disks {
		inv.Disks = append(inv.Disks, contract.Disk{Name: strings.TrimPrefix(d, "/dev/"), SizeBytes: installDiskSize, Type: contract.DiskSSD})
	}
	return inv
}

// labKeeper stands in for the store.
type labKeeper struct{ l *installLab }

func (k labKeeper) RootDevice(context.Context, string) (string, error) {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	return k.l.root, nil
}

func (k labKeeper) RecordInstall(_ context.Context, _ string, rec activities.InstallRecord) error {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	k.l.recorded = append(k.l.recorded, rec)
	return nil
}

func (k labKeeper) ClearRAID(context.Context, string) error {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	k.l.root = ""
	return nil
}

func (k labKeeper) ReleaseMachineLeases(context.Context, string) (int, error) {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	k.l.released++
	return 1, nil
}

func (l *installLab) install(t *testing.T, in contract.InstallInput) (contract.InstallResult, error) {
	t.Helper()
	env := l.env(t)
	in.MachineID = "m"
	if in.Probe == (contract.OSProbe{}) {
		in.Probe = contract.OSProbe{Address: l.osAddr, Port: l.osPort}
	}
	env.ExecuteWorkflow(workflows.Install, in)
	if err := env.GetWorkflowError(); err != nil {
		return contract.InstallResult{}, err
	}
	var res contract.InstallResult
	return res, env.GetWorkflowResult(&res)
}

// sh runs a command on the host (where the stand-in's commands run too).
func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// mounted mounts partition n of disk read-only for the test's checks.
func mounted(t *testing.T, disk string, n int) string {
	t.Helper()
	dir := t.TempDir()
	sh(t, "mount", "-o", "ro", disk+"p"+strconv.Itoa(n), dir)
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

func readIn(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatalf("read %s in the installed OS: %v", p, err)
	}
	return string(b)
}

type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		LastLBA    int64  `json:"lastlba"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func table(t *testing.T, disk string) sfdiskTable {
	t.Helper()
	var tab sfdiskTable
	if err := json.Unmarshal([]byte(sh(t, "sfdisk", "--json", disk)), &tab); err != nil {
		t.Fatal(err)
	}
	return tab
}

var labOS = contract.OSSettings{
	Hostname: "web-1",
	Domain:   "lab.example",
	Network: contract.NetworkSettings{
		Interfaces: []contract.NICSettings{
			{Name: "eth0", Addressing: contract.Addressing{Addresses: []string{"192.0.2.10/24"}, Gateway: "192.0.2.1"}},
			{Name: "eth1", MAC: "52:54:00:00:00:11"},
			{Name: "eth2", MAC: "52:54:00:00:00:12"},
		},
		Bonds: []contract.BondSettings{{Name: "bond0", Members: []string{"eth1", "eth2"}, Mode: "802.3ad",
			Options: map[string]string{"miimon": "100", "lacp_rate": "fast"}}},
		VLANs: []contract.VLANSettings{{Parent: "bond0", ID: 100, Addressing: contract.Addressing{Addresses: []string{"198.51.100.20/24"}}}},
		DNS:   []string{"192.0.2.53"},
	},
	RootPasswordHash:  "$6$saltsalt$8Ep1Bt0x2BDBpxI0yxFNVqpjBt5U7sOpp5uW0HFYbD7Id9pc3KvC2fTgr5HmE1ZWrCvKS4l4a5JDmhdHcD8cG0",
	SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtlc3Qta2V5LWZvci1iYXJlZmxvdy10ZXN0cy0xMjM0 ops@lab"},
	UserData:          "#cloud-config\nruncmd: [echo hello]\n",
	Files:             []contract.FileSpec{{Path: "/etc/motd", Content: "installed by bareflow\n", Mode: "0644"}},
}

var labPartitions = []contract.PartitionSpec{
	{Label: "data", SizeBytes: 96 << 20, Filesystem: "ext4", MountPoint: "/srv/data"},
	{Label: "swap", SizeBytes: 32 << 20, Filesystem: "swap"},
}

func TestInstallDebianZstdOnLoopDisk(t *testing.T) {
	l := newInstallLab(t, 1)
	img := l.addImage(t, "debian.raw.zst", osimage.Debian, contract.ImageRawZstd)
	disk := l.disks[0]
	res, err := l.install(t, contract.InstallInput{Image: "debian.raw.zst", OS: labOS, Partitions: labPartitions})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if res.RootDisk != disk || res.Address != l.osAddr+":"+strconv.Itoa(l.osPort) {
		t.Errorf("result: got %+v, want root disk %s and the probe's address", res, disk)
	}
	checkInstalledLayout(t, disk, img)
	root := mounted(t, disk, img.Root.Number)
	if got := readIn(t, root, "etc/hostname"); got != "web-1\n" {
		t.Errorf("hostname: got %q", got)
	}
	ifaces := readIn(t, root, "etc/network/interfaces")
	for _, want := range []string{"iface eth0 inet static", "address 192.0.2.10/24", "gateway 192.0.2.1", "iface bond0",
		"bond-mode 802.3ad", "bond-miimon 100", "bond-slaves eth1 eth2", "iface bond0.100 inet static", "198.51.100.20/24",
		"dns-nameservers 192.0.2.53"} {
		if !strings.Contains(ifaces, want) {
			t.Errorf("/etc/network/interfaces lacks %q:\n%s", want, ifaces)
		}
	}
	checkCommonConfig(t, disk, root)
	if rec := l.records(); len(rec) != 1 || rec[0].Image != "debian.raw.zst" || rec[0].Hostname != "web-1" {
		t.Errorf("recorded: got %+v", rec)
	}
}

func TestInstallRHELQcow2OnLoopDisk(t *testing.T) {
	l := newInstallLab(t, 1)
	img := l.addImage(t, "rocky.qcow2", osimage.RHEL, contract.ImageQCOW2)
	disk := l.disks[0]
	if _, err := l.install(t, contract.InstallInput{Image: "rocky.qcow2", OS: labOS, Partitions: labPartitions}); err != nil {
		t.Fatalf("install: %v", err)
	}
	checkInstalledLayout(t, disk, img)
	root := mounted(t, disk, img.Root.Number)
	dir := "etc/NetworkManager/system-connections/"
	for file, wants := range map[string][]string{
		"eth0.nmconnection":      {"interface-name=eth0", "address1=192.0.2.10/24", "gateway=192.0.2.1", "dns=192.0.2.53;"},
		"bond0.nmconnection":     {"type=bond", "mode=802.3ad", "miimon=100"},
		"bond0.100.nmconnection": {"type=vlan", "parent=bond0", "id=100", "address1=198.51.100.20/24"},
	} {
		got := readIn(t, root, dir+file)
		for _, w := range wants {
			if !strings.Contains(got, w) {
				t.Errorf("%s lacks %q:\n%s", file, w, got)
			}
		}
	}
	checkCommonConfig(t, disk, root)
}

// checkInstalledLayout checks the GPT was fixed, root grown to the end
// less the extra partitions, and the extra partitions made.
func checkInstalledLayout(t *testing.T, disk string, img osimage.Image) {
	t.Helper()
	tab := table(t, disk)
	if tab.PartitionTable.LastLBA*512 < installDiskSize-(1<<20) {
		t.Errorf("last usable LBA %d: the backup GPT was not moved to the end of the %d-byte disk", tab.PartitionTable.LastLBA, installDiskSize)
	}
	byName := map[string]int64{}
	var rootSize int64
	for _, p := range tab.PartitionTable.Partitions {
		byName[p.Name] = p.Size * 512
		if p.Start*512 == img.Root.Start {
			rootSize = p.Size * 512
		}
	}
	if rootSize <= img.Root.Size {
		t.Errorf("root partition: %d bytes, want grown from the image's %d", rootSize, img.Root.Size)
	}
	if byName["data"] != 96<<20 || byName["swap"] != 32<<20 {
		t.Errorf("extra partitions: got %v, want data 96 MiB and swap 32 MiB", byName)
	}
	out := sh(t, "blkid", "-o", "export", disk+"p"+strconv.Itoa(img.Root.Number))
	if !strings.Contains(out, "UUID="+img.Root.UUID) {
		t.Errorf("root filesystem UUID changed: blkid says\n%s, want %s", out, img.Root.UUID)
	}
	// The filesystem fills its grown partition.
	fs := sh(t, "dumpe2fs", "-h", disk+"p"+strconv.Itoa(img.Root.Number))
	var blocks, bsize int64
	for _, line := range strings.Split(fs, "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch strings.TrimSpace(k) {
		case "Block count":
			blocks, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		case "Block size":
			bsize, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if blocks*bsize < rootSize-(8<<20) {
		t.Errorf("root filesystem: %d bytes in a %d-byte partition, want it grown", blocks*bsize, rootSize)
	}
}

// checkCommonConfig checks what every family gets: fstab, shadow, keys,
// cloud-init seed, extra files.
func checkCommonConfig(t *testing.T, disk, root string) {
	t.Helper()
	dataUUID := strings.TrimSpace(sh(t, "blkid", "-s", "UUID", "-o", "value", "-t", "PARTLABEL=data", "-l"))
	if dataUUID == "" {
		t.Fatal("no data partition found by blkid")
	}
	fstab := readIn(t, root, "etc/fstab")
	if !strings.Contains(fstab, "UUID="+dataUUID) || !strings.Contains(fstab, "/srv/data") || !strings.Contains(fstab, "swap") {
		t.Errorf("fstab lacks the data (UUID=%s /srv/data) or swap line:\n%s", dataUUID, fstab)
	}
	if shadow := readIn(t, root, "etc/shadow"); !strings.Contains(shadow, "root:"+labOS.RootPasswordHash+":") {
		t.Errorf("shadow: root's hash not set:\n%s", shadow)
	}
	if keys := readIn(t, root, "root/.ssh/authorized_keys"); !strings.Contains(keys, labOS.SSHAuthorizedKeys[0]) {
		t.Errorf("authorized_keys: got %q", keys)
	}
	if ud := readIn(t, root, "var/lib/cloud/seed/nocloud/user-data"); ud != labOS.UserData {
		t.Errorf("user-data: got %q", ud)
	}
	if motd := readIn(t, root, "etc/motd"); motd != "installed by bareflow\n" {
		t.Errorf("motd: got %q", motd)
	}
	// The data partition mounts.
	mounted(t, disk, partitionByLabel(t, disk, "data"))
}

func partitionByLabel(t *testing.T, disk, label string) int {
	t.Helper()
	for _, p := range table(t, disk).PartitionTable.Partitions {
		if p.Name == label {
			n, _ := strconv.Atoi(strings.TrimPrefix(p.Node, disk+"p"))
			return n
		}
	}
	t.Fatalf("%s has no partition %s", disk, label)
	return 0
}

func TestInstallWrongChecksumFailsCleanly(t *testing.T) {
	l := newInstallLab(t, 1)
	l.addImage(t, "debian.raw.zst", osimage.Debian, contract.ImageRawZstd)
	src := l.images["debian.raw.zst"]
	src.ID, src.Checksum = "bad", strings.Repeat("ab", 32)
	l.images["bad"] = src
	_, err := l.install(t, contract.InstallInput{Image: "bad", OS: labOS})
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != contract.ErrImageChecksumMismatch {
		t.Fatalf("got %v, want %s", err, contract.ErrImageChecksumMismatch)
	}
	if rec := l.records(); len(rec) != 0 {
		t.Errorf("a failed install recorded an OS: %+v", rec)
	}
}

func TestInstallResumesAfterTheWriterDies(t *testing.T) {
	l := newInstallLab(t, 1)
	l.addImage(t, "debian.raw", osimage.Debian, contract.ImageRaw)
	// A slow server (16 MB/s): the writer's first checkpoint (every 5 s)
	// comes well before the end; then the writer dies as it does with its
	// worker, and the retry goes on at full speed.
	l.delay.Store(int64(4 * time.Millisecond))
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if states, _ := filepath.Glob("/run/bareflow-imagewriter/*"); len(states) > 0 {
				l.killWriter(t)
				l.delay.Store(0)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	res, err := l.install(t, contract.InstallInput{Image: "debian.raw", OS: labOS, Partitions: labPartitions})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if res.ResumedAt <= 0 {
		t.Errorf("resumed at %d: want the retry to continue from the writer's checkpoint", res.ResumedAt)
	}
	if res.Checksum != l.images["debian.raw"].Checksum {
		t.Errorf("checksum: got %s, want %s", res.Checksum, l.images["debian.raw"].Checksum)
	}
	t.Logf("the write resumed at %d MiB", res.ResumedAt>>20)
}

func TestReinstallKeepsDataPartition(t *testing.T) {
	l := newInstallLab(t, 1)
	img := l.addImage(t, "debian.raw.zst", osimage.Debian, contract.ImageRawZstd)
	disk := l.disks[0]
	// Root of a fixed size, so that the data partition lies beyond the
	// image and a reinstall can keep it.
	first := contract.InstallInput{Image: "debian.raw.zst", OS: labOS, Partitions: labPartitions, RootSizeBytes: img.Size}
	if _, err := l.install(t, first); err != nil {
		t.Fatalf("install: %v", err)
	}
	data := disk + "p" + strconv.Itoa(partitionByLabel(t, disk, "data"))
	dir := t.TempDir()
	sh(t, "mount", data, dir)
	if err := os.WriteFile(filepath.Join(dir, "keep-me"), []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	sh(t, "umount", dir)
	dataUUID := strings.TrimSpace(sh(t, "blkid", "-s", "UUID", "-o", "value", data))

	again := first
	again.Reinstall, again.Keep = true, []string{"data"}
	again.OS.Hostname = "web-2"
	again.Partitions = labPartitions[:1]
	if _, err := l.install(t, again); err != nil {
		t.Fatalf("reinstall: %v", err)
	}
	data = disk + "p" + strconv.Itoa(partitionByLabel(t, disk, "data"))
	if got := strings.TrimSpace(sh(t, "blkid", "-s", "UUID", "-o", "value", data)); got != dataUUID {
		t.Errorf("data filesystem UUID: got %q, want the kept %q", got, dataUUID)
	}
	kept := mounted(t, disk, partitionByLabel(t, disk, "data"))
	if got := readIn(t, kept, "keep-me"); got != "precious" {
		t.Errorf("kept file: got %q", got)
	}
	root := mounted(t, disk, img.Root.Number)
	if got := readIn(t, root, "etc/hostname"); got != "web-2\n" {
		t.Errorf("hostname after the reinstall: got %q", got)
	}
	if fstab := readIn(t, root, "etc/fstab"); !strings.Contains(fstab, "UUID="+dataUUID) {
		t.Errorf("fstab after the reinstall lacks the kept data partition:\n%s", fstab)
	}

	// A partition the new image would overwrite cannot be kept.
	again.Keep = []string{"root"}
	_, err := l.install(t, again)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != contract.ErrKeepConflict {
		t.Fatalf("keeping the image's own root: got %v, want %s", err, contract.ErrKeepConflict)
	}
}

func TestWipeLeavesNoSignature(t *testing.T) {
	l := newInstallLab(t, 2)
	l.addImage(t, "debian.raw.zst", osimage.Debian, contract.ImageRawZstd)
	if _, err := l.install(t, contract.InstallInput{Image: "debian.raw.zst", OS: labOS, Partitions: labPartitions}); err != nil {
		t.Fatalf("install: %v", err)
	}
	// Something on the second disk too.
	sh(t, "mkfs.ext4", "-q", "-F", l.disks[1])
	env := l.env(t)
	// A new operation: erase jobs of earlier runs in this /run are not its.
	env.ExecuteWorkflow(workflows.Wipe, contract.WipeInput{MachineID: "m", Erase: contract.EraseOverwrite,
		OperationID: "wipe-" + strconv.FormatInt(time.Now().UnixNano(), 36)})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("wipe: %v", err)
	}
	var res contract.WipeResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.Disks) != 2 || len(res.Erased) != 2 || res.LeasesReleased != 1 {
		t.Errorf("result: got %+v", res)
	}
	for _, d := range l.disks {
		if out, _ := exec.Command("wipefs", "--no-act", d).Output(); strings.TrimSpace(string(out)) != "" {
			t.Errorf("wipefs finds signatures on %s:\n%s", d, out)
		}
		if out, err := exec.Command("blkid", "-p", d).CombinedOutput(); err == nil {
			t.Errorf("blkid finds something on %s: %s", d, out)
		}
		// Read the disk, not pages the host cached before the erase.
		sh(t, "blockdev", "--flushbufs", d)
		if out := sh(t, "cmp", "-n", strconv.Itoa(installDiskSize), d, "/dev/zero"); out != "" {
			t.Errorf("%s is not all zeros after the overwrite: %s", d, out)
		}
	}
	if rec := l.records(); len(rec) == 0 || rec[len(rec)-1].Image != "" {
		t.Errorf("the installed OS was not forgotten: %+v", rec)
	}
}
