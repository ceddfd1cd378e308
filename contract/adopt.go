package contract

import (
	"encoding/hex"
	"strings"
)

// WorkflowAdopt takes a server that already runs an OS into bareflow
// without reinstalling it.
const WorkflowAdopt = "bareflow.Adopt"

// OperationAdopt is the operation kind of an adoption.
const OperationAdopt OperationKind = "adopt"

// Error codes of adoptions.
const (
	// ErrAdoptIdentityMismatch: the BMC's system GUID is not the system
	// UUID the OS reads from SMBIOS: the BMC and the SSH address given
	// belong to two different servers. Nothing was recorded.
	ErrAdoptIdentityMismatch = "AdoptIdentityMismatch"
	// ErrOSHostKeyMismatch: the live OS's SSH host key is not the one
	// given, or changed since it was first seen.
	ErrOSHostKeyMismatch = "OSHostKeyMismatch"
	// ErrOSAuthFailed: the live OS refused bareflow's key for the user,
	// and no SSH password was given, or the password was refused.
	ErrOSAuthFailed = "OSAuthFailed"
	// ErrOSUnreachable: the live OS's SSH server did not answer.
	ErrOSUnreachable = "OSUnreachable"
)

// AdoptSSH says how bareflow reaches the live OS of a server it adopts.
type AdoptSSH struct {
	// Addr is host:port of the SSH server.
	Addr string
	// User is the login; empty means root. Without root, the inventory
	// commands run through `sudo -n` when the user may, and what cannot be
	// read without privileges becomes warnings.
	User string
	// HostKey, in authorized_keys form, pins the server's host key. Empty
	// means trust on first use: the key the server shows first is recorded
	// and pinned for the rest of the adoption and afterwards.
	HostKey string
	// Password is true when an SSH password waits in the store for this
	// machine. It is used once, to install bareflow's key, and deleted;
	// it never travels through the workflow's history.
	Password bool
}

// AdoptInput starts an Adopt workflow. The machine record exists already
// (the API creates it in state registering, with the BMC password waiting
// for its check); the workflow either completes it or removes it.
type AdoptInput struct {
	OperationID string
	MachineID   string
	// BMCAddr is the BMC's address and RMCP+ port.
	BMCAddr        string
	BMCCipherSuite int
	SSH            AdoptSSH
	RequestedBy    string
}

// AdoptedOS is what runs on an adopted server.
type AdoptedOS struct {
	// Name is os-release's PRETTY_NAME.
	Name     string `json:"name"`
	Kernel   string `json:"kernel"`
	Hostname string `json:"hostname,omitempty"`
}

// AdoptResult is what an Adopt workflow returns.
type AdoptResult struct {
	MachineID string
	// SSHHostKey is the live OS's host key, pinned from now on;
	// TrustedOnFirstUse says it was taken as first seen, not given.
	SSHHostKey        string
	TrustedOnFirstUse bool
	// KeyInstalled is true when bareflow's key was added to the user's
	// authorized_keys with the SSH password.
	KeyInstalled bool
	// Privilege is how the inventory was read: root, sudo or user.
	Privilege string
	OS        AdoptedOS
	Vendor    string
	Model     string
	Serial    string
	// SystemUUID is SMBIOS's; BMCGUID the BMC's system GUID as sent (hex);
	// IdentityChecked says the two were compared and matched.
	SystemUUID      string
	BMCGUID         string
	IdentityChecked bool
	PowerState      PowerState
	// Warnings lists what could not be read or checked.
	Warnings []string
}

// SystemGUIDForms returns the textual UUIDs the 16 bytes of an IPMI Get
// System GUID answer may stand for, lower case: the bytes in the order sent
// (RFC 4122), with the first three fields byte-swapped (SMBIOS 2.6 and
// later, and most BMCs), and wholly reversed (the IPMI specification's
// least-significant-byte-first layout). A GUID of all zeros or all ones, or
// of another length, has none.
func SystemGUIDForms(raw []byte) []string {
	if len(raw) != 16 {
		return nil
	}
	zero, ones := true, true
	for _, b := range raw {
		zero = zero && b == 0
		ones = ones && b == 0xff
	}
	if zero || ones {
		return nil
	}
	asSent := append([]byte(nil), raw...)
	smbios := append([]byte(nil), raw...)
	reverse(smbios[0:4])
	reverse(smbios[4:6])
	reverse(smbios[6:8])
	reversed := append([]byte(nil), raw...)
	reverse(reversed)
	return []string{uuidText(asSent), uuidText(smbios), uuidText(reversed)}
}

// SystemGUIDMatches reports whether the BMC's system GUID raw stands for the
// SMBIOS system UUID uuid in any of SystemGUIDForms' byte orders.
func SystemGUIDMatches(raw []byte, uuid string) bool {
	uuid = strings.ToLower(strings.TrimSpace(uuid))
	for _, f := range SystemGUIDForms(raw) {
		if f == uuid {
			return true
		}
	}
	return false
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

func uuidText(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
