package images

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// testImage is a raw image with data chunks between zero holes, and its
// compressed versions.
type testImage struct {
	raw, gz, zst []byte
	data         int64 // bytes in the data chunks
}

var (
	imageOnce sync.Once
	image     testImage
)

func buildImage(t *testing.T) testImage {
	t.Helper()
	imageOnce.Do(func() {
		const size = 64<<20 + 1234
		raw := make([]byte, size)
		rng := rand.New(rand.NewPCG(1, 2))
		for _, c := range []struct{ off, n int }{
			{0, 1 << 20}, {5<<20 + 123, 3 << 20}, {20 << 20, 8 << 20}, {40<<20 + 4096, 100}, {63 << 20, size - 63<<20},
		} {
			for i := c.off; i < c.off+c.n; i++ {
				raw[i] = byte(rng.Uint32() | 1)
			}
			image.data += int64(c.n)
		}
		image.raw = raw
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		zw.Write(raw)
		zw.Close()
		image.gz = gz.Bytes()
		enc, _ := zstd.NewWriter(nil)
		image.zst = enc.EncodeAll(raw, nil)
	})
	return image
}

func sha256Of(b []byte) Checksum {
	s := sha256.Sum256(b)
	return Checksum{Algorithm: "sha256", Sum: s[:]}
}

// server serves one file with Range support, counting the bytes it sends.
// truncate and stallAfter apply to requests without a Range header (the
// whole file).
type server struct {
	*httptest.Server
	body       []byte
	sent       atomic.Int64
	noRange    bool
	noResume   bool   // ignore open-ended ranges ("bytes=N-"), as a resume sends
	rangeBody  []byte // served to requests with a Range header instead of body
	truncate   bool
	stallAfter atomic.Int64   // >0: send that many bytes, then hang
	stalled    sync.WaitGroup // handlers in the stall
	header     string         // required "Name: value"
}

func newServer(t *testing.T, body []byte) *server {
	s := &server{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	if s.header != "" {
		k, v, _ := bytes.Cut([]byte(s.header), []byte(": "))
		if r.Header.Get(string(k)) != string(v) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
	}
	if s.noRange || (s.noResume && strings.HasSuffix(r.Header.Get("Range"), "-")) {
		r.Header.Del("Range")
	}
	body, whole := s.body, r.Header.Get("Range") == ""
	if !whole && s.rangeBody != nil {
		body = s.rangeBody
	}
	switch {
	case s.truncate && whole:
		w.Header().Set("Content-Length", strconv.Itoa(len(s.body)))
		w.Write(s.body[:len(s.body)/2])
		return
	case s.stallAfter.Load() > 0 && whole:
		s.stalled.Add(1)
		defer s.stalled.Done()
		w.Header().Set("Content-Length", strconv.Itoa(len(s.body)))
		n, _ := w.Write(s.body[:s.stallAfter.Load()])
		s.sent.Add(int64(n))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	w.Header().Set("ETag", `"v1"`)
	http.ServeContent(countingWriter{w, &s.sent}, r, "image", time.Time{}, bytes.NewReader(body))
}

func readTarget(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkContent(t *testing.T, path string, want []byte) {
	t.Helper()
	got := readTarget(t, path)
	if len(got) != len(want) {
		t.Fatalf("target size: got %d, want %d", len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatal("target content differs from the image")
	}
}

func TestWriteFormats(t *testing.T) {
	img := buildImage(t)
	for name, tc := range map[string]struct {
		file   []byte
		format Format
		direct bool
	}{
		"raw":              {img.raw, FormatRaw, false},
		"raw direct":       {img.raw, FormatRaw, true},
		"raw auto":         {img.raw, FormatAuto, true},
		"gzip":             {img.gz, FormatGzip, false},
		"gzip auto direct": {img.gz, FormatAuto, true},
		"zstd":             {img.zst, FormatZstd, false},
		"zstd auto direct": {img.zst, FormatAuto, true},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, tc.file)
			target := filepath.Join(t.TempDir(), "disk")
			res, err := (&Writer{}).Write(t.Context(), Job{
				URL: srv.URL, Format: tc.format, Checksum: sha256Of(tc.file), Target: target,
				Direct: tc.direct, StateDir: t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			checkContent(t, target, img.raw)
			if res.Written != int64(len(img.raw)) || res.BytesOut != int64(len(img.raw)) || res.BytesIn != int64(len(tc.file)) {
				t.Errorf("result %+v: got written %d out %d in %d, want %d %d %d", res, res.Written, res.BytesOut, res.BytesIn, len(img.raw), len(img.raw), len(tc.file))
			}
			if tc.format != FormatAuto && res.Format != tc.format {
				t.Errorf("format: got %s, want %s", res.Format, tc.format)
			}
		})
	}
}

func TestSHA512(t *testing.T) {
	img := buildImage(t)
	srv := newServer(t, img.zst)
	s := sha512.Sum512(img.zst)
	target := filepath.Join(t.TempDir(), "disk")
	if _, err := (&Writer{}).Write(t.Context(), Job{URL: srv.URL, Checksum: Checksum{"sha512", s[:]}, Target: target}); err != nil {
		t.Fatal(err)
	}
	checkContent(t, target, img.raw)
}

func TestZeroSkipping(t *testing.T) {
	img := buildImage(t)
	srv := newServer(t, img.zst)
	target := filepath.Join(t.TempDir(), "disk")
	res, err := (&Writer{}).Write(t.Context(), Job{
		URL: srv.URL, Checksum: sha256Of(img.zst), Target: target, TargetZeroed: true, Direct: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkContent(t, target, img.raw)
	// Each data chunk may add a partial page at either end.
	limit := img.data + 5*2*pageSize
	if res.Written < img.data || res.Written > limit {
		t.Errorf("written: got %d, want between %d and %d", res.Written, img.data, limit)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(target, &st); err != nil {
		t.Fatal(err)
	}
	// Filesystems may allocate a little around each write.
	if alloc := st.Blocks * 512; alloc > limit+4<<20 {
		t.Errorf("allocated: got %d bytes, want at most %d", alloc, limit+4<<20)
	}
}

func TestChecksumMismatch(t *testing.T) {
	img := buildImage(t)
	srv := newServer(t, img.raw)
	dir := t.TempDir()
	target := filepath.Join(dir, "disk")
	wrong := sha256Of([]byte("other"))
	_, err := (&Writer{}).Write(t.Context(), Job{
		URL: srv.URL, Checksum: wrong, Target: target, StateDir: dir, CheckpointBytes: 8 << 20, BlockSize: 1 << 20,
	})
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("error: got %v, want ErrChecksumMismatch", err)
	}
	if _, err := os.Stat(statePath(dir, wrong, target)); !os.IsNotExist(err) {
		t.Errorf("state file after mismatch: got %v, want none", err)
	}
}

func TestTruncated(t *testing.T) {
	img := buildImage(t)
	for name, file := range map[string][]byte{"raw": img.raw, "zstd": img.zst} {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, file)
			srv.truncate = true
			_, err := (&Writer{}).Write(t.Context(), Job{URL: srv.URL, Checksum: sha256Of(file), Target: filepath.Join(t.TempDir(), "disk")})
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("error: got %v, want ErrTruncated", err)
			}
		})
	}
}

// A compressed image whose stream is damaged (one byte changed in the
// middle, while the download itself works) fails as corrupt, not as a
// write failure that a retry could fix.
func TestCorruptCompressed(t *testing.T) {
	img := buildImage(t)
	for name, file := range map[string][]byte{"gzip": img.gz, "zstd": img.zst} {
		t.Run(name, func(t *testing.T) {
			bad := bytes.Clone(file)
			bad[len(bad)/2] ^= 0x5a
			srv := newServer(t, bad)
			_, err := (&Writer{}).Write(t.Context(), Job{URL: srv.URL, Checksum: sha256Of(file), Target: filepath.Join(t.TempDir(), "disk")})
			if !errors.Is(err, ErrCorruptImage) {
				t.Fatalf("error: got %v, want ErrCorruptImage", err)
			}
			if errors.Is(err, ErrTruncated) {
				t.Errorf("error %v: a damaged stream is not a truncated download", err)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	img := buildImage(t)
	srv := newServer(t, img.gz)
	srv.header = "X-Token: secret"
	job := Job{URL: srv.URL, Checksum: sha256Of(img.gz), Target: filepath.Join(t.TempDir(), "disk")}
	if _, err := (&Writer{}).Write(t.Context(), job); err == nil {
		t.Fatal("error without the header: got nil, want 403")
	}
	job.Header = http.Header{"X-Token": {"secret"}}
	if _, err := (&Writer{}).Write(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	checkContent(t, job.Target, img.raw)
}

func TestUnsupportedFormat(t *testing.T) {
	for name, magic := range map[string][]byte{"qcow2 without a header": magicQcow2, "xz": magicXz} {
		t.Run(name, func(t *testing.T) {
			file := append(append([]byte{}, magic...), make([]byte, 1000)...)
			srv := newServer(t, file)
			_, err := (&Writer{}).Write(t.Context(), Job{URL: srv.URL, Checksum: sha256Of(file), Target: filepath.Join(t.TempDir(), "disk")})
			if !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("error: got %v, want ErrUnsupportedFormat", err)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	img := buildImage(t)
	srv := newServer(t, img.raw)
	var mu sync.Mutex
	var got []Progress
	w := &Writer{ProgressInterval: time.Millisecond, OnProgress: func(p Progress) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}}
	if _, err := w.Write(t.Context(), Job{URL: srv.URL, Checksum: sha256Of(img.raw), Target: filepath.Join(t.TempDir(), "disk"), BlockSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		if got[i].BytesOut < got[i-1].BytesOut || got[i].BytesOut > int64(len(img.raw)) {
			t.Fatalf("progress %d: got %+v after %+v", i, got[i], got[i-1])
		}
	}
}

// interrupt runs a write against a server that hangs after stallAfter bytes,
// waits for a checkpoint at minOff or beyond, then cancels the write.
func interrupt(t *testing.T, srv *server, job Job, stallAfter, minOff int64) {
	t.Helper()
	srv.stallAfter.Store(stallAfter)
	defer srv.stallAfter.Store(0)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := (&Writer{}).Write(ctx, job)
		errc <- err
	}()
	path := statePath(job.StateDir, job.Checksum, job.Target)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var c checkpoint
		if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &c) == nil && c.DstOffset >= minOff {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no checkpoint at %d or beyond: %v", minOff, <-errc)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted write: got %v, want context.Canceled", err)
	}
}

func resumeJob(t *testing.T, url string, file []byte) Job {
	dir := t.TempDir()
	return Job{
		URL: url, Checksum: sha256Of(file), Target: filepath.Join(dir, "disk"), StateDir: filepath.Join(dir, "state"),
		Resume: true, BlockSize: 1 << 20, CheckpointBytes: 4 << 20, Direct: true,
	}
}

func TestResumeRaw(t *testing.T) {
	img := buildImage(t)
	srv := newServer(t, img.raw)
	job := resumeJob(t, srv.URL, img.raw)
	interrupt(t, srv, job, 40<<20, 32<<20)
	srv.sent.Store(0)
	res, err := (&Writer{}).Write(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	checkContent(t, job.Target, img.raw)
	if res.ResumedAt < 32<<20 {
		t.Errorf("resumed at: got %d, want at least %d", res.ResumedAt, 32<<20)
	}
	if sent, want := srv.sent.Load(), int64(len(img.raw))-res.ResumedAt; sent != want {
		t.Errorf("bytes sent on resume: got %d, want %d", sent, want)
	}
	if res.Written != int64(len(img.raw))-res.ResumedAt {
		t.Errorf("written on resume: got %d, want %d", res.Written, int64(len(img.raw))-res.ResumedAt)
	}
	if _, err := os.Stat(statePath(job.StateDir, job.Checksum, job.Target)); !os.IsNotExist(err) {
		t.Errorf("state file after success: got %v, want none", err)
	}
}

func TestResumeRangeIgnored(t *testing.T) {
	img := buildImage(t)
	srv := newServer(t, img.raw)
	srv.noRange = true
	job := resumeJob(t, srv.URL, img.raw)
	interrupt(t, srv, job, 40<<20, 32<<20)
	res, err := (&Writer{}).Write(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	checkContent(t, job.Target, img.raw)
	if res.ResumedAt < 32<<20 || res.Written != int64(len(img.raw))-res.ResumedAt {
		t.Errorf("got resumed at %d, written %d; want written = size - resumed at", res.ResumedAt, res.Written)
	}
}

func TestResumeCompressed(t *testing.T) {
	img := buildImage(t)
	for name, file := range map[string][]byte{"zstd": img.zst, "gzip": img.gz} {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, file)
			job := resumeJob(t, srv.URL, file)
			interrupt(t, srv, job, int64(len(file))*3/4, 8<<20)
			res, err := (&Writer{}).Write(t.Context(), job)
			if err != nil {
				t.Fatal(err)
			}
			checkContent(t, job.Target, img.raw)
			if res.ResumedAt < 8<<20 || res.Written != int64(len(img.raw))-res.ResumedAt {
				t.Errorf("got resumed at %d, written %d; want written = size - resumed at", res.ResumedAt, res.Written)
			}
		})
	}
}

func TestResumeOtherImage(t *testing.T) {
	img := buildImage(t)
	srv := newServer(t, img.raw)
	job := resumeJob(t, srv.URL, img.raw)
	// A state file of the same target for another image is not used.
	other := job
	other.Checksum = sha256Of([]byte("other"))
	if err := saveState(statePath(job.StateDir, job.Checksum, job.Target), &checkpoint{
		Version: stateVersion, Checksum: other.Checksum.String(), Target: job.Target, Format: FormatRaw, SrcOffset: 1 << 20, DstOffset: 1 << 20,
	}); err != nil {
		t.Fatal(err)
	}
	res, err := (&Writer{}).Write(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedAt != 0 {
		t.Errorf("resumed at: got %d, want 0", res.ResumedAt)
	}
	checkContent(t, job.Target, img.raw)
}

func TestParseChecksum(t *testing.T) {
	for s, ok := range map[string]bool{
		"sha256:" + fmt.Sprintf("%064x", 1):  true,
		"sha512:" + fmt.Sprintf("%0128x", 1): true,
		"sha256:abcd":                        false,
		"md5:" + fmt.Sprintf("%032x", 1):     false,
		"sha256":                             false,
	} {
		if _, err := ParseChecksum(s); (err == nil) != ok {
			t.Errorf("ParseChecksum(%q): got error %v, want ok=%v", s, err, ok)
		}
	}
}
