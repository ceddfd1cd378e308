package osimage

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// node is one entry of a filesystem tree.
type node struct {
	// mode holds the type (fs.ModeDir, fs.ModeSymlink, 0 for a file) and
	// the permission bits.
	mode     fs.FileMode
	uid, gid int
	// data is a file's content, unless src names a host file to copy.
	data []byte
	src  string
	// target is a symlink's target.
	target string
}

// tree is a filesystem tree to build, keyed by clean relative path ("etc/
// hostname"). Parents are directories 0755 owned by root unless added
// explicitly.
type tree struct {
	nodes map[string]*node
}

func newTree() *tree { return &tree{nodes: map[string]*node{}} }

func (t *tree) parents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := t.nodes[d]; !ok {
			t.nodes[d] = &node{mode: fs.ModeDir | 0o755}
		}
	}
}

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// dir adds a directory.
func (t *tree) dir(p string, perm fs.FileMode) {
	p = clean(p)
	t.parents(p)
	t.nodes[p] = &node{mode: fs.ModeDir | perm}
}

// file adds a regular file with content.
func (t *tree) file(p string, perm fs.FileMode, content string) {
	p = clean(p)
	t.parents(p)
	t.nodes[p] = &node{mode: perm, data: []byte(content)}
}

// copyFile adds a regular file copied from the host file src.
func (t *tree) copyFile(p string, perm fs.FileMode, src string) {
	p = clean(p)
	t.parents(p)
	t.nodes[p] = &node{mode: perm, src: src}
}

// symlink adds a symbolic link.
func (t *tree) symlink(p, target string) {
	p = clean(p)
	t.parents(p)
	t.nodes[p] = &node{mode: fs.ModeSymlink | 0o777, target: target}
}

// own sets the owner of an existing entry.
func (t *tree) own(p string, uid, gid int) {
	if n, ok := t.nodes[clean(p)]; ok {
		n.uid, n.gid = uid, gid
	}
}

func (t *tree) has(p string) bool { _, ok := t.nodes[clean(p)]; return ok }

// paths returns the entries' paths sorted so parents come first.
func (t *tree) paths() []string {
	ps := make([]string, 0, len(t.nodes))
	for p := range t.nodes {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// stage writes the tree into the empty folder dir, readable by the user
// who builds: modes and owners are set later in the filesystem (see
// ownerScript).
func (t *tree) stage(dir string) error {
	for _, p := range t.paths() {
		n := t.nodes[p]
		dst := filepath.Join(dir, filepath.FromSlash(p))
		switch {
		case n.mode.IsDir():
			if err := os.Mkdir(dst, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
		case n.mode&fs.ModeSymlink != 0:
			if err := os.Symlink(n.target, dst); err != nil {
				return err
			}
			continue
		case n.src != "":
			if err := copyHostFile(n.src, dst); err != nil {
				return err
			}
		default:
			if err := os.WriteFile(dst, n.data, 0o600); err != nil {
				return err
			}
		}
		if err := os.Chmod(dst, 0o755); err != nil {
			return err
		}
	}
	// The staging folder becomes the filesystem's root folder.
	return os.Chmod(dir, 0o755)
}

func copyHostFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ownerScript is a debugfs command file that gives every entry, and the
// root folder, its owner and mode: mkfs.ext4 -d copies the staging
// folder's, which belong to the building user.
func (t *tree) ownerScript() string {
	var b strings.Builder
	b.WriteString("sif / uid 0\nsif / gid 0\nsif / mode 040755\n")
	for _, p := range t.paths() {
		n := t.nodes[p]
		fmt.Fprintf(&b, "sif /%s uid %d\nsif /%s gid %d\nsif /%s mode 0%o\n", p, n.uid, p, n.gid, p, inodeMode(n.mode))
	}
	return b.String()
}

// inodeMode is the st_mode of an entry: type and permission bits.
func inodeMode(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	switch {
	case m.IsDir():
		bits |= 0o040000
	case m&fs.ModeSymlink != 0:
		bits |= 0o120000
	default:
		bits |= 0o100000
	}
	return bits
}

// protoFile writes a mkfs.xfs prototype file for the tree; file contents
// come from blobs, a folder it writes them into.
func (t *tree) protoFile(blobs string) (string, error) {
	children := map[string][]string{}
	for _, p := range t.paths() {
		d := path.Dir(p)
		children[d] = append(children[d], p)
	}
	var b strings.Builder
	b.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	i := 0
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		for _, p := range children[dir] {
			n := t.nodes[p]
			name := path.Base(p)
			if strings.ContainsAny(name, " \t\n$:") || strings.ContainsAny(n.target, " \t\n") {
				return fmt.Errorf("%w: %q cannot go into a mkfs.xfs prototype", ErrInvalid, p)
			}
			indent := strings.Repeat(" ", depth)
			switch {
			case n.mode.IsDir():
				fmt.Fprintf(&b, "%s%s d%s %d %d\n", indent, name, protoPerm(n.mode), n.uid, n.gid)
				if err := walk(p, depth+1); err != nil {
					return err
				}
				fmt.Fprintf(&b, "%s$\n", indent)
			case n.mode&fs.ModeSymlink != 0:
				fmt.Fprintf(&b, "%s%s l%s %d %d %s\n", indent, name, protoPerm(n.mode), n.uid, n.gid, n.target)
			default:
				src := n.src
				if src == "" {
					i++
					src = filepath.Join(blobs, fmt.Sprintf("%05d", i))
					if err := os.WriteFile(src, n.data, 0o600); err != nil {
						return err
					}
				}
				if strings.ContainsAny(src, " \t\n") {
					return fmt.Errorf("%w: source path %q has a space", ErrInvalid, src)
				}
				fmt.Fprintf(&b, "%s%s -%s %d %d %s\n", indent, name, protoPerm(n.mode), n.uid, n.gid, src)
			}
		}
		return nil
	}
	if err := walk(".", 1); err != nil {
		return "", err
	}
	b.WriteString("$\n")
	return b.String(), nil
}

// protoPerm is the set-id flags and octal permissions of a prototype line.
func protoPerm(m fs.FileMode) string {
	u, g := "-", "-"
	if m&fs.ModeSetuid != 0 {
		u = "u"
	}
	if m&fs.ModeSetgid != 0 {
		g = "g"
	}
	return fmt.Sprintf("%s%s%03o", u, g, m.Perm())
}
