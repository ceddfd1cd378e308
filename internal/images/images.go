// Package images writes OS images from HTTP(S) onto a machine's disk. It runs
// in the ramdisk (cmd/bareflow-imagewriter) and streams: the HTTP body goes
// through the hash and the decompressor into a few fixed, page-aligned
// buffers that a writer drains onto the target at increasing offsets, so
// memory stays bounded whatever the image size and nothing is staged on a
// temporary disk.
//
//	HTTP body ─► hash (of the bytes as served) ─► gzip/zstd ─► buffers ─► target
//	                                                  (producer)      (writer: pwrite, fsync at checkpoints)
//
// For a compressed image the hash runs in its own goroutine, a few chunks
// ahead of the decompressor (hashAhead).
//
// Formats are raw, gzip, zstd and qcow2 (auto-detected by magic bytes). xz is
// refused: it needs a module the build does not have.
//
// A qcow2 image is read with a few range requests first (header, L1 and L2
// tables: the map of its clusters), then with one sequential GET whose bytes
// are hashed as served and, where they hold a data cluster, written at the
// cluster's place in the image (qcow2.go, qcowstream.go, docs/images.md).
//
// At each checkpoint the writer fsyncs the target and records in a state file
// how far the target is known good; a later run with Resume continues from
// there. A raw image resumes with an HTTP Range request and the digest state
// saved in the checkpoint, and so does a qcow2 image (from the file offset
// the checkpoint reached); a compressed image is downloaded again from the
// start and re-hashed, and the blocks below the checkpoint are not rewritten.
package images

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Format is the encoding of the image file.
type Format string

// Formats.
const (
	FormatAuto Format = "auto"
	FormatRaw  Format = "raw"
	FormatGzip Format = "gzip"
	FormatZstd Format = "zstd"
	// FormatQcow2 is a qcow2 image (versions 2 and 3) without backing file,
	// encryption or external data file.
	FormatQcow2 Format = "qcow2"
)

// Validate reports whether f is a known format.
func (f Format) Validate() error {
	switch f {
	case FormatAuto, FormatRaw, FormatGzip, FormatZstd, FormatQcow2:
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnsupportedFormat, string(f))
}

// Errors.
var (
	// ErrChecksumMismatch: the image file's digest is not the one expected.
	// The target then holds garbage; retrying the same URL will not help.
	ErrChecksumMismatch = errors.New("image checksum mismatch")
	// ErrTruncated: the download ended before the image did.
	ErrTruncated = errors.New("image download truncated")
	// ErrUnsupportedFormat: the image is xz, an unknown format name, or a
	// qcow2 image with a feature the writer does not take (backing file,
	// encryption, external data file, extended L2 entries), or its server
	// does not answer range requests.
	ErrUnsupportedFormat = errors.New("unsupported image format")
	// ErrCorruptImage: the qcow2 image's structure is invalid (a table
	// beyond the end of the file, overlapping clusters, reserved bits set, a
	// compressed cluster that does not decompress). It wraps
	// ErrUnsupportedFormat, so that a caller that only knows that error
	// fails for good too.
	ErrCorruptImage = fmt.Errorf("corrupt image (%w)", ErrUnsupportedFormat)
)

// Defaults of Job.
const (
	DefaultBlockSize          = 8 << 20
	DefaultCheckpointBytes    = 256 << 20
	DefaultCheckpointInterval = 5 * time.Second
	// buffers is how many blocks exist at once: one being filled, one being
	// written, the rest queued.
	buffers = 4
	// maxZstdWindow bounds the zstd decoder's memory (zstd --long=27).
	maxZstdWindow = 128 << 20
)

// Job describes one image write.
type Job struct {
	// URL of the image file, http or https.
	URL string
	// Header is added to every request (e.g. an authorization token).
	Header http.Header
	// Format of the image file; FormatAuto detects it from magic bytes.
	Format Format
	// Checksum of the image file as served.
	Checksum Checksum
	// Target is the block device or file written.
	Target string
	// TargetZeroed says the target reads as zeros (discarded, new, or a new
	// file): all-zero pages are skipped instead of written.
	TargetZeroed bool
	// StateDir holds checkpoint files; empty disables checkpoints.
	StateDir string
	// Resume continues from the checkpoint in StateDir when there is one.
	Resume bool
	// Direct writes with O_DIRECT when the target supports it.
	Direct bool
	// BlockSize is the size of a write buffer, a multiple of 4096
	// (default DefaultBlockSize).
	BlockSize int
	// CheckpointBytes and CheckpointInterval: a checkpoint is taken when
	// either much has been produced since the last one (defaults
	// DefaultCheckpointBytes and DefaultCheckpointInterval).
	CheckpointBytes    int64
	CheckpointInterval time.Duration
}

func (j *Job) validate() error {
	if !strings.HasPrefix(j.URL, "http://") && !strings.HasPrefix(j.URL, "https://") {
		return fmt.Errorf("url %q: want http or https", j.URL)
	}
	if j.Format == "" {
		j.Format = FormatAuto
	}
	if err := j.Format.Validate(); err != nil {
		return err
	}
	if err := j.Checksum.Validate(); err != nil {
		return err
	}
	if j.Target == "" {
		return errors.New("no target")
	}
	if j.BlockSize == 0 {
		j.BlockSize = DefaultBlockSize
	}
	if j.BlockSize < pageSize || j.BlockSize%pageSize != 0 {
		return fmt.Errorf("block size %d: want a positive multiple of %d", j.BlockSize, pageSize)
	}
	if j.CheckpointBytes <= 0 {
		j.CheckpointBytes = DefaultCheckpointBytes
	}
	if j.CheckpointInterval <= 0 {
		j.CheckpointInterval = DefaultCheckpointInterval
	}
	return nil
}

// Progress is a snapshot of a running write. Offsets count from the start of
// the image, including what a resumed run did not redo.
type Progress struct {
	// BytesIn is the position in the image file as served.
	BytesIn int64
	// BytesOut is the position in the image (decompressed). For qcow2, where
	// clusters do not come in the image's order, it counts the bytes of the
	// image accounted for: the zero ranges first, then each data cluster as
	// it passes.
	BytesOut int64
	// Written counts bytes written to the target by this run.
	Written int64
	// RateMBps is BytesOut's rate since the previous report, in MB (10⁶ bytes) per second.
	RateMBps float64
}

// Result describes a finished write.
type Result struct {
	// Checksum is the verified digest.
	Checksum Checksum
	// Format is the image's format (detected when the job said auto).
	Format Format
	// BytesIn is the size of the image file; Downloaded what this run
	// fetched (for qcow2, with the tables' range requests).
	BytesIn    int64
	Downloaded int64
	// BytesOut is the size of the image.
	BytesOut int64
	// Written counts bytes written to the target by this run.
	Written int64
	// Zeroed counts bytes this run made read as zeros without writing them
	// (qcow2 holes on a target not known to be zeroed: BLKZEROOUT or a
	// punched hole).
	Zeroed int64
	// ResumedAt is where this run started writing (0 for a fresh write);
	// for qcow2 it is an offset in the file.
	ResumedAt int64
	// Direct reports whether the writes bypassed the page cache.
	Direct bool
}

// Writer writes images. The zero value is ready to use.
type Writer struct {
	// Client fetches the image; nil means a client without timeout (the
	// context bounds the write).
	Client *http.Client
	// Logger receives checkpoints and fallbacks; nil discards them.
	Logger *slog.Logger
	// OnProgress, when set, is called every ProgressInterval (default 1 s)
	// from another goroutine.
	OnProgress       func(Progress)
	ProgressInterval time.Duration
}

// block is a filled buffer and where it goes; a non-nil ckpt is recorded
// once the block is written and the target synced. done is Progress.BytesOut
// once the block is written. A block may carry only a checkpoint (buf nil).
type block struct {
	buf  []byte
	off  int64
	done int64
	ckpt *checkpoint
}

// run is the state of one Write.
type run struct {
	w     *Writer
	job   Job
	log   *slog.Logger
	state string // state file path, "" without checkpoints
	base  checkpoint

	hash      hash.Hash
	srcStart  int64 // source offset of the response's first byte
	skipBelow int64 // target offsets below are already good: not rewritten
	skipSrc   int64 // qcow2: clusters below this file offset are already good
	size      int64 // of the image file, -1 when unknown
	format    Format
	// compressed reads the file under a gzip or zstd decoder; nil for
	// raw and qcow2 images.
	compressed *hashAhead

	bytesIn, bytesOut, written atomic.Int64
	metaIn                     atomic.Int64 // fetched by range requests for tables
}

// Write streams job.URL onto job.Target and verifies the checksum. A
// mismatch returns an error wrapping ErrChecksumMismatch.
func (w *Writer) Write(ctx context.Context, job Job) (Result, error) {
	if err := job.validate(); err != nil {
		return Result{}, err
	}
	if abs, err := filepath.Abs(job.Target); err == nil {
		job.Target = abs
	}
	r := &run{w: w, job: job, log: w.Logger, size: -1}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	var prev *checkpoint
	if job.StateDir != "" {
		r.state = statePath(job.StateDir, job.Checksum, job.Target)
		if job.Resume {
			var err error
			if prev, err = loadState(r.state, job.Checksum, job.Target); err != nil {
				return Result{}, err
			}
			if prev != nil && job.Format != FormatAuto && prev.Format != job.Format {
				prev = nil
			}
		}
	}
	t, err := openTarget(job.Target, job.Direct)
	if err != nil {
		return Result{}, err
	}
	defer t.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := r.report()
	res, err := r.write(ctx, cancel, t, prev)
	stop()
	if err != nil {
		if errors.Is(err, ErrChecksumMismatch) && r.state != "" {
			removeState(r.state)
		}
		return Result{}, err
	}
	if r.state != "" {
		removeState(r.state)
	}
	return res, nil
}

// write sends the request, detects the format and runs the pipeline; a qcow2
// image takes its own path (writeQcow2).
func (r *run) write(ctx context.Context, cancel context.CancelFunc, t *target, prev *checkpoint) (Result, error) {
	if r.job.Format == FormatQcow2 || (prev != nil && prev.Format == FormatQcow2) {
		return r.writeQcow2(ctx, cancel, t, prev)
	}
	body, err := r.open(ctx, prev)
	if err != nil {
		return Result{}, err
	}
	defer body.Close()
	br := bufio.NewReaderSize(body, 1<<20)
	if r.format == FormatAuto {
		magic, _ := br.Peek(8)
		r.format = detect(magic)
		if r.format == "" {
			return Result{}, fmt.Errorf("%w: %s", ErrUnsupportedFormat, describeMagic(magic))
		}
		if r.format == FormatQcow2 {
			// The tables come first, with range requests; the whole file
			// follows in a GET of its own.
			body.Close()
			r.srcStart, r.skipBelow = 0, 0
			return r.writeQcow2(ctx, cancel, t, nil)
		}
	}
	if r.format == FormatRaw && r.size > 0 && t.size > 0 && r.size > t.size {
		return Result{}, fmt.Errorf("image of %d bytes does not fit target %s of %d bytes", r.size, r.job.Target, t.size)
	}
	if r.srcStart > 0 {
		r.log.Info("resuming with a range request", "offset", r.srcStart)
	} else if r.skipBelow > 0 {
		r.log.Info("resuming from the start, not rewriting the verified part", "offset", r.skipBelow)
	}
	r.bytesIn.Store(r.srcStart)
	r.bytesOut.Store(r.srcStart)
	return r.pipeline(ctx, cancel, t, func(free <-chan []byte, full chan<- block) (int64, error) {
		return r.produce(ctx, br, free, full)
	})
}

// open sends the request, resuming from prev when it allows, and sets the
// run's hash, offsets and format.
func (r *run) open(ctx context.Context, prev *checkpoint) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.job.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("image request: %w", err)
	}
	for k, vs := range r.job.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rangeResume := prev != nil && prev.SrcOffset > 0 && len(prev.HashState) > 0 &&
		(prev.Format == FormatRaw && prev.SrcOffset == prev.DstOffset || prev.Format == FormatQcow2)
	if rangeResume {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", prev.SrcOffset))
		switch {
		case prev.ETag != "":
			req.Header.Set("If-Range", prev.ETag)
		case prev.LastModified != "":
			req.Header.Set("If-Range", prev.LastModified)
		}
	}
	client := r.w.Client
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get image: %w", err)
	}
	fail := func(err error) (io.ReadCloser, error) {
		resp.Body.Close()
		return nil, err
	}
	r.hash = r.job.Checksum.newHash()
	if r.format == "" {
		r.format = r.job.Format
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && rangeResume:
		start, size, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != prev.SrcOffset || (prev.Size >= 0 && size != prev.Size) {
			return fail(fmt.Errorf("get image: unexpected content range %q for offset %d", resp.Header.Get("Content-Range"), prev.SrcOffset))
		}
		if err := r.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(prev.HashState); err != nil {
			return fail(fmt.Errorf("restore hash state: %w", err))
		}
		r.srcStart, r.size, r.format = start, size, prev.Format
	case resp.StatusCode == http.StatusOK:
		r.size = resp.ContentLength
		switch {
		case prev == nil:
		case prev.Format == FormatQcow2:
			r.skipSrc = prev.SrcOffset
		default:
			// The server sent the whole file (no range support, or the file
			// changed): re-hash from the start, rewrite only past the
			// checkpoint; the checksum decides at the end.
			r.skipBelow = prev.DstOffset
		}
	default:
		return fail(fmt.Errorf("get image: %s", resp.Status))
	}
	r.base = checkpoint{
		Version:      stateVersion,
		Checksum:     r.job.Checksum.String(),
		Target:       r.job.Target,
		URL:          r.job.URL,
		Size:         r.size,
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
	}
	if prev != nil && r.srcStart > 0 {
		r.base.ETag, r.base.LastModified = prev.ETag, prev.LastModified
	}
	return resp.Body, nil
}

// parseContentRange parses "bytes START-END/SIZE" (SIZE may be "*": -1).
func parseContentRange(s string) (start, size int64, err error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, errors.New("not a byte range")
	}
	rng, total, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, errors.New("no size")
	}
	first, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, errors.New("no range")
	}
	if start, err = strconv.ParseInt(first, 10, 64); err != nil {
		return 0, 0, err
	}
	size = -1
	if total != "*" {
		if size, err = strconv.ParseInt(total, 10, 64); err != nil {
			return 0, 0, err
		}
	}
	return start, size, nil
}

// hashingReader hashes and counts what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n *atomic.Int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.h.Write(p[:n])
		h.n.Add(int64(n))
	}
	return n, err
}

// decoder returns the reader of the image from the file's reader.
// It also returns the reader of the file itself (hashed), to read what
// follows the end of a compressed stream.
func (r *run) decoder(br *bufio.Reader) (src, file io.Reader, closeSrc func(), err error) {
	if r.format == FormatRaw {
		hr := &hashingReader{r: br, h: r.hash, n: &r.bytesIn}
		return hr, hr, func() {}, nil
	}
	ha := newHashAhead(br, r.hash, &r.bytesIn)
	r.compressed = ha
	switch r.format {
	case FormatGzip:
		z, err := gzip.NewReader(ha)
		if err != nil {
			ha.close()
			return nil, nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return z, ha, func() { z.Close(); ha.close() }, nil
	default: // FormatZstd
		z, err := zstd.NewReader(ha, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderLowmem(true), zstd.WithDecoderConcurrency(4))
		if err != nil {
			ha.close()
			return nil, nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return z, ha, func() { z.Close(); ha.close() }, nil
	}
}

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	magicQcow2 = []byte{'Q', 'F', 'I', 0xfb}
)

// detect returns the format of a file starting with magic, or "" for one
// this package does not write.
func detect(magic []byte) Format {
	switch {
	case bytes.HasPrefix(magic, magicZstd):
		return FormatZstd
	case bytes.HasPrefix(magic, magicGzip):
		return FormatGzip
	case bytes.HasPrefix(magic, magicQcow2):
		return FormatQcow2
	case bytes.HasPrefix(magic, magicXz):
		return ""
	}
	return FormatRaw
}

func describeMagic(magic []byte) string {
	if bytes.HasPrefix(magic, magicXz) {
		return "xz (not supported: decompress it, or recompress with zstd)"
	}
	return "unknown"
}

// producer fills buffers taken from free and sends them to full, in the
// order they are to be written; it returns the image size once the file is
// read and its checksum verified.
type producer func(free <-chan []byte, full chan<- block) (int64, error)

// pipeline runs the producer (download, hash, decompress) in a goroutine and
// the writer in this one.
func (r *run) pipeline(ctx context.Context, cancel context.CancelFunc, t *target, produce producer) (Result, error) {
	free := make(chan []byte, buffers)
	for range buffers {
		free <- alignedBuffer(r.job.BlockSize)
	}
	full := make(chan block, buffers)

	var (
		prodErr error
		total   int64
	)
	go func() {
		defer close(full)
		total, prodErr = produce(free, full)
	}()

	var werr error
	for b := range full {
		if werr == nil {
			werr = r.writeBlock(t, b)
			if werr != nil {
				cancel()
			}
		}
		if b.buf != nil {
			free <- b.buf[:cap(b.buf)]
		}
	}
	// full is closed: the producer has returned.
	if werr != nil {
		return Result{}, werr
	}
	if prodErr != nil {
		return Result{}, prodErr
	}
	if err := t.finish(total); err != nil {
		return Result{}, err
	}
	return Result{
		Checksum:   r.job.Checksum,
		Format:     r.format,
		BytesIn:    r.bytesIn.Load(),
		Downloaded: r.bytesIn.Load() - r.srcStart + r.metaIn.Load(),
		BytesOut:   total,
		Written:    t.written,
		Zeroed:     t.zeroed,
		ResumedAt:  max(r.srcStart, r.skipBelow, r.skipSrc),
		Direct:     t.Direct(),
	}, nil
}

func (r *run) writeBlock(t *target, b block) error {
	p, off := b.buf, b.off
	if end := off + int64(len(p)); end <= r.skipBelow {
		p = nil
	} else if off < r.skipBelow {
		p, off = p[r.skipBelow-off:], r.skipBelow
	}
	var err error
	switch {
	case len(p) == 0:
	case r.job.TargetZeroed:
		err = t.writeSkippingZeros(p, off)
	default:
		err = t.writeAt(p, off)
	}
	if err != nil {
		return err
	}
	r.written.Store(t.written)
	r.bytesOut.Store(b.done)
	if b.ckpt == nil {
		return nil
	}
	if err := t.sync(); err != nil {
		return err
	}
	if err := saveState(r.state, b.ckpt); err != nil {
		return err
	}
	r.log.Debug("checkpoint", "offset", b.ckpt.DstOffset)
	return nil
}

// produce fills buffers from the image and sends them to full; it returns
// the image size once the file is read and its checksum verified.
func (r *run) produce(ctx context.Context, br *bufio.Reader, free <-chan []byte, full chan<- block) (int64, error) {
	src, file, closeSrc, err := r.decoder(br)
	if err != nil {
		return 0, err
	}
	defer closeSrc()

	off := r.srcStart
	lastOff, lastTime := off, time.Now()
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		n, err := fill(src, buf)
		if err != nil && err != io.EOF {
			return 0, r.readError(err)
		}
		if n > 0 {
			b := block{buf: buf[:n], off: off, done: off + int64(n)}
			off += int64(n)
			if r.state != "" && off > r.skipBelow && err == nil &&
				(off-lastOff >= r.job.CheckpointBytes || time.Since(lastTime) >= r.job.CheckpointInterval) {
				b.ckpt = r.checkpoint(off)
				lastOff, lastTime = off, time.Now()
			}
			select {
			case full <- b:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if err == io.EOF {
			break
		}
	}
	// The rest of the file (after a compressed stream's end) is hashed too.
	if _, err := io.Copy(io.Discard, file); err != nil {
		return 0, r.readError(err)
	}
	if r.size >= 0 && r.bytesIn.Load() != r.size {
		return 0, fmt.Errorf("%w: got %d of %d bytes", ErrTruncated, r.bytesIn.Load(), r.size)
	}
	if err := r.verify(); err != nil {
		return 0, err
	}
	return off, nil
}

// verify compares the digest of the file with the one expected.
func (r *run) verify() error {
	if sum := r.hash.Sum(nil); !bytes.Equal(sum, r.job.Checksum.Sum) {
		return fmt.Errorf("%w: got %s, want %s", ErrChecksumMismatch,
			Checksum{Algorithm: r.job.Checksum.Algorithm, Sum: sum}, r.job.Checksum)
	}
	return nil
}

// checkpoint describes the state once the image's first off bytes are on the
// target. Only a raw image's hash state matches a source offset.
func (r *run) checkpoint(off int64) *checkpoint {
	c := r.base
	c.Format = r.format
	c.DstOffset = off
	c.SrcOffset = r.bytesIn.Load()
	if r.format == FormatRaw {
		if st, err := r.hash.(encoding.BinaryMarshaler).MarshalBinary(); err == nil {
			c.HashState = st
		}
	}
	return &c
}

func (r *run) readError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: at byte %d: %v", ErrTruncated, r.bytesIn.Load(), err)
	}
	// A decoder that fails while the file reads fine (a bad frame, a CRC
	// that does not match) has found the compressed data corrupt: another
	// try would fail the same way.
	if r.compressed != nil && !r.compressed.sourceFailed() && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s stream invalid at byte %d of the file: %v", ErrCorruptImage, r.format, r.bytesIn.Load(), err)
	}
	return fmt.Errorf("read image at byte %d: %w", r.bytesIn.Load(), err)
}

// fill reads into buf until it is full or the reader ends (io.EOF, with the
// bytes read).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// report calls OnProgress every interval until the returned func is called.
func (r *run) report() (stop func()) {
	if r.w.OnProgress == nil {
		return func() {}
	}
	every := r.w.ProgressInterval
	if every <= 0 {
		every = time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		last, lastTime := r.bytesOut.Load(), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				out := r.bytesOut.Load()
				rate := float64(out-last) / now.Sub(lastTime).Seconds() / 1e6
				last, lastTime = out, now
				r.w.OnProgress(Progress{BytesIn: r.bytesIn.Load(), BytesOut: out, Written: r.written.Load(), RateMBps: rate})
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
