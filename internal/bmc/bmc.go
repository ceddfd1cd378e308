// Package bmc controls machines through their baseboard management
// controllers, over IPMI v2.0 RMCP+ ("lanplus"), with github.com/bougou/go-ipmi.
//
// Dial opens one authenticated session with a BMC; the Client's methods each
// make one IPMI exchange over it: read or change the chassis power, set or
// read back the boot device override, read the chassis status and the
// controller's identity. Close ends the session.
//
// The adapter does not retry for long. Config.Timeout bounds each exchange,
// with a few quick retransmits inside it (Config.Retries); retrying with
// backoff is left to the Temporal activities that call it. A BMC's answer is
// only a success when its completion code is 00h: any other code comes back
// as a *CompletionError, and the errors that callers act on can be told apart
// with errors.Is:
//
//   - ErrAuth: the BMC refused the user name or password (RAKP), or the user
//     lacks the privilege the command needs. Retrying will not help.
//   - ErrUnreachable: no answer within the timeout, or the address refused
//     the datagrams. Retrying later may help.
//   - ErrUnsupported: the BMC answered that it cannot do this at all, such as
//     "invalid data field" for a boot device, or a cipher suite it lacks.
//   - ErrInvalidTarget: the Target or Config cannot be used as given.
//
// A Client is safe for concurrent use; its exchanges are serialized. When a
// call fails with ErrUnreachable the session may be gone on the BMC's side:
// Close the Client and Dial again.
//
// Passwords never reach a log: Target keeps the password as a secret.String
// and the Client logs the BMC's address, the operation and its outcome only.
package bmc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"bareflow/internal/secret"
)

// Defaults of Config and Target.
const (
	// DefaultTimeout bounds one exchange with a BMC, retransmits included.
	DefaultTimeout = 5 * time.Second
	// DefaultRetries is how many times a request is sent again inside one
	// exchange when no answer came.
	DefaultRetries = 2
	// DefaultCipherSuite is the RMCP+ cipher suite used when a Target names
	// none: RAKP-HMAC-SHA1, HMAC-SHA1-96 integrity, AES-CBC-128. Suite 17
	// (SHA-256) is what recent BMCs prefer; it is set per machine.
	DefaultCipherSuite = 3
)

// Limits of IPMI v2.0 user names and passwords.
const (
	maxUsernameLen = 16
	maxPasswordLen = 20
)

// Target says how to reach one BMC.
type Target struct {
	// Addr is the BMC's IP address and UDP port, usually 623.
	Addr netip.AddrPort
	// Username is the IPMI user name, at most 16 bytes.
	Username string
	// Password is the IPMI user's password, at most 20 bytes.
	Password secret.String
	// CipherSuite is the RMCP+ cipher suite ID, such as 3 or 17. Zero means
	// DefaultCipherSuite.
	CipherSuite int
}

// Validate reports whether t can be dialed. It never mentions the password.
func (t Target) Validate() error {
	if !t.Addr.IsValid() || t.Addr.Port() == 0 {
		return fmt.Errorf("%w: BMC address %q needs an IP address and a port", ErrInvalidTarget, t.Addr)
	}
	if len(t.Username) > maxUsernameLen {
		return fmt.Errorf("%w: user name is %d bytes, at most %d allowed", ErrInvalidTarget, len(t.Username), maxUsernameLen)
	}
	if len(t.Password.Reveal()) > maxPasswordLen {
		return fmt.Errorf("%w: password is longer than %d bytes", ErrInvalidTarget, maxPasswordLen)
	}
	if t.CipherSuite != 0 {
		if t.CipherSuite < 0 || t.CipherSuite > 255 {
			return fmt.Errorf("%w: cipher suite %d out of range", ErrInvalidTarget, t.CipherSuite)
		}
		if _, _, _, ok := types.GetCipherSuiteAlgorithms(types.CipherSuiteID(t.CipherSuite)); !ok {
			return fmt.Errorf("%w: unknown cipher suite %d", ErrInvalidTarget, t.CipherSuite)
		}
	}
	return nil
}

func (t Target) cipherSuite() types.CipherSuiteID {
	if t.CipherSuite == 0 {
		return DefaultCipherSuite
	}
	return types.CipherSuiteID(t.CipherSuite)
}

// Config tunes how a Client talks to BMCs.
type Config struct {
	// Timeout bounds one exchange, a request and its answer with every
	// retransmit. Session set-up in Dial is bounded by twice Timeout. Zero
	// means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a request is sent again inside one exchange
	// when no answer came; each try waits Timeout/(Retries+1). Zero means
	// DefaultRetries; a negative value means none.
	Retries int
	// Logger receives a debug record per exchange, with the keys component,
	// bmc_addr, op and duration. Nil means no logging.
	Logger *slog.Logger
}

// Validate reports whether c can be used.
func (c Config) Validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("%w: negative timeout %s", ErrInvalidTarget, c.Timeout)
	}
	if c.Retries > 10 {
		return fmt.Errorf("%w: %d retries is too many; the caller retries with backoff", ErrInvalidTarget, c.Retries)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Client is an open RMCP+ session with one BMC.
type Client struct {
	addr netip.AddrPort
	cfg  Config
	log  *slog.Logger

	mu     sync.Mutex // serializes exchanges over the one session
	ipmi   *client.Client
	closed bool
}

// Dial opens an RMCP+ session with the BMC at t.Addr, as the Administrator
// privilege level, with t's cipher suite. It fails with ErrAuth when the BMC
// refuses the credentials, ErrUnreachable when it does not answer, and
// ErrUnsupported when it lacks the cipher suite.
func Dial(ctx context.Context, t Target, cfg Config) (*Client, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("dial %s: %w", t.Addr, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dial %s: %w", t.Addr, err)
	}
	cfg = cfg.withDefaults()

	gc, err := client.NewClient(t.Addr.Addr().String(), int(t.Addr.Port()), t.Username, t.Password.Reveal())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w: %w", t.Addr, ErrInvalidTarget, err)
	}
	gc.WithInterface(client.InterfaceLanplus).
		WithTimeout(cfg.Timeout / time.Duration(cfg.Retries+1)).
		WithRetry(cfg.Retries).
		WithCipherSuiteID(t.cipherSuite()).
		WithMaxPrivilegeLevel(types.PrivilegeLevelAdministrator)

	c := &Client{
		addr: t.Addr,
		cfg:  cfg,
		log:  cfg.Logger.With(slog.String("component", "bmc"), slog.String("bmc_addr", t.Addr.String())),
		ipmi: gc,
	}

	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, 2*cfg.Timeout)
	defer cancel()
	if err := gc.Connect(dctx); err != nil {
		// Connect leaves the UDP socket open; an already canceled context
		// closes it without another exchange.
		cctx, ccancel := context.WithCancel(context.Background())
		ccancel()
		_ = gc.Close(cctx)

		cerr := classify(ctx, types.CommandSetSessionPrivilegeLevel, err)
		if !errors.Is(cerr, ErrAuth) && !errors.Is(cerr, ErrUnsupported) && !errors.Is(cerr, ErrUnreachable) &&
			ctx.Err() == nil && refusedOpenSession(err) {
			if st, perr := openSessionStatus(ctx, t.Addr, t.cipherSuite(), cfg.Timeout); perr == nil && st != types.RmcpStatusCodeNoErrors {
				serr := fmt.Errorf("open session with cipher suite %d: %w", t.cipherSuite(), types.NewRmcpStatusError(st))
				cerr = classify(ctx, types.CommandSetSessionPrivilegeLevel, serr)
			}
		}
		c.logDone(ctx, "dial", start, cerr)
		return nil, fmt.Errorf("dial %s: %w", t.Addr, cerr)
	}
	c.logDone(ctx, "dial", start, nil)
	return c, nil
}

// Close ends the session and releases its socket. It is bounded by the
// configured Timeout; the socket is released even when the BMC does not
// answer. Closing a closed Client does nothing.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true

	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	err := c.ipmi.Close(cctx)
	if err != nil {
		err = classify(ctx, types.CommandCloseSession, err)
	}
	c.logDone(ctx, "close", start, err)
	if err != nil {
		return fmt.Errorf("close session with %s: %w", c.addr, err)
	}
	return nil
}

// Addr returns the address of the BMC.
func (c *Client) Addr() netip.AddrPort { return c.addr }

// errClosed reports a call on a closed Client.
var errClosed = errors.New("client is closed")

// exchange runs fn, one IPMI request and its answer, under the exchange
// timeout, and turns its error into the package's errors. op names the
// operation in errors and logs, cmd is the IPMI command that fn sends.
func (c *Client) exchange(ctx context.Context, op string, cmd types.Command, fn func(ctx context.Context) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%s %s: %w", op, c.addr, errClosed)
	}
	start := time.Now()
	ectx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	err := fn(ectx)
	if err != nil {
		err = classify(ctx, cmd, err)
	}
	c.logDone(ctx, op, start, err)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, c.addr, err)
	}
	return nil
}

func (c *Client) logDone(ctx context.Context, op string, start time.Time, err error) {
	attrs := []slog.Attr{slog.String("op", op), slog.Duration("duration", time.Since(start))}
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "bmc exchange failed", append(attrs, slog.String("error", err.Error()))...)
		return
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "bmc exchange", attrs...)
}
