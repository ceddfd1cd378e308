package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
)

// NetworkKind says what a network carries.
type NetworkKind string

// Network kinds.
const (
	// NetworkProvisioning is where machines PXE-boot and the ramdisk runs.
	NetworkProvisioning NetworkKind = "provisioning"
	// NetworkBMC is where BMCs get their LAN addresses.
	NetworkBMC NetworkKind = "bmc"
	// NetworkOS is where installed systems get their addresses.
	NetworkOS NetworkKind = "os"
)

// Validate reports whether k is a known network kind.
func (k NetworkKind) Validate() error {
	switch k {
	case NetworkProvisioning, NetworkBMC, NetworkOS:
		return nil
	}
	return fmt.Errorf("unknown network kind %q (want provisioning, bmc or os)", string(k))
}

// DefaultLeaseSeconds is a network's DHCP lease time when none is given.
const DefaultLeaseSeconds = 3600

// Network is an IP network bareflow hands out addresses on.
type Network struct {
	ID   string
	Name string
	Kind NetworkKind
	// CIDR is the network's prefix, with its host bits zero.
	CIDR netip.Prefix
	// Gateway is the default router; the zero value means none.
	Gateway netip.Addr
	DNS     []netip.Addr
	Domain  string
	// RangeStart and RangeEnd bound the dynamic range; both zero means none.
	RangeStart   netip.Addr
	RangeEnd     netip.Addr
	LeaseSeconds int
	// RelayAddrs are the giaddr values of the DHCP relays that serve this
	// network.
	RelayAddrs []netip.Addr
	// Interface is the boot service's interface on this network, for DHCP
	// without a relay.
	Interface string
	// BMCPort is the RMCP+ port the BMCs of a BMC network answer on; zero
	// means DefaultBMCPort.
	BMCPort   int
	CreatedAt time.Time
}

// DefaultBMCPort is the standard RMCP+ port.
const DefaultBMCPort = 623

const networkColumns = `id, name, kind, cidr, gateway, dns, domain, range_start, range_end,
	lease_seconds, relay_addrs, interface, bmc_port, created_at`

func scanNetwork(row pgx.Row) (Network, error) {
	var (
		n    Network
		kind string
	)
	err := row.Scan(&n.ID, &n.Name, &kind, &n.CIDR, &n.Gateway, &n.DNS, &n.Domain, &n.RangeStart, &n.RangeEnd,
		&n.LeaseSeconds, &n.RelayAddrs, &n.Interface, &n.BMCPort, &n.CreatedAt)
	if err != nil {
		return Network{}, err
	}
	n.Kind = NetworkKind(kind)
	return n, nil
}

// validate checks n and fills in defaults.
func (n *Network) validate() error {
	if err := ValidName(n.Name); err != nil {
		return err
	}
	if err := n.Kind.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !n.CIDR.IsValid() {
		return invalidf("network CIDR is required")
	}
	if n.CIDR != n.CIDR.Masked() {
		return invalidf("network CIDR %s has host bits set; did you mean %s?", n.CIDR, n.CIDR.Masked())
	}
	if n.Gateway.IsValid() && !n.CIDR.Contains(n.Gateway) {
		return invalidf("gateway %s is outside %s", n.Gateway, n.CIDR)
	}
	if n.RangeStart.IsValid() != n.RangeEnd.IsValid() {
		return invalidf("a range needs both a start and an end")
	}
	if n.RangeStart.IsValid() {
		if !n.CIDR.Contains(n.RangeStart) || !n.CIDR.Contains(n.RangeEnd) {
			return invalidf("range %s-%s is outside %s", n.RangeStart, n.RangeEnd, n.CIDR)
		}
		if n.RangeEnd.Less(n.RangeStart) {
			return invalidf("range %s-%s ends before it starts", n.RangeStart, n.RangeEnd)
		}
	}
	for _, a := range append(append([]netip.Addr(nil), n.DNS...), n.RelayAddrs...) {
		if !a.IsValid() || a.Zone() != "" {
			return invalidf("address %q must be an IP address without zone", a)
		}
	}
	if n.LeaseSeconds == 0 {
		n.LeaseSeconds = DefaultLeaseSeconds
	}
	if n.BMCPort == 0 {
		n.BMCPort = DefaultBMCPort
	}
	if n.BMCPort < 1 || n.BMCPort > 65535 {
		return invalidf("BMC port %d is outside 1-65535", n.BMCPort)
	}
	if n.LeaseSeconds < 0 {
		return invalidf("lease time %ds must be positive", n.LeaseSeconds)
	}
	if n.DNS == nil {
		n.DNS = []netip.Addr{}
	}
	if n.RelayAddrs == nil {
		n.RelayAddrs = []netip.Addr{}
	}
	return nil
}

// addrArg is a as a query argument: NULL for the zero value.
func addrArg(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a
}

// CreateNetwork records a new network and returns it. ID and CreatedAt of n
// are ignored.
func (s *Store) CreateNetwork(ctx context.Context, n Network) (Network, error) {
	if err := n.validate(); err != nil {
		return Network{}, fmt.Errorf("create network: %w", err)
	}
	var other string
	var otherCIDR netip.Prefix
	err := s.pool.QueryRow(ctx, `SELECT name, cidr FROM networks WHERE cidr && $1 LIMIT 1`, n.CIDR).Scan(&other, &otherCIDR)
	switch {
	case err == nil:
		return Network{}, fmt.Errorf("create network %q: %w", n.Name, &OverlapError{CIDR: n.CIDR, Other: other, OtherCIDR: otherCIDR})
	case !errors.Is(err, pgx.ErrNoRows):
		return Network{}, fmt.Errorf("create network %q: %w", n.Name, dbError(err))
	}
	out, err := scanNetwork(s.pool.QueryRow(ctx, `
		INSERT INTO networks (name, kind, cidr, gateway, dns, domain, range_start, range_end,
			lease_seconds, relay_addrs, interface, bmc_port)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		RETURNING `+networkColumns,
		n.Name, string(n.Kind), n.CIDR, addrArg(n.Gateway), n.DNS, n.Domain, addrArg(n.RangeStart),
		addrArg(n.RangeEnd), n.LeaseSeconds, n.RelayAddrs, n.Interface, n.BMCPort))
	if err != nil {
		return Network{}, fmt.Errorf("create network %q: %w", n.Name, dbError(err))
	}
	return out, nil
}

// GetNetwork returns the network with the given ID.
func (s *Store) GetNetwork(ctx context.Context, id string) (Network, error) {
	if !isUUID(id) {
		return Network{}, fmt.Errorf("get network: %w", notFound("network", id))
	}
	n, err := scanNetwork(s.pool.QueryRow(ctx, `SELECT `+networkColumns+` FROM networks WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Network{}, fmt.Errorf("get network: %w", notFound("network", id))
	}
	if err != nil {
		return Network{}, fmt.Errorf("get network %s: %w", id, err)
	}
	return n, nil
}

// GetNetworkByName returns the network with the given name.
func (s *Store) GetNetworkByName(ctx context.Context, name string) (Network, error) {
	n, err := scanNetwork(s.pool.QueryRow(ctx, `SELECT `+networkColumns+` FROM networks WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Network{}, fmt.Errorf("get network: %w", notFound("network", name))
	}
	if err != nil {
		return Network{}, fmt.Errorf("get network %q: %w", name, err)
	}
	return n, nil
}

// ListNetworks returns every network in name order.
func (s *Store) ListNetworks(ctx context.Context) ([]Network, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+networkColumns+` FROM networks ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Network, error) { return scanNetwork(r) })
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return ns, nil
}

// OverlapError says a new network overlaps one that exists. It matches
// ErrConflict.
type OverlapError struct {
	CIDR      netip.Prefix
	Other     string
	OtherCIDR netip.Prefix
}

// Error implements error.
func (e *OverlapError) Error() string {
	return fmt.Sprintf("network %s overlaps network %s (%s)", e.CIDR, e.Other, e.OtherCIDR)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *OverlapError) Is(target error) bool { return target == ErrConflict }

// InUseError says a network still has live leases. It matches ErrConflict.
type InUseError struct {
	Network string
	Leases  int
}

// Error implements error.
func (e *InUseError) Error() string {
	return fmt.Sprintf("network %s has %d live or reserved leases; release them first", e.Network, e.Leases)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *InUseError) Is(target error) bool { return target == ErrConflict }

// DeleteNetwork deletes a network. A network with bound, offered or
// reserved addresses that have not expired is refused with an *InUseError:
// deleting it would hand those addresses out again elsewhere.
func (s *Store) DeleteNetwork(ctx context.Context, id string) error {
	if !isUUID(id) {
		return fmt.Errorf("delete network: %w", notFound("network", id))
	}
	var name string
	var live int
	err := s.pool.QueryRow(ctx, `SELECT n.name, (SELECT count(*) FROM leases l WHERE l.network_id = n.id
		AND (l.reserved OR (l.state IN ('bound', 'offered') AND l.expires_at > now())))
		FROM networks n WHERE n.id = $1`, id).Scan(&name, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("delete network: %w", notFound("network", id))
	}
	if err != nil {
		return fmt.Errorf("delete network %s: %w", id, err)
	}
	if live > 0 {
		return fmt.Errorf("delete network: %w", &InUseError{Network: name, Leases: live})
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM networks WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete network %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete network: %w", notFound("network", id))
	}
	return nil
}
