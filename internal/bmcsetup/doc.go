// Package bmcsetup configures a machine's BMC in-band, through ipmitool,
// while the machine runs bareflow's ramdisk: the LAN channel's address, and
// an administrator user for bareflow with its password.
//
// Configure drives ipmitool through a CommandRunner that the caller
// provides (over SSH into the ramdisk in production, ipmitool over RMCP+ to
// ipmi_sim in the tests). It acts, then verifies: every change is read back
// with "lan print" and "user list" before Configure reports success, and a
// BMC's "ok" (or ipmitool's exit status) is never taken as proof.
//
// Configure is idempotent. It writes a LAN setting only when "lan print"
// shows something else, finds bareflow's user by name before it takes an
// empty slot (so a run after a crash reuses the slot instead of creating a
// second user), and writes a user's privilege and channel access only when
// "user list" shows them wrong. The password cannot be read back, so it is
// written on every run.
//
// The order of a run:
//
//	mc info ─▶ channel info (profile's channels, then 1..11)
//	   ─▶ lan set access on (when not always available)
//	   ─▶ user list ─▶ slot by name, else first empty slot in range
//	   ─▶ user set name / password, user priv, channel setaccess,
//	      user enable, sol payload enable
//	   ─▶ lan print ─▶ lan set ipsrc / ipaddr / netmask / defgw (what differs)
//	   ─▶ mc reset cold and wait (profiles that want it, after LAN changes)
//	   ─▶ lan print until it shows the settings (DHCP: an address)
//	   ─▶ user list and user test to verify the user
//
// The password reaches ipmitool only as an argument: the display strings
// given to the runner, the errors, the Result, and a Request printed with
// fmt or slog show REDACTED instead.
//
// Discover does the reading part alone (identity, LAN channel, its settings
// and MAC), for a caller that hands out the BMC's address by MAC before it
// calls Configure. Permanent tells the errors that retrying cannot cure.
//
// A Profile per BMC vendor (ProfileFor, from the SMBIOS system vendor) says
// which LAN channels to try first, which user slots bareflow may take and
// never touch, what passwords the BMC takes (GeneratePassword makes them) and
// whether it needs a cold reset after a LAN change.
//
// The parsers (ParseChannelInfo, ParseLANPrint, ParseUserList, ParseMCInfo,
// ParseEnableStatus, ParseSOLPayloadStatus) read ipmitool 1.8.19's output;
// testdata holds outputs of several BMCs and of ipmi_sim, with golden
// files.
package bmcsetup
