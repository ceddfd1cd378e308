package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"bareflow/contract"
)

// fleetResult is the part of a fleet's JSON the test reads.
type fleetResult struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	Counts struct {
		Total    int `json:"total"`
		Waiting  int `json:"waiting"`
		Running  int `json:"running"`
		Done     int `json:"done"`
		Failed   int `json:"failed"`
		Canceled int `json:"canceled"`
		Skipped  int `json:"skipped"`
	} `json:"counts"`
	Machines []struct {
		Name        string `json:"name"`
		Group       string `json:"group"`
		State       string `json:"state"`
		OperationID string `json:"operation_id"`
		Error       *struct {
			Code string `json:"code"`
		} `json:"error"`
	} `json:"machines"`
}

// waitFleetUntil polls a fleet until done says so.
func waitFleetUntil(t *testing.T, dev *devProcess, id string, timeout time.Duration, done func(fleetResult) bool) fleetResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var f fleetResult
	for time.Now().Before(deadline) {
		if code := dev.call(t, "GET", "/fleets/"+id, dev.token, nil, &f); code != http.StatusOK {
			t.Fatalf("GET fleet %s: got %d, want 200", id, code)
		}
		if done(f) {
			return f
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("fleet %s: still %s %+v after %s", id, f.State, f.Counts, timeout)
	return f
}

func fleetEnded(f fleetResult) bool { return contract.FleetState(f.State).Final() }

// TestDevFleet drives fleets through a real `bareflow dev`, API and CLI:
// what a start request is refused for; a power fleet over machines without
// a BMC, whose operations fail at once with BMCNotConfigured and exhaust the
// failure budget for real; and a wipe fleet that waits for its machines
// (no BMC to boot them) while it is paused, resumed and canceled, with a
// busy machine refused to another fleet.
func TestDevFleet(t *testing.T) {
	o := newDevOptions(t)
	dev := startDev(t, &o)
	cli := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		getenv := func(k string) string {
			return map[string]string{"BAREFLOW_API_URL": dev.apiURL, "BAREFLOW_TOKEN": dev.token}[k]
		}
		err := runFleet(t.Context(), args, loadEnv(getenv), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	ids := map[string]string{}
	for i, name := range []string{"fl-a", "fl-b", "fl-c", "fl-d"} {
		var m apiMachine
		body := map[string]any{"name": name, "labels": map[string]string{"rack": []string{"r1", "r2"}[i%2], "pool": "fleet-test"}}
		if code := dev.call(t, "POST", "/machines", dev.token, body, &m); code != http.StatusCreated {
			t.Fatalf("create machine %s: got %d", name, code)
		}
		ids[name] = m.ID
	}

	t.Run("refusals", func(t *testing.T) {
		power := map[string]any{"action": "cycle"}
		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"no machines", map[string]any{"op": "power", "power": power}, 400, "invalid_request"},
			{"ids and filter", map[string]any{"op": "power", "power": power, "ids": []string{"fl-a"}, "filter": map[string]any{}}, 400, "invalid_request"},
			{"unknown op", map[string]any{"op": "reboot", "ids": []string{"fl-a"}}, 400, "invalid_request"},
			{"unknown machine", map[string]any{"op": "power", "power": power, "ids": []string{"fl-a", "nope"}}, 400, "invalid_request"},
			{"a machine twice", map[string]any{"op": "power", "power": power, "ids": []string{"fl-a", ids["fl-a"]}}, 400, "invalid_request"},
			{"no power template", map[string]any{"op": "power", "ids": []string{"fl-a"}}, 400, "invalid_request"},
			{"bad action", map[string]any{"op": "power", "power": map[string]any{"action": "explode"}, "ids": []string{"fl-a"}}, 400, "invalid_request"},
			{"no machine matches", map[string]any{"op": "power", "power": power, "filter": map[string]any{"labels": map[string]string{"pool": "none"}}}, 400, "invalid_request"},
			{"bad filter state", map[string]any{"op": "power", "power": power, "filter": map[string]any{"state": "asleep"}}, 400, "invalid_request"},
			{"more canaries than machines", map[string]any{"op": "power", "power": power, "ids": []string{"fl-a"}, "canaries": 2}, 400, "invalid_request"},
			{"group limit without group", map[string]any{"op": "power", "power": power, "ids": []string{"fl-a"}, "group_limit": 1}, 400, "invalid_request"},
			{"bad group", map[string]any{"op": "power", "power": power, "ids": []string{"fl-a"}, "group_by": "rack"}, 400, "invalid_request"},
			{"wipe without confirmation", map[string]any{"op": "wipe", "ids": []string{"fl-a", "fl-b"}, "confirm": "wipe 3 machines"}, 400, "confirmation_required"},
			{"wipe of unregistered machines", map[string]any{"op": "wipe", "ids": []string{"fl-a", "fl-b"}, "confirm": "wipe 2 machines"}, 409, "machine_not_registered"},
			{"install without host name pattern", map[string]any{"op": "install", "ids": []string{"fl-a", "fl-b"}, "install": map[string]any{"image": "x"}}, 400, "invalid_request"},
			{"unknown field", map[string]any{"op": "power", "power": power, "ids": []string{"fl-a"}, "concurency": 3}, 400, "invalid_request"},
		} {
			var e apiErr
			got := dev.call(t, "POST", "/fleets", dev.token, tc.body, &e)
			if got != tc.status || e.Error.Code != tc.code {
				t.Errorf("%s: got %d %q (%s), want %d %q", tc.name, got, e.Error.Code, e.Error.Message, tc.status, tc.code)
			} else {
				t.Logf("%s: %s", tc.name, e.Error.Message)
			}
		}
		var e apiErr
		if code := dev.call(t, "GET", "/fleets/"+uuid.NewString(), dev.token, nil, &e); code != http.StatusNotFound {
			t.Errorf("GET an unknown fleet: got %d %q, want 404", code, e.Error.Code)
		}
		if code := dev.call(t, "POST", "/fleets/"+uuid.NewString()+"/pause", dev.token, nil, &e); code != http.StatusNotFound {
			t.Errorf("pause an unknown fleet: got %d %q, want 404", code, e.Error.Code)
		}
	})

	t.Run("power without BMCs exhausts the failure budget", func(t *testing.T) {
		out, err := cli("start", "--op", "power", "--action", "cycle", "--filter", "label.pool=fleet-test",
			"--concurrency", "1", "--failure-budget", "1", "--group-by", "label:rack", "--group-limit", "1")
		if err != nil {
			t.Fatalf("fleet start: %v\n%s", err, out)
		}
		id := strings.Fields(strings.TrimPrefix(out, "fleet "))[0]
		f := waitFleetUntil(t, dev, id, 2*time.Minute, fleetEnded)
		c := f.Counts
		if f.State != "failed" || c.Failed != 2 || c.Skipped != 2 || c.Done != 0 || c.Total != 4 {
			t.Fatalf("fleet: got %s %+v (%s), want failed: 2 failed, 2 not started", f.State, c, f.Reason)
		}
		if !strings.Contains(f.Reason, "failure budget exceeded") {
			t.Errorf("reason: got %q", f.Reason)
		}
		for _, m := range f.Machines[:2] {
			if m.State != "failed" || m.Error == nil || m.Error.Code != contract.ErrBMCNotConfigured || m.OperationID == "" {
				t.Errorf("machine %s: got %+v, want failed with BMCNotConfigured and its operation", m.Name, m)
			}
			if m.Group == "" {
				t.Errorf("machine %s: no group, want its rack label", m.Name)
			}
		}
		var op apiOperation
		if code := dev.call(t, "GET", "/operations/"+f.Machines[0].OperationID, dev.token, nil, &op); code != http.StatusOK || op.Kind != "power" || op.State != "failed" {
			t.Errorf("the first machine's operation: got %d %+v, want a failed power operation", code, op)
		}
		out, err = cli("show", id)
		if err != nil || !strings.Contains(out, "BMCNotConfigured") || !strings.Contains(out, "skipped") {
			t.Errorf("fleet show: got %v\n%s", err, out)
		}
		var e apiErr
		if code := dev.call(t, "POST", "/fleets/"+id+"/pause", dev.token, nil, &e); code != http.StatusConflict {
			t.Errorf("pause an ended fleet: got %d %q, want 409", code, e.Error.Code)
		} else {
			t.Logf("pause an ended fleet: %s: %s", e.Error.Code, e.Error.Message)
		}
	})

	t.Run("wipe fleet paused, resumed and canceled", func(t *testing.T) {
		setState(t, o, ids["fl-c"], contract.MachineReady)
		setState(t, o, ids["fl-d"], contract.MachineReady)
		var f fleetResult
		body := map[string]any{"op": "wipe", "ids": []string{"fl-c", "fl-d"}, "confirm": "wipe 2 machines", "concurrency": 1}
		if code := dev.call(t, "POST", "/fleets", dev.token, body, &f); code != http.StatusAccepted || f.Counts.Waiting != 2 {
			t.Fatalf("start wipe fleet: got %d %+v", code, f)
		}
		id := f.ID
		// Without a BMC the first machine's wipe waits for someone to power
		// it on: it stays running.
		f = waitFleetUntil(t, dev, id, time.Minute, func(f fleetResult) bool { return f.Counts.Running == 1 && f.Machines[0].OperationID != "" })
		// The child's run ID is its operation's ID; the record appears when
		// the child's first activity runs.
		waitOperationRecorded(t, dev, f.Machines[0].OperationID, time.Minute)
		dev.waitOperation(t, f.Machines[0].OperationID, "waiting_for_power_on", time.Minute)

		// Another fleet finds the machine busy.
		var busy fleetResult
		if code := dev.call(t, "POST", "/fleets", dev.token, map[string]any{"op": "power", "power": map[string]any{"action": "on"},
			"ids": []string{"fl-c"}}, &busy); code != http.StatusAccepted {
			t.Fatalf("start power fleet: got %d", code)
		}
		busy = waitFleetUntil(t, dev, busy.ID, time.Minute, fleetEnded)
		if m := busy.Machines[0]; busy.State != "failed" || m.Error == nil || m.Error.Code != contract.ErrMachineBusy {
			t.Errorf("fleet over a busy machine: got %s %+v, want failed with MachineBusy", busy.State, busy.Machines)
		}

		for _, step := range []struct{ action, want string }{{"pause", "paused"}, {"pause", "paused"}, {"resume", "running"}, {"pause", "paused"}, {"cancel", "canceling"}} {
			var got fleetResult
			code := dev.call(t, "POST", "/fleets/"+id+"/"+step.action, dev.token, nil, &got)
			if code != http.StatusOK || (got.State != step.want && !(step.action == "cancel" && got.State == "canceled")) {
				t.Fatalf("%s: got %d %s, want 200 %s", step.action, code, got.State, step.want)
			}
		}
		f = waitFleetUntil(t, dev, id, 2*time.Minute, fleetEnded)
		if c := f.Counts; f.State != "canceled" || c.Canceled != 1 || c.Skipped != 1 {
			t.Errorf("after cancel: got %s %+v, want canceled: 1 canceled, 1 not started", f.State, c)
		}
		var op apiOperation
		dev.call(t, "GET", "/operations/"+f.Machines[0].OperationID, dev.token, nil, &op)
		if op.State != "canceled" {
			t.Errorf("the canceled machine's wipe: got %s, want canceled", op.State)
		}
		var e apiErr
		if code := dev.call(t, "POST", "/fleets/"+id+"/resume", dev.token, nil, &e); code != http.StatusConflict {
			t.Errorf("resume a canceled fleet: got %d %q, want 409", code, e.Error.Code)
		}
	})
}

// waitOperationRecorded waits until the API knows the operation.
func waitOperationRecorded(t *testing.T, dev *devProcess, id string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(200 * time.Millisecond) {
		code := dev.call(t, "GET", "/operations/"+id, dev.token, nil, nil)
		if code == http.StatusOK {
			return
		}
		if code != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("get operation %s: got %d, want 200 within %s", id, code, timeout)
		}
	}
}
