// Package devserver runs a complete Temporal cluster and its Web UI inside the
// bareflow process, for `bareflow dev`.
//
// Every Temporal service (frontend, internal frontend, history, matching,
// worker) runs in-process on loopback ports, and persistence is one SQLite
// file, so a developer gets a working orchestrator with a single binary and no
// containers:
//
//	bareflow dev ──┬─ gRPC frontend      FrontendAddr (127.0.0.1:7233)  ← workers, CLI, SDK clients
//	               ├─ HTTP frontend      free port on the frontend's IP
//	               ├─ internal frontend  free loopback ports   ← Temporal's own worker service
//	               ├─ history, matching, worker services       free loopback ports
//	               ├─ Web UI             UIAddr (127.0.0.1:8233) → gRPC frontend
//	               └─ SQLite             <DataDir>/temporal.db (or in memory)
//
// Workflows, timers and schedules live in the SQLite file, so they survive a
// restart of the process on the same data directory. This package is for
// development only: a production deployment talks to a real Temporal cluster.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/common/primitives/timestamp"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Defaults applied by Config when a field is empty.
const (
	// DefaultFrontendAddr is the gRPC frontend address Temporal tools expect.
	DefaultFrontendAddr = "127.0.0.1:7233"
	// DefaultUIAddr is the Web UI address Temporal's own dev server uses. It is
	// the default of the --ui-port flag; an empty Config.UIAddr disables the UI.
	DefaultUIAddr = "127.0.0.1:8233"
	// DefaultNamespace is the namespace created when Config.Namespace is empty.
	DefaultNamespace = "default"
	// DatabaseFile is the name of the SQLite file inside Config.DataDir.
	DatabaseFile = "temporal.db"
)

// Flags named in port errors, so that the operator knows what to change.
const (
	frontendPortFlag = "--temporal-port"
	uiPortFlag       = "--ui-port"
)

const (
	// namespaceRetentionDays is how long closed workflows of the bareflow
	// namespace stay visible.
	namespaceRetentionDays = 7
	// historyShards is the shard count of a new database. One shard starts
	// fastest; the count is fixed once the database exists.
	historyShards = 1
	// clusterName names the single local cluster.
	clusterName = "active"
	// startTimeout bounds Start when the caller's context has no deadline.
	startTimeout = 90 * time.Second
	// stopTimeout bounds Stop; Temporal's own limit is minutes per service.
	stopTimeout = 30 * time.Second
	// uiReadyTimeout bounds the wait for the Web UI's first answer.
	uiReadyTimeout = 15 * time.Second
	// readyPollInterval spaces the probes of the frontend and the UI.
	readyPollInterval = 50 * time.Millisecond
)

// Config configures the embedded Temporal server.
type Config struct {
	// DataDir holds the SQLite file <DataDir>/temporal.db, created with the
	// schema on first start and reopened afterwards, so workflows survive a
	// restart of the process. The directory is created if missing and locked
	// against a second server. Required unless Ephemeral is set.
	DataDir string
	// Ephemeral keeps everything in an in-memory SQLite database that no
	// later Start sees; DataDir is then ignored.
	Ephemeral bool
	// FrontendAddr is the gRPC frontend's IP:port; default DefaultFrontendAddr.
	// The HTTP frontend takes a free port on the same IP.
	FrontendAddr string
	// UIAddr is the Web UI's IP:port. Empty disables the UI; callers that want
	// it by default pass DefaultUIAddr.
	UIAddr string
	// Namespace is registered (with a 7-day retention) if missing; default
	// DefaultNamespace. The UI opens on it.
	Namespace string
	// Logger receives the server's logs with component=temporal, and the
	// start-up summary. Nil means slog.Default().
	Logger *slog.Logger
	// LogLevel is the lowest level of the Temporal server's own logs that
	// reaches Logger; nil means slog.LevelWarn, as the server is very chatty
	// at info. During Stop the server's logs are dropped unless LogLevel is
	// debug or lower: its services, stopped one by one, log every refused
	// dial and cancelled call between them.
	LogLevel slog.Leveler
}

// withDefaults returns a copy of c with empty fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.FrontendAddr == "" {
		c.FrontendAddr = DefaultFrontendAddr
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LogLevel == nil {
		c.LogLevel = slog.LevelWarn
	}
	return c
}

// Validate reports whether c, with defaults applied, can start a server.
func (c *Config) Validate() error {
	d := c.withDefaults()
	if !d.Ephemeral {
		if d.DataDir == "" {
			return errors.New("data dir is required unless the server is ephemeral")
		}
		// The path becomes a SQLite URI, where these characters start the
		// query or fragment.
		if strings.ContainsAny(d.DataDir, "?#") {
			return fmt.Errorf("data dir %q: must not contain '?' or '#'", d.DataDir)
		}
	}
	if _, err := parseListenAddr(d.FrontendAddr); err != nil {
		return fmt.Errorf("frontend address: %w", err)
	}
	if d.UIAddr != "" {
		ui, err := parseListenAddr(d.UIAddr)
		if err != nil {
			return fmt.Errorf("ui address: %w", err)
		}
		if frontend, _ := parseListenAddr(d.FrontendAddr); ui == frontend {
			return fmt.Errorf("ui address %s is also the frontend address", d.UIAddr)
		}
	}
	if strings.TrimSpace(d.Namespace) != d.Namespace || len(d.Namespace) > 255 {
		return fmt.Errorf("namespace %q: no surrounding spaces, at most 255 bytes", d.Namespace)
	}
	return nil
}

// parseListenAddr accepts an IP literal and a non-zero port.
func parseListenAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not IP:port: %w", s, err)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: port must not be 0", s)
	}
	return ap, nil
}

// dialAddr is where local clients reach a listener bound to ap: a wildcard
// bind is reached over loopback.
func dialAddr(ap netip.AddrPort) string {
	ip := ap.Addr()
	switch {
	case ip.IsUnspecified() && ip.Is6():
		ip = netip.IPv6Loopback()
	case ip.IsUnspecified():
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.AddrPortFrom(ip, ap.Port()).String()
}

// Server is a running embedded Temporal server and, optionally, its Web UI.
type Server struct {
	frontendAddr string
	uiURL        string
	logger       *slog.Logger

	temporal temporal.Server
	ui       *uiserver.Server
	unlock   func() error
	// stopping silences the server's logs during Stop.
	stopping *atomic.Bool

	stopOnce sync.Once
	stopErr  error
}

// Start starts the Temporal server described by cfg and returns once the
// frontend answers for cfg.Namespace and the UI serves its index page, so a
// client can connect at once. ctx bounds only the start-up (90 s when it has
// no deadline); Stop ends the server.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	begin := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dev server config: %w", err)
	}
	cfg = cfg.withDefaults()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}

	frontend, _ := parseListenAddr(cfg.FrontendAddr)
	var uiAddr netip.AddrPort
	if cfg.UIAddr != "" {
		uiAddr, _ = parseListenAddr(cfg.UIAddr)
	}
	httpPorts, internalPorts, err := choosePorts(frontend, uiAddr)
	if err != nil {
		return nil, err
	}
	ports := servicePorts{
		frontend:             int(frontend.Port()),
		frontendHTTP:         httpPorts[0],
		internalFrontend:     internalPorts[0],
		internalFrontendHTTP: internalPorts[1],
		history:              internalPorts[2],
		matching:             internalPorts[3],
		worker:               internalPorts[4],
	}

	s := &Server{
		frontendAddr: dialAddr(frontend),
		logger:       cfg.Logger.With(slog.String("component", "devserver")),
		unlock:       func() error { return nil },
		stopping:     &atomic.Bool{},
	}
	sqlCfg, err := s.openDatabase(cfg)
	if err != nil {
		_ = s.unlock()
		return nil, err
	}

	tsrv, err := newTemporalServer(cfg, frontend, ports, s.frontendAddr, sqlCfg, s.stopping)
	if err != nil {
		_ = s.unlock()
		return nil, err
	}
	s.temporal = tsrv
	if err := startTemporal(ctx, tsrv, s.unlock); err != nil {
		return nil, err
	}
	if err := waitFrontend(ctx, s.frontendAddr, cfg.Namespace); err != nil {
		_ = s.Stop()
		return nil, err
	}
	frontendReady := time.Since(begin)

	if cfg.UIAddr != "" {
		s.uiURL = "http://" + dialAddr(uiAddr)
		if err := s.startUI(ctx, uiAddr, cfg.Namespace); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	s.logger.Info("temporal dev server ready",
		slog.String("frontend_addr", s.frontendAddr),
		slog.String("ui_url", s.uiURL),
		slog.String("namespace", cfg.Namespace),
		slog.String("data_dir", dataDirForLog(cfg)),
		slog.Duration("frontend_ready_after", frontendReady),
		slog.Duration("ready_after", time.Since(begin)),
	)
	return s, nil
}

func dataDirForLog(cfg Config) string {
	if cfg.Ephemeral {
		return "(in memory)"
	}
	return cfg.DataDir
}

// FrontendAddr is the host:port clients dial for the gRPC frontend.
func (s *Server) FrontendAddr() string { return s.frontendAddr }

// UIURL is the Web UI's base URL, or "" when the UI is disabled.
func (s *Server) UIURL() string { return s.uiURL }

// Stop stops the UI and then the Temporal services, waiting at most 30 s.
// Workflows keep their state in the database and resume at the next Start on
// the same data directory. Stop is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	begin := time.Now()
	if s.ui != nil {
		s.ui.Stop()
	}
	s.stopping.Store(true)
	done := make(chan error, 1)
	go func() { done <- s.temporal.Stop() }()
	select {
	case err := <-done:
		if err != nil {
			_ = s.unlock()
			return fmt.Errorf("stop temporal server: %w", err)
		}
	case <-time.After(stopTimeout):
		// The services still hold the database: keep the data dir locked.
		return fmt.Errorf("stop temporal server: not stopped after %s", stopTimeout)
	}
	if err := s.unlock(); err != nil {
		return fmt.Errorf("unlock data dir: %w", err)
	}
	s.logger.Info("temporal dev server stopped", slog.Duration("stop_took", time.Since(begin)))
	return nil
}

// openDatabase locks the data dir, creates the SQLite schema on first use and
// registers the namespace if missing.
func (s *Server) openDatabase(cfg Config) (*config.SQL, error) {
	sqlCfg := &config.SQL{PluginName: sqliteplugin.PluginName}
	if cfg.Ephemeral {
		// A fresh name per server: the plugin keeps every database it opened
		// for the life of the process, keyed by its DSN.
		sqlCfg.DatabaseName = "bareflow-dev-" + strconv.FormatUint(rand.Uint64(), 36)
		sqlCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
	} else {
		dir, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		unlock, err := lockDataDir(dir)
		if err != nil {
			return nil, err
		}
		s.unlock = unlock
		sqlCfg.DatabaseName = filepath.Join(dir, DatabaseFile)
		sqlCfg.ConnectAttributes = map[string]string{"mode": "rwc"}
		if _, err := os.Stat(sqlCfg.DatabaseName); errors.Is(err, os.ErrNotExist) {
			if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
				// Leave no half-made database for the next start to trip on.
				_ = os.Remove(sqlCfg.DatabaseName)
				return nil, fmt.Errorf("create temporal schema in %s: %w", sqlCfg.DatabaseName, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("stat database: %w", err)
		}
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, cfg.Namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", cfg.Namespace, err)
	}
	ns.Detail.Config.Retention = timestamp.DurationFromDays(namespaceRetentionDays)
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("register namespace %s: %w", cfg.Namespace, err)
	}
	return sqlCfg, nil
}

// choosePorts checks that the frontend and UI addresses are free and picks
// free ports for the frontend's HTTP API, on its IP, and for the internal
// services, on loopback. The given addresses stay reserved while the others
// are picked, so none is chosen twice.
func choosePorts(frontend, ui netip.AddrPort) (httpPorts, internalPorts []int, err error) {
	release, err := reserveAddr(frontend.String(), "temporal frontend", frontendPortFlag)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	if ui.IsValid() {
		releaseUI, err := reserveAddr(ui.String(), "temporal web ui", uiPortFlag)
		if err != nil {
			return nil, nil, err
		}
		defer releaseUI()
	}
	if httpPorts, err = freePorts(frontend.Addr().String(), 1); err != nil {
		return nil, nil, err
	}
	if internalPorts, err = freePorts(loopback, 5); err != nil {
		return nil, nil, err
	}
	return httpPorts, internalPorts, nil
}

// servicePorts are the gRPC ports of the in-process services and the HTTP
// ports of the frontends.
type servicePorts struct {
	frontend, frontendHTTP                 int
	internalFrontend, internalFrontendHTTP int
	history, matching, worker              int
}

// newTemporalServer builds, without starting, a server running every service
// in this process.
func newTemporalServer(cfg Config, frontend netip.AddrPort, ports servicePorts, frontendDial string, sqlCfg *config.SQL, stopping *atomic.Bool) (srv temporal.Server, err error) {
	// The server reports unusable configuration through Logger.Fatal, which
	// the slog adapter turns into a panic.
	defer recoverFatal(&err)

	frontendIP := frontend.Addr().String()
	httpAddr := net.JoinHostPort(dialHost(frontend), strconv.Itoa(ports.frontendHTTP))
	conf := &config.Config{
		Global: config.Global{
			Membership: config.Membership{
				MaxJoinDuration:  30 * time.Second,
				BroadcastAddress: loopback,
			},
		},
		Persistence: config.Persistence{
			DefaultStore:     "sqlite",
			VisibilityStore:  "sqlite",
			NumHistoryShards: historyShards,
			DataStores:       map[string]config.DataStore{"sqlite": {SQL: sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {
					Enabled:                true,
					InitialFailoverVersion: 1,
					RPCAddress:             frontendDial,
					HTTPAddress:            httpAddr,
				},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			string(primitives.FrontendService): {RPC: config.RPC{
				GRPCPort: ports.frontend, HTTPPort: ports.frontendHTTP, BindOnIP: frontendIP,
			}},
			string(primitives.InternalFrontendService): {RPC: config.RPC{
				GRPCPort: ports.internalFrontend, HTTPPort: ports.internalFrontendHTTP, BindOnIP: loopback,
			}},
			string(primitives.HistoryService):  {RPC: config.RPC{GRPCPort: ports.history, BindOnIP: loopback}},
			string(primitives.MatchingService): {RPC: config.RPC{GRPCPort: ports.matching, BindOnIP: loopback}},
			string(primitives.WorkerService):   {RPC: config.RPC{GRPCPort: ports.worker, BindOnIP: loopback}},
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		// No PublicClient: the worker service (schedules, batch operations,
		// system workflows) then calls the internal frontend, on a port new at
		// every Start. Temporal's Stop leaves some of those system workers
		// polling; a fresh port keeps them away from the next server started
		// in this process on the same FrontendAddr.
	}

	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService:         static.SingleLocalHost(net.JoinHostPort(dialHost(frontend), strconv.Itoa(ports.frontend))),
		primitives.InternalFrontendService: static.SingleLocalHost(net.JoinHostPort(loopback, strconv.Itoa(ports.internalFrontend))),
		primitives.HistoryService:          static.SingleLocalHost(net.JoinHostPort(loopback, strconv.Itoa(ports.history))),
		primitives.MatchingService:         static.SingleLocalHost(net.JoinHostPort(loopback, strconv.Itoa(ports.matching))),
		primitives.WorkerService:           static.SingleLocalHost(net.JoinHostPort(loopback, strconv.Itoa(ports.worker))),
	}

	logger := newServerLogger(cfg.Logger, cfg.LogLevel, stopping)
	srv, err = temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.Services),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithDynamicConfigClient(devDynamicConfig()),
	)
	if err != nil {
		return nil, fmt.Errorf("build temporal server: %w", err)
	}
	return srv, nil
}

// dialHost is the IP the other services use to reach the frontend.
func dialHost(frontend netip.AddrPort) string {
	host, _, _ := net.SplitHostPort(dialAddr(frontend))
	return host
}

// devDynamicConfig enables every API bareflow uses and sizes caches for one
// developer machine.
func devDynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// bareflow creates a schedule for the fleet power sync.
		dynamicconfig.FrontendEnableSchedules.Key(): true,
		dynamicconfig.WorkerEnableScheduler.Key():   true,
		// Workflows expose operations as updates.
		dynamicconfig.FrontendEnableUpdateWorkflowExecution.Key():              true,
		dynamicconfig.FrontendEnableUpdateWorkflowExecutionAsyncAccepted.Key(): true,
		// Search attributes added at run time are visible at once.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():            8192,
		// The UI lists workflows often.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
	}
}

// startTemporal starts srv within ctx and calls release when it fails. If ctx
// ends first, srv is stopped once its start returns, and release called then.
func startTemporal(ctx context.Context, srv temporal.Server, release func() error) error {
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() { done <- err }()
		defer recoverFatal(&err)
		err = srv.Start()
	}()
	select {
	case err := <-done:
		if err != nil {
			_ = release()
			return fmt.Errorf("start temporal server: %w", err)
		}
		return nil
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				_ = srv.Stop()
			}
			_ = release()
		}()
		return fmt.Errorf("start temporal server: %w", ctx.Err())
	}
}

// waitFrontend polls the frontend until it describes namespace, which proves
// that the frontend, history and persistence all answer.
func waitFrontend(ctx context.Context, addr, namespace string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial temporal frontend %s: %w", addr, err)
	}
	defer func() { _ = conn.Close() }()
	client := workflowservice.NewWorkflowServiceClient(conn)
	for {
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := client.DescribeNamespace(callCtx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal frontend %s not ready: %w (last error: %v)", addr, ctx.Err(), err)
		case <-time.After(readyPollInterval):
		}
	}
}

// startUI serves the Temporal Web UI on addr and waits for its index page.
func (s *Server) startUI(ctx context.Context, addr netip.AddrPort, namespace string) error {
	// The UI server exits the process if it cannot listen, so its address
	// was checked first; it is free unless taken in the last milliseconds.
	ui := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                addr.Addr().String(),
		Port:                int(addr.Port()),
		TemporalGRPCAddress: s.frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		// Lab networks are often offline; the UI must not reach the internet.
		DisableNewsFetch: true,
		// The UI is served over plain HTTP on a developer machine.
		CORS:     uiconfig.CORS{CookieInsecure: true},
		HideLogs: true,
	}))
	s.ui = ui
	go func() { _ = ui.Start() }()

	ctx, cancel := context.WithTimeout(ctx, uiReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		err := probeUI(ctx, client, s.uiURL)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal web ui %s not ready: %w (last error: %v)", s.uiURL, ctx.Err(), err)
		case <-time.After(readyPollInterval):
		}
	}
}

func probeUI(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
