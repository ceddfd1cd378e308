package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"bareflow/contract"
	"bareflow/internal/lab/ipmisim"
	"bareflow/internal/store/storetest"
)

var updateHistories = flag.Bool("update-histories", false, "write the histories of the runs in TestDevPowerThroughAPI to workflows/testdata/histories")

// exportHistory writes the history of a finished run as JSON for the replay
// tests of package workflows, when -update-histories is set.
func exportHistory(t *testing.T, o devOptions, op apiOperation, name string) {
	t.Helper()
	if !*updateHistories {
		return
	}
	c, err := client.Dial(client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", o.temporalPort)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	it := c.GetWorkflowHistory(context.Background(), op.WorkflowID, op.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "workflows", "testdata", "histories", name+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d events)", path, len(h.Events))
}

// The test binary doubles as the bareflow binary: with this variable set it
// runs main, so the tests can start `bareflow dev` as a real process and kill
// it.
const execMainEnv = "BAREFLOW_TEST_EXEC_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(execMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// devProcess is a `bareflow dev` process started by a test.
type devProcess struct {
	cmd     *exec.Cmd
	apiURL  string
	client  *http.Client
	token   string
	done    chan struct{}
	mu      sync.Mutex
	output  strings.Builder
	stopped bool
}

type devOptions struct {
	dataDir, dsn          string
	apiPort, temporalPort int
	bootPort              int
	extraEnv              []string
	// extraArgs are flags of `bareflow dev` beyond those startDev gives.
	extraArgs []string
	// netns, when set, runs the process inside that network namespace
	// (ip netns exec), and client is then an HTTP client that reaches its
	// API there.
	netns  string
	client *http.Client
}

// freePort picks a free port below the kernel's ephemeral range, so that
// no outgoing connection takes it before bareflow dev binds it.
func freePort(t *testing.T) int {
	t.Helper()
	for range 64 {
		p := 20000 + rand.IntN(12768)
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return p
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newDevOptions(t *testing.T) devOptions {
	return devOptions{dataDir: t.TempDir(), dsn: storetest.DSN(t), apiPort: freePort(t), temporalPort: freePort(t), bootPort: freePort(t)}
}

// startDev starts `bareflow dev` and waits until it says it is up. Ports
// picked free a moment earlier can be taken meanwhile (by another process's
// outgoing connection, say): a start that fails on a port in use is tried
// again on fresh ports, which are written back to o.
func startDev(t *testing.T, o *devOptions) *devProcess {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, clash := startDevOnce(t, *o)
		if !clash {
			return p
		}
		if attempt == 3 {
			t.Fatalf("bareflow dev found its ports in use 3 times:\n%s", p.log())
		}
		t.Logf("bareflow dev: a port was taken; trying again on other ports")
		o.apiPort, o.temporalPort, o.bootPort = freePort(t), freePort(t), freePort(t)
	}
}

// startDevOnce starts `bareflow dev` once; clash is true when it exited
// because a port it was given was in use.
func startDevOnce(t *testing.T, o devOptions) (p *devProcess, clash bool) {
	t.Helper()
	argv := []string{os.Args[0], "dev", "--headless",
		"--data-dir", o.dataDir, "--database-url", o.dsn,
		"--api-addr", fmt.Sprintf("127.0.0.1:%d", o.apiPort),
		"--temporal-addr", fmt.Sprintf("127.0.0.1:%d", o.temporalPort)}
	argv = append(argv, o.extraArgs...)
	if o.netns != "" {
		// ip execs the binary under its own PID.
		argv = append([]string{"ip", "netns", "exec", o.netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), execMainEnv+"=1", "BAREFLOW_POWER_SYNC_INTERVAL=0", "BAREFLOW_BMC_TIMEOUT=1s", "BAREFLOW_LOG_LEVEL=warn")
	// Later entries win: extraEnv may turn the power sync on.
	cmd.Env = append(cmd.Env, fmt.Sprintf("BAREFLOW_BOOT_HTTP_ADDR=127.0.0.1:%d", o.bootPort))
	cmd.Env = append(cmd.Env, o.extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p = &devProcess{cmd: cmd, apiURL: fmt.Sprintf("http://127.0.0.1:%d", o.apiPort), client: o.client, done: make(chan struct{})}
	if p.client == nil {
		p.client = http.DefaultClient
	}
	cmd.Stderr = &lockedWriter{p: p}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.write(line + "\n")
			if strings.Contains(line, "is up in") {
				close(up)
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("bareflow dev output:\n%s", p.log())
		}
	})
	select {
	case <-up:
	case <-p.done:
		if strings.Contains(p.log(), "address already in use") {
			return p, true
		}
		t.Fatalf("bareflow dev exited before it was up:\n%s", p.log())
	case <-time.After(90 * time.Second):
		t.Fatalf("bareflow dev not up after 90s:\n%s", p.log())
	}
	tok, err := os.ReadFile(filepath.Join(o.dataDir, tokenFileName))
	if err != nil {
		t.Fatalf("read API token: %v", err)
	}
	p.token = strings.TrimSpace(string(tok))
	return p, false
}

type lockedWriter struct{ p *devProcess }

func (w *lockedWriter) Write(b []byte) (int, error) { w.p.write(string(b)); return len(b), nil }

func (p *devProcess) write(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.output.Len() < 1<<20 {
		p.output.WriteString(s)
	}
}

func (p *devProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// kill sends sig to the process group and waits for the process to end.
func (p *devProcess) kill(sig syscall.Signal) {
	p.mu.Lock()
	stopped := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if stopped {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// call sends an API request and decodes the answer into out; it returns the
// HTTP status.
func (p *devProcess) call(t *testing.T, method, path, token string, in, out any) int {
	t.Helper()
	code, err := p.try(method, path, token, in, out)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return code
}

// try is call without the test: a transport error is returned, for a
// caller that rides out a restart to retry.
func (p *devProcess) try(method, path, token string, in, out any) (int, error) {
	body := []byte{}
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, err
		}
	}
	req, err := http.NewRequest(method, p.apiURL+"/api/v1"+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %q: %w", data, err)
		}
	}
	return resp.StatusCode, nil
}

type apiMachine struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PowerState string `json:"power_state"`
	LastError  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"last_error"`
}

type apiOperation struct {
	ID       string  `json:"id"`
	Kind     string  `json:"kind"`
	State    string  `json:"state"`
	Step     string  `json:"step"`
	Progress float64 `json:"progress"`
	Error    *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

type apiErr struct {
	Error struct {
		Code      string        `json:"code"`
		Message   string        `json:"message"`
		Operation *apiOperation `json:"operation"`
	} `json:"error"`
}

func (p *devProcess) createMachine(t *testing.T, name string, sim *ipmisim.Sim, password string) apiMachine {
	t.Helper()
	var m apiMachine
	body := map[string]any{"name": name, "bmc": map[string]any{"address": sim.Addr().String(), "user": sim.User, "password": password}}
	if code := p.call(t, "POST", "/machines", p.token, body, &m); code != http.StatusCreated {
		t.Fatalf("create machine: got status %d, want 201", code)
	}
	return m
}

func (p *devProcess) power(t *testing.T, machine string, body map[string]any) apiOperation {
	t.Helper()
	var op apiOperation
	if code := p.call(t, "POST", "/machines/"+machine+"/power", p.token, body, &op); code != http.StatusAccepted {
		t.Fatalf("power %v: got status %d, want 202", body, code)
	}
	return op
}

// waitOperation polls an operation until it ends or until it reaches
// untilStep, and returns it.
func (p *devProcess) waitOperation(t *testing.T, id, untilStep string, timeout time.Duration) apiOperation {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var op apiOperation
	for time.Now().Before(deadline) {
		if code := p.call(t, "GET", "/operations/"+id, p.token, nil, &op); code != http.StatusOK {
			t.Fatalf("get operation: got status %d, want 200", code)
		}
		if untilStep != "" && op.Step == untilStep {
			return op
		}
		if contract.OperationState(op.State).Final() {
			return op
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("operation %s not done after %s: state %s step %s", id, timeout, op.State, op.Step)
	return op
}

func requireSucceeded(t *testing.T, op apiOperation) {
	t.Helper()
	if op.State != "succeeded" {
		t.Fatalf("operation %s: got state %s (error %+v), want succeeded", op.ID, op.State, op.Error)
	}
}

// ipmitoolPower asks the simulated BMC with ipmitool, independently of
// bareflow's own IPMI client.
func ipmitoolPower(t *testing.T, sim *ipmisim.Sim) string {
	t.Helper()
	out, err := exec.Command("ipmitool", "-I", "lanplus", "-C", "3", "-H", sim.Host, "-p", fmt.Sprint(sim.Port),
		"-U", sim.User, "-P", sim.Password, "chassis", "power", "status").CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestDevPowerThroughAPI(t *testing.T) {
	o := newDevOptions(t)
	o.extraEnv = []string{"BAREFLOW_POWER_SYNC_INTERVAL=2s"}
	dev := startDev(t, &o)

	t.Run("fleet power sync sees a change behind the BMC's back", func(t *testing.T) {
		sim := ipmisim.Start(t, ipmisim.Options{})
		m := dev.createMachine(t, "rack0-u02", sim, sim.Password)
		if err := sim.SetPower(contract.PowerOn); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		var got apiMachine
		for time.Now().Before(deadline) {
			dev.call(t, "GET", "/machines/"+m.ID, dev.token, nil, &got)
			if got.PowerState == "on" {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Fatalf("recorded power state: got %q after a minute, want on from the periodic sync", got.PowerState)
	})

	t.Run("no token is refused", func(t *testing.T) {
		var e apiErr
		for name, tok := range map[string]string{"none": "", "forged": "bft_" + strings.Repeat("a", 52)} {
			if code := dev.call(t, "GET", "/machines", tok, nil, &e); code != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
				t.Errorf("%s token: got %d %q, want 401 unauthorized", name, code, e.Error.Code)
			}
		}
	})

	t.Run("bad input gets a clear error", func(t *testing.T) {
		sim := ipmisim.Start(t, ipmisim.Options{Password: "Zq7-unique-Bmc-Secret"})
		dev.createMachine(t, "rack0-u01", sim, sim.Password)
		for _, tc := range []struct {
			name, method, path string
			body               any
			status             int
			code               string
		}{
			{"unknown field", "POST", "/machines", map[string]any{"name": "x1", "colour": "red"}, 400, "invalid_request"},
			{"bad MAC", "POST", "/machines", map[string]any{"name": "x2", "pxe_mac": "52:54"}, 400, "invalid_request"},
			{"bad BMC address", "POST", "/machines", map[string]any{"name": "x3", "bmc": map[string]any{"address": "bmc.example"}}, 400, "invalid_request"},
			{"name taken", "POST", "/machines", map[string]any{"name": "rack0-u01"}, 409, "conflict"},
			{"no such machine", "GET", "/machines/nope", nil, 404, "not_found"},
			{"unknown action", "POST", "/machines/rack0-u01/power", map[string]any{"action": "explode"}, 400, "invalid_request"},
			{"no such operation", "GET", "/operations/6f1c1f7e-0000-4000-8000-000000000009", nil, 404, "not_found"},
		} {
			var e apiErr
			if code := dev.call(t, tc.method, tc.path, dev.token, tc.body, &e); code != tc.status || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("%s: got %d %q %q, want %d %q with a message", tc.name, code, e.Error.Code, e.Error.Message, tc.status, tc.code)
			}
		}
		var m map[string]any
		dev.call(t, "GET", "/machines/rack0-u01", dev.token, nil, &m)
		if b, _ := json.Marshal(m); strings.Contains(string(b), sim.Password) {
			t.Errorf("machine JSON shows the BMC password: %s", b)
		}
	})

	t.Run("networks are validated", func(t *testing.T) {
		var n struct {
			ID string `json:"id"`
		}
		prov := map[string]any{"name": "prov", "kind": "provisioning", "cidr": "198.51.100.0/24", "gateway": "198.51.100.1",
			"range_start": "198.51.100.100", "range_end": "198.51.100.199", "relay_addrs": []string{"203.0.113.1"}}
		if code := dev.call(t, "POST", "/networks", dev.token, prov, &n); code != http.StatusCreated {
			t.Fatalf("create network: got %d, want 201", code)
		}
		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"overlap", map[string]any{"name": "prov2", "kind": "os", "cidr": "198.51.100.128/25"}, 409, "conflict"},
			{"gateway outside", map[string]any{"name": "bmc", "kind": "bmc", "cidr": "203.0.113.0/24", "gateway": "198.51.100.1"}, 400, "invalid_request"},
			{"range outside", map[string]any{"name": "bmc", "kind": "bmc", "cidr": "203.0.113.0/24", "range_start": "203.0.113.10", "range_end": "203.0.114.10"}, 400, "invalid_request"},
			{"host bits", map[string]any{"name": "bmc", "kind": "bmc", "cidr": "203.0.113.5/24"}, 400, "invalid_request"},
			{"unknown kind", map[string]any{"name": "bmc", "kind": "storage", "cidr": "203.0.113.0/24"}, 400, "invalid_request"},
		} {
			var e apiErr
			if code := dev.call(t, "POST", "/networks", dev.token, tc.body, &e); code != tc.status || e.Error.Code != tc.code {
				t.Errorf("%s: got %d %q (%s), want %d %q", tc.name, code, e.Error.Code, e.Error.Message, tc.status, tc.code)
			}
		}
		if code := dev.call(t, "DELETE", "/networks/prov", dev.token, nil, nil); code != http.StatusNoContent {
			t.Errorf("delete network: got %d, want 204", code)
		}
	})

	t.Run("on, off, cycle and status", func(t *testing.T) {
		sim := ipmisim.Start(t, ipmisim.Options{})
		m := dev.createMachine(t, "rack1-u01", sim, sim.Password)
		requireSucceeded(t, dev.waitOperation(t, dev.power(t, m.Name, map[string]any{"action": "on"}).ID, "", 2*time.Minute))
		if got := sim.Power(); got != contract.PowerOn {
			t.Fatalf("chassis after on: got %s, want on", got)
		}
		if got := ipmitoolPower(t, sim); got != "Chassis Power is on" {
			t.Fatalf("ipmitool after on: got %q, want Chassis Power is on", got)
		}
		offOp := dev.waitOperation(t, dev.power(t, m.ID, map[string]any{"action": "off", "soft_off_grace_seconds": 30}).ID, "", time.Minute)
		requireSucceeded(t, offOp)
		exportHistory(t, o, offOp, "power_soft_off")
		if got := sim.Power(); got != contract.PowerOff {
			t.Fatalf("chassis after off: got %s, want off", got)
		}
		before := len(sim.Calls())
		cycleOp := dev.waitOperation(t, dev.power(t, m.ID, map[string]any{"action": "cycle", "cycle_delay_seconds": 1}).ID, "", time.Minute)
		requireSucceeded(t, cycleOp)
		exportHistory(t, o, cycleOp, "power_cycle")
		if got := sim.Power(); got != contract.PowerOn {
			t.Fatalf("chassis after cycle: got %s, want on", got)
		}
		if calls := sim.Calls()[before:]; len(calls) == 0 || calls[len(calls)-1] != "power 1" {
			t.Errorf("hardware calls of the cycle: got %v, want it to end with power 1", calls)
		}
		var st struct {
			PowerState string `json:"power_state"`
			Source     string `json:"source"`
		}
		if code := dev.call(t, "GET", "/machines/"+m.Name+"/power?refresh=true", dev.token, nil, &st); code != 200 || st.PowerState != "on" || st.Source != "bmc" {
			t.Errorf("live power status: got %d %+v, want 200 on from bmc", code, st)
		}
		var got apiMachine
		dev.call(t, "GET", "/machines/"+m.ID, dev.token, nil, &got)
		if got.PowerState != "on" || got.LastError != nil {
			t.Errorf("machine after cycle: got power %s last error %+v, want on and none", got.PowerState, got.LastError)
		}
	})

	t.Run("soft off ignored becomes hard off", func(t *testing.T) {
		sim := ipmisim.Start(t, ipmisim.Options{InitialPower: contract.PowerOn, IgnoreSoftOff: true})
		m := dev.createMachine(t, "rack1-u02", sim, sim.Password)
		op := dev.waitOperation(t, dev.power(t, m.ID, map[string]any{"action": "off", "soft_off_grace_seconds": 3}).ID, "", time.Minute)
		requireSucceeded(t, op)
		exportHistory(t, o, op, "power_soft_off_then_hard")
		calls := strings.Join(sim.Calls(), ",")
		if sim.Power() != contract.PowerOff || !strings.Contains(calls, "shutdown 1") || !strings.Contains(calls, "power 0") {
			t.Errorf("got power %s after calls %s, want off after a soft then a hard off", sim.Power(), calls)
		}
	})

	t.Run("wrong BMC password fails cleanly", func(t *testing.T) {
		sim := ipmisim.Start(t, ipmisim.Options{})
		m := dev.createMachine(t, "rack1-u03", sim, "not-the-password")
		start := time.Now()
		op := dev.waitOperation(t, dev.power(t, m.ID, map[string]any{"action": "on"}).ID, "", time.Minute)
		if op.State != "failed" || op.Error == nil || op.Error.Code != contract.ErrBMCAuthFailed {
			t.Fatalf("operation: got %s %+v, want failed with %s", op.State, op.Error, contract.ErrBMCAuthFailed)
		}
		exportHistory(t, o, op, "power_on_auth_failed")
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("a permanent error took %s: it must not be retried", d)
		}
		var got apiMachine
		dev.call(t, "GET", "/machines/"+m.ID, dev.token, nil, &got)
		if got.LastError == nil || got.LastError.Code != contract.ErrBMCAuthFailed || !strings.Contains(got.LastError.Message, "password") {
			t.Errorf("machine last error: got %+v, want %s naming the password", got.LastError, contract.ErrBMCAuthFailed)
		}
		if sim.Power() != contract.PowerOff {
			t.Errorf("chassis: got %s, want still off", sim.Power())
		}
	})

	t.Run("BMC stops answering mid-operation", func(t *testing.T) {
		sim := ipmisim.Start(t, ipmisim.Options{InitialPower: contract.PowerOn})
		m := dev.createMachine(t, "rack1-u04", sim, sim.Password)
		op := dev.power(t, m.ID, map[string]any{"action": "cycle", "cycle_delay_seconds": 3})
		dev.waitOperation(t, op.ID, "cycle_pause", time.Minute)
		sim.Stop()
		done := dev.waitOperation(t, op.ID, "", 3*time.Minute)
		if done.State != "failed" || done.Error == nil || done.Error.Code != contract.ErrBMCUnreachable {
			t.Fatalf("operation: got %s %+v, want failed with %s", done.State, done.Error, contract.ErrBMCUnreachable)
		}
		var got apiMachine
		dev.call(t, "GET", "/machines/"+m.ID, dev.token, nil, &got)
		if got.LastError == nil || got.LastError.Code != contract.ErrBMCUnreachable {
			t.Errorf("machine last error: got %+v, want %s", got.LastError, contract.ErrBMCUnreachable)
		}
		// The machine is free again: a new operation starts.
		var op2 apiOperation
		if code := dev.call(t, "POST", "/machines/"+m.ID+"/power", dev.token, map[string]any{"action": "on"}, &op2); code != http.StatusAccepted {
			t.Errorf("power after the failure: got %d, want 202", code)
		}
		dev.waitOperation(t, op2.ID, "", 3*time.Minute)
	})

	t.Run("second operation on a busy machine gets 409", func(t *testing.T) {
		sim := ipmisim.Start(t, ipmisim.Options{InitialPower: contract.PowerOn})
		m := dev.createMachine(t, "rack1-u05", sim, sim.Password)
		first := dev.power(t, m.ID, map[string]any{"action": "cycle", "cycle_delay_seconds": 30})
		var e apiErr
		code := dev.call(t, "POST", "/machines/"+m.ID+"/power", dev.token, map[string]any{"action": "on"}, &e)
		if code != http.StatusConflict || e.Error.Code != "machine_busy" || e.Error.Operation == nil || e.Error.Operation.ID != first.ID {
			t.Fatalf("second operation: got %d %+v, want 409 machine_busy naming %s", code, e.Error, first.ID)
		}
		if code := dev.call(t, "DELETE", "/machines/"+m.ID, dev.token, nil, &e); code != http.StatusConflict {
			t.Errorf("delete of a busy machine: got %d, want 409", code)
		}
		var canceled apiOperation
		if code := dev.call(t, "POST", "/operations/"+first.ID+"/cancel", dev.token, nil, &canceled); code != http.StatusAccepted {
			t.Fatalf("cancel: got %d, want 202", code)
		}
		if done := dev.waitOperation(t, first.ID, "", time.Minute); done.State != "canceled" {
			t.Errorf("canceled operation: got %s, want canceled", done.State)
		}
	})
}

// TestDevSurvivesKill kills `bareflow dev` with SIGKILL while a power cycle
// waits between off and on, starts it again on the same data, and checks the
// workflow carries on to the end instead of starting over.
func TestDevSurvivesKill(t *testing.T) {
	o := newDevOptions(t)
	dev := startDev(t, &o)
	sim := ipmisim.Start(t, ipmisim.Options{InitialPower: contract.PowerOn})
	m := dev.createMachine(t, "rack2-u01", sim, sim.Password)
	op := dev.power(t, m.ID, map[string]any{"action": "cycle", "cycle_delay_seconds": 15})
	dev.waitOperation(t, op.ID, "cycle_pause", time.Minute)
	if sim.Power() != contract.PowerOff {
		t.Fatalf("chassis during the pause: got %s, want off", sim.Power())
	}
	offCalls := len(sim.Calls())
	dev.kill(syscall.SIGKILL)

	dev2 := startDev(t, &o)
	done := dev2.waitOperation(t, op.ID, "", 3*time.Minute)
	requireSucceeded(t, done)
	if done.RunID != op.RunID {
		t.Errorf("run ID: got %s, want the same run %s to carry on", done.RunID, op.RunID)
	}
	if sim.Power() != contract.PowerOn {
		t.Errorf("chassis after restart: got %s, want on", sim.Power())
	}
	after := sim.Calls()[offCalls:]
	for _, c := range after {
		if c == "power 0" {
			t.Errorf("hardware calls after restart %v: the off step ran again", after)
		}
	}
}

func TestDevReportsUnreachableDatabase(t *testing.T) {
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "dev", "--headless", "--data-dir", t.TempDir(),
		"--database-url", fmt.Sprintf("postgres://postgres:hunter2@127.0.0.1:%d/bareflow", port))
	cmd.Env = append(os.Environ(), execMainEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: got %v, want exit status 1", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "BAREFLOW_DATABASE_URL") || !strings.Contains(lines[0], "cannot reach PostgreSQL") {
		t.Errorf("output: got %q, want one line naming BAREFLOW_DATABASE_URL", out)
	}
	if strings.Contains(string(out), "hunter2") {
		t.Errorf("output shows the database password: %q", out)
	}
}
