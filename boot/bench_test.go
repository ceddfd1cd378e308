package boot

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"bareflow/internal/store"
)

// BenchmarkDHCPHandle measures the handler alone (in-memory leases and
// machines): parse, decide, build the OFFER for a PXE client.
func BenchmarkDHCPHandle(b *testing.B) {
	h := fuzzHandler()
	l := &dhcpListener{serverIP: netip.MustParseAddr("203.0.113.5")}
	d, err := dhcpv4.NewDiscovery(net.HardwareAddr{2, 0x42, 0xbf, 0, 0, 1}, dhcpv4.WithGatewayIP(net.IPv4(127, 0, 0, 1)),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)))
	if err != nil {
		b.Fatal(err)
	}
	raw := d.ToBytes()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m, err := dhcpv4.FromBytes(raw)
		if err != nil {
			b.Fatal(err)
		}
		reply, _, _ := h.handle(context.Background(), l, m)
		if reply == nil {
			b.Fatal("no reply")
		}
		_ = reply.ToBytes()
	}
}

// BenchmarkDHCPLeasePG measures a whole lease for a new MAC against
// PostgreSQL on an OS network: DISCOVER (offer) and REQUEST (bind), with
// many clients at once. The cost is dominated by the two commits.
func BenchmarkDHCPLeasePG(b *testing.B) {
	n := store.Network{
		Name: "bench", Kind: store.NetworkOS, CIDR: netip.MustParsePrefix("198.18.0.0/15"),
		RelayAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	}
	env := newTestEnvPool(b, 16, Config{}, n)
	l := &dhcpListener{serverIP: netip.MustParseAddr("198.18.0.1")}
	var next uint32
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	nextMAC := func() net.HardwareAddr {
		<-mu
		next++
		i := next
		mu <- struct{}{}
		return net.HardwareAddr{2, 0x42, 0xbf, byte(i >> 16), byte(i >> 8), byte(i)}
	}
	// Many machines boot at once: 16 requesters per CPU.
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d, _ := dhcpv4.NewDiscovery(nextMAC(), dhcpv4.WithGatewayIP(net.IPv4(127, 0, 0, 1)))
			offer, _, outcome := env.svc.dhcp.handle(context.Background(), l, d)
			if offer == nil {
				b.Fatalf("no offer: %s", outcome)
			}
			req, _ := dhcpv4.NewRequestFromOffer(offer)
			req.GatewayIPAddr = offer.GatewayIPAddr
			if ack, _, outcome := env.svc.dhcp.handle(context.Background(), l, req); ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
				b.Fatalf("no ACK: %s", outcome)
			}
		}
	})
}
