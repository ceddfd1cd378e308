package bmcsetup

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"

	"bareflow/internal/secret"
)

// Character classes of generated passwords. Every class is plain ASCII that
// needs no quoting in ipmitool's arguments.
const (
	upperChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lowerChars = "abcdefghijklmnopqrstuvwxyz"
	digitChars = "0123456789"
)

// generateTries bounds the draws GeneratePassword makes before it gives up.
// A draw of 16 characters fails the rules about one time in three, so the
// bound is never reached in practice.
const generateTries = 1000

// GeneratePassword returns a random password that p's BMCs take: p's
// PasswordLength characters from crypto/rand, drawn uniformly from upper and
// lower case letters, digits and p's special characters, with at least one
// of each class, a letter or digit first (ipmitool would take a leading "-"
// for an option) and no character twice in a row.
func GeneratePassword(p Profile) (secret.String, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	alphabet := upperChars + lowerChars + digitChars + p.PasswordSpecials
	size := big.NewInt(int64(len(alphabet)))
	buf := make([]byte, p.PasswordLength)
	for range generateTries {
		for i := range buf {
			n, err := rand.Int(rand.Reader, size)
			if err != nil {
				return "", fmt.Errorf("generate password: %w", err)
			}
			buf[i] = alphabet[n.Int64()]
		}
		pw := string(buf)
		if checkPassword(p, pw, true) == nil {
			return secret.String(pw), nil
		}
	}
	return "", fmt.Errorf("generate password: no draw met profile %s's rules in %d tries", p.Name, generateTries)
}

// checkPassword reports whether pw follows p's rules. With allClasses, or when
// p.PasswordComplex is set, pw needs every character class. The error never
// contains the password.
func checkPassword(p Profile, pw string, allClasses bool) error {
	if len(pw) < p.PasswordMinLen || len(pw) > p.PasswordMaxLen {
		return fmt.Errorf("password has %d characters, profile %s wants %d to %d", len(pw), p.Name, p.PasswordMinLen, p.PasswordMaxLen)
	}
	if !isAlnum(pw[0]) {
		return fmt.Errorf("password must start with a letter or digit")
	}
	var upper, lower, digit, special bool
	for i := 0; i < len(pw); i++ {
		c := pw[i]
		switch {
		case strings.IndexByte(upperChars, c) >= 0:
			upper = true
		case strings.IndexByte(lowerChars, c) >= 0:
			lower = true
		case strings.IndexByte(digitChars, c) >= 0:
			digit = true
		case strings.IndexByte(p.PasswordSpecials, c) >= 0:
			special = true
		default:
			return fmt.Errorf("password character %d is not a letter, digit or one of %q", i+1, p.PasswordSpecials)
		}
		if i > 0 && pw[i-1] == c {
			return fmt.Errorf("password repeats character %d", i+1)
		}
	}
	if (allClasses || p.PasswordComplex) && !(upper && lower && digit && special) {
		return fmt.Errorf("password needs upper and lower case letters, a digit and one of %q", p.PasswordSpecials)
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
