//go:build linux

package ramdisk

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"golang.org/x/sys/unix"

	"bareflow/contract"
)

// envRequire, set to 1 (as in CI), turns skips for want of root, QEMU or a
// built ramdisk into failures; the test then builds the ramdisk itself.
const envRequire = "BAREFLOW_REQUIRE_INTEGRATION"

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(envRequire) == "1" {
		t.Fatalf("integration test cannot run ("+envRequire+"=1): "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// run runs a command with a bound and fails the test on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func randomSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lab is a network namespace holding a bridge with 198.51.100.1/24, tap
// devices on it, and taps on no network at all (a NIC without a DHCP
// server), removed when the test ends.
type lab struct {
	ns   string
	taps []string
}

func newLab(t *testing.T, taps, loose int) *lab {
	t.Helper()
	l := &lab{ns: "bfr-" + randomSuffix()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	out, err := exec.CommandContext(ctx, "ip", "netns", "add", l.ns).CombinedOutput()
	cancel()
	if err != nil {
		skipOrFail(t, "cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", "netns", "del", l.ns).CombinedOutput(); err != nil {
			t.Errorf("remove namespace %s: %v: %s", l.ns, err, out)
		}
	})
	in := func(args ...string) { run(t, "ip", append([]string{"netns", "exec", l.ns}, args...)...) }
	in("ip", "link", "set", "lo", "up")
	in("ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	in("ip", "addr", "add", "198.51.100.1/24", "dev", "br0")
	in("ip", "link", "set", "br0", "up")
	for i := range taps {
		tap := fmt.Sprintf("tap%d", i)
		in("ip", "tuntap", "add", "dev", tap, "mode", "tap")
		in("ip", "link", "set", tap, "master", "br0")
		in("ip", "link", "set", tap, "up")
		l.taps = append(l.taps, tap)
	}
	for i := taps; i < taps+loose; i++ {
		tap := fmt.Sprintf("tap%d", i)
		in("ip", "tuntap", "add", "dev", tap, "mode", "tap")
		in("ip", "link", "set", tap, "up")
		l.taps = append(l.taps, tap)
	}
	return l
}

// inNetns runs f on an OS thread that joined the namespace and is thrown
// away afterwards, so no other goroutine ever runs in it. Sockets f opens
// stay in the namespace.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open(filepath.Join("/var/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// dialIn opens a TCP connection from inside the namespace.
func dialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := inNetns(ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	return conn, err
}

// signalCapture stands in for the Temporal client: it records the
// RamdiskReady signals phone-home sends. Only the two methods the boot
// service calls are implemented; the embedded nil client.Client makes any
// other call panic.
type signalCapture struct {
	client.Client
	mu    sync.Mutex
	ready chan contract.RamdiskReady
	other []string
}

func newSignalCapture() *signalCapture {
	return &signalCapture{ready: make(chan contract.RamdiskReady, 8)}
}

func (s *signalCapture) SignalWorkflow(_ context.Context, workflowID, _ string, name string, arg any) error {
	if name == contract.SignalRamdiskReady {
		if r, ok := arg.(contract.RamdiskReady); ok {
			s.ready <- r
			return nil
		}
	}
	s.mu.Lock()
	s.other = append(s.other, workflowID+" "+name)
	s.mu.Unlock()
	return nil
}

func (s *signalCapture) SignalWithStartWorkflow(_ context.Context, workflowID, name string, _ any,
	_ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	s.mu.Lock()
	s.other = append(s.other, workflowID+" "+name+" (start)")
	s.mu.Unlock()
	return nil, nil
}

// qemu is one QEMU process, started inside the namespace.
type qemu struct {
	cmd     *exec.Cmd
	serial  string
	qmp     string
	started time.Time
	exited  chan struct{}
	err     error
}

// startQEMU starts QEMU in the namespace and stops it (by PID, then its
// process group) when the test ends.
func startQEMU(t *testing.T, ns string, args []string, serial, qmp string) *qemu {
	t.Helper()
	full := append([]string{"netns", "exec", ns, "qemu-system-x86_64"}, args...)
	cmd := exec.Command("ip", full...)
	logf, err := os.Create(serial + ".stderr")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	q := &qemu{cmd: cmd, serial: serial, qmp: qmp, exited: make(chan struct{})}
	q.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start QEMU: %v", err)
	}
	t.Logf("QEMU started, pid %d", cmd.Process.Pid)
	go func() { q.err = cmd.Wait(); logf.Close(); close(q.exited) }()
	t.Cleanup(func() { q.stop(t) })
	return q
}

func (q *qemu) stop(t *testing.T) {
	select {
	case <-q.exited:
		return
	default:
	}
	pid := q.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-q.exited:
		return
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-q.exited:
	case <-time.After(5 * time.Second):
		t.Errorf("QEMU (pid %d) did not exit", pid)
	}
}

func (q *qemu) running() bool {
	select {
	case <-q.exited:
		return false
	default:
		return true
	}
}

// serialTail is the end of the serial console log.
func (q *qemu) serialTail(n int) string {
	b, _ := os.ReadFile(q.serial)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	errb, _ := os.ReadFile(q.serial + ".stderr")
	return strings.Join(lines, "\n") + "\n--- QEMU stderr ---\n" + string(errb)
}

// stages reads the init's stage markers from the serial log.
func (q *qemu) stages() []string {
	f, err := os.Open(q.serial)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "bareflow-ramdisk: stage="); i >= 0 {
			out = append(out, line[i+len("bareflow-ramdisk: stage="):])
		}
	}
	return out
}

// qmpCommand sends one QMP command on the unix socket from inside the host
// (the socket is a file, not in the namespace).
func qmpCommand(path, command string) error {
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	dec := json.NewDecoder(conn)
	var greeting map[string]any
	if err := dec.Decode(&greeting); err != nil {
		return fmt.Errorf("QMP greeting: %w", err)
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		if _, err := fmt.Fprintf(conn, `{"execute":%q}`+"\n", cmd); err != nil {
			return err
		}
		for {
			var resp map[string]any
			if err := dec.Decode(&resp); err != nil {
				return fmt.Errorf("QMP %s: %w", cmd, err)
			}
			if e, ok := resp["error"]; ok {
				return fmt.Errorf("QMP %s: %v", cmd, e)
			}
			if _, ok := resp["return"]; ok {
				break
			}
		}
	}
	return nil
}

// advertiseNoRouter sends an IPv6 router advertisement with router lifetime
// 0 on the bridge every second until the test ends. iPXE otherwise waits
// about 14 s for IPv6 autoconfiguration on a segment without routers before
// it goes on with the DHCPv4 answer it already has.
func (l *lab) advertiseNoRouter(t *testing.T) {
	t.Helper()
	run(t, "ip", "netns", "exec", l.ns, "ip", "-6", "addr", "add", "fe80::1/64", "dev", "br0", "nodad")
	var conn net.PacketConn
	err := inNetns(l.ns, func() error {
		var err error
		conn, err = net.ListenPacket("ip6:ipv6-icmp", "::")
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("br0")
		if err != nil {
			return err
		}
		rc, err := conn.(*net.IPConn).SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			// Neighbour discovery wants hop limit 255.
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index)
			}
		}); err != nil {
			return err
		}
		return serr
	})
	if err != nil {
		t.Fatalf("router advertisements: %v", err)
	}
	// Type 134, code 0, checksum (the kernel fills it in), hop limit 64,
	// no M/O flags, router lifetime 0, reachable time 0, retrans timer 0.
	ra := []byte{134, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	dst := &net.IPAddr{IP: net.ParseIP("ff02::1"), Zone: "br0"}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			_, _ = conn.WriteTo(ra, dst) // fails until a tap is attached
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped; conn.Close() })
}
