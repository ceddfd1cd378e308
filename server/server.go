// Package server is bareflow's HTTP API: machines, operations, power, boot
// devices, tokens and the audit trail, under /api/v1, with bearer-token
// authentication on every call but the health check and the OpenAPI
// document.
//
// The API starts and signals workflows and reads PostgreSQL for listings; it
// never talks to a BMC or a machine itself, but for the serial console
// (console.go), which is interactive rather than a workflow.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.temporal.io/sdk/client"

	"bareflow/contract"
	"bareflow/internal/console"
	"bareflow/internal/raid"
	"bareflow/internal/store"
)

// Config configures the API server.
type Config struct {
	// Addr is where the API listens, host:port. Default 127.0.0.1:8080.
	Addr string
	// WebUIURL is the base URL of the Temporal Web UI, used to link each
	// operation to its run. Empty leaves the link out.
	WebUIURL string
	// Namespace is the Temporal namespace workflows run in. Default "default".
	Namespace string
	// TaskQueue is where workflows are started. Default contract.TaskQueue.
	TaskQueue string
	// StatusTimeout bounds a live power-status read. Default 30s.
	StatusTimeout time.Duration
	// CheckRAID plans a RAID spec on a machine's recorded hardware without
	// touching it and says why it cannot be built. Default: package raid's
	// planner.
	CheckRAID func(contract.RAIDSpec, contract.Inventory) error
	// DataDir is where machine console logs are kept, under console/.
	// Empty keeps none.
	DataDir string
	Logger  *slog.Logger
}

func (c *Config) setDefaults() {
	if c.CheckRAID == nil {
		c.CheckRAID = func(spec contract.RAIDSpec, inv contract.Inventory) error {
			_, err := raid.Plan(spec, inv)
			return err
		}
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.TaskQueue == "" {
		c.TaskQueue = contract.TaskQueue
	}
	if c.StatusTimeout <= 0 {
		c.StatusTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports whether the configuration can be used.
func (c Config) Validate() error {
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("API address %q: %w", c.Addr, err)
		}
	}
	return nil
}

// Server is the HTTP API.
type Server struct {
	cfg      Config
	store    *store.Store
	temporal client.Client
	echo     *echo.Echo
	log      *slog.Logger

	consoleOnce sync.Once // makes consoles and consoleLog (console.go)
	consoles    *console.Hub
	consoleLog  *console.Log
}

// New returns an API server over a store and a Temporal client.
func New(cfg Config, st *store.Store, tc client.Client) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, store: st, temporal: tc, log: cfg.Logger.With("component", "api")}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RequestID())
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimit("1M"))
	e.Use(s.logRequests)
	s.routes(e)
	s.echo = e
	return s
}

// Handler returns the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Listen opens the API's listener, so that a caller learns at once when the
// address is taken.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("API cannot listen on %s (set --api-addr or BAREFLOW_API_ADDR): %w", s.cfg.Addr, err)
	}
	return ln, nil
}

// Serve serves the API on ln until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	defer s.closeConsoles() // websockets are hijacked: Shutdown does not wait for them
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down API: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		s.log.Debug("request", "method", c.Request().Method, "path", c.Path(),
			"status", c.Response().Status, "duration", time.Since(start),
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		return nil
	}
}

func (s *Server) routes(e *echo.Echo) {
	e.GET("/healthz", s.health)
	e.GET("/api/v1/openapi.yaml", s.openAPI)
	// The prepare script checks its own short-lived link, or a bearer token.
	e.GET("/api/v1/adopt/prepare.sh", s.adoptScript)
	api := e.Group("/api/v1", s.authenticate, s.audit)
	// A browser's websocket carries its token as a subprotocol (console.go).
	e.GET("/api/v1/machines/:id/console", s.machineConsole, s.websocketToken, s.authenticate)
	api.GET("/machines/:id/console/log", s.machineConsoleLog)
	api.GET("/machines", s.listMachines)
	api.POST("/machines", s.createMachine)
	api.GET("/machines/:id", s.showMachine)
	api.PATCH("/machines/:id", s.updateMachine)
	api.DELETE("/machines/:id", s.deleteMachine)
	api.GET("/machines/:id/power", s.powerStatus)
	api.POST("/machines/:id/power", s.power)
	api.POST("/machines/:id/boot-device", s.setBootDevice)
	api.POST("/machines/:id/register", s.register)
	api.POST("/machines/:id/raid", s.makeRAID)
	api.POST("/machines/:id/install", s.install)
	api.POST("/machines/:id/reinstall", s.reinstall)
	api.POST("/machines/:id/wipe", s.wipe)
	api.POST("/machines/:id/convert-to-host", s.convertToHost)
	api.POST("/machines/:id/undo-host", s.undoHost)
	api.GET("/hosts", s.listHosts)
	api.GET("/hosts/:id", s.showHost)
	api.PATCH("/hosts/:id", s.updateHost)
	api.POST("/machines/adopt", s.adopt)
	api.GET("/machines/:id/adoption", s.showAdoption)
	api.POST("/adopt/script-link", s.adoptScriptLink)
	api.GET("/machines/:id/operations", s.machineOperations)
	api.GET("/operations", s.listOperations)
	api.GET("/operations/:id", s.showOperation)
	api.POST("/operations/:id/cancel", s.cancelOperation)
	api.POST("/fleets", s.startFleet)
	api.GET("/fleets/:id", s.showFleet)
	api.POST("/fleets/:id/pause", s.pauseFleet)
	api.POST("/fleets/:id/resume", s.resumeFleet)
	api.POST("/fleets/:id/cancel", s.cancelFleet)
	api.GET("/images", s.listImages)
	api.POST("/images", s.createImage)
	api.GET("/images/:id", s.showImage)
	api.DELETE("/images/:id", s.deleteImage)
	api.GET("/networks", s.listNetworks)
	api.POST("/networks", s.createNetwork)
	api.GET("/networks/:id", s.showNetwork)
	api.DELETE("/networks/:id", s.deleteNetwork)
	api.GET("/tokens", s.listTokens)
	api.POST("/tokens", s.createToken)
	api.DELETE("/tokens/:id", s.revokeToken)
	api.GET("/audit", s.listAudit)
}

func (s *Server) health(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return errUnavailable("database unavailable")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
