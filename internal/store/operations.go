package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"bareflow/contract"
)

// Operation is the record of one workflow run on a machine (or on the
// fleet): what it does, where it stands and how it ended.
type Operation struct {
	ID string
	// MachineID is empty for fleet operations and once the machine is
	// deleted; MachineName keeps its name.
	MachineID   string
	MachineName string
	Kind        contract.OperationKind
	WorkflowID  string
	RunID       string
	State       contract.OperationState
	Step        string
	// Progress is the share done, from 0 to 1.
	Progress    float64
	ErrorCode   string
	Error       string
	RequestedBy string
	StartedAt   time.Time
	UpdatedAt   time.Time
	// FinishedAt is zero until the state is final.
	FinishedAt time.Time
}

// OperationUpdate changes some fields of an operation: a nil field is left
// alone.
type OperationUpdate struct {
	State     *contract.OperationState
	Step      *string
	Progress  *float64
	ErrorCode *string
	Error     *string
}

// OperationFilter selects operations for ListOperations. Zero fields select
// all.
type OperationFilter struct {
	MachineID string
	State     contract.OperationState
	// Limit is the page size: DefaultLimit when zero, at most MaxLimit.
	Limit int
	// After is the cursor ListOperations returned for the previous page.
	After string
}

const operationColumns = `id, coalesce(machine_id::text, ''), machine_name, kind, workflow_id, run_id,
	state, step, progress, error_code, error, requested_by, started_at, updated_at, finished_at`

func scanOperation(row pgx.Row) (Operation, error) {
	var (
		op          Operation
		kind, state string
		finished    *time.Time
	)
	err := row.Scan(&op.ID, &op.MachineID, &op.MachineName, &kind, &op.WorkflowID, &op.RunID,
		&state, &op.Step, &op.Progress, &op.ErrorCode, &op.Error, &op.RequestedBy,
		&op.StartedAt, &op.UpdatedAt, &finished)
	if err != nil {
		return Operation{}, err
	}
	op.Kind = contract.OperationKind(kind)
	op.State = contract.OperationState(state)
	if finished != nil {
		op.FinishedAt = *finished
	}
	return op, nil
}

func validOperationState(s contract.OperationState) error {
	switch s {
	case contract.OperationPending, contract.OperationRunning,
		contract.OperationSucceeded, contract.OperationFailed, contract.OperationCanceled:
		return nil
	}
	return invalidf("unknown operation state %q", string(s))
}

func validProgress(p float64) error {
	if math.IsNaN(p) || p < 0 || p > 1 {
		return invalidf("progress %v must be between 0 and 1", p)
	}
	return nil
}

// SQL fragments for operation states.
const (
	sqlFinalStates = `('succeeded', 'failed', 'canceled')`
	// sqlIncomingWins is true when the incoming row of an upsert is at least
	// as far along as the stored one and the stored one is not final:
	// pending < running < final.
	sqlIncomingWins = `(o.state NOT IN ` + sqlFinalStates + ` AND
		(CASE EXCLUDED.state WHEN 'pending' THEN 0 WHEN 'running' THEN 1 ELSE 2 END) >=
		(CASE o.state WHEN 'pending' THEN 0 WHEN 'running' THEN 1 ELSE 2 END))`
	sqlMergedState = `(CASE WHEN ` + sqlIncomingWins + ` THEN EXCLUDED.state ELSE o.state END)`
)

// preferIncoming keeps the incoming value of col when it is not empty and the
// incoming row wins, else the stored value when it is not empty.
func preferIncoming(col string) string {
	return fmt.Sprintf(`%[1]s = CASE WHEN %[2]s AND EXCLUDED.%[1]s <> '' THEN EXCLUDED.%[1]s
		ELSE coalesce(nullif(o.%[1]s, ''), EXCLUDED.%[1]s) END`, col, sqlIncomingWins)
}

// nonEmpty keeps the incoming value of col unless it is empty.
func nonEmpty(col string) string {
	return fmt.Sprintf(`%[1]s = coalesce(nullif(EXCLUDED.%[1]s, ''), o.%[1]s)`, col)
}

var upsertOperationSQL = `
	INSERT INTO operations AS o (id, machine_id, machine_name, kind, workflow_id, run_id, state,
		step, progress, error_code, error, requested_by, started_at, finished_at)
	VALUES ($1, $2, coalesce(nullif($3, ''), (SELECT name FROM machines WHERE id = $2), ''),
		$4, $5, $6, $7, $8, $9, $10, $11, $12, coalesce($13, now()),
		CASE WHEN $7 IN ` + sqlFinalStates + ` THEN coalesce($14, now()) END)
	ON CONFLICT (id) DO UPDATE SET
		machine_id = coalesce(EXCLUDED.machine_id, o.machine_id),
		` + strings.Join([]string{
	nonEmpty("machine_name"), nonEmpty("kind"), nonEmpty("workflow_id"), nonEmpty("run_id"),
	nonEmpty("requested_by"), preferIncoming("step"), preferIncoming("error_code"), preferIncoming("error"),
}, ",\n\t\t") + `,
		state = ` + sqlMergedState + `,
		progress = CASE WHEN o.state IN ` + sqlFinalStates + ` THEN o.progress
			ELSE greatest(o.progress, EXCLUDED.progress) END,
		started_at = least(o.started_at, $13),
		updated_at = now(),
		finished_at = CASE WHEN ` + sqlMergedState + ` IN ` + sqlFinalStates + `
			THEN coalesce(o.finished_at, EXCLUDED.finished_at, now()) END`

// UpsertOperation records op, inserting it or merging it into the stored
// record with the same ID. Two writers can call it in either order, the API
// right after it starts a workflow and the workflow's first activity, and
// neither loses what the other wrote:
//
//   - an empty field never overwrites a non-empty one;
//   - the state only moves forward (pending, running, then a final state)
//     and never leaves a final state;
//   - step and error come from the record that is further along;
//   - progress never decreases, StartedAt keeps the earliest time, and
//     FinishedAt is set when the state becomes final.
//
// ID must be a UUID and Kind is required. An empty State means pending; a
// zero StartedAt means now.
func (s *Store) UpsertOperation(ctx context.Context, op Operation) error {
	wrap := func(err error) error { return fmt.Errorf("upsert operation %s: %w", op.ID, err) }
	if op.State == "" {
		op.State = contract.OperationPending
	}
	if !isUUID(op.ID) {
		return wrap(invalidf("operation ID %q must be a UUID", op.ID))
	}
	if op.MachineID != "" && !isUUID(op.MachineID) {
		return wrap(notFound("machine", op.MachineID))
	}
	if op.Kind == "" {
		return wrap(invalidf("operation kind is required"))
	}
	if err := errors.Join(validOperationState(op.State), validProgress(op.Progress)); err != nil {
		return wrap(err)
	}
	var machineID, startedAt, finishedAt any
	if op.MachineID != "" {
		machineID = op.MachineID
	}
	if !op.StartedAt.IsZero() {
		startedAt = op.StartedAt
	}
	if !op.FinishedAt.IsZero() {
		finishedAt = op.FinishedAt
	}
	_, err := s.pool.Exec(ctx, upsertOperationSQL,
		op.ID, machineID, op.MachineName, string(op.Kind), op.WorkflowID, op.RunID, string(op.State),
		truncate(op.Step), op.Progress, truncate(op.ErrorCode), truncate(op.Error), op.RequestedBy,
		startedAt, finishedAt)
	if err != nil {
		if isForeignKeyViolation(err) {
			return wrap(notFound("machine", op.MachineID))
		}
		return wrap(dbError(err))
	}
	return nil
}

func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgForeignKeyViolation
}

// UpdateOperation changes the fields of u that are set. When the state
// becomes final, FinishedAt is set (and progress becomes 1 on success). An
// operation in a final state never changes again: UpdateOperation on it
// returns nil and leaves it as it is, so a retried activity cannot move it
// back to running.
func (s *Store) UpdateOperation(ctx context.Context, id string, u OperationUpdate) error {
	wrap := func(err error) error { return fmt.Errorf("update operation %s: %w", id, err) }
	if !isUUID(id) {
		return wrap(notFound("operation", id))
	}
	var state *string
	if u.State != nil {
		if err := validOperationState(*u.State); err != nil {
			return wrap(err)
		}
		st := string(*u.State)
		state = &st
	}
	if u.Progress != nil {
		if err := validProgress(*u.Progress); err != nil {
			return wrap(err)
		}
	}
	tr := func(p *string) *string {
		if p == nil {
			return nil
		}
		t := truncate(*p)
		return &t
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE operations SET
			state = coalesce($2, state),
			step = coalesce($3, step),
			progress = CASE WHEN coalesce($2, state) = 'succeeded' THEN 1 ELSE coalesce($4, progress) END,
			error_code = coalesce($5, error_code),
			error = coalesce($6, error),
			finished_at = CASE WHEN coalesce($2, state) IN `+sqlFinalStates+` THEN now() END,
			updated_at = now()
		WHERE id = $1 AND state NOT IN `+sqlFinalStates,
		id, state, tr(u.Step), u.Progress, tr(u.ErrorCode), tr(u.Error))
	if err != nil {
		return wrap(dbError(err))
	}
	if tag.RowsAffected() == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM operations WHERE id = $1)`, id).Scan(&exists); err != nil {
			return wrap(err)
		}
		if !exists {
			return wrap(notFound("operation", id))
		}
		s.logger.Debug("operation already final, update ignored", "operation_id", id)
	}
	return nil
}

// GetOperation returns the operation with the given ID.
func (s *Store) GetOperation(ctx context.Context, id string) (Operation, error) {
	if !isUUID(id) {
		return Operation{}, fmt.Errorf("get operation: %w", notFound("operation", id))
	}
	op, err := scanOperation(s.pool.QueryRow(ctx, `SELECT `+operationColumns+` FROM operations WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Operation{}, fmt.Errorf("get operation: %w", notFound("operation", id))
	}
	if err != nil {
		return Operation{}, fmt.Errorf("get operation %s: %w", id, err)
	}
	return op, nil
}

// ListOperations returns a page of operations, newest first, and the cursor
// of the next page ("" on the last page).
func (s *Store) ListOperations(ctx context.Context, f OperationFilter) ([]Operation, string, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.MachineID != "" {
		if !isUUID(f.MachineID) {
			return nil, "", nil
		}
		where = append(where, "machine_id = "+arg(f.MachineID))
	}
	if f.State != "" {
		if err := validOperationState(f.State); err != nil {
			return nil, "", fmt.Errorf("list operations: %w", err)
		}
		where = append(where, "state = "+arg(string(f.State)))
	}
	if f.After != "" {
		parts, err := decodeCursor(f.After, 2)
		if err != nil {
			return nil, "", fmt.Errorf("list operations: %w", err)
		}
		at, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil || !isUUID(parts[1]) {
			return nil, "", fmt.Errorf("list operations: %w", invalidf("malformed cursor"))
		}
		where = append(where, fmt.Sprintf("(started_at, id) < (%s, %s)", arg(at), arg(parts[1])))
	}
	n := limit(f.Limit)
	q := `SELECT ` + operationColumns + ` FROM operations`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY started_at DESC, id DESC LIMIT ` + arg(n+1)

	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list operations: %w", err)
	}
	ops, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Operation, error) { return scanOperation(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list operations: %w", err)
	}
	next := ""
	if len(ops) > n {
		ops = ops[:n]
		last := ops[n-1]
		next = encodeCursor(last.StartedAt.UTC().Format(time.RFC3339Nano), last.ID)
	}
	return ops, next, nil
}

// ActiveOperation returns the newest operation of a machine that is not
// final, or ErrNotFound when there is none.
func (s *Store) ActiveOperation(ctx context.Context, machineID string) (Operation, error) {
	if !isUUID(machineID) {
		return Operation{}, fmt.Errorf("active operation: %w", notFound("machine", machineID))
	}
	op, err := scanOperation(s.pool.QueryRow(ctx, `
		SELECT `+operationColumns+` FROM operations
		WHERE machine_id = $1 AND state NOT IN `+sqlFinalStates+`
		ORDER BY started_at DESC, id DESC LIMIT 1`, machineID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Operation{}, fmt.Errorf("active operation of machine %s: %w", machineID, ErrNotFound)
	}
	if err != nil {
		return Operation{}, fmt.Errorf("active operation of machine %s: %w", machineID, err)
	}
	return op, nil
}
