package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Errors a caller acts on. Match them with errors.Is; the error text adds the
// operation, the BMC's address and what the BMC or the network said.
var (
	// ErrAuth means the BMC refused the credentials: an unknown user, a
	// wrong password, or a user without the privilege the command needs.
	ErrAuth = errors.New("BMC refused the credentials")
	// ErrUnreachable means the BMC did not answer in time, or its address
	// refused the datagrams.
	ErrUnreachable = errors.New("BMC unreachable")
	// ErrUnsupported means the BMC answered that it cannot do what was
	// asked: an unknown command, an invalid data field, a parameter it does
	// not implement, or a cipher suite it lacks.
	ErrUnsupported = errors.New("not supported by the BMC")
	// ErrInvalidTarget means a Target or Config cannot be used as given.
	ErrInvalidTarget = errors.New("invalid BMC target")
)

// CompletionError is a BMC's answer with a completion code other than 00h
// (success). It matches ErrUnsupported with errors.Is when the code says the
// BMC cannot do this at all, and ErrAuth when it says the session's
// privilege is too low.
type CompletionError struct {
	// Command is the IPMI command's name, such as "Chassis Control".
	Command string
	// Code is the completion code.
	Code uint8
	// Description is what the IPMI specification says the code means for
	// this command.
	Description string

	sentinel error // ErrUnsupported, ErrAuth or nil
}

// Error implements error.
func (e *CompletionError) Error() string {
	return fmt.Sprintf("%s: completion code %#02x: %s", e.Command, e.Code, e.Description)
}

// Is reports whether e is an instance of target: ErrUnsupported or ErrAuth
// when its code means so.
func (e *CompletionError) Is(target error) bool {
	return e.sentinel != nil && target == e.sentinel
}

// newCompletionError describes the completion code cc in answer to cmd.
func newCompletionError(cmd types.Command, cc uint8) *CompletionError {
	e := &CompletionError{Command: cmd.Name, Code: cc, Description: types.StrCC(cmd, cc)}
	switch types.CompletionCode(cc) {
	case types.CodeInvalidCommand, // C1h: the BMC does not implement the command
		types.CodeInvalidCommandForLUN,    // C2h
		types.CodeRequestDataFieldInvalid, // CCh: e.g. a boot device or chassis control it lacks
		types.CodeParameterOutOfRange,     // C9h
		types.CodeSubFnDisabled:           // D6h: sub-function disabled or unavailable
		e.sentinel = ErrUnsupported
	case types.CodeInsufficientPrivilege: // D4h
		e.sentinel = ErrAuth
	}
	switch cmd.Key() {
	case types.CommandSetSystemBootOptions.Key(), types.CommandGetSystemBootOptions.Key():
		if cc == uint8(types.CodeParameterNotSupported) { // 80h: parameter not supported
			e.sentinel = ErrUnsupported
		}
	case types.CommandSetSessionPrivilegeLevel.Key():
		// 80h: level not available for this user; 81h: above the user's
		// or the channel's limit.
		if cc == 0x80 || cc == 0x81 {
			e.sentinel = ErrAuth
		}
	}
	return e
}

// RMCP+ status codes of Open Session and RAKP answers that mean the
// credentials or the requested role were refused.
var authStatus = map[types.RmcpStatusCode]bool{
	types.RmcpStatusCodeInvalidRole:                true,
	types.RmcpStatusCodeUnauthorizedRoleOfPriLevel: true,
	types.RmcpStatusCodeInvalidNameLength:          true,
	types.RmcpStatusCodeUnauthorizedName:           true,
	types.RmcpStatusCodeUnauthorizedGUID:           true,
	types.RmcpStatusCodeInvalidIntegrityCheckValue: true,
}

// RMCP+ status codes that mean the BMC lacks the requested algorithms, that
// is the cipher suite.
var unsupportedStatus = map[types.RmcpStatusCode]bool{
	types.RmcpStatusCodeInvalidAuthAlg:             true,
	types.RmcpStatusCodeInvalidIntegrityAlg:        true,
	types.RmcpStatusCodeInvalidConfidentAlg:        true,
	types.RmcpStatusCodeNoMatchingAuthPayload:      true,
	types.RmcpStatusCodeNoMatchingIntegrityPayload: true,
	types.RmcpStatusCodeNoCipherSuiteMatch:         true,
}

// go-ipmi's session set-up tries each cipher suite in turn and flattens the
// errors of its Open Session and RAKP steps into text. These are the texts of
// go-ipmi's own errors that the classification looks for in it, made by
// go-ipmi's constructors so that they follow its wording.
var (
	authTexts        = statusTexts(authStatus, client.ErrRAKPAuthentication.Error())
	unsupportedTexts = statusTexts(unsupportedStatus)
	// unreachableTexts: go-ipmi's unexported error for "no datagram
	// answered the request before the read deadline", which is how a silent
	// BMC shows for IPMI requests, and the socket errors of a silent or
	// refusing address.
	unreachableTexts = []string{
		"no datagram matched before deadline",
		"i/o timeout",
		syscall.ECONNREFUSED.Error(),
		syscall.EHOSTUNREACH.Error(),
		syscall.ENETUNREACH.Error(),
	}
)

func statusTexts(codes map[types.RmcpStatusCode]bool, extra ...string) []string {
	texts := extra
	for code := range codes {
		texts = append(texts, types.NewRmcpStatusError(code).Error())
	}
	return texts
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// classify turns an error of go-ipmi into the package's errors. parent is the
// caller's context: when it is done, its error is what counts, not the
// exchange's own timeout. cmd is the IPMI command the error answers.
func classify(parent context.Context, cmd types.Command, err error) error {
	if err == nil {
		return nil
	}
	if perr := parent.Err(); perr != nil {
		if errors.Is(err, perr) {
			return err
		}
		return fmt.Errorf("%w: %w", perr, err)
	}

	if re, ok := types.IsResponseError(err); ok && re.CompletionCode() != types.CodeOK {
		return newCompletionError(cmd, uint8(re.CompletionCode()))
	}
	if errors.Is(err, client.ErrRAKPAuthentication) {
		return fmt.Errorf("%w: %w", ErrAuth, err)
	}
	var se *types.RmcpStatusError
	if errors.As(err, &se) {
		switch {
		case authStatus[se.StatusCode()]:
			return fmt.Errorf("%w: %w", ErrAuth, err)
		case unsupportedStatus[se.StatusCode()]:
			return fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		return err
	}
	if unreachable(err) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}

	// The flattened errors of the session set-up.
	text := err.Error()
	switch {
	case containsAny(text, authTexts):
		return fmt.Errorf("%w: %w", ErrAuth, err)
	case containsAny(text, unsupportedTexts):
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	case containsAny(text, unreachableTexts):
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

// unreachable reports whether err says that no answer came: a timeout of
// the exchange or of the socket, or an ICMP error turned into a socket error.
func unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true // the exchange's own timeout; the caller's was checked before
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
