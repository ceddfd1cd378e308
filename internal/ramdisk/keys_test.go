package ramdisk

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "id_ed25519")
	first, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKey: %v", err)
	}
	if first.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type: got %s, want %s", first.PublicKey().Type(), ssh.KeyAlgoED25519)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode: got %v, want 0600", info.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("file does not start with an OpenSSH PEM header: %.40q", data)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the key", len(entries))
	}

	second, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("second LoadOrCreateKey: %v", err)
	}
	if !bytes.Equal(first.PublicKey().Marshal(), second.PublicKey().Marshal()) {
		t.Error("second LoadOrCreateKey returned another key")
	}

	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOrCreateKey(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "0640") {
		t.Errorf("LoadOrCreateKey of a 0640 file: got %v, want an error naming the path and mode", err)
	}
}

func TestGenerateParseKey(t *testing.T) {
	pemBytes, signer, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseKey(pemBytes)
	if err != nil {
		t.Fatalf("ParseKey: %v", err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), parsed.PublicKey().Marshal()) {
		t.Error("ParseKey returned another key")
	}
	if _, err := ParseKey([]byte("not a key")); err == nil {
		t.Error("ParseKey of garbage: got no error")
	}

	line := AuthorizedKey(signer, "bareflow  worker\n1")
	key, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	if comment != "bareflow worker 1" {
		t.Errorf("comment: got %q, want %q", comment, "bareflow worker 1")
	}
	if !bytes.Equal(key.Marshal(), signer.PublicKey().Marshal()) {
		t.Error("AuthorizedKey holds another key")
	}
	if strings.ContainsAny(AuthorizedKey(signer, ""), "\n") || strings.HasSuffix(AuthorizedKey(signer, ""), " ") {
		t.Error("AuthorizedKey without comment has a newline or trailing space")
	}
}

func TestQuote(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"empty":        {"", "''"},
		"plain":        {"/dev/sda1", "/dev/sda1"},
		"space":        {"a b", "'a b'"},
		"single quote": {"it's", `'it'\''s'`},
		"equals":       {"a=b", "'a=b'"},
		"tilde":        {"~root", "'~root'"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Quote(tt.in); got != tt.want {
				t.Errorf("Quote(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	// Whatever the input, dash and bash read back exactly it.
	inputs := []string{"", "plain", "a b", "it's", `"double"`, "$HOME", "$(id)", "`id`", "a\nb", "\\", "*", "-n", "'", "''", "é ü", "a;b&c|d>e<f", "!x", "#c"}
	for _, shell := range []string{"/bin/sh", "/bin/bash"} {
		if _, err := os.Stat(shell); err != nil {
			continue
		}
		for _, in := range inputs {
			out, err := exec.Command(shell, "-c", "printf '%s' "+Quote(in)).Output()
			if err != nil {
				t.Errorf("%s with %q: %v", shell, in, err)
				continue
			}
			if string(out) != in {
				t.Errorf("%s: Quote(%q) read back as %q", shell, in, out)
			}
		}
	}
}
