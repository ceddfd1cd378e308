package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"bareflow/internal/secret"
)

// PostgreSQL error codes the store reacts to.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgCheckViolation      = "23514"
	pgNotNullViolation    = "23502"
	pgInvalidText         = "22P02"
	pgExclusionViolation  = "23P01"
	pgDuplicateDatabase   = "42P04"
	pgInvalidCatalogName  = "3D000"
	pgInsufficientPriv    = "42501"
)

// uniqueFields names, for each unique constraint, the resource and the field
// it guards, so that a conflict can say which value is taken.
var uniqueFields = map[string][2]string{
	"machines_name_unique":        {"machine", "name"},
	"machines_pxe_mac_unique":     {"machine", "PXE MAC"},
	"networks_name_unique":        {"network", "name"},
	"api_tokens_active_name_uniq": {"token", "name"},
	"api_tokens_hash_unique":      {"token", "hash"},
	"images_name_unique":          {"image", "name"},
}

// checkMessages explains the check constraints a caller can break through
// the store's API despite its own validation.
var checkMessages = map[string]string{
	"machines_bmc_password_has_addr": "a BMC password needs a BMC address",
	"networks_gateway_in_cidr":       "the gateway must be inside the network",
	"networks_range_in_cidr":         "the range must be inside the network and start before it ends",
}

// uniqueDetail matches the detail of a unique violation:
// Key (name)=(web-1) already exists.
var uniqueDetail = regexp.MustCompile(`^Key \(.*?\)=\((.*)\) already exists\.$`)

// dbError turns a PostgreSQL error into the store's sentinels: a unique
// violation becomes a *ConflictError, a check or not-null violation ErrInvalid.
// Other errors are returned as they are.
func dbError(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case pgUniqueViolation:
		ce := &ConflictError{Resource: "record", Field: "value"}
		if f, ok := uniqueFields[pgErr.ConstraintName]; ok {
			ce.Resource, ce.Field = f[0], f[1]
		}
		if m := uniqueDetail.FindStringSubmatch(pgErr.Detail); m != nil && ce.Field != "hash" {
			ce.Value = m[1]
		}
		return ce
	case pgExclusionViolation:
		if pgErr.ConstraintName == "networks_no_overlap" {
			return &ConflictError{Resource: "network", Field: "address range"}
		}
		return &ConflictError{Resource: "record", Field: "value"}
	case pgCheckViolation:
		if msg, ok := checkMessages[pgErr.ConstraintName]; ok {
			return invalidf("%s", msg)
		}
		return invalidf("value breaks rule %s", pgErr.ConstraintName)
	case pgNotNullViolation:
		return fmt.Errorf("%w: %s is required", ErrInvalid, pgErr.ColumnName)
	case pgInvalidText:
		return fmt.Errorf("%w: %s", ErrInvalid, pgErr.Message)
	}
	return err
}

// invalidf returns an error wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// unavailableError is a connection failure. Its message is one line and
// carries no password; it matches ErrUnavailable and unwraps to the driver's
// error.
type unavailableError struct {
	msg string
	err error
}

func (e *unavailableError) Error() string        { return e.msg }
func (e *unavailableError) Unwrap() error        { return e.err }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// unavailable describes a failure to connect to the server cfg names. The
// message has the form
//
//	cannot reach PostgreSQL at 127.0.0.1:5432 (database bareflow): connection refused
//
// when the network failed, and "cannot connect to …" when the server answered
// and refused.
func unavailable(cfg *pgx.ConnConfig, err error) error {
	verb, cause := "cannot reach", connectCause(err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		verb = "cannot connect to"
	}
	if p := cfg.Password; len(p) >= 3 {
		cause = strings.ReplaceAll(cause, p, secret.Redacted)
	}
	msg := fmt.Sprintf("%s PostgreSQL at %s (database %s): %s", verb, serverAddr(cfg), cfg.Database, cause)
	return &unavailableError{msg: msg, err: err}
}

// serverAddr is host:port, or the socket folder for a Unix socket.
func serverAddr(cfg *pgx.ConnConfig) string {
	if strings.HasPrefix(cfg.Host, "/") {
		return fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	return net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
}

// connectCause finds the short reason for a failed connection, without the
// driver's prefixes, on one line.
func connectCause(err error) string {
	var pgErr *pgconn.PgError
	var dnsErr *net.DNSError
	var errno syscall.Errno
	switch {
	case errors.As(err, &pgErr):
		return oneLine(pgErr.Message)
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &errno):
		return errno.Error()
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return oneLine(opErr.Err.Error())
	}
	return oneLine(err.Error())
}

// oneLine joins the lines of s with "; ".
func oneLine(s string) string {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return strings.Join(fields, "; ")
}

// parseError describes a DSN that cannot be parsed, without its password.
func parseError(dsn string, err error) error {
	cause := "syntax error"
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		cause = urlErr.Err.Error()
	} else if inner := errors.Unwrap(err); inner != nil {
		cause = inner.Error()
	}
	return fmt.Errorf("%w: database URL %s: %s", ErrInvalid, RedactDSN(dsn), oneLine(redactText(cause)))
}

var (
	// urlQueryPassword matches a password parameter in a URL's query.
	urlQueryPassword = regexp.MustCompile(`([?&]password=)[^&#]*`)
	// keywordPassword matches password=… in a keyword/value DSN, quoted or not.
	keywordPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s]*)`)
)

// RedactDSN returns dsn with its password replaced by REDACTED, both in the
// user information of a postgres:// URL and in a password parameter or
// keyword. It works on text that does not parse too.
func RedactDSN(dsn string) string {
	scheme, rest, isURL := strings.Cut(dsn, "://")
	if !isURL || !(strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql")) {
		return redactText(dsn)
	}
	// The user information ends at the last '@' before the path. A password
	// may hold unescaped '/' or '?', so look for the '@' first.
	authEnd := len(rest)
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		authEnd = i
	}
	if at := strings.LastIndex(rest[:authEnd], "@"); at >= 0 {
		if user, _, hasPW := strings.Cut(rest[:at], ":"); hasPW {
			rest = user + ":" + secret.Redacted + rest[at:]
		}
	}
	rest = urlQueryPassword.ReplaceAllString(rest, "${1}"+secret.Redacted)
	return scheme + "://" + rest
}

// redactText redacts password=… settings in free text.
func redactText(s string) string {
	return keywordPassword.ReplaceAllString(s, "${1}"+secret.Redacted)
}
