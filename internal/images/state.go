package images

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const stateVersion = 1

// checkpoint is what the state file holds: the target is known to hold the
// image's first DstOffset bytes (fsynced), and for a raw image HashState is
// the digest of the source's first SrcOffset bytes.
//
// For a qcow2 image, every cluster that starts below SrcOffset in the file is
// on the target (fsynced), and so are the zero ranges; HashState is the
// digest of the file's first SrcOffset bytes; MapSum identifies the tables
// the map was built from (a resume with other tables starts over); DstOffset
// is Progress.BytesOut.
type checkpoint struct {
	Version      int    `json:"version"`
	Checksum     string `json:"checksum"`
	Target       string `json:"target"`
	URL          string `json:"url"`
	Format       Format `json:"format"`
	Size         int64  `json:"size"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	SrcOffset    int64  `json:"src_offset"`
	DstOffset    int64  `json:"dst_offset"`
	HashState    []byte `json:"hash_state,omitempty"`
	MapSum       string `json:"map_sum,omitempty"`
}

// statePath names the state file of one image on one target.
func statePath(dir string, sum Checksum, target string) string {
	h := sha256.Sum256([]byte(sum.String() + "\x00" + target))
	return filepath.Join(dir, hex.EncodeToString(h[:16])+".json")
}

// loadState returns the checkpoint in path, or nil when there is none or it
// belongs to another image or target.
func loadState(path string, sum Checksum, target string) (*checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, nil
	}
	if c.Version != stateVersion || c.Checksum != sum.String() || c.Target != target || c.DstOffset < 0 || c.SrcOffset < 0 {
		return nil, nil
	}
	return &c, nil
}

// saveState replaces path with c atomically.
func saveState(path string, c *checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

func removeState(path string) {
	os.Remove(path)
	os.Remove(path + ".tmp")
}
