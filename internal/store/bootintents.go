package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// BootPurpose says what a machine's next network boot loads.
type BootPurpose string

// Boot purposes.
const (
	// BootPurposeRamdisk boots bareflow's ramdisk, which phones home.
	BootPurposeRamdisk BootPurpose = "ramdisk"
)

// Validate reports whether p is a known boot purpose.
func (p BootPurpose) Validate() error {
	if p == BootPurposeRamdisk {
		return nil
	}
	return fmt.Errorf("unknown boot purpose %q (want ramdisk)", string(p))
}

// BootIntent says that a workflow waits for a machine to network-boot
// something other than its local disk.
type BootIntent struct {
	MachineID  string
	Purpose    BootPurpose
	WorkflowID string
	ExpiresAt  time.Time
	CreatedAt  time.Time
}

const bootIntentColumns = `machine_id, purpose, workflow_id, expires_at, created_at`

func scanBootIntent(row pgx.Row) (BootIntent, error) {
	var (
		b       BootIntent
		purpose string
	)
	if err := row.Scan(&b.MachineID, &purpose, &b.WorkflowID, &b.ExpiresAt, &b.CreatedAt); err != nil {
		return BootIntent{}, err
	}
	b.Purpose = BootPurpose(purpose)
	return b, nil
}

// SetBootIntent records (or replaces) the boot intent of a machine. It is
// idempotent: setting the same intent twice leaves one, and renewing an
// intent of the same workflow that has not expired keeps its CreatedAt.
// ExpiresAt must be in the future.
func (s *Store) SetBootIntent(ctx context.Context, in BootIntent) (BootIntent, error) {
	if !isUUID(in.MachineID) {
		return BootIntent{}, fmt.Errorf("set boot intent: %w", notFound("machine", in.MachineID))
	}
	if err := in.Purpose.Validate(); err != nil {
		return BootIntent{}, fmt.Errorf("set boot intent: %w: %v", ErrInvalid, err)
	}
	if in.WorkflowID == "" {
		return BootIntent{}, fmt.Errorf("set boot intent: %w", invalidf("a workflow ID is required"))
	}
	if !in.ExpiresAt.After(time.Now()) {
		return BootIntent{}, fmt.Errorf("set boot intent: %w", invalidf("expiry %s is not in the future", in.ExpiresAt.Format(time.RFC3339)))
	}
	b, err := scanBootIntent(s.pool.QueryRow(ctx, `
		INSERT INTO boot_intents (machine_id, purpose, workflow_id, expires_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (machine_id) DO UPDATE SET purpose = excluded.purpose,
			workflow_id = excluded.workflow_id, expires_at = excluded.expires_at,
			created_at = CASE WHEN boot_intents.workflow_id = excluded.workflow_id AND boot_intents.expires_at > now()
				THEN boot_intents.created_at ELSE now() END
		RETURNING `+bootIntentColumns, in.MachineID, string(in.Purpose), in.WorkflowID, in.ExpiresAt))
	if err != nil {
		if hasCode(err, pgForeignKeyViolation) {
			return BootIntent{}, fmt.Errorf("set boot intent: %w", notFound("machine", in.MachineID))
		}
		return BootIntent{}, fmt.Errorf("set boot intent for %s: %w", in.MachineID, dbError(err))
	}
	return b, nil
}

// GetBootIntent returns the pending boot intent of a machine. An expired
// intent is as good as none: ErrNotFound.
func (s *Store) GetBootIntent(ctx context.Context, machineID string) (BootIntent, error) {
	if !isUUID(machineID) {
		return BootIntent{}, fmt.Errorf("get boot intent: %w", notFound("boot intent", machineID))
	}
	b, err := scanBootIntent(s.pool.QueryRow(ctx,
		`SELECT `+bootIntentColumns+` FROM boot_intents WHERE machine_id = $1 AND expires_at > now()`, machineID))
	if errors.Is(err, pgx.ErrNoRows) {
		return BootIntent{}, fmt.Errorf("get boot intent: %w", notFound("boot intent", machineID))
	}
	if err != nil {
		return BootIntent{}, fmt.Errorf("get boot intent for %s: %w", machineID, err)
	}
	return b, nil
}

// ClearBootIntent removes the boot intent of a machine, and its unused
// phone-home tokens. Clearing a machine with none does nothing.
func (s *Store) ClearBootIntent(ctx context.Context, machineID string) error {
	if !isUUID(machineID) {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM boot_intents WHERE machine_id = $1`, machineID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM boot_tokens WHERE machine_id = $1 AND used_at IS NULL`, machineID)
		return err
	})
	if err != nil {
		return fmt.Errorf("clear boot intent for %s: %w", machineID, err)
	}
	return nil
}

// BootTokenPrefix starts every phone-home token.
const BootTokenPrefix = "bfb_"

// bootTokenLen is the length of a phone-home token: the prefix and 32 random
// bytes in unpadded base32.
var bootTokenLen = len(BootTokenPrefix) + tokenEncoding.EncodedLen(32)

// BootToken is the record of a phone-home token. The token itself is never
// stored.
type BootToken struct {
	MachineID  string
	WorkflowID string
	ExpiresAt  time.Time
	UsedAt     time.Time
}

// BootTokenReason says why a phone-home token was refused.
type BootTokenReason string

// Reasons for refusing a phone-home token.
const (
	BootTokenUnknown      BootTokenReason = "unknown"
	BootTokenUsed         BootTokenReason = "replayed"
	BootTokenExpired      BootTokenReason = "expired"
	BootTokenWrongMachine BootTokenReason = "wrong_machine"
)

// BootTokenError is a refused phone-home token. It matches ErrNotFound.
type BootTokenError struct {
	Reason BootTokenReason
}

// Error implements error.
func (e *BootTokenError) Error() string { return "phone-home token refused: " + string(e.Reason) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *BootTokenError) Is(target error) bool { return target == ErrNotFound }

// CreateBootToken mints a single-use phone-home token for a machine, valid
// for ttl, and returns it in plain text. Only its SHA-256 is stored. Unused
// tokens the machine had before are deleted: only the newest script's token
// works.
func (s *Store) CreateBootToken(ctx context.Context, machineID, workflowID string, ttl time.Duration) (string, BootToken, error) {
	if !isUUID(machineID) {
		return "", BootToken{}, fmt.Errorf("create boot token: %w", notFound("machine", machineID))
	}
	if ttl <= 0 {
		return "", BootToken{}, fmt.Errorf("create boot token: %w", invalidf("lifetime must be positive"))
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", BootToken{}, fmt.Errorf("create boot token: %w", err)
	}
	plaintext := BootTokenPrefix + tokenEncoding.EncodeToString(raw)
	hash := sha256.Sum256([]byte(plaintext))
	var t BootToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM boot_tokens WHERE machine_id = $1 AND (used_at IS NULL OR expires_at < now())`, machineID); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			INSERT INTO boot_tokens (token_hash, machine_id, workflow_id, expires_at)
			VALUES ($1, $2, $3, now() + make_interval(secs => $4))
			RETURNING machine_id, workflow_id, expires_at`, hash[:], machineID, workflowID, ttl.Seconds()).
			Scan(&t.MachineID, &t.WorkflowID, &t.ExpiresAt)
	})
	if err != nil {
		if hasCode(err, pgForeignKeyViolation) {
			return "", BootToken{}, fmt.Errorf("create boot token: %w", notFound("machine", machineID))
		}
		return "", BootToken{}, fmt.Errorf("create boot token for %s: %w", machineID, err)
	}
	return plaintext, t, nil
}

// ConsumeBootToken checks a phone-home token presented for a machine and,
// when it is valid, runs fn with its record in the transaction that marks it
// used. When fn fails the token stays unused, so the ramdisk can try again.
// A refused token gives a *BootTokenError that says why; nothing changes.
func (s *Store) ConsumeBootToken(ctx context.Context, plaintext, machineID string, fn func(BootToken) error) (BootToken, error) {
	if len(plaintext) != bootTokenLen || !strings.HasPrefix(plaintext, BootTokenPrefix) {
		return BootToken{}, &BootTokenError{Reason: BootTokenUnknown}
	}
	hash := sha256.Sum256([]byte(plaintext))
	var t BootToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var used *time.Time
		err := tx.QueryRow(ctx, `SELECT machine_id, workflow_id, expires_at, used_at FROM boot_tokens
			WHERE token_hash = $1 FOR UPDATE`, hash[:]).Scan(&t.MachineID, &t.WorkflowID, &t.ExpiresAt, &used)
		if errors.Is(err, pgx.ErrNoRows) {
			return &BootTokenError{Reason: BootTokenUnknown}
		}
		if err != nil {
			return err
		}
		switch {
		case used != nil:
			return &BootTokenError{Reason: BootTokenUsed}
		case t.MachineID != machineID:
			return &BootTokenError{Reason: BootTokenWrongMachine}
		case !t.ExpiresAt.After(time.Now()):
			return &BootTokenError{Reason: BootTokenExpired}
		}
		if err := tx.QueryRow(ctx, `UPDATE boot_tokens SET used_at = now() WHERE token_hash = $1 RETURNING used_at`,
			hash[:]).Scan(&t.UsedAt); err != nil {
			return err
		}
		return fn(t)
	})
	if err != nil {
		var te *BootTokenError
		if errors.As(err, &te) {
			return BootToken{}, te
		}
		return BootToken{}, fmt.Errorf("consume boot token: %w", err)
	}
	return t, nil
}
