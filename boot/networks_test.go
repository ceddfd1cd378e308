package boot

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"bareflow/internal/store"
)

// countingLister returns nets and counts the reads.
type countingLister struct {
	mu    sync.Mutex
	nets  []store.Network
	reads int
}

func (l *countingLister) ListNetworks(context.Context) ([]store.Network, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	return l.nets, nil
}

func TestNetworkCacheReloadsOnMiss(t *testing.T) {
	l := &countingLister{}
	c := &networkCache{lister: l, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), timeout: time.Second, kick: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.run(ctx, time.Hour)

	// A network created after the service started.
	l.mu.Lock()
	l.nets = []store.Network{{Name: "lab", Kind: store.NetworkProvisioning, CIDR: netip.MustParsePrefix("198.51.100.0/24"), Interface: "br0"}}
	l.mu.Unlock()
	if _, ok := c.byInterface("br0", netip.Addr{}); ok {
		t.Fatal("network known before any reload")
	}
	// A flood of misses makes one reload, not one per packet.
	for range 100 {
		c.miss()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := c.byInterface("br0", netip.Addr{}); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the network is not known 5s after a miss")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	l.mu.Lock()
	reads := l.reads
	l.mu.Unlock()
	if reads > 2 {
		t.Errorf("reads after 100 misses: got %d, want at most 2", reads)
	}
}
