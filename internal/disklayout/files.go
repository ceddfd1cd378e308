package disklayout

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"bareflow/internal/osconfig"
)

// maxEditBytes bounds the size of a file ApplyEdits reads.
const maxEditBytes = 4 << 20

var fsTypePattern = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// walkScript is the prologue of writeScript and readScript: it checks the
// mount point $1, then walks the directories of the relative path $2 one
// component at a time, stopping with "unsafe: …" on standard output (exit
// 0) at a symlink or a non-directory. With $mk set it creates missing
// directories; otherwise it prints "absent" and stops at the first one.
const walkScript = `set -euf
root=$1 rel=$2
unsafe() { echo "unsafe: $*"; exit 0; }
[ -d "$root" ] && [ ! -L "$root" ] || { echo "$root is not a directory" >&2; exit 1; }
cur=$root
dirs=${rel%/*}
name=${rel##*/}
[ "$dirs" != "$rel" ] || dirs=
IFS=/
for c in $dirs; do
	cur=$cur/$c
	if [ -L "$cur" ]; then unsafe "$cur is a symlink"; fi
	if [ ! -e "$cur" ]; then
		if [ -n "$mk" ]; then mkdir -m 0755 "$cur"; else echo absent; exit 0; fi
	elif [ ! -d "$cur" ]; then unsafe "$cur is not a directory"
	fi
done
unset IFS
t=$cur/$name
`

// writeScript writes standard input to $2 below the mount point $1 with
// mode $3, or with kind $4 "dir" creates the directory, or with kind "edit"
// keeps an existing file's mode and owner.
const writeScript = `mode=$3 kind=$4 mk=1
` + walkScript + `if [ "$kind" = dir ]; then
	if [ -L "$t" ]; then unsafe "$t is a symlink"; fi
	[ -e "$t" ] || mkdir "$t"
	[ -d "$t" ] || unsafe "$t is not a directory"
	chmod "$mode" "$t"
	echo ok
	exit 0
fi
if [ -d "$t" ] && [ ! -L "$t" ]; then unsafe "$t is a directory"; fi
tmp=$(mktemp "$cur/.bareflow.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat >"$tmp"
if [ "$kind" = edit ] && [ -f "$t" ] && [ ! -L "$t" ]; then
	chown "$(stat -c %u:%g "$t")" "$tmp"
	chmod "$(stat -c %a "$t")" "$tmp"
else
	chmod "$mode" "$tmp"
fi
mv -f -T "$tmp" "$t"
trap - EXIT
echo ok
`

// readScript prints "absent", or "present" and then the content of $2
// below the mount point $1 when it is a regular file of at most $3 bytes.
const readScript = `max=$3 mk=
` + walkScript + `if [ -L "$t" ]; then unsafe "$t is a symlink"; fi
[ -e "$t" ] || { echo absent; exit 0; }
[ -f "$t" ] || unsafe "$t is not a regular file"
size=$(stat -c %s "$t")
[ "$size" -le "$max" ] || { echo "$t is larger than $max bytes" >&2; exit 1; }
echo present
exec cat "$t"
`

// MountRoot mounts root's filesystem at the absolute directory at (created
// when missing) with nodev,nosuid, and returns a function that unmounts it.
func MountRoot(ctx context.Context, r CommandRunner, root Partition, at string) (unmount func(context.Context) error, err error) {
	if err := validateDevice(root.Path); err != nil {
		return nil, err
	}
	if err := validateImagePath(at); err != nil {
		return nil, fmt.Errorf("mount point: %w", err)
	}
	if !fsTypePattern.MatchString(string(root.FSType)) {
		return nil, fmt.Errorf("filesystem type %q of %s: %w", root.FSType, root.Path, ErrInvalid)
	}
	if _, err := run(ctx, r, cmd("mkdir", "-p", at)); err != nil {
		return nil, err
	}
	if _, err := run(ctx, r, cmd("mount", "-t", string(root.FSType), "-o", "nodev,nosuid", root.Path, at)); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_, err := run(ctx, r, cmd("umount", at))
		return err
	}, nil
}

// modeString returns f's permission and special bits in octal for chmod.
func modeString(m fs.FileMode) string {
	bits := uint32(m & 0o7777)
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return strconv.FormatUint(uint64(bits), 8)
}

// WriteFiles writes files below the mount point root, in order: a directory
// entry creates (or chmods) the directory, a file is written whole through
// a temporary file and a rename. It stops at the first failure; a path that
// runs through a symlink or a non-directory in the image fails with
// ErrSymlink and writes nothing.
func WriteFiles(ctx context.Context, r CommandRunner, root string, files []osconfig.File) error {
	if err := validateImagePath(root); err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	for _, f := range files {
		kind := "file"
		if f.IsDir() {
			kind = "dir"
		} else if f.Mode.Type() != 0 {
			return fmt.Errorf("write %s: mode %v is not a file or directory: %w", f.Path, f.Mode, ErrInvalid)
		}
		if err := writeFile(ctx, r, root, f.Path, modeString(f.Mode), kind, f.Content); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(ctx context.Context, r CommandRunner, root, p, mode, kind string, content []byte) error {
	if err := validateImagePath(p); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	c := script("write-file", writeScript, root, p[1:], mode, kind).withStdin(content)
	if content == nil {
		c.stdin = []byte{}
	}
	out, err := run(ctx, r, c)
	if err != nil {
		return err
	}
	return scriptResult(c, out, "ok")
}

// scriptResult turns a script's "unsafe: …" line into ErrSymlink and
// checks it printed want.
func scriptResult(c command, out []byte, want string) error {
	line, _, _ := strings.Cut(string(out), "\n")
	if reason, ok := strings.CutPrefix(line, "unsafe: "); ok {
		return fmt.Errorf("%s: %s: %w", c.display, reason, ErrSymlink)
	}
	if line != want {
		return fmt.Errorf("%s: unexpected output %q", c.display, line)
	}
	return nil
}

// newFileModes are the modes ApplyEdits gives files it creates; others
// get 0644.
var newFileModes = map[string]string{
	"/etc/shadow":  "640",
	"/etc/gshadow": "640",
}

// ApplyEdits applies edits to files below the mount point root, in order:
// it reads the file (nil when absent) with the same symlink checks as
// WriteFiles, applies the edit, and writes the result back keeping the
// file's mode and owner. A file whose content does not change is not
// written. Files larger than 4 MiB are refused.
func ApplyEdits(ctx context.Context, r CommandRunner, root string, edits []osconfig.Edit) error {
	if err := validateImagePath(root); err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	for _, e := range edits {
		if err := validateImagePath(e.Path); err != nil {
			return fmt.Errorf("edit: %w", err)
		}
		old, err := readFile(ctx, r, root, e.Path)
		if err != nil {
			return err
		}
		updated, err := e.Apply(old)
		if err != nil {
			return fmt.Errorf("edit %s: %w", e.Path, err)
		}
		if old != nil && bytes.Equal(old, updated) {
			continue
		}
		mode, ok := newFileModes[e.Path]
		if !ok {
			mode = "644"
		}
		if err := writeFile(ctx, r, root, e.Path, mode, "edit", updated); err != nil {
			return err
		}
	}
	return nil
}

func readFile(ctx context.Context, r CommandRunner, root, p string) ([]byte, error) {
	c := script("read-file", readScript, root, p[1:], strconv.Itoa(maxEditBytes))
	out, err := run(ctx, r, c)
	if err != nil {
		return nil, err
	}
	line, rest, _ := strings.Cut(string(out), "\n")
	switch line {
	case "absent":
		return nil, nil
	case "present":
		return []byte(rest), nil
	}
	return nil, scriptResult(c, out, "present")
}

// ReadFile returns the content of the regular file p (absolute, inside the
// image) below the mount point root, or nil when it does not exist. A path
// through a symlink is refused with ErrSymlink.
func ReadFile(ctx context.Context, r CommandRunner, root, p string) ([]byte, error) {
	if err := validateImagePath(root); err != nil {
		return nil, fmt.Errorf("mount point: %w", err)
	}
	if err := validateImagePath(p); err != nil {
		return nil, err
	}
	return readFile(ctx, r, root, p)
}
