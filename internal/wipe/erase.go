package wipe

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Method is how a disk is fully erased.
type Method string

// Erase methods.
const (
	// MethodAuto picks the best method the disk supports: an NVMe format
	// for an NVMe namespace whose controller formats, a discard checked by
	// reading zeros back (or followed by a zero pass) for a non-rotational
	// disk that discards, an overwrite with zeros otherwise.
	MethodAuto Method = "auto"
	// MethodNVMe formats the namespace with a user data erase (nvme format
	// --ses=1, keeping its LBA format), or sanitizes the controller when
	// EraseOptions.Sanitize is set.
	MethodNVMe Method = "nvme"
	// MethodATASecureErase runs the ATA SECURITY ERASE UNIT command
	// (hdparm), with a temporary user password.
	MethodATASecureErase Method = "ata-secure-erase"
	// MethodDiscard discards every block (blkdiscard), or securely
	// discards or writes zeroes when asked.
	MethodDiscard Method = "discard"
	// MethodOverwrite writes one pass of zeros, or of random data when
	// asked, over the whole disk.
	MethodOverwrite Method = "overwrite"
)

// Methods lists the erase methods.
var Methods = []Method{MethodAuto, MethodNVMe, MethodATASecureErase, MethodDiscard, MethodOverwrite}

// Validate reports whether m is an erase method.
func (m Method) Validate() error {
	if slices.Contains(Methods, m) {
		return nil
	}
	return fmt.Errorf("erase method %q: want auto, nvme, ata-secure-erase, discard or overwrite: %w", m, ErrInvalid)
}

// JobStatus is where an erase job is.
type JobStatus string

// Job statuses.
const (
	JobRunning JobStatus = "running"
	JobDone    JobStatus = "done"
	JobFailed  JobStatus = "failed"
)

// DefaultStateDir is where erase jobs keep their state in the ramdisk; it
// is on tmpfs and gone at the next boot, as the jobs are.
const DefaultStateDir = "/run/bareflow/erase"

// Sizes and bounds of erase jobs.
const (
	// DefaultOverwriteChunk is how much an overwrite writes (and fsyncs)
	// between two records of its offset.
	DefaultOverwriteChunk = 64 << 20
	// DefaultDiscardChunk is how much a discard covers per blkdiscard.
	DefaultDiscardChunk = 1 << 30
	// MaxRestarts is how many times EraseStatus restarts a job that died
	// before it reports the erase failed.
	MaxRestarts = 5
	// maxChunk bounds a discard's chunk, maxOverwriteChunk an overwrite's,
	// which dd holds in memory.
	maxChunk          = 4 << 30
	maxOverwriteChunk = 256 << 20
	mebibyte          = 1 << 20
)

// sanitizePoll is how often, in seconds, a sanitize job reads the
// controller's sanitize log.
var sanitizePoll = 5

// EraseOptions say how to erase a disk.
type EraseOptions struct {
	Method Method `json:"method"`
	// Request names the request the erase answers (bareflow passes the
	// operation's ID). A finished or dead job of another request is not
	// this one's: the disk is erased again. Empty matches any request
	// with the same method and flags.
	Request string `json:"request,omitempty"`
	// Sanitize (nvme): sanitize the controller (block erase, else crypto
	// erase, else overwrite, as its SANICAP allows) instead of formatting
	// the namespace.
	Sanitize bool `json:"sanitize,omitempty"`
	// Enhanced (ata-secure-erase): the enhanced security erase.
	Enhanced bool `json:"enhanced,omitempty"`
	// Secure (discard): a secure discard (blkdiscard --secure).
	Secure bool `json:"secure,omitempty"`
	// Zero (discard): write zeroes (blkdiscard --zeroout, offloaded to the
	// device where it can) instead of discarding.
	Zero bool `json:"zero,omitempty"`
	// Random (overwrite): random data instead of zeros.
	Random bool `json:"random,omitempty"`
	// ChunkBytes is the step of overwrite and discard, a whole number of
	// MiB up to 256 MiB for an overwrite (dd holds a chunk in memory) and
	// 4 GiB for a discard; 0 means DefaultOverwriteChunk or
	// DefaultDiscardChunk.
	ChunkBytes int64 `json:"chunk_bytes,omitempty"`
	// StateDir is the jobs' directory in the ramdisk; "" means
	// DefaultStateDir.
	StateDir string `json:"state_dir,omitempty"`
}

var stateDirPattern = regexp.MustCompile(`^/[A-Za-z0-9._/-]{1,200}$`)

// Validate checks the method and that each flag goes with its method.
func (o EraseOptions) Validate() error {
	if err := o.Method.Validate(); err != nil {
		return err
	}
	bad := func(flag string, m Method) error {
		return fmt.Errorf("erase option %s goes with method %s, not %s: %w", flag, m, o.Method, ErrInvalid)
	}
	switch {
	case o.Sanitize && o.Method != MethodNVMe:
		return bad("sanitize", MethodNVMe)
	case o.Enhanced && o.Method != MethodATASecureErase:
		return bad("enhanced", MethodATASecureErase)
	case o.Secure && o.Method != MethodDiscard:
		return bad("secure", MethodDiscard)
	case o.Zero && o.Method != MethodDiscard:
		return bad("zero", MethodDiscard)
	case o.Random && o.Method != MethodOverwrite:
		return bad("random", MethodOverwrite)
	case o.Secure && o.Zero:
		return fmt.Errorf("erase options secure and zero exclude each other: %w", ErrInvalid)
	case o.ChunkBytes < 0 || o.ChunkBytes%mebibyte != 0 || o.ChunkBytes > maxChunk:
		return fmt.Errorf("erase chunk of %d bytes: want a whole number of MiB up to 4 GiB: %w", o.ChunkBytes, ErrInvalid)
	case o.ChunkBytes > maxOverwriteChunk && (o.Method == MethodOverwrite || o.Method == MethodAuto):
		return fmt.Errorf("erase chunk of %d bytes: an overwrite takes at most 256 MiB: %w", o.ChunkBytes, ErrInvalid)
	}
	if err := checkStateDir(o.StateDir); err != nil {
		return err
	}
	return nil
}

func checkStateDir(dir string) error {
	if dir == "" {
		return nil
	}
	if !stateDirPattern.MatchString(dir) || path.Clean(dir) != dir || slices.Contains(strings.Split(dir, "/"), "..") {
		return fmt.Errorf("erase state directory %q: want a clean absolute path: %w", dir, ErrInvalid)
	}
	return nil
}

func stateDirOr(dir string) string {
	if dir == "" {
		return DefaultStateDir
	}
	return dir
}

// variant is the job variant the options ask for, "" for auto (the disk
// decides).
func (o EraseOptions) variant() string {
	switch o.Method {
	case MethodNVMe:
		if o.Sanitize {
			return "sanitize"
		}
		return "format"
	case MethodATASecureErase:
		if o.Enhanced {
			return "enhanced"
		}
		return "normal"
	case MethodDiscard:
		switch {
		case o.Secure:
			return "secure"
		case o.Zero:
			return "zeroout"
		}
		return "discard"
	case MethodOverwrite:
		if o.Random {
			return "random"
		}
		return "zero"
	}
	return ""
}

// sameRequest reports whether a job's state answers the options.
func (o EraseOptions) sameRequest(f stateFile) bool {
	if f.Requested != o.Method || (o.Request != "" && f.Job != requestJobID(o.Request)) {
		return false
	}
	switch want := o.variant(); want {
	case "":
		return true
	case "sanitize":
		return strings.HasPrefix(f.Variant, "sanitize-")
	default:
		return f.Variant == want
	}
}

// EraseState is an erase job as its state file and the ramdisk's clock
// show it.
type EraseState struct {
	Disk string `json:"disk"`
	// Requested is the method asked for; Method and Variant what the job
	// does: format, sanitize-block, sanitize-crypto or sanitize-overwrite
	// (nvme); normal or enhanced (ata-secure-erase); discard, secure,
	// zeroout, or verify (a discard read back, then zeroes if need be);
	// zero or random (overwrite).
	Requested Method    `json:"requested"`
	Method    Method    `json:"method"`
	Variant   string    `json:"variant"`
	Status    JobStatus `json:"status"`
	// Phase is the job's current step (overwrite, discard, zeroout,
	// format, sanitize, erase).
	Phase string `json:"phase"`
	// PID is the job's process in the ramdisk.
	PID       int   `json:"pid"`
	SizeBytes int64 `json:"size_bytes"`
	// BytesDone is the offset up to which the current phase is done:
	// written and flushed for overwrite, discarded for discard, and as
	// the controller reports it for a sanitize; 0 until the end for a
	// format and an ATA erase.
	BytesDone int64 `json:"bytes_done"`
	// StartOffset is the offset the job (re)started its current phase at:
	// where a restarted overwrite or discard resumed.
	StartOffset int64 `json:"start_offset,omitempty"`
	// Percent is the progress of the current phase, from BytesDone or,
	// for an ATA erase, from the time the drive estimated (at most 99
	// until it ends).
	Percent float64 `json:"percent"`
	// EstimatedSeconds is the drive's own estimate of an ATA erase.
	EstimatedSeconds int64     `json:"estimated_seconds,omitempty"`
	Started          time.Time `json:"started"`
	Updated          time.Time `json:"updated"`
	// Restarts counts the times the job died and was restarted.
	Restarts int    `json:"restarts,omitempty"`
	Error    string `json:"error,omitempty"`
	// Resumed reports that this call restarted a job that had died.
	Resumed bool `json:"resumed,omitempty"`
	// Alive reports that the job's process is running.
	Alive bool `json:"alive"`
}

// stateFile is the job's state file as jobScript writes it.
type stateFile struct {
	Disk         string `json:"disk"`
	Job          string `json:"job"`
	Requested    Method `json:"requested"`
	Method       Method `json:"method"`
	Variant      string `json:"variant"`
	PID          int    `json:"pid"`
	Status       string `json:"status"`
	Phase        string `json:"phase"`
	Size         int64  `json:"size"`
	Offset       int64  `json:"offset"`
	From         int64  `json:"from"`
	Chunk        int64  `json:"chunk"`
	Param        string `json:"param"`
	Started      int64  `json:"started"`
	PhaseStarted int64  `json:"phase_started"`
	Updated      int64  `json:"updated"`
	Restarts     int    `json:"restarts"`
	Error        string `json:"error"`
}

// job is what the status script read: whether there is a job, whether it
// runs, the ramdisk's time and the state file.
type job struct {
	found, alive bool
	now          int64
	file         stateFile
}

// state turns a job into an EraseState.
func (j job) state() EraseState {
	f := j.file
	st := EraseState{Disk: f.Disk, Requested: f.Requested, Method: f.Method, Variant: f.Variant,
		Status: JobStatus(f.Status), Phase: f.Phase, PID: f.PID, SizeBytes: f.Size, BytesDone: f.Offset, StartOffset: f.From,
		Started: time.Unix(f.Started, 0).UTC(), Updated: time.Unix(f.Updated, 0).UTC(),
		Restarts: f.Restarts, Error: f.Error, Alive: j.alive}
	switch {
	case st.Status == JobDone:
		st.Percent = 100
	case f.Method == MethodATASecureErase:
		minutes, _ := strconv.ParseInt(f.Param, 10, 64)
		st.EstimatedSeconds = minutes * 60
		if f.Phase == "erase" && st.EstimatedSeconds > 0 {
			st.Percent = min(99, float64(max(0, j.now-f.PhaseStarted))*100/float64(st.EstimatedSeconds))
		}
	case f.Size > 0:
		st.Percent = min(100, float64(f.Offset)*100/float64(f.Size))
	}
	return st
}

// readJob runs the status script for disk name.
func readJob(ctx context.Context, r CommandRunner, dir, name string) (job, error) {
	out, err := run(ctx, r, script("bareflow-erase-status", statusScript, dir, name))
	if err != nil {
		return job{}, err
	}
	head, body, _ := strings.Cut(string(out), "\n")
	f := strings.Fields(head)
	if len(f) != 2 {
		return job{}, fmt.Errorf("erase status of /dev/%s: unexpected output %q", name, shorten(string(out), 200))
	}
	j := job{now: atoi64(f[1])}
	switch f[0] {
	case "none":
		return j, nil
	case "alive", "dead":
		j.found, j.alive = true, f[0] == "alive"
	default:
		return job{}, fmt.Errorf("erase status of /dev/%s: unexpected output %q", name, shorten(string(out), 200))
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &j.file); err != nil {
		return job{}, fmt.Errorf("erase state of /dev/%s: %w: %s", name, err, shorten(body, 200))
	}
	return j, nil
}

// jobArgs are the positional parameters of jobScript.
type jobArgs struct {
	dir, name, id string
	requested     Method
	method        Method
	variant       string
	size, chunk   int64
	param         string
	offset        int64
	started       int64
	restarts      int
	phase         string
}

var (
	variantPattern = regexp.MustCompile(`^[a-z][a-z-]{0,31}$`)
	phasePattern   = regexp.MustCompile(`^[a-z]{0,16}$`)
	paramPattern   = regexp.MustCompile(`^[0-9]{1,9}$`)
)

// check refuses arguments that are not what the Go side writes: a resumed
// job's come from a state file.
func (a jobArgs) check() error {
	switch {
	case !kernelName(a.name) || checkStateDir(a.dir) != nil || a.dir == "":
		return fmt.Errorf("erase job of %q in %q: bad disk or directory: %w", a.name, a.dir, ErrInvalid)
	case a.requested.Validate() != nil || a.method.Validate() != nil || a.method == MethodAuto:
		return fmt.Errorf("erase job of /dev/%s: bad method %q (asked %q): %w", a.name, a.method, a.requested, ErrInvalid)
	case !variantPattern.MatchString(a.variant) || !phasePattern.MatchString(a.phase) || !paramPattern.MatchString(a.param):
		return fmt.Errorf("erase job of /dev/%s: bad variant, phase or parameter: %w", a.name, ErrInvalid)
	case a.size <= 0 || a.chunk <= 0 || a.chunk%mebibyte != 0 || a.chunk > maxChunk || a.offset < 0 || a.offset > a.size ||
		a.method == MethodOverwrite && a.chunk > maxOverwriteChunk ||
		a.started < 0 || a.restarts < 0:
		return fmt.Errorf("erase job of /dev/%s: bad size, chunk or offset: %w", a.name, ErrInvalid)
	}
	return nil
}

func (a jobArgs) argv() []string {
	return []string{a.dir, a.name, "/dev/" + a.name, a.id, string(a.requested), string(a.method), a.variant,
		itoa(a.size), itoa(a.chunk), a.param, itoa(a.offset), itoa(a.started), strconv.Itoa(a.restarts), a.phase,
		strconv.Itoa(sanitizePoll)}
}

// launch starts the job detached. It returns how the launcher ended
// (started, attached or busy) and the state it printed.
func launch(ctx context.Context, r CommandRunner, a jobArgs) (string, job, error) {
	if err := a.check(); err != nil {
		return "", job{}, err
	}
	if a.id == "" {
		id := make([]byte, 12)
		if _, err := rand.Read(id); err != nil {
			return "", job{}, err
		}
		a.id = "bf" + hex.EncodeToString(id)
	}
	out, err := run(ctx, r, script("bareflow-erase-start", launchScript, append([]string{jobScript}, a.argv()...)...))
	head, body, _ := strings.Cut(string(out), "\n")
	head = strings.TrimSpace(head)
	if head == "busy" {
		return head, job{}, nil
	}
	if err != nil {
		return "", job{}, fmt.Errorf("start the erase of /dev/%s: %w", a.name, err)
	}
	j := job{found: true, alive: true}
	if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &j.file); err != nil || (head != "started" && head != "attached") {
		return "", job{}, fmt.Errorf("start the erase of /dev/%s: unexpected output %q", a.name, shorten(string(out), 300))
	}
	j.now = j.file.Updated
	return head, j, nil
}

// StartErase starts a full erase of whole disk /dev/NAME as a detached job
// in the ramdisk, and returns its first state; the caller then polls
// EraseStatus. The job outlives the command that started it, the SSH
// session and the worker.
//
// StartErase is idempotent. When a job of the same request (method and
// flags) runs for the disk, it re-attaches to it; when one finished, it
// returns its state; when one died or failed, it resumes it (an overwrite
// or a discard from its last recorded offset). A job of another request
// running on the disk is refused with ErrBusy. Otherwise it checks the
// disk first: it must be a whole, writable disk that nothing mounts, uses
// as swap or is stacked on (run Disks first), and it must support the
// method (ErrUnsupported, or ErrFrozen for an ATA drive whose security is
// frozen). It does not heartbeat: it returns within seconds.
func StartErase(ctx context.Context, r CommandRunner, disk string, o EraseOptions) (EraseState, error) {
	name, err := diskName(disk)
	if err != nil {
		return EraseState{}, err
	}
	if err := o.Validate(); err != nil {
		return EraseState{}, err
	}
	dir := stateDirOr(o.StateDir)
	j, err := readJob(ctx, r, dir, name)
	if err != nil {
		return EraseState{}, err
	}
	if j.found {
		f := j.file
		same := o.sameRequest(f)
		switch {
		case j.alive && same:
			return j.state(), nil
		case j.alive:
			return j.state(), fmt.Errorf("an erase of %s by %s (%s) is running: %w", disk, f.Method, f.Variant, ErrBusy)
		case same && f.Status == string(JobDone):
			return j.state(), nil
		case same && f.Status == string(JobRunning):
			return restart(ctx, r, dir, name, j, f.Restarts+1)
		case same && f.Status == string(JobFailed) && (f.Method == MethodOverwrite || f.Method == MethodDiscard):
			return restart(ctx, r, dir, name, j, 0)
		}
	}

	f, err := inspect(ctx, r, name)
	if err != nil {
		return EraseState{}, err
	}
	if err := checkIdle(ctx, r, f); err != nil {
		return EraseState{}, err
	}
	a, err := plan(ctx, r, f, o)
	if err != nil {
		return EraseState{}, err
	}
	a.dir = dir
	if o.Request != "" {
		a.id = requestJobID(o.Request)
	}
	how, started, err := launch(ctx, r, a)
	if err != nil {
		return EraseState{}, err
	}
	switch {
	case how == "busy":
		return EraseState{}, fmt.Errorf("another start of an erase of %s is at work: %w", disk, ErrBusy)
	case how == "attached" && !o.sameRequest(started.file):
		return started.state(), fmt.Errorf("an erase of %s by %s (%s) is running: %w", disk, started.file.Method, started.file.Variant, ErrBusy)
	}
	return started.state(), nil
}

// EraseStatus reads the state of the erase job of whole disk /dev/NAME
// from stateDir ("" for DefaultStateDir). A job whose process died before
// it ended is restarted first, from where it was: an overwrite or discard
// from its last recorded offset, a sanitize by polling the controller
// again, an NVMe format or ATA erase from the start (both are whole-drive
// commands that can be issued again); after MaxRestarts restarts it is
// reported failed. A failed job returns its state with an error wrapping
// ErrEraseFailed; no job, ErrNoJob. The caller polls it every few seconds
// and heartbeats Percent.
func EraseStatus(ctx context.Context, r CommandRunner, disk, stateDir string) (EraseState, error) {
	name, err := diskName(disk)
	if err != nil {
		return EraseState{}, err
	}
	if err := checkStateDir(stateDir); err != nil {
		return EraseState{}, err
	}
	dir := stateDirOr(stateDir)
	j, err := readJob(ctx, r, dir, name)
	if err != nil {
		return EraseState{}, err
	}
	if !j.found {
		return EraseState{}, fmt.Errorf("%s in %s: %w", disk, dir, ErrNoJob)
	}
	st := j.state()
	switch {
	case st.Status == JobRunning && !j.alive:
		if j.file.Restarts >= MaxRestarts {
			st.Status = JobFailed
			st.Error = fmt.Sprintf("the erase job died %d times", j.file.Restarts+1)
			return st, fmt.Errorf("%w: %s by %s: %s", ErrEraseFailed, disk, st.Method, st.Error)
		}
		return restart(ctx, r, dir, name, j, j.file.Restarts+1)
	case st.Status == JobFailed:
		return st, fmt.Errorf("%w: %s by %s: %s", ErrEraseFailed, disk, st.Method, st.Error)
	case st.Status != JobRunning && st.Status != JobDone:
		return st, fmt.Errorf("erase state of %s: unknown status %q", disk, st.Status)
	}
	return st, nil
}

// restart launches a job again from its state file: overwrite and discard
// from their offset and phase, a sanitize in its phase, others anew.
func restart(ctx context.Context, r CommandRunner, dir, name string, j job, restarts int) (EraseState, error) {
	f := j.file
	a := jobArgs{dir: dir, name: name, requested: f.Requested, method: f.Method, variant: f.Variant,
		size: f.Size, chunk: f.Chunk, param: f.Param, started: f.Started, restarts: restarts}
	if f.Disk != "/dev/"+name {
		return j.state(), fmt.Errorf("erase state of /dev/%s names %q: %w", name, shorten(f.Disk, 40), ErrInvalid)
	}
	switch {
	case f.Method == MethodOverwrite || f.Method == MethodDiscard:
		a.offset, a.phase = f.Offset, f.Phase
	case f.Method == MethodNVMe && f.Phase == "sanitize":
		a.phase = f.Phase
	}
	how, started, err := launch(ctx, r, a)
	if err != nil {
		return j.state(), err
	}
	if how == "busy" {
		// Another caller is restarting it.
		return j.state(), nil
	}
	st := started.state()
	st.Resumed = how == "started"
	return st, nil
}

// checkIdle refuses a disk that is mounted, used as swap, or held by
// another device.
func checkIdle(ctx context.Context, r CommandRunner, f diskFacts) error {
	disk := "/dev/" + f.name
	switch {
	case f.sizeBytes <= 0:
		return fmt.Errorf("%s has no size (no medium?): %w", disk, ErrNoDisk)
	case f.readOnly:
		return fmt.Errorf("%s is read-only: %w", disk, ErrBusy)
	case f.sizeBytes%f.logicalBlock != 0:
		return fmt.Errorf("%s: size %d is not a whole number of %d-byte blocks: %w", disk, f.sizeBytes, f.logicalBlock, ErrUnsupported)
	}
	if hs := f.holders(); len(hs) > 0 {
		return fmt.Errorf("%s is held by %s; wipe it first: %w", disk, nodeNames(hs), ErrBusy)
	}
	u, err := usageOf(ctx, r, f)
	if err != nil {
		return err
	}
	if len(u.mounts) > 0 || len(u.swaps) > 0 {
		return fmt.Errorf("%s is in use (mounted on %s; swap %s); wipe it first: %w", disk,
			strings.Join(u.mounts, ", "), strings.Join(u.swaps, ", "), ErrBusy)
	}
	return nil
}

var nvmeNamespaceName = regexp.MustCompile(`^nvme[0-9]+n[0-9]+$`)

// plan decides the job for the options on the disk, checking that the
// disk supports it.
func plan(ctx context.Context, r CommandRunner, f diskFacts, o EraseOptions) (jobArgs, error) {
	a := jobArgs{name: f.name, requested: o.Method, size: f.sizeBytes, param: "0"}
	chunk := func(def int64) int64 {
		if o.ChunkBytes > 0 {
			return o.ChunkBytes
		}
		return def
	}
	disk := "/dev/" + f.name
	switch o.Method {
	case MethodOverwrite:
		a.method, a.variant, a.chunk = MethodOverwrite, o.variant(), chunk(DefaultOverwriteChunk)
	case MethodDiscard:
		if !o.Zero && f.discardMax <= 0 {
			return a, fmt.Errorf("%s does not support discard (its discard_max_bytes is 0): %w", disk, ErrUnsupported)
		}
		a.method, a.variant, a.chunk = MethodDiscard, o.variant(), chunk(DefaultDiscardChunk)
	case MethodNVMe:
		v, param, err := planNVMe(ctx, r, f, o.Sanitize)
		if err != nil {
			return a, err
		}
		a.method, a.variant, a.param, a.chunk = MethodNVMe, v, param, chunk(DefaultDiscardChunk)
	case MethodATASecureErase:
		v, param, err := planATA(ctx, r, f, o.Enhanced)
		if err != nil {
			return a, err
		}
		a.method, a.variant, a.param, a.chunk = MethodATASecureErase, v, param, chunk(DefaultDiscardChunk)
	case MethodAuto:
		if nvmeNamespaceName.MatchString(f.name) {
			v, param, err := planNVMe(ctx, r, f, false)
			if ctx.Err() != nil {
				return a, ctx.Err()
			}
			if err == nil {
				a.method, a.variant, a.param, a.chunk = MethodNVMe, v, param, chunk(DefaultDiscardChunk)
				return a, nil
			}
		}
		if !f.rotational && f.discardMax > 0 {
			a.method, a.variant, a.chunk = MethodDiscard, "verify", chunk(DefaultDiscardChunk)
			return a, nil
		}
		a.method, a.variant, a.chunk = MethodOverwrite, "zero", chunk(DefaultOverwriteChunk)
	}
	return a, nil
}

// planNVMe checks the namespace's controller: a format needs Format NVM
// (OACS bit 1) and keeps the namespace's LBA format; a sanitize takes the
// best action SANICAP offers.
func planNVMe(ctx context.Context, r CommandRunner, f diskFacts, sanitize bool) (variant, param string, err error) {
	disk := "/dev/" + f.name
	if !nvmeNamespaceName.MatchString(f.name) {
		return "", "", fmt.Errorf("%s is not an NVMe namespace: %w", disk, ErrUnsupported)
	}
	out, err := run(ctx, r, cmd("nvme", "id-ctrl", disk, "-o", "json"))
	if err != nil {
		return "", "", fmt.Errorf("identify the controller of %s: %w", disk, err)
	}
	c, err := parseNVMeController(out)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", disk, err)
	}
	if sanitize {
		act, v := c.sanitizeAction()
		if act == 0 {
			return "", "", fmt.Errorf("the controller of %s (%s) supports no sanitize action (SANICAP %#x): %w",
				disk, strings.TrimSpace(c.MN), c.SANICAP, ErrUnsupported)
		}
		return v, strconv.Itoa(act), nil
	}
	if !c.canFormat() {
		return "", "", fmt.Errorf("the controller of %s (%s) does not support Format NVM (OACS %#x): %w",
			disk, strings.TrimSpace(c.MN), c.OACS, ErrUnsupported)
	}
	out, err = run(ctx, r, cmd("nvme", "id-ns", disk, "-o", "json"))
	if err != nil {
		return "", "", fmt.Errorf("identify namespace %s: %w", disk, err)
	}
	ns, err := parseNVMeNamespace(out)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", disk, err)
	}
	return "format", itoa(ns.lbaFormat()), nil
}

// planATA checks the drive's security feature set with hdparm -I: it must
// be supported, not frozen and its attempt counter not expired. A drive
// whose security is enabled (a password set, such as an earlier erase's
// that did not finish) is taken: the job erases with its own password,
// and fails if the password is another.
func planATA(ctx context.Context, r CommandRunner, f diskFacts, enhanced bool) (variant, param string, err error) {
	disk := "/dev/" + f.name
	if strings.HasPrefix(f.name, "nvme") {
		return "", "", fmt.Errorf("%s is an NVMe disk, not ATA; use method nvme: %w", disk, ErrUnsupported)
	}
	out, err := run(ctx, r, cmd("hdparm", "-I", disk))
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return "", "", fmt.Errorf("hdparm -I cannot identify %s as an ATA drive (%v): %w", disk, err, ErrUnsupported)
	}
	s := parseHdparmSecurity(out)
	switch {
	case !s.present || !s.supported:
		return "", "", fmt.Errorf("%s does not support the ATA security feature set: %w", disk, ErrUnsupported)
	case s.frozen:
		return "", "", fmt.Errorf("%s: its security is frozen (the firmware froze it at boot); power-cycle or hot-plug the drive, or suspend and resume the machine, then retry: %w", disk, ErrFrozen)
	case s.expired:
		return "", "", fmt.Errorf("%s: its security attempt counter expired; power-cycle the drive: %w", disk, ErrUnsupported)
	case enhanced && !s.enhanced:
		return "", "", fmt.Errorf("%s does not support the enhanced security erase: %w", disk, ErrUnsupported)
	}
	if enhanced {
		return "enhanced", itoa(s.enhancedMinutes), nil
	}
	return "normal", itoa(s.normalMinutes), nil
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// requestJobID is the job ID of an erase for request: "bf" and 24 hex
// digits of its SHA-256, as the job script takes IDs.
func requestJobID(request string) string {
	sum := sha256.Sum256([]byte(request))
	return "bf" + hex.EncodeToString(sum[:12])
}
