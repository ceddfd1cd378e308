package osimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Cache folder layout: DIR/<kind>-<family>-<key[:16]>/{disk.raw,image.json}.
const (
	diskFile  = "disk.raw"
	metaFile  = "image.json"
	tmpPrefix = ".build-"
	// staleBuild is the age after which a leftover temporary build
	// folder (of a process that died) is removed.
	staleBuild = 2 * time.Hour
)

// recipeVersion changes whenever this package builds a different image
// from the same inputs.
const recipeVersion = "osimage-3"

// hashInputs hashes the parts of a build's inputs: strings and the
// contents of files named "file:PATH".
func hashInputs(parts ...string) (string, error) {
	h := sha256.New()
	for _, p := range parts {
		if f, ok := strings.CutPrefix(p, "file:"); ok {
			fh, err := os.Open(f)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(h, fh)
			fh.Close()
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "\x00file %s\x00", f)
			continue
		}
		fmt.Fprintf(h, "%s\x00", p)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cached returns the image in folder final, built by build (into a
// temporary folder beside it, renamed into place) when it is not there
// yet.
func cached(ctx context.Context, cacheDir, name string, build func(ctx context.Context, work, disk string) (Image, error)) (Image, error) {
	if cacheDir == "" {
		return Image{}, fmt.Errorf("%w: no cache folder", ErrInvalid)
	}
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return Image{}, err
	}
	final := filepath.Join(cacheDir, name)
	if img, err := load(final); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Image{}, err
	}
	removeStale(cacheDir)
	tmp, err := os.MkdirTemp(cacheDir, tmpPrefix+name+"-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		return Image{}, err
	}
	img, err := build(ctx, work, filepath.Join(tmp, diskFile))
	if err != nil {
		return Image{}, err
	}
	if err := os.RemoveAll(work); err != nil {
		return Image{}, err
	}
	meta, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return Image{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, metaFile), append(meta, '\n'), 0o644); err != nil {
		return Image{}, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Image{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another process finished the same build first: use its copy.
		if img, lerr := load(final); lerr == nil {
			return img, nil
		}
		// A damaged folder (a disk file changed in the cache): set it
		// aside and try once more.
		aside := filepath.Join(cacheDir, tmpPrefix+"damaged-"+randomHex(4))
		if os.Rename(final, aside) == nil {
			_ = os.RemoveAll(aside)
		}
		if err := os.Rename(tmp, final); err != nil {
			if img, lerr := load(final); lerr == nil {
				return img, nil
			}
			return Image{}, fmt.Errorf("move the built image into place: %w", err)
		}
	}
	return load(final)
}

// load reads a finished image from its cache folder.
func load(dir string) (Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return Image{}, err
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return Image{}, fmt.Errorf("%s: %w", filepath.Join(dir, metaFile), err)
	}
	img.Path = filepath.Join(dir, diskFile)
	st, err := os.Stat(img.Path)
	if err != nil {
		return Image{}, err
	}
	if st.Size() != img.Size {
		return Image{}, fmt.Errorf("%s: %d bytes, want %d", img.Path, st.Size(), img.Size)
	}
	return img, nil
}

// removeStale removes temporary build folders that are older than
// staleBuild: those of processes that died mid-build.
func removeStale(cacheDir string) {
	entries, err := os.ReadDir(cacheDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleBuild {
			_ = os.RemoveAll(filepath.Join(cacheDir, e.Name()))
		}
	}
}

// toolVersions lists the installed versions of the Debian packages whose
// tools make the images, as part of the cache key.
func toolVersions(ctx context.Context) string {
	// dpkg-query fails when one package is not installed, yet lists the
	// others: its output is what counts.
	out, _ := run(ctx, "dpkg-query", "-W", "-f", "${Package} ${Version}\n",
		"e2fsprogs", "xfsprogs", "dosfstools", "fdisk", "mtools", "syslinux", "syslinux-common",
		"busybox", "busybox-static", "dropbear-bin")
	return string(out)
}
