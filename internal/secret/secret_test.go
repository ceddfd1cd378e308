package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStringNeverPrints(t *testing.T) {
	s := String("hunter2")
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("login", "password", s)
	j, _ := json.Marshal(struct{ P String }{s})
	for name, out := range map[string]string{
		"fmt %v": fmt.Sprintf("%v", s), "fmt %s": fmt.Sprintf("%s", s), "fmt %#v": fmt.Sprintf("%#v", s),
		"slog": buf.String(), "json": string(j),
	} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, Redacted) {
			t.Errorf("%s: got %q, want REDACTED and no secret", name, out)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Errorf("Reveal: got %q, want hunter2", s.Reveal())
	}
}

func TestBoxSealsAndBinds(t *testing.T) {
	key, _ := ParseKey(NewKey())
	b, err := NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal("s3cret", "machines.bmc_password:1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("s3cret")) {
		t.Fatal("sealed value holds the plaintext")
	}
	again, _ := b.Seal("s3cret", "machines.bmc_password:1")
	if bytes.Equal(sealed, again) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	if got, err := b.Open(sealed, "machines.bmc_password:1"); err != nil || got.Reveal() != "s3cret" {
		t.Errorf("open: got %q, %v, want s3cret", got.Reveal(), err)
	}
	if _, err := b.Open(sealed, "machines.bmc_password:2"); !errors.Is(err, ErrDecrypt) {
		t.Errorf("open with another row's binding: got %v, want ErrDecrypt", err)
	}
	other, _ := ParseKey(NewKey())
	ob, _ := NewBox(other)
	if _, err := ob.Open(sealed, "machines.bmc_password:1"); !errors.Is(err, ErrDecrypt) {
		t.Errorf("open with another key: got %v, want ErrDecrypt", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := b.Open(tampered, "machines.bmc_password:1"); !errors.Is(err, ErrDecrypt) {
		t.Errorf("open a tampered value: got %v, want ErrDecrypt", err)
	}
	if _, err := b.Open(sealed[:5], "machines.bmc_password:1"); err == nil {
		t.Error("open a truncated value: got nil, want an error")
	}
}

func TestKeys(t *testing.T) {
	if _, err := NewBox(make([]byte, 16)); !errors.Is(err, ErrBadKey) {
		t.Errorf("16-byte key: got %v, want ErrBadKey", err)
	}
	if _, err := LoadKey("", ""); !errors.Is(err, ErrNoKey) {
		t.Errorf("no key: got %v, want ErrNoKey", err)
	}
	if _, err := LoadKey("not base64!", ""); !errors.Is(err, ErrBadKey) {
		t.Errorf("bad key: got %v, want ErrBadKey", err)
	}
	path := filepath.Join(t.TempDir(), "sub", "secret.key")
	k1, err := EnsureKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: got %v (%v), want 0600", st.Mode().Perm(), err)
	}
	k2, err := EnsureKeyFile(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Errorf("second EnsureKeyFile: got a different key (%v), want the same", err)
	}
	k3, err := LoadKey("", path)
	if err != nil || !bytes.Equal(k1, k3) {
		t.Errorf("LoadKey from the file: got a different key (%v), want the same", err)
	}
}
