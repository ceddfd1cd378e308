package devserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const (
	testTaskQueue   = "devserver-test"
	greetWorkflow   = "devserver.Greet"
	waitWorkflow    = "devserver.WaitForProceed"
	signalProceed   = "proceed"
	queryStage      = "stage"
	stageWaiting    = "waiting"
	restartWorkflow = "devserver-restart"

	// testTimeout bounds every wait on the server in these tests.
	testTimeout = 60 * time.Second
	// leftoverDialWindow is how long a test listens for a stopped server's
	// leftover clients.
	leftoverDialWindow = 5 * time.Second
	// waitWorkflowTimer is the timer the waiting workflow races the signal
	// against; the test never lets it fire.
	waitWorkflowTimer = time.Hour
)

// Environment of the child process of TestWorkflowSurvivesRestart.
const (
	childDataDirEnv  = "BAREFLOW_DEVSERVER_TEST_DATA_DIR"
	childFrontendEnv = "BAREFLOW_DEVSERVER_TEST_FRONTEND"
)

type greetInput struct{ Name string }
type greetResult struct{ Greeting string }

// greet runs one activity, the smallest round trip through every service.
func greet(ctx workflow.Context, in greetInput) (greetResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out greetResult
	err := workflow.ExecuteActivity(ctx, compose, in).Get(ctx, &out)
	return out, err
}

func compose(_ context.Context, in greetInput) (greetResult, error) {
	return greetResult{Greeting: "hello " + in.Name}, nil
}

type waitInput struct{ Timeout time.Duration }
type proceedSignal struct{ Note string }
type waitResult struct{ Note string }

// waitForProceed waits for the proceed signal, racing a long timer, and
// reports its stage through a query.
func waitForProceed(ctx workflow.Context, in waitInput) (waitResult, error) {
	stage := stageWaiting
	if err := workflow.SetQueryHandler(ctx, queryStage, func() (string, error) { return stage, nil }); err != nil {
		return waitResult{}, err
	}
	var sig proceedSignal
	timedOut := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, signalProceed), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, &sig)
	})
	sel.AddFuture(workflow.NewTimer(ctx, in.Timeout), func(workflow.Future) { timedOut = true })
	sel.Select(ctx)
	if timedOut {
		return waitResult{}, errors.New("no proceed signal before the timer")
	}
	stage = "done"
	return waitResult{Note: sig.Note}, nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return addr
}

// startServer starts a server, logs how long Start took, and stops it at
// the end of the test.
func startServer(t *testing.T, cfg Config, label string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	begin := time.Now()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start (%s): %v", label, err)
	}
	t.Logf("Start (%s) returned after %s", label, time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, s *Server, namespace string) client.Client {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddr(),
		Namespace: namespace,
		Logger:    sdklog.NewStructuredLogger(quiet),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", s.FrontendAddr(), err)
	}
	t.Cleanup(c.Close)
	return c
}

func startWorker(t *testing.T, c client.Client) worker.Worker {
	t.Helper()
	w := worker.New(c, testTaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(greet, workflow.RegisterOptions{Name: greetWorkflow})
	w.RegisterWorkflowWithOptions(waitForProceed, workflow.RegisterOptions{Name: waitWorkflow})
	w.RegisterActivity(compose)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return w
}

func runGreet(t *testing.T, c client.Client, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: testTaskQueue}, greetWorkflow, greetInput{Name: "rack-1"})
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	var got greetResult
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if want := "hello rack-1"; got.Greeting != want {
		t.Errorf("greeting: got %q, want %q", got.Greeting, want)
	}
}

func TestServerRunsWorkflowsAndUI(t *testing.T) {
	goroutinesBefore := runtime.NumGoroutine()
	uiAddr := freeAddr(t)
	cfg := Config{
		DataDir:      filepath.Join(t.TempDir(), "dev"),
		FrontendAddr: freeAddr(t),
		UIAddr:       uiAddr,
		Namespace:    "bareflow",
		Logger:       testLogger(t),
	}
	s := startServer(t, cfg, "new data dir")
	if got, want := s.UIURL(), "http://"+uiAddr; got != want {
		t.Errorf("UIURL: got %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, DatabaseFile)); err != nil {
		t.Errorf("database file: %v", err)
	}
	c := dial(t, s, cfg.Namespace)
	w := startWorker(t, c)

	t.Run("workflow", func(t *testing.T) {
		runGreet(t, c, "greet-1")
	})

	t.Run("namespace retention", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		desc, err := c.WorkflowService().DescribeNamespace(ctx, describeNamespace(cfg.Namespace))
		if err != nil {
			t.Fatalf("describe namespace: %v", err)
		}
		if got, want := desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(), 7*24*time.Hour; got != want {
			t.Errorf("retention: got %s, want %s", got, want)
		}
	})

	t.Run("schedule", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		h, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID:   "greet-schedule",
			Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
			Action: &client.ScheduleWorkflowAction{
				ID: "greet-scheduled", Workflow: greetWorkflow, TaskQueue: testTaskQueue,
				Args: []any{greetInput{Name: "schedule"}},
			},
		})
		if err != nil {
			t.Fatalf("create schedule: %v", err)
		}
		if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
			t.Fatalf("trigger schedule: %v", err)
		}
		for {
			d, err := h.Describe(ctx)
			if err != nil {
				t.Fatalf("describe schedule: %v", err)
			}
			if len(d.Info.RecentActions) > 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("schedule took no action: %v", ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})

	t.Run("ui", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.UIURL()+"/namespaces/"+cfg.Namespace+"/workflows", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET UI: %v", err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("UI status: got %d, want 200", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("UI content type: got %q, want text/html", ct)
		}
		if !strings.Contains(strings.ToLower(string(body)), "<html") {
			t.Errorf("UI body: got %.80q…, want an HTML page", body)
		}
	})

	t.Run("data dir locked", func(t *testing.T) {
		second := cfg
		second.FrontendAddr, second.UIAddr = freeAddr(t), ""
		_, err := Start(t.Context(), second)
		if !errors.Is(err, ErrDataDirInUse) {
			t.Errorf("second Start on the same data dir: got %v, want ErrDataDirInUse", err)
		}
	})

	// Stop now, ahead of the cleanups, to see what the server leaves behind.
	w.Stop()
	c.Close()
	begin := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop returned after %s", time.Since(begin).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	t.Logf("goroutines: %d before Start, %d two seconds after Stop", goroutinesBefore, runtime.NumGoroutine())
	if p := os.Getenv("DEVSERVER_GOROUTINES"); p != "" {
		f, _ := os.Create(p)
		_ = pprof.Lookup("goroutine").WriteTo(f, 1)
		_ = f.Close()
	}
}

// TestWorkflowSurvivesRestart starts a waiting workflow in a child process,
// which stops its server and exits, then restarts the server on the same data
// dir in this process and finishes the workflow with a signal.
func TestWorkflowSurvivesRestart(t *testing.T) {
	dataDir := t.TempDir()
	frontend := freeAddr(t)

	ctx, cancel := context.WithTimeout(t.Context(), 2*testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRestartChild$", "-test.v")
	cmd.Env = append(os.Environ(), childDataDirEnv+"="+dataDir, childFrontendEnv+"="+frontend)
	out, err := cmd.CombinedOutput()
	t.Logf("child process output:\n%s", out)
	if err != nil {
		t.Fatalf("child process: %v", err)
	}

	cfg := Config{DataDir: dataDir, FrontendAddr: frontend, Logger: testLogger(t)}
	s := startServer(t, cfg, "existing data dir, new process")
	c := dial(t, s, DefaultNamespace)
	w := startWorker(t, c)

	signalled := time.Now()
	if err := c.SignalWorkflow(ctx, restartWorkflow, "", signalProceed, proceedSignal{Note: "after restart"}); err != nil {
		t.Fatalf("signal: %v", err)
	}
	var got waitResult
	if err := c.GetWorkflow(ctx, restartWorkflow, "").Get(ctx, &got); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	t.Logf("workflow completed %s after the signal", time.Since(signalled).Round(time.Millisecond))
	if want := "after restart"; got.Note != want {
		t.Errorf("note: got %q, want %q", got.Note, want)
	}

	// A second restart, within this process, still finds the closed workflow.
	w.Stop()
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	s = startServer(t, cfg, "existing data dir, same process")
	c = dial(t, s, DefaultNamespace)
	desc, err := c.DescribeWorkflowExecution(ctx, restartWorkflow, "")
	if err != nil {
		t.Fatalf("describe after restart: %v", err)
	}
	if got, want := desc.GetWorkflowExecutionInfo().GetStatus(), enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED; got != want {
		t.Errorf("status after restart: got %s, want %s", got, want)
	}
}

// TestRestartChild is the first life of TestWorkflowSurvivesRestart's server.
func TestRestartChild(t *testing.T) {
	dataDir := os.Getenv(childDataDirEnv)
	if dataDir == "" {
		t.Skip("runs only as the child process of TestWorkflowSurvivesRestart")
	}
	s := startServer(t, Config{DataDir: dataDir, FrontendAddr: os.Getenv(childFrontendEnv), Logger: testLogger(t)}, "new data dir")
	c := dial(t, s, DefaultNamespace)
	w := startWorker(t, c)

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: restartWorkflow, TaskQueue: testTaskQueue},
		waitWorkflow, waitInput{Timeout: waitWorkflowTimer})
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	// Wait until a worker has run the workflow up to its wait, so that the
	// restarted server resumes a workflow in flight, not a queued start.
	for {
		v, err := c.QueryWorkflow(ctx, restartWorkflow, "", queryStage)
		var stage string
		if err == nil {
			err = v.Get(&stage)
		}
		if err == nil && stage == stageWaiting {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("workflow never reached %q: %v (last error: %v)", stageWaiting, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	w.Stop()
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestEphemeralServer(t *testing.T) {
	cfg := Config{Ephemeral: true, FrontendAddr: freeAddr(t), Logger: testLogger(t)}
	s := startServer(t, cfg, "ephemeral")
	if got := s.UIURL(); got != "" {
		t.Errorf("UIURL with the UI disabled: got %q, want empty", got)
	}
	c := dial(t, s, DefaultNamespace)
	w := startWorker(t, c)
	runGreet(t, c, "greet-ephemeral")

	// Temporal's Stop leaves some system workers polling. They must not
	// reach the next server started in this process on the same address.
	w.Stop()
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	ln, err := net.Listen("tcp", cfg.FrontendAddr)
	if err != nil {
		t.Fatalf("listen on the stopped frontend's address: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var dials atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			_ = conn.Close()
		}
	}()
	time.Sleep(leftoverDialWindow)
	if n := dials.Load(); n != 0 {
		t.Errorf("connections to the stopped frontend's address within %s: got %d, want 0", leftoverDialWindow, n)
	}
}

func TestStartReportsTakenAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = taken.Close() })

	tests := map[string]struct {
		cfg      Config
		wantFlag string
	}{
		"frontend": {
			cfg:      Config{Ephemeral: true, FrontendAddr: taken.Addr().String()},
			wantFlag: "--temporal-port",
		},
		"ui": {
			cfg:      Config{Ephemeral: true, FrontendAddr: freeAddr(t), UIAddr: taken.Addr().String()},
			wantFlag: "--ui-port",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Start(t.Context(), tc.cfg)
			if !errors.Is(err, ErrAddrInUse) {
				t.Fatalf("Start: got %v, want ErrAddrInUse", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, taken.Addr().String()) || !strings.Contains(msg, tc.wantFlag) || strings.Contains(msg, "\n") {
				t.Errorf("error: got %q, want one line naming %s and %s", msg, taken.Addr(), tc.wantFlag)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"defaults with data dir": {cfg: Config{DataDir: "/tmp/x"}},
		"ephemeral":              {cfg: Config{Ephemeral: true}},
		"ui on wildcard":         {cfg: Config{Ephemeral: true, UIAddr: "0.0.0.0:8233"}},
		"no data dir":            {cfg: Config{}, wantErr: "data dir is required"},
		"data dir with query":    {cfg: Config{DataDir: "/tmp/a?b"}, wantErr: "must not contain"},
		"frontend host name":     {cfg: Config{Ephemeral: true, FrontendAddr: "localhost:7233"}, wantErr: "frontend address"},
		"frontend port zero":     {cfg: Config{Ephemeral: true, FrontendAddr: "127.0.0.1:0"}, wantErr: "port must not be 0"},
		"ui without port":        {cfg: Config{Ephemeral: true, UIAddr: "127.0.0.1"}, wantErr: "ui address"},
		"ui on frontend":         {cfg: Config{Ephemeral: true, UIAddr: DefaultFrontendAddr}, wantErr: "also the frontend"},
		"namespace with spaces":  {cfg: Config{Ephemeral: true, Namespace: " lab "}, wantErr: "namespace"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate: got %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate: got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func describeNamespace(name string) *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: name}
}
