package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"bareflow/internal/store"
)

// Stable error codes of the API. Clients match on them; messages are for
// people.
const (
	codeUnauthorized     = "unauthorized"
	codeNotFound         = "not_found"
	codeInvalid          = "invalid_request"
	codeConflict         = "conflict"
	codeStale            = "stale_version"
	codeBusy             = "machine_busy"
	codeInUse            = "in_use"
	codeFinished         = "operation_finished"
	codeMethod           = "method_not_allowed"
	codeTooLarge         = "request_too_large"
	codeUnavailable      = "unavailable"
	codeInternal         = "internal"
	codeWorkflowTimedOut = "timeout"
)

// apiError is an error with its HTTP status and stable code.
type apiError struct {
	Status    int            `json:"-"`
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Operation *operationJSON `json:"operation,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errInvalid(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeInvalid, Message: msg}
}

func errNotFound(msg string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: codeNotFound, Message: msg}
}

func errUnavailable(msg string) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Message: msg}
}

// mapError is the one place where internal errors become HTTP answers. Only
// the store's own messages for invalid input and conflicts reach the client
// (they name the field or the value taken, never a driver's text); anything
// else is logged and answered with a request ID.
func (s *Server) mapError(c echo.Context, err error) *apiError {
	var ae *apiError
	var he *echo.HTTPError
	var ce *store.ConflictError
	var oe *store.OverlapError
	var ue *store.InUseError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return errNotFound("no such route")
		case http.StatusMethodNotAllowed:
			return &apiError{Status: he.Code, Code: codeMethod, Message: "method not allowed on this route"}
		case http.StatusRequestEntityTooLarge:
			return &apiError{Status: he.Code, Code: codeTooLarge, Message: "request body larger than 1 MiB"}
		case http.StatusUnauthorized:
			return &apiError{Status: he.Code, Code: codeUnauthorized, Message: "a valid bearer token is required"}
		}
		if he.Code < 500 {
			return &apiError{Status: he.Code, Code: codeInvalid, Message: http.StatusText(he.Code)}
		}
	case errors.As(err, &ce):
		return &apiError{Status: http.StatusConflict, Code: codeConflict, Message: ce.Error()}
	case errors.As(err, &oe):
		return &apiError{Status: http.StatusConflict, Code: codeConflict, Message: oe.Error()}
	case errors.As(err, &ue):
		return &apiError{Status: http.StatusConflict, Code: codeInUse, Message: ue.Error()}
	case errors.Is(err, store.ErrNotFound):
		return errNotFound("not found")
	case errors.Is(err, store.ErrStale):
		return &apiError{Status: http.StatusConflict, Code: codeStale, Message: "the record changed since it was read; read it again"}
	case errors.Is(err, store.ErrInvalid):
		return errInvalid(invalidMessage(err))
	case errors.Is(err, store.ErrUnavailable):
		s.log.Error("database unavailable", "error", err, "request_id", requestID(c))
		return errUnavailable("database unavailable, try again")
	}
	s.log.Error("internal error", "error", err, "path", c.Path(), "request_id", requestID(c))
	return &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Message: "internal error"}
}

// invalidMessage returns the store's validation message without the
// operation context wrapped around it.
func invalidMessage(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil || u == store.ErrInvalid {
			return err.Error()
		}
		if !errors.Is(u, store.ErrInvalid) {
			return err.Error()
		}
		err = u
	}
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := *s.mapError(c, err)
	ae.RequestID = requestID(c)
	if ae.Status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="bareflow"`)
	}
	if err := c.JSON(ae.Status, map[string]*apiError{"error": &ae}); err != nil {
		s.log.Warn("cannot write error response", "error", err)
	}
}
