package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
)

// LeaseState is where a DHCP lease stands.
type LeaseState string

// Lease states.
const (
	// LeaseOffered is an address offered to a MAC and not yet requested.
	LeaseOffered LeaseState = "offered"
	// LeaseBound is an address the client requested and was acknowledged.
	LeaseBound LeaseState = "bound"
	// LeaseDeclined is an address a client found in use by someone else; it
	// is not handed out until the lease expires.
	LeaseDeclined LeaseState = "declined"
	// LeaseReleased is an address the client gave back. Its MAC still gets
	// it first when it asks again and the address was not reused.
	LeaseReleased LeaseState = "released"
)

// ErrPoolExhausted means a network has no free address left. It matches
// ErrConflict.
var ErrPoolExhausted = fmt.Errorf("address pool exhausted: %w", ErrConflict)

// allocAttempts bounds how often OfferLease retries after losing a race for
// an address to a concurrent request.
const allocAttempts = 32

// freshWindow is how many addresses from a random place OfferLease looks at
// before it scans the whole pool for a never-used one.
const freshWindow = 64

// Lease is an address of a network held by a MAC.
type Lease struct {
	NetworkID string
	Addr      netip.Addr
	// MAC is nil for a declined address.
	MAC       net.HardwareAddr
	State     LeaseState
	ExpiresAt time.Time
	Hostname  string
	ClientID  []byte
	// MachineID is the machine the MAC belongs to, when known.
	MachineID string
	// Reserved marks the MAC's planned address: never given to another MAC.
	Reserved  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Pool is the range of addresses a network hands out, and the addresses in
// it that must never be handed out (gateway, the boot service's own).
type Pool struct {
	First, Last netip.Addr
	Exclude     []netip.Addr
}

// size is the number of addresses in the pool, 0 when it is invalid.
func (p Pool) size() int64 {
	if !p.First.Is4() || !p.Last.Is4() || p.Last.Less(p.First) {
		return 0
	}
	return int64(addrUint32(p.Last)) - int64(addrUint32(p.First)) + 1
}

// contains reports whether a is in the pool and not excluded.
func (p Pool) contains(a netip.Addr) bool {
	if !a.Is4() || a.Less(p.First) || p.Last.Less(a) {
		return false
	}
	for _, x := range p.Exclude {
		if x == a {
			return false
		}
	}
	return true
}

func addrUint32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// PoolOf returns the pool of n: its range, or every host address of its
// CIDR when it has none (IPv4 only), less the gateway.
func PoolOf(n Network) Pool {
	p := Pool{First: n.RangeStart, Last: n.RangeEnd}
	if !p.First.IsValid() && n.CIDR.Addr().Is4() {
		base := addrUint32(n.CIDR.Masked().Addr())
		bits := 32 - n.CIDR.Bits()
		switch {
		case bits >= 2:
			last := base | (1<<bits - 1)
			p.First, p.Last = uint32Addr(base+1), uint32Addr(last-1)
		default:
			p.First, p.Last = uint32Addr(base), uint32Addr(base|(1<<bits-1))
		}
	}
	if n.Gateway.IsValid() {
		p.Exclude = append(p.Exclude, n.Gateway)
	}
	return p
}

func uint32Addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// LeaseRequest asks for an address on a network for a MAC.
type LeaseRequest struct {
	NetworkID string
	MAC       net.HardwareAddr
	Pool      Pool
	// Hold is how long an offer is kept for the MAC before the address may
	// go to another one when the pool runs dry.
	Hold      time.Duration
	Hostname  string
	ClientID  []byte
	MachineID string
}

const leaseColumns = `network_id, addr, mac, state, expires_at, hostname, client_id, machine_id, reserved, created_at, updated_at`

func scanLease(row pgx.Row) (Lease, error) {
	var (
		l         Lease
		mac       net.HardwareAddr
		state     string
		machineID *string
	)
	if err := row.Scan(&l.NetworkID, &l.Addr, &mac, &state, &l.ExpiresAt, &l.Hostname, &l.ClientID, &machineID,
		&l.Reserved, &l.CreatedAt, &l.UpdatedAt); err != nil {
		return Lease{}, err
	}
	l.State = LeaseState(state)
	if len(mac) > 0 {
		l.MAC = mac
	}
	if machineID != nil {
		l.MachineID = *machineID
	}
	return l, nil
}

func (r *LeaseRequest) validate() error {
	if !isUUID(r.NetworkID) {
		return notFound("network", r.NetworkID)
	}
	if len(r.MAC) != 6 {
		return invalidf("MAC %s must be a 6-byte Ethernet address", r.MAC)
	}
	if r.Pool.size() == 0 {
		return invalidf("address pool %s-%s is empty or not IPv4", r.Pool.First, r.Pool.Last)
	}
	if r.Hold <= 0 {
		r.Hold = time.Minute
	}
	if len(r.Hostname) > 255 {
		r.Hostname = r.Hostname[:255]
	}
	if len(r.ClientID) > 255 {
		r.ClientID = r.ClientID[:255]
	}
	if r.MachineID != "" && !isUUID(r.MachineID) {
		return invalidf("machine ID %q is not a UUID", r.MachineID)
	}
	return nil
}

func uuidArg(id string) any {
	if id == "" {
		return nil
	}
	return id
}

func excludeArg(ex []netip.Addr) []netip.Addr {
	if ex == nil {
		return []netip.Addr{}
	}
	return ex
}

// OfferLease finds an address for the MAC and records an offer: the MAC's
// own address when it has one in the pool, else a never-used address, else
// the address released or expired longest ago. It never gives one address to
// two MACs: the (network, address) and (network, MAC) keys of the leases
// table settle every race, and the loser tries again. When no address is
// free the error wraps ErrPoolExhausted.
func (s *Store) OfferLease(ctx context.Context, req LeaseRequest) (Lease, error) {
	if err := req.validate(); err != nil {
		return Lease{}, fmt.Errorf("offer lease: %w", err)
	}
	for attempt := 0; attempt < allocAttempts; attempt++ {
		l, ok, err := s.offerOwn(ctx, req)
		if err != nil || ok {
			return l, err
		}
		// Look at a small window from a random place first; scan the whole
		// pool only when that window is full.
		n := req.Pool.size()
		l, found, ok, err := s.offerFresh(ctx, req, rand.Int64N(n), min(n, freshWindow))
		if !found && err == nil && n > freshWindow {
			l, found, ok, err = s.offerFresh(ctx, req, rand.Int64N(n), n)
		}
		if err != nil || ok {
			return l, err
		}
		if found {
			// A concurrent request took the address first.
			s.logger.Debug("lost an address race, trying again", "mac", req.MAC.String(), "network_id", req.NetworkID, "attempt", attempt+1)
			continue
		}
		l, ok, err = s.offerReused(ctx, req)
		if err != nil || ok {
			return l, err
		}
		return Lease{}, fmt.Errorf("offer lease on network %s for %s: %w", req.NetworkID, req.MAC, ErrPoolExhausted)
	}
	return Lease{}, fmt.Errorf("offer lease on network %s for %s: %w", req.NetworkID, req.MAC,
		&ConflictError{Resource: "lease", Field: "address", Value: "too many concurrent requests"})
}

// offerOwn renews the offer of the MAC's own address. An own address that
// left the pool (the range changed) is dropped.
func (s *Store) offerOwn(ctx context.Context, req LeaseRequest) (Lease, bool, error) {
	l, err := scanLease(s.offers.QueryRow(ctx, `
		UPDATE leases SET
			state = CASE WHEN state = 'bound' AND expires_at > now() THEN 'bound' ELSE 'offered' END,
			expires_at = CASE WHEN state = 'bound' AND expires_at > now() THEN expires_at
				ELSE now() + make_interval(secs => $3) END,
			hostname = CASE WHEN $4 = '' THEN hostname ELSE $4 END,
			client_id = coalesce($5, client_id),
			machine_id = coalesce($6, machine_id),
			updated_at = now()
		WHERE network_id = $1 AND mac = $2
		RETURNING `+leaseColumns,
		req.NetworkID, req.MAC, req.Hold.Seconds(), req.Hostname, req.ClientID, uuidArg(req.MachineID)))
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("offer lease: %w", dbError(err))
	}
	if l.Reserved || req.Pool.contains(l.Addr) {
		return l, true, nil
	}
	if _, err := s.offers.Exec(ctx, `DELETE FROM leases WHERE network_id = $1 AND addr = $2 AND mac = $3 AND NOT reserved`,
		req.NetworkID, l.Addr, req.MAC); err != nil {
		return Lease{}, false, fmt.Errorf("offer lease: drop address outside the pool: %w", err)
	}
	s.logger.Info("dropped a lease outside its network's pool", "mac", req.MAC.String(), "addr", l.Addr.String(), "network_id", req.NetworkID)
	return Lease{}, false, nil
}

// offerFresh takes a never-used address among window addresses of the pool
// from start on, wrapping around. Starting at a random place makes
// concurrent requests rarely want the same address. found reports whether a
// free address was seen at all; when it was and ok is false, a concurrent
// request inserted it first.
func (s *Store) offerFresh(ctx context.Context, req LeaseRequest, start, window int64) (l Lease, found, ok bool, err error) {
	n := req.Pool.size()
	var (
		cand      netip.Addr
		addr      *netip.Addr
		mac       net.HardwareAddr
		state     *string
		expires   *time.Time
		hostname  *string
		clientID  []byte
		machineID *string
		reserved  *bool
		created   *time.Time
		updated   *time.Time
	)
	err = s.offers.QueryRow(ctx, `
		WITH c AS (
			SELECT a.addr FROM (SELECT $7::inet + (($8::bigint + g) % $9::bigint) AS addr
			                    FROM generate_series(0::bigint, $11::bigint - 1) AS g) AS a
			WHERE a.addr <> ALL ($10::inet[])
			  AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.network_id = $1 AND l.addr = a.addr)
			LIMIT 1
		), ins AS (
			INSERT INTO leases (network_id, addr, mac, state, expires_at, hostname, client_id, machine_id)
			SELECT $1, c.addr, $2, 'offered', now() + make_interval(secs => $3), $4, $5, $6 FROM c
			ON CONFLICT DO NOTHING
			RETURNING `+leaseColumns+`
		)
		SELECT c.addr, ins.addr, ins.mac, ins.state, ins.expires_at, ins.hostname, ins.client_id, ins.machine_id,
			ins.reserved, ins.created_at, ins.updated_at
		FROM c LEFT JOIN ins ON true`,
		req.NetworkID, req.MAC, req.Hold.Seconds(), req.Hostname, req.ClientID, uuidArg(req.MachineID),
		req.Pool.First, start, n, excludeArg(req.Pool.Exclude), window).
		Scan(&cand, &addr, &mac, &state, &expires, &hostname, &clientID, &machineID, &reserved, &created, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, false, false, nil
	}
	if err != nil {
		return Lease{}, false, false, fmt.Errorf("offer lease: %w", dbError(err))
	}
	if addr == nil {
		return Lease{}, true, false, nil
	}
	l = Lease{NetworkID: req.NetworkID, Addr: *addr, MAC: mac, State: LeaseState(*state), ExpiresAt: *expires,
		Hostname: *hostname, ClientID: clientID, Reserved: *reserved, CreatedAt: *created, UpdatedAt: *updated}
	if machineID != nil {
		l.MachineID = *machineID
	}
	return l, true, true, nil
}

// offerReused takes over the address that was released or expired longest
// ago, from another MAC. Rows locked by a concurrent request are skipped.
func (s *Store) offerReused(ctx context.Context, req LeaseRequest) (Lease, bool, error) {
	l, err := scanLease(s.offers.QueryRow(ctx, `
		UPDATE leases SET mac = $2, state = 'offered', expires_at = now() + make_interval(secs => $3),
			hostname = $4, client_id = $5, machine_id = $6, updated_at = now()
		WHERE (network_id, addr) = (
			SELECT network_id, addr FROM leases
			WHERE network_id = $1 AND (state = 'released' OR expires_at < now()) AND NOT reserved
			  AND addr >= $7::inet AND addr <= $8::inet AND addr <> ALL ($9::inet[])
			ORDER BY expires_at
			LIMIT 1
			FOR UPDATE SKIP LOCKED)
		  AND NOT EXISTS (SELECT 1 FROM leases o WHERE o.network_id = $1 AND o.mac = $2)
		RETURNING `+leaseColumns,
		req.NetworkID, req.MAC, req.Hold.Seconds(), req.Hostname, req.ClientID, uuidArg(req.MachineID),
		req.Pool.First, req.Pool.Last, excludeArg(req.Pool.Exclude)))
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, false, nil
	}
	if err != nil {
		var ce *ConflictError
		if errors.As(dbError(err), &ce) {
			// The MAC got a lease concurrently; the next round finds it.
			return Lease{}, false, nil
		}
		return Lease{}, false, fmt.Errorf("offer lease: %w", dbError(err))
	}
	if len(l.MAC) > 0 {
		s.logger.Debug("reused an address", "mac", req.MAC.String(), "addr", l.Addr.String(), "network_id", req.NetworkID)
	}
	return l, true, nil
}

// BindLease confirms the MAC's lease on addr for ttl (a DHCPREQUEST). The
// MAC must hold addr, or addr must be a free address of the pool and the MAC
// hold none (a client rebooting with an address it remembers). Otherwise
// the error wraps ErrConflict when another MAC holds addr and ErrNotFound
// when the MAC holds another address or addr is outside the pool.
func (s *Store) BindLease(ctx context.Context, req LeaseRequest, addr netip.Addr, ttl time.Duration) (Lease, error) {
	if err := req.validate(); err != nil {
		return Lease{}, fmt.Errorf("bind lease: %w", err)
	}
	if ttl <= 0 {
		return Lease{}, fmt.Errorf("bind lease: %w", invalidf("lease time must be positive"))
	}
	l, err := scanLease(s.pool.QueryRow(ctx, `
		UPDATE leases SET state = 'bound', expires_at = now() + make_interval(secs => $4),
			hostname = CASE WHEN $5 = '' THEN hostname ELSE $5 END,
			client_id = coalesce($6, client_id), machine_id = coalesce($7, machine_id), updated_at = now()
		WHERE network_id = $1 AND mac = $2 AND addr = $3
		RETURNING `+leaseColumns,
		req.NetworkID, req.MAC, addr, ttl.Seconds(), req.Hostname, req.ClientID, uuidArg(req.MachineID)))
	if err == nil {
		if !l.Reserved && !req.Pool.contains(l.Addr) {
			return Lease{}, fmt.Errorf("bind lease %s for %s: %w", addr, req.MAC, notFound("address in pool", addr.String()))
		}
		return l, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, fmt.Errorf("bind lease: %w", dbError(err))
	}
	if !req.Pool.contains(addr) {
		return Lease{}, fmt.Errorf("bind lease %s for %s: %w", addr, req.MAC, notFound("address in pool", addr.String()))
	}
	// Not the MAC's address: claim it only when nobody holds it and the MAC
	// holds nothing.
	l, err = scanLease(s.pool.QueryRow(ctx, `
		INSERT INTO leases (network_id, addr, mac, state, expires_at, hostname, client_id, machine_id)
		VALUES ($1, $3, $2, 'bound', now() + make_interval(secs => $4), $5, $6, $7)
		ON CONFLICT DO NOTHING
		RETURNING `+leaseColumns,
		req.NetworkID, req.MAC, addr, ttl.Seconds(), req.Hostname, req.ClientID, uuidArg(req.MachineID)))
	if err == nil {
		return l, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, fmt.Errorf("bind lease: %w", dbError(err))
	}
	held, herr := s.GetLeaseByAddr(ctx, req.NetworkID, addr)
	if herr == nil && len(held.MAC) > 0 && held.MAC.String() != req.MAC.String() {
		return Lease{}, fmt.Errorf("bind lease %s for %s: %w", addr, req.MAC,
			&ConflictError{Resource: "lease", Field: "address", Value: addr.String()})
	}
	return Lease{}, fmt.Errorf("bind lease %s for %s: %w", addr, req.MAC, notFound("lease", addr.String()))
}

// ReleaseLease marks the MAC's lease on addr released. The MAC keeps first
// claim on the address. Releasing a lease the MAC does not hold does nothing.
func (s *Store) ReleaseLease(ctx context.Context, networkID string, mac net.HardwareAddr, addr netip.Addr) error {
	if !isUUID(networkID) || len(mac) != 6 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE leases SET state = 'released', expires_at = least(expires_at, now()), updated_at = now()
		WHERE network_id = $1 AND mac = $2 AND addr = $3`, networkID, mac, addr)
	if err != nil {
		return fmt.Errorf("release lease %s for %s: %w", addr, mac, err)
	}
	return nil
}

// DeclineLease records that addr is in use by someone bareflow does not
// know (the client found it with ARP): the address is given to nobody for
// hold. Only the MAC that holds addr can decline it; a decline from another
// MAC, or of a reserved address (which stays the MAC's), does nothing and
// returns false.
func (s *Store) DeclineLease(ctx context.Context, networkID string, mac net.HardwareAddr, addr netip.Addr, hold time.Duration) (bool, error) {
	if !isUUID(networkID) || len(mac) != 6 {
		return false, nil
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE leases SET state = 'declined', mac = NULL, expires_at = now() + make_interval(secs => $4),
			updated_at = now()
		WHERE network_id = $1 AND mac = $2 AND addr = $3 AND NOT reserved`, networkID, mac, addr, hold.Seconds())
	if err != nil {
		return false, fmt.Errorf("decline lease %s for %s: %w", addr, mac, err)
	}
	return tag.RowsAffected() > 0, nil
}

// GetLeaseByMAC returns the MAC's lease on a network, whatever its state.
func (s *Store) GetLeaseByMAC(ctx context.Context, networkID string, mac net.HardwareAddr) (Lease, error) {
	if !isUUID(networkID) || len(mac) != 6 {
		return Lease{}, fmt.Errorf("get lease: %w", notFound("lease for MAC", mac.String()))
	}
	l, err := scanLease(s.pool.QueryRow(ctx, `SELECT `+leaseColumns+` FROM leases WHERE network_id = $1 AND mac = $2`, networkID, mac))
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, fmt.Errorf("get lease: %w", notFound("lease for MAC", mac.String()))
	}
	if err != nil {
		return Lease{}, fmt.Errorf("get lease for %s: %w", mac, err)
	}
	return l, nil
}

// GetLeaseByAddr returns the lease on an address of a network.
func (s *Store) GetLeaseByAddr(ctx context.Context, networkID string, addr netip.Addr) (Lease, error) {
	if !isUUID(networkID) {
		return Lease{}, fmt.Errorf("get lease: %w", notFound("lease", addr.String()))
	}
	l, err := scanLease(s.pool.QueryRow(ctx, `SELECT `+leaseColumns+` FROM leases WHERE network_id = $1 AND addr = $2`, networkID, addr))
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, fmt.Errorf("get lease: %w", notFound("lease", addr.String()))
	}
	if err != nil {
		return Lease{}, fmt.Errorf("get lease %s: %w", addr, err)
	}
	return l, nil
}

// ListLeases returns every lease of a network in address order.
func (s *Store) ListLeases(ctx context.Context, networkID string) ([]Lease, error) {
	if !isUUID(networkID) {
		return nil, fmt.Errorf("list leases: %w", notFound("network", networkID))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+leaseColumns+` FROM leases WHERE network_id = $1 ORDER BY addr`, networkID)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	ls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Lease, error) { return scanLease(r) })
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return ls, nil
}

// ReserveLease makes addr the planned address of mac on a network: DHCP then
// always gives mac this address, even outside the dynamic range, and never
// gives it to another MAC. The MAC's previous address, if any, is dropped.
// addr must be inside the network; when another MAC holds it (bound or
// offered and not expired, or reserved) the error wraps ErrConflict.
func (s *Store) ReserveLease(ctx context.Context, networkID string, mac net.HardwareAddr, addr netip.Addr, machineID string) (Lease, error) {
	if !isUUID(networkID) {
		return Lease{}, fmt.Errorf("reserve lease: %w", notFound("network", networkID))
	}
	if len(mac) != 6 || !addr.Is4() {
		return Lease{}, fmt.Errorf("reserve lease: %w", invalidf("want a 6-byte MAC and an IPv4 address, got %s and %s", mac, addr))
	}
	if machineID != "" && !isUUID(machineID) {
		return Lease{}, fmt.Errorf("reserve lease: %w", invalidf("machine ID %q is not a UUID", machineID))
	}
	var l Lease
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var inside bool
		err := tx.QueryRow(ctx, `SELECT $2::inet <<= cidr FROM networks WHERE id = $1`, networkID, addr).Scan(&inside)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("network", networkID)
		}
		if err != nil {
			return err
		}
		if !inside {
			return invalidf("address %s is outside the network", addr)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM leases WHERE network_id = $1 AND mac = $2 AND addr <> $3`, networkID, mac, addr); err != nil {
			return err
		}
		l, err = scanLease(tx.QueryRow(ctx, `
			INSERT INTO leases (network_id, addr, mac, state, expires_at, machine_id, reserved)
			VALUES ($1, $2, $3, 'offered', now(), $4, true)
			ON CONFLICT (network_id, addr) DO UPDATE SET mac = excluded.mac, reserved = true,
				machine_id = coalesce(excluded.machine_id, leases.machine_id), updated_at = now(),
				state = CASE WHEN leases.mac = excluded.mac THEN leases.state ELSE 'offered' END
			WHERE leases.mac = excluded.mac
			   OR (NOT leases.reserved AND (leases.state = 'released' OR leases.expires_at < now()))
			RETURNING `+leaseColumns, networkID, addr, mac, uuidArg(machineID)))
		if errors.Is(err, pgx.ErrNoRows) {
			return &ConflictError{Resource: "lease", Field: "address", Value: addr.String()}
		}
		return err
	})
	if err != nil {
		return Lease{}, fmt.Errorf("reserve lease %s for %s: %w", addr, mac, dbError(err))
	}
	return l, nil
}

// Unreserve makes the MAC's reserved address an ordinary lease again.
// Unreserving a MAC without a reservation does nothing.
func (s *Store) Unreserve(ctx context.Context, networkID string, mac net.HardwareAddr) error {
	if !isUUID(networkID) || len(mac) != 6 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE leases SET reserved = false, updated_at = now() WHERE network_id = $1 AND mac = $2`,
		networkID, mac); err != nil {
		return fmt.Errorf("unreserve lease for %s: %w", mac, err)
	}
	return nil
}

// ReleaseMachineLeases releases every lease of a machine (a wiped machine
// gives its addresses back), reservations excepted. It returns how many it
// released.
func (s *Store) ReleaseMachineLeases(ctx context.Context, machineID string) (int, error) {
	if !isUUID(machineID) {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE leases SET state = 'released', expires_at = least(expires_at, now()), updated_at = now()
		WHERE machine_id = $1 AND NOT reserved AND state IN ('offered', 'bound')`, machineID)
	if err != nil {
		return 0, fmt.Errorf("release leases of machine %s: %w", machineID, err)
	}
	return int(tag.RowsAffected()), nil
}
