// Package store keeps bareflow's records in PostgreSQL: machines, networks,
// operations, API tokens and the audit log.
//
// It talks to the database through a pgx connection pool. The schema lives in
// numbered SQL files embedded from migrations/ and is applied by Migrate.
// BMC passwords are sealed with a secret.Box before they reach the database,
// bound to the row they belong to.
//
// Every method wraps its errors with what it was doing; callers match the
// package's sentinel errors (ErrNotFound, ErrConflict, ErrStale, ErrInvalid,
// ErrUnavailable) with errors.Is.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"bareflow/internal/secret"
)

// Sentinel errors. Errors returned by Store methods wrap one of them when it
// applies.
var (
	// ErrNotFound means the record does not exist (or, for a token, is revoked).
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique value (a name, a MAC) is already taken. The
	// error is a *ConflictError that says which.
	ErrConflict = errors.New("conflict")
	// ErrStale means the record changed since the caller read it: its version
	// is not the one the caller expected.
	ErrStale = errors.New("stale version")
	// ErrInvalid means an input value was rejected before or by the database.
	ErrInvalid = errors.New("invalid")
	// ErrUnavailable means the PostgreSQL server cannot be reached or refused
	// the connection. The error's message is one line and never shows the
	// password.
	ErrUnavailable = errors.New("database unavailable")
	// ErrSchemaTooNew means the database was migrated by a newer bareflow than
	// this one.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
)

// ConflictError says which unique value is taken. It matches ErrConflict.
type ConflictError struct {
	// Resource is what holds the value: "machine", "network" or "token".
	Resource string
	// Field is the name of the value: "name", "PXE MAC".
	Field string
	// Value is the value that is taken, when known.
	Value string
}

// Error implements error.
func (e *ConflictError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s %s is already taken", e.Resource, e.Field)
	}
	return fmt.Sprintf("%s %s %q is already taken", e.Resource, e.Field, e.Value)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// defaultConnectTimeout bounds a connection attempt when the DSN does not set
// connect_timeout, so that an unreachable server fails fast instead of waiting
// for the operating system's TCP timeout.
const defaultConnectTimeout = 10 * time.Second

// Store is bareflow's PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// offers is a pool whose commits do not wait for the WAL flush, for
	// DHCP offers only: an offer binds nobody, and an offer lost in a
	// database crash is at worst answered again. Binding a lease, and
	// everything else, goes through pool and is durable.
	offers *pgxpool.Pool
	box    *secret.Box
	logger *slog.Logger
}

// Open connects to the database named by dsn (a postgres:// URL or a
// keyword/value string) and checks that it answers. box seals and opens BMC
// passwords; it may be nil for tools that never touch them, and then those
// methods fail. logger may be nil.
//
// When the server cannot be reached, the error wraps ErrUnavailable.
func Open(ctx context.Context, dsn string, box *secret.Box, logger *slog.Logger) (*Store, error) {
	cfg, err := parsePoolConfig(dsn)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, unavailable(cfg.ConnConfig, err)
	}
	ocfg := cfg.Copy()
	ocfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	ocfg.MaxConns = max(4, cfg.MaxConns/2)
	offers, err := pgxpool.NewWithConfig(ctx, ocfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	s := &Store{pool: pool, offers: offers, box: box, logger: logger.With("component", "store")}
	s.logger.Debug("connected to database", "dsn", RedactDSN(dsn))
	return s, nil
}

// Close closes every connection of the store. It waits for connections in use
// to be released.
func (s *Store) Close() {
	s.offers.Close()
	s.pool.Close()
}

// Ping checks that the database answers. When it does not, the error wraps
// ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return unavailable(s.pool.Config().ConnConfig, err)
	}
	return nil
}

// defaultMaxConns is the pool size unless the DSN sets pool_max_conns.
// pgx's own default (the number of CPUs, at least 4) starves the boot
// service's DHCP workers under a burst: each lease waits for a commit.
const defaultMaxConns = 16

// parsePoolConfig parses dsn and fills in bareflow's defaults.
func parsePoolConfig(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, parseError(dsn, err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	applyDefaults(cfg.ConnConfig)
	return cfg, nil
}

// parseConnConfig is parsePoolConfig for a single connection. The pool's
// own settings (pool_max_conns and the like) are accepted and left out, so
// one DSN serves every command.
func parseConnConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := parsePoolConfig(dsn)
	if err != nil {
		return nil, err
	}
	return cfg.ConnConfig, nil
}

func applyDefaults(cfg *pgx.ConnConfig) {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "bareflow"
	}
}
