// Package console is the machines' serial console: IPMI Serial over LAN
// (SOL) shared by any number of clients.
//
// A Hub keeps at most one SOL session per machine. The first client to
// Attach opens it (activating the SOL payload with the machine's BMC
// credentials); the last one to leave closes it (deactivating the payload).
// In between:
//
//		             Attach (first)                  Close (last)
//		  no session ──────────────▶ open ──stream──▶ deactivate ──▶ no session
//		                              ▲       │
//		                              │       │ BMC session dropped
//		                              └─wait──┘ (while clients remain)
//
//	  - Output fan-out: every byte the machine sends goes to every client,
//	    and to the machine's console log (see Log).
//	  - One writer: input comes from one client at a time. A client attached
//	    in ModeWrite takes the input at once (or is refused when another holds
//	    it); a ModeAuto client takes it with its first keystroke when nobody
//	    holds it; a ModeRead client never does. Input from a client that does
//	    not hold it fails with ErrReadOnly.
//	  - Force: a BMC has one SOL payload instance. When another session holds
//	    it, opening fails with ErrAlreadyActive, unless the client asked to
//	    force, which deactivates the other session's payload first.
//	  - Keep-alive: the stream polls the BMC with an SOL packet every 100 ms,
//	    which is also what keeps the RMCP+ session from timing out.
//	  - Reconnect: when the stream ends with an error while clients remain,
//	    the Hub tells them, waits Config.ReconnectDelay and opens a new
//	    session, forcing the payload free: the one it held may still look
//	    active to the BMC.
//
// The Hub runs in the API server process: a console is interactive and
// lives as long as someone looks at it, so it is not a workflow.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Errors of Attach and Client.Write.
var (
	// ErrAlreadyActive means another session holds the machine's SOL
	// payload; attaching with Force takes it over.
	ErrAlreadyActive = errors.New("SOL is already active in another session")
	// ErrWriterTaken means a ModeWrite client was refused because another
	// client holds the console's input.
	ErrWriterTaken = errors.New("another client holds the console input")
	// ErrReadOnly means input came from a client that does not hold the
	// console's input.
	ErrReadOnly = errors.New("read-only console client")
	// ErrClosed means the client or the hub is closed.
	ErrClosed = errors.New("console client closed")
	// ErrSlowClient means a client did not take the machine's output fast
	// enough and was dropped.
	ErrSlowClient = errors.New("console client too slow, dropped")
)

// Stream is one activated SOL payload.
type Stream interface {
	// Run sends what it reads from in to the machine's serial port and
	// writes what the machine sends to out, until ctx is done (it then
	// returns ctx.Err()) or the session fails.
	Run(ctx context.Context, in io.Reader, out io.Writer) error
	// Close deactivates the payload and ends the BMC session.
	Close(ctx context.Context) error
}

// Opener opens SOL sessions.
type Opener interface {
	// Open activates the SOL payload of machineID's BMC. When another
	// session holds it, Open fails with ErrAlreadyActive unless force is
	// set, which deactivates it first.
	Open(ctx context.Context, machineID string, force bool) (Stream, error)
}

// Mode says whether a client may type.
type Mode string

// Modes of a client.
const (
	// ModeAuto takes the input with the first keystroke when nobody holds it.
	ModeAuto Mode = "auto"
	// ModeWrite takes the input at once; Attach fails with ErrWriterTaken
	// when another client holds it.
	ModeWrite Mode = "write"
	// ModeRead never takes the input.
	ModeRead Mode = "read"
)

// Validate reports whether m is a known mode. The empty mode means ModeAuto.
func (m Mode) Validate() error {
	switch m {
	case "", ModeAuto, ModeWrite, ModeRead:
		return nil
	}
	return fmt.Errorf("console mode %q: want auto, write or read", string(m))
}

// Defaults of Config.
const (
	DefaultReconnectDelay = 2 * time.Second
	DefaultOpenTimeout    = 15 * time.Second
	DefaultCloseTimeout   = 5 * time.Second
	// clientBuffer is how many chunks of output a client may lag behind
	// before it is dropped.
	clientBuffer = 256
)

// Config configures a Hub.
type Config struct {
	// Opener opens the SOL sessions. Required.
	Opener Opener
	// Log keeps each machine's console log; nil keeps none.
	Log *Log
	// ReconnectDelay is the wait before opening a dropped session again.
	// Default DefaultReconnectDelay.
	ReconnectDelay time.Duration
	// OpenTimeout bounds opening a session. Default DefaultOpenTimeout.
	OpenTimeout time.Duration
	// Logger receives a record when a session opens, drops and closes.
	Logger *slog.Logger
}

// Hub is the consoles of all machines.
type Hub struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
}

// NewHub returns a Hub.
func NewHub(cfg Config) *Hub {
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = DefaultReconnectDelay
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = DefaultOpenTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{cfg: cfg, log: cfg.Logger.With("component", "console"), sessions: map[string]*session{}}
}

// AttachOptions say how a client joins a console.
type AttachOptions struct {
	Mode Mode
	// Force takes the SOL payload over when another session holds it.
	Force bool
}

// Attach joins machineID's console, opening its SOL session when this is
// the first client. The client must be closed.
func (h *Hub) Attach(ctx context.Context, machineID string, opts AttachOptions) (*Client, error) {
	if err := opts.Mode.Validate(); err != nil {
		return nil, err
	}
	if opts.Mode == "" {
		opts.Mode = ModeAuto
	}
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, ErrClosed
		}
		s := h.sessions[machineID]
		if s == nil {
			s = &session{hub: h, machineID: machineID, clients: map[*Client]struct{}{}, ready: make(chan struct{}), done: make(chan struct{})}
			h.sessions[machineID] = s
			h.mu.Unlock()
			s.start(ctx, opts.Force)
		} else {
			h.mu.Unlock()
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if s.openErr != nil {
			return nil, s.openErr
		}
		c, err := s.add(opts.Mode)
		if errors.Is(err, errSessionEnded) {
			<-s.done // the session is on its way out; start a new one
			continue
		}
		return c, err
	}
}

// Close ends every session.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	var all []*session
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.stop()
		<-s.done
	}
}

// Active reports whether machineID has an open SOL session.
func (h *Hub) Active(machineID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.sessions[machineID]
	return ok
}

var errSessionEnded = errors.New("console session ended")

// session is one machine's SOL session and its clients.
type session struct {
	hub       *Hub
	machineID string

	ready   chan struct{} // closed once the first open is done
	openErr error         // set before ready is closed
	done    chan struct{} // closed when the session has ended

	mu      sync.Mutex
	clients map[*Client]struct{}
	writer  *Client
	ending  bool
	cancel  context.CancelFunc

	inMu sync.Mutex
	in   *io.PipeWriter // input of the running stream, nil between streams
}

// start opens the session's first stream, then runs it in the background.
func (s *session) start(ctx context.Context, force bool) {
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.hub.cfg.OpenTimeout)
	st, err := s.hub.cfg.Opener.Open(octx, s.machineID, force)
	cancel()
	if err != nil {
		s.openErr = fmt.Errorf("open console of %s: %w", s.machineID, err)
		s.hub.remove(s)
		close(s.ready)
		close(s.done)
		return
	}
	rctx, rcancel := context.WithCancel(context.Background())
	s.cancel = rcancel
	s.hub.log.Info("console session opened", "machine_id", s.machineID, "force", force)
	s.hub.cfg.Log.mark(s.machineID, "session opened")
	close(s.ready)
	go s.run(rctx, st)
}

func (h *Hub) remove(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.machineID] == s {
		delete(h.sessions, s.machineID)
	}
}

// run streams until the last client leaves, reopening a dropped stream.
func (s *session) run(ctx context.Context, st Stream) {
	defer close(s.done)
	defer s.hub.remove(s)
	for {
		pr, pw := io.Pipe()
		s.inMu.Lock()
		s.in = pw
		s.inMu.Unlock()
		err := st.Run(ctx, pr, fanout{s})
		_ = pr.CloseWithError(io.ErrClosedPipe) // unblocks a pending input
		s.inMu.Lock()
		s.in = nil
		s.inMu.Unlock()

		cctx, cancel := context.WithTimeout(context.Background(), DefaultCloseTimeout)
		cerr := st.Close(cctx)
		cancel()
		if ctx.Err() != nil {
			s.hub.log.Info("console session closed", "machine_id", s.machineID, "error", cerr)
			s.hub.cfg.Log.mark(s.machineID, "session closed")
			return
		}
		s.hub.log.Warn("console session dropped", "machine_id", s.machineID, "error", err)
		s.notice("connection to the BMC lost; reconnecting")
		s.hub.cfg.Log.mark(s.machineID, "session dropped")
		for st = nil; st == nil; {
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.hub.cfg.ReconnectDelay):
			}
			octx, cancel := context.WithTimeout(ctx, s.hub.cfg.OpenTimeout)
			st, err = s.hub.cfg.Opener.Open(octx, s.machineID, true)
			cancel()
			if err != nil {
				s.hub.log.Warn("console reconnect failed", "machine_id", s.machineID, "error", err)
				st = nil
			}
		}
		s.hub.log.Info("console session reopened", "machine_id", s.machineID)
		s.hub.cfg.Log.mark(s.machineID, "session reopened")
		s.notice("reconnected")
	}
}

// add joins a client in mode.
func (s *session) add(mode Mode) (*Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ending {
		return nil, errSessionEnded
	}
	if mode == ModeWrite && s.writer != nil {
		return nil, ErrWriterTaken
	}
	c := &Client{s: s, mode: mode, out: make(chan []byte, clientBuffer)}
	s.clients[c] = struct{}{}
	if mode == ModeWrite {
		s.writer = c
	}
	return c, nil
}

// leave removes c; the last client to leave ends the session.
func (s *session) leave(c *Client, why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c]; !ok {
		return
	}
	delete(s.clients, c)
	if s.writer == c {
		s.writer = nil
	}
	c.err = why
	close(c.out)
	if len(s.clients) == 0 {
		s.stopLocked()
	}
}

func (s *session) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		delete(s.clients, c)
		c.err = ErrClosed
		close(c.out)
	}
	s.writer = nil
	s.stopLocked()
}

func (s *session) stopLocked() {
	if s.ending {
		return
	}
	s.ending = true
	if s.cancel != nil {
		s.cancel()
	}
}

// broadcast sends b to every client and drops those that lag behind.
func (s *session) broadcast(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		select {
		case c.out <- b:
		default:
			delete(s.clients, c)
			if s.writer == c {
				s.writer = nil
			}
			c.err = ErrSlowClient
			close(c.out)
		}
	}
	if len(s.clients) == 0 {
		s.stopLocked()
	}
}

// notice tells every client something about the session, in band.
func (s *session) notice(msg string) {
	s.broadcast(noticeLine(msg))
}

func noticeLine(msg string) []byte {
	return []byte("\r\n[bareflow console: " + msg + "]\r\n")
}

// input passes b to the machine.
func (s *session) input(b []byte) (int, error) {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.in == nil {
		return 0, errors.New("console is reconnecting; input dropped")
	}
	return s.in.Write(b)
}

// fanout is the output side of a stream.
type fanout struct{ s *session }

func (f fanout) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	f.s.hub.cfg.Log.append(f.s.machineID, b)
	f.s.broadcast(b)
	return len(p), nil
}

// Client is one viewer of a machine's console.
type Client struct {
	s    *session
	mode Mode
	out  chan []byte
	err  error // why out was closed; set before close, read after

	closeOnce sync.Once
}

// Output delivers the machine's output, and the Hub's notices as lines
// "[bareflow console: …]". It is closed when the client is closed or
// dropped; Err then says why.
func (c *Client) Output() <-chan []byte { return c.out }

// Err says why Output was closed.
func (c *Client) Err() error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.err
}

// Mode returns the mode c attached with.
func (c *Client) Mode() Mode { return c.mode }

// Writer reports whether c holds the console's input.
func (c *Client) Writer() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.writer == c
}

// Write sends p to the machine's serial port. A ModeAuto client takes the
// input when nobody holds it; otherwise input from a client that does not
// hold it fails with ErrReadOnly.
func (c *Client) Write(p []byte) (int, error) {
	c.s.mu.Lock()
	if _, ok := c.s.clients[c]; !ok {
		c.s.mu.Unlock()
		return 0, ErrClosed
	}
	if c.s.writer == nil && c.mode == ModeAuto {
		c.s.writer = c
	}
	w := c.s.writer == c
	c.s.mu.Unlock()
	if !w {
		return 0, ErrReadOnly
	}
	return c.s.input(p)
}

// Close leaves the console. The last client to leave closes the SOL
// session.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.s.leave(c, ErrClosed) })
	return nil
}

// Wait waits until the session c belonged to has ended, for tests and
// shutdown.
func (c *Client) Wait(ctx context.Context) error {
	select {
	case <-c.s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
