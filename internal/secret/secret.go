// Package secret keeps credentials out of logs and encrypts them at rest.
//
// A String prints as REDACTED in logs, fmt and JSON; only Reveal gives its
// value. A Box seals values with AES-256-GCM under a key loaded from the
// environment or a key file.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Redacted is how a secret prints.
const Redacted = "REDACTED"

// String is a secret value. It never prints itself.
type String string

// Reveal returns the secret's value.
func (s String) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s String) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (s String) GoString() string { return Redacted }

// LogValue implements slog.LogValuer.
func (s String) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON writes REDACTED, never the value.
func (s String) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// KeySize is the size of a Box key: AES-256.
const KeySize = 32

// Errors.
var (
	ErrBadKey      = errors.New("secret key must be 32 bytes, base64 encoded")
	ErrDecrypt     = errors.New("cannot decrypt: wrong key or corrupt data")
	ErrNoKey       = errors.New("no secret key: set BAREFLOW_SECRET_KEY or BAREFLOW_SECRET_KEY_FILE")
	errShortCipher = errors.New("ciphertext too short")
)

const (
	versionAESGCMv1  byte = 1
	sealedHeaderSize      = 1 + 12 // version byte, GCM nonce
)

// Box seals and opens secrets with AES-256-GCM. The sealed form is a version
// byte, a random 96-bit nonce and the GCM ciphertext with its tag. The
// additional data binds a ciphertext to its place (a table, a column, a row)
// so that it cannot be moved to another.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, ErrBadKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("new gcm: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext, bound to additional data ad.
func (b *Box) Seal(plaintext String, ad string) ([]byte, error) {
	out := make([]byte, sealedHeaderSize, sealedHeaderSize+len(plaintext)+b.aead.Overhead())
	out[0] = versionAESGCMv1
	if _, err := rand.Read(out[1:sealedHeaderSize]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:sealedHeaderSize], []byte(plaintext), []byte(ad)), nil
}

// Open decrypts what Seal made with the same additional data.
func (b *Box) Open(sealed []byte, ad string) (String, error) {
	if len(sealed) < sealedHeaderSize+b.aead.Overhead() {
		return "", errShortCipher
	}
	if sealed[0] != versionAESGCMv1 {
		return "", fmt.Errorf("unknown secret version %d", sealed[0])
	}
	pt, err := b.aead.Open(nil, sealed[1:sealedHeaderSize], sealed[sealedHeaderSize:], []byte(ad))
	if err != nil {
		return "", ErrDecrypt
	}
	return String(pt), nil
}

// NewKey returns a fresh random key, base64 encoded.
func NewKey() string {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return base64.StdEncoding.EncodeToString(k)
}

// ParseKey decodes a base64 key.
func ParseKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(k) != KeySize {
		return nil, ErrBadKey
	}
	return k, nil
}

// LoadKey reads the key from the value of BAREFLOW_SECRET_KEY (envKey) or,
// when that is empty, from the file named by BAREFLOW_SECRET_KEY_FILE
// (keyFile). It returns ErrNoKey when both are empty.
func LoadKey(envKey, keyFile string) ([]byte, error) {
	if envKey != "" {
		return ParseKey(envKey)
	}
	if keyFile == "" {
		return nil, ErrNoKey
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read secret key file: %w", err)
	}
	return ParseKey(string(b))
}

// EnsureKeyFile returns the key in path, creating the file with a new key and
// mode 0600 when it does not exist. `bareflow dev` keeps its key this way.
func EnsureKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return ParseKey(string(b))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read secret key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key folder: %w", err)
	}
	key := NewKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create secret key file: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write secret key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write secret key file: %w", err)
	}
	return ParseKey(key)
}
