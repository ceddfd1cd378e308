package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"bareflow/internal/store"
)

type networkJSON struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Kind         string    `json:"kind"`
	CIDR         string    `json:"cidr"`
	Gateway      string    `json:"gateway,omitempty"`
	DNS          []string  `json:"dns,omitempty"`
	Domain       string    `json:"domain,omitempty"`
	RangeStart   string    `json:"range_start,omitempty"`
	RangeEnd     string    `json:"range_end,omitempty"`
	LeaseSeconds int       `json:"lease_seconds"`
	RelayAddrs   []string  `json:"relay_addrs,omitempty"`
	Interface    string    `json:"interface,omitempty"`
	BMCPort      int       `json:"bmc_port,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func toNetworkJSON(n store.Network) networkJSON {
	j := networkJSON{
		ID: n.ID, Name: n.Name, Kind: string(n.Kind), CIDR: n.CIDR.String(), Gateway: addrString(n.Gateway),
		DNS: addrStrings(n.DNS), Domain: n.Domain, RangeStart: addrString(n.RangeStart), RangeEnd: addrString(n.RangeEnd),
		LeaseSeconds: n.LeaseSeconds, RelayAddrs: addrStrings(n.RelayAddrs), Interface: n.Interface, CreatedAt: n.CreatedAt,
	}
	if n.Kind == store.NetworkBMC {
		j.BMCPort = n.BMCPort
	}
	return j
}

type networkInput struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	CIDR         string   `json:"cidr"`
	Gateway      string   `json:"gateway"`
	DNS          []string `json:"dns"`
	Domain       string   `json:"domain"`
	RangeStart   string   `json:"range_start"`
	RangeEnd     string   `json:"range_end"`
	LeaseSeconds int      `json:"lease_seconds"`
	RelayAddrs   []string `json:"relay_addrs"`
	Interface    string   `json:"interface"`
	// BMCPort is the RMCP+ port of the BMCs of a bmc network (623).
	BMCPort int `json:"bmc_port"`
}

func parseAddr(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, errInvalid(fmt.Sprintf("%s %q must be an IPv4 address", field, s))
	}
	return a, nil
}

func parseAddrs(field string, ss []string) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		a, err := parseAddr(field, s)
		if err != nil {
			return nil, err
		}
		if !a.IsValid() {
			return nil, errInvalid(field + " must not hold an empty address")
		}
		out = append(out, a)
	}
	return out, nil
}

func (in networkInput) network() (store.Network, error) {
	n := store.Network{Name: in.Name, Kind: store.NetworkKind(in.Kind), Domain: in.Domain, LeaseSeconds: in.LeaseSeconds, Interface: in.Interface, BMCPort: in.BMCPort}
	if in.Name == "" {
		return n, errInvalid("name is required")
	}
	p, err := netip.ParsePrefix(in.CIDR)
	if err != nil || !p.Addr().Is4() {
		return n, errInvalid(fmt.Sprintf("cidr %q must be an IPv4 prefix such as 198.51.100.0/24", in.CIDR))
	}
	n.CIDR = p
	var errs []error
	n.Gateway, err = parseAddr("gateway", in.Gateway)
	errs = append(errs, err)
	n.RangeStart, err = parseAddr("range_start", in.RangeStart)
	errs = append(errs, err)
	n.RangeEnd, err = parseAddr("range_end", in.RangeEnd)
	errs = append(errs, err)
	n.DNS, err = parseAddrs("dns", in.DNS)
	errs = append(errs, err)
	n.RelayAddrs, err = parseAddrs("relay_addrs", in.RelayAddrs)
	errs = append(errs, err)
	for _, e := range errs {
		if e != nil {
			return n, e
		}
	}
	return n, nil
}

func (s *Server) listNetworks(c echo.Context) error {
	ns, err := s.store.ListNetworks(c.Request().Context())
	if err != nil {
		return err
	}
	out := page[networkJSON]{Items: make([]networkJSON, len(ns))}
	for i, n := range ns {
		out.Items[i] = toNetworkJSON(n)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) createNetwork(c echo.Context) error {
	var in networkInput
	if err := decode(c, &in); err != nil {
		return err
	}
	n, err := in.network()
	if err != nil {
		return err
	}
	n, err = s.store.CreateNetwork(c.Request().Context(), n)
	if err != nil {
		return err
	}
	setAudit(c, "network.create", n.ID, "")
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/networks/"+n.ID)
	return c.JSON(http.StatusCreated, toNetworkJSON(n))
}

// network finds the network named by the :id parameter: its ID or its name.
func (s *Server) network(c echo.Context) (store.Network, error) {
	ref := c.Param("id")
	var (
		n   store.Network
		err error
	)
	if _, perr := uuid.Parse(ref); perr == nil {
		n, err = s.store.GetNetwork(c.Request().Context(), ref)
	} else {
		n, err = s.store.GetNetworkByName(c.Request().Context(), ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return n, errNotFound(fmt.Sprintf("no network %q", ref))
	}
	return n, err
}

func (s *Server) showNetwork(c echo.Context) error {
	n, err := s.network(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toNetworkJSON(n))
}

func (s *Server) deleteNetwork(c echo.Context) error {
	n, err := s.network(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteNetwork(c.Request().Context(), n.ID); err != nil {
		return err
	}
	setAudit(c, "network.delete", n.ID, "")
	return c.NoContent(http.StatusNoContent)
}
