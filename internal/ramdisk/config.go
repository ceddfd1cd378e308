package ramdisk

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults of Config.
const (
	DefaultPort              = "22"
	DefaultUser              = "root"
	DefaultDialTimeout       = 10 * time.Second
	DefaultKeepaliveInterval = 15 * time.Second
)

// keepaliveMaxMissed is how many keepalives in a row may go unanswered
// before the client closes the connection.
const keepaliveMaxMissed = 3

// Config says how to reach one ramdisk.
type Config struct {
	// Addr is the ramdisk's SSH address, "host" or "host:port"; the port
	// defaults to 22. IPv6 literals may be given bare or in brackets.
	Addr string
	// User is the login name. Default "root".
	User string
	// HostKey is the ramdisk's host key as it phoned home, in
	// authorized_keys form ("ssh-ed25519 AAAA… comment"). Required: the
	// connection is refused unless the server presents exactly this key.
	HostKey string
	// Signer is bareflow's own key, the one the ramdisk authorizes.
	// Required.
	Signer ssh.Signer
	// DialTimeout bounds the TCP connect and, separately, the SSH
	// handshake. Default 10s.
	DialTimeout time.Duration
	// KeepaliveInterval is how often the client sends a
	// keepalive@openssh.com request; after 3 in a row get no answer
	// within an interval each, the connection is closed. Default 15s.
	KeepaliveInterval time.Duration
}

// Validate reports the first problem of c, wrapping ErrInvalidConfig. Zero
// values of fields that have defaults are valid.
func (c Config) Validate() error {
	if _, err := hostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if strings.ContainsAny(c.User, " \t\r\n") {
		return fmt.Errorf("%w: user %q contains white space", ErrInvalidConfig, c.User)
	}
	if _, err := parseHostKey(c.HostKey); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if c.Signer == nil {
		return fmt.Errorf("%w: no signer", ErrInvalidConfig)
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("%w: negative dial timeout %s", ErrInvalidConfig, c.DialTimeout)
	}
	if c.KeepaliveInterval < 0 {
		return fmt.Errorf("%w: negative keepalive interval %s", ErrInvalidConfig, c.KeepaliveInterval)
	}
	return nil
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	return c
}

// hostPort returns addr as "host:port", adding the default port.
func hostPort(addr string) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("no address")
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if host == "" {
			return "", fmt.Errorf("address %q has no host", addr)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("address %q has an invalid port", addr)
		}
		return addr, nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", fmt.Errorf("address %q is neither host nor host:port", addr)
		}
	}
	if strings.ContainsAny(host, " \t\r\n/[]") {
		return "", fmt.Errorf("address %q is neither host nor host:port", addr)
	}
	return net.JoinHostPort(host, DefaultPort), nil
}

// parseHostKey parses a host key in authorized_keys form.
func parseHostKey(s string) (ssh.PublicKey, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no host key")
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("parse host key: %w", err)
	}
	return key, nil
}

// hostKeyAlgorithms returns the host key algorithms that can verify key:
// its own type, and for RSA keys the SHA-2 signature algorithms too.
func hostKeyAlgorithms(key ssh.PublicKey) []string {
	switch key.Type() {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	default:
		return []string{key.Type()}
	}
}
