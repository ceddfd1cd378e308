package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/rmcpplus"
	"github.com/bougou/go-ipmi/pkg/types"
)

// refusedOpenSession reports whether err is go-ipmi's failure to read an
// Open Session answer that was too short to parse. Some BMCs, ipmi_sim among
// them, answer a refused Open Session with the message tag and the RMCP+
// status code alone, which go-ipmi cannot unpack, so the status is lost.
func refusedOpenSession(err error) bool {
	text := err.Error()
	return strings.Contains(text, "Open Session failed") && strings.Contains(text, types.ErrUnpackedDataTooShort.Error())
}

// openSessionStatus asks the BMC at addr to open a session with cipher suite
// suite, once, and returns the RMCP+ status code of its answer. Dial uses it
// to learn why the BMC refused an Open Session when go-ipmi could not read
// the answer. A status of 00h means the BMC accepted this time; the half-open
// session it made is left to expire on the BMC.
func openSessionStatus(ctx context.Context, addr netip.AddrPort, suite types.CipherSuiteID, timeout time.Duration) (types.RmcpStatusCode, error) {
	auth, integ, crypt, ok := types.GetCipherSuiteAlgorithms(suite)
	if !ok {
		return 0, fmt.Errorf("unknown cipher suite %d", suite)
	}
	authP, integP, cryptP := rmcpplus.NewAlgorithmPayloads(auth, integ, crypt)
	req := &rmcpplus.OpenSessionRequest{
		RequestedMaximumPrivilegeLevel: 0, // the highest the algorithms allow
		RemoteConsoleSessionID:         0xb1a2e0f1,
		AuthenticationPayload:          authP,
		IntegrityPayload:               integP,
		ConfidentialityPayload:         cryptP,
	}
	payload := req.Pack()
	msg := &types.Rmcp{
		RmcpHeader: types.NewRmcpHeader(),
		Session20: &types.Session20{
			SessionHeader20: &types.SessionHeader20{
				AuthType:      types.AuthTypeRMCPPlus,
				PayloadType:   types.PayloadTypeRmcpOpenSessionRequest,
				PayloadLength: uint16(len(payload)),
			},
			SessionPayload: payload,
		},
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr.String())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return 0, err
	}
	if _, err := conn.Write(msg.Pack()); err != nil {
		return 0, err
	}
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return 0, err
		}
		var res types.Rmcp
		if err := res.Unpack(buf[:n]); err != nil || res.Session20 == nil {
			continue
		}
		if res.Session20.SessionHeader20.PayloadType != types.PayloadTypeRmcpOpenSessionResponse {
			continue
		}
		p := res.Session20.SessionPayload
		if len(p) < 2 {
			return 0, errors.New("open session answer without a status code")
		}
		return types.RmcpStatusCode(p[1]), nil
	}
}
