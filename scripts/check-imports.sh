#!/usr/bin/env bash
# check-imports.sh — keeps I/O out of the workflows packages.
#
# Workflow code must be deterministic, so ./workflows/... may reach only the
# contract, the activity declarations and the Temporal SDK. This script fails
# when:
#   1. the dependency closure of the checked packages (go list -deps) contains
#      a database, SSH, IPMI or process package (forbidden_trees and
#      forbidden_exact below), or
#   2. any bareflow package in that closure imports, itself, a package in
#      forbidden_direct. The Temporal SDK reaches net and net/http through
#      gRPC, so those two are checked on bareflow's own direct imports only.
# Test files are not checked.
#
# Usage: scripts/check-imports.sh [package pattern …]   (default ./workflows/...)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Import paths that must not appear in the closure, with everything under them.
forbidden_trees=(
	github.com/jackc/pgx
	golang.org/x/crypto/ssh
	github.com/bougou/go-ipmi
)
# Standard-library packages that must not appear in the closure (exact: the
# SDK's dependencies use database/sql/driver for its interfaces alone).
forbidden_exact=(
	database/sql
	os/exec
)
# Packages that no bareflow package in the closure may import directly.
forbidden_direct=(
	net/http
	os/exec
	database/sql
	net
)

patterns=("$@")
if [ ${#patterns[@]} -eq 0 ]; then
	patterns=(./workflows/...)
fi

module=$(go list -m)

# One line per package in the closure: "<path> <direct imports…>".
if ! graph=$(go list -deps -f '{{.ImportPath}} {{join .Imports " "}}' "${patterns[@]}"); then
	echo "check-imports: go list failed for ${patterns[*]}" >&2
	exit 2
fi

# importers PKG prints the packages of the closure that import PKG directly.
importers() {
	awk -v want="$1" '{ for (i = 2; i <= NF; i++) if ($i == want) { print $1; break } }' <<<"$graph" |
		paste -sd ' ' -
}

failed=0
while read -r pkg _; do
	for tree in "${forbidden_trees[@]}"; do
		if [ "$pkg" = "$tree" ] || [[ $pkg == "$tree"/* ]]; then
			# Name only where the tree is entered, not its inner imports.
			from=""
			for imp in $(importers "$pkg"); do
				if [ "$imp" != "$tree" ] && [[ $imp != "$tree"/* ]]; then
					from+=" $imp"
				fi
			done
			if [ -n "$from" ]; then
				echo "check-imports: ${patterns[*]} depends on $pkg (forbidden: $tree…), imported by$from" >&2
			fi
			failed=1
		fi
	done
	for exact in "${forbidden_exact[@]}"; do
		if [ "$pkg" = "$exact" ]; then
			echo "check-imports: ${patterns[*]} depends on $pkg (forbidden), imported by $(importers "$pkg")" >&2
			failed=1
		fi
	done
done <<<"$graph"

while read -r pkg imports; do
	if [ "$pkg" != "$module" ] && [[ $pkg != "$module"/* ]]; then
		continue
	fi
	for imp in $imports; do
		for bad in "${forbidden_direct[@]}"; do
			if [ "$imp" = "$bad" ]; then
				echo "check-imports: $pkg imports $imp directly; it is in the closure of ${patterns[*]}, which must do no I/O" >&2
				failed=1
			fi
		done
	done
done <<<"$graph"

if [ "$failed" -ne 0 ]; then
	echo "check-imports: FAIL — workflow code must reach I/O only through activities; move the import into activities' adapters (internal/…) or workers/." >&2
	exit 1
fi

own=$(awk -v m="$module" '$1 == m || index($1, m "/") == 1 { print $1 }' <<<"$graph" | paste -sd ' ' -)
echo "check-imports: ok (${patterns[*]}; bareflow packages in the closure: $own)"
