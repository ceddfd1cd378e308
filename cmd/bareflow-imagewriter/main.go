// Command bareflow-imagewriter writes an OS image from HTTP(S) onto a disk
// from inside the ramdisk (see package bareflow/internal/images): raw, gzip,
// zstd or qcow2 (which needs a server that answers range requests). It prints
// one JSON progress line per second on stdout, then a final line:
//
//	{"bytes_in":…,"bytes_out":…,"rate_mbps":…,"written":…}
//	{"done":true,"sha256":"…","bytes_out":…,"written":…,"zeroed":…}
//	{"error":"ImageChecksumMismatch","message":"…"}
//
// Exit status: 0 done, 1 failure (retryable), 2 usage, 3 checksum mismatch.
// Build it static: CGO_ENABLED=0 go build ./cmd/bareflow-imagewriter.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"

	"bareflow/internal/images"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}

// exitCode maps run's error to the exit status.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return 2
	case errors.Is(err, images.ErrChecksumMismatch):
		return 3
	}
	return 1
}

var errUsage = errors.New("usage")

// headerFlag collects repeated --header "Name: value" flags.
type headerFlag http.Header

func (h headerFlag) String() string { return "" }

func (h headerFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("header %q: want NAME:VALUE", s)
	}
	http.Header(h).Add(textproto.CanonicalMIMEHeaderKey(k), strings.TrimSpace(v))
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bareflow-imagewriter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	header := headerFlag{}
	var (
		job      images.Job
		format   string
		checksum string
	)
	fs.StringVar(&job.URL, "url", "", "image `URL` (http or https)")
	fs.Var(header, "header", "extra request header `NAME:VALUE` (repeatable)")
	fs.StringVar(&format, "format", "auto", "image format: raw, gzip, zstd, qcow2 or auto (by magic bytes)")
	fs.StringVar(&checksum, "checksum", "", "digest of the image file: sha256:HEX or sha512:HEX")
	fs.StringVar(&job.Target, "target", "", "block device or file to write")
	fs.BoolVar(&job.TargetZeroed, "target-zeroed", false, "the target reads as zeros: skip writing zero pages (and a qcow2 image's holes)")
	fs.StringVar(&job.StateDir, "state-dir", "/run/bareflow-imagewriter", "directory of checkpoint files (empty: none)")
	fs.BoolVar(&job.Resume, "resume", false, "continue from the last checkpoint of this image on this target")
	fs.BoolVar(&job.Direct, "direct", true, "write with O_DIRECT when the target supports it")
	blockMiB := fs.Int("block-mib", images.DefaultBlockSize>>20, "write buffer size in MiB")
	verbose := fs.Bool("v", false, "log checkpoints to stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the write to `FILE`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	usage := func(format string, a ...any) error {
		err := fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
		fmt.Fprintln(stderr, "bareflow-imagewriter:", err)
		return err
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	if job.URL == "" || job.Target == "" || checksum == "" {
		return usage("--url, --checksum and --target are required")
	}
	job.Format = images.Format(format)
	if err := job.Format.Validate(); err != nil {
		return usage("%v", err)
	}
	sum, err := images.ParseChecksum(checksum)
	if err != nil {
		return usage("%v", err)
	}
	job.Checksum = sum
	job.Header = http.Header(header)
	job.BlockSize = *blockMiB << 20

	out := &jsonLines{w: stdout}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	w := &images.Writer{
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		OnProgress: func(p images.Progress) {
			out.print(map[string]any{"bytes_in": p.BytesIn, "bytes_out": p.BytesOut, "rate_mbps": roundRate(p.RateMBps), "written": p.Written})
		},
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	res, err := w.Write(ctx, job)
	if err != nil {
		out.print(map[string]any{"error": errorType(err), "message": err.Error()})
		return err
	}
	out.print(map[string]any{
		"done":                 true,
		res.Checksum.Algorithm: hex.EncodeToString(res.Checksum.Sum),
		"format":               res.Format,
		"bytes_in":             res.BytesIn,
		"downloaded":           res.Downloaded,
		"bytes_out":            res.BytesOut,
		"written":              res.Written,
		"zeroed":               res.Zeroed,
		"resumed_at":           res.ResumedAt,
		"direct":               res.Direct,
	})
	return nil
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// errorType is the stable type string of a failure, as the activity maps it
// to an application error.
func errorType(err error) string {
	switch {
	case errors.Is(err, images.ErrChecksumMismatch):
		return "ImageChecksumMismatch"
	case errors.Is(err, images.ErrTruncated):
		return "ImageTruncated"
	case errors.Is(err, images.ErrCorruptImage):
		return "ImageCorrupt"
	case errors.Is(err, images.ErrUnsupportedFormat):
		return "ImageUnsupportedFormat"
	case errors.Is(err, context.Canceled):
		return "Canceled"
	}
	return "ImageWriteFailed"
}

func roundRate(r float64) float64 { return float64(int64(r*10+0.5)) / 10 }

// jsonLines writes one JSON object per line, from any goroutine.
type jsonLines struct {
	mu sync.Mutex
	w  io.Writer
}

func (j *jsonLines) print(v any) {
	b, _ := json.Marshal(v)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.w.Write(append(b, '\n'))
}
