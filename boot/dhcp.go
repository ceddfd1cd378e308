package boot

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"bareflow/contract"
	"bareflow/internal/store"
)

// leaseKeeper keeps DHCP leases. *store.Store implements it.
type leaseKeeper interface {
	OfferLease(ctx context.Context, req store.LeaseRequest) (store.Lease, error)
	BindLease(ctx context.Context, req store.LeaseRequest, addr netip.Addr, ttl time.Duration) (store.Lease, error)
	ReleaseLease(ctx context.Context, networkID string, mac net.HardwareAddr, addr netip.Addr) error
	DeclineLease(ctx context.Context, networkID string, mac net.HardwareAddr, addr netip.Addr, hold time.Duration) (bool, error)
}

// machineDirectory finds machines by MAC and records discovered ones.
// *store.Store implements it.
type machineDirectory interface {
	GetMachineByMAC(ctx context.Context, mac net.HardwareAddr) (store.Machine, error)
	CreateMachine(ctx context.Context, in store.MachineCreate) (store.Machine, error)
	SetBootIntent(ctx context.Context, in store.BootIntent) (store.BootIntent, error)
}

// DHCP work queues: packets wait in bounded queues for a fixed set of
// workers. Requests (which complete a lease) and the other messages of a
// client that already has an offer go first; discovers wait in their own
// queue. A full queue drops new packets (the clients retransmit), and a
// packet that waited too long is dropped unanswered: its client has sent it
// again by then, and answering the old copy would only delay the new one.
// Past capacity this keeps completing leases instead of spending the
// database on offers nobody waits for any more.
const (
	dhcpQueueSize        = 4096
	dhcpWorkers          = 32
	dhcpMaxWait          = 3 * time.Second
	dhcpDiscoverMaxWait  = time.Second
	dhcpDiscoverQueueLen = 1024
)

// iPXE's encapsulated options (option 175) that bareflow sets.
const (
	optionIPXE       dhcpv4.GenericOptionCode = 175
	ipxeNoPXEDHCP                             = 176
	pxeDiscoveryCtrl                          = 6
	pxeDiscoveryBoot                          = 8 // use the boot file, skip boot server discovery
	classPXEClient                            = "PXEClient"
)

// dhcpListener is one socket DHCP answers on.
type dhcpListener struct {
	// iface is the interface the socket is bound to; empty for the relay
	// listener, which answers relayed requests only.
	iface string
	// serverIP is the boot service's address on that segment (server
	// identifier and next-server).
	serverIP netip.Addr
	conn     net.PacketConn
}

// dhcpHandler answers DHCP requests. handle builds the answer without
// touching the socket, so that it can be tested and fuzzed alone.
type dhcpHandler struct {
	cfg       Config
	nets      *networkCache
	leases    leaseKeeper
	machines  machineDirectory
	events    *eventQueue
	metrics   *metrics
	logger    *slog.Logger
	queue     chan dhcpJob
	discovers chan dhcpJob
	unknown   logOnce
}

// logOnce tells whether something keyed by a string was already logged in
// the last logOnceEvery, so that a machine retransmitting every few seconds
// is logged once a minute, not each time. It forgets everything when it
// holds too many keys.
type logOnce struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

const (
	logOnceEvery = time.Minute
	logOnceMax   = 4096
)

func (o *logOnce) first(key string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil || len(o.seen) >= logOnceMax {
		o.seen = map[string]time.Time{}
	}
	if at, ok := o.seen[key]; ok && now.Sub(at) < logOnceEvery {
		return false
	}
	o.seen[key] = now
	return true
}

// dhcpJob is a packet waiting to be answered.
type dhcpJob struct {
	l        *dhcpListener
	m        *dhcpv4.DHCPv4
	received time.Time
}

func newDHCPHandler(cfg Config, nets *networkCache, leases leaseKeeper, machines machineDirectory, events *eventQueue, m *metrics, logger *slog.Logger) *dhcpHandler {
	return &dhcpHandler{cfg: cfg, nets: nets, leases: leases, machines: machines, events: events, metrics: m,
		logger: logger, queue: make(chan dhcpJob, dhcpQueueSize), discovers: make(chan dhcpJob, dhcpDiscoverQueueLen)}
}

// enqueue queues one packet that arrived on l without blocking. It is
// called by server4's read loop.
func (h *dhcpHandler) enqueue(l *dhcpListener, m *dhcpv4.DHCPv4) {
	q := h.queue
	if m.MessageType() == dhcpv4.MessageTypeDiscover {
		q = h.discovers
	}
	select {
	case q <- dhcpJob{l: l, m: m, received: time.Now()}:
	default:
		h.metrics.dhcp.WithLabelValues(m.MessageType().String(), outcomeBusy).Inc()
	}
}

// run answers queued packets with a fixed number of workers until ctx is
// done.
func (h *dhcpHandler) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range dhcpWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var j dhcpJob
				select {
				case j = <-h.queue:
				default:
					select {
					case <-ctx.Done():
						return
					case j = <-h.queue:
					case j = <-h.discovers:
					}
				}
				maxWait := dhcpMaxWait
				if j.m.MessageType() == dhcpv4.MessageTypeDiscover {
					maxWait = dhcpDiscoverMaxWait
				}
				if time.Since(j.received) > maxWait {
					h.metrics.dhcp.WithLabelValues(j.m.MessageType().String(), outcomeBusy).Inc()
					continue
				}
				h.serve(ctx, j.l, j.m)
			}
		}()
	}
	wg.Wait()
}

// serve answers one packet that arrived on l.
func (h *dhcpHandler) serve(ctx context.Context, l *dhcpListener, m *dhcpv4.DHCPv4) {
	reply, dst, outcome := h.handle(ctx, l, m)
	h.metrics.dhcp.WithLabelValues(m.MessageType().String(), outcome).Inc()
	if reply == nil {
		return
	}
	if _, err := l.conn.WriteTo(reply.ToBytes(), dst); err != nil {
		h.logger.Debug("cannot send DHCP reply", "mac", m.ClientHWAddr.String(), "dst", dst.String(), "error", err)
	}
}

// clientInfo is what a request says about its sender's firmware.
type clientInfo struct {
	pxe  bool
	ipxe bool
	arch iana.Arch
	// archKnown is true when option 93 was sent.
	archKnown bool
}

func classify(m *dhcpv4.DHCPv4) clientInfo {
	var ci clientInfo
	if raw := m.GetOneOption(dhcpv4.OptionClientSystemArchitectureType); len(raw) >= 2 {
		ci.arch, ci.archKnown = iana.Arch(uint16(raw[0])<<8|uint16(raw[1])), true
	}
	if uc := m.GetOneOption(dhcpv4.OptionUserClassInformation); bytes.Contains(uc, []byte("iPXE")) {
		ci.ipxe = true
	}
	if m.Options.Has(optionIPXE) {
		ci.ipxe = true
	}
	ci.pxe = ci.ipxe || ci.archKnown || strings.HasPrefix(m.ClassIdentifier(), classPXEClient)
	return ci
}

// archName names an architecture for boot events.
func (ci clientInfo) archName() string {
	if !ci.archKnown {
		return ""
	}
	return ci.arch.String()
}

// bootFile returns the iPXE binary for ci's firmware, "" when none fits.
func (h *dhcpHandler) bootFile(ci clientInfo) string {
	switch ci.arch {
	case iana.INTEL_X86PC:
		return h.cfg.BIOSBootFile
	case iana.EFI_X86_64, iana.EFI_BC:
		return h.cfg.UEFIBootFile
	case iana.EFI_ARM64:
		return h.cfg.ARM64BootFile
	}
	return ""
}

// dhcpRequest is a request being answered.
type dhcpRequest struct {
	l       *dhcpListener
	m       *dhcpv4.DHCPv4
	mac     net.HardwareAddr
	network store.Network
	relayed bool
	info    clientInfo
	machine store.Machine
}

func (r *dhcpRequest) leaseRequest(h *dhcpHandler) store.LeaseRequest {
	pool := store.PoolOf(r.network)
	if r.l.serverIP.IsValid() {
		pool.Exclude = append(pool.Exclude, r.l.serverIP)
	}
	return store.LeaseRequest{
		NetworkID: r.network.ID, MAC: r.mac, Pool: pool, Hold: h.cfg.OfferHold,
		Hostname: truncateHostname(r.m.HostName()), ClientID: r.m.GetOneOption(dhcpv4.OptionClientIdentifier),
		MachineID: r.machine.ID,
	}
}

func truncateHostname(s string) string {
	if len(s) > 255 {
		return s[:255]
	}
	return s
}

// handle decides the answer to m: the reply (nil for none), where it goes
// and the outcome for the metrics.
func (h *dhcpHandler) handle(ctx context.Context, l *dhcpListener, m *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *net.UDPAddr, string) {
	if m.OpCode != dhcpv4.OpcodeBootRequest || m.HWType != iana.HWTypeEthernet || len(m.ClientHWAddr) != 6 {
		return nil, nil, outcomeIgnored
	}
	r := &dhcpRequest{l: l, m: m, mac: m.ClientHWAddr, info: classify(m)}
	giaddr, _ := netip.AddrFromSlice(m.GatewayIPAddr.To4())
	var ok bool
	switch {
	case giaddr.IsValid() && !giaddr.IsUnspecified():
		r.relayed = true
		r.network, ok = h.nets.byRelay(giaddr)
	case l.iface != "":
		r.network, ok = h.nets.byInterface(l.iface, l.serverIP)
	}
	log := h.logger.With("mac", r.mac.String(), "type", m.MessageType().String())
	if !ok {
		log.Debug("no network for DHCP request", "giaddr", giaddr.String(), "interface", l.iface)
		h.nets.miss()
		return nil, nil, outcomeNoNetwork
	}
	log = log.With("network", r.network.Name)

	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return h.discover(ctx, r, log)
	case dhcpv4.MessageTypeRequest:
		return h.request(ctx, r, log)
	case dhcpv4.MessageTypeRelease:
		return h.release(ctx, r, log)
	case dhcpv4.MessageTypeDecline:
		return h.decline(ctx, r, log)
	case dhcpv4.MessageTypeInform:
		return h.inform(r)
	}
	return nil, nil, outcomeIgnored
}

// resolveMachine finds the machine behind a PXE request on a provisioning
// network, creating a discovered one when auto-registration is on. It
// returns false when the request must be ignored.
func (h *dhcpHandler) resolveMachine(ctx context.Context, r *dhcpRequest, log *slog.Logger) (bool, string) {
	if r.network.Kind != store.NetworkProvisioning {
		return true, ""
	}
	dctx, cancel := context.WithTimeout(ctx, h.cfg.DBTimeout)
	defer cancel()
	m, err := h.machines.GetMachineByMAC(dctx, r.mac)
	switch {
	case err == nil:
		r.machine = m
		return true, ""
	case !errors.Is(err, store.ErrNotFound):
		log.Warn("cannot look up machine", "error", err)
		return false, outcomeError
	case !r.info.pxe:
		// Not a network boot (another NIC of a ramdisk, say): an address
		// only.
		return true, ""
	case !h.cfg.AutoRegister:
		if h.unknown.first(r.mac.String(), time.Now()) {
			log.Info("unknown MAC network-boots; auto-registration is off, ignored")
		}
		return false, outcomeUnknownMAC
	}
	m, err = h.machines.CreateMachine(dctx, store.MachineCreate{
		Name: discoveredName(r.mac), State: contract.MachineDiscovered, PXEMAC: r.mac,
	})
	if errors.Is(err, store.ErrConflict) {
		// A retransmission created it a moment ago.
		m, err = h.machines.GetMachineByMAC(dctx, r.mac)
	}
	if err != nil {
		log.Warn("cannot record discovered machine", "error", err)
		return false, outcomeError
	}
	if m.State == contract.MachineDiscovered {
		// Its first iPXE script, moments from now, must load the ramdisk
		// for the Register workflow the boot event starts.
		if _, err := h.machines.SetBootIntent(dctx, store.BootIntent{
			MachineID: m.ID, Purpose: store.BootPurposeRamdisk, WorkflowID: contract.MachineWorkflowID(m.ID),
			ExpiresAt: time.Now().Add(contract.DefaultRamdiskTimeout + discoveredIntentSlack),
		}); err != nil {
			log.Warn("cannot set the ramdisk boot intent of a discovered machine", "machine_id", m.ID, "error", err)
			return false, outcomeError
		}
	}
	log.Info("discovered a machine", "machine_id", m.ID, "name", m.Name)
	r.machine = m
	return true, ""
}

// discoveredIntentSlack keeps a discovered machine's ramdisk intent a
// little longer than its Register workflow waits.
const discoveredIntentSlack = 10 * time.Minute

// discoveredName is the name of a machine discovered by its PXE MAC.
func discoveredName(mac net.HardwareAddr) string { return "m-" + hex.EncodeToString(mac) }

func (h *dhcpHandler) discover(ctx context.Context, r *dhcpRequest, log *slog.Logger) (*dhcpv4.DHCPv4, *net.UDPAddr, string) {
	if ok, outcome := h.resolveMachine(ctx, r, log); !ok {
		return nil, nil, outcome
	}
	dctx, cancel := context.WithTimeout(ctx, h.cfg.DBTimeout)
	defer cancel()
	lease, err := h.leases.OfferLease(dctx, r.leaseRequest(h))
	if errors.Is(err, store.ErrPoolExhausted) {
		log.Warn("address pool exhausted")
		return nil, nil, outcomeExhausted
	}
	if err != nil {
		log.Warn("cannot offer an address", "error", err)
		return nil, nil, outcomeError
	}
	reply, err := h.reply(r, dhcpv4.MessageTypeOffer, lease.Addr, h.leaseTime(r))
	if err != nil {
		return nil, nil, outcomeError
	}
	log.Debug("offer", "addr", lease.Addr.String())
	return reply, h.destination(r, false), outcomeOK
}

func (h *dhcpHandler) leaseTime(r *dhcpRequest) time.Duration {
	if r.network.LeaseSeconds <= 0 {
		return store.DefaultLeaseSeconds * time.Second
	}
	return time.Duration(r.network.LeaseSeconds) * time.Second
}

func ipv4(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func (h *dhcpHandler) request(ctx context.Context, r *dhcpRequest, log *slog.Logger) (*dhcpv4.DHCPv4, *net.UDPAddr, string) {
	if sid := ipv4(r.m.ServerIdentifier()); sid.IsValid() && sid != r.l.serverIP {
		// The client took another server's offer.
		return nil, nil, outcomeIgnored
	}
	ciaddr := ipv4(r.m.ClientIPAddr)
	addr := ipv4(r.m.RequestedIPAddress())
	if !addr.IsValid() {
		addr = ciaddr
	}
	if !addr.IsValid() || !r.network.CIDR.Contains(addr) {
		log.Debug("request for an address outside the network", "addr", addr.String())
		return h.nak(r, "requested address is not on this network")
	}
	if ok, outcome := h.resolveMachine(ctx, r, log); !ok {
		return nil, nil, outcome
	}
	dctx, cancel := context.WithTimeout(ctx, h.cfg.DBTimeout)
	defer cancel()
	ttl := h.leaseTime(r)
	lease, err := h.leases.BindLease(dctx, r.leaseRequest(h), addr, ttl)
	switch {
	case errors.Is(err, store.ErrConflict):
		log.Warn("address conflict: client asks for an address another MAC holds", "addr", addr.String())
		return h.nak(r, "address in use")
	case errors.Is(err, store.ErrNotFound):
		log.Debug("request for an address the client does not hold", "addr", addr.String())
		return h.nak(r, "address not leased to you")
	case err != nil:
		log.Warn("cannot bind lease", "addr", addr.String(), "error", err)
		return nil, nil, outcomeError
	}
	reply, err := h.reply(r, dhcpv4.MessageTypeAck, lease.Addr, ttl)
	if err != nil {
		return nil, nil, outcomeError
	}
	log.Debug("ack", "addr", lease.Addr.String())
	if r.machine.ID != "" {
		h.events.push(bootEvent{
			ev: contract.BootEvent{MachineID: r.machine.ID, Kind: contract.BootEventDHCP, MAC: r.mac.String(),
				Addr: lease.Addr.String(), Arch: r.info.archName(), At: time.Now().UTC()},
			start: h.cfg.AutoRegister && r.machine.State == contract.MachineDiscovered && r.info.pxe,
		})
	}
	return reply, h.destination(r, ciaddr.IsValid()), outcomeOK
}

func (h *dhcpHandler) nak(r *dhcpRequest, msg string) (*dhcpv4.DHCPv4, *net.UDPAddr, string) {
	reply, err := dhcpv4.NewReplyFromRequest(r.m,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(r.l.serverIP.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptMessage(msg)),
	)
	if err != nil {
		return nil, nil, outcomeError
	}
	if r.relayed {
		reply.SetBroadcast()
	}
	return reply, h.destination(r, false), outcomeNAK
}

func (h *dhcpHandler) release(ctx context.Context, r *dhcpRequest, log *slog.Logger) (*dhcpv4.DHCPv4, *net.UDPAddr, string) {
	addr := ipv4(r.m.ClientIPAddr)
	if !addr.IsValid() {
		return nil, nil, outcomeIgnored
	}
	dctx, cancel := context.WithTimeout(ctx, h.cfg.DBTimeout)
	defer cancel()
	if err := h.leases.ReleaseLease(dctx, r.network.ID, r.mac, addr); err != nil {
		log.Warn("cannot release lease", "addr", addr.String(), "error", err)
		return nil, nil, outcomeError
	}
	log.Debug("release", "addr", addr.String())
	return nil, nil, outcomeOK
}

func (h *dhcpHandler) decline(ctx context.Context, r *dhcpRequest, log *slog.Logger) (*dhcpv4.DHCPv4, *net.UDPAddr, string) {
	addr := ipv4(r.m.RequestedIPAddress())
	if !addr.IsValid() {
		return nil, nil, outcomeIgnored
	}
	dctx, cancel := context.WithTimeout(ctx, h.cfg.DBTimeout)
	defer cancel()
	ok, err := h.leases.DeclineLease(dctx, r.network.ID, r.mac, addr, h.cfg.DeclineHold)
	if err != nil {
		log.Warn("cannot record decline", "addr", addr.String(), "error", err)
		return nil, nil, outcomeError
	}
	if !ok {
		log.Debug("decline ignored: the address is not the client's or is reserved for it", "addr", addr.String())
		return nil, nil, outcomeIgnored
	}
	log.Warn("address conflict: client declined its address, taken out of use", "addr", addr.String(), "hold", h.cfg.DeclineHold)
	return nil, nil, outcomeOK
}

func (h *dhcpHandler) inform(r *dhcpRequest) (*dhcpv4.DHCPv4, *net.UDPAddr, string) {
	ciaddr := ipv4(r.m.ClientIPAddr)
	if !ciaddr.IsValid() {
		return nil, nil, outcomeIgnored
	}
	reply, err := h.reply(r, dhcpv4.MessageTypeAck, netip.Addr{}, 0)
	if err != nil {
		return nil, nil, outcomeError
	}
	return reply, h.destination(r, true), outcomeOK
}

// destination is where a reply goes: the relay when there is one, the
// client's address when it has one, else the segment's broadcast address.
func (h *dhcpHandler) destination(r *dhcpRequest, toClient bool) *net.UDPAddr {
	if r.relayed {
		return &net.UDPAddr{IP: r.m.GatewayIPAddr.To4(), Port: h.cfg.RelayReplyPort}
	}
	if ci := ipv4(r.m.ClientIPAddr); toClient && ci.IsValid() {
		return &net.UDPAddr{IP: ci.AsSlice(), Port: DHCPClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: DHCPClientPort}
}

// reply builds an OFFER or ACK for addr (none for an INFORM's ACK, with
// ttl 0) with the network's options and, for a network boot on a
// provisioning network, the boot file.
func (h *dhcpHandler) reply(r *dhcpRequest, mt dhcpv4.MessageType, addr netip.Addr, ttl time.Duration) (*dhcpv4.DHCPv4, error) {
	n := r.network
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(r.l.serverIP.AsSlice())),
		dhcpv4.WithNetmask(net.CIDRMask(n.CIDR.Bits(), 32)),
	}
	if addr.IsValid() {
		mods = append(mods, dhcpv4.WithYourIP(addr.AsSlice()))
	}
	if ttl > 0 {
		mods = append(mods,
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(ttl)),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(ttl/2)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(ttl*7/8)))
	}
	if n.Gateway.IsValid() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRouter(n.Gateway.AsSlice())))
	}
	if len(n.DNS) > 0 {
		dns := make([]net.IP, 0, len(n.DNS))
		for _, a := range n.DNS {
			if a.Is4() {
				dns = append(dns, a.AsSlice())
			}
		}
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(dns...)))
	}
	if n.Domain != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDomainName(n.Domain)))
	}
	if r.machine.Name != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(r.machine.Name)))
	}
	if n.Kind == store.NetworkProvisioning && r.info.pxe {
		mods = append(mods, h.bootOptions(r)...)
	}
	reply, err := dhcpv4.NewReplyFromRequest(r.m, mods...)
	if err != nil {
		return nil, err
	}
	return reply, nil
}

// bootOptions point a network-booting client at its next step: iPXE gets
// the URL of its script; a PXE ROM gets the iPXE binary for its firmware
// from the TFTP server.
func (h *dhcpHandler) bootOptions(r *dhcpRequest) []dhcpv4.Modifier {
	if r.info.ipxe {
		url := h.cfg.PublicURL + "/boot/v1/ipxe/" + r.mac.String()
		return []dhcpv4.Modifier{
			func(d *dhcpv4.DHCPv4) { d.BootFileName = url },
			dhcpv4.WithOption(dhcpv4.OptBootFileName(url)),
			// no-pxedhcp: do not wait for ProxyDHCP offers.
			dhcpv4.WithOption(dhcpv4.OptGeneric(optionIPXE, []byte{ipxeNoPXEDHCP, 1, 1})),
		}
	}
	file := h.bootFile(r.info)
	if file == "" {
		return nil
	}
	next := r.l.serverIP
	return []dhcpv4.Modifier{
		dhcpv4.WithServerIP(next.AsSlice()),
		func(d *dhcpv4.DHCPv4) { d.BootFileName = file },
		dhcpv4.WithOption(dhcpv4.OptTFTPServerName(next.String())),
		dhcpv4.WithOption(dhcpv4.OptBootFileName(file)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(classPXEClient)),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation,
			[]byte{pxeDiscoveryCtrl, 1, pxeDiscoveryBoot, 255})),
	}
}
