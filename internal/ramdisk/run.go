package ramdisk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// Defaults and bounds of Command.
const (
	DefaultTimeout   = 5 * time.Minute
	DefaultMaxOutput = 16 << 20
	// StderrLimit is how much of a command's standard error Result keeps:
	// the last StderrLimit bytes.
	StderrLimit = 64 << 10
	// MaxLineLength is the longest line passed to Command.OnLine; the rest
	// of a longer line is dropped.
	MaxLineLength = 4 << 10
)

// Bounds of what errors show.
const (
	exitStderrLimit = 4 << 10 // ExitError.Stderr
	errorStderrMax  = 512     // stderr in ExitError.Error
	errorStderrLine = 3       // lines of stderr in ExitError.Error
	errorDisplayMax = 160     // a command's Display in an error
)

// uploadCleanupTimeout bounds the removal of a failed upload's temporary
// file.
const uploadCleanupTimeout = 10 * time.Second

// Command is one script to run on the ramdisk.
type Command struct {
	// Script is run by the remote user's shell (dash on the ramdisk).
	Script string
	// Display is what errors show instead of Script. Set it for scripts
	// that carry secrets. Default: Script.
	Display string
	// Stdin, when set, is copied to the command's standard input, which is
	// then closed. A read error from Stdin kills the command.
	Stdin io.Reader
	// Timeout bounds the command; when it passes the command is killed.
	// Default 5 minutes.
	Timeout time.Duration
	// MaxOutput is how many bytes of standard output are accepted; a
	// command that writes more is killed and Run returns
	// ErrOutputTooLarge. Default 16 MiB.
	MaxOutput int
	// OnLine, when set, is called with each line of standard output and
	// standard error as it arrives, without its newline, cut at
	// MaxLineLength bytes. Calls are never concurrent; a slow OnLine
	// slows the reading of the command's output.
	OnLine func(line string)
}

func (c Command) withDefaults() Command {
	if c.Display == "" {
		c.Display = c.Script
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxOutput <= 0 {
		c.MaxOutput = DefaultMaxOutput
	}
	return c
}

// Result is what a command wrote and how it ended.
type Result struct {
	Stdout []byte
	// Stderr is the last StderrLimit bytes of standard error.
	Stderr []byte
	// ExitCode is the command's exit status, -1 when a signal killed it.
	ExitCode int
	// Truncated reports that Stdout or Stderr holds less than the command
	// wrote.
	Truncated bool
}

// ExitError reports a command that exited with a non-zero status or was
// killed by a signal.
type ExitError struct {
	// Display is the command's Display (its Script when it had none).
	Display string
	// Code is the exit status, -1 when a signal killed the command.
	Code int
	// Signal is the name of the signal that killed the command, without
	// "SIG" ("KILL", "TERM"); empty when it exited.
	Signal string
	// Stderr is the end of the command's standard error, at most 4 KiB.
	Stderr string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "command %q: ", shorten(e.Display))
	if e.Signal != "" {
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "exit status %d", e.Code)
	}
	if tail := lastLines(e.Stderr, errorStderrLine, errorStderrMax); tail != "" {
		b.WriteString(": ")
		b.WriteString(tail)
	}
	return b.String()
}

// Causes with which a run's context is cancelled from inside.
var errOverflow = errors.New("output limit reached")

type stdinError struct{ err error }

func (e *stdinError) Error() string { return "read stdin: " + e.err.Error() }
func (e *stdinError) Unwrap() error { return e.err }

// Run runs cmd in a new session and waits for it. It returns the output
// with a nil error when the command exits with status 0, and with an
// *ExitError when it exits otherwise. When ctx ends or cmd.Timeout passes,
// the session is sent SIGKILL and closed, and the error wraps ctx.Err() or
// context.DeadlineExceeded. The server delivers that signal to the
// session's process only, the shell running Script, so Run then kills,
// from a second session, every process the shell started (the shell says
// its PID on its first stderr line, which Run keeps out of the output).
// The Result returned with an error holds the output read until then;
// OnLine is not called once Run has returned.
func (c *Client) Run(ctx context.Context, cmd Command) (Result, error) {
	cmd = cmd.withDefaults()
	shown := shorten(cmd.Display)
	if strings.TrimSpace(cmd.Script) == "" {
		return Result{}, fmt.Errorf("command %q: empty script", shown)
	}

	timeoutCtx, cancelTimeout := context.WithTimeout(ctx, cmd.Timeout)
	defer cancelTimeout()
	runCtx, cancel := context.WithCancelCause(timeoutCtx)
	defer cancel(nil)

	abort := func(out *output) (Result, error) {
		var res Result
		if out != nil {
			res = out.result()
		}
		cause := context.Cause(runCtx)
		var se *stdinError
		switch {
		case errors.Is(cause, errOverflow):
			res.Truncated = true
			return res, fmt.Errorf("command %q: %w: more than %d bytes on stdout", shown, ErrOutputTooLarge, cmd.MaxOutput)
		case errors.As(cause, &se):
			return res, fmt.Errorf("command %q: %w", shown, se)
		case ctx.Err() != nil:
			return res, fmt.Errorf("command %q: %w", shown, ctx.Err())
		default:
			return res, fmt.Errorf("command %q: timed out after %s: %w", shown, cmd.Timeout, context.DeadlineExceeded)
		}
	}

	sess, err := c.newSession(runCtx)
	if err != nil {
		if runCtx.Err() != nil {
			return abort(nil)
		}
		return Result{}, c.connError(shown, "open session", err)
	}
	defer sess.Close()

	stdout, err := sess.StdoutPipe()
	if err != nil {
		return Result{}, fmt.Errorf("command %q: %w", shown, err)
	}
	stderr, err := sess.StderrPipe()
	if err != nil {
		return Result{}, fmt.Errorf("command %q: %w", shown, err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return Result{}, fmt.Errorf("command %q: %w", shown, err)
	}
	out := newOutput(cmd.MaxOutput, cmd.OnLine, func() { cancel(errOverflow) })
	defer out.stop()

	// The shell first says its PID on stderr, so that a timeout can kill
	// every process the script started, not only the shell.
	if err := sess.Start(pidMarkerLine + cmd.Script); err != nil {
		return Result{}, c.connError(shown, "start", err)
	}
	var shellPID atomic.Int64

	stdoutDone := make(chan struct{})
	stderrDone := make(chan struct{})
	go func() {
		defer close(stdoutDone)
		out.pump(stdout, false)
	}()
	go func() {
		defer close(stderrDone)
		out.pump(takePIDMarker(stderr, &shellPID), true)
	}()
	go func() {
		if cmd.Stdin != nil {
			src := &readErrorReader{r: cmd.Stdin}
			if _, err := io.Copy(stdin, src); src.err != nil {
				cancel(&stdinError{err: src.err})
				return
			} else if err != nil {
				// The command stopped reading; its exit status tells
				// how it went.
				return
			}
		}
		_ = stdin.Close()
	}()

	waitDone := make(chan error, 1)
	go func() { waitDone <- sess.Wait() }()

	var waitErr error
	pending := 3
	for pending > 0 {
		select {
		case waitErr = <-waitDone:
			waitDone = nil
		case <-stdoutDone:
			stdoutDone = nil
		case <-stderrDone:
			stderrDone = nil
		case <-runCtx.Done():
			// The tree first, while the shell still links its children
			// to it; then the session, in case the tree could not be.
			if pid := shellPID.Load(); pid > 0 {
				c.killTree(pid)
			}
			_ = sess.Signal(ssh.SIGKILL)
			_ = sess.Close()
			return abort(out)
		}
		pending--
	}
	var se *stdinError
	if cause := context.Cause(runCtx); errors.Is(cause, errOverflow) || errors.As(cause, &se) {
		// The output overflowed, or stdin failed, as the command ended.
		return abort(out)
	}

	res := out.result()
	if waitErr == nil {
		return res, nil
	}
	var exit *ssh.ExitError
	if errors.As(waitErr, &exit) {
		e := &ExitError{
			Display: cmd.Display,
			Code:    exit.ExitStatus(),
			Stderr:  tail(string(res.Stderr), exitStderrLimit),
		}
		if sig := exit.Signal(); sig != "" {
			e.Code = -1
			e.Signal = strings.TrimPrefix(sig, "SIG")
		}
		res.ExitCode = e.Code
		return res, e
	}
	var missing *ssh.ExitMissingError
	if errors.As(waitErr, &missing) {
		if lost := c.lostErr(); lost != nil {
			return res, fmt.Errorf("command %q: %w", shown, lost)
		}
		return res, fmt.Errorf("command %q: %w: session closed without an exit status", shown, ErrConnectionLost)
	}
	return res, c.connError(shown, "wait", waitErr)
}

// pidMarker starts the first stderr line of every command: the PID of the
// shell running it.
const pidMarker = "bareflow-shell-pid:"

// pidMarkerLine prints the marker; it comes before the script.
// PIDPrologue is the same, for a server that shows the commands it ran.
const pidMarkerLine = PIDPrologue

// PIDPrologue is what Run puts before every script: it prints the shell's
// PID on stderr, which Run reads and keeps out of the output.
const PIDPrologue = `printf '` + pidMarker + `%s\n' "$$" >&2; `

// takePIDMarker reads the marker line off r, stores the PID, and returns
// the rest of r. A first line without the marker is kept.
func takePIDMarker(r io.Reader, pid *atomic.Int64) io.Reader {
	br := bufio.NewReaderSize(r, 256)
	line, err := br.ReadString('\n')
	if rest, ok := strings.CutPrefix(line, pidMarker); ok {
		if n, perr := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); perr == nil && n > 1 {
			pid.Store(n)
		}
		return br
	}
	if err != nil && line == "" {
		return br
	}
	return io.MultiReader(strings.NewReader(line), br)
}

// killTreeScript kills a process and everything it started, found through
// /proc (the ramdisk's ps cannot list children): the processes of its
// session and process group (the server makes the shell a session leader;
// its children stay in the session when they are orphaned) and, for a
// server that does not, its descendants by parent PID. The server's
// SIGKILL reaches only the session's shell, and a program it started
// (mkfs, an image write) would go on writing the disk.
const killTreeScript = `t=" $1 "; changed=1; n=0
while [ "$changed" = 1 ] && [ "$n" -lt 32 ]; do
	changed=0; n=$((n + 1))
	for s in /proc/[0-9]*/stat; do
		read -r l <"$s" 2>/dev/null || continue
		p=${l%% *}; r=${l##*) }; set -- $r
		case "$t" in *" $p "*) continue ;; esac
		case "$t" in *" $2 "*|*" $3 "*|*" $4 "*) t="$t$p "; changed=1 ;; esac
	done
done
kill -KILL $t 2>/dev/null; true`

// killTree kills, from a session of its own, the shell of a command that
// timed out or was canceled, and everything it started. It is bounded in
// time and best effort: a lost connection leaves nothing to do it with.
func (c *Client) killTree(pid int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := c.newSession(ctx)
	if err != nil {
		return
	}
	defer sess.Close()
	done := make(chan struct{})
	go func() {
		_ = sess.Run("sh -c " + Quote(killTreeScript) + " kill-tree " + strconv.FormatInt(pid, 10))
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// newSession opens a session, giving up when ctx ends.
func (c *Client) newSession(ctx context.Context) (*ssh.Session, error) {
	type opened struct {
		sess *ssh.Session
		err  error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := c.conn.NewSession()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		return o.sess, o.err
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.sess != nil {
				_ = o.sess.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// connError wraps an error of the connection under a command.
func (c *Client) connError(shown, step string, err error) error {
	if lost := c.lostErr(); lost != nil {
		return fmt.Errorf("command %q: %s: %w", shown, step, lost)
	}
	if isNetworkFailure(err) {
		return fmt.Errorf("command %q: %s: %w: %w", shown, step, ErrConnectionLost, err)
	}
	return fmt.Errorf("command %q: %s: %w", shown, step, err)
}

// Upload writes the content of r to the file at the absolute path name on
// the ramdisk with permissions mode.Perm(), replacing it when it exists. The
// content goes to name + ".bareflow-upload" first and is renamed into place
// once complete, so a failed upload never leaves a partial file at name
// (the temporary file is removed afterwards when the connection still
// works). Upload is bounded by ctx and by DefaultTimeout.
func (c *Client) Upload(ctx context.Context, name string, mode os.FileMode, r io.Reader) error {
	if !path.IsAbs(name) || strings.HasSuffix(name, "/") {
		return fmt.Errorf("upload to %q: not an absolute file path", name)
	}
	tmp := name + ".bareflow-upload"
	script := fmt.Sprintf("cat > %[1]s && chmod %04[2]o %[1]s && mv -f %[1]s %[3]s || { rm -f %[1]s; exit 1; }",
		Quote(tmp), uint32(mode.Perm()), Quote(name))
	_, err := c.Run(ctx, Command{Script: script, Display: "upload " + name, Stdin: r})
	if err != nil {
		// A killed upload leaves its temporary file; remove it if the
		// connection still works.
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), uploadCleanupTimeout)
		defer cancel()
		_, _ = c.Run(cleanupCtx, Command{Script: "rm -f " + Quote(tmp), Display: "remove " + tmp})
	}
	return err
}

// readErrorReader remembers the first error of r other than io.EOF, so that
// a failed source can be told from a command that stopped reading.
type readErrorReader struct {
	r   io.Reader
	err error
}

func (r *readErrorReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// output collects a command's stdout and stderr and feeds OnLine.
type output struct {
	maxStdout  int
	onOverflow func()

	mu         sync.Mutex
	stdout     []byte
	stderr     []byte
	truncated  bool
	overflowed bool

	lineMu  sync.Mutex
	stopped bool // Run has returned: no more OnLine calls
	onLine  func(string)
	outLine lineSplitter
	errLine lineSplitter
}

func newOutput(maxStdout int, onLine func(string), onOverflow func()) *output {
	return &output{maxStdout: maxStdout, onOverflow: onOverflow, onLine: onLine}
}

// pump reads r to its end into stdout or stderr.
func (o *output) pump(r io.Reader, isStderr bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if o.add(buf[:n], isStderr) {
				o.lines(buf[:n], isStderr)
			}
		}
		if err != nil {
			o.flushLines(isStderr)
			return
		}
	}
}

// add stores p and reports whether the output is still being kept.
func (o *output) add(p []byte, isStderr bool) bool {
	o.mu.Lock()
	if o.overflowed {
		o.mu.Unlock()
		return false
	}
	if isStderr {
		o.stderr = append(o.stderr, p...)
		if len(o.stderr) > 2*StderrLimit {
			o.stderr = append(o.stderr[:0], o.stderr[len(o.stderr)-StderrLimit:]...)
			o.truncated = true
		}
		o.mu.Unlock()
		return true
	}
	if len(o.stdout)+len(p) > o.maxStdout {
		o.stdout = append(o.stdout, p[:o.maxStdout-len(o.stdout)]...)
		o.overflowed = true
		o.truncated = true
		o.mu.Unlock()
		o.onOverflow()
		return false
	}
	o.stdout = append(o.stdout, p...)
	o.mu.Unlock()
	return true
}

func (o *output) lines(p []byte, isStderr bool) {
	if o.onLine == nil {
		return
	}
	o.lineMu.Lock()
	defer o.lineMu.Unlock()
	if o.stopped {
		return
	}
	if isStderr {
		o.errLine.write(p, o.onLine)
	} else {
		o.outLine.write(p, o.onLine)
	}
}

func (o *output) flushLines(isStderr bool) {
	if o.onLine == nil {
		return
	}
	o.mu.Lock()
	overflowed := o.overflowed
	o.mu.Unlock()
	if overflowed {
		return
	}
	o.lineMu.Lock()
	defer o.lineMu.Unlock()
	if o.stopped {
		return
	}
	if isStderr {
		o.errLine.flush(o.onLine)
	} else {
		o.outLine.flush(o.onLine)
	}
}

// stop ends the calls of OnLine; when it returns, none is running.
func (o *output) stop() {
	o.lineMu.Lock()
	o.stopped = true
	o.lineMu.Unlock()
}

// result returns a copy of what was collected so far.
func (o *output) result() Result {
	o.mu.Lock()
	defer o.mu.Unlock()
	res := Result{
		Stdout:    bytes.Clone(o.stdout),
		Stderr:    bytes.Clone(o.stderr),
		Truncated: o.truncated,
	}
	if len(res.Stderr) > StderrLimit {
		res.Stderr = res.Stderr[len(res.Stderr)-StderrLimit:]
		res.Truncated = true
	}
	if res.Stdout == nil {
		res.Stdout = []byte{}
	}
	if res.Stderr == nil {
		res.Stderr = []byte{}
	}
	return res
}

// lineSplitter cuts a stream into lines of at most MaxLineLength bytes.
type lineSplitter struct {
	buf  []byte
	skip bool // dropping the rest of an over-long line
}

func (l *lineSplitter) write(p []byte, emit func(string)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		if !l.skip {
			if room := MaxLineLength - len(l.buf); len(chunk) > room {
				l.buf = append(l.buf, chunk[:room]...)
				emit(string(l.buf))
				l.buf = l.buf[:0]
				l.skip = true
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		if i >= 0 {
			if !l.skip {
				emit(string(bytes.TrimSuffix(l.buf, []byte("\r"))))
			}
			l.buf = l.buf[:0]
			l.skip = false
		}
	}
}

func (l *lineSplitter) flush(emit func(string)) {
	if len(l.buf) > 0 && !l.skip {
		emit(string(bytes.TrimSuffix(l.buf, []byte("\r"))))
	}
	l.buf = l.buf[:0]
	l.skip = false
}

// shorten cuts a command's Display for an error message.
func shorten(s string) string {
	if len(s) <= errorDisplayMax {
		return s
	}
	cut := errorDisplayMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// tail returns the last max bytes of s, starting at a rune boundary.
func tail(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := len(s) - max
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return s[cut:]
}

// lastLines returns the last n non-empty lines of s joined by "; ", at most
// max bytes of them.
func lastLines(s string, n, max int) string {
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return tail(strings.Join(lines, "; "), max)
}
