package boot

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"bareflow/contract"
	"bareflow/internal/store"
)

var relayIP = net.IPv4(127, 0, 0, 1).To4()

// relayListener is the relay listener handle is called with.
func relayListener() *dhcpListener {
	return &dhcpListener{serverIP: netip.MustParseAddr("203.0.113.5")}
}

func discover(t *testing.T, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.NewDiscovery(hw, append([]dhcpv4.Modifier{dhcpv4.WithGatewayIP(relayIP)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func requestFor(t *testing.T, offer *dhcpv4.DHCPv4, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.NewRequestFromOffer(offer, mods...)
	if err != nil {
		t.Fatal(err)
	}
	m.GatewayIPAddr = offer.GatewayIPAddr
	return m
}

func withArch(a iana.Arch) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptClientArch(a))
}

func withIPXE() dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		d.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE")))
		d.UpdateOption(dhcpv4.OptClientArch(iana.EFI_X86_64))
	}
}

func TestDHCPBootFile(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, Config{AutoRegister: true, ARM64BootFile: "ipxe-arm64.efi"}, pxeNet)
	ctx := testCtx(t)
	tests := map[string]struct {
		mods     []dhcpv4.Modifier
		wantFile string
		wantIPXE bool
	}{
		"BIOS":              {mods: []dhcpv4.Modifier{withArch(iana.INTEL_X86PC)}, wantFile: "undionly.kpxe"},
		"UEFI x86-64":       {mods: []dhcpv4.Modifier{withArch(iana.EFI_X86_64)}, wantFile: "ipxe.efi"},
		"UEFI byte code":    {mods: []dhcpv4.Modifier{withArch(iana.EFI_BC)}, wantFile: "ipxe.efi"},
		"UEFI ARM64":        {mods: []dhcpv4.Modifier{withArch(iana.EFI_ARM64)}, wantFile: "ipxe-arm64.efi"},
		"iPXE gets its URL": {mods: []dhcpv4.Modifier{withIPXE()}, wantIPXE: true},
	}
	i := 0
	for name, tc := range tests {
		i++
		hw := mac(i)
		t.Run(name, func(t *testing.T) {
			offer, dst, outcome := env.svc.dhcp.handle(ctx, relayListener(), discover(t, hw, tc.mods...))
			if offer == nil {
				t.Fatalf("no offer: outcome %s", outcome)
			}
			if offer.MessageType() != dhcpv4.MessageTypeOffer {
				t.Fatalf("got %s, want OFFER", offer.MessageType())
			}
			if !dst.IP.Equal(relayIP) || dst.Port != DHCPServerPort {
				t.Errorf("got destination %s, want the relay at 127.0.0.1:67", dst)
			}
			if !pxeNet.CIDR.Contains(ipv4(offer.YourIPAddr)) {
				t.Errorf("got address %s, want one in %s", offer.YourIPAddr, pxeNet.CIDR)
			}
			if tc.wantIPXE {
				want := "http://203.0.113.5:8081/boot/v1/ipxe/" + hw.String()
				if got := offer.BootFileNameOption(); got != want {
					t.Errorf("got boot file %q, want %q", got, want)
				}
				if got := offer.GetOneOption(optionIPXE); !bytes.Equal(got, []byte{176, 1, 1}) {
					t.Errorf("got option 175 %x, want b00101 (no-pxedhcp)", got)
				}
				return
			}
			if got := offer.BootFileNameOption(); got != tc.wantFile {
				t.Errorf("got boot file option %q, want %q", got, tc.wantFile)
			}
			if offer.BootFileName != tc.wantFile {
				t.Errorf("got file field %q, want %q", offer.BootFileName, tc.wantFile)
			}
			if !offer.ServerIPAddr.Equal(net.IPv4(203, 0, 113, 5)) || offer.TFTPServerName() != "203.0.113.5" {
				t.Errorf("got next-server %s / option 66 %q, want 203.0.113.5", offer.ServerIPAddr, offer.TFTPServerName())
			}
		})
	}

	t.Run("ARM64 without a binary gets an address only", func(t *testing.T) {
		env := newTestEnv(t, Config{AutoRegister: true}, pxeNet)
		offer, _, outcome := env.svc.dhcp.handle(ctx, relayListener(), discover(t, mac(99), withArch(iana.EFI_ARM64)))
		if offer == nil {
			t.Fatalf("no offer: %s", outcome)
		}
		if offer.BootFileNameOption() != "" || offer.BootFileName != "" {
			t.Errorf("got boot file %q, want none", offer.BootFileNameOption())
		}
	})
	t.Run("snponly.efi when configured", func(t *testing.T) {
		env := newTestEnv(t, Config{AutoRegister: true, UEFIBootFile: "snponly.efi"}, pxeNet)
		offer, _, _ := env.svc.dhcp.handle(ctx, relayListener(), discover(t, mac(98), withArch(iana.EFI_X86_64)))
		if offer == nil || offer.BootFileNameOption() != "snponly.efi" {
			t.Fatalf("got %v, want snponly.efi", offer)
		}
	})
}

func TestDHCPExchangeAndEvents(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, Config{AutoRegister: true}, pxeNet, bmcNet)
	env.startEvents(t)
	ctx := testCtx(t)
	l := relayListener()
	h := env.svc.dhcp
	hw := mac(1)
	agent := dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("port-7")))

	offer, _, outcome := h.handle(ctx, l, discover(t, hw, withArch(iana.INTEL_X86PC), dhcpv4.WithOption(agent)))
	if offer == nil {
		t.Fatalf("no offer: %s", outcome)
	}
	if got := offer.GetOneOption(dhcpv4.OptionRelayAgentInformation); !bytes.Equal(got, agent.Value.ToBytes()) {
		t.Errorf("option 82: got %x, want it echoed (%x)", got, agent.Value.ToBytes())
	}
	if got := ipv4(offer.Router()[0]); got != pxeNet.Gateway {
		t.Errorf("router: got %s, want %s", got, pxeNet.Gateway)
	}
	if got := offer.IPAddressLeaseTime(0); got != 600*time.Second {
		t.Errorf("lease time: got %v, want 10m", got)
	}
	m, err := env.st.GetMachineByMAC(ctx, hw)
	if err != nil || m.State != contract.MachineDiscovered {
		t.Fatalf("auto-registration: got %+v, %v, want a discovered machine", m, err)
	}
	if offer.HostName() != m.Name {
		t.Errorf("host name: got %q, want %q", offer.HostName(), m.Name)
	}
	// Its first iPXE script must load the ramdisk for its Register workflow.
	if bi, err := env.st.GetBootIntent(ctx, m.ID); err != nil || bi.Purpose != store.BootPurposeRamdisk ||
		bi.WorkflowID != contract.MachineWorkflowID(m.ID) {
		t.Errorf("boot intent of the discovered machine: got %+v, %v, want the ramdisk for %s", bi, err, contract.MachineWorkflowID(m.ID))
	}

	ack, _, outcome := h.handle(ctx, l, requestFor(t, offer, withArch(iana.INTEL_X86PC)))
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("got %v (%s), want ACK", ack, outcome)
	}
	lease, err := env.st.GetLeaseByMAC(ctx, env.nets["pxe"].ID, hw)
	if err != nil || lease.State != store.LeaseBound || lease.Addr != ipv4(offer.YourIPAddr) || lease.MachineID != m.ID {
		t.Fatalf("lease: got %+v, %v, want bound to %s for machine %s", lease, err, offer.YourIPAddr, m.ID)
	}
	waitFor(t, 5*time.Second, "signal-with-start of Register", func() bool { return len(env.sig.snapshot()) > 0 })
	call := env.sig.snapshot()[0]
	if !call.Started || call.WorkflowID != contract.MachineWorkflowID(m.ID) || call.Signal != contract.SignalBootEvent {
		t.Errorf("got %+v, want signal-with-start of %s with %s", call, contract.MachineWorkflowID(m.ID), contract.SignalBootEvent)
	}
	if in, ok := call.Input.(contract.RegisterInput); !ok || in.MachineID != m.ID || !in.Discovered {
		t.Errorf("register input: got %+v, want machine %s discovered", call.Input, m.ID)
	}
	if ev, ok := call.Arg.(contract.BootEvent); !ok || ev.Addr != lease.Addr.String() || ev.Arch == "" {
		t.Errorf("boot event: got %+v, want address %s and an arch", call.Arg, lease.Addr)
	}

	// Renew: unicast from the bound address, no server identifier.
	renew, err := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(offer.YourIPAddr), dhcpv4.WithGatewayIP(relayIP))
	if err != nil {
		t.Fatal(err)
	}
	ack2, _, outcome := h.handle(ctx, l, renew)
	if ack2 == nil || ack2.MessageType() != dhcpv4.MessageTypeAck || !ack2.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("renew: got %v (%s), want ACK for %s", ack2, outcome, offer.YourIPAddr)
	}

	// A request for another MAC's address is refused.
	steal, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac(2)), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithGatewayIP(relayIP), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)))
	if nak, _, _ := h.handle(ctx, l, steal); nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("request for another's address: got %v, want NAK", nak)
	}

	// Inform: options, no address, no lease time.
	inform, _ := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeInform),
		dhcpv4.WithClientIP(offer.YourIPAddr), dhcpv4.WithGatewayIP(relayIP))
	iack, _, _ := h.handle(ctx, l, inform)
	if iack == nil || iack.MessageType() != dhcpv4.MessageTypeAck || !iack.YourIPAddr.IsUnspecified() || iack.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
		t.Fatalf("inform: got %v, want an ACK without address or lease time", iack)
	}

	// Release, then the MAC gets its address back.
	release, _ := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease),
		dhcpv4.WithClientIP(offer.YourIPAddr), dhcpv4.WithGatewayIP(relayIP))
	if r, _, outcome := h.handle(ctx, l, release); r != nil || outcome != outcomeOK {
		t.Fatalf("release: got %v, %s, want no reply, ok", r, outcome)
	}
	if l, _ := env.st.GetLeaseByMAC(ctx, env.nets["pxe"].ID, hw); l.State != store.LeaseReleased {
		t.Fatalf("after release: got %s, want released", l.State)
	}
	again, _, _ := h.handle(ctx, l, discover(t, hw, withArch(iana.INTEL_X86PC)))
	if again == nil || !again.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("discover after release: got %v, want %s again", again, offer.YourIPAddr)
	}

	// Decline: the address is taken out of use and the MAC gets another.
	decline, _ := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
		dhcpv4.WithGatewayIP(relayIP), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)))
	if _, _, outcome := h.handle(ctx, l, decline); outcome != outcomeOK {
		t.Fatalf("decline: got %s, want ok", outcome)
	}
	after, _, _ := h.handle(ctx, l, discover(t, hw, withArch(iana.INTEL_X86PC)))
	if after == nil || after.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("discover after decline: got %v, want an address other than %s", after, offer.YourIPAddr)
	}

	// A plain request on the BMC network is answered, without boot file
	// and without a machine.
	bmcReq, _ := dhcpv4.NewDiscovery(mac(500), dhcpv4.WithGatewayIP(net.IPv4(127, 0, 0, 2)))
	bo, _, outcome := h.handle(ctx, l, bmcReq)
	if bo == nil || !bmcNet.CIDR.Contains(ipv4(bo.YourIPAddr)) || bo.BootFileNameOption() != "" {
		t.Fatalf("BMC network: got %v (%s), want an address in %s without boot file", bo, outcome, bmcNet.CIDR)
	}
	if _, err := env.st.GetMachineByMAC(ctx, mac(500)); err == nil {
		t.Errorf("BMC request created a machine, want none")
	}

	// A BMC with a planned address gets it, even outside the range.
	planned := netip.MustParseAddr("198.51.100.50")
	if _, err := env.st.ReserveLease(ctx, env.nets["bmc"].ID, mac(501), planned, ""); err != nil {
		t.Fatal(err)
	}
	pr, _ := dhcpv4.NewDiscovery(mac(501), dhcpv4.WithGatewayIP(net.IPv4(127, 0, 0, 2)))
	po, _, outcome := h.handle(ctx, l, pr)
	if po == nil || ipv4(po.YourIPAddr) != planned {
		t.Fatalf("reserved BMC: got %v (%s), want %s", po, outcome, planned)
	}
	if pa, _, outcome := h.handle(ctx, l, requestFor(t, po)); pa == nil || pa.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("reserved BMC request: got %v (%s), want ACK", pa, outcome)
	}
}

func TestDHCPUnknownMACWithoutAutoRegister(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, Config{}, pxeNet)
	ctx := testCtx(t)
	reply, _, outcome := env.svc.dhcp.handle(ctx, relayListener(), discover(t, mac(1), withArch(iana.EFI_X86_64)))
	if reply != nil || outcome != outcomeUnknownMAC {
		t.Fatalf("got %v, %s, want no reply, %s", reply, outcome, outcomeUnknownMAC)
	}
	if _, err := env.st.GetMachineByMAC(ctx, mac(1)); err == nil {
		t.Errorf("a machine was created, want none")
	}
	// A known machine is answered.
	if _, err := env.st.CreateMachine(ctx, store.MachineCreate{Name: "web-1", PXEMAC: mac(2)}); err != nil {
		t.Fatal(err)
	}
	if reply, _, outcome := env.svc.dhcp.handle(ctx, relayListener(), discover(t, mac(2), withArch(iana.EFI_X86_64))); reply == nil {
		t.Fatalf("known machine: got no reply (%s)", outcome)
	}
	// No network for an unknown relay.
	if reply, _, outcome := env.svc.dhcp.handle(ctx, relayListener(), discover(t, mac(2), dhcpv4.WithGatewayIP(net.IPv4(192, 0, 2, 1)))); reply != nil || outcome != outcomeNoNetwork {
		t.Fatalf("unknown relay: got %v, %s, want none, %s", reply, outcome, outcomeNoNetwork)
	}
}

func TestDHCPOnSegmentDestination(t *testing.T) {
	t.Parallel()
	n := pxeNet
	n.Interface = "bf-test0"
	n.RelayAddrs = nil
	env := newTestEnv(t, Config{AutoRegister: true}, n)
	ctx := testCtx(t)
	l := &dhcpListener{iface: "bf-test0", serverIP: netip.MustParseAddr("203.0.113.5")}
	d, _ := dhcpv4.NewDiscovery(mac(1), withArch(iana.INTEL_X86PC))
	offer, dst, outcome := env.svc.dhcp.handle(ctx, l, d)
	if offer == nil {
		t.Fatalf("no offer: %s", outcome)
	}
	if !dst.IP.Equal(net.IPv4bcast) || dst.Port != DHCPClientPort {
		t.Errorf("got destination %s, want broadcast to port 68", dst)
	}
	if strings.Contains(offer.Summary(), "Relay") {
		t.Errorf("on-segment offer carries relay information")
	}
}
