package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Token format: TokenPrefix and 32 random bytes in lower-case base32 without
// padding.
const (
	// TokenPrefix starts every API token, so that a leaked one is easy to
	// recognise.
	TokenPrefix = "bft_"
	tokenBytes  = 32
	// tokenDisplayLen is how much of a token its Prefix keeps.
	tokenDisplayLen = len(TokenPrefix) + 8
	// lastUsedGranularity bounds how often AuthenticateToken writes
	// last_used_at.
	lastUsedGranularity = time.Minute
)

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// tokenLen is the length of a whole token.
var tokenLen = len(TokenPrefix) + tokenEncoding.EncodedLen(tokenBytes)

// Token is an API token's record. The token itself is shown once, by
// CreateToken, and never stored.
type Token struct {
	ID   string
	Name string
	// Prefix is the start of the token, to tell tokens apart in listings.
	Prefix    string
	CreatedAt time.Time
	// LastUsedAt is zero when the token was never used. It is updated at
	// most once a minute.
	LastUsedAt time.Time
	// RevokedAt is zero while the token is valid.
	RevokedAt time.Time
}

const tokenColumns = `id, name, prefix, created_at, last_used_at, revoked_at`

func scanToken(row pgx.Row) (Token, error) {
	var (
		t             Token
		used, revoked *time.Time
	)
	if err := row.Scan(&t.ID, &t.Name, &t.Prefix, &t.CreatedAt, &used, &revoked); err != nil {
		return Token{}, err
	}
	if used != nil {
		t.LastUsedAt = *used
	}
	if revoked != nil {
		t.RevokedAt = *revoked
	}
	return t, nil
}

func hashToken(plaintext string) []byte {
	h := sha256.Sum256([]byte(plaintext))
	return h[:]
}

// CreateToken makes a new API token named name and returns it in plain
// text, once, with its record. Only its SHA-256 hash is stored. Names are
// unique among tokens that are not revoked.
func (s *Store) CreateToken(ctx context.Context, name string) (string, Token, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", Token{}, fmt.Errorf("create token: %w", invalidf("token name must be 1 to 100 bytes"))
	}
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	plaintext := TokenPrefix + tokenEncoding.EncodeToString(raw)
	t, err := scanToken(s.pool.QueryRow(ctx, `
		INSERT INTO api_tokens (name, token_hash, prefix) VALUES ($1, $2, $3)
		RETURNING `+tokenColumns, name, hashToken(plaintext), plaintext[:tokenDisplayLen]))
	if err != nil {
		return "", Token{}, fmt.Errorf("create token %q: %w", name, dbError(err))
	}
	s.logger.Info("created API token", "token_id", t.ID, "name", t.Name)
	return plaintext, t, nil
}

// AuthenticateToken returns the record of a valid token. An unknown or
// revoked token gives ErrNotFound. The lookup is by the token's SHA-256
// hash, so no comparison ever runs on the secret itself and its timing says
// nothing about it.
func (s *Store) AuthenticateToken(ctx context.Context, plaintext string) (Token, error) {
	if len(plaintext) != tokenLen || !strings.HasPrefix(plaintext, TokenPrefix) {
		return Token{}, fmt.Errorf("authenticate token: %w", ErrNotFound)
	}
	hash := hashToken(plaintext)
	t, err := scanToken(s.pool.QueryRow(ctx,
		`SELECT `+tokenColumns+` FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, fmt.Errorf("authenticate token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("authenticate token: %w", err)
	}
	if t.LastUsedAt.IsZero() || time.Since(t.LastUsedAt) >= lastUsedGranularity {
		var used time.Time
		err := s.pool.QueryRow(ctx, `
			UPDATE api_tokens SET last_used_at = now()
			WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))
			RETURNING last_used_at`, t.ID, lastUsedGranularity.Seconds()).Scan(&used)
		switch {
		case err == nil:
			t.LastUsedAt = used
		case errors.Is(err, pgx.ErrNoRows):
			// Another request recorded the use first.
		default:
			// The token is valid; a failed bookkeeping write must not lock
			// the caller out.
			s.logger.Warn("record token use", "token_id", t.ID, "error", err)
		}
	}
	return t, nil
}

// ListTokens returns every token record, revoked ones included, oldest
// first.
func (s *Store) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) { return scanToken(r) })
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}

// RevokeToken revokes a token. Revoking a revoked token does nothing.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	if !isUUID(id) {
		return fmt.Errorf("revoke token: %w", notFound("token", id))
	}
	tag, err := s.pool.Exec(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke token: %w", notFound("token", id))
	}
	s.logger.Info("revoked API token", "token_id", id)
	return nil
}

// CountTokens returns how many tokens are valid (not revoked). bareflow
// creates a first token when there is none.
func (s *Store) CountTokens(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}
