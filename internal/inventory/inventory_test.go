package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"bareflow/contract"
)

var update = flag.Bool("update", false, "rewrite testdata/*/inventory.golden.json")

// goldenFile is the parsed inventory of each source directory.
const goldenFile = "inventory.golden.json"

// sources are the machines under testdata, each a directory with one
// NAME.out file per command (and NAME.err for a command that failed).
var sources = []string{"dell-r740", "hpe-dl380-gen10", "supermicro-x11", "huawei-2288h-v5", "lenovo-sr650", "qemu"}

// loadSource reads the outputs of one source directory.
func loadSource(t testing.TB, dir string) map[string]Output {
	t.Helper()
	outputs := map[string]Output{}
	for _, c := range Commands() {
		b, err := os.ReadFile(filepath.Join(dir, c.Name+".out"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		o := Output{Stdout: b}
		if e, err := os.ReadFile(filepath.Join(dir, c.Name+".err")); err == nil {
			o.Err = strings.TrimSpace(string(e))
		}
		outputs[c.Name] = o
	}
	if len(outputs) == 0 {
		t.Fatalf("%s: no command outputs", dir)
	}
	return outputs
}

func marshal(t testing.TB, inv contract.Inventory) []byte {
	t.Helper()
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestParseGolden parses each source and compares the inventory with its
// golden JSON; -update rewrites the golden files.
func TestParseGolden(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if e.IsDir() {
			found = append(found, e.Name())
		}
	}
	for _, s := range sources {
		if !slices.Contains(found, s) {
			t.Errorf("testdata/%s is missing", s)
		}
	}
	for _, name := range found {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			got := marshal(t, Parse(loadSource(t, dir)))
			path := filepath.Join(dir, goldenFile)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("inventory differs from %s (go test -update rewrites it):\n%s", path, lineDiff(got, want))
			}
		})
	}
}

// lineDiff shows the first lines where got and want differ.
func lineDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	var out []string
	for i := 0; i < max(len(g), len(w)) && len(out) < 20; i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			out = append(out, "line "+strconv.Itoa(i+1)+":\n  got:  "+gl+"\n  want: "+wl)
		}
	}
	return strings.Join(out, "\n")
}

const gib = int64(1) << 30

// diskFact is what a source must say about one disk.
type diskFact struct {
	name, typ, serial, wwn, transport, controller, driver string
	removable                                             bool
}

// nicFact is what a source must say about one NIC.
type nicFact struct {
	name, mac, driver, pci string
	speed                  int
	link                   bool
	addrs                  []string
	lldpPort               string
	vlan                   int
}

// facts are checked apart from the golden files, so that a golden file
// rewritten with a bug in it cannot hide the bug.
type facts struct {
	vendor, model, serial, uuid, bootMode, chassisAsset string
	sockets, cores, threads                             int
	memTotal, memUsable                                 int64
	dimms, disks, nics, gpus                            int
	disk                                                []diskFact
	nic                                                 []nicFact
	raid                                                []contract.RAIDController
}

var sourceFacts = map[string]facts{
	"dell-r740": {
		vendor: "Dell Inc.", model: "PowerEdge R740", serial: "8X4K2M3",
		uuid: "4c4c4544-0058-3410-804b-b8c04f324d33", bootMode: contract.FirmwareUEFI,
		sockets: 2, cores: 40, threads: 80, memTotal: 384 * gib, memUsable: 395930268 << 10,
		dimms: 12, disks: 2, nics: 4, gpus: 0,
		disk: []diskFact{
			{name: "sda", typ: contract.DiskSSD, serial: "4f2d8c0b3e1a7f2a00ce5e576046096d",
				wwn: "0x6d094660575ece002a7f1a3e0b8c2d4f", transport: "scsi", controller: "0000:3b:00.0", driver: "megaraid_sas"},
			{name: "sdb", typ: contract.DiskHDD, transport: "scsi", controller: "0000:3b:00.0", driver: "megaraid_sas",
				serial: "706f4e1d5c1a7f2a00ce5e576046096d", wwn: "0x6d094660575ece002a7f1a5c1d4e6f70"},
		},
		nic: []nicFact{
			{name: "eth0", mac: "e4:43:4b:1a:2b:30", driver: "bnxt_en", pci: "0000:19:00.0", speed: 10000, link: true,
				addrs: []string{"10.20.30.41/24"}, lldpPort: "ethernet1/1/12", vlan: 120},
			{name: "eth1", mac: "e4:43:4b:1a:2b:32", driver: "bnxt_en", pci: "0000:19:00.1", speed: 10000, link: true,
				lldpPort: "ethernet1/1/12", vlan: 120},
			{name: "eth3", mac: "e4:43:4b:1a:2b:35", driver: "tg3", pci: "0000:01:00.1", speed: 0, link: false},
		},
		raid: []contract.RAIDController{{PCIAddr: "0000:3b:00.0", Driver: "megaraid_sas", Vendor: "Broadcom / LSI",
			Model: "MegaRAID Tri-Mode SAS3508"}},
	},
	"hpe-dl380-gen10": {
		vendor: "HPE", model: "ProLiant DL380 Gen10", serial: "CZJ0230ABC",
		uuid: "37383638-3330-5a43-4a30-323330414243", bootMode: contract.FirmwareUEFI,
		sockets: 2, cores: 24, threads: 48, memTotal: 256 * gib, memUsable: 263655912 << 10,
		dimms: 8, disks: 3, nics: 6, gpus: 0,
		disk: []diskFact{
			{name: "nvme0n1", typ: contract.DiskNVMe, serial: "S3HSNA0MA01234", wwn: "eui.33484e5354a012340025384100000001",
				transport: "nvme", controller: "0000:86:00.0", driver: "nvme"},
			{name: "sda", typ: contract.DiskSSD, serial: "PEYHC0ARH8Z0AB", wwn: "0x600508b1001c5e3b8a0f5e1d6c7b9a42",
				transport: "sas", controller: "0000:5d:00.0", driver: "smartpqi"},
		},
		nic: []nicFact{
			{name: "eth0", mac: "94:40:c9:3a:6e:7c", driver: "tg3", pci: "0000:02:00.0", speed: 1000, link: true,
				addrs: []string{"10.40.12.17/22"}},
			{name: "eth5", mac: "48:df:37:0c:5b:a1", driver: "i40e", pci: "0000:12:00.1", speed: 10000, link: true},
		},
		raid: []contract.RAIDController{{PCIAddr: "0000:5d:00.0", Driver: "smartpqi", Vendor: "Adaptec",
			Model: "Smart Storage PQI SAS"}},
	},
	"supermicro-x11": {
		vendor: "Supermicro", model: "Super Server", serial: "",
		uuid: "00000000-0000-0000-0000-ac1f6b8d3e12", bootMode: contract.FirmwareBIOS,
		sockets: 2, cores: 20, threads: 40, memTotal: 64 * gib, memUsable: 65640856 << 10,
		dimms: 4, disks: 5, nics: 2, gpus: 1,
		disk: []diskFact{
			{name: "sda", typ: contract.DiskSSD, serial: "S45PNA0M812345", wwn: "0x5002538e4012a3b4",
				transport: "sata", controller: "0000:00:17.0", driver: "ahci"},
			{name: "sdd", typ: contract.DiskHDD, serial: "ZC1A2B9F", wwn: "0x5000c500b1c2d5a1",
				transport: "sata", controller: "0000:00:17.0", driver: "ahci"},
			{name: "sde", typ: contract.DiskHDD, serial: "60A44C413AB9F3A0B9A10071", transport: "usb",
				controller: "0000:00:14.0", driver: "xhci_hcd", removable: true},
		},
		nic: []nicFact{
			{name: "eth0", mac: "ac:1f:6b:8d:3e:12", driver: "igb", pci: "0000:19:00.0", speed: 1000, link: true,
				addrs: []string{"172.16.8.63/24"}},
			{name: "eth1", mac: "ac:1f:6b:8d:3e:13", driver: "igb", pci: "0000:19:00.1"},
		},
	},
	"huawei-2288h-v5": {
		vendor: "Huawei", model: "2288H V5", serial: "2102311TYBN0K1000123",
		uuid: "b8e3a5d0-0f5c-11ea-8000-1c20db7a6e41", bootMode: contract.FirmwareUEFI,
		sockets: 2, cores: 48, threads: 96, memTotal: 512 * gib, memUsable: 527859460 << 10,
		dimms: 8, disks: 2, nics: 2, gpus: 0,
		disk: []diskFact{
			{name: "sda", typ: contract.DiskHDD, serial: "706f5e4d3c0b1f2ac0b48a06b2620060", wwn: "0x600062b2068ab4c02a1f0b3c4d5e6f70",
				transport: "scsi", controller: "0000:1a:00.0", driver: "megaraid_sas"},
			{name: "sdb", typ: contract.DiskSSD, serial: "BTYF0123004M960CGN", wwn: "0x55cd2e41512a3b4c",
				transport: "scsi", controller: "0000:1a:00.0", driver: "megaraid_sas"},
		},
		nic: []nicFact{
			{name: "eth0", mac: "1c:20:db:7a:6e:42", driver: "ixgbe", pci: "0000:3d:00.0", speed: 10000, link: true,
				addrs: []string{"10.60.4.23/24"}},
		},
		raid: []contract.RAIDController{{PCIAddr: "0000:1a:00.0", Driver: "megaraid_sas", Vendor: "Broadcom / LSI",
			Model: "MegaRAID Tri-Mode SAS3508"}},
	},
	"lenovo-sr650": {
		vendor: "Lenovo", model: "ThinkSystem SR650 -[7X06CTO1WW]-", serial: "J30A1B2C",
		uuid: "a6f1e2d0-5b3c-11e9-a1b2-0a94ef01c2d4", bootMode: contract.FirmwareUEFI, chassisAsset: "DC2-RACK07-U12",
		sockets: 1, cores: 16, threads: 32, memTotal: 192 * gib, memUsable: 197487612 << 10,
		dimms: 6, disks: 2, nics: 2, gpus: 0,
		disk: []diskFact{
			{name: "sda", typ: contract.DiskSSD, serial: "7d4c10b8a4c9b1c70010", transport: "sata",
				controller: "0000:05:00.0", driver: "ahci"},
			{name: "sdb", typ: contract.DiskHDD, serial: "102c4d3f1a9e5c2bf0a07b0db0050660", wwn: "0x600605b00d7ba0f02b5c9e1a3f4d2c10",
				transport: "scsi", controller: "0000:5e:00.0", driver: "megaraid_sas"},
		},
		nic: []nicFact{
			{name: "eth0", mac: "b8:59:9f:01:2a:40", driver: "mlx5_core", pci: "0000:af:00.0", speed: 25000, link: true,
				addrs: []string{"10.80.3.112/23", "2001:db8:10:20:ba59:9fff:fe01:2a40/64"}},
			{name: "eth1", mac: "b8:59:9f:01:2a:41", driver: "mlx5_core", pci: "0000:af:00.1"},
		},
		raid: []contract.RAIDController{
			{PCIAddr: "0000:05:00.0", Driver: "ahci", Vendor: "Marvell Technology Group Ltd.",
				Model: "88SE9230 PCIe 2.0 x2 4-port SATA 6 Gb/s RAID Controller"},
			{PCIAddr: "0000:5e:00.0", Driver: "megaraid_sas", Vendor: "Broadcom / LSI", Model: "MegaRAID Tri-Mode SAS3508"},
		},
	},
	"qemu": {
		vendor: "bareflow-lab", model: "qemu-pxe", serial: "LAB-0001",
		uuid: "5b1c2a8e-3f4d-4e6a-9b7c-1d2e3f405162", bootMode: contract.FirmwareBIOS,
		sockets: 1, cores: 2, threads: 2, memTotal: 1 * gib, memUsable: 1000880 << 10,
		dimms: 1, disks: 3, nics: 2, gpus: 0,
		disk: []diskFact{
			{name: "sda", typ: contract.DiskHDD, serial: "QM00001", transport: "sata", controller: "0000:00:06.0", driver: "ahci"},
			{name: "sdb", typ: contract.DiskHDD, transport: "scsi", controller: "0000:00:07.0", driver: "megaraid_sas"},
			{name: "vda", typ: contract.DiskHDD, transport: "virtio", controller: "0000:00:05.0", driver: "virtio-pci"},
		},
		nic: []nicFact{
			{name: "eth0", mac: "52:54:00:12:34:56", driver: "virtio_net", pci: "0000:00:03.0", speed: 0, link: true,
				addrs: []string{"198.51.100.100/24"}},
			{name: "eth1", mac: "52:54:00:12:34:57", driver: "e1000", pci: "0000:00:04.0", speed: 1000, link: true},
		},
		raid: []contract.RAIDController{{PCIAddr: "0000:00:07.0", Driver: "megaraid_sas", Vendor: "Broadcom / LSI",
			Model: "MegaRAID SAS 1078"}},
	},
}

// TestParseFacts checks the facts of each source that matter most.
func TestParseFacts(t *testing.T) {
	for _, name := range sources {
		t.Run(name, func(t *testing.T) {
			want, ok := sourceFacts[name]
			if !ok {
				t.Fatalf("no facts for %s", name)
			}
			inv := Parse(loadSource(t, filepath.Join("testdata", name)))
			if len(inv.Warnings) > 0 {
				t.Errorf("warnings: got %q, want none", inv.Warnings)
			}
			sys := inv.System
			for _, c := range []struct{ what, got, want string }{
				{"vendor", sys.Vendor, want.vendor},
				{"model", sys.Model, want.model},
				{"serial", sys.Serial, want.serial},
				{"uuid", sys.UUID, want.uuid},
				{"boot mode", sys.BootMode, want.bootMode},
				{"chassis asset tag", sys.ChassisAsset, want.chassisAsset},
			} {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
				}
			}
			for _, c := range []struct {
				what      string
				got, want int64
			}{
				{"sockets", int64(inv.CPU.Sockets), int64(want.sockets)},
				{"cores", int64(inv.CPU.Cores), int64(want.cores)},
				{"threads", int64(inv.CPU.Threads), int64(want.threads)},
				{"memory total", inv.Memory.TotalBytes, want.memTotal},
				{"memory usable", inv.Memory.UsableBytes, want.memUsable},
				{"DIMMs", int64(len(inv.Memory.DIMMs)), int64(want.dimms)},
				{"disks", int64(inv.DiskCount()), int64(want.disks)},
				{"NICs", int64(len(inv.NICs)), int64(want.nics)},
				{"GPUs", int64(inv.GPUCount()), int64(want.gpus)},
			} {
				if c.got != c.want {
					t.Errorf("%s: got %d, want %d", c.what, c.got, c.want)
				}
			}
			if inv.CPU.Model == "" || inv.CPU.Arch != "x86_64" {
				t.Errorf("cpu: got model %q arch %q, want a model and x86_64", inv.CPU.Model, inv.CPU.Arch)
			}
			for _, wd := range want.disk {
				i := slices.IndexFunc(inv.Disks, func(d contract.Disk) bool { return d.Name == wd.name })
				if i < 0 {
					t.Errorf("disk %s: missing", wd.name)
					continue
				}
				d := inv.Disks[i]
				got := diskFact{d.Name, d.Type, d.Serial, d.WWN, d.Transport, d.Controller, d.ControllerDriver, d.Removable}
				if got != wd {
					t.Errorf("disk %s:\n got  %+v\n want %+v", wd.name, got, wd)
				}
				if d.SizeBytes <= 0 {
					t.Errorf("disk %s: got size %d, want > 0", wd.name, d.SizeBytes)
				}
			}
			for _, wn := range want.nic {
				i := slices.IndexFunc(inv.NICs, func(n contract.NIC) bool { return n.Name == wn.name })
				if i < 0 {
					t.Errorf("nic %s: missing", wn.name)
					continue
				}
				n := inv.NICs[i]
				if n.MAC != wn.mac || n.Driver != wn.driver || n.PCIAddr != wn.pci || n.SpeedMbps != wn.speed || n.Link != wn.link {
					t.Errorf("nic %s: got mac %s driver %s pci %s speed %d link %v, want %s %s %s %d %v", wn.name,
						n.MAC, n.Driver, n.PCIAddr, n.SpeedMbps, n.Link, wn.mac, wn.driver, wn.pci, wn.speed, wn.link)
				}
				if !slices.Equal(n.Addrs, wn.addrs) {
					t.Errorf("nic %s addrs: got %q, want %q", wn.name, n.Addrs, wn.addrs)
				}
				var port string
				var vlan int
				if n.LLDP != nil {
					port, vlan = n.LLDP.PortID, n.LLDP.VLAN
				}
				if port != wn.lldpPort || vlan != wn.vlan {
					t.Errorf("nic %s lldp: got port %q vlan %d, want %q %d", wn.name, port, vlan, wn.lldpPort, wn.vlan)
				}
			}
			if !reflect.DeepEqual(inv.RAID, want.raid) {
				t.Errorf("raid controllers:\n got  %+v\n want %+v", inv.RAID, want.raid)
			}
			checkSorted(t, inv)
		})
	}
}

// checkSorted checks that the slices are in their documented order.
func checkSorted(t *testing.T, inv contract.Inventory) {
	t.Helper()
	if !slices.IsSortedFunc(inv.NICs, func(a, b contract.NIC) int { return naturalCompare(a.Name, b.Name) }) {
		t.Errorf("NICs not sorted by name")
	}
	if !slices.IsSortedFunc(inv.Disks, func(a, b contract.Disk) int { return naturalCompare(a.Name, b.Name) }) {
		t.Errorf("disks not sorted by name")
	}
	if !slices.IsSortedFunc(inv.PCI, func(a, b contract.PCIDevice) int { return strings.Compare(a.Addr, b.Addr) }) {
		t.Errorf("PCI devices not sorted by address")
	}
}
