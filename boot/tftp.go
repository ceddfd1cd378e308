package boot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"

	"github.com/pin/tftp/v3"
)

// errRefused is returned for TFTP requests bareflow never serves.
var errRefused = errors.New("access violation")

// tftpServer serves the files under one folder, read only. It is safe for
// many clients at once: each transfer opens its own file.
type tftpServer struct {
	root    *os.Root
	logger  *slog.Logger
	metrics *metrics
	// bootFiles are the iPXE binaries, read once at start and served from
	// memory: every PXE client asks for one, and Debian's ipxe package
	// installs them as links out of the folder, which os.Root refuses.
	bootFiles map[string][]byte
}

// newTFTPServer opens the folder to serve. Paths are resolved inside it by
// os.Root: no name, link or "..", can reach outside it. The boot files are
// read from the folder the operator configured, following links there (the
// operator chose that folder); a missing one is logged and not served.
func newTFTPServer(dir string, bootFiles map[string]string, logger *slog.Logger, m *metrics) (*tftpServer, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open TFTP root: %w", err)
	}
	t := &tftpServer{root: root, logger: logger, metrics: m, bootFiles: map[string][]byte{}}
	for name, p := range bootFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			logger.Warn("iPXE boot file not available over TFTP", "file", name, "error", err)
			continue
		}
		t.bootFiles[name] = b
	}
	return t, nil
}

func (t *tftpServer) close() error { return t.root.Close() }

// cleanTFTPPath checks a requested file name: relative, clean, no "..".
func cleanTFTPPath(name string) (string, bool) {
	if name == "" || len(name) > 255 || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") {
		return "", false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", false
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", false
	}
	return clean, true
}

// read sends a file. The tsize option gets the file's size.
func (t *tftpServer) read(filename string, rf io.ReaderFrom) error {
	peer := ""
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		a := ot.RemoteAddr()
		peer = a.String()
	}
	log := t.logger.With("file", filename, "peer", peer)
	name, ok := cleanTFTPPath(filename)
	if !ok {
		t.metrics.tftp.WithLabelValues("read", outcomeRefused).Inc()
		log.Warn("TFTP request refused: path outside the root")
		return errRefused
	}
	if b, ok := t.bootFiles[name]; ok {
		return t.send(log, bytes.NewReader(b), int64(len(b)), rf)
	}
	f, err := t.root.Open(name)
	if err != nil {
		outcome := outcomeNotFound
		if !errors.Is(err, fs.ErrNotExist) {
			outcome = outcomeRefused
		}
		t.metrics.tftp.WithLabelValues("read", outcome).Inc()
		log.Debug("TFTP file not served", "error", err)
		return fmt.Errorf("file not found")
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		t.metrics.tftp.WithLabelValues("read", outcomeNotFound).Inc()
		return fmt.Errorf("file not found")
	}
	return t.send(log, f, st.Size(), rf)
}

// send transfers r, of the given size, and counts the outcome.
func (t *tftpServer) send(log *slog.Logger, r io.Reader, size int64, rf io.ReaderFrom) error {
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ot.SetSize(size)
	}
	n, err := rf.ReadFrom(r)
	t.metrics.tftpBytesSent.Add(float64(n))
	if err != nil {
		t.metrics.tftp.WithLabelValues("read", outcomeError).Inc()
		log.Debug("TFTP transfer failed", "bytes", n, "error", err)
		return err
	}
	t.metrics.tftp.WithLabelValues("read", outcomeOK).Inc()
	log.Debug("TFTP transfer done", "bytes", n)
	return nil
}

// write refuses every write request.
func (t *tftpServer) write(filename string, _ io.WriterTo) error {
	t.metrics.tftp.WithLabelValues("write", outcomeRefused).Inc()
	t.logger.Warn("TFTP write refused", "file", filename)
	return errRefused
}

// server returns a pin/tftp server for t.
func (t *tftpServer) server() *tftp.Server {
	s := tftp.NewServer(t.read, t.write)
	// Block sizes up to what fits an Ethernet frame; clients ask with
	// blksize.
	s.SetBlockSize(1468)
	return s
}
