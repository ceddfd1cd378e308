package images

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

func TestHashAhead(t *testing.T) {
	img := buildImage(t)
	for name, tc := range map[string]struct {
		src     io.Reader
		wantErr error
	}{
		"whole file":  {bytes.NewReader(img.zst), nil},
		"short reads": {iotest.HalfReader(bytes.NewReader(img.zst)), nil},
		"read error":  {io.MultiReader(bytes.NewReader(img.zst[:3<<20+5]), iotest.ErrReader(io.ErrUnexpectedEOF)), io.ErrUnexpectedEOF},
	} {
		t.Run(name, func(t *testing.T) {
			h := sha256.New()
			var n atomic.Int64
			a := newHashAhead(tc.src, h, &n)
			defer a.close()
			var got bytes.Buffer
			buf := make([]byte, 100_000)
			var err error
			for {
				var m int
				m, err = a.Read(buf)
				got.Write(buf[:m])
				// Everything returned has been hashed and counted.
				if in := n.Load(); in < int64(got.Len()) {
					t.Fatalf("counted: got %d, want at least the %d bytes read", in, got.Len())
				}
				if err != nil {
					break
				}
			}
			want := img.zst
			if tc.wantErr != nil {
				want = img.zst[:3<<20+5]
			} else {
				tc.wantErr = io.EOF
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error: got %v, want %v", err, tc.wantErr)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("content: got %d bytes, want the %d bytes of the source", got.Len(), len(want))
			}
			if sum, wantSum := h.Sum(nil), sha256.Sum256(want); !bytes.Equal(sum, wantSum[:]) || n.Load() != int64(len(want)) {
				t.Errorf("hash %x of %d bytes: want %x of %d", sum, n.Load(), wantSum, len(want))
			}
		})
	}
}

func TestHashAheadClose(t *testing.T) {
	// A reader that stops early lets the goroutine end without reading on.
	img := buildImage(t)
	var n atomic.Int64
	a := newHashAhead(bytes.NewReader(img.zst), sha256.New(), &n)
	if _, err := a.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	a.close()
	if in := n.Load(); in > int64(hashChunks+1)*hashChunk {
		t.Errorf("read ahead: got %d bytes, want at most %d", in, (hashChunks+1)*hashChunk)
	}
}
