package inventory

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"bareflow/contract"
)

func TestValuePlaceholders(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"not specified":         {"Not Specified", ""},
		"oem upper":             {"To Be Filled By O.E.M.", ""},
		"oem lower":             {"To be filled by O.E.M.", ""},
		"ami default":           {"Default string", ""},
		"none":                  {"None", ""},
		"supermicro serial":     {"0123456789", ""},
		"system serial number":  {"System Serial Number", ""},
		"not present":           {"Not Present", ""},
		"unknown":               {"Unknown", ""},
		"zeros":                 {"00000000", ""},
		"blank":                 {"   ", ""},
		"padded real value":     {"  PowerEdge R740   ", "PowerEdge R740"},
		"inner blanks collapse": {"Intel(R)   Xeon(R)\tGold", "Intel(R) Xeon(R) Gold"},
		"control characters":    {"AB\x00C\x07D", "ABCD"},
		"invalid utf-8":         {"S\xffN", "SN"},
		"real serial":           {"8X4K2M3", "8X4K2M3"},
		"serial with zeros":     {"0000A1", "0000A1"},
		"long value is capped":  {strings.Repeat("x", 1000), strings.Repeat("x", maxValue)},
	} {
		t.Run(name, func(t *testing.T) {
			if got := value(tc.in); got != tc.want {
				t.Errorf("value(%q): got %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestNormalizeUUID(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"lower":        {"4c4c4544-0058-3410-804b-b8c04f324d33", "4c4c4544-0058-3410-804b-b8c04f324d33"},
		"upper":        {"4C4C4544-0058-3410-804B-B8C04F324D33", "4c4c4544-0058-3410-804b-b8c04f324d33"},
		"all zeros":    {"00000000-0000-0000-0000-000000000000", ""},
		"all ones":     {"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", ""},
		"not present":  {"Not Present", ""},
		"not settable": {"Not Settable", ""},
		"garbage":      {"4c4c4544-0058-3410-804b-b8c04f324dZZ", ""},
		"short":        {"4c4c4544-0058", ""},
	} {
		t.Run(name, func(t *testing.T) {
			if got := normalizeUUID(tc.in); got != tc.want {
				t.Errorf("normalizeUUID(%q): got %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseDIMMSize(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want int64
		ok   bool
	}{
		"GB":                   {"16 GB", 16 << 30, true},
		"MB (dmidecode < 3.3)": {"16384 MB", 16 << 30, true},
		"32 GB":                {"32 GB", 32 << 30, true},
		"TB":                   {"1 TB", 1 << 40, true},
		"kB":                   {"512 kB", 512 << 10, true},
		"empty slot":           {"No Module Installed", 0, false},
		"not installed":        {"Not Installed", 0, false},
		"unknown":              {"Unknown", 0, false},
		"zero":                 {"0 MB", 0, false},
		"no unit":              {"16", 0, false},
		"bad unit":             {"16 XB", 0, false},
		"negative":             {"-16 GB", 0, false},
		"huge":                 {"999999999999 TB", 0, false},
		"empty":                {"", 0, false},
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := parseDIMMSize(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parseDIMMSize(%q): got %d, %v, want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseSpeedMTs(t *testing.T) {
	for in, want := range map[string]int{
		"2933 MT/s": 2933,
		"2933 MHz":  2933,
		"Unknown":   0,
		"":          0,
		"fast":      0,
		"2933":      0,
		"-1 MT/s":   0,
	} {
		if got := parseSpeedMTs(in); got != want {
			t.Errorf("parseSpeedMTs(%q): got %d, want %d", in, got, want)
		}
	}
}

func TestParseEthtoolSpeed(t *testing.T) {
	for in, want := range map[string]int{
		"1000Mb/s":  1000,
		"25000Mb/s": 25000,
		"Unknown!":  0,
		"":          0,
		"10Gb/s":    0,
		"-1Mb/s":    0,
	} {
		if got := parseEthtoolSpeed(in); got != want {
			t.Errorf("parseEthtoolSpeed(%q): got %d, want %d", in, got, want)
		}
	}
}

// TestSysfsPath derives the controller and the transport from the sysfs
// paths of disks on the usual controllers.
func TestSysfsPath(t *testing.T) {
	for name, tc := range map[string]struct{ path, controller, transport string }{
		"ahci": {"/sys/devices/pci0000:00/0000:00:17.0/ata7/host6/target6:0:0/6:0:0:0",
			"0000:00:17.0", "sata"},
		"megaraid logical drive": {"/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/host0/target0:2:0/0:2:0:0",
			"0000:3b:00.0", "scsi"},
		"mpt3sas behind an expander": {"/sys/devices/pci0000:00/0000:00:03.0/0000:02:00.0/host0/port-0:0/expander-0:0/port-0:0:4/end_device-0:0:4/target0:0:4/0:0:4:0",
			"0000:02:00.0", "sas"},
		"nvme controller": {"/sys/devices/pci0000:85/0000:85:00.0/0000:86:00.0/nvme/nvme0",
			"0000:86:00.0", "nvme"},
		"nvme behind vmd": {"/sys/devices/pci0000:64/0000:64:05.5/pci10000:00/10000:00:02.0/10000:01:00.0/nvme/nvme2",
			"10000:01:00.0", "nvme"},
		"virtio-blk": {"/sys/devices/pci0000:00/0000:00:05.0/virtio2",
			"0000:00:05.0", "virtio"},
		"virtio-scsi": {"/sys/devices/pci0000:00/0000:00:04.0/virtio1/host0/target0:0:0/0:0:0:0",
			"0000:00:04.0", "virtio"},
		"usb stick": {"/sys/devices/pci0000:00/0000:00:14.0/usb2/2-3/2-3:1.0/host14/target14:0:0/14:0:0:0",
			"0000:00:14.0", "usb"},
		"no pci":    {"/sys/devices/virtual/block/loop0", "", ""},
		"empty":     {"", "", ""},
		"garbage":   {"0000:zz:00.0/ata/hostx/usb", "", ""},
		"uppercase": {"/sys/devices/pci0000:00/0000:00:1F.2/ata1", "", "sata"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := lastPCIAddr(tc.path); got != tc.controller {
				t.Errorf("controller: got %q, want %q", got, tc.controller)
			}
			if got := transportFromPath(tc.path); got != tc.transport {
				t.Errorf("transport: got %q, want %q", got, tc.transport)
			}
		})
	}
}

func TestSkippedDisk(t *testing.T) {
	for name, want := range map[string]bool{
		"sda": false, "vda": false, "nvme0n1": false, "nvme10n2": false, "mmcblk0": false, "xvda": false,
		"loop0": true, "ram0": true, "zram0": true, "dm-0": true, "md127": true, "sr0": true, "nbd3": true,
		"fd0": true, "zd16": true, "nvme0c1n1": true, "mmcblk0boot0": true, "mmcblk0rpmb": true,
	} {
		if got := skippedDisk(name); got != want {
			t.Errorf("skippedDisk(%q): got %v, want %v", name, got, want)
		}
	}
}

func TestNormalizeWWN(t *testing.T) {
	for in, want := range map[string]string{
		"naa.5000c500a1b2c3d4":                 "0x5000c500a1b2c3d4",
		"naa.6D094660575ECE002A7F1A3E0B8C2D4F": "0x6d094660575ece002a7f1a3e0b8c2d4f",
		"0x5000c500a1b2c3d4":                   "0x5000c500a1b2c3d4",
		"eui.0025388b91b2a3c4":                 "eui.0025388b91b2a3c4",
		"eui.33484e5354a012340025384100000001": "eui.33484e5354a012340025384100000001",
		"t10.ATA     QEMU HARDDISK   QM00001":  "",
		"nvme.144d-5333-4d4f":                  "",
		"naa.0000000000000000":                 "",
		"naa.5000c5":                           "",
		"":                                     "",
	} {
		if got := normalizeWWN(in); got != want {
			t.Errorf("normalizeWWN(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestVPDSerial(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"ata serial, padded":     {"00800014514d303030303120202020202020202020202020", "QM00001"},
		"leading blanks":         {"008000082020205a43314132", "ZC1A2"},
		"length beyond the data": {"0080ffff41424344", "ABCD"},
		"other page":             {"0083000441424344", ""},
		"short":                  {"0080", ""},
		"odd hex":                {"00800", ""},
		"not hex":                {"zz800004", ""},
		"blank serial":           {"008000042020202020", ""},
	} {
		t.Run(name, func(t *testing.T) {
			if got := vpdSerial(tc.in); got != tc.want {
				t.Errorf("vpdSerial(%q): got %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSplitNameID(t *testing.T) {
	for in, want := range map[string][2]string{
		"Broadcom / LSI [1000]":                {"Broadcom / LSI", "1000"},
		"RAID bus controller [0104]":           {"RAID bus controller", "0104"},
		"MegaRAID SAS-3 3108 [Invader] [005d]": {"MegaRAID SAS-3 3108 [Invader]", "005d"},
		"TU104GL [Tesla T4] [1eb8]":            {"TU104GL [Tesla T4]", "1eb8"},
		"Vendor [1234]":                        {"", "1234"},
		"Device [1111]":                        {"", "1111"},
		"Intel Corporation":                    {"Intel Corporation", ""},
		"Odd [name]":                           {"Odd [name]", ""},
		"":                                     {"", ""},
		"[1000]":                               {"[1000]", ""},
	} {
		name, id := splitNameID(in)
		if name != want[0] || id != want[1] {
			t.Errorf("splitNameID(%q): got %q, %q, want %q, %q", in, name, id, want[0], want[1])
		}
	}
}

func TestIsGPU(t *testing.T) {
	for name, tc := range map[string]struct {
		class, vendor string
		want          bool
	}{
		"nvidia 3D":          {"0302", "10de", true},
		"nvidia VGA":         {"0300", "10de", true},
		"amd display":        {"0380", "1002", true},
		"intel VGA":          {"0300", "8086", true},
		"aspeed BMC":         {"0300", "1a03", false},
		"matrox iDRAC":       {"0300", "102b", false},
		"huawei iBMC":        {"0300", "19e5", false},
		"qemu std VGA":       {"0300", "1234", false},
		"cirrus":             {"0300", "1013", false},
		"virtio-gpu":         {"0300", "1af4", false},
		"vmware svga":        {"0300", "15ad", false},
		"nvidia audio":       {"0403", "10de", false},
		"nvidia switch":      {"0680", "10de", false},
		"unknown VGA vendor": {"0300", "abcd", true},
	} {
		t.Run(name, func(t *testing.T) {
			if got := isGPU(tc.class, tc.vendor); got != tc.want {
				t.Errorf("isGPU(%s, %s): got %v, want %v", tc.class, tc.vendor, got, tc.want)
			}
		})
	}
}

func TestRAIDFromPCI(t *testing.T) {
	pci := []contract.PCIDevice{
		{Addr: "0000:00:17.0", ClassID: "0106", Driver: "ahci", Vendor: "Intel Corporation", Device: "C620 SATA"},
		{Addr: "0000:3b:00.0", ClassID: "0104", Driver: "megaraid_sas", Vendor: "Broadcom / LSI", Device: "SAS3508"},
		{Addr: "0000:5d:00.0", ClassID: "0107", Driver: "smartpqi", Vendor: "Adaptec", Device: "Smart Storage PQI SAS"},
		{Addr: "0000:5e:00.0", ClassID: "0107", Driver: "mpt3sas", Vendor: "Broadcom / LSI", Device: "SAS3008"},
		{Addr: "0000:5f:00.0", ClassID: "0104", Vendor: "Broadcom / LSI", Device: "No driver bound"},
		{Addr: "0000:60:00.0", ClassID: "0200", Driver: "i40e"},
	}
	got := RAIDFromPCI(pci)
	var addrs []string
	for _, r := range got {
		addrs = append(addrs, r.PCIAddr)
	}
	want := []string{"0000:3b:00.0", "0000:5d:00.0", "0000:5e:00.0", "0000:5f:00.0"}
	if !slices.Equal(addrs, want) {
		t.Fatalf("controllers: got %q, want %q", addrs, want)
	}
	if r := got[1]; r.Driver != "smartpqi" || r.Vendor != "Adaptec" || r.Model != "Smart Storage PQI SAS" || r.Tool != "" {
		t.Errorf("smartpqi controller: got %+v", r)
	}
	if RAIDFromPCI(nil) != nil {
		t.Errorf("no devices: got controllers, want none")
	}
}

func TestNaturalOrder(t *testing.T) {
	got := []string{"eth10", "eth2", "sdb", "nvme10n1", "sda", "eth1", "nvme2n1", "eth01"}
	slices.SortFunc(got, naturalCompare)
	want := []string{"eth01", "eth1", "eth2", "eth10", "nvme2n1", "nvme10n1", "sda", "sdb"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestParseLsblkForms reads the JSON of older util-linux (every value a
// string) and of newer (numbers and booleans).
func TestParseLsblkForms(t *testing.T) {
	old := `{"blockdevices": [{"name": "sda", "size": "480103981056", "rota": "0", "type": "disk", "tran": "sata",
		"model": "SAMSUNG MZ7LH480", "vendor": "ATA     ", "serial": "S45PNA0M812345", "wwn": "0x5002538e4012a3b4",
		"rm": "0", "hctl": "0:0:0:0"}, {"name": "sr0", "size": "1073741312", "rota": "1", "type": "rom", "rm": "1"}]}`
	blk, err := parseLsblk([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	disks := buildDisks(blk, nil)
	want := []contract.Disk{{Name: "sda", SizeBytes: 480103981056, Type: contract.DiskSSD, Model: "SAMSUNG MZ7LH480",
		Serial: "S45PNA0M812345", WWN: "0x5002538e4012a3b4", Transport: "sata"}}
	if !reflect.DeepEqual(disks, want) {
		t.Errorf("old lsblk:\n got  %+v\n want %+v", disks, want)
	}
	// One device of the wrong shape is skipped, the others kept.
	mixed := `{"blockdevices": [{"name": ["x"]}, {"name": "vda", "size": 67108864, "rota": true, "type": "disk"}, 7]}`
	blk, err = parseLsblk([]byte(mixed))
	if err == nil || len(blk) != 1 || blk[0].name != "vda" {
		t.Errorf("mixed lsblk: got %+v, %v, want vda and an error", blk, err)
	}
}

// TestBuildDisksFallbacks covers disks known to sysfs only, zero-size and
// non-disk devices.
func TestBuildDisksFallbacks(t *testing.T) {
	sys, err := parseSysBlock([]byte(`garbage before the first section
@@@ nvme0n1
size=3125627568
removable=0
rotational=0
model=Dell Express Flash NVMe P4610 1.6TB SFF
serial=PHLN0123004X1P6AGN
wwid=eui.01000000010000005cd2e4f1c3a25051
device=/sys/devices/pci0000:d7/0000:d7:00.0/0000:d8:00.0/nvme/nvme0
driver=nvme
@@@ sdb
size=0
removable=1
@@@ loop0
size=2048
@@@ bad/name
size=100
@@@ sdc
size=notanumber
`))
	if err != nil {
		t.Fatal(err)
	}
	got := buildDisks(nil, sys)
	want := []contract.Disk{{Name: "nvme0n1", SizeBytes: 3125627568 * 512, Type: contract.DiskNVMe,
		Model: "Dell Express Flash NVMe P4610 1.6TB SFF", Serial: "PHLN0123004X1P6AGN",
		WWN: "eui.01000000010000005cd2e4f1c3a25051", Transport: "nvme", Controller: "0000:d8:00.0",
		ControllerDriver: "nvme"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("disks:\n got  %+v\n want %+v", got, want)
	}
}

func TestParseLLDPForms(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want map[string]contract.LLDPNeighbor
	}{
		"one interface, named chassis": {
			`{"lldp": {"interface": {"eth0": {"via": "LLDP", "chassis": {"sw1": {"id": {"type": "mac", "value": "00:1c:73:aa:bb:cc"}}},
			"port": {"id": {"type": "ifname", "value": "Ethernet12"}, "descr": "server port"}, "vlan": {"vlan-id": "100", "pvid": true}}}}}`,
			map[string]contract.LLDPNeighbor{"eth0": {ChassisID: "00:1c:73:aa:bb:cc", PortID: "Ethernet12",
				SystemName: "sw1", PortDescription: "server port", VLAN: 100}},
		},
		"unnamed chassis, vlans without pvid": {
			`{"lldp": {"interface": [{"eth1": {"chassis": {"id": {"type": "mac", "value": "00:1c:73:aa:bb:dd"}},
			"port": {"id": {"type": "mac", "value": "00:1c:73:aa:bb:de"}}, "vlan": [{"vlan-id": "7"}, {"vlan-id": "8"}]}}]}}`,
			map[string]contract.LLDPNeighbor{"eth1": {ChassisID: "00:1c:73:aa:bb:dd", PortID: "00:1c:73:aa:bb:de", VLAN: 7}},
		},
		"json0": {
			`{"lldp": [{"interface": [{"name": "eth2", "via": "LLDP", "chassis": [{"id": [{"type": "mac", "value": "aa:bb:cc:00:11:22"}],
			"name": [{"value": "leaf3"}]}], "port": [{"id": [{"type": "ifname", "value": "swp7"}], "descr": [{"value": "srv7"}]}],
			"vlan": [{"vlan-id": 20, "pvid": false}, {"vlan-id": 30, "pvid": true}]}]}]}`,
			map[string]contract.LLDPNeighbor{"eth2": {ChassisID: "aa:bb:cc:00:11:22", PortID: "swp7", SystemName: "leaf3",
				PortDescription: "srv7", VLAN: 30}},
		},
		"no neighbours": {`{"lldp": {}}`, map[string]contract.LLDPNeighbor{}},
		"neighbour without ids": {
			`{"lldp": {"interface": {"eth0": {"chassis": {}, "port": {}}}}}`, map[string]contract.LLDPNeighbor{},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := parseLLDP([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestBuildNICs covers the choice of interfaces and the fallbacks between
// sources.
func TestBuildNICs(t *testing.T) {
	links, err := parseIPLink([]byte(`[
{"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"operstate":"UNKNOWN","link_type":"loopback","address":"00:00:00:00:00:00"},
{"ifname":"eth0","flags":["BROADCAST","MULTICAST","SLAVE","UP","LOWER_UP"],"mtu":1500,"operstate":"UP","link_type":"ether","address":"02:00:00:00:00:01","permaddr":"E4:43:4B:1A:2B:30"},
{"ifname":"eth1","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],"mtu":1500,"operstate":"DOWN","link_type":"ether","address":"e4:43:4b:1a:2b:31"},
{"ifname":"bond0","flags":["BROADCAST","MULTICAST","MASTER","UP","LOWER_UP"],"mtu":1500,"operstate":"UP","link_type":"ether","address":"02:00:00:00:00:01"},
{"ifname":"br0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP","link_type":"ether","address":"02:00:00:00:00:02"},
{"ifname":"veth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP","link_type":"ether","address":"02:00:00:00:00:03"},
{"ifname":"eth2","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP","link_type":"ether","address":"e4:43:4b:1a:2b:32"},
{"ifname":"ib0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":2044,"operstate":"UP","link_type":"infiniband","address":"00:00:10:29:fe:80:00:00:00:00:00:00:24:8a:07:03:00:a1:b2:c3"},
{"ifname":"wlan0","flags":["BROADCAST","MULTICAST","UP"],"mtu":1500,"operstate":"DOWN","link_type":"ether","address":"e4:43:4b:1a:2b:99"}
]`))
	if err != nil {
		t.Fatal(err)
	}
	sysNet, err := parseSysNet([]byte(`@@@ eth0
type=1
device=/sys/devices/pci0000:17/0000:17:02.0/0000:19:00.0
driver=bnxt_en
@@@ eth1
type=1
speed=10000
device=/sys/devices/pci0000:17/0000:17:02.0/0000:19:00.1
driver=bnxt_en
@@@ bond0
type=1
kind=bond
@@@ br0
type=1
kind=bridge
@@@ veth0
type=1
@@@ eth2
type=1
mtu=9000
speed=25000
carrier=1
device=/sys/devices/pci0000:ae/0000:ae:00.0/0000:af:00.0
driver=mlx5_core
@@@ ib0
type=32
device=/sys/devices/pci0000:ae/0000:ae:02.0/0000:b0:00.0
@@@ wlan0
type=1
device=/sys/devices/pci0000:00/0000:00:14.3
kind=wireless
`))
	if err != nil {
		t.Fatal(err)
	}
	eth := map[string]ethtoolInfo{
		"eth0": {speed: 10000, driver: "bnxt_en", firmware: "218.0", busInfo: "0000:19:00.0"},
		"eth1": {speed: 0, driver: "bnxt_en", busInfo: "0000:19:00.1"},
	}
	got := buildNICs(links, sysNet, eth, nil, nil)
	want := []contract.NIC{
		{Name: "eth0", MAC: "e4:43:4b:1a:2b:30", Driver: "bnxt_en", SpeedMbps: 10000, Link: true, MTU: 1500,
			PCIAddr: "0000:19:00.0", Firmware: "218.0"},
		{Name: "eth1", MAC: "e4:43:4b:1a:2b:31", Driver: "bnxt_en", MTU: 1500, PCIAddr: "0000:19:00.1"},
		{Name: "eth2", MAC: "e4:43:4b:1a:2b:32", Driver: "mlx5_core", SpeedMbps: 25000, Link: true, MTU: 1500,
			PCIAddr: "0000:af:00.0"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with sys-net:\n got  %+v\n want %+v", got, want)
	}

	// Without sys-net every Ethernet link but lo is kept.
	var names []string
	for _, n := range buildNICs(links, nil, nil, nil, nil) {
		names = append(names, n.Name)
	}
	if want := []string{"bond0", "br0", "eth0", "eth1", "eth2", "veth0", "wlan0"}; !slices.Equal(names, want) {
		t.Errorf("without sys-net: got %q, want %q", names, want)
	}

	// Without ip link, sys-net gives the interfaces.
	fromSys := buildNICs(nil, sysNet, nil, nil, nil)
	if len(fromSys) != 3 || fromSys[2].Name != "eth2" || fromSys[2].MTU != 9000 || !fromSys[2].Link ||
		fromSys[2].SpeedMbps != 25000 || fromSys[2].PCIAddr != "0000:af:00.0" {
		t.Errorf("without ip link: got %+v", fromSys)
	}
}

func TestParseEthtoolFailures(t *testing.T) {
	out := `@@@ ethtool eth0
Settings for eth0:
	Speed: 1000Mb/s
	Link detected: yes
@@@ ethtool-i eth0
Cannot get driver information: Operation not supported
@@@ exit 75
@@@ ethtool eth1
Settings for eth1:
	Speed: Unknown!
	Link detected: no
@@@ ethtool-i eth1
driver: igb
firmware-version: N/A
bus-info: 0000:19:00.1
`
	info, failed, err := parseEthtool([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ethtool-i eth0: exit status 75: Cannot get driver information: Operation not supported"}; !slices.Equal(failed, want) {
		t.Errorf("failed: got %q, want %q", failed, want)
	}
	if e := info["eth0"]; e.speed != 1000 || e.link == nil || !*e.link || e.driver != "" {
		t.Errorf("eth0: got %+v", e)
	}
	if e := info["eth1"]; e.speed != 0 || e.link == nil || *e.link || e.driver != "igb" || e.firmware != "" || e.busInfo != "0000:19:00.1" {
		t.Errorf("eth1: got %+v", e)
	}
	inv := Parse(map[string]Output{CmdEthtool: {Stdout: []byte(out)}})
	if !slices.Contains(inv.Warnings, "ethtool: ethtool-i eth0: exit status 75: Cannot get driver information: Operation not supported") {
		t.Errorf("warnings: got %q, want the failed ethtool call", inv.Warnings)
	}
}

// TestParseMissingAndFailed checks the warnings for commands that are
// missing, failed or printed nothing usable.
func TestParseMissingAndFailed(t *testing.T) {
	inv := Parse(nil)
	var required []string
	for _, c := range Commands() {
		if !c.Optional {
			required = append(required, c.Name+": no output")
		}
	}
	if !slices.Equal(inv.Warnings, required) {
		t.Errorf("no outputs: got warnings %q, want %q", inv.Warnings, required)
	}
	if inv.Disks != nil || inv.NICs != nil || inv.PCI != nil || inv.CPU.Threads != 0 {
		t.Errorf("no outputs: got %+v, want an empty inventory", inv)
	}

	inv = Parse(map[string]Output{
		CmdDmidecode: {Err: "exit status 127: sh: 1: dmidecode: not found"},
		CmdLsblk:     {Stdout: []byte("{not json"), Err: ""},
		CmdEFI:       {Stdout: []byte("maybe\n")},
		CmdMeminfo:   {Stdout: []byte("MemTotal: 1000 kB\n"), Err: "exit status 1"},
		CmdLLDP:      {Stdout: nil},
	})
	for _, w := range []string{
		"dmidecode: exit status 127: sh: 1: dmidecode: not found",
		`efi: unexpected output "maybe"`,
		"meminfo: exit status 1",
	} {
		if !slices.Contains(inv.Warnings, w) {
			t.Errorf("warnings: got %q, want %q among them", inv.Warnings, w)
		}
	}
	if !slices.ContainsFunc(inv.Warnings, func(w string) bool { return strings.HasPrefix(w, "lsblk: decode JSON: ") }) {
		t.Errorf("warnings: got %q, want an lsblk decode warning", inv.Warnings)
	}
	if slices.ContainsFunc(inv.Warnings, func(w string) bool { return strings.HasPrefix(w, "lldp") }) {
		t.Errorf("warnings: got %q, want none for the optional, empty lldp", inv.Warnings)
	}
	if inv.Memory.UsableBytes != 1000<<10 {
		t.Errorf("memory of a failed command's output: got %d, want %d", inv.Memory.UsableBytes, 1000<<10)
	}
}

// TestCPUFallbacks covers the counting rules when a source is missing.
func TestCPUFallbacks(t *testing.T) {
	cpuinfo := func(n int, phys, cores bool) []byte {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "processor\t: %d\nmodel name\t: Test   CPU\n", i)
			if phys {
				fmt.Fprintf(&b, "physical id\t: %d\n", i%2)
			}
			if cores {
				fmt.Fprintf(&b, "core id\t\t: %d\n", i/2%4)
			}
			b.WriteString("cpu cores\t: 4\n\n")
		}
		return []byte(b.String())
	}
	dmi := dmiInfo{processors: []dmiProcessor{
		{populated: true, cores: 6, version: "DMI CPU"}, {populated: false, cores: 6}, {populated: true, cores: 6},
	}}
	for name, tc := range map[string]struct {
		dmi                     dmiInfo
		cpuinfo                 []byte
		sockets, cores, threads int
		model                   string
	}{
		"both":                   {dmi, cpuinfo(16, true, true), 2, 8, 16, "Test CPU"},
		"no dmidecode":           {dmiInfo{}, cpuinfo(16, true, true), 2, 8, 16, "Test CPU"},
		"no core ids":            {dmi, cpuinfo(16, true, false), 2, 12, 16, "Test CPU"},
		"no core ids, no dmi":    {dmiInfo{}, cpuinfo(16, true, false), 2, 8, 16, "Test CPU"},
		"no topology (arm-like)": {dmiInfo{}, cpuinfo(4, false, false), 1, 4, 4, "Test CPU"},
		"dmidecode only":         {dmi, nil, 2, 12, 0, "DMI CPU"},
	} {
		t.Run(name, func(t *testing.T) {
			var ci cpuInfo
			if tc.cpuinfo != nil {
				var err error
				if ci, err = parseCPUInfo(tc.cpuinfo); err != nil {
					t.Fatal(err)
				}
			}
			got := buildCPU(tc.dmi, ci, "")
			if got.Sockets != tc.sockets || got.Cores != tc.cores || got.Threads != tc.threads || got.Model != tc.model {
				t.Errorf("got sockets %d cores %d threads %d model %q, want %d %d %d %q",
					got.Sockets, got.Cores, got.Threads, got.Model, tc.sockets, tc.cores, tc.threads, tc.model)
			}
		})
	}
}

func TestBuildMemory(t *testing.T) {
	mem := memInfo{totalBytes: 1000 << 10}
	if got := buildMemory(dmiInfo{}, mem); got.TotalBytes != 1000<<10 || got.UsableBytes != 1000<<10 {
		t.Errorf("no DIMMs: got %+v, want total = usable", got)
	}
	dmi := dmiInfo{dimms: []contract.DIMM{{SizeBytes: 16 << 30}, {SizeBytes: 32 << 30}}}
	if got := buildMemory(dmi, mem); got.TotalBytes != 48<<30 || got.UsableBytes != 1000<<10 {
		t.Errorf("DIMMs: got %+v, want total 48 GiB", got)
	}
}

// TestCaps feeds more items than the limits allow.
func TestCaps(t *testing.T) {
	var pci, sysBlock, dmi strings.Builder
	for i := range maxPCI + 10 {
		fmt.Fprintf(&pci, "Slot:\t%04x:%02x:%02x.0\nClass:\tEthernet controller [0200]\n\n", i/4096, i/32%256, i%32)
	}
	for i := range maxDisks + 10 {
		fmt.Fprintf(&sysBlock, "@@@ sd%d\nsize=2048\n", i)
	}
	dmi.WriteString("# dmidecode 3.4\n")
	for i := range maxDIMMs + 10 {
		fmt.Fprintf(&dmi, "\nHandle 0x%04X, DMI type 17, 84 bytes\nMemory Device\n\tSize: 1 GB\n\tLocator: D%d\n", i, i)
	}
	inv := Parse(map[string]Output{
		CmdLspci:     {Stdout: []byte(pci.String())},
		CmdSysBlock:  {Stdout: []byte(sysBlock.String())},
		CmdDmidecode: {Stdout: []byte(dmi.String())},
	})
	if len(inv.PCI) != maxPCI || len(inv.Disks) != maxDisks || len(inv.Memory.DIMMs) != maxDIMMs {
		t.Errorf("got %d PCI, %d disks, %d DIMMs, want %d, %d, %d", len(inv.PCI), len(inv.Disks),
			len(inv.Memory.DIMMs), maxPCI, maxDisks, maxDIMMs)
	}
	for _, prefix := range []string{"lspci: more than", "sys-block: more than", "dmidecode: more than"} {
		if !slices.ContainsFunc(inv.Warnings, func(w string) bool { return strings.HasPrefix(w, prefix) }) {
			t.Errorf("warnings: got %q, want one starting %q", inv.Warnings, prefix)
		}
	}

	big := make([]byte, maxOutput+100)
	inv = Parse(map[string]Output{CmdCPUInfo: {Stdout: big}})
	if !slices.Contains(inv.Warnings, fmt.Sprintf("cpuinfo: output truncated to %d bytes", maxOutput)) {
		t.Errorf("warnings: got %q, want a truncation warning", inv.Warnings)
	}
}

// garbage are inputs no parser should choke on.
var garbage = [][]byte{
	nil,
	{},
	[]byte("\x00\x01\x02\xff\xfe"),
	[]byte("[]"),
	[]byte("{}"),
	[]byte("null"),
	[]byte(`{"blockdevices": null}`),
	[]byte(`{"blockdevices": [null, 1, "x", {"name": 5, "size": -1, "rota": "maybe"}]}`),
	[]byte(`[{"ifname": "` + strings.Repeat("a", 10000) + `"}]`),
	[]byte(`[{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "999.1.1.1", "prefixlen": 99}]}]`),
	[]byte(`[{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.0.1", "prefixlen": -3}]}]`),
	[]byte(strings.Repeat("[", 100000)),
	[]byte(strings.Repeat("{\"lldp\":", 5000)),
	[]byte("Handle 0x0000, DMI type 17, 84 bytes\n\tSize: 99999999999999999999 GB\n"),
	[]byte("Handle 0x0000, DMI type 4\nProcessor\n\tCore Count: -5\n\tThread Count: 1e9\n\tStatus: Populated\n"),
	[]byte("Handle\nHandle 0x\nDMI type \n\t:\n\t\t:\n:::\n"),
	[]byte("Slot:\t0000:00:00.0\nClass:\t[\nVendor:\t]\nDevice:\t [zzzz]\n\nSlot:\tnot-an-address\n"),
	[]byte("@@@ \n@@@\n@@@ eth0\n=\n==\nkey\n@@@ exit\n@@@ exit \n@@@ ethtool\n"),
	[]byte("processor\t: 0\nphysical id\t: \ncore id\t: \ncpu MHz\t: NaN\ncpu MHz\t: +Inf\n"),
	[]byte("MemTotal: 99999999999999999999 kB\nMemTotal: -1 kB\n"),
	[]byte(strings.Repeat("x", 1<<20)),
	[]byte(strings.Repeat("\n", 1<<16)),
	[]byte(strings.Repeat("@@@ sda\nsize=1\n", 5000)),
}

// parsers are all the parsers, by command.
var parsers = map[string]func([]byte) error{
	CmdDmidecode: func(b []byte) error { _, err := parseDmidecode(b); return err },
	CmdCPUInfo:   func(b []byte) error { _, err := parseCPUInfo(b); return err },
	CmdMeminfo:   func(b []byte) error { _, err := parseMeminfo(b); return err },
	CmdArch:      func(b []byte) error { _, err := parseArch(b); return err },
	CmdEFI:       func(b []byte) error { _, err := parseBootMode(b); return err },
	CmdLspci:     func(b []byte) error { _, err := parseLspci(b); return err },
	CmdLsblk:     func(b []byte) error { _, err := parseLsblk(b); return err },
	CmdSysBlock:  func(b []byte) error { _, err := parseSysBlock(b); return err },
	CmdIPLink:    func(b []byte) error { _, err := parseIPLink(b); return err },
	CmdIPAddr:    func(b []byte) error { _, err := parseIPAddr(b); return err },
	CmdSysNet:    func(b []byte) error { _, err := parseSysNet(b); return err },
	CmdEthtool:   func(b []byte) error { _, _, err := parseEthtool(b); return err },
	CmdLLDP:      func(b []byte) error { _, err := parseLLDP(b); return err },
}

func TestParsersCoverCommands(t *testing.T) {
	for _, c := range Commands() {
		if parsers[c.Name] == nil {
			t.Errorf("command %s has no parser in the tests", c.Name)
		}
	}
	if len(parsers) != len(Commands()) {
		t.Errorf("got %d parsers, want %d", len(parsers), len(Commands()))
	}
}

// TestGarbageNeverPanics feeds garbage to every parser and to Parse.
func TestGarbageNeverPanics(t *testing.T) {
	for i, g := range garbage {
		for _, p := range parsers {
			_ = p(g)
		}
		outputs := map[string]Output{}
		for _, c := range Commands() {
			outputs[c.Name] = Output{Stdout: g}
		}
		inv := Parse(outputs)
		checkInvariants(t, fmt.Sprintf("garbage %d", i), inv)
	}
}

// checkInvariants checks what every inventory must satisfy, whatever the
// input.
func checkInvariants(t *testing.T, what string, inv contract.Inventory) {
	t.Helper()
	if len(inv.PCI) > maxPCI || len(inv.Disks) > maxDisks || len(inv.NICs) > maxNICs || len(inv.Memory.DIMMs) > maxDIMMs {
		t.Errorf("%s: limits exceeded: %d PCI, %d disks, %d NICs, %d DIMMs", what,
			len(inv.PCI), len(inv.Disks), len(inv.NICs), len(inv.Memory.DIMMs))
	}
	if len(inv.Warnings) > maxWarnings+1 {
		t.Errorf("%s: %d warnings, want at most %d", what, len(inv.Warnings), maxWarnings+1)
	}
	if inv.Memory.TotalBytes < 0 || inv.Memory.UsableBytes < 0 || inv.CPU.Threads < 0 || inv.CPU.Cores < 0 {
		t.Errorf("%s: negative counts: %+v %+v", what, inv.Memory, inv.CPU)
	}
	for _, d := range inv.Disks {
		if d.SizeBytes <= 0 || (d.Type != contract.DiskHDD && d.Type != contract.DiskSSD && d.Type != contract.DiskNVMe) {
			t.Errorf("%s: bad disk %+v", what, d)
		}
	}
	for _, n := range inv.NICs {
		if n.Name == "" || n.SpeedMbps < 0 || (!n.Link && n.SpeedMbps != 0) {
			t.Errorf("%s: bad NIC %+v", what, n)
		}
	}
	if b := inv.System.BootMode; b != "" && b != contract.FirmwareUEFI && b != contract.FirmwareBIOS {
		t.Errorf("%s: boot mode %q", what, b)
	}
}
