package bmc_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"bareflow/contract"
	"bareflow/internal/bmc"
	"bareflow/internal/lab/ipmisim"
	"bareflow/internal/secret"
)

// testTimeout is the exchange timeout of the tests' clients: short, so that
// the unreachable cases stay quick, and long enough for a loaded machine.
const testTimeout = 2 * time.Second

func target(s *ipmisim.Sim) bmc.Target {
	return bmc.Target{Addr: s.Addr(), Username: s.User, Password: secret.String(s.Password)}
}

// dial opens a session with s and closes it when the test ends.
func dial(t *testing.T, tg bmc.Target, cfg bmc.Config) *bmc.Client {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = testTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bmc.Dial(ctx, tg, cfg)
	if err != nil {
		t.Fatalf("Dial(%s): %v", tg.Addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitPower polls the BMC until it reports want or the deadline passes, and
// returns the last state seen.
func waitPower(ctx context.Context, t *testing.T, c *bmc.Client, want contract.PowerState, within time.Duration) contract.PowerState {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := c.PowerState(ctx)
		if err != nil {
			t.Fatalf("PowerState: %v", err)
		}
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPower(t *testing.T) {
	tests := map[string]struct {
		opts      ipmisim.Options
		action    func(*bmc.Client, context.Context) error
		want      contract.PowerState
		within    time.Duration // how long the BMC may take to get there
		wantCalls []string
	}{
		"power on": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOff},
			action:    (*bmc.Client).PowerOn,
			want:      contract.PowerOn,
			wantCalls: []string{"power 1"},
		},
		"power on when on": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOn},
			action:    (*bmc.Client).PowerOn,
			want:      contract.PowerOn,
			wantCalls: []string{"power 1"},
		},
		"hard off": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOn},
			action:    (*bmc.Client).PowerOffHard,
			want:      contract.PowerOff,
			wantCalls: []string{"power 0"},
		},
		"soft off": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOn},
			action:    (*bmc.Client).PowerOffSoft,
			want:      contract.PowerOff,
			wantCalls: []string{"shutdown 1"},
		},
		"soft off ignored by the OS": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOn, IgnoreSoftOff: true},
			action:    (*bmc.Client).PowerOffSoft,
			want:      contract.PowerOn,
			wantCalls: []string{"shutdown 1"},
		},
		"reset": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOn},
			action:    (*bmc.Client).Reset,
			want:      contract.PowerOn,
			wantCalls: []string{"reset 1"},
		},
		"cycle": {
			opts:      ipmisim.Options{InitialPower: contract.PowerOn},
			action:    (*bmc.Client).Cycle,
			want:      contract.PowerOn,
			within:    5 * time.Second, // ipmi_sim powers on again after 1 s
			wantCalls: []string{"power 0", "power 1"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			s := ipmisim.Start(t, tc.opts)
			c := dial(t, target(s), bmc.Config{})

			if err := tc.action(c, ctx); err != nil {
				t.Fatalf("action: got error %v, want nil", err)
			}
			if got := waitPower(ctx, t, c, tc.want, tc.within); got != tc.want {
				t.Errorf("PowerState: got %s, want %s", got, tc.want)
			}
			if got := s.Power(); got != tc.want {
				t.Errorf("sim power: got %s, want %s", got, tc.want)
			}
			if got := s.Calls(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("hardware calls: got %q, want %q", got, tc.wantCalls)
			}
		})
	}
}

func TestBootDevice(t *testing.T) {
	// ipmi_sim hands only the device selector to its chassis-control
	// program and reads back the device alone: the valid, persistent and EFI
	// bits always read as clear. A real BMC keeps them.
	tests := map[string]struct {
		dev        contract.BootDevice
		mode       contract.BootMode
		persistent bool
		wantSim    string
		want       bmc.BootOverride
	}{
		"pxe legacy next boot": {
			dev: contract.BootPXE, mode: contract.BootModeLegacy,
			wantSim: "pxe",
			want:    bmc.BootOverride{Device: contract.BootPXE, Selector: 1, Mode: contract.BootModeLegacy},
		},
		"pxe efi persistent": {
			dev: contract.BootPXE, mode: contract.BootModeEFI, persistent: true,
			wantSim: "pxe",
			want:    bmc.BootOverride{Device: contract.BootPXE, Selector: 1, Mode: contract.BootModeLegacy},
		},
		"disk efi": {
			dev: contract.BootDisk, mode: contract.BootModeEFI,
			wantSim: "default",
			want:    bmc.BootOverride{Device: contract.BootDisk, Selector: 2, Mode: contract.BootModeLegacy},
		},
		"no override": {
			dev: contract.BootNone, mode: contract.BootModeLegacy,
			wantSim: "none",
			want:    bmc.BootOverride{Device: contract.BootNone, Selector: 0, Mode: contract.BootModeLegacy},
		},
	}
	s := ipmisim.Start(t, ipmisim.Options{})
	c := dial(t, target(s), bmc.Config{})
	ctx := testContext(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// Not parallel: the cases share one BMC.
			if err := c.SetBootDevice(ctx, tc.dev, tc.mode, tc.persistent); err != nil {
				t.Fatalf("SetBootDevice: got error %v, want nil", err)
			}
			if got := s.BootDevice(); got != tc.wantSim {
				t.Errorf("sim boot device: got %q, want %q", got, tc.wantSim)
			}
			got, err := c.BootDevice(ctx)
			if err != nil {
				t.Fatalf("BootDevice: got error %v, want nil", err)
			}
			if got != tc.want {
				t.Errorf("BootDevice: got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSetBootDeviceInvalidInput(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	c := dial(t, target(s), bmc.Config{})
	ctx := testContext(t)
	tests := map[string]struct {
		dev  contract.BootDevice
		mode contract.BootMode
	}{
		"unknown device": {dev: "cdrom", mode: contract.BootModeLegacy},
		"unknown mode":   {dev: contract.BootPXE, mode: "uefi"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := c.SetBootDevice(ctx, tc.dev, tc.mode, false); err == nil {
				t.Errorf("SetBootDevice(%q, %q): got nil error, want one", tc.dev, tc.mode)
			}
		})
	}
	if got := s.Calls(); len(got) != 0 {
		t.Errorf("hardware calls: got %q, want none", got)
	}
}

func TestMCInfo(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	c := dial(t, target(s), bmc.Config{})
	got, err := c.MCInfo(testContext(t))
	if err != nil {
		t.Fatalf("MCInfo: got error %v, want nil", err)
	}
	want := bmc.MCInfo{
		DeviceID: 0, DeviceRevision: 3, FirmwareRevision: "9.08", IPMIVersion: "2.0",
		ManufacturerID: 4753, ProductID: 0x0f02, Available: true,
	}
	got.AuxFirmwareRevision = nil
	if !equalMCInfo(got, want) {
		t.Errorf("MCInfo: got %+v, want %+v", got, want)
	}
}

func equalMCInfo(a, b bmc.MCInfo) bool {
	return a.DeviceID == b.DeviceID && a.DeviceRevision == b.DeviceRevision &&
		a.FirmwareRevision == b.FirmwareRevision && a.IPMIVersion == b.IPMIVersion &&
		a.ManufacturerID == b.ManufacturerID && a.ProductID == b.ProductID && a.Available == b.Available
}

func TestChassisStatus(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{InitialPower: contract.PowerOn})
	c := dial(t, target(s), bmc.Config{})
	got, err := c.ChassisStatus(testContext(t))
	if err != nil {
		t.Fatalf("ChassisStatus: got error %v, want nil", err)
	}
	want := bmc.ChassisStatus{Power: contract.PowerOn, PowerRestorePolicy: "always-off"}
	if got != want {
		t.Errorf("ChassisStatus: got %+v, want %+v", got, want)
	}
}

func TestDialErrors(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	tests := map[string]struct {
		mutate  func(*bmc.Target)
		want    error
		maxTime time.Duration
	}{
		"wrong password": {
			mutate:  func(tg *bmc.Target) { tg.Password = "not-the-password" },
			want:    bmc.ErrAuth,
			maxTime: 3 * time.Second,
		},
		"unknown user": {
			mutate:  func(tg *bmc.Target) { tg.Username = "nobody" },
			want:    bmc.ErrAuth,
			maxTime: 3 * time.Second,
		},
		"cipher suite 17 missing on ipmi_sim": {
			mutate:  func(tg *bmc.Target) { tg.CipherSuite = 17 },
			want:    bmc.ErrUnsupported,
			maxTime: 3 * time.Second,
		},
		"unknown cipher suite": {
			mutate:  func(tg *bmc.Target) { tg.CipherSuite = 99 },
			want:    bmc.ErrInvalidTarget,
			maxTime: time.Second,
		},
		"no port": {
			mutate:  func(tg *bmc.Target) { tg.Addr = netip.AddrPortFrom(tg.Addr.Addr(), 0) },
			want:    bmc.ErrInvalidTarget,
			maxTime: time.Second,
		},
		"user name too long": {
			mutate:  func(tg *bmc.Target) { tg.Username = strings.Repeat("u", 17) },
			want:    bmc.ErrInvalidTarget,
			maxTime: time.Second,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := target(s)
			tc.mutate(&tg)
			start := time.Now()
			c, err := bmc.Dial(testContext(t), tg, bmc.Config{Timeout: testTimeout})
			elapsed := time.Since(start)
			if err == nil {
				_ = c.Close(context.Background())
				t.Fatalf("Dial: got nil error, want %v", tc.want)
			}
			t.Logf("Dial error: %v", err)
			if !errors.Is(err, tc.want) {
				t.Errorf("Dial: got error %v, want errors.Is %v", err, tc.want)
			}
			if elapsed > tc.maxTime {
				t.Errorf("Dial took %s, want at most %s", elapsed, tc.maxTime)
			}
		})
	}
}

// silentUDP returns the address of a UDP socket that reads and drops every
// datagram, as a BMC that has gone quiet.
func silentUDP(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestUnreachable(t *testing.T) {
	const timeout = time.Second
	maxTime := 2*timeout + time.Second

	t.Run("sim stopped after dial", func(t *testing.T) {
		t.Parallel()
		s := ipmisim.Start(t, ipmisim.Options{InitialPower: contract.PowerOn})
		c := dial(t, target(s), bmc.Config{Timeout: timeout})
		s.Stop()
		ctx := testContext(t)
		calls := map[string]func() error{
			"PowerState": func() error { _, err := c.PowerState(ctx); return err },
			"PowerOn":    func() error { return c.PowerOn(ctx) },
			"BootDevice": func() error { _, err := c.BootDevice(ctx); return err },
		}
		for name, call := range calls {
			start := time.Now()
			err := call()
			if elapsed := time.Since(start); elapsed > maxTime {
				t.Errorf("%s took %s, want at most %s", name, elapsed, maxTime)
			}
			if !errors.Is(err, bmc.ErrUnreachable) {
				t.Errorf("%s: got error %v, want errors.Is ErrUnreachable", name, err)
			}
		}
		start := time.Now()
		_ = c.Close(ctx)
		if elapsed := time.Since(start); elapsed > maxTime {
			t.Errorf("Close took %s, want at most %s", elapsed, maxTime)
		}
	})

	addrs := map[string]func(t *testing.T) netip.AddrPort{
		"dial a stopped sim": func(t *testing.T) netip.AddrPort {
			s := ipmisim.Start(t, ipmisim.Options{})
			s.Stop()
			return s.Addr()
		},
		"dial a silent address": silentUDP,
	}
	for name, addr := range addrs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := bmc.Target{Addr: addr(t), Username: "admin", Password: "password"}
			start := time.Now()
			c, err := bmc.Dial(testContext(t), tg, bmc.Config{Timeout: timeout})
			elapsed := time.Since(start)
			if err == nil {
				_ = c.Close(context.Background())
				t.Fatal("Dial: got nil error, want ErrUnreachable")
			}
			if !errors.Is(err, bmc.ErrUnreachable) {
				t.Errorf("Dial: got error %v, want errors.Is ErrUnreachable", err)
			}
			t.Logf("Dial error: %v", err)
			if elapsed > maxTime {
				t.Errorf("Dial took %s, want at most %s", elapsed, maxTime)
			}
		})
	}
}

func TestRedialAfterRestart(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	ctx := testContext(t)
	c := dial(t, target(s), bmc.Config{Timeout: time.Second})
	s.Restart(t)
	// The old session died with the old process; the new one drops its
	// datagrams, as a BMC does with an unknown session.
	if _, err := c.PowerState(ctx); !errors.Is(err, bmc.ErrUnreachable) {
		t.Errorf("PowerState on a session from before the restart: got error %v, want errors.Is ErrUnreachable", err)
	} else {
		t.Logf("PowerState error: %v", err)
	}
	c2 := dial(t, target(s), bmc.Config{})
	if err := c2.PowerOn(ctx); err != nil {
		t.Fatalf("PowerOn after redial: got error %v, want nil", err)
	}
	if got, want := s.Power(), contract.PowerOn; got != want {
		t.Errorf("sim power: got %s, want %s", got, want)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	ctx := testContext(t)
	c, err := bmc.Dial(ctx, target(s), bmc.Config{Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("first Close: got error %v, want nil", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("second Close: got error %v, want nil", err)
	}
	if err := c.PowerOn(ctx); err == nil {
		t.Errorf("PowerOn after Close: got nil error, want one")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{InitialPower: contract.PowerOn})
	c := dial(t, target(s), bmc.Config{})
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 8 {
		wg.Add(2)
		go func() { defer wg.Done(); _, err := c.PowerState(ctx); errs <- err }()
		go func() { defer wg.Done(); _, err := c.MCInfo(ctx); errs <- err }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent call: got error %v, want nil", err)
		}
	}
}

func TestPasswordNeverLogged(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{Password: "pw-Zq7-unique"})
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := testContext(t)

	c := dial(t, target(s), bmc.Config{Logger: logger})
	if err := c.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	bad := target(s)
	bad.Password = "pw-Wrong-unique"
	if _, err := bmc.Dial(ctx, bad, bmc.Config{Logger: logger, Timeout: testTimeout}); !errors.Is(err, bmc.ErrAuth) {
		t.Fatalf("Dial with a wrong password: got error %v, want ErrAuth", err)
	} else if strings.Contains(err.Error(), "pw-Wrong-unique") {
		t.Errorf("error text %q contains the password", err)
	}

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "bmc_addr="+s.Addr().String()) {
		t.Errorf("log: got %q, want records with bmc_addr", out)
	}
	for _, pw := range []string{"pw-Zq7-unique", "pw-Wrong-unique"} {
		if strings.Contains(out, pw) {
			t.Errorf("log contains the password %q:\n%s", pw, out)
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
