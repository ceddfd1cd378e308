package ramdisk

import "errors"

// Sentinel errors of the package. Errors returned by Dial, Run and Upload
// wrap one of them where it applies; test with errors.Is.
var (
	// ErrInvalidConfig reports a Config that Validate refuses.
	ErrInvalidConfig = errors.New("invalid ramdisk ssh config")
	// ErrHostKeyMismatch reports a server whose host key is not the pinned
	// one. Retrying does not help: the machine is not the one that phoned
	// home, or its ramdisk restarted with a new key.
	ErrHostKeyMismatch = errors.New("ssh host key mismatch")
	// ErrAuth reports a server that refused bareflow's key.
	ErrAuth = errors.New("ssh authentication refused")
	// ErrUnreachable reports a TCP connection that could not be made, or
	// that broke or timed out before the SSH handshake finished. It wraps
	// the cause.
	ErrUnreachable = errors.New("ssh server unreachable")
	// ErrConnectionLost reports an established connection that ended under
	// a command: the server went away or stopped answering keepalives.
	ErrConnectionLost = errors.New("ssh connection lost")
	// ErrOutputTooLarge reports a command whose standard output exceeded
	// Command.MaxOutput; the command was killed.
	ErrOutputTooLarge = errors.New("command output too large")
)
