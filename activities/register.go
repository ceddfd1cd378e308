package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

// Sentinel errors of ramdisk shells, wrapped by the adapter.
var (
	// ErrHostKeyMismatch means the ramdisk's SSH host key differs from the
	// one it phoned home with.
	ErrHostKeyMismatch = errors.New("ramdisk SSH host key mismatch")
	// ErrShellAuth means the ramdisk refused bareflow's SSH key.
	ErrShellAuth = errors.New("ramdisk refused bareflow's SSH key")
	// ErrShellUnreachable means the ramdisk's SSH server did not answer.
	ErrShellUnreachable = errors.New("ramdisk SSH server did not answer")
	// ErrDuplicate means the hardware is already recorded as another machine.
	ErrDuplicate = errors.New("hardware already recorded as another machine")
)

// ShellCommand is one command run by a ramdisk's shell: Script, or Argv,
// which the shell's adapter quotes word by word.
type ShellCommand struct {
	Script string
	Argv   []string
	// Display is what logs and errors show instead of Script; it must be
	// set when Script carries a secret.
	Display   string
	Timeout   time.Duration
	MaxOutput int
	// OnLine, when set, receives each line of output as it comes.
	OnLine func(line string)
	// Stdin, when set, is the command's standard input.
	Stdin io.Reader
}

// ShellResult is what a command printed and how it exited.
type ShellResult struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// RamdiskShell runs commands on one machine's ramdisk. A command that
// exits non-zero returns an error.
type RamdiskShell interface {
	Run(ctx context.Context, cmd ShellCommand) (ShellResult, error)
	Close() error
}

// RamdiskDialer opens shells on ramdisks, pinning the host key each
// ramdisk phoned home with, and checks that a ramdisk's SSH port answers.
type RamdiskDialer interface {
	Dial(ctx context.Context, addr, hostKey string) (RamdiskShell, error)
	Reachable(ctx context.Context, addr string) error
}

// MachineFacts is what registration needs to know of a machine.
type MachineFacts struct {
	State  contract.MachineState
	Vendor string
	// HasBMC is true when the machine has a BMC address and password.
	HasBMC  bool
	BMCAddr string
	BMCUser string
	// Firmware is how the machine booted its ramdisk last (contract's
	// FirmwareUEFI or FirmwareBIOS); empty when unknown.
	Firmware string
}

// PhoneHome is a recorded phone-home of a machine's ramdisk.
type PhoneHome struct {
	Ready      contract.RamdiskReady
	WorkflowID string
	At         time.Time
}

// BMCNetwork is a network BMCs get static addresses from.
type BMCNetwork struct {
	Name    string
	Prefix  netip.Prefix
	Gateway netip.Addr
	Port    int
}

// RegistrationKeeper is what the registration activities need of the store.
// It wraps ErrNotFound and ErrDuplicate.
type RegistrationKeeper interface {
	MachineFacts(ctx context.Context, machineID string) (MachineFacts, error)
	SetMachineState(ctx context.Context, machineID string, s contract.MachineState) error
	// SetRamdiskIntent makes the machine's next network boot load the
	// ramdisk for workflowID, and returns since when the intent stands
	// (database time; kept when the intent is renewed for the same
	// workflow).
	SetRamdiskIntent(ctx context.Context, machineID, workflowID string, ttl time.Duration) (time.Time, error)
	ClearBootIntent(ctx context.Context, machineID string) error
	PhoneHome(ctx context.Context, machineID string) (PhoneHome, error)
	ForgetPhoneHome(ctx context.Context, machineID string) error
	SaveInventory(ctx context.Context, machineID string, inv contract.Inventory) error
	BMCProvisioner
}

// BMCProvisioner allocates BMC addresses and keeps BMC credentials that
// wait for an out-of-band check.
type BMCProvisioner interface {
	BMCNetwork(ctx context.Context, name string) (BMCNetwork, error)
	AllocateBMCAddr(ctx context.Context, network, mac, machineID string) (netip.Addr, error)
	// PendingBMCPassword returns the password bareflow sets for username
	// on the machine's BMC, making one with gen the first time.
	PendingBMCPassword(ctx context.Context, machineID, username string, gen func() (string, error)) (string, error)
	CommitBMC(ctx context.Context, machineID string, addr netip.AddrPort, cipherSuite int) error
	DropPendingBMC(ctx context.Context, machineID string) error
}

// PendingBMCConnector opens a BMC session with a machine's pending
// credentials at addr. It wraps ErrBMCAuth and ErrBMCUnreachable.
type PendingBMCConnector interface {
	ConnectPending(ctx context.Context, machineID string, addr netip.AddrPort, cipherSuite int) (BMCSession, error)
}

// InventoryCollector reads a machine's hardware through a ramdisk shell.
// Sources that fail become warnings in the inventory; beat is called as
// the collection moves on.
type InventoryCollector interface {
	Collect(ctx context.Context, sh RamdiskShell, beat func(step string)) (contract.Inventory, error)
}

// BMCRequest is an in-band BMC set-up: the address source (static, dhcp
// or keep), the address of a static set-up, and bareflow's user.
type BMCRequest struct {
	Profile  string
	IPSource string
	Addr     netip.Addr
	Prefix   int
	Gateway  netip.Addr
	Username string
	Password string
	// AddrWait bounds the wait for a DHCP address; zero means a default.
	AddrWait time.Duration
}

// BMCSetupResult is the BMC as an in-band set-up left it.
type BMCSetupResult struct {
	Channel  int
	Slot     int
	Username string
	IPSource string
	Addr     netip.Addr
	MAC      string
	Changed  []string
	Warnings []string
}

// BMCDiscovery is what a BMC says of itself before it is set up.
type BMCDiscovery struct {
	// Profile names the rules the BMC follows (channels, user slots,
	// password rules, quirks), picked from its manufacturer or, failing
	// that, from the machine's vendor.
	Profile string
	// MAC is the MAC address of the BMC's LAN channel.
	MAC string
}

// BMCConfigurer sets up a machine's BMC in-band through a ramdisk shell.
// Its errors wrap ErrBMCSetupPermanent when the BMC cannot be set up the
// way asked (no LAN channel, no free user slot, a password refused).
type BMCConfigurer interface {
	Discover(ctx context.Context, sh RamdiskShell, vendor string) (BMCDiscovery, error)
	// Password makes a password that BMCs of the profile accept.
	Password(profile string) (string, error)
	Configure(ctx context.Context, sh RamdiskShell, req BMCRequest) (BMCSetupResult, error)
}

// ErrBMCSetupPermanent marks an in-band BMC set-up that cannot succeed.
var ErrBMCSetupPermanent = errors.New("the BMC cannot be set up as asked")

// Registration holds the activities of the Register workflow: the ramdisk
// handshake, hardware inventory and in-band BMC set-up.
type Registration struct {
	Keeper     RegistrationKeeper
	Dialer     RamdiskDialer
	Pending    PendingBMCConnector
	Collector  InventoryCollector
	Configurer BMCConfigurer
	// PollInterval is how often AwaitRamdisk looks for a phone-home. Zero
	// means 5s.
	PollInterval time.Duration
	// BMCAddrWait bounds how long a BMC set to DHCP may take to get an
	// address. Zero means 2 minutes.
	BMCAddrWait time.Duration
}

// PrepareRamdiskInput readies a machine for a ramdisk operation.
type PrepareRamdiskInput struct {
	MachineID  string
	WorkflowID string
	// IntentTTL is how long the ramdisk boot intent stands.
	IntentTTL time.Duration
	// State, when set, is the state the machine moves to (registering).
	State contract.MachineState
}

// PrepareRamdiskResult is what a ramdisk operation starts from.
type PrepareRamdiskResult struct {
	Facts MachineFacts
	// Since is when the ramdisk boot intent began: a phone-home older than
	// that is from an earlier boot.
	Since time.Time
}

// PrepareRamdisk reads what the operation needs to know of the machine,
// moves it to State when one is given, and makes its next network boot
// load the ramdisk for this workflow.
//
// Idempotent: the state and the boot intent are overwritten with the same
// values; a renewed intent keeps its start time. No heartbeat.
func (a *Registration) PrepareRamdisk(ctx context.Context, in PrepareRamdiskInput) (PrepareRamdiskResult, error) {
	facts, err := a.Keeper.MachineFacts(ctx, in.MachineID)
	if err != nil {
		return PrepareRamdiskResult{}, recordError("read machine "+in.MachineID, err)
	}
	if in.State != "" {
		if err := a.Keeper.SetMachineState(ctx, in.MachineID, in.State); err != nil {
			return PrepareRamdiskResult{}, recordError("set machine state", err)
		}
	}
	since, err := a.Keeper.SetRamdiskIntent(ctx, in.MachineID, in.WorkflowID, in.IntentTTL)
	if err != nil {
		return PrepareRamdiskResult{}, recordError("set boot intent", err)
	}
	return PrepareRamdiskResult{Facts: facts, Since: since}, nil
}

// recordError makes a store error an activity error: a missing machine is
// permanent, anything else is retried.
func recordError(what string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return temporal.NewNonRetryableApplicationError(what+": "+err.Error(), contract.ErrMachineNotFound, nil)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// AwaitRamdiskInput asks AwaitRamdisk to watch for a phone-home.
type AwaitRamdiskInput struct {
	MachineID  string
	WorkflowID string
	Since      time.Time
	// For is how long to watch before giving up for this call; zero means
	// one look.
	For time.Duration
}

// AwaitRamdiskResult says whether the ramdisk was found.
type AwaitRamdiskResult struct {
	Found bool
	Ready contract.RamdiskReady
}

// AwaitRamdisk watches the phone-home records, for up to For, until the
// machine's ramdisk phoned home for this workflow after Since and its SSH
// port answers. The workflow calls it again and again beside its wait for
// the phone-home signal, so that a lost signal cannot stall an operation.
//
// Idempotent: it only reads. Heartbeats on every look.
func (a *Registration) AwaitRamdisk(ctx context.Context, in AwaitRamdiskInput) (AwaitRamdiskResult, error) {
	every := a.PollInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	deadline := time.Now().Add(in.For)
	for look := 1; ; look++ {
		activity.RecordHeartbeat(ctx, look)
		ph, err := a.Keeper.PhoneHome(ctx, in.MachineID)
		switch {
		case err == nil && ph.WorkflowID == in.WorkflowID && !ph.At.Before(in.Since):
			if rerr := a.Dialer.Reachable(ctx, sshAddr(ph.Ready)); rerr == nil {
				return AwaitRamdiskResult{Found: true, Ready: ph.Ready}, nil
			}
		case err != nil && !errors.Is(err, ErrNotFound):
			activity.GetLogger(ctx).Warn("cannot read phone-home record", "machine_id", in.MachineID, "error", err)
		}
		if !time.Now().Add(every).Before(deadline) {
			return AwaitRamdiskResult{}, nil
		}
		select {
		case <-ctx.Done():
			return AwaitRamdiskResult{}, ctx.Err()
		case <-time.After(every):
		}
	}
}

// heartbeatEvery is how often a long activity heartbeats while it waits on
// a command: well inside the workflow's heartbeat timeout, so that a worker
// that dies is noticed in seconds, not after the longest command's timeout.
const heartbeatEvery = 5 * time.Second

// keepBeating heartbeats with details until the returned stop is called.
func keepBeating(ctx context.Context, details string) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, details)
			}
		}
	}()
	return func() { close(done) }
}

// sshAddr is the address:port of a ramdisk's SSH server.
func sshAddr(r contract.RamdiskReady) string {
	port := r.SSHPort
	if port <= 0 || port > 65535 {
		port = 22
	}
	a, err := netip.ParseAddr(r.Addr)
	if err != nil {
		return r.Addr
	}
	return netip.AddrPortFrom(a, uint16(port)).String()
}

// RamdiskInput names a machine and the ramdisk it runs.
type RamdiskInput struct {
	MachineID string
	Ramdisk   contract.RamdiskReady
}

// dial opens a shell on the ramdisk and classifies failures: a host key
// mismatch is permanent; a refused key or no answer is retried.
func (a *Registration) dial(ctx context.Context, in RamdiskInput) (RamdiskShell, error) {
	sh, err := a.Dialer.Dial(ctx, sshAddr(in.Ramdisk), in.Ramdisk.SSHHostKey)
	if err == nil {
		return sh, nil
	}
	msg := fmt.Sprintf("open SSH to the ramdisk of machine %s at %s: %v", in.MachineID, in.Ramdisk.Addr, err)
	switch {
	case errors.Is(err, ErrHostKeyMismatch):
		return nil, temporal.NewNonRetryableApplicationError(msg+" (another host answers at this address, or the ramdisk rebooted)", contract.ErrHostKeyMismatch, nil)
	case errors.Is(err, ErrShellAuth), errors.Is(err, ErrShellUnreachable):
		return nil, temporal.NewApplicationError(msg, contract.ErrRamdiskUnreachable)
	}
	return nil, fmt.Errorf("%s", msg)
}

// Collection limits.
const (
	collectCommandTimeout = 2 * time.Minute
	collectMaxOutput      = 8 << 20
)

// CollectInventory reads the machine's hardware over SSH: one command per
// source (dmidecode, lsblk, ip, ethtool, lspci, /proc, /sys), then the
// vendor RAID tool that is present, and parses it all. A source that fails
// becomes a warning in the inventory, not a failure.
//
// Idempotent: it only reads. Heartbeats before every command and every few
// seconds while one runs.
func (a *Registration) CollectInventory(ctx context.Context, in RamdiskInput) (contract.Inventory, error) {
	defer keepBeating(ctx, "collect")()
	sh, err := a.dial(ctx, in)
	if err != nil {
		return contract.Inventory{}, err
	}
	defer sh.Close()
	inv, err := a.Collector.Collect(ctx, sh, func(step string) { activity.RecordHeartbeat(ctx, step) })
	if ctx.Err() != nil {
		return contract.Inventory{}, ctx.Err()
	}
	if err != nil {
		return contract.Inventory{}, fmt.Errorf("collect the inventory of machine %s: %w", in.MachineID, err)
	}
	inv.CollectedAt = time.Now().UTC()
	return inv, nil
}

// SaveInventoryInput records an inventory.
type SaveInventoryInput struct {
	MachineID string
	Inventory contract.Inventory
}

// SaveInventory records the machine's inventory and the identity it shows.
// Hardware already recorded as another machine fails for good.
//
// Idempotent: an overwrite with the same values. No heartbeat.
func (a *Registration) SaveInventory(ctx context.Context, in SaveInventoryInput) error {
	err := a.Keeper.SaveInventory(ctx, in.MachineID, in.Inventory)
	if errors.Is(err, ErrDuplicate) {
		return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrDuplicateMachine, nil)
	}
	if err != nil {
		return recordError("save inventory", err)
	}
	return nil
}

// ConfigureBMCInput asks for the in-band BMC set-up.
type ConfigureBMCInput struct {
	MachineID string
	Ramdisk   contract.RamdiskReady
	// Vendor is the SMBIOS system vendor: it picks the BMC profile.
	Vendor string
	Setup  contract.BMCSetup
}

// ConfigureBMCResult is the BMC as the set-up left it. No password: it
// stays in the store.
type ConfigureBMCResult struct {
	Channel  int
	Slot     int
	Username string
	IPSource string
	// Addr is the BMC's address and RMCP+ port.
	Addr     string
	MAC      string
	Changed  []string
	Warnings []string
}

// ConfigureBMC sets up the machine's BMC in-band with ipmitool in the
// ramdisk: the LAN channel (found by asking each channel), its address
// (a reserved address of the BMC network, DHCP, or the one it has), and
// bareflow's admin user with a generated password, enabled for LAN access.
// The password is kept in the store as pending until VerifyBMC saw it work.
//
// Idempotent: the user is found by name, so a re-run reuses its slot; the
// address is reserved for the BMC's MAC, so a re-run gets the same one; the
// pending password is made once; settings already right are not written
// again. Heartbeats before every ipmitool call and every few seconds while
// one runs or a BMC restarts.
func (a *Registration) ConfigureBMC(ctx context.Context, in ConfigureBMCInput) (ConfigureBMCResult, error) {
	mode := in.Setup.Mode
	if err := mode.Validate(); err != nil || mode == contract.BMCSetupSkip {
		return ConfigureBMCResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("BMC set-up mode %q cannot configure a BMC", mode), contract.ErrInvalidInput, nil)
	}
	user := in.Setup.Username
	if user == "" {
		user = contract.DefaultBMCUsername
	}
	defer keepBeating(ctx, "configure")()
	sh, err := a.dial(ctx, RamdiskInput{MachineID: in.MachineID, Ramdisk: in.Ramdisk})
	if err != nil {
		return ConfigureBMCResult{}, err
	}
	defer sh.Close()
	var network BMCNetwork
	if mode == contract.BMCSetupAuto || mode == contract.BMCSetupStatic {
		network, err = a.Keeper.BMCNetwork(ctx, in.Setup.Network)
		switch {
		case err == nil:
			mode = contract.BMCSetupStatic
		case errors.Is(err, ErrNotFound) && mode == contract.BMCSetupAuto:
			mode = contract.BMCSetupKeep
		case errors.Is(err, ErrNotFound):
			return ConfigureBMCResult{}, temporal.NewNonRetryableApplicationError("no BMC network to take an address from: "+err.Error(), contract.ErrBMCSetupFailed, nil)
		default:
			return ConfigureBMCResult{}, fmt.Errorf("find BMC network: %w", err)
		}
	}
	found, err := a.Configurer.Discover(ctx, sh, in.Vendor)
	if err != nil {
		return ConfigureBMCResult{}, bmcSetupError(err)
	}
	req := BMCRequest{Profile: found.Profile, Username: user, IPSource: string(mode), AddrWait: a.BMCAddrWait}
	if mode == contract.BMCSetupStatic {
		mac := found.MAC
		if mac == "" || mac == "00:00:00:00:00:00" {
			return ConfigureBMCResult{}, temporal.NewNonRetryableApplicationError(
				"the BMC reports no MAC address on its LAN channel, so no address can be reserved for it; use the dhcp or keep mode",
				contract.ErrBMCSetupFailed, nil)
		}
		addr, err := a.Keeper.AllocateBMCAddr(ctx, network.Name, mac, in.MachineID)
		if errors.Is(err, ErrBMCSetupPermanent) {
			return ConfigureBMCResult{}, temporal.NewNonRetryableApplicationError("allocate a BMC address on "+network.Name+": "+err.Error(), contract.ErrBMCSetupFailed, nil)
		}
		if err != nil {
			return ConfigureBMCResult{}, recordError("allocate a BMC address on "+network.Name, err)
		}
		req.Addr, req.Prefix, req.Gateway = addr, network.Prefix.Bits(), network.Gateway
	}
	pw, err := a.Keeper.PendingBMCPassword(ctx, in.MachineID, user, func() (string, error) { return a.Configurer.Password(found.Profile) })
	if err != nil {
		return ConfigureBMCResult{}, recordError("keep the BMC password", err)
	}
	req.Password = pw
	res, err := a.Configurer.Configure(ctx, sh, req)
	if err != nil {
		return ConfigureBMCResult{}, bmcSetupError(err)
	}
	if !res.Addr.IsValid() || res.Addr.IsUnspecified() {
		return ConfigureBMCResult{}, temporal.NewNonRetryableApplicationError(
			"the BMC has no LAN address; give the machine a BMC network or set the BMC to DHCP", contract.ErrBMCSetupFailed, nil)
	}
	port := network.Port
	if port == 0 {
		port = 623
	}
	return ConfigureBMCResult{
		Channel: res.Channel, Slot: res.Slot, Username: res.Username, IPSource: res.IPSource,
		Addr: netip.AddrPortFrom(res.Addr, uint16(port)).String(), MAC: res.MAC,
		Changed: res.Changed, Warnings: res.Warnings,
	}, nil
}

// bmcSetupError makes a set-up failure an activity error: a BMC that cannot
// be set up the way asked fails for good; anything else is retried.
func bmcSetupError(err error) error {
	if errors.Is(err, ErrBMCSetupPermanent) {
		return temporal.NewNonRetryableApplicationError("set up the BMC in-band: "+err.Error(), contract.ErrBMCSetupFailed, nil)
	}
	return fmt.Errorf("set up the BMC in-band: %w", err)
}

// VerifyBMCInput asks for an out-of-band check of pending credentials.
type VerifyBMCInput struct {
	MachineID   string
	Addr        string
	CipherSuite int
}

// VerifyBMC logs in to the machine's BMC over the network with the pending
// credentials and reads the power state: proof that the set-up works from
// where bareflow's workers run. A BMC that refuses them or does not answer
// is retried by the workflow's policy for a while (BMCs restart their
// network stack after a LAN change).
//
// Idempotent: it only reads. No heartbeat: one short exchange.
func (a *Registration) VerifyBMC(ctx context.Context, in VerifyBMCInput) (PowerStateResult, error) {
	ap, err := netip.ParseAddrPort(in.Addr)
	if err != nil {
		return PowerStateResult{}, temporal.NewNonRetryableApplicationError("BMC address "+in.Addr+" is not address:port", contract.ErrInvalidInput, nil)
	}
	s, err := a.Pending.ConnectPending(ctx, in.MachineID, ap, in.CipherSuite)
	if err != nil {
		return PowerStateResult{}, verifyError("log in to the BMC at "+in.Addr+" with the new credentials", err)
	}
	defer closeSession(ctx, s)
	st, err := s.PowerState(ctx)
	if err != nil {
		return PowerStateResult{}, verifyError("read the power state from the BMC at "+in.Addr, err)
	}
	return PowerStateResult{State: st, At: time.Now().UTC()}, nil
}

// verifyError keeps refused credentials retryable: right after a set-up the
// BMC may still be applying them. The workflow's retry policy bounds it.
func verifyError(what string, err error) error {
	msg := fmt.Sprintf("%s: %v", what, err)
	switch {
	case errors.Is(err, ErrBMCAuth):
		return temporal.NewApplicationError(msg, contract.ErrBMCAuthFailed)
	case errors.Is(err, ErrBMCUnreachable):
		return temporal.NewApplicationError(msg, contract.ErrBMCUnreachable)
	case errors.Is(err, ErrNotFound):
		return temporal.NewNonRetryableApplicationError(msg, contract.ErrBMCNotConfigured, nil)
	}
	return bmcError(what, err)
}

// CommitBMCInput makes verified credentials the machine's.
type CommitBMCInput struct {
	MachineID   string
	Addr        string
	CipherSuite int
}

// CommitBMC makes the verified pending BMC credentials the machine's own,
// with the BMC's address.
//
// Idempotent: committing again what is already committed succeeds. No
// heartbeat.
func (a *Registration) CommitBMC(ctx context.Context, in CommitBMCInput) error {
	ap, err := netip.ParseAddrPort(in.Addr)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("BMC address "+in.Addr+" is not address:port", contract.ErrInvalidInput, nil)
	}
	if err := a.Keeper.CommitBMC(ctx, in.MachineID, ap, in.CipherSuite); err != nil {
		return recordError("record the BMC credentials", err)
	}
	return nil
}

// FinishRamdiskInput closes a registration.
type FinishRamdiskInput struct {
	MachineID string
	// State is where the machine ends: ready on success, error on failure.
	State contract.MachineState
	// KeepRamdisk keeps the phone-home record, for a machine left running
	// its ramdisk.
	KeepRamdisk bool
}

// FinishRamdisk clears the machine's boot intent (its next boot is from
// disk), drops BMC credentials that were never verified, forgets the
// ramdisk unless it is kept running, and sets the machine's state.
//
// Idempotent: each part is a delete or an overwrite. No heartbeat.
func (a *Registration) FinishRamdisk(ctx context.Context, in FinishRamdiskInput) error {
	if err := a.Keeper.ClearBootIntent(ctx, in.MachineID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("clear boot intent: %w", err)
	}
	if err := a.Keeper.DropPendingBMC(ctx, in.MachineID); err != nil {
		return fmt.Errorf("drop pending BMC credentials: %w", err)
	}
	if !in.KeepRamdisk {
		if err := a.Keeper.ForgetPhoneHome(ctx, in.MachineID); err != nil {
			return fmt.Errorf("forget the ramdisk: %w", err)
		}
	}
	if err := a.Keeper.SetMachineState(ctx, in.MachineID, in.State); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("set machine state: %w", err)
	}
	return nil
}

// ProbeRamdisk reports whether the machine's ramdisk still answers with the
// host key it phoned home with.
//
// Idempotent: it runs `true`. No heartbeat.
func (a *Registration) ProbeRamdisk(ctx context.Context, in RamdiskInput) (bool, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	sh, err := a.Dialer.Dial(dctx, sshAddr(in.Ramdisk), in.Ramdisk.SSHHostKey)
	if err != nil {
		return false, nil
	}
	defer sh.Close()
	if _, err := sh.Run(dctx, ShellCommand{Script: "true", Timeout: 10 * time.Second, MaxOutput: 1024}); err != nil {
		return false, nil
	}
	return true, nil
}

// PowerOffRamdisk powers the machine off from inside its ramdisk, for a
// machine without a BMC. The command returns before the power goes.
//
// Idempotent: a machine already off does not answer, which counts as done.
// No heartbeat.
func (a *Registration) PowerOffRamdisk(ctx context.Context, in RamdiskInput) error {
	sh, err := a.Dialer.Dial(ctx, sshAddr(in.Ramdisk), in.Ramdisk.SSHHostKey)
	if errors.Is(err, ErrShellUnreachable) {
		return nil
	}
	if err != nil {
		_, derr := a.dial(ctx, in)
		return derr
	}
	defer sh.Close()
	_, err = sh.Run(ctx, ShellCommand{Script: "sync; (sleep 1; poweroff -f) >/dev/null 2>&1 </dev/null &", Timeout: 30 * time.Second, MaxOutput: 4096})
	if err != nil {
		return fmt.Errorf("power off from the ramdisk: %w", err)
	}
	return nil
}
