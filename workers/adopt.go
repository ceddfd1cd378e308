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
	"bareflow/internal/bmc"
	"bareflow/internal/ramdisk"
	"bareflow/internal/store"
)

// newAdoption wires the Adopt workflow's activities to their adapters.
func newAdoption(st *store.Store, cfg Config) *activities.Adoption {
	return &activities.Adoption{
		BMC:       &adoptBMCProber{st: st, cfg: cfg.BMC},
		OS:        &osDialer{signer: cfg.SSHSigner},
		Secrets:   adoptionKeeper{st: st},
		Recorder:  adoptionKeeper{st: st},
		Collector: inventoryCollector{},
	}
}

// adoptBMCProber implements activities.PendingBMCProber with go-ipmi.
type adoptBMCProber struct {
	st  *store.Store
	cfg bmc.Config
}

func (p *adoptBMCProber) ProbePending(ctx context.Context, machineID string, addr netip.AddrPort, cipherSuite int) (activities.BMCProbe, error) {
	cred, err := p.st.PendingBMCCredentials(ctx, machineID, addr, cipherSuite)
	if err != nil {
		return activities.BMCProbe{}, storeErr(err)
	}
	c, err := bmc.Dial(ctx, bmc.Target{Addr: cred.Addr, Username: cred.User, Password: cred.Password, CipherSuite: cred.CipherSuite}, p.cfg)
	if err != nil {
		return activities.BMCProbe{}, bmcErr(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = c.Close(cctx)
	}()
	power, err := c.PowerState(ctx)
	if err != nil {
		return activities.BMCProbe{}, bmcErr(err)
	}
	res := activities.BMCProbe{Power: power}
	guid, err := c.SystemGUID(ctx)
	switch {
	case err == nil:
		res.GUID = guid[:]
	case errors.Is(err, bmc.ErrUnsupported):
		// A BMC without Get System GUID: the identity check is skipped.
	default:
		return activities.BMCProbe{}, bmcErr(err)
	}
	return res, nil
}

// osDialer implements activities.OSDialer with internal/ramdisk's client
// and, for the one-time password login, x/crypto/ssh.
type osDialer struct {
	signer      ssh.Signer
	dialTimeout time.Duration
}

// errHostKeySeen ends a handshake once the host key is known.
var errHostKeySeen = errors.New("host key seen")

func (d *osDialer) timeout() time.Duration {
	if d.dialTimeout > 0 {
		return d.dialTimeout
	}
	return ramdisk.DefaultDialTimeout
}

// HostKey runs an SSH handshake up to the server's host key and stops
// there: nothing is authenticated, nothing runs.
func (d *osDialer) HostKey(ctx context.Context, addr string) (string, error) {
	conn, err := d.connect(ctx, addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var seen ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: "bareflow",
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			seen = key
			return errHostKeySeen
		},
		// Strongest first: the server takes the first it has, and some
		// servers (dropbear with an ed25519 key alone) offer RSA without
		// holding an RSA key.
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
			ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256},
	}
	_, _, _, err = ssh.NewClientConn(conn, addr, cfg)
	if seen == nil {
		return "", fmt.Errorf("%w: read the host key of %s: %w", activities.ErrShellUnreachable, addr, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(seen))), nil
}

// connect opens the TCP connection of a handshake, bounded by ctx and the
// dial timeout.
func (d *osDialer) connect(ctx context.Context, addr string) (net.Conn, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, ramdisk.DefaultPort)
	}
	dl := net.Dialer{Timeout: d.timeout()}
	conn, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", activities.ErrShellUnreachable, err)
	}
	deadline := time.Now().Add(d.timeout())
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	return conn, nil
}

func (d *osDialer) Dial(ctx context.Context, addr, user, hostKey string) (activities.RamdiskShell, error) {
	c, err := ramdisk.Dial(ctx, ramdisk.Config{Addr: addr, User: user, HostKey: hostKey, Signer: d.signer, DialTimeout: d.dialTimeout})
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

// InstallKey logs in with the password (or keyboard-interactive answers
// with it), accepting only hostKey, and runs the script that authorizes
// bareflow's key.
func (d *osDialer) InstallKey(ctx context.Context, addr, user, hostKey, password string) error {
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostKey))
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	conn, err := d.connect(ctx, addr)
	if err != nil {
		return err
	}
	mismatch := false
	cfg := &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{
			ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}),
		},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if key.Type() == pinned.Type() && string(key.Marshal()) == string(pinned.Marshal()) {
				return nil
			}
			mismatch = true
			return fmt.Errorf("server presented %s %s, pinned %s", key.Type(), ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(pinned))
		},
		HostKeyAlgorithms: []string{pinned.Type()},
	}
	if pinned.Type() == ssh.KeyAlgoRSA {
		cfg.HostKeyAlgorithms = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		switch {
		case mismatch:
			return fmt.Errorf("%w: %w", activities.ErrHostKeyMismatch, err)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return fmt.Errorf("%w: password login: %w", activities.ErrShellAuth, err)
		}
		return fmt.Errorf("%w: %w", activities.ErrShellUnreachable, err)
	}
	_ = conn.SetDeadline(time.Time{})
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("%w: open a session: %w", activities.ErrShellUnreachable, err)
	}
	defer sess.Close()
	script := activities.AuthorizeKeyScript(user, ramdisk.AuthorizedKey(d.signer, "bareflow"))
	sess.Stdin = strings.NewReader(script)
	done := make(chan error, 1)
	var out strings.Builder
	sess.Stdout, sess.Stderr = &out, &out
	go func() { done <- sess.Run("/bin/sh -s") }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("authorize bareflow's key for %s: %w: %s", user, err, strings.TrimSpace(out.String()))
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// adoptionKeeper implements activities.AdoptionSecrets and
// activities.AdoptionRecorder on the store.
type adoptionKeeper struct{ st *store.Store }

func (k adoptionKeeper) SSHPassword(ctx context.Context, machineID string) (string, error) {
	pw, err := k.st.AdoptSSHPassword(ctx, machineID)
	if err != nil {
		return "", storeErr(err)
	}
	return pw.Reveal(), nil
}

func (k adoptionKeeper) DropSSHPassword(ctx context.Context, machineID string) error {
	return storeErr(k.st.DropAdoptSSHPassword(ctx, machineID))
}

func (k adoptionKeeper) CompleteAdoption(ctx context.Context, machineID string, rec activities.AdoptionRecord) error {
	err := k.st.CompleteAdoption(ctx, machineID, store.Adoption{
		Inventory: rec.Inventory, BMCAddr: rec.BMCAddr, BMCCipherSuite: rec.BMCCipherSuite, PowerState: rec.PowerState,
		OS: store.AdoptedOS{Name: rec.OS.Name, Kernel: rec.OS.Kernel, Hostname: rec.OS.Hostname, Address: rec.SSHAddr,
			SSHUser: rec.SSHUser, SSHHostKey: rec.SSHHostKey},
	})
	var dup *store.DuplicateMachineError
	if errors.As(err, &dup) {
		return fmt.Errorf("%w: %w", activities.ErrDuplicate, err)
	}
	return storeErr(err)
}

func (k adoptionKeeper) DiscardAdoption(ctx context.Context, machineID string) error {
	return storeErr(k.st.DiscardAdoption(ctx, machineID))
}
