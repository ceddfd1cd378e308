package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

// Stable error types of image writes.
const (
	ErrImageChecksumMismatch  = contract.ErrImageChecksumMismatch
	ErrImageUnsupportedFormat = contract.ErrImageUnsupportedFormat
	ErrImageNotFound          = contract.ErrImageNotFound
)

// ImageSource is where an image is fetched from. Headers may carry a
// token: it never enters a workflow history.
type ImageSource struct {
	ID           string
	Family       contract.OSFamily
	URL          string
	Headers      map[string]string
	Format       contract.ImageFormat
	ChecksumAlgo string
	Checksum     string
	// VirtualSize is the disk size the image expands to; 0 when unknown.
	VirtualSize int64
}

// ImageKeeper looks images up. It wraps ErrNotFound.
type ImageKeeper interface {
	ImageSource(ctx context.Context, ref string) (ImageSource, error)
}

// ImageWriteProgress is one progress report of an image write.
type ImageWriteProgress struct {
	BytesOut int64   `json:"bytes_out"`
	Written  int64   `json:"written"`
	RateMBps float64 `json:"rate_mbps"`
}

// Images holds the activities that write OS images onto disks.
type Images struct {
	Keeper ImageKeeper
	Dialer RamdiskDialer
	// ProgressEvery is how often progress is reported; zero means 5s.
	ProgressEvery time.Duration
	// Progress, when set, receives the write's progress for the
	// operation record; total is the image's size, 0 when unknown.
	Progress func(ctx context.Context, operationID string, p ImageWriteProgress, total int64)
}

// WriteImageInput writes an image onto a disk in the machine's ramdisk.
type WriteImageInput struct {
	OperationID string
	MachineID   string
	Ramdisk     contract.RamdiskReady
	// Image is the image's ID or name.
	Image string
	// Target is the block device, /dev/NAME.
	Target string
	// TargetZeroed says the target reads as zeros (discarded or new), so
	// zero regions of the image need no writing.
	TargetZeroed bool
}

// WriteImageResult is what the write did.
type WriteImageResult struct {
	BytesOut  int64
	Written   int64
	ResumedAt int64
	Checksum  string
}

// writerLine is one JSON line bareflow-imagewriter prints.
type writerLine struct {
	BytesOut  int64   `json:"bytes_out"`
	Written   int64   `json:"written"`
	RateMBps  float64 `json:"rate_mbps"`
	Done      bool    `json:"done"`
	ResumedAt int64   `json:"resumed_at"`
	Error     string  `json:"error"`
	Message   string  `json:"message"`
	SHA256    string  `json:"sha256"`
	SHA512    string  `json:"sha512"`
}

// imageWriteTimeout bounds one run of the image writer.
const imageWriteTimeout = 6 * time.Hour

// WriteImage streams the image onto the target with bareflow-imagewriter
// in the ramdisk: the image is fetched by the ramdisk itself, verified
// against its checksum as it is written, and never held whole in memory.
// The writer's progress lines become heartbeats (and, every few seconds,
// the operation's progress).
//
// Idempotent: the writer resumes from its last checkpoint on the target (a
// retry after a crash continues instead of starting over) and a completed
// write is written again whole. A wrong checksum fails for good with
// ImageChecksumMismatch; the disk's content is then garbage. Heartbeats on
// every progress line and every few seconds.
func (a *Images) WriteImage(ctx context.Context, in WriteImageInput) (WriteImageResult, error) {
	if !validDevice(in.Target) {
		return WriteImageResult{}, temporal.NewNonRetryableApplicationError("target "+in.Target+" is not a block device path", contract.ErrInvalidInput, nil)
	}
	src, err := a.Keeper.ImageSource(ctx, in.Image)
	if errors.Is(err, ErrNotFound) {
		return WriteImageResult{}, temporal.NewNonRetryableApplicationError("image "+in.Image+" does not exist", ErrImageNotFound, nil)
	}
	if err != nil {
		return WriteImageResult{}, fmt.Errorf("read image %s: %w", in.Image, err)
	}
	format, ok := map[contract.ImageFormat]string{contract.ImageRaw: "raw", contract.ImageRawGzip: "gzip", contract.ImageRawZstd: "zstd",
		contract.ImageQCOW2: "qcow2"}[src.Format]
	if !ok {
		return WriteImageResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("image %s is %s: the streaming writer takes raw, raw.gz, raw.zst and qcow2; convert it (qemu-img convert -O raw, then zstd)", in.Image, src.Format),
			ErrImageUnsupportedFormat, nil)
	}
	defer keepBeating(ctx, "write image")()
	r := &Registration{Dialer: a.Dialer}
	sh, err := r.dial(ctx, RamdiskInput{MachineID: in.MachineID, Ramdisk: in.Ramdisk})
	if err != nil {
		return WriteImageResult{}, err
	}
	defer sh.Close()

	url, headers := src.URL, src.Headers
	// The boot service the ramdisk booted from keeps a copy near it; the
	// source is used directly when it has none, or after two failed
	// attempts through it.
	if in.Ramdisk.ImageCacheURL != "" && src.ID != "" && activity.GetInfo(ctx).Attempt <= 2 {
		url, headers = in.Ramdisk.ImageCacheURL+src.ID, nil
	}
	argv := []string{"bareflow-imagewriter", "--url", url, "--format", format, "--checksum", src.ChecksumAlgo + ":" + src.Checksum,
		"--target", in.Target, "--resume"}
	display := []string{"bareflow-imagewriter", "--url", url, "--format", format, "--target", in.Target, "--resume"}
	for k, v := range headers {
		argv = append(argv, "--header", k+":"+v)
		display = append(display, "--header", k+":REDACTED")
	}
	if in.TargetZeroed {
		argv = append(argv, "--target-zeroed")
		display = append(display, "--target-zeroed")
	}
	every := a.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	var (
		mu       sync.Mutex
		last     writerLine
		reported time.Time
	)
	onLine := func(line string) {
		var l writerLine
		if json.Unmarshal([]byte(line), &l) != nil {
			return
		}
		mu.Lock()
		last = l
		due := time.Since(reported) >= every
		if due {
			reported = time.Now()
		}
		mu.Unlock()
		p := ImageWriteProgress{BytesOut: l.BytesOut, Written: l.Written, RateMBps: l.RateMBps}
		activity.RecordHeartbeat(ctx, p)
		if due && a.Progress != nil && in.OperationID != "" {
			a.Progress(ctx, in.OperationID, p, src.VirtualSize)
		}
	}
	_, runErr := sh.Run(ctx, ShellCommand{
		Argv: argv, Display: strings.Join(display, " "),
		Timeout: imageWriteTimeout, MaxOutput: 1 << 20, OnLine: onLine,
	})
	mu.Lock()
	final := last
	mu.Unlock()
	switch {
	case runErr == nil && final.Done:
		sum := final.SHA256
		if sum == "" {
			sum = final.SHA512
		}
		return WriteImageResult{BytesOut: final.BytesOut, Written: final.Written, ResumedAt: final.ResumedAt, Checksum: sum}, nil
	case final.Error == ErrImageChecksumMismatch:
		return WriteImageResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("image %s does not match its %s checksum; %s holds what was written and must not be booted: %s",
				in.Image, src.ChecksumAlgo, in.Target, final.Message), ErrImageChecksumMismatch, nil)
	case final.Error == "ImageUnsupportedFormat":
		return WriteImageResult{}, temporal.NewNonRetryableApplicationError(final.Message, ErrImageUnsupportedFormat, nil)
	case final.Error == contract.ErrImageCorrupt:
		return WriteImageResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("image %s is corrupt: %s; %s holds what was written and must not be booted", in.Image, final.Message, in.Target),
			contract.ErrImageCorrupt, nil)
	case ctx.Err() != nil:
		return WriteImageResult{}, ctx.Err()
	case runErr != nil:
		return WriteImageResult{}, fmt.Errorf("write image %s onto %s: %w", in.Image, in.Target, runErr)
	}
	return WriteImageResult{}, fmt.Errorf("write image %s onto %s: the writer ended without saying it was done", in.Image, in.Target)
}

// validDevice reports whether p is a plain /dev path.
func validDevice(p string) bool {
	name, ok := strings.CutPrefix(p, "/dev/")
	if !ok || name == "" || len(p) > 64 || strings.Contains(p, "..") {
		return false
	}
	return strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/-_.", r))
	}) < 0
}
