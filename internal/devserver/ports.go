package devserver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"syscall"
)

// loopback is where the internal services listen.
const loopback = "127.0.0.1"

// ErrAddrInUse reports that a listen address of the dev server is taken.
var ErrAddrInUse = errors.New("address already in use")

// addrInUseError names the address and the flag that changes it.
type addrInUseError struct {
	what, addr, flag string
}

func (e *addrInUseError) Error() string {
	return fmt.Sprintf("%s address %s is already in use; choose another port with %s", e.what, e.addr, e.flag)
}

func (e *addrInUseError) Is(target error) bool { return target == ErrAddrInUse }

// reserveAddr listens on addr to prove it free; release closes the listener
// so that the server can bind it moments later.
func reserveAddr(addr, what, flag string) (release func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, &addrInUseError{what: what, addr: addr, flag: flag}
	}
	if err != nil {
		return nil, fmt.Errorf("%s address %s: %w (change it with %s)", what, addr, err, flag)
	}
	return func() { _ = ln.Close() }, nil
}

// Internal ports are picked below the kernel's ephemeral range (32768 and
// up on Linux by default), where the source ports of outgoing connections
// come from: a port picked there could be taken by a connection in the
// moment between the pick and the server's bind.
const (
	portsFrom = 20000
	portsTo   = 32767
)

// freePorts returns n distinct ports that are free on ip now, picked at
// random below the ephemeral range, or, when none is found there, from the
// kernel.
func freePorts(ip string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		var ln net.Listener
		for try := 0; try < 64 && ln == nil; try++ {
			p := portsFrom + rand.IntN(portsTo-portsFrom+1)
			if l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p))); err == nil {
				ln = l
			}
		}
		if ln == nil {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
			if err != nil {
				return nil, fmt.Errorf("find a free port on %s: %w", ip, err)
			}
			ln = l
		}
		lns = append(lns, ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		ports = append(ports, p)
	}
	return ports, nil
}
