package ramdisk

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// keyComment is the comment stored in generated private keys.
const keyComment = "bareflow"

// GenerateKey makes a new ed25519 key and returns it in OpenSSH PEM form
// ("-----BEGIN OPENSSH PRIVATE KEY-----", unencrypted) and as a signer.
func GenerateKey() (pemBytes []byte, signer ssh.Signer, err error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, keyComment)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal ed25519 key: %w", err)
	}
	signer, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("ed25519 signer: %w", err)
	}
	return pem.EncodeToMemory(block), signer, nil
}

// ParseKey parses an unencrypted private key in PEM form, as GenerateKey
// returns it (other key types x/crypto/ssh reads are accepted too).
func ParseKey(pemBytes []byte) (ssh.Signer, error) {
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("parse ssh private key: %w", err)
	}
	return signer, nil
}

// LoadOrCreateKey reads the private key at path, or, when there is no file
// there, generates one and stores it with mode 0600 (its folder is created
// with 0700 when missing). The new file appears complete or not at all: it
// is written under a temporary name and linked into place, and when another
// process created the key first, that key is loaded instead. An existing
// file that its group or others may read or write is refused.
func LoadOrCreateKey(path string) (ssh.Signer, error) {
	signer, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return signer, err
	}
	pemBytes, signer, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create ssh key folder: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create ssh key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create ssh key: %w", err)
	}
	if _, err := tmp.Write(pemBytes); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write ssh key %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write ssh key %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write ssh key %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKey(path)
		}
		return nil, fmt.Errorf("create ssh key %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return signer, nil
}

// loadKey reads and parses the private key at path after checking that only
// its owner may access it.
func loadKey(path string) (ssh.Signer, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("ssh key %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("ssh key %s has mode %04o: group or others may access it; chmod 600 it", path, uint32(perm))
	}
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	signer, err := ParseKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("ssh key %s: %w", path, err)
	}
	return signer, nil
}

// AuthorizedKey returns the public half of s as one authorized_keys line,
// without a newline, with comment appended when it is not empty (white
// space in it becomes single spaces).
func AuthorizedKey(s ssh.Signer, comment string) string {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
	if comment = strings.Join(strings.Fields(comment), " "); comment != "" {
		line += " " + comment
	}
	return line
}
