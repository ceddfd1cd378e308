package images

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// qcow2 images (docs/interop/qcow2.txt in QEMU's sources). The writer reads
// the header, the L1 table and the L2 tables with range requests, turns them
// into a map sorted by offset in the file (qcowMap), then streams the file
// once (qcowStream). This file holds the parser and the map; it does no I/O
// of its own.

// Layout.
const (
	qcowV2HeaderLen    = 72
	qcowV3HeaderLen    = 104
	qcowMinClusterBits = 9
	qcowMaxClusterBits = 21
	// qcowMaxL1Bytes is QEMU's bound on the L1 table.
	qcowMaxL1Bytes = 32 << 20
	// qcowMaxSize bounds the virtual size, so that offsets fit an int64
	// with room to spare (QEMU's own bound is lower).
	qcowMaxSize = 1 << 60
	// qcowHeadBytes of the file's start are read for the header and its
	// extensions.
	qcowHeadBytes = 64 << 10
	// qcowMaxHost bounds host offsets (bits 9–55 of a table entry).
	qcowMaxHost = 1 << 56

	qcowOffsetMask  = 0x00ff_ffff_ffff_fe00 // bits 9–55: a cluster or table offset
	qcowCopied      = 1 << 63
	qcowCompressed  = 1 << 62
	qcowZeroFlag    = 1
	qcowL1Reserved  = 0x7f00_0000_0000_01ff
	qcowL2Reserved  = 0x3f00_0000_0000_01fe
	qcowSectorSize  = 512
	qcowEntrySize   = 8
	qcowFeatureSize = 48
)

// Incompatible feature bits of a version 3 header.
const (
	qcowDirty       = 1 << 0
	qcowCorrupt     = 1 << 1
	qcowDataFile    = 1 << 2
	qcowCompression = 1 << 3
	qcowExtendedL2  = 1 << 4
	qcowKnown       = qcowDirty | qcowCorrupt | qcowDataFile | qcowCompression | qcowExtendedL2
)

// Header extension types.
const (
	qcowExtEnd          = 0
	qcowExtFeatureNames = 0x6803f857
	qcowExtEncryption   = 0x0537be77
	qcowExtDataFile     = 0x44415441
)

// qcowCompressionType is the compression of compressed clusters: the header's
// compression_type field (byte 104, present when the header is longer than
// 104 bytes and incompatible bit 3 is set).
type qcowCompressionType uint8

const (
	qcowDeflate qcowCompressionType = 0
	qcowZstd    qcowCompressionType = 1
)

func (c qcowCompressionType) String() string {
	if c == qcowZstd {
		return "zstd"
	}
	return "deflate"
}

// qcowHeader is what the writer takes from a qcow2 header.
type qcowHeader struct {
	version     uint32
	clusterBits uint
	size        int64 // virtual size
	l1Offset    int64
	l1Size      int64 // entries in the L1 table
	compression qcowCompressionType
	dirty       bool
	headLen     int64 // the header with its extensions and their end marker
}

func (h *qcowHeader) clusterSize() int64 { return 1 << h.clusterBits }

// l2Span is the guest bytes one L2 table maps.
func (h *qcowHeader) l2Span() int64 { return h.clusterSize() / qcowEntrySize * h.clusterSize() }

// l1Needed is the L1 entries that cover the virtual size.
func (h *qcowHeader) l1Needed() int64 { return (h.size + h.l2Span() - 1) / h.l2Span() }

// compressedBits is x of the spec: the width of a compressed cluster
// descriptor's offset field; the sector count follows.
func (h *qcowHeader) compressedBits() uint { return 62 - (h.clusterBits - 8) }

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: qcow2: %s", ErrCorruptImage, fmt.Sprintf(format, a...))
}

func unsupported(format string, a ...any) error {
	return fmt.Errorf("%w: qcow2 %s", ErrUnsupportedFormat, fmt.Sprintf(format, a...))
}

// parseQcowHeader parses the header at the start of b (the file's first
// bytes, qcowHeadBytes or the whole file when smaller) and refuses what the
// writer cannot write: backing files, encryption, external data files,
// extended L2 entries and unknown incompatible features. The dirty bit is
// accepted: it says the refcounts may be stale, and the writer does not read
// them.
func parseQcowHeader(b []byte) (qcowHeader, error) {
	be := binary.BigEndian
	if len(b) < qcowV2HeaderLen {
		return qcowHeader{}, corrupt("header of %d bytes", len(b))
	}
	if !bytes.HasPrefix(b, magicQcow2) {
		return qcowHeader{}, corrupt("no qcow2 magic (file starts with %x)", b[:4])
	}
	h := qcowHeader{version: be.Uint32(b[4:]), headLen: qcowV2HeaderLen}
	if h.version != 2 && h.version != 3 {
		return qcowHeader{}, unsupported("version %d (want 2 or 3)", h.version)
	}
	backingOffset, backingLen := be.Uint64(b[8:]), be.Uint32(b[16:])
	clusterBits := be.Uint32(b[20:])
	size := be.Uint64(b[24:])
	crypt := be.Uint32(b[32:])
	l1Size := be.Uint32(b[36:])
	l1Offset := be.Uint64(b[40:])
	if clusterBits < qcowMinClusterBits || clusterBits > qcowMaxClusterBits {
		return qcowHeader{}, corrupt("cluster bits %d (want %d to %d)", clusterBits, qcowMinClusterBits, qcowMaxClusterBits)
	}
	h.clusterBits = uint(clusterBits)
	var incompat uint64
	var compressionType byte
	if h.version == 3 {
		if len(b) < qcowV3HeaderLen {
			return qcowHeader{}, corrupt("version 3 header of %d bytes", len(b))
		}
		incompat = be.Uint64(b[72:])
		headerLen := int64(be.Uint32(b[100:]))
		if headerLen < qcowV3HeaderLen || headerLen > h.clusterSize() || headerLen > int64(len(b)) {
			return qcowHeader{}, corrupt("header length %d", headerLen)
		}
		if headerLen > qcowV3HeaderLen {
			compressionType = b[qcowV3HeaderLen]
		}
		h.headLen = headerLen
	}

	// Refusals first: they say more than a structural error would.
	switch crypt {
	case 0:
	case 1:
		return qcowHeader{}, unsupported("image is encrypted (AES): decrypt it with qemu-img convert")
	case 2:
		return qcowHeader{}, unsupported("image is encrypted (LUKS): decrypt it with qemu-img convert")
	default:
		return qcowHeader{}, unsupported("image is encrypted (method %d)", crypt)
	}
	if backingOffset != 0 {
		name := ""
		if end := backingOffset + uint64(backingLen); backingLen <= 1023 && end <= uint64(len(b)) {
			name = fmt.Sprintf(" %q", b[backingOffset:end])
		}
		return qcowHeader{}, unsupported("image has a backing file%s: flatten it with qemu-img convert", name)
	}
	// The extensions end within the first cluster; b holds it, or the whole
	// file, or else its first qcowHeadBytes.
	limit := min(h.clusterSize(), int64(len(b)))
	ext, err := parseQcowExtensions(b, h.headLen, limit, limit == h.clusterSize() || len(b) < qcowHeadBytes)
	if err != nil {
		return qcowHeader{}, err
	}
	h.headLen = ext.end
	if ext.encryption {
		return qcowHeader{}, unsupported("image has an encryption header: decrypt it with qemu-img convert")
	}
	if incompat&qcowCorrupt != 0 {
		return qcowHeader{}, corrupt("image is marked corrupt: repair it with qemu-img check -r all")
	}
	if incompat&qcowDataFile != 0 || ext.dataFile != "" {
		return qcowHeader{}, unsupported("image keeps its data in an external data file %q: convert it with qemu-img convert", ext.dataFile)
	}
	if incompat&qcowExtendedL2 != 0 {
		return qcowHeader{}, unsupported("image has extended L2 entries (subclusters): convert it with qemu-img convert -o extended_l2=off")
	}
	if unknown := incompat &^ qcowKnown; unknown != 0 {
		var names []string
		for bit := range 64 {
			if unknown&(1<<bit) != 0 {
				names = append(names, ext.featureName(bit))
			}
		}
		return qcowHeader{}, unsupported("image has unknown incompatible features: %s", strings.Join(names, ", "))
	}
	h.dirty = incompat&qcowDirty != 0
	switch {
	case incompat&qcowCompression != 0 && h.headLen <= qcowV3HeaderLen:
		return qcowHeader{}, corrupt("compression type bit set in a header without the field")
	case incompat&qcowCompression == 0 && compressionType != 0:
		return qcowHeader{}, corrupt("compression type %d without its incompatible bit", compressionType)
	}
	switch qcowCompressionType(compressionType) {
	case qcowDeflate, qcowZstd:
		h.compression = qcowCompressionType(compressionType)
	default:
		return qcowHeader{}, unsupported("compression type %d", compressionType)
	}

	if size > qcowMaxSize {
		return qcowHeader{}, unsupported("virtual size %d", size)
	}
	h.size = int64(size)
	h.l1Size = int64(l1Size)
	if h.l1Size*qcowEntrySize > qcowMaxL1Bytes {
		return qcowHeader{}, corrupt("L1 table of %d entries", h.l1Size)
	}
	if need := h.l1Needed(); h.l1Size < need {
		return qcowHeader{}, corrupt("L1 table of %d entries does not cover the virtual size %d (needs %d)", h.l1Size, h.size, need)
	}
	if l1Offset >= qcowMaxHost || (h.l1Needed() > 0 && (l1Offset == 0 || l1Offset%uint64(h.clusterSize()) != 0)) {
		return qcowHeader{}, corrupt("L1 table offset %#x", l1Offset)
	}
	h.l1Offset = int64(l1Offset)
	return h, nil
}

// qcowExtensions is what the header extensions say.
type qcowExtensions struct {
	end        int64 // after the end marker
	encryption bool
	dataFile   string
	names      map[int]string // incompatible feature bit → name
}

func (e *qcowExtensions) featureName(bit int) string {
	if n, ok := e.names[bit]; ok {
		return fmt.Sprintf("bit %d (%s)", bit, n)
	}
	return fmt.Sprintf("bit %d", bit)
}

// parseQcowExtensions reads the header extensions in b[off:limit]; they end
// with an extension of type 0 or, as QEMU reads them, at the end of the
// first cluster (whole says b[:limit] reaches it).
func parseQcowExtensions(b []byte, off, limit int64, whole bool) (qcowExtensions, error) {
	be := binary.BigEndian
	var e qcowExtensions
	for {
		if off+8 > limit {
			if whole {
				e.end = min(off, limit)
				return e, nil
			}
			return e, corrupt("header extensions run past byte %d", limit)
		}
		typ, n := be.Uint32(b[off:]), int64(be.Uint32(b[off+4:]))
		off += 8
		if typ == qcowExtEnd {
			e.end = off
			return e, nil
		}
		if n > limit-off {
			return e, corrupt("header extension %#x of %d bytes runs past byte %d", typ, n, limit)
		}
		data := b[off : off+n]
		switch typ {
		case qcowExtEncryption:
			e.encryption = true
		case qcowExtDataFile:
			e.dataFile = string(data)
		case qcowExtFeatureNames:
			for i := 0; i+qcowFeatureSize <= len(data); i += qcowFeatureSize {
				if data[i] != 0 { // not an incompatible feature
					continue
				}
				if e.names == nil {
					e.names = map[int]string{}
				}
				e.names[int(data[i+1])] = string(bytes.TrimRight(data[i+2:i+qcowFeatureSize], "\x00"))
			}
		}
		off += (n + 7) &^ 7
	}
}

// extent is one entry of the map, 16 bytes:
//
//	a run of standard clusters: d = host offset of the first (cluster
//	    aligned) | number of clusters − 1 (in the low cluster bits);
//	    guest = offset in the image of its first byte
//	a compressed cluster: d = extCompressed | the L2 descriptor's offset and
//	    sector count; guest = offset in the image
//	a table (header, L1, L2): d = extTable | host offset; guest = index in
//	    qcowMap.tables
//
// A run is as long as the clusters are contiguous both in the file and in the
// image, and at most 2^clusterBits clusters.
type extent struct {
	d     uint64
	guest int64
}

const (
	extCompressed = 1 << 62
	extTable      = 1 << 63
	extFlags      = extCompressed | extTable
)

// table is a part of the file the map was built from; the stream checks that
// it serves the same bytes.
type table struct {
	n   int64
	sum [sha256.Size]byte
}

// span is a range of offsets.
type span struct{ off, n int64 }

// qcowMap is a qcow2 image's map: the data clusters and tables in the order
// of their offsets in the file, and the image's zero ranges (unallocated
// clusters, zero clusters, and what lies beyond the last cluster) in the
// image's order.
type qcowMap struct {
	hdr       qcowHeader
	fileSize  int64
	ext       []extent
	zeros     []span
	zeroBytes int64
	tables    []table
	// sum identifies the tables (checkpoint.MapSum).
	sum string
}

func (m *qcowMap) kind(e extent) uint64 { return e.d & extFlags }

// host returns where e starts in the file.
func (m *qcowMap) host(e extent) int64 {
	switch e.d & extFlags {
	case extTable:
		return int64(e.d &^ extTable)
	case extCompressed:
		return int64(e.d & (1<<m.hdr.compressedBits() - 1))
	}
	return int64(e.d &^ uint64(m.hdr.clusterSize()-1))
}

// guestLen is how many bytes of the image e holds.
func (m *qcowMap) guestLen(e extent) int64 {
	c := m.hdr.clusterSize()
	switch e.d & extFlags {
	case extTable:
		return 0
	case extCompressed:
		return min(c, m.hdr.size-e.guest)
	}
	n := int64(e.d&uint64(c-1)) + 1
	return min(n*c, m.hdr.size-e.guest)
}

// hostEnd is where e ends in the file: for a compressed cluster, the end of
// the last sector its descriptor names (an upper bound of its data, clamped
// to the file).
func (m *qcowMap) hostEnd(e extent) int64 {
	start := m.host(e)
	switch e.d & extFlags {
	case extTable:
		return start + m.tables[e.guest].n
	case extCompressed:
		x := m.hdr.compressedBits()
		sectors := int64(e.d&^extFlags>>x) + 1
		return min(start&^(qcowSectorSize-1)+sectors*qcowSectorSize, m.fileSize)
	}
	return start + m.guestLen(e)
}

// rangeReader reads parts of the image file.
type rangeReader interface {
	// readRange returns the n bytes at off, fewer only at the end of the
	// file.
	readRange(ctx context.Context, off, n int64) ([]byte, error)
}

// Fetching L2 tables: adjacent tables (gaps up to qcowFetchGap) are read by
// one request of up to qcowFetchMax bytes, qcowFetchers requests at a time.
const (
	qcowFetchGap = 64 << 10
	qcowFetchMax = 4 << 20
	qcowFetchers = 4
)

// l2Ref is an L2 table and the offsets in the image of the ranges it maps
// (one L2 table may be named by several L1 entries).
type l2Ref struct {
	host   int64
	guests []int64
}

// loadQcowMap reads the tables of the qcow2 image whose first bytes are head
// and builds its map.
func loadQcowMap(ctx context.Context, rr rangeReader, head []byte, fileSize int64) (*qcowMap, error) {
	h, err := parseQcowHeader(head)
	if err != nil {
		return nil, err
	}
	b := &qcowBuilder{m: &qcowMap{hdr: h, fileSize: fileSize}}
	if h.headLen > fileSize {
		return nil, corrupt("header of %d bytes in a file of %d", h.headLen, fileSize)
	}
	b.addTable(0, head[:h.headLen])
	refs, err := b.readL1(ctx, rr)
	if err != nil {
		return nil, err
	}
	if err := b.readL2s(ctx, rr, refs); err != nil {
		return nil, err
	}
	return b.finish()
}

// qcowBuilder builds a qcowMap.
type qcowBuilder struct {
	m   *qcowMap
	ext []extent // in the image's order within each L2 table
}

func (b *qcowBuilder) addTable(host int64, data []byte) {
	b.m.tables = append(b.m.tables, table{n: int64(len(data)), sum: sha256.Sum256(data)})
	b.ext = append(b.ext, extent{d: extTable | uint64(host), guest: int64(len(b.m.tables) - 1)})
}

// readL1 reads the L1 table's entries that cover the virtual size and
// returns the L2 tables they name, in the order of their offsets.
func (b *qcowBuilder) readL1(ctx context.Context, rr rangeReader) ([]l2Ref, error) {
	h := &b.m.hdr
	n := h.l1Needed()
	if n == 0 {
		return nil, nil
	}
	if h.l1Offset+n*qcowEntrySize > b.m.fileSize {
		return nil, corrupt("L1 table at %d is beyond the end of the file (%d bytes)", h.l1Offset, b.m.fileSize)
	}
	l1, err := rr.readRange(ctx, h.l1Offset, n*qcowEntrySize)
	if err != nil {
		return nil, fmt.Errorf("read qcow2 L1 table: %w", err)
	}
	if int64(len(l1)) != n*qcowEntrySize {
		return nil, fmt.Errorf("%w: L1 table: got %d of %d bytes", ErrTruncated, len(l1), n*qcowEntrySize)
	}
	return b.parseL1(l1)
}

// parseL1 validates L1 entries and returns the L2 tables they name, sorted by
// offset, a table named twice once.
func (b *qcowBuilder) parseL1(l1 []byte) ([]l2Ref, error) {
	h := &b.m.hdr
	b.addTable(h.l1Offset, l1)
	c := h.clusterSize()
	byHost := map[int64]int{}
	var refs []l2Ref
	for i := range int64(len(l1) / qcowEntrySize) {
		e := binary.BigEndian.Uint64(l1[i*qcowEntrySize:])
		if e&qcowL1Reserved != 0 {
			return nil, corrupt("L1 entry %d has reserved bits set (%#x)", i, e)
		}
		off := int64(e & qcowOffsetMask)
		if off == 0 {
			continue
		}
		if off%c != 0 {
			return nil, corrupt("L1 entry %d: L2 table offset %#x is not aligned to a cluster", i, off)
		}
		if off+c > b.m.fileSize {
			return nil, corrupt("L1 entry %d: L2 table at %d is beyond the end of the file (%d bytes)", i, off, b.m.fileSize)
		}
		if j, ok := byHost[off]; ok {
			refs[j].guests = append(refs[j].guests, i*h.l2Span())
			continue
		}
		byHost[off] = len(refs)
		refs = append(refs, l2Ref{host: off, guests: []int64{i * h.l2Span()}})
	}
	slices.SortFunc(refs, func(a, b l2Ref) int { return cmp.Compare(a.host, b.host) })
	return refs, nil
}

// readL2s reads the L2 tables, several requests at a time, and adds their
// clusters to the map.
func (b *qcowBuilder) readL2s(ctx context.Context, rr rangeReader, refs []l2Ref) error {
	c := b.m.hdr.clusterSize()
	// Groups of tables read by one request: refs[groups[i]:groups[i+1]].
	groups := []int{}
	for i := range refs {
		if i == 0 || refs[i].host-(refs[i-1].host+c) > qcowFetchGap || refs[i].host+c-refs[groups[len(groups)-1]].host > qcowFetchMax {
			groups = append(groups, i)
		}
	}
	groups = append(groups, len(refs))
	if len(refs) == 0 {
		return nil
	}

	type fetched struct {
		group int
		buf   []byte
		err   error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan fetched, len(groups)-1)
	slots := make(chan struct{}, qcowFetchers)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for g := range len(groups) - 1 {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				first, last := refs[groups[g]], refs[groups[g+1]-1]
				buf, err := rr.readRange(ctx, first.host, last.host+c-first.host)
				if err == nil && int64(len(buf)) != last.host+c-first.host {
					err = fmt.Errorf("%w: L2 tables at %d: got %d of %d bytes", ErrTruncated, first.host, len(buf), last.host+c-first.host)
				}
				results <- fetched{group: g, buf: buf, err: err}
			}()
		}
	}()
	defer func() { cancel(); <-done }()
	for range len(groups) - 1 {
		var f fetched
		select {
		case f = <-results:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.err != nil {
			return fmt.Errorf("read qcow2 L2 tables: %w", f.err)
		}
		base := refs[groups[f.group]].host
		for _, ref := range refs[groups[f.group]:groups[f.group+1]] {
			tbl := f.buf[ref.host-base : ref.host-base+c]
			b.addTable(ref.host, tbl)
			for _, guest := range ref.guests {
				if err := b.addL2(tbl, ref.host, guest); err != nil {
					return err
				}
			}
		}
		<-slots
	}
	return nil
}

// addL2 adds the data clusters of one L2 table, which maps the image from
// guest on.
func (b *qcowBuilder) addL2(tbl []byte, host, guest int64) error {
	h := &b.m.hdr
	c := h.clusterSize()
	x := h.compressedBits()
	for j := range int64(len(tbl) / qcowEntrySize) {
		g := guest + j*c
		if g >= h.size {
			break
		}
		e := binary.BigEndian.Uint64(tbl[j*qcowEntrySize:])
		at := func() string { return fmt.Sprintf("L2 table at %d, entry %d (image offset %d)", host, j, g) }
		if e&qcowCompressed != 0 {
			desc := e &^ (qcowCompressed | qcowCopied)
			off := desc & (1<<x - 1)
			if off >= qcowMaxHost || int64(off) >= b.m.fileSize || off == 0 {
				return corrupt("%s: compressed cluster at %d is beyond the end of the file (%d bytes)", at(), off, b.m.fileSize)
			}
			b.ext = append(b.ext, extent{d: extCompressed | desc, guest: g})
			continue
		}
		if e&qcowZeroFlag != 0 {
			if h.version < 3 {
				return corrupt("%s: zero flag in a version 2 image", at())
			}
			continue
		}
		if e&qcowL2Reserved != 0 {
			return corrupt("%s: reserved bits set (%#x)", at(), e)
		}
		off := int64(e & qcowOffsetMask)
		if off == 0 {
			if e&qcowCopied != 0 {
				return corrupt("%s: cluster at offset 0", at())
			}
			continue // unallocated: reads as zeros without a backing file
		}
		if off%c != 0 {
			return corrupt("%s: cluster offset %#x is not aligned to a cluster", at(), off)
		}
		if n := min(c, h.size-g); off+n > b.m.fileSize {
			return corrupt("%s: cluster at %d is beyond the end of the file (%d bytes)", at(), off, b.m.fileSize)
		}
		if k := len(b.ext) - 1; k >= 0 && b.ext[k].d&extFlags == 0 {
			last := b.ext[k]
			n := int64(last.d&uint64(c-1)) + 1
			if b.m.host(last)+n*c == off && last.guest+n*c == g && n < c {
				b.ext[k].d++
				continue
			}
		}
		b.ext = append(b.ext, extent{d: uint64(off), guest: g})
	}
	return nil
}

// finish merges runs across L2 tables, derives the zero ranges, sorts the
// map by offset in the file and checks that nothing overlaps but compressed
// clusters (which may share a sector).
func (b *qcowBuilder) finish() (*qcowMap, error) {
	m := b.m
	c := m.hdr.clusterSize()
	ext := b.ext
	b.ext = nil
	// The image's order: tables (guest = index) are set apart.
	tables := 0
	for _, e := range ext {
		if e.d&extTable != 0 {
			tables++
		}
	}
	slices.SortFunc(ext, func(a, b extent) int {
		ta, tb := a.d&extTable != 0, b.d&extTable != 0
		switch {
		case ta && tb:
			return cmp.Compare(a.guest, b.guest)
		case ta:
			return -1
		case tb:
			return 1
		}
		return cmp.Compare(a.guest, b.guest)
	})
	data := ext[tables:]
	merged := data[:0]
	for _, e := range data {
		if k := len(merged) - 1; k >= 0 && e.d&extFlags == 0 && merged[k].d&extFlags == 0 {
			last := merged[k]
			n, en := int64(last.d&uint64(c-1))+1, int64(e.d&uint64(c-1))+1
			if m.host(last)+n*c == m.host(e) && last.guest+n*c == e.guest && n+en <= c {
				merged[k].d += uint64(en)
				continue
			}
		}
		merged = append(merged, e)
	}
	// Zero ranges: the gaps between data, in the image's order.
	next := int64(0)
	for _, e := range merged {
		if e.guest > next {
			m.addZeros(next, e.guest-next)
		}
		next = max(next, e.guest+m.guestLen(e))
	}
	if next < m.hdr.size {
		m.addZeros(next, m.hdr.size-next)
	}
	ext = ext[:tables+len(merged)]
	slices.SortFunc(ext, func(a, b extent) int {
		if c := cmp.Compare(m.host(a), m.host(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.guest, b.guest)
	})
	m.ext = slices.Clip(ext)

	// Overlaps. A compressed cluster's descriptor names whole sectors, so its
	// end may run into the next compressed cluster; nothing else may share
	// bytes in the file. Its end is also clamped, at streaming time, to the
	// next table or standard cluster.
	var hardEnd int64
	for _, e := range m.ext {
		start := m.host(e)
		if start < hardEnd {
			return nil, corrupt("%s at %d overlaps the data or table before it (which ends at %d)", m.describe(e), start, hardEnd)
		}
		if m.kind(e) != extCompressed {
			hardEnd = m.hostEnd(e)
		}
	}
	sum := sha256.New()
	var buf [8 + 8]byte
	for _, e := range m.ext {
		if m.kind(e) == extTable {
			binary.BigEndian.PutUint64(buf[:], uint64(m.host(e)))
			binary.BigEndian.PutUint64(buf[8:], uint64(m.tables[e.guest].n))
			sum.Write(buf[:])
			sum.Write(m.tables[e.guest].sum[:])
		}
	}
	m.sum = "sha256:" + hex.EncodeToString(sum.Sum(nil))
	return m, nil
}

func (m *qcowMap) addZeros(off, n int64) {
	m.zeroBytes += n
	if k := len(m.zeros) - 1; k >= 0 && m.zeros[k].off+m.zeros[k].n == off {
		m.zeros[k].n += n
		return
	}
	m.zeros = append(m.zeros, span{off, n})
}

func (m *qcowMap) describe(e extent) string {
	switch m.kind(e) {
	case extTable:
		return "table"
	case extCompressed:
		return fmt.Sprintf("compressed cluster of image offset %d", e.guest)
	}
	return fmt.Sprintf("cluster of image offset %d", e.guest)
}

// memory is the map's size in bytes.
func (m *qcowMap) memory() int64 {
	return int64(cap(m.ext))*16 + int64(cap(m.zeros))*16 + int64(cap(m.tables))*int64(8+sha256.Size)
}

// clusterDecoder decompresses compressed clusters.
type clusterDecoder struct {
	kind  qcowCompressionType
	src   bytes.Reader
	flate io.ReadCloser
	zstd  *zstd.Decoder
}

// decode fills dst (one cluster) from the compressed data in src, which may
// be followed by unrelated bytes (the rest of its last sector).
func (d *clusterDecoder) decode(dst, src []byte) error {
	if d.kind == qcowZstd {
		return d.decodeZstd(dst, src)
	}
	d.src.Reset(src)
	if d.flate == nil {
		d.flate = flate.NewReader(&d.src)
	} else if err := d.flate.(flate.Resetter).Reset(&d.src, nil); err != nil {
		return err
	}
	if _, err := io.ReadFull(d.flate, dst); err != nil {
		return fmt.Errorf("deflate: %w", err)
	}
	return nil
}

// decodeZstd decodes zstd frames from src until dst is full.
func (d *clusterDecoder) decodeZstd(dst, src []byte) error {
	if d.zstd == nil {
		z, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return err
		}
		d.zstd = z
	}
	out := dst[:0]
	for len(out) < len(dst) {
		n, err := zstdFrameLen(src)
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		if out, err = d.zstd.DecodeAll(src[:n], out); err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		src = src[n:]
	}
	return nil
}

func (d *clusterDecoder) close() {
	if d.zstd != nil {
		d.zstd.Close()
	}
}

// zstdFrameLen returns the length of the zstd frame at the start of b.
func zstdFrameLen(b []byte) (int, error) {
	var h zstd.Header
	if err := h.Decode(b); err != nil {
		return 0, err
	}
	if h.Skippable {
		n := h.HeaderSize + int(h.SkippableSize)
		if n > len(b) {
			return 0, io.ErrUnexpectedEOF
		}
		return n, nil
	}
	off := h.HeaderSize
	for {
		if off+3 > len(b) {
			return 0, io.ErrUnexpectedEOF
		}
		bh := int(b[off]) | int(b[off+1])<<8 | int(b[off+2])<<16
		off += 3
		switch bh >> 1 & 3 {
		case 0, 2: // raw, compressed
			off += bh >> 3
		case 1: // RLE
			off++
		default:
			return 0, errors.New("reserved block type")
		}
		if off > len(b) {
			return 0, io.ErrUnexpectedEOF
		}
		if bh&1 != 0 {
			break
		}
	}
	if h.HasCheckSum {
		off += 4
	}
	if off > len(b) {
		return 0, io.ErrUnexpectedEOF
	}
	return off, nil
}
