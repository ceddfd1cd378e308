package boot

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"bareflow/internal/store"
)

// networkLister reads the networks. *store.Store implements it.
type networkLister interface {
	ListNetworks(ctx context.Context) ([]store.Network, error)
}

// networkCache keeps the networks in memory, read again every refresh
// interval in the background, so that choosing a network never waits on the
// database.
type networkCache struct {
	lister  networkLister
	logger  *slog.Logger
	mu      sync.RWMutex
	nets    []store.Network
	loaded  bool
	timeout time.Duration
}

func (c *networkCache) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ns, err := c.lister.ListNetworks(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.nets, c.loaded = ns, true
	c.mu.Unlock()
	return nil
}

// run reloads the networks every interval until ctx is done.
func (c *networkCache) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.load(ctx); err != nil && ctx.Err() == nil {
				c.logger.Warn("cannot read networks; keeping the ones read before", "error", err)
			}
		}
	}
}

// byRelay returns the network a relay serves: the one listing giaddr among
// its relay addresses, else the one whose CIDR holds giaddr.
func (c *networkCache) byRelay(giaddr netip.Addr) (store.Network, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, n := range c.nets {
		for _, r := range n.RelayAddrs {
			if r == giaddr {
				return n, true
			}
		}
	}
	for _, n := range c.nets {
		if n.CIDR.Contains(giaddr) {
			return n, true
		}
	}
	return store.Network{}, false
}

// byInterface returns the network on an interface: the one naming it whose
// CIDR holds the interface's address, else the first one naming it.
func (c *networkCache) byInterface(name string, local netip.Addr) (store.Network, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var first *store.Network
	for i, n := range c.nets {
		if n.Interface != name {
			continue
		}
		if local.IsValid() && n.CIDR.Contains(local) {
			return n, true
		}
		if first == nil {
			first = &c.nets[i]
		}
	}
	if first != nil {
		return *first, true
	}
	return store.Network{}, false
}
