package ipmisim

import (
	"context"
	"net"
	"time"

	"bareflow/internal/lab/qemulab"
)

// dialUDP opens a UDP socket to addr, inside the network namespace netns
// when it is not empty.
func dialUDP(netns, addr string) (net.Conn, error) {
	if netns == "" {
		return net.Dial("udp", addr)
	}
	return qemulab.DialInContext(context.Background(), netns, "udp", addr, 5*time.Second)
}
