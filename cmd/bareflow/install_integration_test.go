package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bareflow/contract"
	"bareflow/internal/store"
)

// TestDevInstallAndWipeRequests drives install, reinstall and wipe through
// a real `bareflow dev`, API and CLI: what is refused before the machine is
// touched (and why), and that an accepted request starts its workflow,
// which waits for the machine (it has no BMC) until canceled.
func TestDevInstallAndWipeRequests(t *testing.T) {
	o := newDevOptions(t)
	dev := startDev(t, &o)
	cli := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		getenv := func(k string) string {
			return map[string]string{"BAREFLOW_API_URL": dev.apiURL, "BAREFLOW_TOKEN": dev.token}[k]
		}
		err := run(t.Context(), args, getenv, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	sum := strings.Repeat("0f", 32)
	if out, err := cli("image", "create", "debian-12", "--url", "https://images.example.net/d12.raw.zst", "--format", "raw.zst",
		"--checksum", "sha256:"+sum, "--os", "debian", "--boot", "bios"); err != nil {
		t.Fatalf("image create: %v\n%s", err, out)
	}
	var m regMachine
	if code := dev.call(t, "POST", "/machines", dev.token, map[string]any{"name": "web-9", "pxe_mac": "52:54:00:bf:09:01"}, &m); code != http.StatusCreated {
		t.Fatalf("create machine: got %d", code)
	}
	good := map[string]any{
		"image": "debian-12",
		"os": map[string]any{"hostname": "web-9", "network": map[string]any{
			"interfaces": []map[string]any{{"name": "eth0", "addresses": []string{"192.0.2.19/24"}, "gateway": "192.0.2.1"}}}},
		"partitions": []map[string]any{{"label": "data", "size_bytes": 1 << 30, "filesystem": "xfs", "mount_point": "/srv"}},
	}
	expect := func(t *testing.T, path string, body map[string]any, status int, code string) {
		t.Helper()
		var e apiErr
		got := dev.call(t, "POST", "/machines/"+m.ID+path, dev.token, body, &e)
		if got != status || e.Error.Code != code {
			t.Errorf("POST %s: got %d %q (%s), want %d %q", path, got, e.Error.Code, e.Error.Message, status, code)
		} else {
			t.Logf("POST %s refused: %s", path, e.Error.Message)
		}
	}
	t.Run("an enrolled machine is not installed", func(t *testing.T) {
		expect(t, "/install", good, http.StatusConflict, "machine_not_registered")
	})

	// As if registered.
	setState(t, o, m.ID, contract.MachineReady)
	with := func(k string, v any) map[string]any {
		b := map[string]any{}
		for kk, vv := range good {
			b[kk] = vv
		}
		b[k] = v
		return b
	}
	t.Run("refusals", func(t *testing.T) {
		expect(t, "/install", with("image", "nope"), http.StatusBadRequest, "invalid_request")
		expect(t, "/install", with("os", map[string]any{"hostname": "bad_name!"}), http.StatusBadRequest, "invalid_request")
		expect(t, "/install", with("os", map[string]any{"hostname": "h", "root_password_hash": "plain"}), http.StatusBadRequest, "invalid_request")
		expect(t, "/install", with("os", map[string]any{"hostname": "h", "network": map[string]any{
			"bonds": []map[string]any{{"name": "bond0", "members": []string{"eth0"}, "mode": "9"}}}}), http.StatusBadRequest, "invalid_request")
		expect(t, "/install", with("partitions", []map[string]any{{"label": "x", "size_bytes": 1 << 20, "filesystem": "ntfs"}}),
			http.StatusBadRequest, "invalid_request")
		expect(t, "/install", with("root_disk", map[string]any{"path": "/etc/passwd"}), http.StatusBadRequest, "invalid_request")
		expect(t, "/install", with("keep", []string{"data"}), http.StatusBadRequest, "invalid_request")
		expect(t, "/reinstall", good, http.StatusConflict, "machine_not_running")
		expect(t, "/wipe", map[string]any{}, http.StatusBadRequest, "confirmation_required")
		expect(t, "/wipe", map[string]any{"confirm": "web-8"}, http.StatusBadRequest, "confirmation_required")
		expect(t, "/wipe", map[string]any{"confirm": "web-9", "erase": "shred"}, http.StatusBadRequest, "invalid_request")
	})
	t.Run("reinstall keeping a partition needs the image's size", func(t *testing.T) {
		setState(t, o, m.ID, contract.MachineRunning)
		expect(t, "/reinstall", with("keep", []string{"data"}), http.StatusBadRequest, "invalid_request")
		setState(t, o, m.ID, contract.MachineReady)
	})

	// Accepted requests start their workflow: without a BMC it waits for
	// someone to power the machine on.
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"install", []string{"machine", "install", "web-9", "-f", writeJSONFile(t, good), "--wait=false"}},
		{"wipe", []string{"machine", "wipe", "web-9", "--confirm", "web-9", "--erase", "auto", "--wait=false"}},
	} {
		t.Run(tc.name+" starts", func(t *testing.T) {
			out, err := cli(tc.args...)
			if err != nil {
				t.Fatalf("%s: %v\n%s", tc.name, err, out)
			}
			id := strings.Fields(strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "operation "))[0]
			op := dev.waitOperation(t, id, "waiting_for_power_on", time.Minute)
			if op.Step != "waiting_for_power_on" || op.Kind != tc.name {
				t.Fatalf("%s operation: got %s %s at step %q (%+v), want %s waiting for power on", tc.name, op.Kind, op.State, op.Step, op.Error, tc.name)
			}
			// A second operation on the busy machine is refused.
			var e apiErr
			if code := dev.call(t, "POST", "/machines/"+m.ID+"/wipe", dev.token, map[string]any{"confirm": "web-9"}, &e); code != http.StatusConflict {
				t.Errorf("wipe while %s runs: got %d %q, want 409", tc.name, code, e.Error.Code)
			}
			dev.call(t, "POST", "/operations/"+id+"/cancel", dev.token, nil, nil)
			op = waitEnded(t, dev, id, time.Minute)
			if op.State != "canceled" {
				t.Errorf("%s after cancel: got %s", tc.name, op.State)
			}
			var got regMachine
			dev.call(t, "GET", "/machines/"+m.ID, dev.token, nil, &got)
			if got.State != "error" {
				t.Errorf("machine after a canceled %s: got %q, want error (the state says it was left half-done)", tc.name, got.State)
			}
			setState(t, o, m.ID, contract.MachineReady)
		})
	}
}

// setState sets a machine's state in the dev's database.
func setState(t *testing.T, o devOptions, machineID string, state contract.MachineState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, o.dsn, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SetMachineState(ctx, machineID, state); err != nil {
		t.Fatal(err)
	}
}

func writeJSONFile(t *testing.T, v any) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "request.json")
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
