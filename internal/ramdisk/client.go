// Package ramdisk runs commands on a machine's PXE ramdisk over SSH.
//
// A ramdisk phones home with its address and the host key it generated at
// boot; Dial connects to that address as root with bareflow's key and accepts
// the server only if it presents exactly that host key. The ramdisk's SSH
// server is dropbear, whose sessions run commands with dash and which has no
// SFTP: Run executes a shell script, Upload streams a file through cat.
//
// Errors wrap the package's sentinels so that callers can tell a permanent
// failure (ErrHostKeyMismatch, ErrAuth, a command's *ExitError) from one
// worth retrying (ErrUnreachable, ErrConnectionLost). A command given a
// Display never has its Script in an error.
package ramdisk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// keepaliveRequest is the global request the client sends to check that the
// server is alive. Servers that do not know it answer with a failure, which
// counts as an answer.
const keepaliveRequest = "keepalive@openssh.com"

// Client is an SSH connection to one ramdisk. Its methods may be called
// from several goroutines; each Run opens its own session.
type Client struct {
	conn *ssh.Client
	addr string

	done      chan struct{} // closed when the connection has ended
	closeOnce sync.Once

	mu     sync.Mutex
	closed bool  // Close was called
	lost   error // why the connection ended, when Close was not called
}

// Dial connects to the ramdisk of cfg and authenticates. ctx bounds the TCP
// connect and the SSH handshake, as does cfg.DialTimeout each; it does not
// bound the returned Client. The Client sends keepalives until it is closed.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	addr, _ := hostPort(cfg.Addr)
	pinned, _ := parseHostKey(cfg.HostKey)

	dialer := net.Dialer{Timeout: cfg.DialTimeout}
	tcp, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh dial %s: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("ssh dial %s: %w: %w", addr, ErrUnreachable, err)
	}

	deadline := time.Now().Add(cfg.DialTimeout)
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxDeadline = d, true
	}
	if err := tcp.SetDeadline(deadline); err != nil {
		tcp.Close()
		return nil, fmt.Errorf("ssh dial %s: %w: %w", addr, ErrUnreachable, err)
	}
	// A cancelled ctx moves the deadline to the past, which fails the
	// handshake's pending read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = tcp.SetDeadline(time.Unix(1, 0)) })

	check := &hostKeyCheck{pinned: pinned}
	sshConfig := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(cfg.Signer)},
		HostKeyCallback:   check.callback,
		HostKeyAlgorithms: hostKeyAlgorithms(pinned),
	}
	cc, chans, reqs, err := ssh.NewClientConn(tcp, addr, sshConfig)
	stopped := stop()
	if err != nil {
		tcp.Close()
		return nil, handshakeError(ctx, ctxDeadline, addr, check, err)
	}
	if !stopped {
		cc.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
	}
	if err := tcp.SetDeadline(time.Time{}); err != nil {
		cc.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w: %w", addr, ErrUnreachable, err)
	}

	c := &Client{
		conn: ssh.NewClient(cc, chans, reqs),
		addr: addr,
		done: make(chan struct{}),
	}
	go c.watch()
	go c.keepalive(cfg.KeepaliveInterval, keepaliveMaxMissed)
	return c, nil
}

// hostKeyCheck is a HostKeyCallback that accepts only the pinned key and
// remembers what it saw, so that Dial can classify a failed handshake.
type hostKeyCheck struct {
	pinned ssh.PublicKey

	mu       sync.Mutex
	verified bool
	mismatch error
}

func (h *hostKeyCheck) callback(_ string, _ net.Addr, key ssh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if key.Type() == h.pinned.Type() && bytes.Equal(key.Marshal(), h.pinned.Marshal()) {
		h.verified = true
		return nil
	}
	h.mismatch = fmt.Errorf("%w: server presented %s %s, pinned %s %s", ErrHostKeyMismatch,
		key.Type(), ssh.FingerprintSHA256(key), h.pinned.Type(), ssh.FingerprintSHA256(h.pinned))
	return h.mismatch
}

func (h *hostKeyCheck) state() (verified bool, mismatch error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.verified, h.mismatch
}

// handshakeError classifies an error of ssh.NewClientConn. ctxDeadline
// says whether the connection's deadline was ctx's.
func handshakeError(ctx context.Context, ctxDeadline bool, addr string, check *hostKeyCheck, err error) error {
	verified, mismatch := check.state()
	var netErr net.Error
	switch {
	case mismatch != nil:
		return fmt.Errorf("ssh handshake with %s: %w", addr, mismatch)
	case ctx.Err() != nil:
		return fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
	case ctxDeadline && errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("ssh handshake with %s: %w", addr, context.DeadlineExceeded)
	case verified && isAuthFailure(err):
		return fmt.Errorf("ssh handshake with %s: %w: %w", addr, ErrAuth, err)
	case isNetworkFailure(err):
		return fmt.Errorf("ssh handshake with %s: %w: %w", addr, ErrUnreachable, err)
	default:
		return fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
}

// isAuthFailure reports whether err is x/crypto/ssh's error for a server
// that accepted none of the offered authentication methods. The package
// exports no type for it, so the message is matched.
func isAuthFailure(err error) bool {
	return strings.Contains(err.Error(), "ssh: unable to authenticate")
}

// isNetworkFailure reports whether err comes from the connection itself
// rather than from the SSH protocol.
func isNetworkFailure(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// watch records why the connection ended.
func (c *Client) watch() {
	err := c.conn.Wait()
	c.mu.Lock()
	if !c.closed && c.lost == nil {
		if err == nil {
			err = io.EOF
		}
		c.lost = fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	c.mu.Unlock()
	c.closeOnce.Do(func() { close(c.done) })
}

// keepalive sends a keepalive request every interval and closes the
// connection when maxMissed of them in a row get no answer in time.
func (c *Client) keepalive(interval time.Duration, maxMissed int) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	missed := 0
	for {
		select {
		case <-c.done:
			return
		case <-ticker.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest(keepaliveRequest, true, nil)
			answered <- err
		}()
		timer := time.NewTimer(interval)
		select {
		case <-c.done:
			timer.Stop()
			return
		case err := <-answered:
			timer.Stop()
			if err != nil {
				c.fail(fmt.Errorf("%w: keepalive: %w", ErrConnectionLost, err))
				return
			}
			missed = 0
		case <-timer.C:
			missed++
		}
		if missed >= maxMissed {
			c.fail(fmt.Errorf("%w: %d keepalives in a row unanswered", ErrConnectionLost, missed))
			return
		}
	}
}

// fail closes the connection, recording cause as the reason.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	if !c.closed && c.lost == nil {
		c.lost = cause
	}
	c.mu.Unlock()
	_ = c.conn.Close()
}

// lostErr returns why the connection ended, or nil while it is up or after
// Close.
func (c *Client) lostErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// Close closes the connection and every session on it. Closing twice
// returns nil the second time.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	err := c.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Addr returns the server's address as host:port.
func (c *Client) Addr() string { return c.addr }
