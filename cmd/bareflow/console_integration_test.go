package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/transport"
	"github.com/bougou/go-ipmi/pkg/types"
	"golang.org/x/net/websocket"

	"bareflow/internal/lab/ipmisim"
)

// serialPort plays a machine's serial port for ipmi_sim's SOL: it accepts
// ipmi_sim's TCP connection, echoes every byte it receives in upper case,
// and answers a line "boot" with a banner.
type serialPort struct {
	ln net.Listener
	mu sync.Mutex
	rx bytes.Buffer // everything the machine received
}

func startSerialPort(t *testing.T) *serialPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &serialPort{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go p.serve(c)
		}
	}()
	return p
}

func (p *serialPort) serve(c net.Conn) {
	defer c.Close()
	b := make([]byte, 256)
	var line []byte
	for {
		n, err := c.Read(b)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.rx.Write(b[:n])
		p.mu.Unlock()
		if _, err := c.Write(bytes.ToUpper(b[:n])); err != nil {
			return
		}
		for _, ch := range b[:n] {
			if ch == '\r' || ch == '\n' {
				if string(line) == "boot" {
					_, _ = c.Write([]byte("\r\nbareflow test machine, serial console ready\r\n"))
				}
				line = line[:0]
				continue
			}
			line = append(line, ch)
		}
	}
}

func (p *serialPort) received() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rx.String()
}

// wsConsole is a websocket client of a machine's console.
type wsConsole struct {
	conn *websocket.Conn
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

// dialConsole opens the console websocket; with protocolToken the token
// travels as a subprotocol, as a browser sends it, else as a header.
func dialConsole(t *testing.T, dev *devProcess, machineID, query string, protocolToken bool) (*wsConsole, error) {
	t.Helper()
	cfg := consoleConfig(t, dev, machineID, query, protocolToken)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := cfg.DialContext(ctx)
	if err != nil {
		return nil, err
	}
	return newWSConsole(t, conn), nil
}

// consoleConfig is the websocket configuration of a machine's console.
func consoleConfig(t *testing.T, dev *devProcess, machineID, query string, protocolToken bool) *websocket.Config {
	t.Helper()
	u := strings.Replace(dev.apiURL, "http://", "ws://", 1) + "/api/v1/machines/" + machineID + "/console"
	if query != "" {
		u += "?" + query
	}
	cfg, err := websocket.NewConfig(u, dev.apiURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Protocol = []string{"bareflow.console"}
	if protocolToken {
		cfg.Protocol = append(cfg.Protocol, "bareflow.token."+dev.token)
	} else {
		cfg.Header.Set("Authorization", "Bearer "+dev.token)
	}
	return cfg
}

// newWSConsole reads what the console websocket conn sends until it
// closes; the connection is closed when the test ends.
func newWSConsole(t *testing.T, conn *websocket.Conn) *wsConsole {
	t.Helper()
	if got := conn.Config().Protocol; len(got) != 1 || got[0] != "bareflow.console" {
		t.Errorf("negotiated subprotocol: got %q, want [bareflow.console]", got)
	}
	w := &wsConsole{conn: conn, done: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(w.done)
		for {
			var b []byte
			if err := websocket.Message.Receive(conn, &b); err != nil {
				return
			}
			w.mu.Lock()
			w.out.Write(b)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *wsConsole) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

func (w *wsConsole) waitFor(t *testing.T, what, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(w.output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %q, want %q in it", what, w.output(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *wsConsole) send(t *testing.T, s string) {
	t.Helper()
	if err := websocket.Message.Send(w.conn, []byte(s)); err != nil {
		t.Fatalf("send %q: %v", s, err)
	}
}

// consoleRefusal asks for the console websocket with an incomplete handshake
// and returns the API's status and answer: its refusals come before the
// upgrade, as ordinary error answers.
func consoleRefusal(t *testing.T, dev *devProcess, machineID, query string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", dev.apiURL+"/api/v1/machines/"+machineID+"/console?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+dev.token)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(bytes.Buffer)
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// solClient is another IPMI session with the simulated BMC, standing for a
// console that is not bareflow's.
func solClient(t *testing.T, sim *ipmisim.Sim) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gc, err := client.NewClient(sim.Host, sim.Port, sim.User, sim.Password)
	if err != nil {
		t.Fatal(err)
	}
	gc.WithInterface(client.InterfaceLanplus).WithCipherSuiteID(3).WithMaxPrivilegeLevel(types.PrivilegeLevelAdministrator).WithTimeout(time.Second)
	if err := gc.Connect(ctx); err != nil {
		t.Fatalf("IPMI session: %v", err)
	}
	t.Cleanup(func() { _ = gc.Close(context.Background()) })
	return gc
}

func activateSOL(ctx context.Context, gc *client.Client) error {
	_, err := gc.ActivatePayload(ctx, &transport.ActivatePayloadRequest{PayloadType: types.PayloadTypeSOL, PayloadInstance: 1, EnableEncryption: true, EnableAuthentication: true})
	return err
}

func deactivateSOL(ctx context.Context, gc *client.Client) error {
	_, err := gc.DeactivatePayload(ctx, &transport.DeactivatePayloadRequest{PayloadType: types.PayloadTypeSOL, PayloadInstance: 1})
	return err
}

// TestDevConsole runs the serial console end to end: `bareflow dev`, a
// simulated BMC whose SOL is wired to a test process playing the machine's
// serial port, websocket clients and the CLI in a terminal.
func TestDevConsole(t *testing.T) {
	port := startSerialPort(t)
	sim := ipmisim.Start(t, ipmisim.Options{SOL: "tcp:" + port.ln.Addr().String()})
	o := newDevOptions(t)
	// Debug logs every request: the token must not show up in them.
	o.extraEnv = []string{"BAREFLOW_LOG_LEVEL=debug"}
	dev := startDev(t, &o)
	m := dev.createMachine(t, "rack7-u01", sim, sim.Password)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("websockets", func(t *testing.T) {
		// The first client sends its token as a browser would.
		w, err := dialConsole(t, dev, m.ID, "", true)
		if err != nil {
			t.Fatalf("open console: %v", err)
		}
		w.waitFor(t, "first client's greeting", "take the input when you type first")
		r, err := dialConsole(t, dev, m.Name, "mode=read", false)
		if err != nil {
			t.Fatalf("open read-only console: %v", err)
		}
		r.waitFor(t, "reader's greeting", "read-only")

		w.send(t, "boot\r")
		w.waitFor(t, "writer's console", "serial console ready")
		r.waitFor(t, "reader's console", "serial console ready")
		w.send(t, "hello\r")
		w.waitFor(t, "writer's console", "HELLO")
		r.waitFor(t, "reader's console", "HELLO")

		r.send(t, "xyz")
		r.waitFor(t, "reader typing", "read-only: input refused")
		if got := port.received(); strings.Contains(got, "xyz") {
			t.Fatalf("machine received %q: the read-only client's input got through", got)
		}
		if code, body := consoleRefusal(t, dev, m.ID, "mode=write"); code != http.StatusConflict || !strings.Contains(body, "holds the console input") {
			t.Fatalf("a mode=write client while another holds the input: got %d %s, want 409 saying the input is taken", code, body)
		}

		w.conn.Close()
		r.conn.Close()
		// Both left: bareflow deactivates SOL, so another session activates
		// it without forcing.
		gc := solClient(t, sim)
		deadline := time.Now().Add(15 * time.Second)
		for {
			err := activateSOL(ctx, gc)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("activate SOL after the clients left: %v, want success", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err := deactivateSOL(ctx, gc); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("log", func(t *testing.T) {
		var body string
		req, _ := http.NewRequest("GET", dev.apiURL+"/api/v1/machines/"+m.ID+"/console/log", nil)
		req.Header.Set("Authorization", "Bearer "+dev.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		body = b.String()
		if resp.StatusCode != 200 {
			t.Fatalf("console log: got status %d (%s), want 200", resp.StatusCode, body)
		}
		for _, want := range []string{"serial console ready", "HELLO", "session opened", "session closed"} {
			if !strings.Contains(body, want) {
				t.Errorf("console log: got %q, want %q in it", body, want)
			}
		}
		req, _ = http.NewRequest("GET", dev.apiURL+"/api/v1/machines/"+m.Name+"/console/log?tail=10", nil)
		req.Header.Set("Authorization", "Bearer "+dev.token)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b.Reset()
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		if b.Len() != 10 || !strings.HasSuffix(body, b.String()) {
			t.Errorf("console log tail=10: got %q, want the last 10 bytes of %q", b.String(), body)
		}
	})

	t.Run("force", func(t *testing.T) {
		gc := solClient(t, sim)
		if err := activateSOL(ctx, gc); err != nil {
			t.Fatalf("another session activates SOL: %v", err)
		}
		if code, body := consoleRefusal(t, dev, m.ID, ""); code != http.StatusConflict || !strings.Contains(body, "force=true") {
			t.Fatalf("console while another session holds SOL: got %d %s, want 409 suggesting force", code, body)
		}
		w, err := dialConsole(t, dev, m.ID, "force=true", false)
		if err != nil {
			t.Fatalf("console with force: %v", err)
		}
		w.send(t, "forced\r")
		w.waitFor(t, "forced console", "FORCED")
		w.conn.Close()
	})

	t.Run("cli", func(t *testing.T) {
		testConsoleCLI(t, dev, m.Name)
	})

	// Once in the start-up banner, never in a log line.
	if n := strings.Count(dev.log(), dev.token); n != 1 {
		t.Errorf("the API token appears %d times in bareflow dev's output, want 1 (the start-up banner)", n)
	}
}

// testConsoleCLI runs `bareflow console` in a tmux pane: it types, sees the
// echo, leaves with ~. and checks that the terminal is back in canonical
// mode.
func testConsoleCLI(t *testing.T, dev *devProcess, machine string) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv(ipmisim.RequireIntegrationEnv) == "1" {
			t.Fatalf("tmux not found (%v) and %s=1", err, ipmisim.RequireIntegrationEnv)
		}
		t.Skipf("tmux not found (%v); the escape handling is covered by TestEscapeReader", err)
	}
	// A tmux server of this test's own, on a socket in its temporary folder.
	sock := filepath.Join(t.TempDir(), "tmux")
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() })
	script := fmt.Sprintf("%s=1 BAREFLOW_API_URL=%s BAREFLOW_TOKEN=%s %s console %s; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; sleep 300",
		execMainEnv, dev.apiURL, dev.token, os.Args[0], machine)
	tmux("new-session", "-d", "-s", "console", "-x", "160", "-y", "40", "sh", "-c", script)
	pane := func() string { return tmux("capture-pane", "-p", "-t", "console", "-S", "-100") }
	waitPane := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := pane()
			if strings.Contains(got, want) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("terminal: got\n%s\nwant %q in it", got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitPane("leave with ~. at the start of a line")
	waitPane("you take the input")
	tmux("send-keys", "-t", "console", "-l", "typed in a terminal")
	tmux("send-keys", "-t", "console", "Enter")
	waitPane("TYPED IN A TERMINAL")
	tmux("send-keys", "-t", "console", "-l", "~.")
	got := waitPane("EXIT=")
	if !strings.Contains(got, "EXIT=0") {
		t.Fatalf("console exit: got\n%s\nwant EXIT=0", got)
	}
	got = waitPane("icanon")
	if strings.Contains(got, "-icanon") {
		t.Fatalf("terminal after leaving: got\n%s\nwant icanon (restored), not -icanon", got)
	}
	if !strings.Contains(got, "left the console") {
		t.Fatalf("terminal: got\n%s\nwant the leaving message", got)
	}
	t.Logf("terminal:\n%s", strings.TrimRight(got, "\n"))
}
