package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// maintenanceDatabases are the databases EnsureDatabase connects to when the
// one it must create does not exist yet, in order of preference.
var maintenanceDatabases = []string{"postgres", "template1"}

// EnsureDatabase creates the database dsn names when it does not exist. It
// first connects to that database; only when the server says it does not
// exist does it connect to the server's maintenance database and create it.
// Two processes may race: the loser finds the database made and succeeds.
// The DSN's user needs the CREATEDB privilege only when the database is
// missing.
//
// When the server cannot be reached, the error wraps ErrUnavailable.
func EnsureDatabase(ctx context.Context, dsn string) error {
	cfg, err := parseConnConfig(dsn)
	if err != nil {
		return err
	}
	if cfg.Database == "" {
		return fmt.Errorf("ensure database: %w", invalidf("database URL %s names no database", RedactDSN(dsn)))
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	if !hasCode(err, pgInvalidCatalogName) {
		return unavailable(cfg, err)
	}

	admin := cfg.Copy()
	for _, db := range maintenanceDatabases {
		admin.Database = db
		conn, err = pgx.ConnectConfig(ctx, admin)
		if err == nil || !hasCode(err, pgInvalidCatalogName) {
			break
		}
	}
	if err != nil {
		return unavailable(admin, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{cfg.Database}.Sanitize())
	switch {
	case err == nil:
		return nil
	case hasCode(err, pgDuplicateDatabase), hasCode(err, pgUniqueViolation):
		// Another process created it between our check and our CREATE.
		return nil
	case hasCode(err, pgInsufficientPriv):
		return fmt.Errorf("create database %q: user %q may not create databases; create it or grant CREATEDB: %w", cfg.Database, cfg.User, err)
	}
	return fmt.Errorf("create database %q: %w", cfg.Database, err)
}

// hasCode reports whether err is a PostgreSQL error with the given SQLSTATE.
func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
