package bmcsetup

import (
	"errors"
	"strings"

	"bareflow/internal/secret"
)

// Errors a caller acts on; match them with errors.Is. The first four are
// permanent (see Permanent): the same request on the same BMC fails the same
// way.
var (
	// ErrNoLANChannel means no channel from 1 to 11 (and none of the
	// profile's) reports the medium "802.3 LAN".
	ErrNoLANChannel = errors.New("no LAN channel on the BMC")
	// ErrNoUserSlot means the BMC has no user named like bareflow's user
	// and no empty slot in the profile's range.
	ErrNoUserSlot = errors.New("no free user slot on the BMC")
	// ErrPasswordRejected means the password breaks the profile's rules,
	// the BMC answered "user set password" with a completion code (as BMCs
	// with password policies do), or "user test" says the BMC does not take
	// the password it acknowledged.
	ErrPasswordRejected = errors.New("password rejected")
	// ErrInvalidRequest means the Request or Profile cannot be used as
	// given.
	ErrInvalidRequest = errors.New("invalid BMC set-up request")

	// ErrNotApplied means the BMC acknowledged a change but does not show
	// it when read back within the profile's settle time. Retrying may
	// help; if it keeps happening the BMC refuses the setting.
	ErrNotApplied = errors.New("BMC did not apply the settings")
	// ErrDHCPTimeout means the BMC had no DHCP address within the wait.
	ErrDHCPTimeout = errors.New("no DHCP address on the BMC")
	// ErrBMCNotBack means the BMC did not answer within the wait after a
	// cold reset.
	ErrBMCNotBack = errors.New("BMC did not come back after a reset")
)

// ipmitool's words on standard error when the BMC answered a command with a
// completion code other than success (helper.c, eval_ccode), and when it
// refused a password before sending it (ipmi_user.c).
const (
	ccFailedText  = "IPMI command failed"
	pwTooLongText = "Password is too long"
)

// bmcRefused reports whether err says the BMC answered with a completion
// code, as opposed to not answering at all.
func bmcRefused(err error) bool {
	s := err.Error()
	return strings.Contains(s, ccFailedText) || strings.Contains(s, pwTooLongText)
}

// commandError is an ipmitool run that failed: its display string and the
// runner's error, with the password removed from the text.
type commandError struct {
	msg string
	err error
}

func (e *commandError) Error() string { return e.msg }
func (e *commandError) Unwrap() error { return e.err }

// newCommandError wraps err from the ipmitool run shown as display. Any
// occurrence of pw in err's text is replaced by REDACTED.
func newCommandError(display string, err error, pw string) error {
	text := err.Error()
	if pw != "" {
		text = strings.ReplaceAll(text, pw, secret.Redacted)
	}
	return &commandError{msg: display + ": " + text, err: err}
}

// Permanent reports whether err is one of the permanent errors:
// ErrNoLANChannel, ErrNoUserSlot, ErrPasswordRejected or ErrInvalidRequest.
// Retrying the same request will not help; anything else may pass later.
func Permanent(err error) bool {
	for _, p := range []error{ErrNoLANChannel, ErrNoUserSlot, ErrPasswordRejected, ErrInvalidRequest} {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}
