//go:build !linux

package ipmisim

import (
	"errors"
	"net"
)

// dialUDP opens a UDP socket to addr; network namespaces are Linux only.
func dialUDP(netns, addr string) (net.Conn, error) {
	if netns != "" {
		return nil, errors.New("network namespaces need Linux")
	}
	return net.Dial("udp", addr)
}
