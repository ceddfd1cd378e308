package fakeramdisk

import (
	"fmt"
	"strings"

	"bareflow/internal/ramdisk"
)

// CannedOutput returns a tool script body that prints text exactly, on
// standard output, whatever its arguments, and exits 0. text must not hold
// NUL bytes.
func CannedOutput(text string) string {
	return "printf '%s' " + ramdisk.Quote(text) + "\n"
}

// Answer is one canned answer of a stand-in program.
type Answer struct {
	// Args is a pattern matched against the program's arguments joined by
	// single spaces: "*" matches any text, "?" any one character, every
	// other character itself. "-t 1" matches `dmidecode -t 1`; "*" matches
	// anything, no arguments too.
	Args string
	// Stdout and Stderr are printed exactly.
	Stdout, Stderr string
	// Exit is the exit status.
	Exit int
}

// CannedByArgs returns a tool script body that gives the first answer
// whose Args match its arguments. Arguments that no answer matches make it
// print "fakeramdisk: no canned answer for: <program> <arguments>" on
// standard error and exit 2, so that a test notices a command it did not
// expect.
func CannedByArgs(answers ...Answer) string {
	var b strings.Builder
	b.WriteString("case \"$*\" in\n")
	for _, a := range answers {
		fmt.Fprintf(&b, "%s)\n", casePattern(a.Args))
		if a.Stdout != "" {
			fmt.Fprintf(&b, "\tprintf '%%s' %s\n", ramdisk.Quote(a.Stdout))
		}
		if a.Stderr != "" {
			fmt.Fprintf(&b, "\tprintf '%%s' %s >&2\n", ramdisk.Quote(a.Stderr))
		}
		fmt.Fprintf(&b, "\texit %d\n\t;;\n", a.Exit)
	}
	b.WriteString("esac\nprintf 'fakeramdisk: no canned answer for: %s %s\\n' \"${0##*/}\" \"$*\" >&2\nexit 2\n")
	return b.String()
}

// casePattern turns an Answer's Args into a pattern of the shell's case:
// "*" and "?" stay wildcards, everything else is quoted.
func casePattern(args string) string {
	if args == "" {
		return "''"
	}
	var b, literal strings.Builder
	flush := func() {
		if literal.Len() > 0 {
			b.WriteString(ramdisk.Quote(literal.String()))
			literal.Reset()
		}
	}
	for _, r := range args {
		if r == '*' || r == '?' {
			flush()
			b.WriteRune(r)
			continue
		}
		literal.WriteRune(r)
	}
	flush()
	return b.String()
}
