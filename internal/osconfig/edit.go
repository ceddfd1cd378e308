package osconfig

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Edit is a change to a file the image already holds: the caller reads
// Path (nil when absent), calls Apply and writes the result back with the
// file's existing mode and owner. Apply is pure and idempotent.
type Edit struct {
	Path  string
	Apply func(old []byte) ([]byte, error)
}

// Edits validates cfg and returns the in-place edits for family and
// flavor, sorted by path: the root password in /etc/shadow, bareflow's
// lines in /etc/fstab, and on SUSE the static DNS settings in
// /etc/sysconfig/network/config.
func Edits(family Family, flavor string, cfg Config) ([]Edit, error) {
	format, err := chooseFormat(family, flavor)
	if err != nil {
		return nil, err
	}
	n, err := cfg.normalize()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var out []Edit
	if len(cfg.Filesystems) > 0 {
		mounts := slices.Clone(cfg.Filesystems)
		out = append(out, Edit{Path: pathFstab, Apply: func(old []byte) ([]byte, error) {
			return MergeFstab(old, mounts)
		}})
	}
	if h := cfg.RootPasswordHash; h != "" {
		out = append(out, Edit{Path: pathShadow, Apply: func(old []byte) ([]byte, error) {
			return SetShadowPassword(old, "root", h)
		}})
	}
	if format == formatIfcfgSUSE && (len(n.dns) > 0 || len(n.search) > 0) {
		vals := map[string]string{
			"NETCONFIG_DNS_STATIC_SERVERS":    joinAddrs(n.dns, " "),
			"NETCONFIG_DNS_STATIC_SEARCHLIST": strings.Join(n.search, " "),
		}
		out = append(out, Edit{Path: pathSUSENetConfig, Apply: func(old []byte) ([]byte, error) {
			return setSysconfig(old, vals), nil
		}})
	}
	slices.SortFunc(out, func(a, b Edit) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// fstabMark ends every fstab line bareflow writes.
const fstabMark = "# bareflow"

// MergeFstab returns existing with mounts applied: lines bareflow wrote
// before (ending in "# bareflow") and lines for the same UUID or mount
// point are dropped, other lines kept in order, and one marked line per
// mount appended, sorted by mount point so parents precede children.
// Merging twice gives the same bytes.
func MergeFstab(existing []byte, mounts []Mount) ([]byte, error) {
	if err := validateMounts(mounts); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	uuids := map[string]bool{}
	points := map[string]bool{}
	for _, m := range mounts {
		uuids["UUID="+strings.ToLower(m.UUID)] = true
		if m.MountPoint != "none" {
			points[m.MountPoint] = true
		}
	}
	var b bytes.Buffer
	for _, line := range splitLines(existing) {
		if strings.HasSuffix(strings.TrimSpace(line), fstabMark) {
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
			if len(f[0]) > 5 && strings.EqualFold(f[0][:5], "UUID=") && uuids["UUID="+strings.ToLower(f[0][5:])] {
				continue
			}
			if points[f[1]] {
				continue
			}
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	sorted := slices.Clone(mounts)
	slices.SortFunc(sorted, func(a, b Mount) int {
		if c := strings.Compare(a.MountPoint, b.MountPoint); c != 0 {
			return c
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	for _, m := range sorted {
		opts := m.Options
		if opts == "" {
			opts = "defaults"
		}
		fmt.Fprintf(&b, "UUID=%s %s %s %s 0 %d %s\n", strings.ToLower(m.UUID), m.MountPoint, m.FSType, opts, m.Pass, fstabMark)
	}
	return b.Bytes(), nil
}

// splitLines splits b into lines without their newline; a final newline
// does not make an empty last line.
func splitLines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

var shadowUserRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}\$?$`)

// SetShadowPassword returns shadow with user's password field set to hash.
// The other fields, including the date of last change, are kept. It fails
// when user has no entry or the entry is malformed.
func SetShadowPassword(shadow []byte, user, hash string) ([]byte, error) {
	if !shadowUserRE.MatchString(user) {
		return nil, fmt.Errorf("%w: user name %q", ErrInvalidConfig, truncate(user, 40))
	}
	if err := ValidatePasswordHash(hash); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	lines := splitLines(shadow)
	found := false
	for i, line := range lines {
		f := strings.Split(line, ":")
		if f[0] != user {
			continue
		}
		if len(f) != 9 {
			return nil, fmt.Errorf("shadow entry for %s has %d fields, want 9", user, len(f))
		}
		if found {
			return nil, fmt.Errorf("shadow has two entries for %s", user)
		}
		found = true
		f[1] = hash
		lines[i] = strings.Join(f, ":")
	}
	if !found {
		return nil, fmt.Errorf("shadow has no entry for %s", user)
	}
	if len(lines) == 0 {
		return nil, errors.New("shadow is empty")
	}
	return []byte(strings.Join(lines, "\n") + "\n"), nil
}

// setSysconfig sets KEY="value" assignments in a sysconfig file, replacing
// the first assignment of each key and appending missing ones in key
// order. Values are validated addresses and domains: no quoting needed.
func setSysconfig(old []byte, vals map[string]string) []byte {
	done := map[string]bool{}
	lines := splitLines(old)
	for i, line := range lines {
		k, _, ok := strings.Cut(strings.TrimSpace(line), "=")
		if v, want := vals[k]; ok && want && !done[k] {
			lines[i] = k + `="` + v + `"`
			done[k] = true
		}
	}
	for _, k := range sortedKeys(vals) {
		if !done[k] {
			lines = append(lines, k+`="`+vals[k]+`"`)
		}
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}
