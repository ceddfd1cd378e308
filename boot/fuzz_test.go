package boot

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"bareflow/internal/store"
)

// memLeases is an in-memory leaseKeeper for fuzzing: one address per MAC.
type memLeases struct {
	mu   sync.Mutex
	byMA map[string]netip.Addr
	next uint32
}

func (m *memLeases) OfferLease(_ context.Context, req store.LeaseRequest) (store.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(req.MAC) != 6 {
		return store.Lease{}, store.ErrInvalid
	}
	a, ok := m.byMA[req.MAC.String()]
	if !ok {
		m.next++
		b := req.Pool.First.As4()
		a = netip.AddrFrom4([4]byte{b[0], b[1], b[2], byte(m.next)})
		m.byMA[req.MAC.String()] = a
	}
	return store.Lease{NetworkID: req.NetworkID, Addr: a, MAC: req.MAC, State: store.LeaseOffered}, nil
}

func (m *memLeases) BindLease(_ context.Context, req store.LeaseRequest, addr netip.Addr, _ time.Duration) (store.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.byMA[req.MAC.String()]; !ok || a != addr {
		return store.Lease{}, store.ErrNotFound
	}
	return store.Lease{NetworkID: req.NetworkID, Addr: addr, MAC: req.MAC, State: store.LeaseBound}, nil
}

func (m *memLeases) ReleaseLease(context.Context, string, net.HardwareAddr, netip.Addr) error {
	return nil
}

func (m *memLeases) DeclineLease(context.Context, string, net.HardwareAddr, netip.Addr, time.Duration) (bool, error) {
	return true, nil
}

// memMachines knows no machine and records discovered ones in memory.
type memMachines struct {
	mu sync.Mutex
	ms map[string]store.Machine
}

func (m *memMachines) GetMachineByMAC(_ context.Context, mac net.HardwareAddr) (store.Machine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mm, ok := m.ms[mac.String()]; ok {
		return mm, nil
	}
	return store.Machine{}, store.ErrNotFound
}

func (m *memMachines) CreateMachine(_ context.Context, in store.MachineCreate) (store.Machine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mm := store.Machine{ID: "3f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5b", Name: in.Name, State: in.State, PXEMAC: in.PXEMAC}
	m.ms[in.PXEMAC.String()] = mm
	return mm, nil
}

func (m *memMachines) SetBootIntent(_ context.Context, in store.BootIntent) (store.BootIntent, error) {
	return in, nil
}

func fuzzHandler() *dhcpHandler {
	cfg := Config{AutoRegister: true, PublicURL: "http://203.0.113.5:8081", ARM64BootFile: "arm.efi"}.withDefaults()
	logger := slog.New(slog.DiscardHandler)
	m := newMetrics()
	pxe, bmc := pxeNet, bmcNet
	pxe.ID, bmc.ID = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	pxe.Interface = "eth1"
	nets := &networkCache{logger: logger, nets: []store.Network{pxe, bmc}, loaded: true}
	events := newEventQueue(16, nil, cfg.TaskQueue, logger, m)
	return newDHCPHandler(cfg, nets, &memLeases{byMA: map[string]netip.Addr{}}, &memMachines{ms: map[string]store.Machine{}}, events, m, logger)
}

// FuzzDHCPHandler feeds arbitrary packets to the DHCP handler, relayed and
// on-segment: it must never panic, and every reply must be a well-formed
// BOOTREPLY for the same client.
func FuzzDHCPHandler(f *testing.F) {
	hw := net.HardwareAddr{0x02, 0x42, 0xbf, 0, 0, 1}
	seeds := []*dhcpv4.DHCPv4{}
	add := func(m *dhcpv4.DHCPv4, err error) {
		if err == nil {
			seeds = append(seeds, m)
		}
	}
	add(dhcpv4.NewDiscovery(hw, dhcpv4.WithGatewayIP(net.IPv4(127, 0, 0, 1)), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC))))
	add(dhcpv4.NewDiscovery(hw, dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE")))))
	add(dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(203, 0, 113, 1))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(203, 0, 113, 5)))))
	add(dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(net.IPv4(203, 0, 113, 1))))
	add(dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithClientIP(net.IPv4(203, 0, 113, 1))))
	add(dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(203, 0, 113, 1)))))
	add(dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(net.IPv4(203, 0, 113, 9))))
	add(dhcpv4.NewDiscovery(hw, dhcpv4.WithGatewayIP(net.IPv4(127, 0, 0, 2)),
		dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("p1"))))))
	for _, s := range seeds {
		f.Add(s.ToBytes())
	}
	h := fuzzHandler()
	listeners := []*dhcpListener{
		{serverIP: netip.MustParseAddr("203.0.113.5")},
		{iface: "eth1", serverIP: netip.MustParseAddr("203.0.113.5")},
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := dhcpv4.FromBytes(raw)
		if err != nil {
			return
		}
		for _, l := range listeners {
			reply, dst, outcome := h.handle(context.Background(), l, m)
			if outcome == "" {
				t.Fatalf("empty outcome")
			}
			if reply == nil {
				continue
			}
			if dst == nil {
				t.Fatalf("reply without destination")
			}
			if reply.OpCode != dhcpv4.OpcodeBootReply || !bytes.Equal(reply.ClientHWAddr, m.ClientHWAddr) || reply.TransactionID != m.TransactionID {
				t.Fatalf("reply %s does not answer %s", reply.Summary(), m.Summary())
			}
			if _, err := dhcpv4.FromBytes(reply.ToBytes()); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
		}
	})
}

// FuzzPhoneHome feeds arbitrary bodies to the phone-home decoder: it must
// never panic, and what it accepts must be valid.
func FuzzPhoneHome(f *testing.F) {
	f.Add([]byte(`{"machine_id":"3f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5b","token":"bfb_x","addr":"203.0.113.4","macs":["02:42:bf:00:00:01"],"ssh_host_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb2Vx1kB5ggPZ6sp2zE5fYHDBVuyg1Z3iaGwbnOItbK"}`))
	f.Add([]byte(`{"machine_id":"x"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"macs":[` + string(bytes.Repeat([]byte(`"a",`), 100)) + `"a"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ph, err := decodePhoneHome(bytes.NewReader(body), netip.MustParseAddr("203.0.113.99"))
		if err != nil {
			return
		}
		if !uuidPattern.MatchString(ph.MachineID) || ph.Token == "" || !ph.Addr.IsValid() || ph.SSHHostKey == "" || len(ph.MACs) > maxPhoneHomeMACs {
			t.Fatalf("accepted an invalid phone-home: %+v", ph)
		}
	})
}
