package wipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"bareflow/internal/ramdisk"
)

// shRunner runs each command as the SSH runner does in the ramdisk: its
// words quoted with ramdisk.Quote and joined into one line for sh -c. The
// shell runs in a process group of its own, which is killed when the
// command ends or is canceled, as the SSH runner kills a command's process
// tree: whatever a command leaves behind dies unless it detached itself.
type shRunner struct {
	// shell is the shell to run (default "sh"); path, when set, is the
	// commands' PATH.
	shell, path string
}

func (s shRunner) Run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error) {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = ramdisk.Quote(a)
	}
	shell := s.shell
	if shell == "" {
		shell = "sh"
	}
	c := exec.CommandContext(ctx, shell, "-c", strings.Join(q, " "))
	c.Stdin = stdin
	if s.path != "" {
		c.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "PATH=") }), "PATH="+s.path)
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	if c.Process != nil {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// fakeRunner answers commands from canned outputs and records them. A
// command is known by its key: its words joined by spaces, or for a script
// its name and arguments (the erase launcher's job script left out).
type fakeRunner struct {
	mu sync.Mutex
	// outputs maps a key to its outputs, used in turn; the last repeats.
	outputs map[string][]string
	// files maps a key to a file under testdata.
	files map[string]string
	// fails maps a key to the error output of a failed run.
	fails map[string]string
	ran   []string
	argvs [][]string
}

func (f *fakeRunner) Run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error) {
	k := fakeKey(argv)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran = append(f.ran, k)
	f.argvs = append(f.argvs, slices.Clone(argv))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if out, ok := f.fails[k]; ok {
		return []byte(out), errors.New("exit status 1: " + out)
	}
	if outs, ok := f.outputs[k]; ok && len(outs) > 0 {
		out := outs[0]
		if len(outs) > 1 {
			f.outputs[k] = outs[1:]
		}
		return []byte(out), nil
	}
	if file, ok := f.files[k]; ok {
		return os.ReadFile("testdata/" + file)
	}
	return nil, fmt.Errorf("exit status 127: fake runner knows no %q", k)
}

func fakeKey(argv []string) string {
	if len(argv) >= 4 && argv[0] == "sh" && argv[1] == "-c" {
		args := argv[4:]
		if argv[3] == "bareflow-erase-start" && len(args) > 2 {
			args = args[1:3] // the state directory and the disk's name
		}
		return strings.TrimSpace(argv[3] + " " + strings.Join(args, " "))
	}
	return strings.Join(argv, " ")
}

// commands are the keys of the commands run, in order.
func (f *fakeRunner) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ran)
}

// launched returns the job's arguments of the launcher's run, or nil.
func (f *fakeRunner) launched() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.argvs {
		if len(a) > 5 && a[3] == "bareflow-erase-start" {
			return a[5:]
		}
	}
	return nil
}

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("BAREFLOW_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("integration required: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}
