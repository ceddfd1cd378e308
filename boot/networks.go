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
// database. A request that matches no network asks for an early reload
// (miss), so a network created a moment ago serves the client's next
// retransmission rather than one after the next refresh.
type networkCache struct {
	lister  networkLister
	logger  *slog.Logger
	mu      sync.RWMutex
	nets    []store.Network
	loaded  bool
	timeout time.Duration
	// kick asks run for an early reload; it holds at most one request.
	kick chan struct{}
}

// minMissReload is the least time between two reloads asked by misses, so
// that a flood of packets from unknown segments cannot load the database.
const minMissReload = time.Second

// miss asks for an early reload of the networks, without waiting.
func (c *networkCache) miss() {
	if c.kick == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
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

// run reloads the networks every interval, and at most every
// minMissReload when a request matched none, until ctx is done.
func (c *networkCache) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastMiss time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
			if wait := minMissReload - time.Since(lastMiss); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			lastMiss = time.Now()
		}
		if err := c.load(ctx); err != nil && ctx.Err() == nil {
			c.logger.Warn("cannot read networks; keeping the ones read before", "error", err)
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
