package osimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Image file formats, as bareflow's image writer names them.
const (
	FormatRaw     = "raw"
	FormatQCOW2   = "qcow2"
	FormatRawZstd = "raw.zst"
)

// Artifact is an image file with its digest.
type Artifact struct {
	Path   string
	Format string
	// Size is the file's size in bytes.
	Size int64
	// SHA256 is the file's digest in lower-case hex.
	SHA256 string
}

// Checksum is the digest as bareflow's image requests spell it:
// "sha256:HEX".
func (a Artifact) Checksum() string { return "sha256:" + a.SHA256 }

// FileArtifact hashes the file at path.
func FileArtifact(path, format string) (Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Artifact{}, fmt.Errorf("hash %s: %w", path, err)
	}
	return Artifact{Path: path, Format: format, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// ConvertQCOW2 converts the raw image src into the qcow2 file dst
// (qemu-img convert, compressed clusters with compress) and hashes it. dst
// appears whole or not at all.
func ConvertQCOW2(ctx context.Context, src, dst string, compress bool) (Artifact, error) {
	if err := needTools("qemu-img"); err != nil {
		return Artifact{}, err
	}
	return writeAtomically(dst, FormatQCOW2, func(tmp string) error {
		args := []string{"qemu-img", "convert", "-f", "raw", "-O", "qcow2"}
		if compress {
			args = append(args, "-c")
		}
		_, err := run(ctx, append(args, src, tmp)...)
		return err
	})
}

// CompressZstd compresses src into dst with zstd and hashes it. dst
// appears whole or not at all.
func CompressZstd(ctx context.Context, src, dst string) (Artifact, error) {
	if err := needTools("zstd"); err != nil {
		return Artifact{}, err
	}
	return writeAtomically(dst, FormatRawZstd, func(tmp string) error {
		_, err := run(ctx, "zstd", "-q", "-f", "-T0", "-o", tmp, src)
		return err
	})
}

// writeAtomically has write make a temporary file beside dst, then renames
// it over dst and hashes it.
func writeAtomically(dst, format string, write func(tmp string) error) (Artifact, error) {
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+"."+randomHex(4)+".tmp")
	defer os.Remove(tmp)
	if err := write(tmp); err != nil {
		return Artifact{}, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Artifact{}, err
	}
	return FileArtifact(dst, format)
}

// Raw returns the cached raw image with its digest.
func (img Image) Raw() (Artifact, error) { return FileArtifact(img.Path, FormatRaw) }

// QCOW2 returns the image as qcow2 (compressed clusters with compress),
// converted once and cached beside the raw image.
func (img Image) QCOW2(ctx context.Context, compress bool) (Artifact, error) {
	name := "disk.qcow2"
	if compress {
		name = "disk.c.qcow2"
	}
	dst := filepath.Join(filepath.Dir(img.Path), name)
	if _, err := os.Stat(dst); err == nil {
		return FileArtifact(dst, FormatQCOW2)
	}
	return ConvertQCOW2(ctx, img.Path, dst, compress)
}

// RawZstd returns the image compressed with zstd, made once and cached
// beside the raw image.
func (img Image) RawZstd(ctx context.Context) (Artifact, error) {
	dst := filepath.Join(filepath.Dir(img.Path), "disk.raw.zst")
	if _, err := os.Stat(dst); err == nil {
		return FileArtifact(dst, FormatRawZstd)
	}
	return CompressZstd(ctx, img.Path, dst)
}

// CopyTo copies the raw image to the new file dst, sparse, for a caller
// that changes it.
func (img Image) CopyTo(dst string) error {
	if err := createSparse(dst, img.Size); err != nil {
		return err
	}
	return copyInto(dst, img.Path, 0)
}

// ReadRootFile returns the content of the file at the absolute path p in
// the image's ext4 root filesystem (debugfs; no mount, no root).
func (img Image) ReadRootFile(ctx context.Context, p string) ([]byte, error) {
	if img.Root.FSType != string(Ext4) {
		return nil, fmt.Errorf("%w: reading files needs an ext4 root, not %s", ErrInvalid, img.Root.FSType)
	}
	return ReadExtFile(ctx, img.Path, img.Root.Start, p)
}

// ReadExtFile returns the content of the file at the absolute path p in
// the ext2/3/4 filesystem that starts offset bytes into the disk image
// file disk.
func ReadExtFile(ctx context.Context, disk string, offset int64, p string) ([]byte, error) {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\"\n\\") {
		return nil, fmt.Errorf("%w: path %q", ErrInvalid, p)
	}
	if err := needTools("debugfs"); err != nil {
		return nil, err
	}
	dev := disk + "?offset=" + strconv.FormatInt(offset, 10)
	// stat first: cat prints nothing, and exits 0, for a missing file.
	noPager := []string{"DEBUGFS_PAGER=__none__", "PAGER=__none__"}
	st, err := runCmd(ctx, command{argv: []string{"debugfs", "-R", `stat "` + p + `"`, dev}, env: noPager})
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(st), "Type: regular") {
		return nil, fmt.Errorf("%s in %s: %w", p, disk, os.ErrNotExist)
	}
	return runCmd(ctx, command{argv: []string{"debugfs", "-R", `cat "` + p + `"`, dev}, env: noPager})
}
