package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"go.temporal.io/sdk/client"

	"bareflow/internal/store"
)

// dhcpReadBuffer is the receive buffer asked for each DHCP socket, so that
// a burst of a thousand requests is queued rather than dropped.
const dhcpReadBuffer = 4 << 20

// Service is the boot service: DHCP, TFTP and HTTP boot.
type Service struct {
	cfg      Config
	logger   *slog.Logger
	metrics  *metrics
	nets     *networkCache
	events   *eventQueue
	dhcp     *dhcpHandler
	http     *httpBoot
	tftpRoot string

	// extraDHCP are listeners opened by the caller (tests open them inside
	// a network namespace).
	extraDHCP []*dhcpListener
}

// New checks cfg and returns a service that uses st for machines, networks,
// leases and boot intents and tc to signal workflows. tc may be nil: boot
// events are then counted and dropped, and phone-home answers 503. logger
// may be nil.
func New(cfg Config, st *store.Store, tc client.Client, logger *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("boot config: %w", err)
	}
	if st == nil {
		return nil, errors.New("boot service: a store is required")
	}
	var sig WorkflowSignaler
	if tc != nil {
		sig = tc
	}
	return newService(cfg, st, sig, logger)
}

// newService is New with any WorkflowSignaler, for tests.
func newService(cfg Config, st *store.Store, sig WorkflowSignaler, logger *slog.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "boot")
	m := newMetrics()
	s := &Service{cfg: cfg, logger: logger, metrics: m, tftpRoot: cfg.TFTPRoot}
	s.nets = &networkCache{lister: st, logger: logger, timeout: cfg.DBTimeout * 5, kick: make(chan struct{}, 1)}
	s.events = newEventQueue(cfg.EventQueue, sig, cfg.TaskQueue, logger, m)
	s.dhcp = newDHCPHandler(cfg, s.nets, st, st, s.events, m, logger.With("proto", "dhcp"))
	s.http = &httpBoot{cfg: cfg, st: st, signaler: sig, events: s.events, metrics: m, logger: logger.With("proto", "http")}
	if cfg.RamdiskDir != "" {
		root, err := os.OpenRoot(cfg.RamdiskDir)
		if err != nil {
			return nil, fmt.Errorf("boot service: ramdisk folder: %w", err)
		}
		s.http.files = root
	}
	if cfg.ImageCacheDir != "" {
		c, err := newImageCache(cfg.ImageCacheDir, cfg.ImageCacheMaxBytes, st, logger.With("proto", "http", "part", "image-cache"))
		if err != nil {
			return nil, fmt.Errorf("boot service: %w", err)
		}
		s.http.images = c
	}
	return s, nil
}

// bootFilePaths names the iPXE binaries the DHCP answers point at, with
// their paths in the iPXE folder.
func (s *Service) bootFilePaths() map[string]string {
	files := map[string]string{}
	for _, name := range []string{s.cfg.BIOSBootFile, s.cfg.UEFIBootFile, s.cfg.ARM64BootFile} {
		if name != "" {
			files[name] = filepath.Join(s.cfg.IPXEDir, name)
		}
	}
	return files
}

// Handler returns HTTP boot's handler: scripts, files, phone-home and
// metrics. Run serves it on Config.HTTPAddr.
func (s *Service) Handler() http.Handler { return s.http.routes() }

// relayServerIP is the address relayed clients see as server and
// next-server.
func (s *Service) relayServerIP() (netip.Addr, error) {
	if s.cfg.ServerAddr != "" {
		return netip.ParseAddr(s.cfg.ServerAddr)
	}
	if ap, err := netip.ParseAddrPort(normalizeHostPort(s.cfg.RelayAddr)); err == nil && ap.Addr().Is4() && !ap.Addr().IsUnspecified() {
		return ap.Addr(), nil
	}
	if u, err := url.Parse(s.cfg.PublicURL); err == nil {
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && a.Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, errors.New("relayed DHCP needs a server address: set ServerAddr")
}

// interfaceAddr is the first IPv4 address of an interface.
func interfaceAddr(name string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address", name)
}

// openDHCP opens the configured DHCP sockets.
func (s *Service) openDHCP() ([]*dhcpListener, error) {
	var ls []*dhcpListener
	closeAll := func() {
		for _, l := range ls {
			l.conn.Close()
		}
	}
	for _, name := range s.cfg.Interfaces {
		ip, err := interfaceAddr(name)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("DHCP on %s: %w", name, err)
		}
		conn, err := server4.NewIPv4UDPConn(name, &net.UDPAddr{Port: DHCPServerPort})
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("DHCP on %s: %w", name, err)
		}
		_ = conn.SetReadBuffer(dhcpReadBuffer)
		ls = append(ls, &dhcpListener{iface: name, serverIP: ip, conn: conn})
	}
	if s.cfg.RelayAddr != "" {
		ip, err := s.relayServerIP()
		if err != nil {
			closeAll()
			return nil, err
		}
		ap, err := netip.ParseAddrPort(normalizeHostPort(s.cfg.RelayAddr))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("relay address: %w", err)
		}
		conn, err := server4.NewIPv4UDPConn("", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("DHCP relay listener on %s: %w", ap, err)
		}
		_ = conn.SetReadBuffer(dhcpReadBuffer)
		ls = append(ls, &dhcpListener{serverIP: ip, conn: conn})
	}
	return ls, nil
}

// Run serves until ctx is done, then stops every listener and returns nil.
// It fails when a listener cannot be opened or the networks cannot be read
// at start.
func (s *Service) Run(ctx context.Context) error {
	if err := s.nets.load(ctx); err != nil {
		return fmt.Errorf("boot service: read networks: %w", err)
	}
	dhcpLs, err := s.openDHCP()
	if err != nil {
		return fmt.Errorf("boot service: %w", err)
	}
	dhcpLs = append(dhcpLs, s.extraDHCP...)
	httpLn, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		for _, l := range dhcpLs {
			l.conn.Close()
		}
		return fmt.Errorf("boot service: HTTP listener: %w", err)
	}
	var tftpConn net.PacketConn
	var tftpSrv *tftpServer
	if s.cfg.TFTPAddr != "" {
		tftpSrv, err = newTFTPServer(s.tftpRoot, s.bootFilePaths(), s.logger.With("proto", "tftp"), s.metrics)
		if err == nil {
			tftpConn, err = net.ListenPacket("udp4", normalizeHostPort(s.cfg.TFTPAddr))
		}
		if err != nil {
			httpLn.Close()
			for _, l := range dhcpLs {
				l.conn.Close()
			}
			return fmt.Errorf("boot service: TFTP: %w", err)
		}
		defer tftpSrv.close()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4+len(dhcpLs))
	var wg sync.WaitGroup
	goRun := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	goRun(func() { s.events.run(ctx) })
	goRun(func() { s.nets.run(ctx, s.cfg.NetworkRefresh) })
	goRun(func() { s.dhcp.run(ctx) })

	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug)}
	goRun(func() {
		if err := hs.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("HTTP boot: %w", err)
		}
	})
	s.logger.Info("HTTP boot listening", "addr", httpLn.Addr().String(), "public_url", s.cfg.PublicURL)

	var ts interface{ Shutdown() }
	if tftpSrv != nil {
		srv := tftpSrv.server()
		ts = srv
		goRun(func() {
			if err := srv.Serve(tftpConn); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("TFTP: %w", err)
			}
		})
		s.logger.Info("TFTP listening", "addr", tftpConn.LocalAddr().String(), "root", s.tftpRoot)
	}

	for _, l := range dhcpLs {
		srv, err := server4.NewServer(l.iface, nil, func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
			s.dhcp.enqueue(l, m)
		}, server4.WithConn(l.conn))
		if err != nil {
			errc <- err
			break
		}
		goRun(func() {
			if err := srv.Serve(); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("DHCP on %s: %w", l.conn.LocalAddr(), err)
			}
		})
		s.logger.Info("DHCP listening", "addr", l.conn.LocalAddr().String(), "interface", l.iface, "server_ip", l.serverIP.String())
	}
	if len(dhcpLs) == 0 {
		s.logger.Info("DHCP off: no interfaces and no relay address configured")
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.logger.Error("boot service listener failed", "error", runErr)
	}
	cancel()
	shutCtx, shutCancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer shutCancel()
	_ = hs.Shutdown(shutCtx)
	if ts != nil {
		ts.Shutdown()
	}
	for _, l := range dhcpLs {
		l.conn.Close()
	}
	wg.Wait()
	if s.http.files != nil {
		s.http.files.Close()
	}
	return runErr
}
