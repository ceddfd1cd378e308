// Package osconfig renders the files that configure an installed OS: the
// install step mounts the written root filesystem and writes what Render
// returns, then applies what Edits returns. The package does no I/O.
//
// # Formats
//
//	family   flavor          network files
//	debian   "" or debian    /etc/network/interfaces (ifupdown, whole file)
//	                         + systemd .link files naming MAC-matched NICs
//	debian   ubuntu          /etc/netplan/50-bareflow.yaml (netplan v2)
//	rhel     9 and later     /etc/NetworkManager/system-connections/<name>.nmconnection (0600)
//	rhel     7, 8            /etc/sysconfig/network-scripts/ifcfg-<name>, route-<name>, route6-<name>
//	suse     any             /etc/sysconfig/network/ifcfg-<name>, ifroute-<name> (wicked)
//	                         + systemd .link files; DNS via Edits on network/config
//	linux    netplan         as ubuntu
//	linux    "" or none      no OS files: cloud-init renders the seed's network-config
//
// When OS network files are written, cloud-init's own network rendering is
// disabled by /etc/cloud/cloud.cfg.d/99-bareflow-network.cfg so the two
// never configure a NIC twice; the NoCloud seed still carries the same
// configuration as network-config version 2 (the netplan document).
//
// # Choices
//
//   - /etc/hostname holds the short name; /etc/hosts is written whole: the
//     usual loopback lines plus "127.0.1.1 fqdn short".
//   - An Interface with a MAC is matched by it and named Name: netplan
//     match/set-name, keyfile mac-address (no interface-name), ifcfg HWADDR,
//     and for ifupdown and wicked a .link file matching PermanentMACAddress
//     (systemd 245 or later), which bonds and VLANs never match.
//   - Bond members given as MACs that no Interface lists become ports named
//     <bond>p<index>. Options are bonding sysfs names, checked against a
//     known list and the modes they apply to.
//   - DNS servers and search domains are global and attached to every link
//     with addressing. Routes attach to the link named by Route.Interface or
//     to the link whose static prefix contains the gateway.
//   - /etc/shadow and /etc/fstab are edited, not written: SetShadowPassword
//     replaces only the hash field; MergeFstab replaces the lines it wrote
//     before (marked "# bareflow") and lines for the same UUID or mount
//     point, and keeps the rest.
//   - Output is sorted and byte-for-byte stable for equal input. Extra Files
//     may not land under /proc, /sys, /dev or /run, nor on a path bareflow
//     renders itself. The caller should still write through os.Root (or
//     equivalent) so a symlink in the image cannot redirect a write.
package osconfig
