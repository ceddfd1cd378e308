package devserver

import (
	"errors"
	"fmt"
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

// freePorts returns n distinct ports that are free on ip now.
func freePorts(ip string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", ip, err)
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
