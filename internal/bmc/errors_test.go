package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"

	"bareflow/internal/lab/ipmisim"
	"bareflow/internal/secret"
)

func TestClassify(t *testing.T) {
	live := context.Background()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	timeout := &net.OpError{Op: "read", Net: "udp", Err: os.ErrDeadlineExceeded}
	refused := &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", syscall.ECONNREFUSED)}

	tests := map[string]struct {
		parent   context.Context
		cmd      types.Command
		err      error
		want     []error // errors.Is must hold for each
		wantNot  []error // and must not for these
		wantCode int     // completion code of a *CompletionError, -1 for none
	}{
		"invalid data field": {
			cmd: types.CommandChassisControl, err: types.NewResponseError(0xcc, "x"),
			want: []error{ErrUnsupported}, wantNot: []error{ErrAuth, ErrUnreachable}, wantCode: 0xcc,
		},
		"invalid command": {
			cmd: types.CommandGetSystemBootOptions, err: types.NewResponseError(0xc1, "x"),
			want: []error{ErrUnsupported}, wantCode: 0xc1,
		},
		"boot option parameter not supported": {
			cmd: types.CommandSetSystemBootOptions, err: fmt.Errorf("wrapped: %w", types.NewResponseError(0x80, "x")),
			want: []error{ErrUnsupported}, wantCode: 0x80,
		},
		"80h means something else for chassis control": {
			cmd: types.CommandChassisControl, err: types.NewResponseError(0x80, "x"),
			wantNot: []error{ErrUnsupported, ErrAuth}, wantCode: 0x80,
		},
		"node busy is only a code": {
			cmd: types.CommandChassisControl, err: types.NewResponseError(0xc0, "x"),
			wantNot: []error{ErrUnsupported, ErrAuth, ErrUnreachable}, wantCode: 0xc0,
		},
		"not supported in present state is only a code": {
			cmd: types.CommandChassisControl, err: types.NewResponseError(0xd5, "x"),
			wantNot: []error{ErrUnsupported}, wantCode: 0xd5,
		},
		"insufficient privilege": {
			cmd: types.CommandChassisControl, err: types.NewResponseError(0xd4, "x"),
			want: []error{ErrAuth}, wantCode: 0xd4,
		},
		"privilege level above the user's limit": {
			cmd: types.CommandSetSessionPrivilegeLevel, err: types.NewResponseError(0x81, "x"),
			want: []error{ErrAuth}, wantCode: 0x81,
		},
		"RAKP mismatch": {
			err:  fmt.Errorf("validate: %w", client.ErrRAKPAuthentication),
			want: []error{ErrAuth, client.ErrRAKPAuthentication}, wantCode: -1,
		},
		"RAKP mismatch flattened by go-ipmi": {
			err:  fmt.Errorf("connect20 failed, errs: \n%v", fmt.Errorf("rakp1: %w", client.ErrRAKPAuthentication)),
			want: []error{ErrAuth}, wantNot: []error{ErrUnreachable}, wantCode: -1,
		},
		"unauthorized name": {
			err:  types.NewRmcpStatusError(types.RmcpStatusCodeUnauthorizedName),
			want: []error{ErrAuth}, wantCode: -1,
		},
		"unauthorized name flattened": {
			err:  fmt.Errorf("errs: %v", types.NewRmcpStatusError(types.RmcpStatusCodeUnauthorizedName)),
			want: []error{ErrAuth}, wantCode: -1,
		},
		"no cipher suite match": {
			err:  types.NewRmcpStatusError(types.RmcpStatusCodeNoCipherSuiteMatch),
			want: []error{ErrUnsupported}, wantNot: []error{ErrAuth}, wantCode: -1,
		},
		"no session slot": {
			err:     types.NewRmcpStatusError(types.RmcpStatusCodeNoResToCreateSess),
			wantNot: []error{ErrAuth, ErrUnsupported, ErrUnreachable}, wantCode: -1,
		},
		"socket timeout": {
			err:  fmt.Errorf("IPMI LAN: timed out: %w", timeout),
			want: []error{ErrUnreachable}, wantCode: -1,
		},
		"connection refused": {
			err:  refused,
			want: []error{ErrUnreachable, syscall.ECONNREFUSED}, wantCode: -1,
		},
		"no datagram matched": {
			err:  fmt.Errorf("IPMI LAN: no matching IPMI response: %w", errors.New("udp exchange: no datagram matched before deadline")),
			want: []error{ErrUnreachable}, wantCode: -1,
		},
		"exchange timeout": {
			err:  fmt.Errorf("canceled from caller: %w", context.DeadlineExceeded),
			want: []error{ErrUnreachable}, wantCode: -1,
		},
		"caller canceled": {
			parent: canceled,
			err:    fmt.Errorf("canceled from caller: %w", context.Canceled),
			want:   []error{context.Canceled}, wantNot: []error{ErrUnreachable}, wantCode: -1,
		},
		"caller canceled during a timeout": {
			parent: canceled,
			err:    timeout,
			want:   []error{context.Canceled}, wantNot: []error{ErrUnreachable}, wantCode: -1,
		},
		"anything else": {
			err:     errors.New("unpack rmcp failed"),
			wantNot: []error{ErrAuth, ErrUnsupported, ErrUnreachable}, wantCode: -1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			parent := tc.parent
			if parent == nil {
				parent = live
			}
			got := classify(parent, tc.cmd, tc.err)
			for _, w := range tc.want {
				if !errors.Is(got, w) {
					t.Errorf("errors.Is(%v, %v): got false, want true", got, w)
				}
			}
			for _, w := range tc.wantNot {
				if errors.Is(got, w) {
					t.Errorf("errors.Is(%v, %v): got true, want false", got, w)
				}
			}
			var ce *CompletionError
			gotCode := -1
			if errors.As(got, &ce) {
				gotCode = int(ce.Code)
			}
			if gotCode != tc.wantCode {
				t.Errorf("completion code: got %d, want %d (error %v)", gotCode, tc.wantCode, got)
			}
		})
	}
}

// TestCompletionCodeFromBMC sends a chassis control that ipmi_sim does not
// implement (diagnostic interrupt) and checks that its "invalid data field"
// answer is reported, not taken for success.
func TestCompletionCodeFromBMC(t *testing.T) {
	s := ipmisim.Start(t, ipmisim.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, Target{Addr: s.Addr(), Username: s.User, Password: secret.String(s.Password)}, Config{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)

	err = c.chassisControl(ctx, "diagnostic interrupt", chassis.ChassisControlDiagnosticInterrupt)
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("diagnostic interrupt: got error %v, want errors.Is ErrUnsupported", err)
	}
	var ce *CompletionError
	if !errors.As(err, &ce) {
		t.Fatalf("diagnostic interrupt: got error %v, want a *CompletionError", err)
	}
	if got, want := ce.Code, uint8(0xcc); got != want {
		t.Errorf("completion code: got %#02x, want %#02x", got, want)
	}
	if got, want := ce.Command, "Chassis Control"; got != want {
		t.Errorf("command: got %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		target Target
		cfg    Config
		ok     bool
	}{
		"default suite": {target: Target{Addr: netip.MustParseAddrPort("192.0.2.10:623"), Username: "admin", Password: "pw"}, ok: true},
		"suite 17":      {target: Target{Addr: netip.MustParseAddrPort("192.0.2.10:623"), Username: "admin", CipherSuite: 17}, ok: true},
		"ipv6":          {target: Target{Addr: netip.MustParseAddrPort("[2001:db8::1]:623"), Username: "admin"}, ok: true},
		"no address":    {target: Target{Username: "admin"}},
		"bad suite":     {target: Target{Addr: netip.MustParseAddrPort("192.0.2.10:623"), CipherSuite: 300}},
		"long password": {target: Target{Addr: netip.MustParseAddrPort("192.0.2.10:623"), Password: secret.String("123456789012345678901")}},
		"negative timeout": {
			target: Target{Addr: netip.MustParseAddrPort("192.0.2.10:623")}, cfg: Config{Timeout: -time.Second},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.target.Validate()
			if err == nil {
				err = tc.cfg.Validate()
			}
			if got := err == nil; got != tc.ok {
				t.Errorf("valid: got %v (%v), want %v", got, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidTarget) {
				t.Errorf("got error %v, want errors.Is ErrInvalidTarget", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := map[string]struct {
		in          Config
		wantTimeout time.Duration
		wantRetries int
	}{
		"zero":       {in: Config{}, wantTimeout: DefaultTimeout, wantRetries: DefaultRetries},
		"no retries": {in: Config{Timeout: time.Second, Retries: -1}, wantTimeout: time.Second, wantRetries: 0},
		"explicit":   {in: Config{Timeout: 3 * time.Second, Retries: 4}, wantTimeout: 3 * time.Second, wantRetries: 4},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.in.withDefaults()
			if got.Timeout != tc.wantTimeout || got.Retries != tc.wantRetries {
				t.Errorf("withDefaults: got timeout %s retries %d, want %s and %d", got.Timeout, got.Retries, tc.wantTimeout, tc.wantRetries)
			}
			if got.Logger == nil {
				t.Errorf("withDefaults: got nil Logger, want a discarding one")
			}
		})
	}
}
