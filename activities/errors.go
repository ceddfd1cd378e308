package activities

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

// Sentinel errors that adapters wrap so activities can classify a failure
// without importing the adapter's package.
var (
	// ErrBMCAuth means the BMC refused the user name or password.
	ErrBMCAuth = errors.New("BMC refused the credentials")
	// ErrBMCUnreachable means the BMC did not answer.
	ErrBMCUnreachable = errors.New("BMC did not answer")
	// ErrBMCUnsupported means the BMC answered that it cannot do what was asked.
	ErrBMCUnsupported = errors.New("BMC does not support the request")
	// ErrNotFound means a record the activity needs does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNoBMC means the machine has no BMC address or credentials.
	ErrNoBMC = errors.New("machine has no BMC configured")
)

// bmcError turns an adapter error into the application error a workflow
// sees: authentication and unsupported requests are permanent, an unanswered
// BMC is retryable, anything else keeps the retry policy's verdict.
func bmcError(what string, err error) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("%s: %v", what, err)
	switch {
	case errors.Is(err, ErrBMCAuth):
		return temporal.NewNonRetryableApplicationError(msg+" (check the machine's BMC user and password)", contract.ErrBMCAuthFailed, nil)
	case errors.Is(err, ErrNoBMC):
		return temporal.NewNonRetryableApplicationError(msg, contract.ErrBMCNotConfigured, nil)
	case errors.Is(err, ErrNotFound):
		return temporal.NewNonRetryableApplicationError(msg, contract.ErrMachineNotFound, nil)
	case errors.Is(err, ErrBMCUnsupported):
		return temporal.NewNonRetryableApplicationError(msg, contract.ErrBMCUnsupported, nil)
	case errors.Is(err, ErrBMCUnreachable):
		return temporal.NewApplicationError(msg, contract.ErrBMCUnreachable)
	}
	return temporal.NewApplicationError(msg, "BMCError")
}
