#!/usr/bin/env bash
# fuzz.sh — runs every Fuzz* target briefly, one at a time.
#
# go test -fuzz takes one package and one target per run, so the targets are
# discovered with `go test -list` in each package whose test files declare a
# fuzz function, then run for FUZZTIME each. New crashers are written under
# the package's testdata/fuzz/, as go test does; commit them as regression
# inputs once fixed.
#
# Usage: FUZZTIME=10s scripts/fuzz.sh [package pattern …]   (default ./...)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime=${FUZZTIME:-10s}
patterns=("$@")
if [ ${#patterns[@]} -eq 0 ]; then
	patterns=(./...)
fi

# Packages whose test files mention a fuzz function: a cheap filter, so that
# only they pay for compiling a test binary to list targets.
candidates=()
while read -r pkg dir rest; do
	read -r -a files <<<"$rest"
	[ ${#files[@]} -gt 0 ] || continue
	if (cd "$dir" && grep -qE '^func Fuzz[^a-z]' "${files[@]}"); then
		candidates+=("$pkg")
	fi
done < <(go list -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' "${patterns[@]}")

# fuzz_one runs one target. Go's fuzzer sometimes ends a timed run with
# "context deadline exceeded" and no failing input when a worker does not
# answer at the deadline (a loaded machine); that run is tried once more,
# and counts as a failure only when it happens again or an input failed.
fuzz_one() {
	local out
	out=$(mktemp)
	for try in 1 2; do
		if go test -run '^$' -fuzz "^${2}\$" -fuzztime "$fuzztime" "$1" 2>&1 | tee "$out"; then
			rm -f "$out"
			return 0
		fi
		if grep -q 'Failing input written' "$out" || ! grep -q 'context deadline exceeded' "$out" || [ "$try" -eq 2 ]; then
			rm -f "$out"
			return 1
		fi
		echo "== fuzz $1 $2: the fuzzer missed its deadline without a failing input; once more"
	done
}

ran=0
failed=()
for pkg in "${candidates[@]}"; do
	targets=$(go test -run '^$' -list '^Fuzz' "$pkg" | grep -E '^Fuzz' || true)
	for target in $targets; do
		echo "== fuzz $pkg $target for $fuzztime"
		if ! fuzz_one "$pkg" "$target"; then
			failed+=("$pkg $target")
		fi
		ran=$((ran + 1))
	done
done

if [ "$ran" -eq 0 ]; then
	echo "fuzz: no Fuzz* targets in ${patterns[*]}"
	exit 0
fi
if [ ${#failed[@]} -ne 0 ]; then
	echo "fuzz: ${#failed[@]} of $ran targets failed:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: $ran targets ran for $fuzztime each, no failure"
