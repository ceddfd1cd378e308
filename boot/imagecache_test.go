package boot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"bareflow/contract"
	"bareflow/internal/secret"
	"bareflow/internal/store"
)

func TestImageCache(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	e := newHTTPEnv(t, Config{ImageCacheDir: cache, ImageCacheMaxBytes: 3 << 20})
	ctx := testCtx(t)

	// The image source wants a token and counts its downloads.
	content := bytes.Repeat([]byte("bareflow image "), 100_000) // 1.5 MB
	var hits atomic.Int32
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") != "s3cret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		hits.Add(1)
		w.Write(content)
	}))
	t.Cleanup(src.Close)
	sum := sha256.Sum256(content)
	create := func(name, checksum string) store.Image {
		im, err := e.st.CreateImage(ctx, store.ImageCreate{
			Image: store.Image{Name: name, URL: src.URL + "/" + name, Format: contract.ImageRaw, ChecksumAlgo: "sha256",
				Checksum: checksum, OSFamily: contract.OSDebian, BootMode: contract.ImageBootBIOS},
			Headers: map[string]secret.String{"X-Auth-Token": secret.String("s3cret")},
		})
		if err != nil {
			t.Fatal(err)
		}
		return im
	}
	good := create("good", hex.EncodeToString(sum[:]))
	bad := create("bad", hex.EncodeToString(make([]byte, 32)))

	t.Run("refused without a ramdisk at the address", func(t *testing.T) {
		resp, _ := e.get(t, "/boot/v1/images/"+good.ID)
		if resp.StatusCode != http.StatusForbidden || hits.Load() != 0 {
			t.Fatalf("got %d (source hit %d times), want 403 and no download", resp.StatusCode, hits.Load())
		}
	})
	if _, err := e.st.RecordRamdiskSession(ctx, store.RamdiskSession{MachineID: e.web1.ID, WorkflowID: "w",
		Addr: netip.MustParseAddr("127.0.0.1"), SSHHostKey: "ssh-ed25519 AAAA"}); err != nil {
		t.Fatal(err)
	}
	t.Run("one download for concurrent requests, then served with Range", func(t *testing.T) {
		var wg sync.WaitGroup
		codes := make([]int, 4)
		bodies := make([][]byte, 4)
		for i := range codes {
			wg.Go(func() {
				resp, b := e.get(t, "/boot/v1/images/"+good.ID)
				codes[i], bodies[i] = resp.StatusCode, b
			})
		}
		wg.Wait()
		for i := range codes {
			if codes[i] != http.StatusOK || !bytes.Equal(bodies[i], content) {
				t.Errorf("request %d: got %d with %d bytes, want 200 with the image", i, codes[i], len(bodies[i]))
			}
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("source downloads: got %d, want 1", n)
		}
		resp, b := e.get(t, "/boot/v1/images/"+good.ID, "Range", "bytes=1000-1999")
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, content[1000:2000]) {
			t.Errorf("range: got %d with %d bytes, want 206 with bytes 1000-1999", resp.StatusCode, len(b))
		}
	})
	t.Run("a wrong checksum is not cached", func(t *testing.T) {
		resp, b := e.get(t, "/boot/v1/images/"+bad.ID)
		if resp.StatusCode != http.StatusBadGateway || !bytes.Contains(b, []byte("not the")) {
			t.Fatalf("got %d %s, want 502 naming the checksum", resp.StatusCode, b)
		}
		files, _ := filepath.Glob(filepath.Join(cache, bad.ID+"*"))
		if len(files) != 0 {
			t.Errorf("cache holds %q for an image that failed its checksum", files)
		}
	})
	t.Run("unknown image", func(t *testing.T) {
		resp, _ := e.get(t, "/boot/v1/images/00000000-0000-4000-8000-000000000000")
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("got %d, want 404", resp.StatusCode)
		}
	})
	t.Run("least recently served goes past the size bound", func(t *testing.T) {
		other := create("other", hex.EncodeToString(sum[:]))
		third := create("third", hex.EncodeToString(sum[:]))
		for _, im := range []store.Image{other, third} {
			if resp, _ := e.get(t, "/boot/v1/images/"+im.ID); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: got %d", im.Name, resp.StatusCode)
			}
		}
		// 3 MiB hold two 1.5 MB images: the first served went.
		if files, _ := filepath.Glob(filepath.Join(cache, good.ID+"*")); len(files) != 0 {
			t.Errorf("the least recently served image is still cached: %q", files)
		}
		for _, im := range []store.Image{other, third} {
			if files, _ := filepath.Glob(filepath.Join(cache, im.ID+"*")); len(files) != 1 {
				t.Errorf("%s: cached files %q, want one", im.Name, files)
			}
		}
	})
	t.Run("phone-home carries the cache URL", func(t *testing.T) {
		tok := e.rampUp(t, e.web2)
		code, msg := e.phoneHome(t, map[string]any{"machine_id": e.web2.ID, "token": tok, "addr": "203.0.113.41",
			"macs": []string{mac(2).String()}, "ssh_host_key": hostKey(t)})
		if code != http.StatusOK {
			t.Fatalf("phone-home: %d %s", code, msg)
		}
		rs, err := e.st.GetRamdiskSession(ctx, e.web2.ID)
		if err != nil || rs.ImageCacheURL != "http://203.0.113.5:8081/boot/v1/images/" {
			t.Errorf("session: got %+v, %v, want the cache URL", rs, err)
		}
	})
}
