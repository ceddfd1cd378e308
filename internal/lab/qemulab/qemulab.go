//go:build linux

// Package qemulab is the test lab of bareflow's end-to-end tests: a network
// namespace holding a bridge, tap devices for QEMU's NICs, IPv6 router
// advertisements that let iPXE go on at once, and QEMU processes started
// inside the namespace, with their serial console in a file and QMP on a
// unix socket.
//
// Everything of the lab lives in the namespace (LAB.md's ground rules):
// nothing is added to the host's interfaces. Test code reaches into it with
// InNetns, DialIn and HTTPClient, which open their sockets on an OS thread
// that joined the namespace, and runs commands there with
// `ip netns exec`. Every process the lab starts is stopped by PID when the
// test ends, and the namespace is deleted.
//
// Tests that cannot run here (not root, no namespace, tools missing) call
// SkipOrFail: a skip with the reason, or a failure when the environment sets
// BAREFLOW_REQUIRE_INTEGRATION=1, as CI does.
package qemulab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireIntegrationEnv, set to 1 (as in CI), turns skips for want of root,
// QEMU or other lab tools into failures.
const RequireIntegrationEnv = "BAREFLOW_REQUIRE_INTEGRATION"

// Bridge is the name of the lab's bridge, and BridgeAddr the address it
// holds.
const (
	Bridge     = "br0"
	BridgeAddr = "198.51.100.1/24"
)

// Bounds of the lab's waits.
const (
	commandTimeout = 30 * time.Second
	netnsTimeout   = 10 * time.Second
	stopTimeout    = 5 * time.Second
	qmpTimeout     = 10 * time.Second
)

// SkipOrFail skips the test with the reason, or fails it when
// BAREFLOW_REQUIRE_INTEGRATION=1.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireIntegrationEnv) == "1" {
		t.Fatalf("integration test cannot run ("+RequireIntegrationEnv+"=1): "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// Run runs a command with a bound and fails the test on error. It returns
// the combined output.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
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

// Lab is a network namespace holding a bridge (Bridge, with BridgeAddr),
// tap devices on it, and taps on no network at all (a NIC without a DHCP
// server). It is removed when the test ends.
type Lab struct {
	// NS is the namespace's name, as `ip netns` knows it.
	NS string
	// Taps are the tap devices: first those on the bridge, then the loose
	// ones. They are named tap0, tap1…
	Taps []string
}

// New creates the namespace with its loopback up, the bridge, taps tap
// devices on the bridge and loose tap devices on no network. It skips (or
// fails, see SkipOrFail) when it cannot create a namespace.
func New(t testing.TB, taps, loose int) *Lab {
	t.Helper()
	l := &Lab{NS: "bfr-" + randomSuffix()}
	ctx, cancel := context.WithTimeout(context.Background(), netnsTimeout)
	out, err := exec.CommandContext(ctx, "ip", "netns", "add", l.NS).CombinedOutput()
	cancel()
	if err != nil {
		SkipOrFail(t, "cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), netnsTimeout)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", "netns", "del", l.NS).CombinedOutput(); err != nil {
			t.Errorf("remove namespace %s: %v: %s", l.NS, err, out)
		}
	})
	l.Exec(t, "ip", "link", "set", "lo", "up")
	l.Exec(t, "ip", "link", "add", Bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
	l.Exec(t, "ip", "addr", "add", BridgeAddr, "dev", Bridge)
	l.Exec(t, "ip", "link", "set", Bridge, "up")
	for i := range taps {
		tap := fmt.Sprintf("tap%d", i)
		l.Exec(t, "ip", "tuntap", "add", "dev", tap, "mode", "tap")
		l.Exec(t, "ip", "link", "set", tap, "master", Bridge)
		l.Exec(t, "ip", "link", "set", tap, "up")
		l.Taps = append(l.Taps, tap)
	}
	for i := taps; i < taps+loose; i++ {
		tap := fmt.Sprintf("tap%d", i)
		l.Exec(t, "ip", "tuntap", "add", "dev", tap, "mode", "tap")
		l.Exec(t, "ip", "link", "set", tap, "up")
		l.Taps = append(l.Taps, tap)
	}
	return l
}

// Exec runs a command inside the namespace (ip netns exec) with a bound,
// fails the test on error and returns the combined output.
func (l *Lab) Exec(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", l.NS}, args...)...)
}

// Command is an exec.Cmd that runs name inside the namespace.
func (l *Lab) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.NS, name}, args...)...)
}

// AddSegment adds a second bridge, with no ports, holding prefix (such as
// 203.0.113.10/24): an address of the lab beyond the PXE segment, for a
// service that must not listen on the PXE segment or on the loopback. (A
// bridge rather than a dummy interface: some kernels lack the dummy module.)
func (l *Lab) AddSegment(t testing.TB, name, prefix string) {
	t.Helper()
	l.Exec(t, "ip", "link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0")
	l.Exec(t, "ip", "addr", "add", prefix, "dev", name)
	l.Exec(t, "ip", "link", "set", name, "up")
}

// InNetns runs f on an OS thread that joined the namespace ns and is thrown
// away afterwards, so no other goroutine ever runs in it. Sockets f opens
// stay in the namespace; goroutines f starts run on the host's threads.
func InNetns(ns string, f func() error) error {
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

// DialIn opens a TCP connection from inside the namespace.
func DialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	return DialInContext(context.Background(), ns, "tcp", addr, timeout)
}

// DialInContext opens a connection of the given network (tcp, udp…) from
// inside the namespace.
func DialInContext(ctx context.Context, ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := InNetns(ns, func() error {
		var err error
		d := net.Dialer{Timeout: timeout}
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// HTTPClient is an HTTP client whose connections are opened inside the
// namespace ns, with no proxy and a 30 s bound on each request.
func HTTPClient(ns string) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return DialInContext(ctx, ns, network, addr, 10*time.Second)
			},
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// AdvertiseNoRouter sends an IPv6 router advertisement with router lifetime
// 0 on the bridge every second until the test ends. iPXE otherwise waits
// about 14 s for IPv6 autoconfiguration on a segment without routers before
// it goes on with the DHCPv4 answer it already has.
func (l *Lab) AdvertiseNoRouter(t testing.TB) {
	t.Helper()
	l.Exec(t, "ip", "-6", "addr", "add", "fe80::1/64", "dev", Bridge, "nodad")
	var conn net.PacketConn
	err := InNetns(l.NS, func() error {
		var err error
		conn, err = net.ListenPacket("ip6:ipv6-icmp", "::")
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(Bridge)
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
	dst := &net.IPAddr{IP: net.ParseIP("ff02::1"), Zone: Bridge}
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

// QEMU is one QEMU process, started inside a namespace.
type QEMU struct {
	// Cmd is the process: `ip netns exec NS qemu-system-x86_64 …`, which
	// execs QEMU under the same PID.
	Cmd *exec.Cmd
	// Serial is the serial console's log file (QEMU's stderr goes to
	// Serial+".stderr"), QMP the path of the QMP unix socket.
	Serial, QMP string
	// Started is when the process started.
	Started time.Time
	// Exited is closed when the process has ended; Err is then its exit
	// status.
	Exited chan struct{}
	Err    error
}

// StartQEMU starts qemu-system-x86_64 with args in the namespace ns and
// stops it (by PID, then its process group) when the test ends. serial and
// qmp are the paths args use for the serial console and QMP.
//
// QEMU gets SIGKILL when the test process dies (Pdeathsig). Linux sends
// that signal when the OS thread that started the process ends, and
// InNetns and DialIn end the threads they move into a namespace: so the
// process is started, and waited for, from a goroutine that keeps its
// thread locked (and alive) until QEMU exits.
func StartQEMU(t testing.TB, ns string, args []string, serial, qmp string) *QEMU {
	t.Helper()
	full := append([]string{"netns", "exec", ns, "qemu-system-x86_64"}, args...)
	cmd := exec.Command("ip", full...)
	logf, err := os.Create(serial + ".stderr")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	q := &QEMU{Cmd: cmd, Serial: serial, QMP: qmp, Exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		q.Started = time.Now()
		if err := cmd.Start(); err != nil {
			logf.Close()
			started <- err
			return
		}
		started <- nil
		q.Err = cmd.Wait()
		logf.Close()
		close(q.Exited)
	}()
	if err := <-started; err != nil {
		t.Fatalf("start QEMU: %v", err)
	}
	t.Logf("QEMU started, pid %d", cmd.Process.Pid)
	t.Cleanup(func() { q.Stop(t) })
	return q
}

// Stop ends QEMU: SIGTERM to its PID, then SIGKILL to its process group.
// It may be called more than once.
func (q *QEMU) Stop(t testing.TB) {
	select {
	case <-q.Exited:
		return
	default:
	}
	pid := q.Cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-q.Exited:
		return
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-q.Exited:
	case <-time.After(stopTimeout):
		t.Errorf("QEMU (pid %d) did not exit", pid)
	}
}

// Running reports whether the process still runs.
func (q *QEMU) Running() bool {
	select {
	case <-q.Exited:
		return false
	default:
		return true
	}
}

// SerialTail is the last n lines of the serial console log, then QEMU's
// standard error.
func (q *QEMU) SerialTail(n int) string {
	b, _ := os.ReadFile(q.Serial)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	errb, _ := os.ReadFile(q.Serial + ".stderr")
	return strings.Join(lines, "\n") + "\n--- QEMU stderr ---\n" + string(errb)
}

// Stages reads the ramdisk init's stage markers from the serial log.
func (q *QEMU) Stages() []string {
	f, err := os.Open(q.Serial)
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

// QMPCommand sends one QMP command without arguments on the unix socket path
// (a file: it is reached from the host, not through the namespace) and
// returns what the command returned.
func QMPCommand(path, command string) (json.RawMessage, error) {
	conn, err := net.DialTimeout("unix", path, stopTimeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(qmpTimeout))
	dec := json.NewDecoder(conn)
	var greeting map[string]any
	if err := dec.Decode(&greeting); err != nil {
		return nil, fmt.Errorf("QMP greeting: %w", err)
	}
	var ret json.RawMessage
	for _, cmd := range []string{"qmp_capabilities", command} {
		if _, err := fmt.Fprintf(conn, `{"execute":%q}`+"\n", cmd); err != nil {
			return nil, err
		}
		for {
			var resp struct {
				Return json.RawMessage `json:"return"`
				Error  any             `json:"error"`
			}
			if err := dec.Decode(&resp); err != nil {
				return nil, fmt.Errorf("QMP %s: %w", cmd, err)
			}
			if resp.Error != nil {
				return nil, fmt.Errorf("QMP %s: %v", cmd, resp.Error)
			}
			if resp.Return != nil {
				ret = resp.Return
				break
			}
		}
	}
	return ret, nil
}
