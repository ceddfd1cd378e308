package images

import (
	"hash"
	"io"
	"sync/atomic"
)

// Sizes of hashAhead.
const (
	hashChunk  = 1 << 20
	hashChunks = 4
)

// hashAhead reads, hashes and counts the file in its own goroutine, up to
// hashChunks chunks ahead of its reader, so that hashing runs in parallel
// with decompression. Everything Read returns has been hashed. It is only for
// compressed images: a raw image's checkpoints need a hash state that matches
// the bytes written, which a hash running ahead does not have.
type hashAhead struct {
	free chan []byte
	data chan hashedChunk
	stop chan struct{}
	cur  hashedChunk
	off  int
	// failed is set once the file itself failed to read (an error other
	// than its end): a decoder's error after that may come from the
	// transport; before it, it is about the data.
	failed atomic.Bool
}

type hashedChunk struct {
	buf []byte
	err error
}

func newHashAhead(src io.Reader, h hash.Hash, n *atomic.Int64) *hashAhead {
	a := &hashAhead{
		free: make(chan []byte, hashChunks),
		data: make(chan hashedChunk, hashChunks),
		stop: make(chan struct{}),
	}
	for range hashChunks {
		a.free <- make([]byte, hashChunk)
	}
	go a.run(src, h, n)
	return a
}

func (a *hashAhead) run(src io.Reader, h hash.Hash, n *atomic.Int64) {
	for {
		var buf []byte
		select {
		case buf = <-a.free:
		case <-a.stop:
			return
		}
		m, err := src.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			n.Add(int64(m))
		}
		select {
		case a.data <- hashedChunk{buf: buf[:m], err: err}:
		case <-a.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read returns hashed bytes, then the error that ended the file.
func (a *hashAhead) Read(p []byte) (int, error) {
	for a.off == len(a.cur.buf) {
		if a.cur.err != nil {
			if a.cur.err != io.EOF {
				a.failed.Store(true)
			}
			return 0, a.cur.err
		}
		if a.cur.buf != nil {
			a.free <- a.cur.buf[:cap(a.cur.buf)]
		}
		a.cur, a.off = <-a.data, 0
	}
	n := copy(p, a.cur.buf[a.off:])
	a.off += n
	return n, nil
}

// sourceFailed reports whether reading the file itself failed.
func (a *hashAhead) sourceFailed() bool { return a.failed.Load() }

// close stops the goroutine once its read in progress returns (the caller
// closes the response body or cancels the request to end it).
func (a *hashAhead) close() { close(a.stop) }
