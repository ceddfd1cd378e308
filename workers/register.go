package workers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"bareflow/activities"
	"bareflow/contract"
	"bareflow/internal/bmc"
	"bareflow/internal/bmcsetup"
	"bareflow/internal/inventory"
	"bareflow/internal/raid"
	"bareflow/internal/ramdisk"
	"bareflow/internal/secret"
	"bareflow/internal/store"
)

// SSHKeySecret is the name under which the store keeps bareflow's SSH key.
const SSHKeySecret = "ssh-key"

// SSHKey returns bareflow's SSH key, kept sealed in the store and made on
// first use: workers log in to ramdisks with it, and boot services put its
// public half on the ramdisk's command line.
func SSHKey(ctx context.Context, st *store.Store) (ssh.Signer, error) {
	pem, err := st.EnsureSecret(ctx, SSHKeySecret, func() ([]byte, error) {
		pem, _, err := ramdisk.GenerateKey()
		return pem, err
	})
	if err != nil {
		return nil, fmt.Errorf("bareflow's SSH key: %w", err)
	}
	s, err := ramdisk.ParseKey(pem)
	if err != nil {
		return nil, fmt.Errorf("bareflow's SSH key: %w", err)
	}
	return s, nil
}

// ramdiskDialer implements activities.RamdiskDialer with internal/ramdisk.
type ramdiskDialer struct {
	signer      ssh.Signer
	dialTimeout time.Duration
}

func (d *ramdiskDialer) Dial(ctx context.Context, addr, hostKey string) (activities.RamdiskShell, error) {
	c, err := ramdisk.Dial(ctx, ramdisk.Config{Addr: addr, HostKey: hostKey, Signer: d.signer, DialTimeout: d.dialTimeout})
	switch {
	case err == nil:
		return &ramdiskShell{c: c}, nil
	case errors.Is(err, ramdisk.ErrHostKeyMismatch):
		return nil, fmt.Errorf("%w: %w", activities.ErrHostKeyMismatch, err)
	case errors.Is(err, ramdisk.ErrAuth):
		return nil, fmt.Errorf("%w: %w", activities.ErrShellAuth, err)
	case errors.Is(err, ramdisk.ErrUnreachable):
		return nil, fmt.Errorf("%w: %w", activities.ErrShellUnreachable, err)
	}
	return nil, err
}

// Reachable checks that the ramdisk's SSH port accepts a connection.
func (d *ramdiskDialer) Reachable(ctx context.Context, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%w: %w", activities.ErrShellUnreachable, err)
	}
	return c.Close()
}

type ramdiskShell struct{ c *ramdisk.Client }

func (s *ramdiskShell) Run(ctx context.Context, cmd activities.ShellCommand) (activities.ShellResult, error) {
	script := cmd.Script
	if len(cmd.Argv) > 0 {
		script = shellLine(cmd.Argv)
	}
	res, err := s.c.Run(ctx, ramdisk.Command{
		Script: script, Display: cmd.Display, Timeout: cmd.Timeout, MaxOutput: cmd.MaxOutput, OnLine: cmd.OnLine, Stdin: cmd.Stdin,
	})
	return activities.ShellResult{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}, err
}

func (s *ramdiskShell) Close() error { return s.c.Close() }

// registrationKeeper implements activities.RegistrationKeeper on the store.
type registrationKeeper struct{ st *store.Store }

func (k *registrationKeeper) MachineFacts(ctx context.Context, machineID string) (activities.MachineFacts, error) {
	m, err := k.st.GetMachine(ctx, machineID)
	if err != nil {
		return activities.MachineFacts{}, storeErr(err)
	}
	f := activities.MachineFacts{State: m.State, Vendor: m.Vendor, HasBMC: m.BMCAddr.IsValid() && m.HasBMCPassword}
	if !m.InventoryAt.IsZero() {
		if inv, err := k.st.GetInventory(ctx, machineID); err == nil {
			f.Firmware = inv.System.BootMode
		}
	}
	if m.BMCAddr.IsValid() {
		f.BMCAddr, f.BMCUser = m.BMCAddr.String(), m.BMCUser
	}
	return f, nil
}

func (k *registrationKeeper) SetMachineState(ctx context.Context, machineID string, s contract.MachineState) error {
	return storeErr(k.st.SetMachineState(ctx, machineID, s))
}

func (k *registrationKeeper) SetRamdiskIntent(ctx context.Context, machineID, workflowID string, ttl time.Duration) (time.Time, error) {
	b, err := k.st.SetBootIntent(ctx, store.BootIntent{
		MachineID: machineID, Purpose: store.BootPurposeRamdisk, WorkflowID: workflowID, ExpiresAt: time.Now().Add(ttl),
	})
	if err != nil {
		return time.Time{}, storeErr(err)
	}
	return b.CreatedAt, nil
}

func (k *registrationKeeper) ClearBootIntent(ctx context.Context, machineID string) error {
	return storeErr(k.st.ClearBootIntent(ctx, machineID))
}

func (k *registrationKeeper) PhoneHome(ctx context.Context, machineID string) (activities.PhoneHome, error) {
	rs, err := k.st.GetRamdiskSession(ctx, machineID)
	if err != nil {
		return activities.PhoneHome{}, storeErr(err)
	}
	return activities.PhoneHome{
		Ready: contract.RamdiskReady{
			MachineID: rs.MachineID, Addr: rs.Addr.String(), SSHPort: rs.SSHPort, MACs: rs.MACs, SSHHostKey: rs.SSHHostKey,
			ImageCacheURL: rs.ImageCacheURL, At: rs.PhonedAt.UTC(),
		},
		WorkflowID: rs.WorkflowID, At: rs.PhonedAt,
	}, nil
}

func (k *registrationKeeper) ForgetPhoneHome(ctx context.Context, machineID string) error {
	return storeErr(k.st.DeleteRamdiskSession(ctx, machineID))
}

func (k *registrationKeeper) SaveInventory(ctx context.Context, machineID string, inv contract.Inventory) error {
	err := k.st.SaveInventory(ctx, machineID, inv)
	var dup *store.DuplicateMachineError
	if errors.As(err, &dup) {
		return fmt.Errorf("%w: %w", activities.ErrDuplicate, err)
	}
	return storeErr(err)
}

func (k *registrationKeeper) BMCNetwork(ctx context.Context, name string) (activities.BMCNetwork, error) {
	n, err := k.st.BMCNetwork(ctx, name)
	if err != nil {
		return activities.BMCNetwork{}, storeErr(err)
	}
	return activities.BMCNetwork{Name: n.Name, Prefix: n.CIDR, Gateway: n.Gateway, Port: n.BMCPort}, nil
}

func (k *registrationKeeper) AllocateBMCAddr(ctx context.Context, network, mac, machineID string) (netip.Addr, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return netip.Addr{}, fmt.Errorf("the BMC reported MAC %q, not an Ethernet address", mac)
	}
	n, err := k.st.GetNetworkByName(ctx, network)
	if err != nil {
		return netip.Addr{}, storeErr(err)
	}
	l, err := k.st.AllocateReserved(ctx, n, hw, machineID)
	if errors.Is(err, store.ErrConflict) {
		// The pool is used up, or the MAC holds an address for another
		// machine: the operator must act.
		return netip.Addr{}, fmt.Errorf("%w: %w", activities.ErrBMCSetupPermanent, err)
	}
	if err != nil {
		return netip.Addr{}, storeErr(err)
	}
	return l.Addr, nil
}

func (k *registrationKeeper) PendingBMCPassword(ctx context.Context, machineID, username string, gen func() (string, error)) (string, error) {
	pw, err := k.st.PendingBMC(ctx, machineID, username, func() (secret.String, error) {
		p, err := gen()
		return secret.String(p), err
	})
	if err != nil {
		return "", storeErr(err)
	}
	return pw.Reveal(), nil
}

func (k *registrationKeeper) CommitBMC(ctx context.Context, machineID string, addr netip.AddrPort, cipherSuite int) error {
	return storeErr(k.st.CommitBMC(ctx, machineID, addr, cipherSuite))
}

func (k *registrationKeeper) DropPendingBMC(ctx context.Context, machineID string) error {
	return storeErr(k.st.DropPendingBMC(ctx, machineID))
}

// ConnectPending implements activities.PendingBMCConnector: a session with
// the machine's BMC at addr, with its pending credentials.
func (b *bmcConnector) ConnectPending(ctx context.Context, machineID string, addr netip.AddrPort, cipherSuite int) (activities.BMCSession, error) {
	cred, err := b.st.PendingBMCCredentials(ctx, machineID, addr, cipherSuite)
	if err != nil {
		return nil, storeErr(err)
	}
	c, err := bmc.Dial(ctx, bmc.Target{Addr: cred.Addr, Username: cred.User, Password: cred.Password, CipherSuite: cred.CipherSuite}, b.cfg)
	if err != nil {
		return nil, bmcErr(err)
	}
	return &bmcSession{c: c}, nil
}

// inventoryCollector implements activities.InventoryCollector: the
// commands of package inventory, then the RAID tools package raid finds in
// the ramdisk.
type inventoryCollector struct{}

// Collection limits per command.
const (
	collectCommandTimeout = 2 * time.Minute
	collectMaxOutput      = 8 << 20
)

func (inventoryCollector) Collect(ctx context.Context, sh activities.RamdiskShell, beat func(string)) (contract.Inventory, error) {
	outputs := map[string]inventory.Output{}
	for _, c := range inventory.Commands() {
		beat(c.Name)
		res, err := sh.Run(ctx, activities.ShellCommand{Script: c.Script, Timeout: collectCommandTimeout, MaxOutput: collectMaxOutput})
		if err := ctx.Err(); err != nil {
			return contract.Inventory{}, err
		}
		out := inventory.Output{Stdout: res.Stdout}
		if err != nil {
			out.Err = err.Error()
		}
		outputs[c.Name] = out
	}
	inv := inventory.Parse(outputs)
	runner := &shellArgv{sh: sh, beat: beat}
	ctrls, warnings := raid.Inventory(ctx, runner, inv.PCI, runner.have(ctx))
	inv.RAID = ctrls
	inv.Warnings = append(inv.Warnings, warnings...)
	return inv, ctx.Err()
}

// shellArgv runs argument vectors through a ramdisk shell, each argument
// quoted.
type shellArgv struct {
	sh   activities.RamdiskShell
	beat func(string)
}

func shellLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = ramdisk.Quote(a)
	}
	return strings.Join(q, " ")
}

func (r *shellArgv) Run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) > 0 {
		r.beat(argv[0])
	}
	res, err := r.sh.Run(ctx, activities.ShellCommand{Argv: argv, Timeout: collectCommandTimeout, MaxOutput: collectMaxOutput})
	return res.Stdout, err
}

// have asks the ramdisk once which RAID tools it carries.
func (r *shellArgv) have(ctx context.Context) func(string) bool {
	var tools []string
	for _, d := range raid.Drivers() {
		tools = append(tools, d.Tools()...)
	}
	present := map[string]bool{}
	script := `export PATH="${PATH:+$PATH:}/usr/sbin:/usr/bin:/sbin:/bin"; for t in ` + shellLine(tools) +
		`; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; true`
	if res, err := r.sh.Run(ctx, activities.ShellCommand{Script: script, Timeout: 30 * time.Second, MaxOutput: 64 << 10}); err == nil {
		for _, l := range strings.Split(string(res.Stdout), "\n") {
			present[strings.TrimSpace(l)] = true
		}
	}
	return func(t string) bool { return present[t] }
}

// bmcConfigurer implements activities.BMCConfigurer with package bmcsetup,
// running ipmitool in the ramdisk.
type bmcConfigurer struct{}

// ipmitoolTimeout bounds one in-band ipmitool call; ipmitool retries a
// refused LAN parameter for about a minute before it gives up.
const ipmitoolTimeout = 2 * time.Minute

// ipmitoolShell implements bmcsetup.CommandRunner over a ramdisk shell.
type ipmitoolShell struct{ sh activities.RamdiskShell }

func (r ipmitoolShell) RunIPMITool(ctx context.Context, args []string, display string) (string, error) {
	res, err := r.sh.Run(ctx, activities.ShellCommand{
		Script:  `export PATH="${PATH:+$PATH:}/usr/sbin:/usr/bin:/sbin:/bin"; ipmitool ` + shellLine(args),
		Display: display, Timeout: ipmitoolTimeout, MaxOutput: 1 << 20,
	})
	return string(res.Stdout), err
}

func setupErr(err error) error {
	if bmcsetup.Permanent(err) {
		return fmt.Errorf("%w: %w", activities.ErrBMCSetupPermanent, err)
	}
	return err
}

func (bmcConfigurer) Discover(ctx context.Context, sh activities.RamdiskShell, vendor string) (activities.BMCDiscovery, error) {
	d, err := bmcsetup.Discover(ctx, ipmitoolShell{sh}, bmcsetup.ProfileFor(vendor))
	if err != nil {
		return activities.BMCDiscovery{}, setupErr(err)
	}
	p := bmcsetup.ProfileForBMC(d.BMC.ManufacturerID, vendor)
	return activities.BMCDiscovery{Profile: p.Name, MAC: d.LAN.MAC.String()}, nil
}

// profile returns the built-in profile called name, or the generic one.
func profile(name string) bmcsetup.Profile {
	if p, ok := bmcsetup.ProfileByName(name); ok {
		return p
	}
	return bmcsetup.Generic()
}

func (bmcConfigurer) Password(name string) (string, error) {
	pw, err := bmcsetup.GeneratePassword(profile(name))
	return pw.Reveal(), err
}

func (bmcConfigurer) Configure(ctx context.Context, sh activities.RamdiskShell, req activities.BMCRequest) (activities.BMCSetupResult, error) {
	p := profile(req.Profile)
	r := bmcsetup.Request{
		Profile: &p, IPSource: bmcsetup.IPSource(req.IPSource), Addr: req.Addr, Prefix: req.Prefix,
		Gateway: req.Gateway, Username: req.Username, Password: req.Password, AddrWait: req.AddrWait,
	}
	res, err := bmcsetup.Configure(ctx, ipmitoolShell{sh}, r)
	if err != nil {
		return activities.BMCSetupResult{}, setupErr(err)
	}
	return activities.BMCSetupResult{
		Channel: res.Channel, Slot: res.Slot, Username: res.Username, IPSource: res.IPSource, Addr: res.Addr, MAC: res.MAC,
		Changed: res.Changed, Warnings: res.Warnings,
	}, nil
}

// raidBuilder implements activities.RAIDBuilder with package raid: Plan
// checks a spec, Apply runs the controllers' tools through the ramdisk
// shell, ResolveDevices finds the block devices.
type raidBuilder struct {
	// devicesWait bounds the wait for the built volumes' block devices.
	devicesWait time.Duration
}

func raidSpecErr(err error) error {
	var se *raid.SpecError
	if errors.As(err, &se) {
		return &activities.RAIDSpecError{Code: se.Code, Reason: se.Error()}
	}
	return err
}

func (raidBuilder) Check(spec contract.RAIDSpec, inv contract.Inventory) ([]string, error) {
	layout, err := raid.Plan(spec, inv)
	if err != nil {
		return nil, raidSpecErr(err)
	}
	var lines []string
	for _, c := range layout.Controllers {
		for _, s := range c.Steps {
			lines = append(lines, c.Controller+": "+s.String())
		}
	}
	return lines, nil
}

func (b raidBuilder) Build(ctx context.Context, sh activities.RamdiskShell, spec contract.RAIDSpec, inv contract.Inventory, beat func(string)) ([]contract.BuiltVolume, error) {
	layout, err := raid.Plan(spec, inv)
	if err != nil {
		return nil, raidSpecErr(err)
	}
	runner := &shellArgv{sh: sh, beat: beat}
	applied, err := raid.Apply(ctx, runner, layout, beat)
	if err != nil {
		return nil, &activities.RAIDBuildError{Built: applied.Volumes, Err: err}
	}
	wait := b.devicesWait
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	deadline := time.Now().Add(wait)
	for {
		beat("wait for block devices")
		vols, all, err := raid.ResolveDevices(ctx, runner, layout, applied)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case err == nil && all:
			return vols, nil
		case time.Now().After(deadline):
			cause := fmt.Errorf("the built volumes did not all show up as block devices within %s", wait)
			if err != nil {
				cause = fmt.Errorf("%w: %w", cause, err)
			}
			return nil, &activities.RAIDBuildError{Built: vols, Err: cause}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func (raidBuilder) RootDisk(inv contract.Inventory, volumes []contract.BuiltVolume) (string, error) {
	return inventory.RootDisk(inv, volumes)
}

// raidKeeper implements activities.RAIDKeeper on the store.
type raidKeeper struct{ st *store.Store }

func (k raidKeeper) SaveRAID(ctx context.Context, machineID string, volumes []contract.BuiltVolume, rootDevice string) error {
	return storeErr(k.st.SaveRAID(ctx, machineID, volumes, rootDevice))
}

// imageKeeper implements activities.ImageKeeper on the store.
type imageKeeper struct{ st *store.Store }

func (k imageKeeper) ImageSource(ctx context.Context, ref string) (activities.ImageSource, error) {
	im, headers, err := k.st.ImageSource(ctx, ref)
	if err != nil {
		return activities.ImageSource{}, storeErr(err)
	}
	h := make(map[string]string, len(headers))
	for name, v := range headers {
		h[name] = v.Reveal()
	}
	return activities.ImageSource{ID: im.ID, Family: im.OSFamily, URL: im.URL, Headers: h, Format: im.Format, ChecksumAlgo: im.ChecksumAlgo,
		Checksum: im.Checksum, VirtualSize: im.VirtualSize}, nil
}

// imageProgress writes an image write's progress on its operation: the
// step names the bytes written and the rate.
func imageProgress(st *store.Store) func(ctx context.Context, operationID string, p activities.ImageWriteProgress, total int64) {
	return func(ctx context.Context, operationID string, p activities.ImageWriteProgress, total int64) {
		step := fmt.Sprintf("write_image: %.1f GiB at %.0f MB/s", float64(p.BytesOut)/(1<<30), p.RateMBps)
		if total > 0 {
			step = fmt.Sprintf("write_image: %.0f%% of %.1f GiB at %.0f MB/s", 100*min(1, float64(p.BytesOut)/float64(total)),
				float64(total)/(1<<30), p.RateMBps)
		}
		ch := store.OperationUpdate{Step: &step}
		if total > 0 {
			// Writing the image is the middle of an install: 30 % to 80 %.
			f := 0.3 + 0.5*min(1, float64(p.BytesOut)/float64(total))
			ch.Progress = &f
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = st.UpdateOperation(ctx, operationID, ch)
	}
}
