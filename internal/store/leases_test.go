package store_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"bareflow/internal/store"
	"bareflow/internal/store/storetest"
)

func testNetwork(t *testing.T, s *store.Store, first, last string) store.Network {
	t.Helper()
	n, err := s.CreateNetwork(testContext(t), store.Network{
		Name:       "pxe",
		Kind:       store.NetworkProvisioning,
		CIDR:       netip.MustParsePrefix("198.51.100.0/24"),
		Gateway:    netip.MustParseAddr("198.51.100.1"),
		RangeStart: netip.MustParseAddr(first),
		RangeEnd:   netip.MustParseAddr(last),
	})
	if err != nil {
		t.Fatalf("create network: %v", err)
	}
	return n
}

func nthMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xbf, 0, byte(i >> 16), byte(i >> 8), byte(i)}
}

func TestPoolOf(t *testing.T) {
	tests := map[string]struct {
		n           store.Network
		first, last string
	}{
		"range": {store.Network{CIDR: netip.MustParsePrefix("198.51.100.0/24"),
			RangeStart: netip.MustParseAddr("198.51.100.10"), RangeEnd: netip.MustParseAddr("198.51.100.20")},
			"198.51.100.10", "198.51.100.20"},
		"no range uses the hosts": {store.Network{CIDR: netip.MustParsePrefix("203.0.113.0/24")},
			"203.0.113.1", "203.0.113.254"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := store.PoolOf(tc.n)
			if p.First.String() != tc.first || p.Last.String() != tc.last {
				t.Errorf("got %s-%s, want %s-%s", p.First, p.Last, tc.first, tc.last)
			}
		})
	}
}

func TestLeaseLifecycle(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	n := testNetwork(t, s, "198.51.100.1", "198.51.100.3")
	pool := store.PoolOf(n) // .1 is the gateway: .2 and .3 are free
	req := func(i int) store.LeaseRequest {
		return store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(i), Pool: pool, Hold: time.Minute}
	}

	a, err := s.OfferLease(ctx, req(1))
	if err != nil {
		t.Fatalf("offer 1: %v", err)
	}
	if a.Addr == n.Gateway || a.State != store.LeaseOffered {
		t.Fatalf("offer 1: got %s %s, want a non-gateway offered address", a.Addr, a.State)
	}
	again, err := s.OfferLease(ctx, req(1))
	if err != nil || again.Addr != a.Addr {
		t.Fatalf("offer 1 again: got %s, %v, want %s (a MAC keeps its address)", again.Addr, err, a.Addr)
	}
	bound, err := s.BindLease(ctx, req(1), a.Addr, time.Hour)
	if err != nil || bound.State != store.LeaseBound {
		t.Fatalf("bind: got %+v, %v, want bound", bound, err)
	}
	b, err := s.OfferLease(ctx, req(2))
	if err != nil || b.Addr == a.Addr {
		t.Fatalf("offer 2: got %s, %v, want another address than %s", b.Addr, err, a.Addr)
	}
	if _, err := s.OfferLease(ctx, req(3)); !errors.Is(err, store.ErrPoolExhausted) {
		t.Fatalf("offer 3 on a full pool: got %v, want ErrPoolExhausted", err)
	}
	if _, err := s.BindLease(ctx, req(2), a.Addr, time.Hour); !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bind another MAC's address: got %v, want a refusal", err)
	}

	// Release frees the address for others when the pool runs dry, but the
	// MAC gets it back while it is unused.
	if err := s.ReleaseLease(ctx, n.ID, nthMAC(1), a.Addr); err != nil {
		t.Fatalf("release: %v", err)
	}
	back, err := s.OfferLease(ctx, req(1))
	if err != nil || back.Addr != a.Addr {
		t.Fatalf("offer after release: got %s, %v, want %s", back.Addr, err, a.Addr)
	}
	if err := s.ReleaseLease(ctx, n.ID, nthMAC(1), a.Addr); err != nil {
		t.Fatalf("release: %v", err)
	}
	c, err := s.OfferLease(ctx, req(3))
	if err != nil || c.Addr != a.Addr {
		t.Fatalf("offer 3 after release: got %s, %v, want the released %s", c.Addr, err, a.Addr)
	}

	// Decline: the address is taken out of use and given to nobody.
	ok, err := s.DeclineLease(ctx, n.ID, nthMAC(3), c.Addr, time.Hour)
	if err != nil || !ok {
		t.Fatalf("decline: got %v, %v, want true", ok, err)
	}
	if _, err := s.OfferLease(ctx, req(3)); !errors.Is(err, store.ErrPoolExhausted) {
		t.Fatalf("offer after decline: got %v, want ErrPoolExhausted (declined address held)", err)
	}
	if ok, _ := s.DeclineLease(ctx, n.ID, nthMAC(9), b.Addr, time.Hour); ok {
		t.Fatalf("decline by a MAC that does not hold the address: got true, want false")
	}
}

func TestLeaseBindRemembered(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	n := testNetwork(t, s, "198.51.100.10", "198.51.100.20")
	req := store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(7), Pool: store.PoolOf(n)}
	want := netip.MustParseAddr("198.51.100.15")
	l, err := s.BindLease(ctx, req, want, time.Hour)
	if err != nil || l.Addr != want {
		t.Fatalf("bind a remembered free address: got %s, %v, want %s", l.Addr, err, want)
	}
	if _, err := s.BindLease(ctx, req, netip.MustParseAddr("198.51.100.99"), time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bind outside the pool: got %v, want ErrNotFound", err)
	}
}

// TestLeaseStorm asks for addresses for 1,000 MACs at once on a pool of
// exactly 1,000 addresses: every MAC gets one, none twice.
func TestLeaseStorm(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	// RFC 2544's benchmarking range: a pool larger than a documentation
	// /24. These addresses exist only in the database.
	n, err := s.CreateNetwork(ctx, store.Network{
		Name: "storm", Kind: store.NetworkProvisioning, CIDR: netip.MustParsePrefix("198.18.0.0/22"),
		RangeStart: netip.MustParseAddr("198.18.0.1"), RangeEnd: netip.MustParseAddr("198.18.3.232"),
	})
	if err != nil {
		t.Fatal(err)
	}
	const clients = 1000
	pool := store.PoolOf(n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		seen  = map[netip.Addr]string{}
		fails []error
	)
	start := make(chan struct{})
	began := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			l, err := s.OfferLease(ctx, store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(i), Pool: pool, Hold: time.Minute})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails = append(fails, err)
				return
			}
			if other, dup := seen[l.Addr]; dup {
				fails = append(fails, fmt.Errorf("address %s given to %s and %s", l.Addr, other, l.MAC))
			}
			seen[l.Addr] = l.MAC.String()
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("%d offers in %v", clients, time.Since(began))
	for _, err := range fails[:min(len(fails), 5)] {
		t.Errorf("offer: %v", err)
	}
	if len(seen) != clients {
		t.Errorf("got %d distinct addresses, want %d", len(seen), clients)
	}
	leases, err := s.ListLeases(ctx, n.ID)
	if err != nil || len(leases) != clients {
		t.Errorf("got %d lease rows (%v), want %d", len(leases), err, clients)
	}
	if _, err := s.OfferLease(ctx, store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(clients), Pool: pool}); !errors.Is(err, store.ErrPoolExhausted) {
		t.Errorf("offer on the full pool: got %v, want ErrPoolExhausted", err)
	}
}

func TestBootIntentAndTokens(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "web-1", PXEMAC: nthMAC(1)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateMachine(ctx, store.MachineCreate{Name: "web-2", PXEMAC: nthMAC(2)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBootIntent(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get intent before set: got %v, want ErrNotFound", err)
	}
	in := store.BootIntent{MachineID: m.ID, Purpose: store.BootPurposeRamdisk, WorkflowID: "machine/" + m.ID, ExpiresAt: time.Now().Add(time.Hour)}
	for range 2 {
		if _, err := s.SetBootIntent(ctx, in); err != nil {
			t.Fatalf("set intent: %v", err)
		}
	}
	got, err := s.GetBootIntent(ctx, m.ID)
	if err != nil || got.WorkflowID != in.WorkflowID || got.Purpose != store.BootPurposeRamdisk {
		t.Fatalf("get intent: got %+v, %v, want %+v", got, err, in)
	}
	if _, err := s.SetBootIntent(ctx, store.BootIntent{MachineID: m.ID, Purpose: "disco", WorkflowID: "x", ExpiresAt: time.Now().Add(time.Hour)}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("set intent with a bad purpose: got %v, want ErrInvalid", err)
	}

	tok, _, err := s.CreateBootToken(ctx, m.ID, in.WorkflowID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	noop := func(store.BootToken) error { return nil }
	reason := func(err error) store.BootTokenReason {
		var te *store.BootTokenError
		if errors.As(err, &te) {
			return te.Reason
		}
		return store.BootTokenReason(fmt.Sprint(err))
	}
	if _, err := s.ConsumeBootToken(ctx, tok, other.ID, noop); reason(err) != store.BootTokenWrongMachine {
		t.Fatalf("wrong machine: got %v, want %s", err, store.BootTokenWrongMachine)
	}
	if _, err := s.ConsumeBootToken(ctx, tok, m.ID, func(store.BootToken) error { return errors.New("temporal down") }); err == nil {
		t.Fatalf("failing callback: got nil, want its error")
	}
	bt, err := s.ConsumeBootToken(ctx, tok, m.ID, noop)
	if err != nil || bt.WorkflowID != in.WorkflowID {
		t.Fatalf("good token (still unused after the failed callback): got %+v, %v", bt, err)
	}
	if _, err := s.ConsumeBootToken(ctx, tok, m.ID, noop); reason(err) != store.BootTokenUsed {
		t.Fatalf("replay: got %v, want %s", err, store.BootTokenUsed)
	}
	if _, err := s.ConsumeBootToken(ctx, store.BootTokenPrefix+"forged", m.ID, noop); reason(err) != store.BootTokenUnknown {
		t.Fatalf("forged: got %v, want %s", err, store.BootTokenUnknown)
	}
	short, _, err := s.CreateBootToken(ctx, m.ID, in.WorkflowID, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := s.ConsumeBootToken(ctx, short, m.ID, noop); reason(err) != store.BootTokenExpired {
		t.Fatalf("expired: got %v, want %s", err, store.BootTokenExpired)
	}

	if err := s.ClearBootIntent(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBootIntent(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get intent after clear: got %v, want ErrNotFound", err)
	}
}

// TestLeaseSameMACConcurrently has one MAC ask many times at once (a client
// retransmitting, two boot services behind one relay): one row, one address.
func TestLeaseSameMACConcurrently(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	n := testNetwork(t, s, "198.51.100.10", "198.51.100.250")
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		addrs = map[netip.Addr]int{}
	)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.OfferLease(ctx, store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(1), Pool: store.PoolOf(n)})
			if err != nil {
				t.Errorf("offer: %v", err)
				return
			}
			mu.Lock()
			addrs[l.Addr]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(addrs) != 1 {
		t.Errorf("got addresses %v, want one", addrs)
	}
	if ls, err := s.ListLeases(ctx, n.ID); err != nil || len(ls) != 1 {
		t.Errorf("got %d lease rows (%v), want 1", len(ls), err)
	}
}

func TestLeaseReservation(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	n := testNetwork(t, s, "198.51.100.10", "198.51.100.11")
	pool := store.PoolOf(n)
	planned := netip.MustParseAddr("198.51.100.200") // outside the dynamic range
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "bmc-host", PXEMAC: nthMAC(50)})
	if err != nil {
		t.Fatal(err)
	}
	// The MAC had a dynamic address; the reservation replaces it.
	if _, err := s.OfferLease(ctx, store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(1), Pool: pool}); err != nil {
		t.Fatal(err)
	}
	r, err := s.ReserveLease(ctx, n.ID, nthMAC(1), planned, m.ID)
	if err != nil || !r.Reserved || r.Addr != planned {
		t.Fatalf("reserve: got %+v, %v, want %s reserved", r, err, planned)
	}
	l, err := s.OfferLease(ctx, store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(1), Pool: pool})
	if err != nil || l.Addr != planned {
		t.Fatalf("offer to the reserved MAC: got %s, %v, want %s", l.Addr, err, planned)
	}
	if b, err := s.BindLease(ctx, store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(1), Pool: pool}, planned, time.Second); err != nil || b.State != store.LeaseBound {
		t.Fatalf("bind the reserved address: got %+v, %v", b, err)
	}
	if err := s.ReleaseLease(ctx, n.ID, nthMAC(1), planned); err != nil {
		t.Fatal(err)
	}
	// Released and expired, a reserved address is still nobody else's.
	for i := 2; i <= 3; i++ {
		if _, err := s.OfferLease(ctx, store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(i), Pool: pool}); err != nil {
			t.Fatalf("offer %d: %v", i, err)
		}
	}
	if l, err := s.OfferLease(ctx, store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(4), Pool: pool}); !errors.Is(err, store.ErrPoolExhausted) {
		t.Fatalf("offer on a full pool with a released reservation: got %s, %v, want ErrPoolExhausted", l.Addr, err)
	}
	if _, err := s.ReserveLease(ctx, n.ID, nthMAC(5), planned, ""); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("reserve another MAC's reservation: got %v, want ErrConflict", err)
	}
	if _, err := s.ReserveLease(ctx, n.ID, nthMAC(5), netip.MustParseAddr("203.0.113.9"), ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("reserve outside the network: got %v, want ErrInvalid", err)
	}
	if ok, _ := s.DeclineLease(ctx, n.ID, nthMAC(1), planned, time.Hour); ok {
		t.Fatalf("decline of a reserved address: got true, want false (the reservation stays)")
	}
	if err := s.Unreserve(ctx, n.ID, nthMAC(1)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetLeaseByMAC(ctx, n.ID, nthMAC(1)); got.Reserved {
		t.Fatalf("after unreserve: still reserved")
	}

	// A wiped machine gives its addresses back.
	two, err := s.GetLeaseByMAC(ctx, n.ID, nthMAC(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BindLease(ctx, store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(2), Pool: pool, MachineID: m.ID}, two.Addr, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReleaseMachineLeases(ctx, m.ID); err != nil || got != 1 {
		t.Fatalf("release machine leases: got %d, %v, want 1", got, err)
	}
	if got, _ := s.GetLeaseByMAC(ctx, n.ID, nthMAC(2)); got.State != store.LeaseReleased {
		t.Fatalf("after releasing the machine's leases: got %s, want released", got.State)
	}
}

func TestNetworksDoNotOverlapAndInUseIsKept(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	n := testNetwork(t, s, "198.51.100.10", "198.51.100.20")
	_, err := s.CreateNetwork(ctx, store.Network{Name: "inner", Kind: store.NetworkOS, CIDR: netip.MustParsePrefix("198.51.100.128/25")})
	var oe *store.OverlapError
	if !errors.As(err, &oe) || !errors.Is(err, store.ErrConflict) || oe.Other != "pxe" {
		t.Fatalf("overlapping network: got %v, want an OverlapError naming pxe", err)
	}
	if _, err := s.CreateNetwork(ctx, store.Network{Name: "beside", Kind: store.NetworkBMC, CIDR: netip.MustParsePrefix("203.0.113.0/24")}); err != nil {
		t.Fatalf("disjoint network: got %v, want nil", err)
	}
	l, err := s.OfferLease(ctx, store.LeaseRequest{NetworkID: n.ID, MAC: nthMAC(7), Pool: store.PoolOf(n)})
	if err != nil {
		t.Fatal(err)
	}
	var ue *store.InUseError
	if err := s.DeleteNetwork(ctx, n.ID); !errors.As(err, &ue) || ue.Leases != 1 {
		t.Fatalf("delete a network with an offered lease: got %v, want an InUseError with 1 lease", err)
	}
	if err := s.ReleaseLease(ctx, n.ID, nthMAC(7), l.Addr); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNetwork(ctx, n.ID); err != nil {
		t.Fatalf("delete a network whose leases are released: got %v, want nil", err)
	}
}
