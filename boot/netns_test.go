//go:build linux

package boot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/sys/unix"

	"bareflow/internal/store"
)

// netnsLab is a pair of network namespaces joined by a veth pair, made for
// one test and removed when it ends: the server end "vs" with 198.51.100.1/24,
// the client end "vc" unconfigured.
type netnsLab struct {
	server, client string
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func newNetnsLab(t *testing.T) *netnsLab {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skipOrFail(t, "the ip command (iproute2) is not installed")
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	lab := &netnsLab{server: "bfs-" + suffix, client: "bfc-" + suffix}
	for _, ns := range []string{lab.server, lab.client} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "ip", "netns", "add", ns).CombinedOutput()
		cancel()
		if err != nil {
			skipOrFail(t, "cannot create a network namespace: %v: %s", err, out)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if out, err := exec.CommandContext(ctx, "ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("remove namespace %s: %v: %s", ns, err, out)
			}
		})
	}
	// Both ends are made inside the namespaces: the host's own interfaces
	// are never touched.
	run(t, "ip", "netns", "exec", lab.server, "ip", "link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", lab.client)
	run(t, "ip", "netns", "exec", lab.server, "ip", "link", "set", "lo", "up")
	run(t, "ip", "netns", "exec", lab.server, "ip", "addr", "add", "198.51.100.1/24", "dev", "vs")
	run(t, "ip", "netns", "exec", lab.server, "ip", "link", "set", "vs", "up")
	run(t, "ip", "netns", "exec", lab.client, "ip", "link", "set", "lo", "up")
	run(t, "ip", "netns", "exec", lab.client, "ip", "link", "set", "vc", "up")
	return lab
}

// inNetns runs f on an OS thread that has joined the namespace ns. The
// thread is thrown away afterwards (the goroutine ends locked), so no
// other goroutine ever runs in ns; sockets f opens stay in ns.
func inNetns(t *testing.T, ns string, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with this goroutine.
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
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestDHCPRealClientOverVeth has busybox udhcpc get, renew and release a
// lease from the boot service across a veth pair between two namespaces.
func TestDHCPRealClientOverVeth(t *testing.T) {
	t.Parallel()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		skipOrFail(t, "busybox (package busybox) is not installed")
	}
	lab := newNetnsLab(t)

	n := store.Network{
		Name: "seg", Kind: store.NetworkProvisioning, CIDR: netip.MustParsePrefix("198.51.100.0/24"),
		Gateway: netip.MustParseAddr("198.51.100.1"), RangeStart: netip.MustParseAddr("198.51.100.50"),
		RangeEnd: netip.MustParseAddr("198.51.100.60"), LeaseSeconds: 120, Interface: "vs",
	}
	// Relayed DHCP on loopback runs at the same time as on-segment DHCP on
	// the veth.
	env := newTestEnv(t, Config{}, n, pxeNet)
	serverPort := freeUDPPort(t)
	relay := newFakeRelay(t, serverPort)
	svc, err := newService(Config{HTTPAddr: "127.0.0.1:0", PublicURL: "http://198.51.100.1:8081",
		RelayAddr: "127.0.0.1:" + strconv.Itoa(serverPort), RelayReplyPort: relay.port(), ServerAddr: "203.0.113.5"},
		env.st, env.sig, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	inNetns(t, lab.server, func() error {
		conn, err := server4.NewIPv4UDPConn("vs", &net.UDPAddr{Port: DHCPServerPort})
		if err != nil {
			return err
		}
		svc.extraDHCP = append(svc.extraDHCP, &dhcpListener{iface: "vs", serverIP: netip.MustParseAddr("198.51.100.1"), conn: conn})
		return nil
	})
	runService(t, svc)

	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	script := filepath.Join(dir, "udhcpc.sh")
	err = os.WriteFile(script, []byte(`#!/bin/sh
# Records each udhcpc event and configures the address inside the client
# namespace only.
echo "$1 ${ip:-} ${mask:-} ${router:-} ${lease:-}" >> `+events+`
case "$1" in
bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
`), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", lab.client, busybox, "udhcpc", "-f", "-i", "vc", "-s", script,
		"-t", "10", "-T", "1", "-A", "1", "-x", "hostname:bftest")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			t.Errorf("udhcpc (pid %d) did not exit", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("udhcpc output:\n%s", out.String())
		}
	})

	eventLines := func() []string {
		b, _ := os.ReadFile(events)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	hasEvent := func(kind string) (string, bool) {
		for _, l := range eventLines() {
			if strings.HasPrefix(l, kind+" ") {
				return l, true
			}
		}
		return "", false
	}
	waitFor(t, 20*time.Second, "udhcpc to bind", func() bool { _, ok := hasEvent("bound"); return ok })
	line, _ := hasEvent("bound")
	f := strings.Fields(line)
	if len(f) < 4 {
		t.Fatalf("bound event %q: want ip, mask and router", line)
	}
	addr := netip.MustParseAddr(f[1])
	if addr.Less(n.RangeStart) || n.RangeEnd.Less(addr) || f[2] != "24" || f[3] != "198.51.100.1" {
		t.Fatalf("got %s/%s router %s, want an address of %s-%s/24 with router 198.51.100.1", f[1], f[2], f[3], n.RangeStart, n.RangeEnd)
	}
	ctx := testCtx(t)
	netID := env.nets["seg"].ID
	l, err := env.st.GetLeaseByMAC(ctx, netID, mustClientMAC(t, lab))
	if err != nil || l.State != store.LeaseBound || l.Addr != addr || l.Hostname != "bftest" {
		t.Fatalf("lease: got %+v, %v, want bound %s with host name bftest", l, err, addr)
	}

	// Renew: udhcpc unicasts a REQUEST from its address.
	before := l.ExpiresAt
	time.Sleep(1100 * time.Millisecond)
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the renewed lease", func() bool {
		l, err := env.st.GetLeaseByMAC(ctx, netID, mustClientMAC(t, lab))
		return err == nil && l.State == store.LeaseBound && l.ExpiresAt.After(before)
	})
	waitFor(t, 10*time.Second, "udhcpc's renew event", func() bool {
		n := 0
		for _, l := range eventLines() {
			if strings.HasPrefix(l, "renew ") || strings.HasPrefix(l, "bound ") {
				n++
			}
		}
		return n >= 2
	})

	// Release.
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the released lease", func() bool {
		l, err := env.st.GetLeaseByMAC(ctx, netID, mustClientMAC(t, lab))
		return err == nil && l.State == store.LeaseReleased && l.Addr == addr
	})

	d, _ := dhcpv4.NewDiscovery(mac(1))
	offer := relay.exchange(t, d, 20)
	if !pxeNet.CIDR.Contains(ipv4(offer.YourIPAddr)) {
		t.Errorf("relayed request while on-segment DHCP runs: got %s, want an address in %s", offer.YourIPAddr, pxeNet.CIDR)
	}
}

// mustClientMAC reads the MAC of the client's veth end.
func mustClientMAC(t *testing.T, lab *netnsLab) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	inNetns(t, lab.client, func() error {
		ifi, err := net.InterfaceByName("vc")
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	})
	return mac
}
