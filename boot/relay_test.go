package boot

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"bareflow/internal/store"
)

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// runService runs svc until the test ends.
func runService(t *testing.T, svc *Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Run did not return within 15s of cancel")
		}
	})
}

// fakeRelay is a DHCP relay agent on loopback: it sends requests with its
// address as giaddr and receives the server's replies on its port.
type fakeRelay struct {
	conn   *net.UDPConn
	server *net.UDPAddr
}

func newFakeRelay(t *testing.T, serverPort int) *fakeRelay {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetReadBuffer(4 << 20)
	return &fakeRelay{conn: conn, server: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: serverPort}}
}

func (r *fakeRelay) port() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

func (r *fakeRelay) send(t *testing.T, m *dhcpv4.DHCPv4) {
	t.Helper()
	m.GatewayIPAddr = net.IPv4(127, 0, 0, 1).To4()
	if _, err := r.conn.WriteTo(m.ToBytes(), r.server); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// exchange sends m until a reply with its transaction ID comes, at most
// tries times.
func (r *fakeRelay) exchange(t *testing.T, m *dhcpv4.DHCPv4, tries int) *dhcpv4.DHCPv4 {
	t.Helper()
	buf := make([]byte, 1500)
	for range tries {
		r.send(t, m)
		_ = r.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for {
			n, _, err := r.conn.ReadFrom(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			reply, err := dhcpv4.FromBytes(buf[:n])
			if err == nil && reply.TransactionID == m.TransactionID {
				return reply
			}
		}
	}
	t.Fatalf("no reply to %s after %d tries", m.MessageType(), tries)
	return nil
}

// TestDHCPRelayLoopback runs the service with a relay listener on loopback
// and talks to it as a relay agent would: giaddr set, option 82 added,
// replies to the relay's port.
func TestDHCPRelayLoopback(t *testing.T) {
	t.Parallel()
	serverPort := freeUDPPort(t)
	env := newTestEnv(t, Config{}, pxeNet)
	relay := newFakeRelay(t, serverPort)
	svc, err := newService(Config{
		RelayAddr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(serverPort)).String(), RelayReplyPort: relay.port(),
		ServerAddr: "203.0.113.5", HTTPAddr: "127.0.0.1:0", PublicURL: "http://203.0.113.5:8081", AutoRegister: true,
	}, env.st, env.sig, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runService(t, svc)

	agent := dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("eth1/7")))
	d, _ := dhcpv4.NewDiscovery(mac(1), withArch(iana.EFI_X86_64), dhcpv4.WithOption(agent))
	offer := relay.exchange(t, d, 20)
	if offer.MessageType() != dhcpv4.MessageTypeOffer || !pxeNet.CIDR.Contains(ipv4(offer.YourIPAddr)) {
		t.Fatalf("got %s for %s, want an OFFER in %s", offer.MessageType(), offer.YourIPAddr, pxeNet.CIDR)
	}
	if got := offer.GetOneOption(dhcpv4.OptionRelayAgentInformation); !bytes.Equal(got, agent.Value.ToBytes()) {
		t.Errorf("option 82: got %x, want %x echoed", got, agent.Value.ToBytes())
	}
	if offer.BootFileNameOption() != "ipxe.efi" || !offer.GatewayIPAddr.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("got boot file %q giaddr %s, want ipxe.efi and 127.0.0.1", offer.BootFileNameOption(), offer.GatewayIPAddr)
	}
	ack := relay.exchange(t, requestFor(t, offer, withArch(iana.EFI_X86_64)), 10)
	if ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("got %s for %s, want ACK for %s", ack.MessageType(), ack.YourIPAddr, offer.YourIPAddr)
	}

	// iPXE, after chain-loading, asks again and gets its script's URL.
	ipxe, _ := dhcpv4.NewDiscovery(mac(1), withIPXE())
	io := relay.exchange(t, ipxe, 10)
	if want := "http://203.0.113.5:8081/boot/v1/ipxe/" + mac(1).String(); io.BootFileNameOption() != want {
		t.Errorf("iPXE: got boot file %q, want %q", io.BootFileNameOption(), want)
	}
	if !io.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Errorf("iPXE: got address %s, want the MAC's %s", io.YourIPAddr, offer.YourIPAddr)
	}
}

// TestDHCPStorm has 1,000 machines PXE-boot at once through a relay on
// loopback, each retransmitting like a PXE ROM: every one gets an address,
// no address twice.
func TestDHCPStorm(t *testing.T) {
	t.Parallel()
	const clients = 1000
	// RFC 2544's benchmarking range: a pool larger than a documentation
	// /24. The addresses exist only in packets on loopback.
	storm := store.Network{
		Name: "storm", Kind: store.NetworkProvisioning, CIDR: netip.MustParsePrefix("198.18.0.0/22"),
		RangeStart: netip.MustParseAddr("198.18.0.10"), RangeEnd: netip.MustParseAddr("198.18.3.250"),
		RelayAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	}
	serverPort := freeUDPPort(t)
	// The boot service's database pool is sized for bursts; pgx's default
	// (the number of CPUs, at least 4) would serialize them.
	env := newTestEnvPool(t, 16, Config{}, storm)
	relay := newFakeRelay(t, serverPort)
	svc, err := newService(Config{
		RelayAddr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(serverPort)).String(), RelayReplyPort: relay.port(),
		ServerAddr: "198.18.0.1", HTTPAddr: "127.0.0.1:0", AutoRegister: true,
	}, env.st, env.sig, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runService(t, svc)
	// Wait until the server answers.
	relay.exchange(t, func() *dhcpv4.DHCPv4 { d, _ := dhcpv4.NewDiscovery(mac(0), withArch(iana.INTEL_X86PC)); return d }(), 20)

	type client struct {
		discover, request *dhcpv4.DHCPv4
		acked             net.IP
	}
	var (
		mu       sync.Mutex
		byXID    = map[dhcpv4.TransactionID]*client{}
		cls      = make([]*client, clients)
		acked    = 0
		allAcked = make(chan struct{})
	)
	for i := range cls {
		d, err := dhcpv4.NewDiscovery(mac(i+1), withArch(iana.INTEL_X86PC))
		if err != nil {
			t.Fatal(err)
		}
		d.GatewayIPAddr = net.IPv4(127, 0, 0, 1).To4()
		cls[i] = &client{discover: d}
		byXID[d.TransactionID] = cls[i]
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 1500)
		for {
			_ = relay.conn.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := relay.conn.ReadFrom(buf)
			select {
			case <-allAcked:
				return
			default:
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				return
			}
			reply, err := dhcpv4.FromBytes(buf[:n])
			if err != nil {
				continue
			}
			mu.Lock()
			c := byXID[reply.TransactionID]
			switch {
			case c == nil:
			case reply.MessageType() == dhcpv4.MessageTypeOffer && c.request == nil:
				req, err := dhcpv4.NewRequestFromOffer(reply, withArch(iana.INTEL_X86PC))
				if err == nil {
					req.GatewayIPAddr = reply.GatewayIPAddr
					c.request = req
					_, _ = relay.conn.WriteTo(req.ToBytes(), relay.server)
				}
			case reply.MessageType() == dhcpv4.MessageTypeAck && c.acked == nil:
				c.acked = reply.YourIPAddr
				acked++
				if acked == clients {
					close(allAcked)
				}
			}
			mu.Unlock()
		}
	}()

	began := time.Now()
	deadline := time.After(60 * time.Second)
	resend := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cls {
			switch {
			case c.acked != nil:
			case c.request != nil:
				_, _ = relay.conn.WriteTo(c.request.ToBytes(), relay.server)
			default:
				_, _ = relay.conn.WriteTo(c.discover.ToBytes(), relay.server)
			}
		}
	}
	resend()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-allAcked:
			break wait
		case <-tick.C:
			resend()
		case <-deadline:
			break wait
		}
	}
	elapsed := time.Since(began)
	relay.conn.SetReadDeadline(time.Now())
	<-readerDone

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d of %d machines acknowledged in %v", acked, clients, elapsed)
	if mfs, err := svc.metrics.registry.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() != "bareflow_boot_dhcp_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				t.Logf("dhcp %v: %v", m.GetLabel(), m.GetCounter().GetValue())
			}
		}
	}
	seen := map[string]net.HardwareAddr{}
	for _, c := range cls {
		if c.acked == nil {
			t.Errorf("%s got no address", c.discover.ClientHWAddr)
			continue
		}
		if other, dup := seen[c.acked.String()]; dup {
			t.Errorf("address %s given to %s and %s", c.acked, other, c.discover.ClientHWAddr)
		}
		seen[c.acked.String()] = c.discover.ClientHWAddr
	}
	if len(seen) != clients {
		t.Errorf("got %d distinct addresses, want %d", len(seen), clients)
	}
	leases, err := env.st.ListLeases(testCtx(t), env.nets["storm"].ID)
	if err != nil {
		t.Fatal(err)
	}
	bound := 0
	for _, l := range leases {
		if l.State == store.LeaseBound {
			bound++
		}
	}
	if bound < clients {
		t.Errorf("got %d bound leases, want at least %d", bound, clients)
	}
}
