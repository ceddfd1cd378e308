package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditEntry is one line of the audit trail: who did what to which record.
type AuditEntry struct {
	// ID orders entries; AddAudit assigns it.
	ID int64
	// At is when it happened; AddAudit uses now when zero.
	At time.Time
	// Actor is the name of the API token, or a bareflow component.
	Actor string
	// Action names what was done, such as "machine.create" or "power.cycle".
	Action     string
	TargetKind string
	TargetID   string
	// OperationID links the operation an action started, when any.
	OperationID string
	RemoteAddr  string
	// Details holds extra facts; it must encode as a JSON object and must
	// never hold a secret.
	Details map[string]any
}

// AuditFilter selects entries for ListAudit.
type AuditFilter struct {
	// TargetID, when set, keeps the entries about one record.
	TargetID string
	// Limit is the page size: DefaultLimit when zero, at most MaxLimit.
	Limit int
	// Before, when not zero, keeps entries whose ID is below it: pass the
	// ID of the last entry of a page to get the next one.
	Before int64
}

// AddAudit appends an entry to the audit trail.
func (s *Store) AddAudit(ctx context.Context, e AuditEntry) error {
	if e.Action == "" {
		return fmt.Errorf("add audit entry: %w", invalidf("action is required"))
	}
	var at, opID any
	if !e.At.IsZero() {
		at = e.At
	}
	if e.OperationID != "" {
		if !isUUID(e.OperationID) {
			return fmt.Errorf("add audit entry: %w", invalidf("operation ID %q must be a UUID", e.OperationID))
		}
		opID = e.OperationID
	}
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO audit_log (at, actor, action, target_kind, target_id, operation_id, remote_addr, details)
		VALUES (coalesce($1, now()), $2, $3, $4, $5, $6, $7, $8)`,
		at, e.Actor, e.Action, e.TargetKind, e.TargetID, opID, e.RemoteAddr, details)
	if err != nil {
		return fmt.Errorf("add audit entry %s: %w", e.Action, dbError(err))
	}
	return nil
}

// ListAudit returns audit entries, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	q := `SELECT id, at, actor, action, target_kind, target_id, coalesce(operation_id::text, ''), remote_addr, details
		FROM audit_log WHERE true`
	var args []any
	if f.TargetID != "" {
		args = append(args, f.TargetID)
		q += fmt.Sprintf(" AND target_id = $%d", len(args))
	}
	if f.Before > 0 {
		args = append(args, f.Before)
		q += fmt.Sprintf(" AND id < $%d", len(args))
	}
	args = append(args, limit(f.Limit))
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.TargetKind, &e.TargetID, &e.OperationID, &e.RemoteAddr, &e.Details)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return es, nil
}
