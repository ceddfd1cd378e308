// Package storetest gives tests a fresh, migrated bareflow database on a real
// PostgreSQL server, and drops it when the test ends.
//
// The server is BAREFLOW_TEST_DATABASE_URL, or DefaultURL when that is
// empty; the URL names the database to connect to for creating and dropping
// test databases. When the server cannot be reached the test is skipped with
// the reason, unless BAREFLOW_REQUIRE_INTEGRATION=1, as in CI, where it fails.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"bareflow/internal/secret"
	"bareflow/internal/store"
)

// Environment variables.
const (
	// EnvURL names the PostgreSQL server tests use.
	EnvURL = "BAREFLOW_TEST_DATABASE_URL"
	// EnvRequire, set to 1, turns a skip for want of PostgreSQL into a
	// failure.
	EnvRequire = "BAREFLOW_REQUIRE_INTEGRATION"
)

// DefaultURL is the server tests use when EnvURL is empty.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

const (
	connectTimeout = 5 * time.Second
	setupTimeout   = time.Minute
)

// unreachable remembers that the server could not be reached, so that the
// tests after the first skip at once.
var unreachable struct {
	sync.Mutex
	err error
}

// New returns a Store on a fresh, migrated database with a random secret
// key. The store is closed and the database dropped when the test ends.
func New(t testing.TB) *store.Store {
	t.Helper()
	return Open(t, DSN(t))
}

// Open opens dsn with a random secret key, migrates it and returns the
// store, closed when the test ends.
func Open(t testing.TB, dsn string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := store.Open(ctx, dsn, NewBox(t), slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if errors.Is(err, store.ErrUnavailable) {
		skipOrFail(t, err)
	}
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// NewBox returns a secret.Box with a random key.
func NewBox(t testing.TB) *secret.Box {
	t.Helper()
	key, err := secret.ParseKey(secret.NewKey())
	if err != nil {
		t.Fatalf("parse key: %v", err)
	}
	box, err := secret.NewBox(key)
	if err != nil {
		t.Fatalf("new box: %v", err)
	}
	return box
}

// ServerURL returns the URL of the test server's maintenance database.
func ServerURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// DSN creates a fresh, empty (not migrated) database with a unique name and
// returns its DSN. The database is dropped when the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	base := ServerURL()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn := connect(ctx, t, base)
	defer conn.Close(context.Background())

	name := databaseName(t)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(t, base, name) })
	dsn, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	return dsn
}

// connect opens a connection to dsn, skipping or failing the test when the
// server cannot be reached.
func connect(ctx context.Context, t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	unreachable.Lock()
	prev := unreachable.err
	unreachable.Unlock()
	if prev != nil {
		skipOrFail(t, prev)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("%s: cannot parse %s", EnvURL, store.RedactDSN(dsn))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		// The store words connection failures on one line, without the
		// password; ask it to.
		if s, serr := store.Open(ctx, dsn, nil, nil); serr != nil {
			err = serr
		} else {
			s.Close()
		}
		unreachable.Lock()
		unreachable.err = err
		unreachable.Unlock()
		skipOrFail(t, err)
	}
	return conn
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("integration test needs PostgreSQL (%s=1): %v", EnvRequire, err)
	}
	t.Skipf("skipping, PostgreSQL not available (set %s; %s=1 makes this fail): %v", EnvURL, EnvRequire, err)
}

// databaseName is a unique database name that shows the test it belongs to.
func databaseName(t testing.TB) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if b.Len() >= 30 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("random: %v", err)
	}
	return "bft_" + b.String() + "_" + hex.EncodeToString(rnd[:])
}

// withDatabase returns dsn naming database name instead of its own.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("cannot parse %s", store.RedactDSN(dsn))
		}
		u.Path = "/" + name
		u.RawPath = ""
		q := u.Query()
		if q.Has("dbname") {
			q.Set("dbname", name)
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	// In keyword/value form the last setting of a keyword wins.
	return dsn + " dbname=" + name, nil
}

// dropDatabase drops a test database, closing any connection left on it.
func dropDatabase(t testing.TB, base, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Logf("drop test database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
		t.Logf("drop test database %s: %v", name, err)
	}
}
