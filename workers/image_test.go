package workers

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"bareflow/activities"
	"bareflow/contract"
	"bareflow/internal/lab/fakeramdisk"
	"bareflow/internal/ramdisk"
)

// imageLab is a ramdisk stand-in (real dropbear, the real
// bareflow-imagewriter) with a loop device as the disk, and an HTTP server
// with the image.
type imageLab struct {
	bin    string
	rd     *fakeramdisk.Ramdisk
	dialer *ramdiskDialer
	ready  contract.RamdiskReady
	disk   string
	image  []byte
	qcow   []byte
	// delay slows the HTTP server down, per 64 KiB.
	delay time.Duration
	srv   *httptest.Server
}

func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("BAREFLOW_REQUIRE_INTEGRATION") == "1" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("needs root: loop devices and a mount namespace")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s is not installed", tool)
		}
	}
}

func newImageLab(t *testing.T) *imageLab {
	t.Helper()
	requireRoot(t, "dropbear", "losetup")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bareflow-imagewriter")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/bareflow-imagewriter").CombinedOutput(); err != nil {
		t.Fatalf("build bareflow-imagewriter: %v\n%s", err, out)
	}
	// 48 MiB: random data in every other MiB, zeros between.
	img := make([]byte, 48<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for off := 0; off < len(img); off += 2 << 20 {
		for i := off; i < off+1<<20; i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				img[i+j] = byte(v >> (8 * j))
			}
		}
	}
	backing := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	disk := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", disk).Run() })

	_, signer, err := ramdisk.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	l := &imageLab{bin: bin, dialer: &ramdiskDialer{signer: signer}, disk: disk, image: img}
	l.rd = fakeramdisk.Start(t, fakeramdisk.Options{
		AuthorizedKey: ramdisk.AuthorizedKey(signer, "bareflow-test"),
		Tools:         map[string]string{"bareflow-imagewriter": "exec " + bin + ` "$@"` + "\n"},
	})
	host, port, _ := strings.Cut(l.rd.Addr(), ":")
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	l.ready = contract.RamdiskReady{MachineID: "m", Addr: host, SSHPort: p, SSHHostKey: l.rd.HostKey()}
	l.srv = httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(l.srv.Close)
	return l
}

// qcow2 is the image as a compressed qcow2 file, made once.
func (l *imageLab) qcow2(t *testing.T) []byte {
	t.Helper()
	if l.qcow != nil {
		return l.qcow
	}
	dir := t.TempDir()
	raw, q := filepath.Join(dir, "image.raw"), filepath.Join(dir, "image.qcow2")
	if err := os.WriteFile(raw, l.image, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, q).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	b, err := os.ReadFile(q)
	if err != nil {
		t.Fatal(err)
	}
	l.qcow = b
	return b
}

// serve serves /image.raw, /image.raw.gz and /image.qcow2 with Range,
// slowed by delay.
func (l *imageLab) serve(w http.ResponseWriter, r *http.Request) {
	body := l.image
	if strings.HasSuffix(r.URL.Path, ".qcow2") {
		body = l.qcow
	}
	if strings.HasSuffix(r.URL.Path, ".gz") {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
		body = buf.Bytes()
	}
	http.ServeContent(&slowWriter{ResponseWriter: w, delay: l.delay}, r, "image", time.Unix(1, 0), bytes.NewReader(body))
}

type slowWriter struct {
	http.ResponseWriter
	delay time.Duration
}

func (s *slowWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		chunk := min(len(b), 64<<10)
		if s.delay > 0 {
			time.Sleep(s.delay)
		}
		m, err := s.ResponseWriter.Write(b[:chunk])
		n += m
		if err != nil {
			return n, err
		}
		b = b[chunk:]
	}
	return n, nil
}

type staticImages map[string]activities.ImageSource

func (s staticImages) ImageSource(_ context.Context, ref string) (activities.ImageSource, error) {
	src, ok := s[ref]
	if !ok {
		return activities.ImageSource{}, activities.ErrNotFound
	}
	return src, nil
}

func (l *imageLab) write(t *testing.T, image string, srcs staticImages) (activities.WriteImageResult, error) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	a := &activities.Images{Keeper: srcs, Dialer: l.dialer}
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.WriteImage, activities.WriteImageInput{MachineID: "m", Ramdisk: l.ready, Image: image, Target: l.disk})
	if err != nil {
		return activities.WriteImageResult{}, err
	}
	var res activities.WriteImageResult
	return res, v.Get(&res)
}

func (l *imageLab) diskHas(t *testing.T, want []byte) bool {
	t.Helper()
	f, err := os.Open(l.disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(got, want)
}

// killWriter kills the image writers this lab started (found by the path
// of the binary it built) and returns how many.
func (l *imageLab) killWriter(t *testing.T) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range procs {
		cmd, err := os.ReadFile(p)
		if err != nil || !bytes.HasPrefix(cmd, []byte(l.bin+"\x00")) {
			continue
		}
		var pid int
		for _, c := range strings.Split(p, "/")[2] {
			pid = pid*10 + int(c-'0')
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

func sum256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestWriteImageThroughTheRamdisk(t *testing.T) {
	l := newImageLab(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(l.image)
	zw.Close()
	srcs := staticImages{
		"raw":   {URL: l.srv.URL + "/image.raw", Format: contract.ImageRaw, ChecksumAlgo: "sha256", Checksum: sum256(l.image)},
		"gz":    {URL: l.srv.URL + "/image.raw.gz", Format: contract.ImageRawGzip, ChecksumAlgo: "sha256", Checksum: sum256(gz.Bytes())},
		"bad":   {URL: l.srv.URL + "/image.raw", Format: contract.ImageRaw, ChecksumAlgo: "sha256", Checksum: strings.Repeat("0", 64)},
		"xz":    {URL: l.srv.URL + "/image.raw.xz", Format: contract.ImageRawXz, ChecksumAlgo: "sha256", Checksum: strings.Repeat("0", 64)},
		"qcow2": {URL: l.srv.URL + "/image.qcow2", Format: contract.ImageQCOW2, ChecksumAlgo: "sha256", Checksum: sum256(l.qcow2(t))},
	}

	t.Run("gzip", func(t *testing.T) {
		res, err := l.write(t, "gz", srcs)
		if err != nil {
			t.Fatal(err)
		}
		if res.BytesOut != int64(len(l.image)) || res.Checksum != srcs["gz"].Checksum || !l.diskHas(t, l.image) {
			t.Errorf("got %+v, want %d bytes with the image's checksum on the disk", res, len(l.image))
		}
	})
	t.Run("wrong checksum", func(t *testing.T) {
		_, err := l.write(t, "bad", srcs)
		var ae *temporal.ApplicationError
		if !errors.As(err, &ae) || ae.Type() != activities.ErrImageChecksumMismatch || !ae.NonRetryable() {
			t.Fatalf("got %v, want a non-retryable %s", err, activities.ErrImageChecksumMismatch)
		}
		if !strings.Contains(err.Error(), l.disk) {
			t.Errorf("error %q does not name the disk to distrust", err)
		}
	})
	t.Run("xz refused", func(t *testing.T) {
		_, err := l.write(t, "xz", srcs)
		var ae *temporal.ApplicationError
		if !errors.As(err, &ae) || ae.Type() != activities.ErrImageUnsupportedFormat {
			t.Fatalf("got %v, want %s", err, activities.ErrImageUnsupportedFormat)
		}
	})
	t.Run("qcow2", func(t *testing.T) {
		if err := exec.Command("dd", "if=/dev/zero", "of="+l.disk, "bs=1M", "count=48", "oflag=direct", "status=none").Run(); err != nil {
			t.Fatal(err)
		}
		res, err := l.write(t, "qcow2", srcs)
		if err != nil {
			t.Fatal(err)
		}
		if res.Checksum != srcs["qcow2"].Checksum || !l.diskHas(t, l.image) {
			t.Errorf("got %+v, want the qcow2's checksum and the image's content on the disk", res)
		}
	})
	t.Run("resumes after the worker dies", func(t *testing.T) {
		if err := exec.Command("dd", "if=/dev/zero", "of="+l.disk, "bs=1M", "count=48", "oflag=direct", "status=none").Run(); err != nil {
			t.Fatal(err)
		}
		// A slow server: the writer's first checkpoint (every 5 s) comes
		// well before the end. Once it is on record, the writer dies as it
		// does when the worker that runs it dies and its SSH session goes.
		l.delay = 8 * time.Millisecond
		first := make(chan error, 1)
		go func() {
			_, err := l.write(t, "raw", srcs)
			first <- err
		}()
		deadline := time.Now().Add(40 * time.Second)
		for {
			if states, _ := filepath.Glob("/run/bareflow-imagewriter/*"); len(states) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no checkpoint of the writer after 40s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n := l.killWriter(t); n == 0 {
			t.Fatal("no image writer was running at its first checkpoint")
		}
		select {
		case err := <-first:
			if err == nil {
				t.Fatal("first run: finished, want it cut")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("first run still going 30s after its writer was killed")
		}
		l.delay = 0
		res, err := l.write(t, "raw", srcs)
		if err != nil {
			t.Fatal(err)
		}
		if res.ResumedAt <= 0 || res.ResumedAt >= int64(len(l.image)) {
			t.Errorf("resumed at %d, want past 0 and before the end", res.ResumedAt)
		}
		if !l.diskHas(t, l.image) || res.Checksum != sum256(l.image) {
			t.Errorf("disk after the resumed write differs from the image")
		}
		t.Logf("resumed at %d MiB of %d", res.ResumedAt>>20, len(l.image)>>20)
	})
}
