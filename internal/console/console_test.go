package console

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSOL plays a BMC with one SOL payload: the machine behind it echoes
// input in upper case, and a test can make it print or drop the session.
type fakeSOL struct {
	mu      sync.Mutex
	active  bool
	opens   int
	forced  int
	closes  int
	print   chan []byte
	drop    chan struct{}
	openErr error
}

func newFakeSOL() *fakeSOL {
	return &fakeSOL{print: make(chan []byte, 16), drop: make(chan struct{}, 1)}
}

func (f *fakeSOL) Open(ctx context.Context, machineID string, force bool) (Stream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr != nil {
		return nil, f.openErr
	}
	if f.active && !force {
		return nil, ErrAlreadyActive
	}
	if f.active {
		f.forced++
	}
	f.active = true
	f.opens++
	return &fakeStream{f: f}, nil
}

func (f *fakeSOL) state() (active bool, opens, closes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active, f.opens, f.closes
}

type fakeStream struct{ f *fakeSOL }

func (s *fakeStream) Run(ctx context.Context, in io.Reader, out io.Writer) error {
	typed := make(chan []byte)
	go func() {
		b := make([]byte, 64)
		for {
			n, err := in.Read(b)
			if err != nil {
				return
			}
			select {
			case typed <- bytes.ToUpper(append([]byte(nil), b[:n]...)):
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.f.drop:
			return errors.New("session dropped")
		case b := <-typed:
			_, _ = out.Write(b)
		case b := <-s.f.print:
			_, _ = out.Write(b)
		}
	}
}

func (s *fakeStream) Close(ctx context.Context) error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.active = false
	s.f.closes++
	return nil
}

// readUntil reads c's output until it contains want.
func readUntil(t *testing.T, c *Client, want string) string {
	t.Helper()
	var got strings.Builder
	deadline := time.After(5 * time.Second)
	for !strings.Contains(got.String(), want) {
		select {
		case b, ok := <-c.Output():
			if !ok {
				t.Fatalf("output closed (%v); got %q, want %q in it", c.Err(), got.String(), want)
			}
			got.Write(b)
		case <-deadline:
			t.Fatalf("output: got %q, want %q in it", got.String(), want)
		}
	}
	return got.String()
}

func newTestHub(t *testing.T) (*Hub, *fakeSOL, *Log) {
	t.Helper()
	f := newFakeSOL()
	l, err := NewLog(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHub(Config{Opener: f, Log: l, ReconnectDelay: 10 * time.Millisecond})
	t.Cleanup(h.Close)
	return h, f, l
}

func TestHubFanOutAndSingleWriter(t *testing.T) {
	h, f, l := newTestHub(t)
	ctx := context.Background()
	a, err := h.Attach(ctx, "m1", AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Attach(ctx, "m1", AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.Attach(ctx, "m1", AttachOptions{Mode: ModeRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, opens, _ := f.state(); opens != 1 {
		t.Fatalf("SOL activations for three clients: got %d, want 1", opens)
	}

	f.print <- []byte("login: ")
	for _, c := range []*Client{a, b, r} {
		readUntil(t, c, "login: ")
	}

	// a types first and takes the input; b and r are refused.
	if _, err := a.Write([]byte("root\n")); err != nil {
		t.Fatalf("first writer: %v", err)
	}
	for _, c := range []*Client{a, b, r} {
		readUntil(t, c, "ROOT\n")
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("second auto client typing: got %v, want ErrReadOnly", err)
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only client typing: got %v, want ErrReadOnly", err)
	}
	if _, err := h.Attach(ctx, "m1", AttachOptions{Mode: ModeWrite}); !errors.Is(err, ErrWriterTaken) {
		t.Fatalf("write client while a holds the input: got %v, want ErrWriterTaken", err)
	}

	// When a leaves, the next auto client to type takes the input; a
	// read-only one never does.
	a.Close()
	if _, err := r.Write([]byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only client after the writer left: got %v, want ErrReadOnly", err)
	}
	if _, err := b.Write([]byte("ls\n")); err != nil {
		t.Fatalf("b after a left: %v", err)
	}
	readUntil(t, r, "LS\n")

	got, err := l.Read("m1", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"session opened", "login: ", "ROOT\n", "LS\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("console log: got %q, want %q in it", got, want)
		}
	}
	tail, err := l.Read("m1", 3)
	if err != nil {
		t.Fatal(err)
	}
	if string(tail) != "LS\n" {
		t.Errorf("log tail of 3 bytes: got %q, want %q", tail, "LS\n")
	}
}

func TestHubLastClientDeactivates(t *testing.T) {
	h, f, l := newTestHub(t)
	ctx := context.Background()
	a, err := h.Attach(ctx, "m1", AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Attach(ctx, "m1", AttachOptions{Mode: ModeRead})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if active, _, closes := f.state(); !active || closes != 0 {
		t.Fatalf("after one of two left: active=%v closes=%d, want active and no close", active, closes)
	}
	b.Close()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	if active, _, closes := f.state(); active || closes != 1 {
		t.Fatalf("after the last left: active=%v closes=%d, want deactivated once", active, closes)
	}
	if h.Active("m1") {
		t.Fatal("hub still has a session after the last client left")
	}
	if got, _ := l.Read("m1", 0); !strings.Contains(string(got), "session closed") {
		t.Errorf("console log: got %q, want a session closed marker", got)
	}

	// A new client opens a new session.
	c, err := h.Attach(ctx, "m1", AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, opens, _ := f.state(); opens != 2 {
		t.Fatalf("activations: got %d, want 2", opens)
	}
}

func TestHubForce(t *testing.T) {
	h, f, _ := newTestHub(t)
	f.active = true // another session holds SOL
	if _, err := h.Attach(context.Background(), "m1", AttachOptions{}); !errors.Is(err, ErrAlreadyActive) {
		t.Fatalf("attach while another session holds SOL: got %v, want ErrAlreadyActive", err)
	}
	if h.Active("m1") {
		t.Fatal("a failed open left a session behind")
	}
	c, err := h.Attach(context.Background(), "m1", AttachOptions{Force: true})
	if err != nil {
		t.Fatalf("attach with force: %v", err)
	}
	defer c.Close()
	if f.forced != 1 {
		t.Fatalf("forced activations: got %d, want 1", f.forced)
	}
}

func TestHubReconnects(t *testing.T) {
	h, f, _ := newTestHub(t)
	c, err := h.Attach(context.Background(), "m1", AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f.drop <- struct{}{}
	readUntil(t, c, "reconnected")
	if _, opens, closes := f.state(); opens != 2 || closes != 1 {
		t.Fatalf("after a drop: opens=%d closes=%d, want 2 and 1", opens, closes)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.Write([]byte("up\n")); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("write after reconnect: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	readUntil(t, c, "UP\n")
}

func TestHubSlowClientDropped(t *testing.T) {
	h, f, _ := newTestHub(t)
	slow, err := h.Attach(context.Background(), "m1", AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := h.Attach(context.Background(), "m1", AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	go func() {
		for range fast.Output() {
		}
	}()
	go func() {
		for range clientBuffer + 10 {
			f.print <- []byte("x")
		}
	}()
	deadline := time.After(5 * time.Second)
	for n := 0; ; n++ {
		select {
		case _, ok := <-slow.Output():
			if !ok {
				if !errors.Is(slow.Err(), ErrSlowClient) {
					t.Fatalf("slow client closed with %v, want ErrSlowClient", slow.Err())
				}
				return
			}
			if n == 0 {
				time.Sleep(200 * time.Millisecond) // fall behind
			}
		case <-deadline:
			t.Fatal("slow client was not dropped")
		}
	}
}

func TestLogCap(t *testing.T) {
	l, err := NewLog(t.TempDir(), 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		l.append("m1", []byte(strings.Repeat(string(rune('a'+i%26)), 9)+"\n"))
	}
	got, err := l.Read("m1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 100 || !strings.HasSuffix(string(got), "ddddddddd\n") {
		t.Fatalf("capped log: got %d bytes %q, want at most 100 ending with the last line", len(got), got)
	}
	if _, err := l.Read("m2", 0); !errors.Is(err, ErrNoLog) {
		t.Fatalf("log of a machine never seen: got %v, want ErrNoLog", err)
	}
	if _, err := l.Read("../x", 0); err == nil {
		t.Fatal("log of a bad machine ID: got no error")
	}
}
