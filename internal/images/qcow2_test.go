package images

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// qcowDir holds the images the tests make with qemu-img, once per process.
var (
	qcowOnce sync.Once
	qcowDir  string
	qcowErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if qcowDir != "" {
		os.RemoveAll(qcowDir)
	}
	os.Exit(code)
}

// qemuImg runs qemu-img (or qemu-io) with args; the test is skipped when
// it is not installed.
func qemuImg(t testing.TB, tool string, args ...string) {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s is not installed: %v", tool, err)
	}
	if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
}

// qcowSize is the test image's size: not a multiple of 64 KiB or 2 MiB, so
// that its last cluster is partial.
const qcowSize = 24<<20 + 1536

// qcowRaw writes the raw test image: random data, compressible data and
// holes, data across cluster boundaries and up to the end.
func qcowRaw(path string) error {
	raw := make([]byte, qcowSize)
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(off, n int) {
		for i := off; i < off+n; i++ {
			raw[i] = byte(rng.Uint32() | 1)
		}
	}
	text := func(off, n int) {
		for i := off; i < off+n; i++ {
			raw[i] = "abcdefgh  \n"[rng.IntN(11)]
		}
	}
	random(0, 1<<20)
	text(3<<20+64<<10, 2<<20)
	random(8<<20-4096, 8192)
	text(10<<20, 3<<20)
	random(13<<20+512, 2<<20) // continues the run of clusters before
	text(16<<20, 4<<20)
	// Incompressible: qemu-img -c stores these clusters uncompressed, among
	// compressed ones.
	for i := 20 << 20; i < 22<<20; i += 8 {
		binary.LittleEndian.PutUint64(raw[i:], rng.Uint64())
	}
	random(qcowSize-100<<10, 100<<10)
	return os.WriteFile(path, raw, 0o644)
}

// qcowVariants are the images made from the raw test image: qemu-img
// convert options, then qemu-io commands run on the result.
var qcowVariants = map[string]struct {
	convert []string
	io      []string
}{
	"v3 64K":              {convert: []string{"-o", "compat=1.1,cluster_size=64k"}},
	"v3 2M":               {convert: []string{"-o", "compat=1.1,cluster_size=2M"}},
	"v3 512":              {convert: []string{"-o", "compat=1.1,cluster_size=512"}},
	"v2 64K":              {convert: []string{"-o", "compat=0.10,cluster_size=64k"}},
	"deflate 64K":         {convert: []string{"-c", "-o", "compat=1.1,cluster_size=64k"}},
	"deflate 2M":          {convert: []string{"-c", "-o", "compat=1.1,cluster_size=2M"}},
	"deflate v2":          {convert: []string{"-c", "-o", "compat=0.10,cluster_size=64k"}},
	"zstd 64K":            {convert: []string{"-c", "-o", "compat=1.1,cluster_size=64k,compression_type=zstd"}},
	"zstd 2M":             {convert: []string{"-c", "-o", "compat=1.1,cluster_size=2M,compression_type=zstd"}},
	"zero clusters":       {convert: []string{"-o", "compat=1.1,cluster_size=64k"}, io: []string{"write -z 64k 128k", "write -z -u 10M 1M"}},
	"snapshot then write": {convert: []string{"-o", "compat=1.1,cluster_size=64k"}, io: []string{"write -P 0x5a 1M 256k", "write -P 0xa5 23M 64k"}},
	"metadata prealloc":   {convert: []string{"-o", "compat=1.1,cluster_size=64k,preallocation=metadata"}},
}

// qcowImages makes every variant and its raw conversion once; it returns
// the directory holding NAME.qcow2 and NAME.raw.
func qcowImages(t testing.TB) string {
	t.Helper()
	for _, tool := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	qcowOnce.Do(func() {
		qcowDir, qcowErr = os.MkdirTemp("", "bareflow-qcow2-")
		if qcowErr != nil {
			return
		}
		raw := filepath.Join(qcowDir, "source.raw")
		if qcowErr = qcowRaw(raw); qcowErr != nil {
			return
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for name, v := range qcowVariants {
			wg.Go(func() {
				if err := makeVariant(raw, filepath.Join(qcowDir, name), name, v.convert, v.io); err != nil {
					mu.Lock()
					qcowErr = errors.Join(qcowErr, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	})
	if qcowErr != nil {
		t.Fatal(qcowErr)
	}
	return qcowDir
}

func makeVariant(raw, base, name string, convert, io []string) error {
	run := func(tool string, args ...string) error {
		if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
			return errors.New(tool + " " + strings.Join(args, " ") + ": " + err.Error() + "\n" + string(out))
		}
		return nil
	}
	img := base + ".qcow2"
	args := append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, convert...), raw, img)
	if err := run("qemu-img", args...); err != nil {
		return err
	}
	if strings.HasPrefix(name, "snapshot") {
		if err := run("qemu-img", "snapshot", "-c", "s1", img); err != nil {
			return err
		}
	}
	for _, c := range io {
		if err := run("qemu-io", "-f", "qcow2", "-c", c, img); err != nil {
			return err
		}
	}
	return run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", img, base+".raw")
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// garbageTarget returns a file of size bytes that are not zeros.
func garbageTarget(t *testing.T, size int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xab}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestQcow2Write(t *testing.T) {
	dir := qcowImages(t)
	for name := range qcowVariants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := readFile(t, filepath.Join(dir, name+".qcow2"))
			want := readFile(t, filepath.Join(dir, name+".raw"))
			srv := newServer(t, file)
			for _, tc := range []struct {
				name   string
				zeroed bool
				format Format
			}{
				{"garbage target", false, FormatQcow2},
				{"zeroed target, auto", true, FormatAuto},
			} {
				t.Run(tc.name, func(t *testing.T) {
					target := filepath.Join(t.TempDir(), "disk")
					if !tc.zeroed {
						target = garbageTarget(t, len(want))
					}
					res, err := (&Writer{}).Write(t.Context(), Job{
						URL: srv.URL, Format: tc.format, Checksum: sha256Of(file), Target: target,
						TargetZeroed: tc.zeroed, Direct: true, StateDir: t.TempDir(), BlockSize: 1 << 20,
					})
					if err != nil {
						t.Fatal(err)
					}
					checkContent(t, target, want)
					if res.Format != FormatQcow2 || res.BytesOut != int64(len(want)) || res.BytesIn != int64(len(file)) {
						t.Errorf("result %+v: got format %s, out %d, in %d; want qcow2, %d, %d", res, res.Format, res.BytesOut, res.BytesIn, len(want), len(file))
					}
					if most := nonZeroPages(want); tc.zeroed && res.Written > most {
						t.Errorf("written on a zeroed target: got %d, want at most the %d bytes of pages that are not zeros", res.Written, most)
					}
				})
			}
		})
	}
}

func TestQcow2Errors(t *testing.T) {
	dir := qcowImages(t)
	good := readFile(t, filepath.Join(dir, "v3 64K.qcow2"))
	h, err := parseQcowHeader(good[:qcowHeadBytes])
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	l1 := be.Uint64(good[h.l1Offset:])
	l2 := int64(l1 & qcowOffsetMask)
	// Cluster-aligned offsets past the end of the file.
	past := (uint64(len(good)) + 1<<16) &^ 0xffff
	farPast := (uint64(len(good)) + 1<<20) &^ 0xffff
	patch := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	mk := func(args ...string) []byte {
		path := filepath.Join(t.TempDir(), "image.qcow2")
		qemuImg(t, "qemu-img", append(args, path, "64M")...)
		return readFile(t, path)
	}
	base := filepath.Join(t.TempDir(), "base.qcow2")
	qemuImg(t, "qemu-img", "create", "-f", "qcow2", base, "64M")

	for name, tc := range map[string]struct {
		file    []byte
		srv     func(*server)
		want    error
		message string
	}{
		"wrong checksum":           {file: good, want: ErrChecksumMismatch},
		"truncated download":       {file: good, srv: func(s *server) { s.truncate = true }, want: ErrTruncated},
		"no range requests":        {file: good, srv: func(s *server) { s.noRange = true }, want: ErrUnsupportedFormat, message: "range requests"},
		"L2 table past the end":    {file: patch(func(b []byte) { be.PutUint64(b[h.l1Offset:], qcowCopied|past) }), want: ErrCorruptImage, message: "beyond the end"},
		"cluster past the end":     {file: patch(func(b []byte) { be.PutUint64(b[l2:], qcowCopied|farPast) }), want: ErrCorruptImage, message: "beyond the end"},
		"cluster overlaps a table": {file: patch(func(b []byte) { be.PutUint64(b[l2+8:], qcowCopied|uint64(l2)) }), want: ErrCorruptImage, message: "overlaps"},
		"unaligned cluster":        {file: patch(func(b []byte) { be.PutUint64(b[l2:], qcowCopied|uint64(l2)+512) }), want: ErrCorruptImage, message: "aligned"},
		"marked corrupt":           {file: patch(func(b []byte) { b[79] |= qcowCorrupt }), want: ErrCorruptImage, message: "corrupt"},
		"unknown feature":          {file: patch(func(b []byte) { b[79] |= 1 << 6 }), want: ErrUnsupportedFormat, message: "bit 6"},
		"unknown compression":      {file: patch(func(b []byte) { b[79] |= qcowCompression; b[104] = 7 }), want: ErrUnsupportedFormat, message: "compression type 7"},
		"version 4":                {file: patch(func(b []byte) { b[7] = 4 }), want: ErrUnsupportedFormat, message: "version 4"},
		"encrypted (AES)":          {file: patch(func(b []byte) { b[35] = 1 }), want: ErrUnsupportedFormat, message: "encrypted"},
		"encrypted (LUKS)": {file: mk("create", "-f", "qcow2", "--object", "secret,id=s0,data=bareflow",
			"-o", "encrypt.format=luks,encrypt.key-secret=s0"), want: ErrUnsupportedFormat, message: "encrypted (LUKS)"},
		"backing file": {file: mk("create", "-f", "qcow2", "-b", base, "-F", "qcow2"), want: ErrUnsupportedFormat, message: "backing file"},
		"extended L2":  {file: mk("create", "-f", "qcow2", "-o", "extended_l2=on"), want: ErrUnsupportedFormat, message: "extended L2"},
		"data file":    {file: mk("create", "-f", "qcow2", "-o", "data_file="+filepath.Join(t.TempDir(), "data.raw")), want: ErrUnsupportedFormat, message: "external data file"},
		"table changed": {file: good, srv: func(s *server) {
			s.rangeBody = patch(func(b []byte) { be.PutUint64(b[l2+8*200:], 0) })
		}, message: "changed while it was read"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, tc.file)
			if tc.srv != nil {
				tc.srv(srv)
			}
			sum := sha256Of(tc.file)
			if tc.want == ErrChecksumMismatch {
				sum = sha256Of([]byte("other"))
			}
			dir := t.TempDir()
			job := Job{URL: srv.URL, Checksum: sum, Target: filepath.Join(dir, "disk"), StateDir: dir, CheckpointBytes: 1 << 20, BlockSize: 1 << 20}
			_, err := (&Writer{}).Write(t.Context(), job)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error: got %v, want %v with %q", err, tc.want, tc.message)
			}
			if tc.want == ErrChecksumMismatch {
				if _, err := os.Stat(statePath(dir, sum, job.Target)); !os.IsNotExist(err) {
					t.Errorf("state file after mismatch: got %v, want none", err)
				}
			}
		})
	}
}

func TestQcow2DirtyAccepted(t *testing.T) {
	dir := qcowImages(t)
	file := readFile(t, filepath.Join(dir, "v3 64K.qcow2"))
	file[79] |= qcowDirty
	srv := newServer(t, file)
	target := filepath.Join(t.TempDir(), "disk")
	if _, err := (&Writer{}).Write(t.Context(), Job{URL: srv.URL, Checksum: sha256Of(file), Target: target}); err != nil {
		t.Fatal(err)
	}
	checkContent(t, target, readFile(t, filepath.Join(dir, "v3 64K.raw")))
}

func TestQcow2Resume(t *testing.T) {
	dir := qcowImages(t)
	for _, tc := range []struct {
		variant  string
		noResume bool
		inline   bool // decoded by the stream itself, as with one CPU
	}{
		{"v3 64K", false, false},
		{"deflate 64K", false, false},
		{"deflate 64K", false, true},
		{"zstd 2M", false, false},
		{"deflate 2M", true, false},
		{"snapshot then write", false, false},
	} {
		name := tc.variant
		if tc.noResume {
			name += ", server ignores the resume's range"
		}
		if tc.inline {
			name += ", one decoder"
		}
		t.Run(name, func(t *testing.T) {
			if tc.inline {
				defer func(n int) { decodeWorkers = n }(decodeWorkers)
				decodeWorkers = 1
			}
			file := readFile(t, filepath.Join(dir, tc.variant+".qcow2"))
			want := readFile(t, filepath.Join(dir, tc.variant+".raw"))
			srv := newServer(t, file)
			srv.noResume = tc.noResume
			job := resumeJob(t, srv.URL, file)
			job.Target = garbageTarget(t, len(want))
			interruptAt(t, srv, job, int64(len(file))*3/4, 4<<20)
			srv.sent.Store(0)
			res, err := (&Writer{}).Write(t.Context(), job)
			if err != nil {
				t.Fatal(err)
			}
			checkContent(t, job.Target, want)
			if res.ResumedAt < 4<<20 || res.ResumedAt > int64(len(file)) {
				t.Errorf("resumed at: got %d, want between %d and %d", res.ResumedAt, 4<<20, len(file))
			}
			if res.Zeroed != 0 {
				t.Errorf("zeroed on resume: got %d, want 0 (done before the first checkpoint)", res.Zeroed)
			}
			// The tables again, then the file from the checkpoint.
			if sent := srv.sent.Load(); sent != res.Downloaded || (!tc.noResume && sent >= int64(len(file))) {
				t.Errorf("bytes sent on resume: got %d, want the %d downloaded, less than the file's %d", sent, res.Downloaded, len(file))
			}
			if _, err := os.Stat(statePath(job.StateDir, job.Checksum, job.Target)); !os.IsNotExist(err) {
				t.Errorf("state file after success: got %v, want none", err)
			}
		})
	}
}

// interruptAt is interrupt for a file whose checkpoints record a source
// offset.
func interruptAt(t *testing.T, srv *server, job Job, stallAfter, minOff int64) {
	t.Helper()
	srv.stallAfter.Store(stallAfter)
	defer srv.stallAfter.Store(0)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := (&Writer{}).Write(ctx, job)
		errc <- err
	}()
	path := statePath(job.StateDir, job.Checksum, job.Target)
	if !waitFor(func() bool {
		c, err := loadState(path, job.Checksum, job.Target)
		return err == nil && c != nil && c.SrcOffset >= minOff
	}) {
		cancel()
		t.Fatalf("no checkpoint at %d or beyond: %v", minOff, <-errc)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted write: got %v, want context.Canceled", err)
	}
	// Its handler counts what it sent once the connection is gone.
	srv.stalled.Wait()
}

// TestQcow2LoopDevice writes onto a block device that is not zeroed:
// BLKZEROOUT for the holes, O_DIRECT for the data.
func TestQcow2LoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a loop device")
	}
	losetup, err := exec.LookPath("losetup")
	if err != nil {
		t.Skipf("losetup is not installed: %v", err)
	}
	dir := qcowImages(t)
	for _, variant := range []string{"v3 64K", "zstd 64K"} {
		t.Run(variant, func(t *testing.T) {
			file := readFile(t, filepath.Join(dir, variant+".qcow2"))
			want := readFile(t, filepath.Join(dir, variant+".raw"))
			backing := garbageTarget(t, len(want)+1<<20)
			out, err := exec.Command(losetup, "-f", "--show", backing).Output()
			if err != nil {
				t.Skipf("no loop device: %v", err)
			}
			dev := strings.TrimSpace(string(out))
			t.Cleanup(func() { exec.Command(losetup, "-d", dev).Run() })
			srv := newServer(t, file)
			res, err := (&Writer{}).Write(t.Context(), Job{URL: srv.URL, Checksum: sha256Of(file), Target: dev, Direct: true})
			if err != nil {
				t.Fatal(err)
			}
			got := readFile(t, dev)
			if !bytes.Equal(got[:len(want)], want) {
				t.Fatal("device content differs from qemu-img's conversion")
			}
			if !bytes.Equal(got[len(want):], bytes.Repeat([]byte{0xab}, len(got)-len(want))) {
				t.Error("bytes past the image were changed")
			}
			if res.Zeroed == 0 || !res.Direct {
				t.Errorf("result %+v: want zeroed > 0 (BLKZEROOUT) and direct", res)
			}
		})
	}
}

// bytesRanges serves ranges of a file in memory.
type bytesRanges []byte

func (b bytesRanges) readRange(_ context.Context, off, n int64) ([]byte, error) {
	if off < 0 || off > int64(len(b)) {
		return nil, errors.New("out of range")
	}
	return b[off:min(off+n, int64(len(b)))], nil
}

func TestQcow2Map(t *testing.T) {
	dir := qcowImages(t)
	for name, tc := range map[string]struct {
		most                   int // entries
		compressed, sharing    int // at least: compressed clusters, and those that begin in the previous one's last sector
		standard               int // at least
		zeroFlags, l2TablesMin int // at least
	}{
		// Runs of clusters, one entry per run; the tables are the header,
		// the L1 table and one L2 table.
		"v3 64K": {most: 16, standard: 5},
		"v3 2M":  {most: 12, standard: 1},
		// Hundreds of L2 tables of 64 entries, read in groups.
		"v3 512": {most: 1000, standard: 5, l2TablesMin: 300},
		// One entry per compressed cluster; most share a sector with the
		// one before.
		"deflate 64K": {most: 3 + qcowSize>>16, compressed: 150, sharing: 100, standard: 1},
		"zstd 2M":     {most: 4 + qcowSize>>21, compressed: 5, sharing: 3, standard: 1},
		// Zero clusters that keep their offset in the file.
		"zero clusters": {most: 16, standard: 5, zeroFlags: 2},
	} {
		t.Run(name, func(t *testing.T) {
			file := readFile(t, filepath.Join(dir, name+".qcow2"))
			m, err := loadQcowMap(t.Context(), bytesRanges(file), file[:qcowHeadBytes], int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			checkMap(t, m)
			var compressed, sharing, standard, zeroFlags, tables int
			var end int64
			for _, e := range m.ext {
				switch m.kind(e) {
				case extCompressed:
					compressed++
					if m.host(e) < end {
						sharing++
					}
					end = m.hostEnd(e)
				case extTable:
					tables++
					if e.guest < 2 { // the header and the L1 table
						continue
					}
					tbl := file[m.host(e) : m.host(e)+m.tables[e.guest].n]
					for i := 0; i < len(tbl); i += qcowEntrySize {
						if v := binary.BigEndian.Uint64(tbl[i:]); v&qcowZeroFlag != 0 && v&qcowCompressed == 0 && v&qcowOffsetMask != 0 {
							zeroFlags++
						}
					}
				default:
					standard++
				}
			}
			if len(m.ext) > tc.most || compressed < tc.compressed || sharing < tc.sharing || standard < tc.standard ||
				zeroFlags < tc.zeroFlags || tables-2 < tc.l2TablesMin {
				t.Errorf("got %d entries, %d compressed (%d sharing a sector), %d standard runs, %d zero clusters with an offset, %d L2 tables; want %+v",
					len(m.ext), compressed, sharing, standard, zeroFlags, tables-2, tc)
			}
		})
	}
}

// checkMap checks a map's invariants: sorted by offset in the file, within
// the file; data and zero ranges tile the image.
func checkMap(t testing.TB, m *qcowMap) {
	t.Helper()
	type rng struct{ off, n int64 }
	var tiles []rng
	for i, e := range m.ext {
		if i > 0 && m.host(m.ext[i-1]) > m.host(e) {
			t.Fatalf("entry %d at %d after one at %d", i, m.host(e), m.host(m.ext[i-1]))
		}
		if m.host(e) < 0 || m.hostEnd(e) > m.fileSize || m.hostEnd(e) <= m.host(e) && m.kind(e) != extTable {
			t.Fatalf("entry %d: file range %d-%d outside the file of %d bytes", i, m.host(e), m.hostEnd(e), m.fileSize)
		}
		if m.kind(e) != extTable {
			tiles = append(tiles, rng{e.guest, m.guestLen(e)})
		}
	}
	var zeros int64
	for _, z := range m.zeros {
		tiles = append(tiles, rng{z.off, z.n})
		zeros += z.n
	}
	if zeros != m.zeroBytes {
		t.Fatalf("zero bytes: got %d, want the ranges' %d", m.zeroBytes, zeros)
	}
	slices.SortFunc(tiles, func(a, b rng) int { return cmp.Compare(a.off, b.off) })
	next := int64(0)
	for _, r := range tiles {
		if r.off != next || r.n <= 0 {
			t.Fatalf("image range %d+%d after %d: want data and zeros to tile the image", r.off, r.n, next)
		}
		next += r.n
	}
	if next != m.hdr.size {
		t.Fatalf("tiles end at %d, want the virtual size %d", next, m.hdr.size)
	}
}

// nonZeroPages counts the bytes of b's pages that are not all zeros.
func nonZeroPages(b []byte) int64 {
	var n int64
	for i := 0; i < len(b); i += pageSize {
		p := b[i:min(i+pageSize, len(b))]
		if !bytes.Equal(p, zeroPage[:len(p)]) {
			n += int64(len(p))
		}
	}
	return n
}

// waitFor polls cond for up to 20 seconds.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func FuzzQcow2Map(f *testing.F) {
	// A minimal version 3 header: 512-byte clusters, 64 KiB, nothing
	// allocated, the L1 table in the second cluster.
	seed := make([]byte, 1024)
	copy(seed, magicQcow2)
	be := binary.BigEndian
	be.PutUint32(seed[4:], 3)
	be.PutUint32(seed[20:], 9)
	be.PutUint64(seed[24:], 64<<10)
	be.PutUint32(seed[36:], 2)
	be.PutUint64(seed[40:], 512)
	be.PutUint32(seed[100:], 104)
	f.Add(seed)
	if _, err := exec.LookPath("qemu-img"); err == nil {
		dir := f.TempDir()
		raw := filepath.Join(dir, "raw")
		data := make([]byte, 24<<10)
		for i := 4 << 10; i < 7<<10; i++ {
			data[i] = byte(i * 7 / 5)
		}
		if err := os.WriteFile(raw, data, 0o644); err != nil {
			f.Fatal(err)
		}
		for i, opts := range [][]string{
			{"-o", "cluster_size=512"},
			{"-c", "-o", "cluster_size=512"},
			{"-c", "-o", "cluster_size=1k,compression_type=zstd"},
			{"-o", "cluster_size=512,compat=0.10"},
		} {
			img := filepath.Join(dir, "img"+string(rune('0'+i)))
			qemuImg(f, "qemu-img", append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, opts...), raw, img)...)
			f.Add(readFile(f, img))
		}
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		m, err := loadQcowMap(t.Context(), bytesRanges(file), file[:min(len(file), qcowHeadBytes)], int64(len(file)))
		if err != nil {
			if !errors.Is(err, ErrUnsupportedFormat) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("error %v: want one wrapping ErrUnsupportedFormat or ErrTruncated", err)
			}
			return
		}
		checkMap(t, m)
	})
}
