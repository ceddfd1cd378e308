// Package boot is bareflow's boot service: DHCP (insomniacslk/dhcp server4),
// TFTP (pin/tftp) and HTTP boot, which bring a machine from power-on to
// bareflow's ramdisk, or to its local disk, and wake the machine's workflow.
//
// A machine's network boot, as the boot service sees it:
//
//	PXE ROM ──DHCPDISCOVER (relayed: giaddr set; or heard on an interface)──► network by giaddr or interface
//	        ◄─OFFER: address from the network's pool (PostgreSQL leases),
//	                 next-server + iPXE binary chosen by option 93:
//	                 BIOS 0 → undionly.kpxe, UEFI 7/9 → ipxe.efi, ARM64 11 → configured
//	        ──REQUEST──► lease bound ──► ACK ──► boot event queued (background)
//	        ──TFTP RRQ undionly.kpxe / ipxe.efi──► read-only root
//	iPXE    ──DHCP with user class "iPXE"──► ACK with the URL of its script, 175.176 no-pxedhcp=1
//	        ──GET /boot/v1/ipxe/{mac}──► boot intent pending?
//	                 yes: kernel + initrd + phone-home URL + single-use token (minted now, hashed at rest)
//	                 no:  exit / sanboot to the local disk
//	ramdisk ──POST /boot/v1/phone-home {machine_id, token, addr, macs, ssh_host_key}──►
//	                 token checked and spent ──► SignalRamdiskReady on the intent's workflow
//
// An unknown MAC that network-boots on a provisioning network becomes a
// discovered machine whose Register workflow is signal-with-started, when
// Config.AutoRegister is on; otherwise it is logged and ignored. BMC and OS
// networks answer plain DHCP requests from any MAC.
//
// The DHCP path never waits on Temporal: boot events go through a bounded
// queue, sent by background goroutines, dropped and counted when the queue
// is full. Networks are cached in memory and read again every few seconds;
// the lease and machine look-ups on the path are bounded by a short timeout.
//
// Lease states, per (network, MAC):
//
//	          DISCOVER               REQUEST
//	(none) ──────────────► offered ──────────► bound ──RELEASE──► released
//	                          ▲                  │                    │
//	                          └──── DISCOVER ────┴────────────────────┘ (the MAC keeps its address)
//	bound/offered ──DECLINE──► declined (no MAC; out of use for DeclineHold)
//
// Released and expired addresses go to other MACs only when the pool has no
// never-used address left. A reserved address (store.ReserveLease: a BMC's
// or an installed system's planned address) always goes to its MAC, may lie
// outside the dynamic range, and never goes to another MAC.
package boot
