package ipmisim

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/transport"
	"github.com/bougou/go-ipmi/pkg/types"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSOL activates the SOL payload with go-ipmi's client and exchanges
// characters with a TCP server that plays the machine's serial port: it
// prints a banner and echoes every line in upper case.
func TestSOL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.WriteString(c, "machine console ready\r\n")
				r := bufio.NewReader(c)
				for {
					b, err := r.ReadByte()
					if err != nil {
						return
					}
					_, _ = c.Write(bytes.ToUpper([]byte{b}))
				}
			}()
		}
	}()

	sim := Start(t, Options{SOL: "tcp:" + ln.Addr().String()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gc, err := client.NewClient(sim.Host, sim.Port, sim.User, sim.Password)
	if err != nil {
		t.Fatal(err)
	}
	gc.WithInterface(client.InterfaceLanplus).WithCipherSuiteID(3).WithMaxPrivilegeLevel(types.PrivilegeLevelAdministrator).WithTimeout(time.Second)
	if err := gc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer gc.Close(context.Background())
	if _, err := gc.ActivatePayload(ctx, &transport.ActivatePayloadRequest{PayloadType: types.PayloadTypeSOL, PayloadInstance: 1, EnableEncryption: true, EnableAuthentication: true}); err != nil {
		t.Fatalf("activate SOL: %v\n%s", err, sim.Log())
	}
	pr, pw := io.Pipe()
	out := &syncBuffer{}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- gc.SOLStream(sctx, pr, out, nil) }()
	time.Sleep(500 * time.Millisecond)
	_, _ = io.WriteString(pw, "hello\r")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(out.String(), "HELLO") {
		time.Sleep(50 * time.Millisecond)
	}
	scancel()
	pw.Close()
	t.Logf("stream: %v", <-done)
	t.Logf("out: %q", out.String())
	if !strings.Contains(out.String(), "HELLO") {
		t.Fatalf("console output: got %q, want the echo HELLO", out.String())
	}
	if _, err := gc.DeactivatePayload(ctx, &transport.DeactivatePayloadRequest{PayloadType: types.PayloadTypeSOL, PayloadInstance: 1}); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
}
