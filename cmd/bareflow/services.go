package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"golang.org/x/sync/errgroup"

	"bareflow/boot"
	"bareflow/contract"
	"bareflow/internal/bmc"
	"bareflow/internal/ramdisk"
	"bareflow/internal/secret"
	"bareflow/internal/store"
	"bareflow/server"
	"bareflow/workers"
)

// openStore creates the database when missing, opens it and, when migrate is
// set, migrates it; otherwise it checks the schema is current. A server that
// cannot be reached is one line naming the variable to set.
func openStore(ctx context.Context, e env, box *secret.Box, logger *slog.Logger, migrate bool) (*store.Store, error) {
	hint := func(err error) error {
		if errors.Is(err, store.ErrUnavailable) {
			return fmt.Errorf("%v; set BAREFLOW_DATABASE_URL to a reachable PostgreSQL", err)
		}
		return err
	}
	if migrate {
		if err := store.EnsureDatabase(ctx, e.DatabaseURL); err != nil {
			return nil, hint(err)
		}
	}
	st, err := store.Open(ctx, e.DatabaseURL, box, logger)
	if err != nil {
		return nil, hint(err)
	}
	if migrate {
		if err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, hint(fmt.Errorf("migrate database: %w", err))
		}
		return st, nil
	}
	v, err := st.AppliedVersion(ctx)
	if err != nil {
		st.Close()
		return nil, hint(err)
	}
	if v != store.SchemaVersion() {
		st.Close()
		return nil, fmt.Errorf("database schema is at version %d, this bareflow needs %d: run 'bareflow migrate'", v, store.SchemaVersion())
	}
	return st, nil
}

// secretBox loads the key that seals BMC passwords.
func secretBox(e env) (*secret.Box, error) {
	key, err := secret.LoadKey(e.SecretKey, e.SecretKeyFile)
	if err != nil {
		return nil, err
	}
	return secret.NewBox(key)
}

func dialTemporal(ctx context.Context, e env, logger *slog.Logger) (client.Client, error) {
	opts, err := temporalOptions(e, logger)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (namespace %s); set TEMPORAL_ADDRESS: %w", opts.HostPort, opts.Namespace, err)
	}
	return c, nil
}

func workerConfig(e env, logger *slog.Logger) (workers.Config, error) {
	cfg := workers.Config{Logger: logger, BMC: bmc.Config{Logger: logger.With("component", "bmc")}}
	if e.BMCTimeout != "" {
		d, err := parseDuration("BAREFLOW_BMC_TIMEOUT", e.BMCTimeout)
		if err != nil {
			return cfg, err
		}
		cfg.BMC.Timeout = d
	}
	return cfg, nil
}

func taskQueue(e env) string {
	if e.TaskQueue != "" {
		return e.TaskQueue
	}
	return contract.TaskQueue
}

// startWorker starts a worker and the fleet power-sync schedule.
func startWorker(ctx context.Context, e env, c client.Client, st *store.Store, logger *slog.Logger) (worker.Worker, error) {
	cfg, err := workerConfig(e, logger)
	if err != nil {
		return nil, err
	}
	every, err := parseDuration("BAREFLOW_POWER_SYNC_INTERVAL", e.PowerSyncInterval)
	if err != nil {
		return nil, err
	}
	if cfg.SSHSigner, err = workers.SSHKey(ctx, st); err != nil {
		return nil, err
	}
	w := workers.New(c, taskQueue(e), st, cfg)
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	if every > 0 {
		if err := workers.EnsurePowerSyncSchedule(ctx, c, taskQueue(e), every); err != nil {
			logger.Warn("cannot set up the fleet power sync", "error", err)
		}
	}
	return w, nil
}

// part is what `bareflow server`, `worker` and `boot` each set up: the
// logger, the store and the Temporal client.
type part struct {
	logger *slog.Logger
	store  *store.Store
	tc     client.Client
}

// startPart sets up a part; withKey loads the key that seals BMC passwords
// (the boot service never reads them). The caller closes it.
func startPart(ctx context.Context, e env, withKey bool) (*part, error) {
	logger, err := newLogger(e, os.Stderr)
	if err != nil {
		return nil, err
	}
	slog.SetDefault(logger)
	var box *secret.Box
	if withKey {
		if box, err = secretBox(e); err != nil {
			return nil, err
		}
	}
	st, err := openStore(ctx, e, box, logger, false)
	if err != nil {
		return nil, err
	}
	tc, err := dialTemporal(ctx, e, logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &part{logger: logger, store: st, tc: tc}, nil
}

func (p *part) close() {
	p.tc.Close()
	p.store.Close()
}

func runServer(ctx context.Context, args []string, e env, stderr io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&e.APIAddr, "api-addr", e.APIAddr, "address the API listens on")
	fs.StringVar(&e.DatabaseURL, "database-url", e.DatabaseURL, "PostgreSQL URL")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	p, err := startPart(ctx, e, true)
	if err != nil {
		return err
	}
	defer p.close()
	api := server.New(server.Config{Addr: e.APIAddr, WebUIURL: e.WebUIURL, Namespace: e.TemporalNamespace, TaskQueue: taskQueue(e), DataDir: e.DataDir, Logger: p.logger}, p.store, p.tc)
	ln, err := api.Listen()
	if err != nil {
		return err
	}
	p.logger.Info("API listening", "addr", ln.Addr().String())
	return api.Serve(ctx, ln)
}

func runWorker(ctx context.Context, args []string, e env, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&e.DatabaseURL, "database-url", e.DatabaseURL, "PostgreSQL URL")
	fs.StringVar(&e.TaskQueue, "task-queue", taskQueue(e), "Temporal task queue to serve")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	p, err := startPart(ctx, e, true)
	if err != nil {
		return err
	}
	defer p.close()
	w, err := startWorker(ctx, e, p.tc, p.store, p.logger)
	if err != nil {
		return err
	}
	p.logger.Info("worker running", "task_queue", taskQueue(e))
	<-ctx.Done()
	w.Stop()
	return nil
}

func runMigrate(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&e.DatabaseURL, "database-url", e.DatabaseURL, "PostgreSQL URL")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	logger, err := newLogger(e, os.Stderr)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, e, nil, logger, true)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := st.AppliedVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database %s is at schema version %d\n", store.RedactDSN(e.DatabaseURL), v)
	return nil
}

// group runs the long-lived parts of a process and stops them all when one
// fails or ctx ends.
type group struct {
	*errgroup.Group
	ctx context.Context
}

func newGroup(ctx context.Context) *group {
	g, gctx := errgroup.WithContext(ctx)
	return &group{Group: g, ctx: gctx}
}

// bootConfig reads the boot service's BAREFLOW_BOOT_* variables.
func bootConfig(e env) (boot.Config, error) {
	cfg, err := boot.ConfigFromEnv(e.getenv)
	if err != nil {
		return cfg, err
	}
	if cfg.TaskQueue == "" {
		cfg.TaskQueue = taskQueue(e)
	}
	return cfg, cfg.Validate()
}

// describeBoot says in one line what the boot service serves.
func describeBoot(c boot.Config) string {
	httpAddr := c.HTTPAddr
	if httpAddr == "" {
		httpAddr = boot.DefaultHTTPAddr
	}
	parts := []string{"HTTP boot on " + httpAddr}
	switch {
	case len(c.Interfaces) > 0 && c.RelayAddr != "":
		parts = append(parts, fmt.Sprintf("DHCP on %s and relayed on %s", strings.Join(c.Interfaces, ","), c.RelayAddr))
	case len(c.Interfaces) > 0:
		parts = append(parts, "DHCP on "+strings.Join(c.Interfaces, ","))
	case c.RelayAddr != "":
		parts = append(parts, "DHCP relayed on "+c.RelayAddr)
	default:
		parts = append(parts, "DHCP off (set BAREFLOW_BOOT_INTERFACES or BAREFLOW_BOOT_RELAY_ADDR)")
	}
	if c.TFTPAddr != "" {
		parts = append(parts, "TFTP on "+c.TFTPAddr)
	} else {
		parts = append(parts, "TFTP off")
	}
	if c.AutoRegister {
		parts = append(parts, "auto-registration on")
	}
	return strings.Join(parts, "; ")
}

func runBoot(ctx context.Context, args []string, e env, stderr io.Writer) error {
	fs := flag.NewFlagSet("boot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&e.DatabaseURL, "database-url", e.DatabaseURL, "PostgreSQL URL")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	cfg, err := bootConfig(e)
	if err != nil {
		return err
	}
	p, err := startPart(ctx, e, false)
	if err != nil {
		return err
	}
	defer p.close()
	if err := authorizeBareflowKey(ctx, &cfg, p.store); err != nil {
		return err
	}
	svc, err := boot.New(cfg, p.store, p.tc, p.logger)
	if err != nil {
		return err
	}
	p.logger.Info("boot service running", "serves", describeBoot(cfg))
	return svc.Run(ctx)
}

// authorizeBareflowKey puts bareflow's SSH public key on the ramdisk's
// command line, unless BAREFLOW_BOOT_SSH_AUTHORIZED_KEY names another.
func authorizeBareflowKey(ctx context.Context, cfg *boot.Config, st *store.Store) error {
	if cfg.SSHAuthorizedKey != "" {
		return nil
	}
	signer, err := workers.SSHKey(ctx, st)
	if err != nil {
		return err
	}
	cfg.SSHAuthorizedKey = ramdisk.AuthorizedKey(signer, "bareflow")
	return nil
}
