// Package inventory collects the hardware inventory of a machine booted
// into bareflow's ramdisk: Commands lists the shell commands to run there,
// and Parse turns what they printed into a contract.Inventory.
//
// The ramdisk is a Debian 12 userland (dash as /bin/sh, util-linux,
// pciutils with pci.ids, dmidecode, ethtool, iproute2, busybox) without
// udev, so nothing reads serial numbers or WWNs into a udev database:
// they come from sysfs. Each command runs in its own SSH session with
// `sh -c`; every loop in the scripts is bounded by a count.
//
//	command    runs                                         gives
//	dmidecode  dmidecode -t 0,1,2,3,4,17                     system, board, chassis, BIOS, sockets, DIMMs
//	cpuinfo    cat /proc/cpuinfo                             CPU model, vendor, MHz, threads, cores
//	meminfo    cat /proc/meminfo                             memory the kernel sees
//	arch       uname -m                                      CPU architecture
//	efi        test -d /sys/firmware/efi                     boot mode, uefi or bios
//	lspci      lspci -vmm -nn -k -D                          PCI functions, their IDs and drivers; GPUs
//	lsblk      lsblk -J -b -d -o NAME,SIZE,ROTA,TYPE,…       whole disks: size, type, model, transport
//	sys-block  a loop over /sys/block                        disk serials, WWNs, controllers and drivers
//	ip-link    ip -j link show                               interfaces, MACs, MTUs, carrier
//	ip-addr    ip -j addr show                               the interfaces' addresses
//	sys-net    a loop over /sys/class/net                    which interfaces are physical, their drivers
//	ethtool    ethtool and ethtool -i per physical NIC       speed, link, driver, firmware, PCI address
//	lldp       lldpctl -f json, when lldpctl is there        the switch port of each NIC (optional)
//
// Parse is meant for hostile input. It reads at most 8 MiB per command,
// keeps at most 256 bytes of any string, 4096 PCI functions, 1024 disks,
// 512 NICs and 1024 DIMMs, skips lines it does not understand and never
// panics. A command that is missing, failed or printed nothing usable
// becomes a line in Inventory.Warnings, and the other commands are still
// used.
//
// # Rules
//
// SMBIOS strings that firmware leaves at a placeholder ("Not Specified",
// "To Be Filled By O.E.M.", "Default string", "0123456789", "System Serial
// Number", "Unknown"…, or only zeros) become empty; UUIDs are lower-cased,
// and the all-zero and all-F ones dropped.
//
// Sockets are the populated SMBIOS processor entries, else the distinct
// physical ids of /proc/cpuinfo; cores are the distinct (physical id, core
// id) pairs, else the SMBIOS core counts; threads are the logical CPUs. The
// memory total is the sum of the DIMMs, else the kernel's MemTotal.
//
// NICs are the Ethernet interfaces with a device behind them in sysfs:
// bridges, bonds, VLANs, veth and wireless interfaces are left out. Without
// udev the kernel names them eth0, eth1… in probe order. The speed is only
// kept for a link that is up; ethtool's "Unknown!" is 0.
//
// Disks are lsblk's devices of type "disk" merged with the sys-block
// sections; sysfs gives the serial (the NVMe or virtio serial, else SCSI
// VPD page 80h) and the WWN (NAA as "0x…", EUI-64 and NGUID as "eui.…";
// t10 ids are not WWNs). The transport is lsblk's, else derived from the
// sysfs path of the device; the controller is the last PCI function on that
// path, with its driver. Zero-size devices (empty card readers, virtual
// media without a medium) are skipped. Without udev, the model of a SATA
// disk is the 16 characters of its SCSI INQUIRY product.
//
// A display controller (PCI class 0300, 0302 or 0380) is a GPU unless its
// vendor makes BMC or emulated video: ASPEED (1a03), Matrox (102b, the G200
// of iDRAC, iLO and XCC), Huawei (19e5, the iBMC), QEMU's standard VGA
// (1234), Cirrus (1013), virtio-gpu (1af4), QXL (1b36), VMware (15ad),
// VirtualBox (80ee) and Hyper-V (1414).
//
// RAIDFromPCI lists the RAID controllers seen on the PCI bus (class 0104,
// or a RAID or SAS HBA driver such as megaraid_sas, hpsa, smartpqi or
// mpt3sas); another package fills in what the vendor tools report.
//
// LLDP needs lldpd, which the standard ramdisk does not carry (see
// ramdisk/tools.txt): the lldp command prints nothing then, and the NICs
// have no neighbours. On a ramdisk that carries lldpd and starts it at
// boot, the NICs get the neighbours lldpd has heard by the time the command
// runs (switches announce themselves every 30 seconds or so).
//
// testdata holds, per machine, one NAME.out file per command and the
// inventory Parse makes of them (inventory.golden.json); `go test -update`
// rewrites the golden files.
package inventory
