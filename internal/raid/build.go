package raid

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"bareflow/contract"
)

// Checks of the words that go into a command line. Every part of an argv
// that comes from a spec or an inventory passes one of these first.

// digits reports whether s is 1 to n decimal digits.
func digits(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// alnum reports whether s is 1 to n ASCII letters and digits.
func alnum(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// blockName reports whether s is a kernel block device name: a lower-case
// letter, then lower-case letters and digits (sda, nvme0n1, vdb, loop7,
// sda1, nvme0n1p2).
func blockName(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// volumeName reports whether s is a volume name Plan made: a spec's name
// and a split's "-N".
func volumeName(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// checkedTool returns tool when it is one of d's programs.
func checkedTool(d Driver, tool string) (string, error) {
	if slices.Contains(d.Tools(), tool) {
		return tool, nil
	}
	return "", fmt.Errorf("tool %q is not one of %s", tool, strings.Join(d.Tools(), ", "))
}

// badWord is the error of a word that failed its check.
func badWord(what, s string) error {
	return specErr(-1, "%s %q from the inventory cannot go on a command line", what, clean(s))
}

// mibString is n bytes as whole MiB.
func mibString(n int64) string {
	return strconv.FormatInt(n/mebibyte, 10)
}

// volumeSizes are the sizes of an array's volumes in bytes, the rest
// worked out from the array's capacity. ok is false when the rest is
// nothing.
func volumeSizes(a ArrayLayout) (sizes []int64, ok bool) {
	var sum int64
	for _, v := range a.Volumes {
		sum += v.SizeBytes
	}
	for _, v := range a.Volumes {
		s := v.SizeBytes
		if s == 0 {
			s = (a.UsableBytes - sum) / mebibyte * mebibyte
			if s <= 0 {
				return nil, false
			}
		}
		sizes = append(sizes, s)
	}
	return sizes, true
}

// raidArrays returns the indexes of the controller's arrays that are not
// pass-through.
func raidArrays(c *ControllerLayout) []int {
	var out []int
	for i, a := range c.Arrays {
		if a.Level != contract.RAIDJBOD {
			out = append(out, i)
		}
	}
	return out
}

// volumeRefs lists the volumes of array i.
func volumeRefs(c *ControllerLayout, i int, from, to int) []VolumeRef {
	var out []VolumeRef
	for k := from; k < to; k++ {
		out = append(out, VolumeRef{Array: i, Volume: k})
	}
	return out
}

// hasState reports whether a lower-cased tool state contains one of words.
func hasState(state string, words ...string) bool {
	s := strings.ToLower(state)
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// usableDisk reports whether a disk of the inventory may be touched by a
// clear or a pass-through step.
func usableDisk(state string) bool {
	_, bad := badState(state)
	return !bad
}

// mebibyte is 1 MiB, the unit of the sizes Plan writes.
const mebibyte = 1 << 20
