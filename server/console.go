package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/net/websocket"

	"bareflow/internal/bmc"
	"bareflow/internal/console"
	"bareflow/internal/store"
)

// The machine console: IPMI Serial over LAN, run by this process (package
// console), bridged to a websocket. The one place where the API talks to a
// BMC itself: a console is interactive, not a workflow.

// WebSocket subprotocols of the console. A browser cannot set headers on a
// websocket, so it offers its API token as a subprotocol,
// "bareflow.token.TOKEN", next to "bareflow.console"; the server answers
// with "bareflow.console" only, never echoing the token. A subprotocol is
// used rather than a query parameter because URLs end up in proxy access
// logs and browser history, while this header is not logged by the API,
// nor usually by proxies.
const (
	consoleProtocol      = "bareflow.console"
	consoleTokenProtocol = "bareflow.token."
)

// consoleNoticeEvery bounds how often a read-only client is told that its
// input went nowhere.
const consoleNoticeEvery = 2 * time.Second

// consoleHub returns the server's console hub, made on first use.
func (s *Server) consoleHub() *console.Hub {
	s.consoleOnce.Do(func() {
		var lg *console.Log
		if s.cfg.DataDir != "" {
			var err error
			if lg, err = console.NewLog(filepath.Join(s.cfg.DataDir, "console"), 0); err != nil {
				s.log.Error("console logs disabled", "error", err)
				lg = nil
			}
		}
		s.consoles = console.NewHub(console.Config{
			Opener: console.SOLOpener{Target: s.consoleTarget},
			Log:    lg,
			Logger: s.cfg.Logger,
		})
		s.consoleLog = lg
	})
	return s.consoles
}

func (s *Server) consoleTarget(ctx context.Context, machineID string) (bmc.Target, error) {
	cred, err := s.store.BMCCredentials(ctx, machineID)
	if err != nil {
		return bmc.Target{}, err
	}
	return bmc.Target{Addr: cred.Addr, Username: cred.User, Password: cred.Password, CipherSuite: cred.CipherSuite}, nil
}

// closeConsoles ends every console session, deactivating SOL.
func (s *Server) closeConsoles() {
	if s.consoles != nil {
		s.consoles.Close()
	}
}

// websocketToken lets a websocket carry its API token as the subprotocol
// "bareflow.token.TOKEN" when it has no Authorization header: it moves the
// token into that header for authenticate.
func (s *Server) websocketToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Header.Get(echo.HeaderAuthorization) == "" {
			for _, p := range websocketProtocols(r) {
				if tok, ok := strings.CutPrefix(p, consoleTokenProtocol); ok && tok != "" {
					r.Header.Set(echo.HeaderAuthorization, "Bearer "+tok)
					break
				}
			}
		}
		return next(c)
	}
}

func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// machineConsole bridges a websocket to the machine's console.
func (s *Server) machineConsole(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	if !m.BMCAddr.IsValid() {
		return &apiError{Status: http.StatusConflict, Code: codeConflict, Message: fmt.Sprintf("machine %s has no BMC", m.Name)}
	}
	mode := console.Mode(c.QueryParam("mode"))
	if err := mode.Validate(); err != nil {
		return errInvalid(err.Error())
	}
	force := false
	if v := c.QueryParam("force"); v != "" {
		if force, err = strconv.ParseBool(v); err != nil {
			return errInvalid("force: want true or false")
		}
	}
	if !strings.EqualFold(c.Request().Header.Get("Upgrade"), "websocket") {
		return errInvalid("this is a websocket; connect with Upgrade: websocket")
	}

	cl, err := s.consoleHub().Attach(c.Request().Context(), m.ID, console.AttachOptions{Mode: mode, Force: force})
	switch {
	case errors.Is(err, console.ErrAlreadyActive):
		return &apiError{Status: http.StatusConflict, Code: codeConflict,
			Message: "another session holds the machine's serial console (SOL); connect with force=true to take it over"}
	case errors.Is(err, console.ErrWriterTaken):
		return &apiError{Status: http.StatusConflict, Code: codeConflict,
			Message: "another client holds the console input; connect read-only or with mode=auto"}
	case err != nil:
		s.log.Warn("cannot open console", "machine_id", m.ID, "error", err, "request_id", requestID(c))
		return &apiError{Status: http.StatusBadGateway, Code: "bmc_error",
			Message: "cannot open the machine's serial console through its BMC"}
	}
	s.auditConsole(c, m.ID, mode, force)

	ws := websocket.Server{
		Handshake: func(cfg *websocket.Config, r *http.Request) error {
			var chosen []string
			for _, p := range cfg.Protocol {
				if p == consoleProtocol {
					chosen = []string{consoleProtocol}
				}
			}
			cfg.Protocol = chosen
			return nil
		},
		Handler: func(conn *websocket.Conn) { s.bridgeConsole(conn, cl, m.Name) },
	}
	ws.ServeHTTP(c.Response(), c.Request())
	return nil
}

func (s *Server) auditConsole(c echo.Context, machineID string, mode console.Mode, force bool) {
	if s.store == nil {
		return
	}
	if mode == "" {
		mode = console.ModeAuto
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 5*time.Second)
	defer cancel()
	e := store.AuditEntry{Actor: actor(c), Action: "console.attach", TargetKind: "machine", TargetID: machineID,
		RemoteAddr: c.RealIP(), Details: map[string]any{"mode": string(mode), "force": force, "request_id": requestID(c)}}
	if err := s.store.AddAudit(ctx, e); err != nil {
		s.log.Error("cannot write audit entry", "error", err, "action", e.Action, "request_id", requestID(c))
	}
}

// bridgeConsole copies the console's output to conn as binary messages and
// conn's messages to the console's input, until either side ends.
func (s *Server) bridgeConsole(conn *websocket.Conn, cl *console.Client, name string) {
	defer conn.Close()
	defer cl.Close()
	conn.PayloadType = websocket.BinaryFrame

	hello := "read-only"
	switch {
	case cl.Writer():
		hello = "you hold the input"
	case cl.Mode() == console.ModeAuto:
		hello = "you take the input when you type first, unless another client holds it"
	}
	_ = websocket.Message.Send(conn, notice(fmt.Sprintf("connected to %s; %s", name, hello)))

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range cl.Output() {
			if err := websocket.Message.Send(conn, b); err != nil {
				cl.Close()
				break
			}
		}
		if err := cl.Err(); errors.Is(err, console.ErrSlowClient) {
			_ = websocket.Message.Send(conn, notice("dropped: too slow to take the console's output"))
		}
		conn.Close() // ends the receive loop
	}()

	var last time.Time
	for {
		var in []byte
		if err := websocket.Message.Receive(conn, &in); err != nil {
			break
		}
		_, err := cl.Write(in)
		switch {
		case errors.Is(err, console.ErrReadOnly):
			if time.Since(last) >= consoleNoticeEvery {
				last = time.Now()
				_ = websocket.Message.Send(conn, notice("read-only: input refused; another client holds the console input"))
			}
		case errors.Is(err, console.ErrClosed):
		case err != nil:
			_ = websocket.Message.Send(conn, notice(err.Error()))
		}
	}
	cl.Close()
	wg.Wait()
}

func notice(msg string) []byte { return []byte("\r\n[bareflow console: " + msg + "]\r\n") }

// machineConsoleLog answers the machine's console log as text, or its last
// tail bytes.
func (s *Server) machineConsoleLog(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var tail int64
	if v := c.QueryParam("tail"); v != "" {
		if tail, err = strconv.ParseInt(v, 10, 64); err != nil || tail < 0 {
			return errInvalid("tail: want a number of bytes")
		}
	}
	s.consoleHub()
	b, err := s.consoleLog.Read(m.ID, tail)
	if errors.Is(err, console.ErrNoLog) {
		return errNotFound(fmt.Sprintf("no console log for machine %s yet", m.Name))
	}
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", b)
}
