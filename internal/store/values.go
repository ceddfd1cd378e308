package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// List limits.
const (
	// DefaultLimit is how many records a listing returns when the filter
	// does not say.
	DefaultLimit = 100
	// MaxLimit is the most records one listing returns.
	MaxLimit = 1000
)

// limit returns n bounded to 1..MaxLimit, DefaultLimit when n is zero or
// negative.
func limit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// newID returns a random (version 4) UUID.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

var uuidForm = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// isUUID reports whether s is a UUID in its usual text form. An ID that is
// not one cannot name any record.
func isUUID(s string) bool { return uuidForm.MatchString(s) }

// notFound returns an error wrapping ErrNotFound for the record kind and id.
func notFound(kind, id string) error {
	return fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidName reports whether name can name a machine or a network: a DNS
// label of 1 to 63 lower-case letters, digits and hyphens that neither starts
// nor ends with a hyphen.
func ValidName(name string) error {
	if !dnsLabel.MatchString(name) {
		return invalidf("name %q must be 1 to 63 lower-case letters, digits or hyphens, not starting or ending with a hyphen", name)
	}
	return nil
}

// maxTextLen bounds free-text fields that come from hardware or errors.
const maxTextLen = 4096

// truncate cuts s to at most maxTextLen bytes, on a rune boundary.
func truncate(s string) string {
	if len(s) <= maxTextLen {
		return s
	}
	cut := maxTextLen
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut]
}

// encodeCursor makes an opaque listing cursor from the sort key of the last
// record of a page.
func encodeCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

// decodeCursor reads a cursor made by encodeCursor with n parts.
func decodeCursor(cursor string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, invalidf("malformed cursor")
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != n {
		return nil, invalidf("malformed cursor")
	}
	return parts, nil
}
