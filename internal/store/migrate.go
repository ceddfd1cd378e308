package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockKey is the PostgreSQL advisory lock that serializes Migrate
// across processes. Advisory locks are per database, so two bareflow
// databases on one server do not wait for each other.
const migrateLockKey int64 = 0x62617265666c6f77 // "bareflow"

// migration is one numbered SQL file.
type migration struct {
	Version int
	Name    string
	SQL     string
}

// migrationName matches 0001_init.sql.
var migrationName = regexp.MustCompile(`^(\d{4,})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads the migrations in fsys, sorted by version. Versions
// must start at 1 and have no gap or duplicate.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		m := migrationName.FindStringSubmatch(base)
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name must look like 0001_name.sql", base)
		}
		v, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("migration file %s: %w", base, err)
		}
		sql, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		ms = append(ms, migration{Version: v, Name: m[2], SQL: string(sql)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: got version %d, want %d (versions start at 1 without gaps or duplicates)", m.Version, m.Name, m.Version, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion returns the highest migration version this binary carries.
func SchemaVersion() int {
	ms, err := loadMigrations(migrationFiles)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Migrate brings the schema up to date by applying, in order, each embedded
// migration the database has not seen, each in its own transaction, and
// recording it in schema_migrations. It is idempotent. Concurrent calls, from
// this process or others, are serialized by an advisory lock: the later one
// waits and then finds nothing to do.
//
// Migrate refuses to touch a database whose schema is newer than the
// binary's; the error wraps ErrSchemaTooNew.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return unavailable(s.pool.Config().ConnConfig, err)
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("migrate: take migration lock: %w", err)
	}
	defer func() {
		// The context may be done; unlock anyway so that the pooled
		// connection does not keep the lock.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, migrateLockKey); err != nil {
			s.logger.Warn("release migration lock", "error", err)
			// A connection that may still hold the lock must not go back
			// to the pool.
			_ = conn.Conn().Close(uctx)
		}
	}()

	if _, err := conn.Exec(ctx, `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}

	var current int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].Version
	}
	if current > latest {
		return fmt.Errorf("migrate: %w: the database is at version %d, this bareflow knows up to %d; run a newer bareflow", ErrSchemaTooNew, current, latest)
	}

	for _, m := range ms[current:] {
		start := time.Now()
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: apply %04d_%s: %w", m.Version, m.Name, err)
		}
		s.logger.Info("applied migration", "version", m.Version, "name", m.Name, "duration", time.Since(start))
	}
	return nil
}

// AppliedVersion returns the highest migration version recorded in the
// database, 0 when none is.
func (s *Store) AppliedVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		if isUndefinedTable(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func isUndefinedTable(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "42P01"
}
