package boot

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"bareflow/internal/secret"
	"bareflow/internal/store"
)

// imageFillTimeout bounds one download of an image into the cache.
const imageFillTimeout = 4 * time.Hour

var imageIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// imageStore is what the image cache reads. *store.Store implements it.
type imageStore interface {
	ImageSource(ctx context.Context, ref string) (store.Image, map[string]secret.String, error)
	RamdiskSessionAt(ctx context.Context, addr netip.Addr) (bool, error)
}

// imageCache keeps images near the machines: the first ramdisk that asks
// for an image makes the boot service download it from its source (with
// its token headers), verify it against its checksum and keep it; every
// request is then served from the local copy, with Range, so that image
// writers resume and a rack installs without each machine fetching from
// the source. Only addresses with a recorded ramdisk session are served.
// Files are named by image ID and checksum; the least recently served go
// when the cache passes its size.
type imageCache struct {
	dir    string
	max    int64
	st     imageStore
	client *http.Client
	logger *slog.Logger

	mu     sync.Mutex
	fills  map[string]*imageFill
	served map[string]time.Time
}

type imageFill struct {
	done chan struct{}
	err  error
}

func newImageCache(dir string, max int64, st imageStore, logger *slog.Logger) (*imageCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	// Downloads that a crash cut off.
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.part")); len(tmps) > 0 {
		for _, p := range tmps {
			_ = os.Remove(p)
		}
	}
	return &imageCache{dir: dir, max: max, st: st, logger: logger, client: &http.Client{},
		fills: map[string]*imageFill{}, served: map[string]time.Time{}}, nil
}

// serve answers GET /boot/v1/images/{id}.
func (c *imageCache) serve(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	remote := netip.Addr{}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = ap.Addr().Unmap()
	}
	log := c.logger.With("remote_addr", remote.String(), "image", id)
	if !imageIDPattern.MatchString(id) {
		writeJSON(w, http.StatusNotFound, jsonError{Code: "NotFound", Message: "no such image"})
		return
	}
	ok, err := c.st.RamdiskSessionAt(r.Context(), remote)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, jsonError{Code: "Unavailable", Message: "try again"})
		return
	}
	if !ok {
		log.Warn("image request refused: no ramdisk runs at that address")
		writeJSON(w, http.StatusForbidden, jsonError{Code: "Forbidden", Message: "images are served to bareflow ramdisks only"})
		return
	}
	im, headers, err := c.st.ImageSource(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, jsonError{Code: "NotFound", Message: "no such image"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, jsonError{Code: "Unavailable", Message: "try again"})
		return
	}
	path, err := c.ensure(r.Context(), im, headers)
	if err != nil {
		log.Warn("image not cached", "error", err)
		writeJSON(w, http.StatusBadGateway, jsonError{Code: "ImageUnavailable", Message: err.Error()})
		return
	}
	f, err := os.Open(path)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, jsonError{Code: "Unavailable", Message: "try again"})
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, jsonError{Code: "Unavailable", Message: "try again"})
		return
	}
	c.mu.Lock()
	c.served[path] = time.Now()
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// ensure returns the path of the verified local copy of im, downloading it
// first when there is none. Concurrent requests for one image share one
// download, which does not depend on any of them staying connected.
func (c *imageCache) ensure(ctx context.Context, im store.Image, headers map[string]secret.String) (string, error) {
	path := filepath.Join(c.dir, im.ID+"-"+im.ChecksumAlgo+"-"+im.Checksum[:16])
	for {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
		c.mu.Lock()
		f, running := c.fills[path]
		if !running {
			f = &imageFill{done: make(chan struct{})}
			c.fills[path] = f
			go func() {
				fctx, cancel := context.WithTimeout(context.Background(), imageFillTimeout)
				defer cancel()
				f.err = c.fill(fctx, im, headers, path)
				c.mu.Lock()
				delete(c.fills, path)
				c.mu.Unlock()
				close(f.done)
			}()
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-f.done:
		}
		if f.err != nil {
			return "", f.err
		}
	}
}

// fill downloads im into path, verifying its checksum, then makes room.
func (c *imageCache) fill(ctx context.Context, im store.Image, headers map[string]secret.String, path string) error {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, im.URL, nil)
	if err != nil {
		return fmt.Errorf("image %s: %w", im.Name, err)
	}
	for k, v := range headers {
		req.Header.Set(k, v.Reveal())
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("download image %s: %w", im.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download image %s: the source answered %s", im.Name, resp.Status)
	}
	tmp, err := os.CreateTemp(c.dir, filepath.Base(path)+".*.part")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	var h hash.Hash = sha256.New()
	if im.ChecksumAlgo == "sha512" {
		h = sha512.New()
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download image %s: %w", im.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != im.Checksum {
		return fmt.Errorf("image %s from %s has %s %s, not the %s recorded: not cached", im.Name, im.URL, im.ChecksumAlgo, got, im.Checksum)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	c.logger.Info("image cached", "image", im.ID, "name", im.Name, "bytes", n, "seconds", time.Since(start).Seconds())
	c.evict(path)
	return nil
}

// evict removes the least recently served images until the cache holds at
// most max bytes, never keep (the one just filled).
func (c *imageCache) evict(keep string) {
	if c.max <= 0 {
		return
	}
	type entry struct {
		path string
		size int64
		used time.Time
	}
	var (
		all   []entry
		total int64
	)
	_ = filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".part") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		c.mu.Lock()
		used, ok := c.served[p]
		c.mu.Unlock()
		if !ok {
			used = info.ModTime()
		}
		all = append(all, entry{p, info.Size(), used})
		total += info.Size()
		return nil
	})
	sort.Slice(all, func(i, j int) bool { return all[i].used.Before(all[j].used) })
	for _, e := range all {
		if total <= c.max {
			break
		}
		if e.path == keep {
			continue
		}
		// A reader that has the file open keeps reading it.
		if os.Remove(e.path) == nil {
			total -= e.size
			c.mu.Lock()
			delete(c.served, e.path)
			c.mu.Unlock()
			c.logger.Info("image evicted from the cache", "file", filepath.Base(e.path), "bytes", e.size)
		}
	}
}
