package activities

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

// OSDialer opens shells on the live OS of a server bareflow adopts. Its
// errors wrap ErrHostKeyMismatch, ErrShellAuth and ErrShellUnreachable.
type OSDialer interface {
	// HostKey returns the host key the SSH server at addr shows, in
	// authorized_keys form, without logging in.
	HostKey(ctx context.Context, addr string) (string, error)
	// Dial logs in as user with bareflow's key, accepting only hostKey.
	Dial(ctx context.Context, addr, user, hostKey string) (RamdiskShell, error)
	// InstallKey logs in as user with password, accepting only hostKey,
	// and runs AuthorizeKeyScript for bareflow's key there.
	InstallKey(ctx context.Context, addr, user, hostKey, password string) error
}

// BMCProbe is what a BMC says of itself when an adoption checks it.
type BMCProbe struct {
	Power contract.PowerState
	// GUID is the Get System GUID answer as sent, nil when the BMC does
	// not have the command.
	GUID []byte
}

// PendingBMCProber logs in to a BMC at addr with a machine's pending
// credentials and reads its power state and system GUID. It wraps
// ErrBMCAuth, ErrBMCUnreachable and ErrNotFound.
type PendingBMCProber interface {
	ProbePending(ctx context.Context, machineID string, addr netip.AddrPort, cipherSuite int) (BMCProbe, error)
}

// AdoptionSecrets keeps the SSH password of an adoption until bareflow's
// key is installed. SSHPassword wraps ErrNotFound when none waits.
type AdoptionSecrets interface {
	SSHPassword(ctx context.Context, machineID string) (string, error)
	DropSSHPassword(ctx context.Context, machineID string) error
}

// AdoptionRecord is what a completed adoption records.
type AdoptionRecord struct {
	Inventory      contract.Inventory
	OS             contract.AdoptedOS
	SSHAddr        string
	SSHUser        string
	SSHHostKey     string
	BMCAddr        netip.AddrPort
	BMCCipherSuite int
	PowerState     contract.PowerState
}

// AdoptionRecorder completes an adoption or removes its machine.
// CompleteAdoption wraps ErrDuplicate when the hardware is another
// machine's.
type AdoptionRecorder interface {
	CompleteAdoption(ctx context.Context, machineID string, rec AdoptionRecord) error
	DiscardAdoption(ctx context.Context, machineID string) error
}

// Adoption holds the activities of the Adopt workflow: the BMC check, the
// SSH login to the live OS (installing bareflow's key with a password when
// asked), the inventory, and the record.
type Adoption struct {
	BMC       PendingBMCProber
	OS        OSDialer
	Secrets   AdoptionSecrets
	Recorder  AdoptionRecorder
	Collector InventoryCollector
}

// AdoptBMCInput asks for the check of an adopted machine's BMC.
type AdoptBMCInput struct {
	MachineID   string
	Addr        string
	CipherSuite int
}

// AdoptBMCResult is what the BMC answered.
type AdoptBMCResult struct {
	PowerState contract.PowerState
	// GUID is the BMC's system GUID as sent; nil when it has none.
	GUID []byte
}

// VerifyAdoptBMC logs in to the BMC over the network (RMCP+) with the
// credentials the operator gave, which wait in the store, and reads the
// power state and the system GUID. Credentials the BMC refuses fail for
// good: they were typed by an operator, not just set by bareflow. A BMC
// that does not answer is retried by the workflow's policy.
//
// Idempotent: it only reads. No heartbeat: a few short exchanges.
func (a *Adoption) VerifyAdoptBMC(ctx context.Context, in AdoptBMCInput) (AdoptBMCResult, error) {
	ap, err := netip.ParseAddrPort(in.Addr)
	if err != nil {
		return AdoptBMCResult{}, temporal.NewNonRetryableApplicationError("BMC address "+in.Addr+" is not address:port", contract.ErrInvalidInput, nil)
	}
	p, err := a.BMC.ProbePending(ctx, in.MachineID, ap, in.CipherSuite)
	switch {
	case err == nil:
		return AdoptBMCResult{PowerState: p.Power, GUID: p.GUID}, nil
	case errors.Is(err, ErrBMCAuth):
		return AdoptBMCResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the BMC at %s refused the user and password given: %v", in.Addr, err), contract.ErrBMCAuthFailed, nil)
	case errors.Is(err, ErrNotFound):
		return AdoptBMCResult{}, temporal.NewNonRetryableApplicationError(
			"no BMC credentials wait for this adoption: "+err.Error(), contract.ErrBMCNotConfigured, nil)
	}
	return AdoptBMCResult{}, bmcError("log in to the BMC at "+in.Addr, err)
}

// OpenOSInput asks for a login to an adopted server's OS.
type OpenOSInput struct {
	MachineID string
	SSH       contract.AdoptSSH
}

// OpenOSResult is how the OS is reached from now on.
type OpenOSResult struct {
	// HostKey is the pinned host key: the one given, or the one first seen.
	HostKey           string
	TrustedOnFirstUse bool
	KeyInstalled      bool
}

// sshUser is the login of an adoption: root unless another is given.
func sshUser(s contract.AdoptSSH) string {
	if s.User == "" {
		return "root"
	}
	return s.User
}

// OpenAdoptedOS makes sure bareflow's key logs in to the live OS: it pins
// the host key given, or takes the one the server shows (trust on first
// use), logs in with bareflow's key, and when the key is refused and an SSH
// password waits in the store, logs in with that password once, adds the
// key to the user's authorized_keys (the only thing written on the
// server), checks the key now works and forgets the password.
//
// Idempotent: a key that works already is not installed again, and the
// install script adds a key only when it is absent. No heartbeat: a few
// short logins.
func (a *Adoption) OpenAdoptedOS(ctx context.Context, in OpenOSInput) (OpenOSResult, error) {
	user, addr := sshUser(in.SSH), in.SSH.Addr
	res := OpenOSResult{HostKey: in.SSH.HostKey, TrustedOnFirstUse: in.SSH.HostKey == ""}
	if res.TrustedOnFirstUse {
		k, err := a.OS.HostKey(ctx, addr)
		if err != nil {
			return OpenOSResult{}, osError(addr, user, err)
		}
		res.HostKey = k
		activity.GetLogger(ctx).Info("trusting the SSH host key seen first", "machine_id", in.MachineID, "addr", addr, "host_key", k)
	}
	sh, err := a.OS.Dial(ctx, addr, user, res.HostKey)
	if err == nil {
		sh.Close()
		if in.SSH.Password {
			if err := a.Secrets.DropSSHPassword(ctx, in.MachineID); err != nil {
				activity.GetLogger(ctx).Warn("cannot drop the unused SSH password", "machine_id", in.MachineID, "error", err)
			}
		}
		return res, nil
	}
	if !errors.Is(err, ErrShellAuth) {
		return OpenOSResult{}, osError(addr, user, err)
	}
	if !in.SSH.Password {
		return OpenOSResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"the OS at %s refused bareflow's SSH key for %s: run the prepare script there as %s (bareflow machine adopt-script), or give an SSH password",
			addr, user, user), contract.ErrOSAuthFailed, nil)
	}
	pw, err := a.Secrets.SSHPassword(ctx, in.MachineID)
	if errors.Is(err, ErrNotFound) {
		return OpenOSResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"the OS at %s refuses bareflow's SSH key for %s and the SSH password is gone (it is used once)", addr, user),
			contract.ErrOSAuthFailed, nil)
	}
	if err != nil {
		return OpenOSResult{}, fmt.Errorf("read the SSH password: %w", err)
	}
	if err := a.OS.InstallKey(ctx, addr, user, res.HostKey, pw); err != nil {
		if errors.Is(err, ErrShellAuth) {
			return OpenOSResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"the OS at %s refused the SSH password for %s", addr, user), contract.ErrOSAuthFailed, nil)
		}
		return OpenOSResult{}, osError(addr, user, err)
	}
	sh, err = a.OS.Dial(ctx, addr, user, res.HostKey)
	if errors.Is(err, ErrShellAuth) {
		return OpenOSResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"bareflow's key was added to %s's authorized_keys on %s but is still refused (check sshd's AuthorizedKeysFile, "+
				"PubkeyAuthentication, AllowUsers and the modes of the home folder)", user, addr), contract.ErrOSAuthFailed, nil)
	}
	if err != nil {
		return OpenOSResult{}, osError(addr, user, err)
	}
	sh.Close()
	res.KeyInstalled = true
	if err := a.Secrets.DropSSHPassword(ctx, in.MachineID); err != nil {
		return OpenOSResult{}, fmt.Errorf("forget the SSH password: %w", err)
	}
	return res, nil
}

// osError classifies a failure to reach the live OS: another host key is
// permanent, anything else is retried.
func osError(addr, user string, err error) error {
	msg := fmt.Sprintf("SSH to %s@%s: %v", user, addr, err)
	switch {
	case errors.Is(err, ErrHostKeyMismatch):
		return temporal.NewNonRetryableApplicationError(msg+
			" (the server is not the one whose host key was given or first seen)", contract.ErrOSHostKeyMismatch, nil)
	case errors.Is(err, ErrShellAuth):
		return temporal.NewNonRetryableApplicationError(msg, contract.ErrOSAuthFailed, nil)
	case errors.Is(err, ErrShellUnreachable):
		return temporal.NewApplicationError(msg, contract.ErrOSUnreachable)
	}
	return fmt.Errorf("%s", msg)
}

// CollectOSInput asks for the inventory of an adopted server.
type CollectOSInput struct {
	MachineID string
	Addr      string
	User      string
	HostKey   string
}

// Privileges the inventory of a live OS is read with.
const (
	PrivilegeRoot = "root"
	PrivilegeSudo = "sudo"
	PrivilegeUser = "user"
)

// CollectOSResult is what the live OS reported.
type CollectOSResult struct {
	Inventory contract.Inventory
	OS        contract.AdoptedOS
	Privilege string
}

// PrivilegeScript prints root, sudo (a user that may run `sudo -n`) or
// user.
const PrivilegeScript = `if [ "$(id -u)" = 0 ]; then echo root; ` +
	`elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then echo sudo; else echo user; fi`

// OSFactsScript prints os-release, the kernel release and the host name,
// each after a "@@@ NAME" line. It only reads.
const OSFactsScript = `export PATH="${PATH:+$PATH:}/usr/sbin:/usr/bin:/sbin:/bin" LC_ALL=C
echo "@@@ os-release"; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
echo "@@@ kernel"; uname -r
echo "@@@ hostname"; cat /proc/sys/kernel/hostname 2>/dev/null || hostname
exit 0
`

// CollectAdoptedOS reads the hardware of the live OS with the inventory
// commands of a registration (all of them only read), as root, through
// `sudo -n` when the user may, else as the user, whose missing rights
// become warnings; then os-release, the kernel and the host name.
//
// Idempotent: it only reads. Heartbeats before every command and every few
// seconds while one runs.
func (a *Adoption) CollectAdoptedOS(ctx context.Context, in CollectOSInput) (CollectOSResult, error) {
	defer keepBeating(ctx, "collect")()
	user := in.User
	if user == "" {
		user = "root"
	}
	sh, err := a.OS.Dial(ctx, in.Addr, user, in.HostKey)
	if err != nil {
		return CollectOSResult{}, osError(in.Addr, user, err)
	}
	defer sh.Close()
	res := CollectOSResult{Privilege: PrivilegeUser}
	if out, err := sh.Run(ctx, ShellCommand{Script: PrivilegeScript, Timeout: 30 * time.Second, MaxOutput: 1024}); err == nil {
		res.Privilege = strings.TrimSpace(string(out.Stdout))
	}
	shell := sh
	var warnings []string
	switch res.Privilege {
	case PrivilegeRoot:
	case PrivilegeSudo:
		shell = sudoShell{sh: sh}
	default:
		res.Privilege = PrivilegeUser
		warnings = append(warnings, fmt.Sprintf("%s is not root and may not run sudo without a password: "+
			"what needs root (dmidecode, RAID tools, some disk and NIC details) was read without it", user))
	}
	inv, err := a.Collector.Collect(ctx, shell, func(step string) { activity.RecordHeartbeat(ctx, step) })
	if ctx.Err() != nil {
		return CollectOSResult{}, ctx.Err()
	}
	if err != nil {
		return CollectOSResult{}, fmt.Errorf("collect the inventory of machine %s: %w", in.MachineID, err)
	}
	out, err := sh.Run(ctx, ShellCommand{Script: OSFactsScript, Timeout: 30 * time.Second, MaxOutput: 64 << 10})
	if err != nil {
		warnings = append(warnings, "os-release, kernel and host name: "+err.Error())
	}
	res.OS = ParseOSFacts(out.Stdout)
	inv.Warnings = append(inv.Warnings, warnings...)
	inv.CollectedAt = time.Now().UTC()
	res.Inventory = inv
	return res, nil
}

// maxFact bounds each OS fact kept.
const maxFact = 256

// ParseOSFacts reads what OSFactsScript printed.
func ParseOSFacts(out []byte) contract.AdoptedOS {
	var o contract.AdoptedOS
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "@@@ "); ok {
			section = name
			continue
		}
		switch section {
		case "os-release":
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				o.Name = bound(unquoteOSRelease(v))
			}
		case "kernel":
			if o.Kernel == "" {
				o.Kernel = bound(line)
			}
		case "hostname":
			if o.Hostname == "" {
				o.Hostname = bound(line)
			}
		}
	}
	return o
}

func bound(s string) string {
	if len(s) > maxFact {
		return s[:maxFact]
	}
	return s
}

// unquoteOSRelease undoes os-release's shell-style quoting of a value.
func unquoteOSRelease(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		q := v[0]
		v = v[1 : len(v)-1]
		if q == '"' {
			r := strings.NewReplacer(`\"`, `"`, `\\`, `\`, "\\`", "`", `\$`, `$`)
			v = r.Replace(v)
		}
	}
	return v
}

// sudoShell runs every command through `sudo -n /bin/sh -c`.
type sudoShell struct{ sh RamdiskShell }

func (s sudoShell) Run(ctx context.Context, cmd ShellCommand) (ShellResult, error) {
	script := cmd.Script
	if len(cmd.Argv) > 0 {
		q := make([]string, len(cmd.Argv))
		for i, a := range cmd.Argv {
			q[i] = shellQuote(a)
		}
		script, cmd.Argv = strings.Join(q, " "), nil
	}
	if cmd.Display == "" {
		cmd.Display = "sudo: " + script
	}
	cmd.Script = "sudo -n /bin/sh -c " + shellQuote(script)
	return s.sh.Run(ctx, cmd)
}

func (s sudoShell) Close() error { return s.sh.Close() }

// shellQuote quotes s as one word of a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// AuthorizeKeyScript is a POSIX sh script that adds key (one
// authorized_keys line) to the authorized_keys of user, who must be the one
// running it: it refuses any other, makes ~/.ssh (0700) and
// ~/.ssh/authorized_keys (0600) when missing, sets those modes, and adds
// the key only when its type and body are not there yet. It changes
// nothing else.
func AuthorizeKeyScript(user, key string) string {
	key = strings.Join(strings.Fields(key), " ")
	return `#!/bin/sh
# bareflow: authorize bareflow's SSH key for ` + strings.ReplaceAll(user, "\n", " ") + `, so that bareflow can adopt this server.
# Run it as that user. It writes ~/.ssh/authorized_keys and nothing else.
set -eu
want=` + shellQuote(user) + `
key=` + shellQuote(key) + `
me=$(id -un)
if [ "$me" != "$want" ]; then
	echo "bareflow: run this as $want, not as $me" >&2
	exit 1
fi
home=${HOME:-}
if [ -z "$home" ] || [ ! -d "$home" ]; then
	echo "bareflow: $me has no home folder (HOME=$home)" >&2
	exit 1
fi
umask 077
mkdir -p "$home/.ssh"
chmod 700 "$home/.ssh"
f="$home/.ssh/authorized_keys"
[ -e "$f" ] || : >"$f"
chmod 600 "$f"
body=$(printf '%s\n' "$key" | cut -d ' ' -f 1,2)
if grep -qF -- "$body" "$f"; then
	echo "bareflow: the key is already authorized for $me"
	exit 0
fi
if [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" != '\n' ]; then
	printf '\n' >>"$f"
fi
printf '%s\n' "$key" >>"$f"
if command -v restorecon >/dev/null 2>&1; then restorecon -R "$home/.ssh" >/dev/null 2>&1 || true; fi
echo "bareflow: key authorized for $me"
`
}

// CompleteAdoptionInput records an adoption.
type CompleteAdoptionInput struct {
	MachineID      string
	Inventory      contract.Inventory
	OS             contract.AdoptedOS
	SSHAddr        string
	SSHUser        string
	SSHHostKey     string
	BMCAddr        string
	BMCCipherSuite int
	PowerState     contract.PowerState
}

// CompleteAdoption records the machine as running with its OS, inventory,
// pinned host key and verified BMC credentials, in one transaction.
// Hardware that another machine has already fails for good
// (DuplicateMachine), recording nothing.
//
// Idempotent: completing a completed adoption changes nothing. No
// heartbeat.
func (a *Adoption) CompleteAdoption(ctx context.Context, in CompleteAdoptionInput) error {
	ap, err := netip.ParseAddrPort(in.BMCAddr)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("BMC address "+in.BMCAddr+" is not address:port", contract.ErrInvalidInput, nil)
	}
	err = a.Recorder.CompleteAdoption(ctx, in.MachineID, AdoptionRecord{
		Inventory: in.Inventory, OS: in.OS, SSHAddr: in.SSHAddr, SSHUser: in.SSHUser, SSHHostKey: in.SSHHostKey,
		BMCAddr: ap, BMCCipherSuite: in.BMCCipherSuite, PowerState: in.PowerState,
	})
	if errors.Is(err, ErrDuplicate) {
		return temporal.NewNonRetryableApplicationError("this server is already known to bareflow, so it is not adopted again: "+err.Error(),
			contract.ErrDuplicateMachine, nil)
	}
	if err != nil {
		return recordError("record the adoption", err)
	}
	return nil
}

// DiscardAdoption removes the machine of an adoption that failed or was
// canceled, with the credentials that waited for it; its operation stays.
//
// Idempotent: a machine already gone, or whose adoption completed, is left
// as it is. No heartbeat.
func (a *Adoption) DiscardAdoption(ctx context.Context, in MachineInput) error {
	if err := a.Recorder.DiscardAdoption(ctx, in.MachineID); err != nil {
		return fmt.Errorf("discard the adoption of %s: %w", in.MachineID, err)
	}
	return nil
}
