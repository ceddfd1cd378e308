package ramdisk

import "strings"

// Quote returns s as one word for a POSIX shell: unchanged when it consists
// only of characters no shell treats specially, otherwise in single quotes,
// each single quote inside it written as quote, backslash, quote, quote.
// Every value interpolated into a command line must go through Quote.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isShellSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isShellSafe reports whether every byte of s is one that a shell passes
// through literally in any position of a word.
func isShellSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("_-./:@%+,", c) >= 0:
		default:
			return false
		}
	}
	return true
}
