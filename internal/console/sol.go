package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/transport"
	"github.com/bougou/go-ipmi/pkg/types"

	"bareflow/internal/bmc"
)

// solInstance is the SOL payload instance bareflow uses; BMCs have one.
const solInstance = 1

// solPollInterval is how often the stream polls the BMC for output. The
// polls are also the session's keep-alive.
const solPollInterval = 100 * time.Millisecond

// TargetFunc finds how to reach a machine's BMC.
type TargetFunc func(ctx context.Context, machineID string) (bmc.Target, error)

// SOLOpener opens SOL sessions over IPMI v2.0 RMCP+ with go-ipmi, as the
// Administrator privilege level, with the payload encrypted and
// authenticated (as ipmitool does).
type SOLOpener struct {
	// Target finds the machine's BMC and credentials. Required.
	Target TargetFunc
	// Timeout bounds one exchange with the BMC. Default bmc.DefaultTimeout.
	Timeout time.Duration
}

// Open implements Opener.
func (o SOLOpener) Open(ctx context.Context, machineID string, force bool) (Stream, error) {
	t, err := o.Target(ctx, machineID)
	if err != nil {
		return nil, err
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = bmc.DefaultTimeout
	}
	suite := t.CipherSuite
	if suite == 0 {
		suite = bmc.DefaultCipherSuite
	}
	gc, err := client.NewClient(t.Addr.Addr().String(), int(t.Addr.Port()), t.Username, t.Password.Reveal())
	if err != nil {
		return nil, fmt.Errorf("SOL with %s: %w", t.Addr, err)
	}
	gc.WithInterface(client.InterfaceLanplus).
		WithTimeout(timeout / time.Duration(bmc.DefaultRetries+1)).
		WithRetry(bmc.DefaultRetries).
		WithCipherSuiteID(types.CipherSuiteID(suite)).
		WithMaxPrivilegeLevel(types.PrivilegeLevelAdministrator)
	if err := gc.Connect(ctx); err != nil {
		closeNow(gc)
		return nil, fmt.Errorf("SOL session with %s: %w", t.Addr, err)
	}
	s := &solStream{c: gc, addr: t.Addr.String()}
	err = s.activate(ctx)
	if errors.Is(err, ErrAlreadyActive) && force {
		// Deactivate Payload from this session takes the instance from the
		// session that holds it (an administrator may).
		if _, derr := gc.DeactivatePayload(ctx, &transport.DeactivatePayloadRequest{PayloadType: types.PayloadTypeSOL, PayloadInstance: solInstance}); derr != nil {
			err = fmt.Errorf("force: deactivate the other session's SOL: %w", derr)
		} else {
			err = s.activate(ctx)
		}
	}
	if err != nil {
		_ = gc.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

// closeNow releases a client's socket without another exchange.
func closeNow(gc *client.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = gc.Close(ctx)
}

type solStream struct {
	c    *client.Client
	addr string
}

func (s *solStream) activate(ctx context.Context) error {
	_, err := s.c.ActivatePayload(ctx, &transport.ActivatePayloadRequest{
		PayloadType: types.PayloadTypeSOL, PayloadInstance: solInstance,
		EnableEncryption: true, EnableAuthentication: true,
	})
	if re, ok := types.IsResponseError(err); ok && re.CompletionCode() == types.CodeActivatePayloadAlreadyActive {
		return fmt.Errorf("activate SOL on %s: %w", s.addr, ErrAlreadyActive)
	}
	if err != nil {
		return fmt.Errorf("activate SOL on %s: %w", s.addr, err)
	}
	return nil
}

// Run implements Stream.
func (s *solStream) Run(ctx context.Context, in io.Reader, out io.Writer) error {
	err := s.c.SOLStream(ctx, in, out, &client.SOLStreamOptions{PollInterval: solPollInterval})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = io.EOF
	}
	return fmt.Errorf("SOL stream with %s: %w", s.addr, err)
}

// Close implements Stream: it deactivates the payload, then ends the
// session.
func (s *solStream) Close(ctx context.Context) error {
	_, derr := s.c.DeactivatePayload(ctx, &transport.DeactivatePayloadRequest{PayloadType: types.PayloadTypeSOL, PayloadInstance: solInstance})
	cerr := s.c.Close(ctx)
	if derr != nil {
		return fmt.Errorf("deactivate SOL on %s: %w", s.addr, derr)
	}
	return cerr
}
