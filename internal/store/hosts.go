package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrHostHasGuests is returned when a host to turn back still has guests.
var ErrHostHasGuests = errors.New("the host has guests")

// Host is a hypervisor host: a machine converted by ConvertToHost.
type Host struct {
	MachineID     string
	AgentURL      string
	CPUs          int
	MemoryBytes   int64
	StorageBytes  int64
	WorkspacePath string
	// Guests is the guest controller's count of the host's guests.
	Guests      int
	ConvertedAt time.Time
	// UndoAt is when an undo claimed the host; zero when none did.
	UndoAt time.Time
}

const hostColumns = `machine_id, agent_url, cpus, memory_bytes, storage_bytes, workspace_path, guests, converted_at, undo_at`

func scanHost(row pgx.Row) (Host, error) {
	var (
		h    Host
		undo *time.Time
	)
	err := row.Scan(&h.MachineID, &h.AgentURL, &h.CPUs, &h.MemoryBytes, &h.StorageBytes, &h.WorkspacePath, &h.Guests, &h.ConvertedAt, &undo)
	if undo != nil {
		h.UndoAt = *undo
	}
	return h, err
}

// RecordHost records a machine as a host, or updates its agent and capacity
// (a conversion run again); the guest count stays and a claimed undo is
// cleared.
func (s *Store) RecordHost(ctx context.Context, h Host) error {
	if !isUUID(h.MachineID) {
		return fmt.Errorf("record host: %w", notFound("machine", h.MachineID))
	}
	if h.AgentURL == "" || h.WorkspacePath == "" || h.CPUs < 0 || h.MemoryBytes < 0 || h.StorageBytes < 0 {
		return fmt.Errorf("record host: %w", invalidf("an agent URL, a workspace path and a capacity of zero or more are required"))
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO hosts (machine_id, agent_url, cpus, memory_bytes, storage_bytes, workspace_path)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (machine_id) DO UPDATE SET agent_url = $2, cpus = $3, memory_bytes = $4, storage_bytes = $5,
			workspace_path = $6, converted_at = now(), undo_at = NULL`,
		h.MachineID, h.AgentURL, h.CPUs, h.MemoryBytes, h.StorageBytes, h.WorkspacePath)
	if err != nil {
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == pgForeignKeyViolation {
			return fmt.Errorf("record host: %w", notFound("machine", h.MachineID))
		}
		return fmt.Errorf("record host %s: %w", h.MachineID, dbError(err))
	}
	return nil
}

// GetHost returns a machine's host record; ErrNotFound when it is no host.
func (s *Store) GetHost(ctx context.Context, machineID string) (Host, error) {
	if !isUUID(machineID) {
		return Host{}, notFound("host", machineID)
	}
	h, err := scanHost(s.pool.QueryRow(ctx, `SELECT `+hostColumns+` FROM hosts WHERE machine_id = $1`, machineID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Host{}, notFound("host", machineID)
	}
	if err != nil {
		return Host{}, fmt.Errorf("get host %s: %w", machineID, dbError(err))
	}
	return h, nil
}

// ListHosts returns every host, oldest conversion first.
func (s *Store) ListHosts(ctx context.Context) ([]Host, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+hostColumns+` FROM hosts ORDER BY converted_at, machine_id`)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", dbError(err))
	}
	defer rows.Close()
	var out []Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, fmt.Errorf("list hosts: %w", dbError(err))
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list hosts: %w", dbError(err))
	}
	return out, nil
}

// SetHostGuests sets a host's guest count. A host being turned back takes
// no guests: a count above zero on it gives ErrConflict.
func (s *Store) SetHostGuests(ctx context.Context, machineID string, guests int) (Host, error) {
	if guests < 0 {
		return Host{}, fmt.Errorf("set host guests: %w", invalidf("guests must be zero or more"))
	}
	h, err := s.GetHost(ctx, machineID)
	if err != nil {
		return Host{}, err
	}
	h, err = scanHost(s.pool.QueryRow(ctx, `UPDATE hosts SET guests = $2 WHERE machine_id = $1 AND (undo_at IS NULL OR $2 = 0)
		RETURNING `+hostColumns, machineID, guests))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, gerr := s.GetHost(ctx, machineID); gerr != nil {
			return Host{}, gerr
		}
		return Host{}, fmt.Errorf("set host guests: host %s is being turned back: %w", machineID, ErrConflict)
	case err != nil:
		return Host{}, fmt.Errorf("set host guests on %s: %w", machineID, dbError(err))
	}
	return h, nil
}

// ClaimHostUndo marks a host as being turned back, in one statement with the
// check that it has no guests: ErrHostHasGuests when it has, ErrNotFound
// when the machine is no host. Claiming again keeps the first claim.
func (s *Store) ClaimHostUndo(ctx context.Context, machineID string) error {
	if !isUUID(machineID) {
		return notFound("host", machineID)
	}
	var guests int
	err := s.pool.QueryRow(ctx, `UPDATE hosts SET undo_at = COALESCE(undo_at, now())
		WHERE machine_id = $1 AND guests = 0 RETURNING guests`, machineID).Scan(&guests)
	if errors.Is(err, pgx.ErrNoRows) {
		h, gerr := s.GetHost(ctx, machineID)
		if gerr != nil {
			return gerr
		}
		return fmt.Errorf("claim host %s: %d guests: %w", machineID, h.Guests, ErrHostHasGuests)
	}
	if err != nil {
		return fmt.Errorf("claim host %s: %w", machineID, dbError(err))
	}
	return nil
}

// ReleaseHostUndo clears a claimed undo, for an undo that never started.
func (s *Store) ReleaseHostUndo(ctx context.Context, machineID string) error {
	if !isUUID(machineID) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE hosts SET undo_at = NULL WHERE machine_id = $1`, machineID); err != nil {
		return fmt.Errorf("release host %s: %w", machineID, dbError(err))
	}
	return nil
}

// RemoveHost drops a machine's host record; a missing one is no error.
func (s *Store) RemoveHost(ctx context.Context, machineID string) error {
	if !isUUID(machineID) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM hosts WHERE machine_id = $1`, machineID); err != nil {
		return fmt.Errorf("remove host %s: %w", machineID, dbError(err))
	}
	return nil
}
