package boot

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"bareflow/contract"
	"bareflow/internal/store"
)

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
	}
}

func TestScriptsGolden(t *testing.T) {
	tests := map[string][]byte{
		"ramdisk.ipxe.golden": render(ramdiskScript, ramdiskData{
			Name: "web-1", MachineID: "3f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5b", Base: "http://203.0.113.5:8081",
			Kernel: "vmlinuz", Initrd: "initrd.img", Token: "bfb_TOKEN",
			SSHKey: sshKeyArg("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderKeyForTheGoldenFile bareflow"),
			Args:   "console=ttyS0,115200",
		}),
		"ramdisk-minimal.ipxe.golden": render(ramdiskScript, ramdiskData{
			Name: "web-2", MachineID: "3f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5c", Base: "http://203.0.113.5:8081",
			Kernel: "vmlinuz", Initrd: "initrd.img", Token: "bfb_TOKEN",
		}),
		"local.ipxe.golden":   render(localScript, localData{Reason: "no boot work for web-1"}),
		"unknown.ipxe.golden": render(localScript, localData{Reason: "unknown machine 02:42:bf:00:00:01"}),
	}
	for name, got := range tests {
		t.Run(name, func(t *testing.T) { golden(t, name, got) })
	}
}

func hostKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

var tokenArg = regexp.MustCompile(`bareflow\.token=(\S+)`)

// httpEnv is HTTP boot on a test server with two machines.
type httpEnv struct {
	*testEnv
	srv        *httptest.Server
	web1, web2 store.Machine
}

func newHTTPEnv(t *testing.T, cfg Config) *httpEnv {
	t.Helper()
	dir := t.TempDir()
	kernel := bytes.Repeat([]byte("0123456789"), 1000)
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "initrd.img"), []byte("initrd"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.RamdiskDir = dir
	e := &httpEnv{testEnv: newTestEnv(t, cfg)}
	e.startEvents(t)
	ctx := testCtx(t)
	var err error
	if e.web1, err = e.st.CreateMachine(ctx, store.MachineCreate{Name: "web-1", PXEMAC: mac(1)}); err != nil {
		t.Fatal(err)
	}
	if e.web2, err = e.st.CreateMachine(ctx, store.MachineCreate{Name: "web-2", PXEMAC: mac(2)}); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.svc.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *httpEnv) get(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (e *httpEnv) phoneHome(t *testing.T, body any) (int, string) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case []byte:
		raw = b
	default:
		raw, _ = json.Marshal(b)
	}
	resp, err := e.srv.Client().Post(e.srv.URL+"/boot/v1/phone-home", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rampUp sets a ramdisk boot intent for m and returns the token of its
// script.
func (e *httpEnv) rampUp(t *testing.T, m store.Machine) string {
	t.Helper()
	_, err := e.st.SetBootIntent(testCtx(t), store.BootIntent{MachineID: m.ID, Purpose: store.BootPurposeRamdisk,
		WorkflowID: contract.MachineWorkflowID(m.ID), ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := e.get(t, "/boot/v1/ipxe/"+m.PXEMAC.String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("script: got %d, want 200", resp.StatusCode)
	}
	tm := tokenArg.FindSubmatch(body)
	if tm == nil {
		t.Fatalf("script has no token:\n%s", body)
	}
	return string(tm[1])
}

func TestHTTPScripts(t *testing.T) {
	t.Parallel()
	e := newHTTPEnv(t, Config{KernelArgs: "console=ttyS0,115200",
		SSHAuthorizedKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderKeyForTheGoldenFile bareflow"})

	resp, body := e.get(t, "/boot/v1/ipxe/"+mac(1).String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d, want 200", resp.StatusCode)
	}
	golden(t, "local.ipxe.golden", body)

	_, body = e.get(t, "/boot/v1/ipxe/"+mac(77).String())
	golden(t, "unknown-http.ipxe.golden", body)

	if resp, _ := e.get(t, "/boot/v1/ipxe/not-a-mac"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad MAC: got %d, want 400", resp.StatusCode)
	}

	tok := e.rampUp(t, e.web1)
	if !strings.HasPrefix(tok, store.BootTokenPrefix) {
		t.Errorf("token %q: want prefix %s", tok, store.BootTokenPrefix)
	}
	_, body = e.get(t, "/boot/v1/ipxe/"+mac(1).String())
	// Each rendering mints a new token; the golden file has placeholders.
	normal := tokenArg.ReplaceAll(body, []byte("bareflow.token=bfb_TOKEN"))
	normal = bytes.ReplaceAll(normal, []byte(e.web1.ID), []byte("3f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"))
	golden(t, "ramdisk.ipxe.golden", normal)

	// Script fetches are boot events.
	waitFor(t, 5*time.Second, "a script boot event", func() bool {
		for _, c := range e.sig.snapshot() {
			if ev, ok := c.Arg.(contract.BootEvent); ok && ev.Kind == contract.BootEventScript && ev.MachineID == e.web1.ID {
				return true
			}
		}
		return false
	})
}

func TestHTTPFilesRange(t *testing.T) {
	t.Parallel()
	e := newHTTPEnv(t, Config{})
	resp, body := e.get(t, "/boot/v1/files/vmlinuz", "Range", "bytes=10-19")
	if resp.StatusCode != http.StatusPartialContent || string(body) != "0123456789" {
		t.Fatalf("range: got %d %q, want 206 %q", resp.StatusCode, body, "0123456789")
	}
	if resp, body := e.get(t, "/boot/v1/files/initrd.img"); resp.StatusCode != http.StatusOK || string(body) != "initrd" {
		t.Fatalf("initrd: got %d %q", resp.StatusCode, body)
	}
	for _, p := range []string{"/boot/v1/files/..%2f..%2fetc%2fpasswd", "/boot/v1/files/missing", "/boot/v1/files/%2e%2e"} {
		if resp, _ := e.get(t, p); resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: got %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestPhoneHome(t *testing.T) {
	t.Parallel()
	e := newHTTPEnv(t, Config{})
	key := hostKey(t)
	body := func(machineID, token string) map[string]any {
		return map[string]any{"machine_id": machineID, "token": token, "addr": "203.0.113.40",
			"macs": []string{mac(1).String(), "02:42:bf:00:00:99"}, "ssh_host_key": key}
	}

	tok := e.rampUp(t, e.web1)
	t.Run("wrong machine", func(t *testing.T) {
		if code, msg := e.phoneHome(t, body(e.web2.ID, tok)); code != http.StatusForbidden {
			t.Fatalf("got %d %s, want 403", code, msg)
		}
	})
	t.Run("forged", func(t *testing.T) {
		forged := store.BootTokenPrefix + strings.Repeat("a", len(tok)-len(store.BootTokenPrefix))
		if code, msg := e.phoneHome(t, body(e.web1.ID, forged)); code != http.StatusForbidden {
			t.Fatalf("got %d %s, want 403", code, msg)
		}
	})
	t.Run("Temporal down keeps the token", func(t *testing.T) {
		e.sig.mu.Lock()
		e.sig.fail = errors.New("unavailable")
		e.sig.mu.Unlock()
		code, msg := e.phoneHome(t, body(e.web1.ID, tok))
		e.sig.mu.Lock()
		e.sig.fail = nil
		e.sig.mu.Unlock()
		if code != http.StatusServiceUnavailable {
			t.Fatalf("got %d %s, want 503", code, msg)
		}
		// The phone-home is on record although the signal failed: a
		// waiting workflow polls for it.
		rs, err := e.st.GetRamdiskSession(testCtx(t), e.web1.ID)
		if err != nil || rs.Addr.String() != "203.0.113.40" || rs.SSHHostKey != key || rs.WorkflowID != contract.MachineWorkflowID(e.web1.ID) {
			t.Errorf("phone-home record: got %+v, %v, want 203.0.113.40 with the host key", rs, err)
		}
	})
	t.Run("good", func(t *testing.T) {
		if code, msg := e.phoneHome(t, body(e.web1.ID, tok)); code != http.StatusOK {
			t.Fatalf("got %d %s, want 200", code, msg)
		}
		var ready *contract.RamdiskReady
		for _, c := range e.sig.snapshot() {
			if r, ok := c.Arg.(contract.RamdiskReady); ok && c.Signal == contract.SignalRamdiskReady && c.WorkflowID == contract.MachineWorkflowID(e.web1.ID) {
				ready = &r
			}
		}
		if ready == nil {
			t.Fatalf("no %s signal on %s", contract.SignalRamdiskReady, contract.MachineWorkflowID(e.web1.ID))
		}
		if ready.MachineID != e.web1.ID || ready.Addr != "203.0.113.40" || ready.SSHHostKey != key || len(ready.MACs) != 2 {
			t.Errorf("got %+v, want machine %s at 203.0.113.40 with its host key and 2 MACs", ready, e.web1.ID)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		if code, msg := e.phoneHome(t, body(e.web1.ID, tok)); code != http.StatusForbidden {
			t.Fatalf("got %d %s, want 403", code, msg)
		}
	})
	t.Run("expired", func(t *testing.T) {
		short, _, err := e.st.CreateBootToken(testCtx(t), e.web2.ID, contract.MachineWorkflowID(e.web2.ID), 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if code, msg := e.phoneHome(t, body(e.web2.ID, short)); code != http.StatusForbidden {
			t.Fatalf("got %d %s, want 403", code, msg)
		}
	})
	bad := map[string][]byte{
		"not JSON":      []byte("token=x"),
		"unknown field": []byte(`{"machine_id":"` + e.web1.ID + `","token":"x","ssh_host_key":"` + key + `","extra":1}`),
		"bad key":       []byte(`{"machine_id":"` + e.web1.ID + `","token":"x","ssh_host_key":"ssh-rsa AAAA"}`),
		"bad MAC":       []byte(`{"machine_id":"` + e.web1.ID + `","token":"x","macs":["zz"],"ssh_host_key":"` + key + `"}`),
		"bad SSH port":  []byte(`{"machine_id":"` + e.web1.ID + `","token":"x","ssh_port":70000,"ssh_host_key":"` + key + `"}`),
		"too big":       append([]byte(`{"machine_id":"`+e.web1.ID+`","token":"`), bytes.Repeat([]byte("a"), 70<<10)...),
	}
	for name, raw := range bad {
		t.Run("bad body "+name, func(t *testing.T) {
			if code, msg := e.phoneHome(t, raw); code != http.StatusBadRequest {
				t.Fatalf("got %d %s, want 400", code, msg)
			}
		})
	}

	resp, metrics := e.get(t, "/metrics")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(metrics, []byte(`bareflow_boot_http_requests_total{endpoint="phone_home",outcome="forbidden"} 4`)) {
		t.Errorf("metrics: got %d\n%s\nwant 4 forbidden phone-homes counted", resp.StatusCode, metrics)
	}
}
