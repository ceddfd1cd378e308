package boot

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/client"

	"bareflow/internal/store"
	"bareflow/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// envRequire, set to 1, turns skips for want of root, namespaces or
// packages into failures.
const envRequire = "BAREFLOW_REQUIRE_INTEGRATION"

// skipOrFail skips the test with reason, or fails it when integration tests
// are required.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(envRequire) == "1" {
		t.Fatalf("integration test cannot run ("+envRequire+"=1): "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// signalCall is a signal the fake signaler got.
type signalCall struct {
	WorkflowID string
	Signal     string
	Arg        any
	Started    bool
	Input      any
}

// fakeSignaler records signals instead of sending them to Temporal.
type fakeSignaler struct {
	mu    sync.Mutex
	calls []signalCall
	fail  error
}

func (f *fakeSignaler) SignalWorkflow(_ context.Context, workflowID, _ string, signalName string, arg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.calls = append(f.calls, signalCall{WorkflowID: workflowID, Signal: signalName, Arg: arg})
	return nil
}

func (f *fakeSignaler) SignalWithStartWorkflow(_ context.Context, workflowID, signalName string, signalArg any,
	_ client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	var in any
	if len(args) > 0 {
		in = args[0]
	}
	f.calls = append(f.calls, signalCall{WorkflowID: workflowID, Signal: signalName, Arg: signalArg, Started: true, Input: in})
	return nil, nil
}

func (f *fakeSignaler) snapshot() []signalCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]signalCall(nil), f.calls...)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Test networks, in documentation ranges.
var (
	pxeNet = store.Network{
		Name: "pxe", Kind: store.NetworkProvisioning, CIDR: netip.MustParsePrefix("203.0.113.0/24"),
		Gateway: netip.MustParseAddr("203.0.113.1"), DNS: []netip.Addr{netip.MustParseAddr("203.0.113.2")},
		Domain: "lab.example", RangeStart: netip.MustParseAddr("203.0.113.10"), RangeEnd: netip.MustParseAddr("203.0.113.250"),
		LeaseSeconds: 600, RelayAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	}
	bmcNet = store.Network{
		Name: "bmc", Kind: store.NetworkBMC, CIDR: netip.MustParsePrefix("198.51.100.0/24"),
		Gateway: netip.MustParseAddr("198.51.100.1"), RangeStart: netip.MustParseAddr("198.51.100.100"),
		RangeEnd: netip.MustParseAddr("198.51.100.200"), RelayAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.2")},
	}
)

// testEnv is a boot service on a fresh database.
type testEnv struct {
	svc  *Service
	st   *store.Store
	sig  *fakeSignaler
	nets map[string]store.Network
}

// newTestEnv makes a service on a fresh database with the given networks,
// loaded into its cache.
func newTestEnv(t testing.TB, cfg Config, nets ...store.Network) *testEnv {
	t.Helper()
	return newTestEnvPool(t, 0, cfg, nets...)
}

// newTestEnvPool is newTestEnv with a database pool of conns connections
// (0: pgx's default).
func newTestEnvPool(t testing.TB, conns int, cfg Config, nets ...store.Network) *testEnv {
	t.Helper()
	dsn := storetest.DSN(t)
	if conns > 0 {
		sep := " "
		if strings.Contains(dsn, "://") {
			sep = "?"
			if strings.Contains(dsn, "?") {
				sep = "&"
			}
		}
		dsn += sep + "pool_max_conns=" + strconv.Itoa(conns)
	}
	st := storetest.Open(t, dsn)
	ctx := testCtx(t)
	env := &testEnv{st: st, sig: &fakeSignaler{}, nets: map[string]store.Network{}}
	for _, n := range nets {
		got, err := st.CreateNetwork(ctx, n)
		if err != nil {
			t.Fatalf("create network %s: %v", n.Name, err)
		}
		env.nets[n.Name] = got
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://203.0.113.5:8081"
	}
	svc, err := newService(cfg, st, env.sig, testLogger(t))
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	if err := svc.nets.load(ctx); err != nil {
		t.Fatalf("load networks: %v", err)
	}
	env.svc = svc
	return env
}

// startEvents runs the event queue until the test ends.
func (e *testEnv) startEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.svc.events.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// counterValue reads a Prometheus counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func mac(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x42, 0xbf, byte(i >> 16), byte(i >> 8), byte(i)}
}
