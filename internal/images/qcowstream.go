package images

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"time"
)

// A qcow2 image is written in three steps:
//
//  1. Range requests fetch the header, the L1 table and the L2 tables (one
//     entry of 8 bytes per cluster: 1/8192 of the virtual size with 64 KiB
//     clusters), and loadQcowMap turns them into the map.
//  2. On a target not known to be zeroed, the image's zero ranges are made
//     zero (target.zeroRange), before any data: a checkpoint therefore
//     implies they are done.
//  3. One GET streams the file from its start (or from the checkpoint, with
//     the digest state it saved). Every byte is hashed as served; as the
//     stream passes a data cluster it goes, decompressed if need be, into
//     the write buffers at its offset in the image; as it passes a table
//     its bytes are compared with those the map was built from, so that
//     what is written derives only from bytes the checksum covers.
//
// Clusters arrive in the file's order, so blocks go to the target at
// increasing offsets only when the image was written in order (qemu-img
// convert writes it so); otherwise the writes jump about, which a disk takes
// as well.

// qcowZeroStep bounds a zero range handed to the target at once, so that a
// cancellation and the progress reports are not held up by one call.
const qcowZeroStep = 1 << 30

// httpRanges reads parts of the image file with range requests.
type httpRanges struct {
	r *run
	// size of the file, set by the first response (before any concurrent
	// use) and checked against the later ones.
	size int64
}

func (h *httpRanges) readRange(ctx context.Context, off, n int64) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.r.job.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("image request: %w", err)
	}
	for k, vs := range h.r.job.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	client := h.r.w.Client
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get image bytes %d-%d: %w", off, off+n-1, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK:
		return nil, unsupported("needs a server that answers range requests (got %s for bytes %d-%d)", resp.Status, off, off+n-1)
	case http.StatusRequestedRangeNotSatisfiable:
		return nil, corrupt("bytes %d-%d are beyond the end of the file", off, off+n-1)
	default:
		return nil, fmt.Errorf("get image bytes %d-%d: %s", off, off+n-1, resp.Status)
	}
	start, size, err := parseContentRange(resp.Header.Get("Content-Range"))
	if err != nil || start != off || size < 0 {
		return nil, fmt.Errorf("get image bytes %d-%d: unexpected content range %q", off, off+n-1, resp.Header.Get("Content-Range"))
	}
	if h.size < 0 {
		h.size = size
	} else if size != h.size {
		return nil, fmt.Errorf("image changed while it was read: %d bytes, then %d", h.size, size)
	}
	buf := make([]byte, min(n, size-off))
	m, err := io.ReadFull(resp.Body, buf)
	h.r.metaIn.Add(int64(m))
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: bytes %d-%d: got %d", ErrTruncated, off, off+int64(len(buf))-1, m)
	}
	if err != nil {
		return nil, fmt.Errorf("get image bytes %d-%d: %w", off, off+n-1, err)
	}
	return buf, nil
}

// writeQcow2 writes a qcow2 image: its map from range requests, the zero
// ranges, then one GET of the file (from the checkpoint when resuming).
func (r *run) writeQcow2(ctx context.Context, cancel context.CancelFunc, t *target, prev *checkpoint) (Result, error) {
	r.format = FormatQcow2
	rr := &httpRanges{r: r, size: -1}
	head, err := rr.readRange(ctx, 0, qcowHeadBytes)
	if err != nil {
		return Result{}, fmt.Errorf("read qcow2 header: %w", err)
	}
	q, err := loadQcowMap(ctx, rr, head, rr.size)
	if err != nil {
		return Result{}, err
	}
	r.log.Info("qcow2 map", "version", q.hdr.version, "cluster_size", q.hdr.clusterSize(), "virtual_size", q.hdr.size,
		"compression", q.hdr.compression.String(), "dirty", q.hdr.dirty, "extents", len(q.ext), "zero_ranges", len(q.zeros),
		"map_bytes", q.memory(), "tables_bytes", r.metaIn.Load())
	if t.size > 0 && q.hdr.size > t.size {
		return Result{}, fmt.Errorf("image of %d bytes does not fit target %s of %d bytes", q.hdr.size, r.job.Target, t.size)
	}
	if prev != nil && !q.resumable(prev) {
		r.log.Info("the checkpoint is of other qcow2 tables: starting over", "offset", prev.SrcOffset)
		prev = nil
	}
	if prev == nil && !r.job.TargetZeroed {
		if err := r.zeroQcow2(ctx, t, q); err != nil {
			return Result{}, err
		}
	}
	body, err := r.open(ctx, prev)
	if err != nil {
		return Result{}, err
	}
	defer body.Close()
	if r.size >= 0 && r.size != q.fileSize {
		return Result{}, fmt.Errorf("image changed while it was read: %d bytes, then %d", q.fileSize, r.size)
	}
	r.size = q.fileSize
	if r.srcStart > 0 {
		r.log.Info("resuming with a range request", "offset", r.srcStart)
	} else if r.skipSrc > 0 {
		r.log.Info("resuming from the start, not rewriting the verified part", "offset", r.skipSrc)
	}
	s := newQcowStream(ctx, r, q, body)
	r.bytesIn.Store(r.srcStart)
	r.bytesOut.Store(s.out)
	return r.pipeline(ctx, cancel, t, s.run)
}

// zeroQcow2 makes the image's zero ranges read as zeros on the target.
func (r *run) zeroQcow2(ctx context.Context, t *target, q *qcowMap) error {
	start := time.Now()
	var done int64
	for _, z := range q.zeros {
		for off, end := z.off, z.off+z.n; off < end; {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(end-off, qcowZeroStep)
			if err := t.zeroRange(off, n); err != nil {
				return err
			}
			off += n
			done += n
			r.bytesOut.Store(done)
			r.written.Store(t.written)
		}
	}
	r.log.Info("zero ranges done", "bytes", done, "ranges", len(q.zeros), "zeroed", t.zeroed, "written", t.written,
		"seconds", time.Since(start).Seconds())
	return nil
}

// resumable reports whether c is a checkpoint of this image and these tables.
func (m *qcowMap) resumable(c *checkpoint) bool {
	if c.Format != FormatQcow2 || c.MapSum != m.sum || c.Size != m.fileSize || c.SrcOffset < 0 || c.SrcOffset > m.fileSize {
		return false
	}
	for _, e := range m.ext {
		if m.kind(e) == extTable && m.host(e) < c.SrcOffset && c.SrcOffset < m.hostEnd(e) {
			return false
		}
	}
	return true
}

// qcowStream reads the file once and fills the write buffers (the producer of
// the pipeline).
//
// Bytes are hashed as they are read, except the last compressed cluster's,
// which wait in win until the stream moves past its start: the next
// compressed cluster may begin inside its last sector. A checkpoint is taken
// at hashed, which is never past the start of a cluster not yet wholly in the
// buffers, so that a resume from it restores the digest and finds every
// cluster it needs after it.
type qcowStream struct {
	ctx context.Context
	r   *run
	q   *qcowMap
	src *bufio.Reader
	c   int64 // cluster size

	pos    int64  // file offset of the next byte read
	hashed int64  // the file's bytes below are in r.hash; [hashed, pos) are in win
	win    []byte // the file's bytes [hashed, pos)
	first  int    // index in q.ext to start from
	hard   int    // index of the next table or standard run after a compressed cluster

	free <-chan []byte
	full chan<- block
	cur  []byte // block being filled, nil when none
	at   int64  // offset in the image of cur's first byte
	out  int64  // Progress.BytesOut: zero ranges, then data put in blocks

	cluster  []byte // one decompressed cluster
	scratch  []byte // discarded bytes and tables pass through it
	dec      clusterDecoder
	lastCkpt int64
	lastTime time.Time

	// Compressed clusters are decoded by workers (when there is more than
	// one CPU) and put into blocks in the file's order: pending holds those
	// submitted and not yet in blocks, oldest first. No checkpoint is taken
	// while any is pending.
	workers int // 0: the stream decodes
	jobs    chan *decodeJob
	pending []*decodeJob
	spare   []*decodeJob
	maxJobs int
}

// decodeJob is one compressed cluster for a worker.
type decodeJob struct {
	src, dst []byte
	guest    int64
	host     int64
	err      error
	done     chan struct{}
}

// qcowJobsBytes bounds the memory of the clusters in flight (compressed and
// decoded).
const qcowJobsBytes = 32 << 20

// decodeWorkers is the most workers that decode compressed clusters (fewer
// with fewer CPUs; with one, the stream decodes them itself).
var decodeWorkers = 8

func newQcowStream(ctx context.Context, r *run, q *qcowMap, body io.Reader) *qcowStream {
	s := &qcowStream{
		ctx: ctx, r: r, q: q, src: bufio.NewReaderSize(body, 1<<20), c: q.hdr.clusterSize(),
		pos: r.srcStart, hashed: r.srcStart,
		out:      q.zeroBytes,
		lastCkpt: max(r.srcStart, r.skipSrc), lastTime: time.Now(),
		scratch: make([]byte, 256<<10),
		dec:     clusterDecoder{kind: q.hdr.compression},
	}
	// Resuming: every cluster that starts below the offset is written, and
	// a run across it from there on.
	from := r.srcStart
	i := sort.Search(len(q.ext), func(i int) bool { return q.host(q.ext[i]) >= from })
	if i > 0 && q.kind(q.ext[i-1]) == 0 && q.hostEnd(q.ext[i-1]) > from {
		i--
		s.out += from - q.host(q.ext[i])
	}
	for _, e := range q.ext[:i] {
		s.out += q.guestLen(e)
	}
	s.first = i
	if w := min(runtime.GOMAXPROCS(0), decodeWorkers); w > 1 {
		s.workers = w
		s.maxJobs = max(2, min(2*w, qcowJobsBytes/int(3*s.c)))
	}
	return s
}

// decodeWorker decodes clusters until jobs is closed.
func decodeWorker(kind qcowCompressionType, jobs <-chan *decodeJob) {
	dec := clusterDecoder{kind: kind}
	defer dec.close()
	for j := range jobs {
		j.err = dec.decode(j.dst, j.src)
		close(j.done)
	}
}

// run streams the file; it returns the image size once the file is read and
// its checksum verified.
func (s *qcowStream) run(free <-chan []byte, full chan<- block) (int64, error) {
	s.free, s.full = free, full
	defer s.dec.close()
	defer func() {
		if s.jobs != nil {
			close(s.jobs) // the workers end once their cluster is done
		}
	}()
	for i := s.first; i < len(s.q.ext); i++ {
		e := s.q.ext[i]
		var err error
		switch s.q.kind(e) {
		case extTable:
			err = s.table(e)
		case extCompressed:
			err = s.compressed(i, e)
		default:
			err = s.standard(e)
		}
		if err != nil {
			return 0, err
		}
	}
	if err := s.drain(); err != nil {
		return 0, err
	}
	if err := s.gap(s.q.fileSize); err != nil {
		return 0, err
	}
	// The file should end here; whatever follows is hashed too.
	for {
		n, err := s.src.Read(s.scratch)
		s.r.hash.Write(s.scratch[:n])
		s.pos += int64(n)
		s.hashed = s.pos
		s.r.bytesIn.Store(s.pos)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, s.r.readError(err)
		}
	}
	if s.pos != s.q.fileSize {
		return 0, fmt.Errorf("image changed while it was read: %d bytes, then %d", s.q.fileSize, s.pos)
	}
	if err := s.flush(); err != nil {
		return 0, err
	}
	if err := s.r.verify(); err != nil {
		return 0, err
	}
	return s.q.hdr.size, nil
}

// standard puts a run of standard clusters into blocks, reading the stream
// straight into them.
func (s *qcowStream) standard(e extent) error {
	if err := s.drain(); err != nil {
		return err
	}
	host, g, n := s.q.host(e), e.guest, s.q.guestLen(e)
	if host < s.pos { // resuming inside the run
		skip := s.pos - host
		host, g, n = s.pos, g+skip, n-skip
	}
	if err := s.gap(host); err != nil {
		return err
	}
	for n > 0 {
		if s.pos < s.r.skipSrc { // written before the checkpoint being resumed
			k := min(n, s.r.skipSrc-s.pos)
			if err := s.discard(k); err != nil {
				return err
			}
			g, n, s.out = g+k, n-k, s.out+k
			continue
		}
		if err := s.room(g); err != nil {
			return err
		}
		k := min(n, int64(cap(s.cur)-len(s.cur)))
		if err := s.readHashed(s.cur[len(s.cur) : len(s.cur)+int(k)]); err != nil {
			return err
		}
		s.cur = s.cur[:len(s.cur)+int(k)]
		g, n, s.out = g+k, n-k, s.out+k
	}
	return nil
}

// compressed decompresses the cluster of extent i into blocks.
func (s *qcowStream) compressed(i int, e extent) error {
	ext := s.q.ext
	start, end := s.q.host(e), s.q.hostEnd(e)
	// The sectors named may run into the next table or standard cluster; the
	// data cannot.
	if s.hard <= i {
		s.hard = i + 1
	}
	for s.hard < len(ext) && s.q.kind(ext[s.hard]) == extCompressed {
		s.hard++
	}
	if s.hard < len(ext) {
		end = min(end, s.q.host(ext[s.hard]))
	}
	if end <= start {
		return corrupt("compressed cluster of image offset %d at %d has no data before the next cluster", e.guest, start)
	}
	if start >= s.pos {
		if err := s.gap(start); err != nil {
			return err
		}
	} else {
		s.release(start)
	}
	if end > s.pos {
		if err := s.readWin(end - s.pos); err != nil {
			return err
		}
	}
	g, n := e.guest, s.q.guestLen(e)
	if start < s.r.skipSrc {
		s.out += n
		return nil
	}
	src := s.win[start-s.hashed : end-s.hashed]
	if s.workers == 0 {
		if s.cluster == nil {
			s.cluster = make([]byte, s.c)
		}
		if err := s.dec.decode(s.cluster, src); err != nil {
			return corrupt("compressed cluster of image offset %d at %d: %v", g, start, err)
		}
		return s.emit(s.cluster[:n], g)
	}
	switch {
	case s.checkpointTime():
		// A checkpoint waits for the clusters in flight, then goes with
		// the block being filled.
		if err := s.drain(); err != nil {
			return err
		}
		if err := s.flush(); err != nil {
			return err
		}
	case len(s.pending) == s.maxJobs:
		if err := s.drain(); err != nil {
			return err
		}
	}
	if s.jobs == nil {
		s.jobs = make(chan *decodeJob, s.maxJobs)
		for range min(s.workers, s.maxJobs) {
			go decodeWorker(s.q.hdr.compression, s.jobs)
		}
	}
	var j *decodeJob
	if k := len(s.spare); k > 0 {
		j, s.spare = s.spare[k-1], s.spare[:k-1]
	} else {
		j = &decodeJob{dst: make([]byte, s.c)}
	}
	j.src = append(j.src[:0], src...)
	j.dst, j.guest, j.host, j.err, j.done = j.dst[:n], g, start, nil, make(chan struct{})
	s.pending = append(s.pending, j)
	s.jobs <- j
	return nil
}

// drain puts the clusters being decoded into blocks, in order.
func (s *qcowStream) drain() error {
	for len(s.pending) > 0 {
		j := s.pending[0]
		select {
		case <-j.done:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
		if j.err != nil {
			return corrupt("compressed cluster of image offset %d at %d: %v", j.guest, j.host, j.err)
		}
		if err := s.emit(j.dst, j.guest); err != nil {
			return err
		}
		s.pending = s.pending[1:]
		s.spare = append(s.spare, j)
	}
	s.pending = s.pending[:0]
	return nil
}

// emit copies p, the image's bytes at g, into blocks.
func (s *qcowStream) emit(p []byte, g int64) error {
	for len(p) > 0 {
		if err := s.room(g); err != nil {
			return err
		}
		k := copy(s.cur[len(s.cur):cap(s.cur)], p)
		s.cur = s.cur[:len(s.cur)+k]
		p, g, s.out = p[k:], g+int64(k), s.out+int64(k)
	}
	return nil
}

// table checks that the stream serves the table the map was built from.
func (s *qcowStream) table(e extent) error {
	if err := s.drain(); err != nil {
		return err
	}
	start, tb := s.q.host(e), s.q.tables[e.guest]
	if err := s.gap(start); err != nil {
		return err
	}
	h := sha256.New()
	for left := tb.n; left > 0; {
		k := min(left, int64(len(s.scratch)))
		if err := s.readHashed(s.scratch[:k]); err != nil {
			return err
		}
		h.Write(s.scratch[:k])
		left -= k
	}
	if !bytes.Equal(h.Sum(nil), tb.sum[:]) {
		return fmt.Errorf("image changed while it was read: the qcow2 table at %d differs from the one read before", start)
	}
	return nil
}

// room makes cur a block that continues at offset g of the image and has
// room left, sending the current one if need be.
func (s *qcowStream) room(g int64) error {
	if s.cur != nil && (s.at+int64(len(s.cur)) != g || len(s.cur) == cap(s.cur)) {
		if err := s.flush(); err != nil {
			return err
		}
	}
	if s.cur != nil {
		return nil
	}
	select {
	case buf := <-s.free:
		s.cur, s.at = buf[:0], g
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// flush sends the block being filled, with a checkpoint when one is due; it
// sends a checkpoint alone when there is no block and one is due.
func (s *qcowStream) flush() error {
	var ckpt *checkpoint
	if s.due() {
		ckpt = s.r.qcowCheckpoint(s.hashed, s.out, s.q.sum)
		s.lastCkpt, s.lastTime = s.hashed, time.Now()
	}
	if s.cur == nil && ckpt == nil {
		return nil
	}
	select {
	case s.full <- block{buf: s.cur, off: s.at, done: s.out, ckpt: ckpt}:
		s.cur = nil
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// gap reads up to offset to (hashed), with checkpoints on the way.
func (s *qcowStream) gap(to int64) error {
	s.release(s.pos)
	return s.discard(to - s.pos)
}

// discard reads n bytes (hashed) and drops them.
func (s *qcowStream) discard(n int64) error {
	for n > 0 {
		k := min(n, int64(len(s.scratch)))
		if err := s.readHashed(s.scratch[:k]); err != nil {
			return err
		}
		n -= k
		if err := s.flushIfDue(); err != nil {
			return err
		}
	}
	return nil
}

// flushIfDue sends a checkpoint (with the block being filled, if any) when
// one is due.
func (s *qcowStream) flushIfDue() error {
	if !s.due() {
		return nil
	}
	return s.flush()
}

// due reports whether a checkpoint can be taken now and is due.
func (s *qcowStream) due() bool {
	return len(s.pending) == 0 && s.checkpointTime()
}

// checkpointTime reports whether much was read or much time passed since
// the last checkpoint.
func (s *qcowStream) checkpointTime() bool {
	return s.r.state != "" && s.hashed > s.lastCkpt &&
		(s.hashed-s.lastCkpt >= s.r.job.CheckpointBytes || time.Since(s.lastTime) >= s.r.job.CheckpointInterval)
}

// read reads exactly len(p) bytes of the file.
func (s *qcowStream) read(p []byte) error {
	n, err := io.ReadFull(s.src, p)
	s.pos += int64(n)
	s.r.bytesIn.Store(s.pos)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return s.r.readError(err)
	}
	return nil
}

// readHashed reads p and hashes it; nothing waits in win.
func (s *qcowStream) readHashed(p []byte) error {
	if err := s.read(p); err != nil {
		return err
	}
	s.r.hash.Write(p)
	s.hashed = s.pos
	return nil
}

// readWin reads n bytes into win, not hashed yet.
func (s *qcowStream) readWin(n int64) error {
	s.win = slices.Grow(s.win, int(n))
	l := len(s.win)
	if err := s.read(s.win[l : l+int(n)]); err != nil {
		return err
	}
	s.win = s.win[:l+int(n)]
	return nil
}

// release hashes the bytes of win below offset to and drops them.
func (s *qcowStream) release(to int64) {
	if to <= s.hashed {
		return
	}
	k := to - s.hashed
	s.r.hash.Write(s.win[:k])
	s.win = s.win[:copy(s.win, s.win[k:])]
	s.hashed = to
}

// qcowCheckpoint describes the state once every cluster that starts below
// src in the file is on the target; the hash holds the file's first src
// bytes.
func (r *run) qcowCheckpoint(src, out int64, mapSum string) *checkpoint {
	c := r.base
	c.Format = FormatQcow2
	c.SrcOffset = src
	c.DstOffset = out
	c.MapSum = mapSum
	if st, err := r.hash.(encoding.BinaryMarshaler).MarshalBinary(); err == nil {
		c.HashState = st
	}
	return &c
}
