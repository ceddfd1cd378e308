package ramdisk

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testServer is an in-process SSH server that runs each exec request with
// /bin/sh -c in its own process group, the way the ramdisk's dropbear runs
// commands with dash. It answers signal requests, and keepalives unless
// told to ignore them.
type testServer struct {
	t          testing.TB
	hostSigner ssh.Signer
	authorized ssh.PublicKey
	listener   net.Listener

	ignoreKeepalives atomic.Bool

	mu      sync.Mutex
	signals []string
	conns   []net.Conn
	wg      sync.WaitGroup
}

// newTestServer starts a server on a port of 127.0.0.1 chosen by the OS,
// accepting only the client key authorized.
func newTestServer(t testing.TB, authorized ssh.PublicKey) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &testServer{t: t, hostSigner: newSigner(t), authorized: authorized, listener: l}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

func (s *testServer) addr() string { return s.listener.Addr().String() }

// hostKey returns the server's host key in authorized_keys form.
func (s *testServer) hostKey() string { return AuthorizedKey(s.hostSigner, "test-server") }

func (s *testServer) receivedSignals() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.signals...)
}

func (s *testServer) close() {
	s.listener.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("test server: handlers still running 10s after close")
	}
}

func (s *testServer) serve() {
	defer s.wg.Done()
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), s.authorized.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	config.AddHostKey(s.hostSigner)
	for {
		conn, err := s.listener.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, conn)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(conn, config)
		}()
	}
}

func (s *testServer) handleConn(conn net.Conn, config *ssh.ServerConfig) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(conn, config)
	if err != nil {
		return
	}
	defer sc.Close()
	_ = conn.SetDeadline(time.Time{})
	go func() {
		for req := range reqs {
			if req.Type == keepaliveRequest && s.ignoreKeepalives.Load() {
				continue
			}
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handleSession(ch, chReqs)
		}()
	}
}

func (s *testServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var cmd *exec.Cmd
	exited := make(chan struct{})
	for {
		var req *ssh.Request
		select {
		case req = <-reqs:
		case <-exited:
			s.finish(ch, cmd)
			return
		}
		if req == nil {
			if cmd != nil {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
			return
		}
		switch req.Type {
		case "exec":
			var msg struct{ Command string }
			if cmd != nil || ssh.Unmarshal(req.Payload, &msg) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			cmd = exec.Command("/bin/sh", "-c", msg.Command)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Stdout = ch
			cmd.Stderr = ch.Stderr()
			stdin, err := cmd.StdinPipe()
			if err == nil {
				err = cmd.Start()
			}
			if err != nil {
				_ = req.Reply(false, nil)
				return
			}
			go func() {
				_, _ = io.Copy(stdin, ch)
				stdin.Close()
			}()
			go func() {
				_ = cmd.Wait()
				close(exited)
			}()
			_ = req.Reply(true, nil)
		case "signal":
			var msg struct{ Signal string }
			if ssh.Unmarshal(req.Payload, &msg) == nil {
				s.mu.Lock()
				s.signals = append(s.signals, msg.Signal)
				s.mu.Unlock()
				if sig, ok := signalsByName[msg.Signal]; ok && cmd != nil {
					_ = syscall.Kill(-cmd.Process.Pid, sig)
				}
			}
			if req.WantReply {
				_ = req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

// finish reports how cmd ended, as exit-status or exit-signal.
func (s *testServer) finish(ch ssh.Channel, cmd *exec.Cmd) {
	status := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if status.Signaled() {
		name := "UNKNOWN"
		for n, sig := range signalsByName {
			if sig == status.Signal() {
				name = n
			}
		}
		_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: name}))
		return
	}
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status.ExitStatus())}))
}

var signalsByName = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL,
	"TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1, "PIPE": syscall.SIGPIPE,
}
