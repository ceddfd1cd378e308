package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"bareflow/boot"
	"bareflow/internal/devserver"
	"bareflow/internal/secret"
	"bareflow/internal/store"
	"bareflow/server"
)

// devFlags are the flags of `bareflow dev`.
type devFlags struct {
	dataDir      string
	ephemeral    bool
	apiAddr      string
	temporalAddr string
	uiAddr       string
	noUI         bool
	noWorker     bool
	databaseURL  string
}

// runDev runs the whole of bareflow in one process: an embedded Temporal
// server with its Web UI, the API, a worker and the boot service.
func runDev(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	f := devFlags{}
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.dataDir, "data-dir", e.DataDir, "folder for Temporal's SQLite file, the secret key and the first API token")
	fs.BoolVar(&f.ephemeral, "ephemeral", false, "keep Temporal's state in memory: running workflows are lost at exit")
	fs.StringVar(&f.apiAddr, "api-addr", e.APIAddr, "address the API listens on")
	fs.StringVar(&f.temporalAddr, "temporal-addr", defaultTemporal, "address of the embedded Temporal frontend (gRPC)")
	fs.StringVar(&f.uiAddr, "ui-addr", defaultUIAddr, "address of the Temporal Web UI")
	fs.BoolVar(&f.noUI, "headless", false, "do not serve the Temporal Web UI")
	fs.BoolVar(&f.noWorker, "no-worker", false, "run no worker: workflows wait for a `bareflow worker` started on its own (which can then be restarted alone)")
	fs.StringVar(&f.databaseURL, "database-url", e.DatabaseURL, "PostgreSQL URL (BAREFLOW_DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	e.DataDir, e.APIAddr, e.DatabaseURL, e.TemporalAddress = f.dataDir, f.apiAddr, f.databaseURL, f.temporalAddr
	start := time.Now()

	logger, err := newLogger(e, os.Stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data folder: %w", err)
	}
	box, err := devSecretBox(e, f.dataDir)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, e, box, logger, true)
	if err != nil {
		return err
	}
	defer st.Close()

	uiAddr := f.uiAddr
	if f.noUI {
		uiAddr = ""
	}
	ts, err := devserver.Start(ctx, devserver.Config{
		DataDir: filepath.Join(f.dataDir, "temporal"), Ephemeral: f.ephemeral,
		FrontendAddr: f.temporalAddr, UIAddr: uiAddr, Namespace: e.TemporalNamespace, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("start embedded Temporal: %w", err)
	}
	defer func() {
		if err := ts.Stop(); err != nil {
			logger.Warn("stop embedded Temporal", "error", err)
		}
	}()
	e.TemporalAddress = ts.FrontendAddr()
	e.TemporalAPIKey, e.TemporalTLS, e.TemporalTLSCert, e.TemporalTLSCA = "", "false", "", ""
	if e.WebUIURL == "" {
		e.WebUIURL = ts.UIURL()
	}
	tc, err := dialTemporal(ctx, e, logger)
	if err != nil {
		return err
	}
	defer tc.Close()

	token, err := firstToken(ctx, st, e.tokenFile())
	if err != nil {
		return err
	}
	api := server.New(server.Config{Addr: e.APIAddr, WebUIURL: e.WebUIURL, Namespace: e.TemporalNamespace, TaskQueue: taskQueue(e), DataDir: f.dataDir, Logger: logger}, st, tc)
	ln, err := api.Listen()
	if err != nil {
		return err
	}
	if !f.noWorker {
		w, err := startWorker(ctx, e, tc, st, logger)
		if err != nil {
			ln.Close()
			return err
		}
		defer w.Stop()
	}

	bootCfg, err := bootConfig(e)
	if err != nil {
		ln.Close()
		return err
	}
	if err := authorizeBareflowKey(ctx, &bootCfg, st); err != nil {
		ln.Close()
		return err
	}
	bootSvc, err := boot.New(bootCfg, st, tc, logger)
	if err != nil {
		ln.Close()
		return fmt.Errorf("boot service: %w", err)
	}

	g := newGroup(ctx)
	g.Go(func() error { return api.Serve(g.ctx, ln) })
	g.Go(func() error { return bootSvc.Run(g.ctx) })

	fmt.Fprintf(stdout, "bareflow dev is up in %s (version %s)\n", time.Since(start).Round(time.Millisecond), version)
	fmt.Fprintf(stdout, "  API:                http://%s/api/v1  (OpenAPI: /api/v1/openapi.yaml)\n", ln.Addr())
	if ts.UIURL() != "" {
		fmt.Fprintf(stdout, "  Temporal Web UI:    %s\n", ts.UIURL())
	}
	fmt.Fprintf(stdout, "  Temporal frontend:  %s (namespace %s, task queue %s)\n", ts.FrontendAddr(), e.TemporalNamespace, taskQueue(e))
	if f.noWorker {
		fmt.Fprintf(stdout, "  Worker:             none here (--no-worker): start `bareflow worker` with TEMPORAL_ADDRESS=%s\n", ts.FrontendAddr())
	}
	fmt.Fprintf(stdout, "  Boot service:       %s\n", describeBoot(bootCfg))
	fmt.Fprintf(stdout, "  PostgreSQL:         %s\n", store.RedactDSN(e.DatabaseURL))
	fmt.Fprintf(stdout, "  Data:               %s\n", f.dataDir)
	fmt.Fprintf(stdout, "  API token:          %s\n", token)
	if a := ln.Addr().String(); a != defaultAPIAddr {
		fmt.Fprintf(stdout, "  CLI:                export BAREFLOW_API_URL=http://%s\n", a)
	}
	err = g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// devSecretBox uses BAREFLOW_SECRET_KEY(_FILE) when set, else a key file in
// the data folder, made on first start with mode 0600.
func devSecretBox(e env, dataDir string) (*secret.Box, error) {
	if e.SecretKey != "" || e.SecretKeyFile != "" {
		return secretBox(e)
	}
	key, err := secret.EnsureKeyFile(filepath.Join(dataDir, secretKeyFileName))
	if err != nil {
		return nil, err
	}
	return secret.NewBox(key)
}

// firstToken makes the first API token when there is none and saves it in
// tokenFile (mode 0600) for the CLI. It returns what to print: the token, or
// where the existing one is.
func firstToken(ctx context.Context, st *store.Store, tokenFile string) (string, error) {
	n, err := st.CountTokens(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		if b, err := os.ReadFile(tokenFile); err == nil {
			return strings.TrimSpace(string(b)) + "  (saved in " + tokenFile + ")", nil
		}
		return "tokens exist already; create another with 'bareflow token create NAME'", nil
	}
	plain, _, err := st.CreateToken(ctx, "admin")
	if err != nil {
		return "", fmt.Errorf("create the first API token: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(tokenFile), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(tokenFile, []byte(plain+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save the first API token: %w", err)
	}
	return plain + "  (saved in " + tokenFile + ")", nil
}
