package ramdisk

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testTimeout bounds every wait of these tests.
const testTimeout = 20 * time.Second

// setup starts a test server that authorizes a fresh client key and returns
// it with a Config for it.
func setup(t *testing.T) (*testServer, Config) {
	t.Helper()
	signer := newSigner(t)
	srv := newTestServer(t, signer.PublicKey())
	return srv, Config{Addr: srv.addr(), HostKey: srv.hostKey(), Signer: signer, User: "root"}
}

func dial(t *testing.T, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func run(t *testing.T, c *Client, cmd Command) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return c.Run(ctx, cmd)
}

func TestRunOK(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	res, err := run(t, c, Command{Script: "echo hello; echo warn >&2"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := string(res.Stdout), "hello\n"; got != want {
		t.Errorf("stdout: got %q, want %q", got, want)
	}
	if got, want := string(res.Stderr), "warn\n"; got != want {
		t.Errorf("stderr: got %q, want %q", got, want)
	}
	if res.ExitCode != 0 || res.Truncated {
		t.Errorf("exit code %d, truncated %v: want 0, false", res.ExitCode, res.Truncated)
	}
	// Several sessions on one connection, one after the other and at once.
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			res, err := run(t, c, Command{Script: "echo " + strconv.Itoa(i)})
			if err == nil && string(res.Stdout) != strconv.Itoa(i)+"\n" {
				err = errors.New("got " + string(res.Stdout))
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Run: %v", err)
		}
	}
}

func TestDialErrors(t *testing.T) {
	srv, cfg := setup(t)

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := map[string]struct {
		change func(*Config)
		want   error
	}{
		"wrong host key": {
			change: func(c *Config) { c.HostKey = AuthorizedKey(newSigner(t), "other") },
			want:   ErrHostKeyMismatch,
		},
		"unknown client key": {
			change: func(c *Config) { c.Signer = newSigner(t) },
			want:   ErrAuth,
		},
		"port closed": {
			change: func(c *Config) { c.Addr = closedAddr },
			want:   ErrUnreachable,
		},
		"no signer": {
			change: func(c *Config) { c.Signer = nil },
			want:   ErrInvalidConfig,
		},
		"bad host key": {
			change: func(c *Config) { c.HostKey = "ssh-ed25519 garbage" },
			want:   ErrInvalidConfig,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := cfg
			tt.change(&c)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			client, err := Dial(ctx, c)
			if err == nil {
				client.Close()
				t.Fatalf("Dial: got no error, want %v", tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Dial: got %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrHostKeyMismatch, ErrAuth, ErrUnreachable, ErrInvalidConfig} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("Dial: %v is also %v", err, other)
				}
			}
		})
	}
	_ = srv
}

func TestDialPortClosedWrapsCause(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, cfg := setup(t)
	cfg.Addr = addr
	_, err = Dial(context.Background(), cfg)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial: got %v, want it to wrap ECONNREFUSED", err)
	}
}

// A server that accepts TCP connections but never speaks SSH must not hold
// Dial past its context.
func TestDialHandshakeHonoursContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, cfg := setup(t)
	cfg.Addr = l.Addr().String()

	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Dial(ctx, cfg)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Dial: got %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Dial took %s, want about 200ms", d)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := Dial(ctx, cfg)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Dial: got %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Dial took %s, want about 200ms", d)
		}
	})
	t.Run("dial timeout", func(t *testing.T) {
		c := cfg
		c.DialTimeout = 200 * time.Millisecond
		_, err := Dial(context.Background(), c)
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("Dial: got %v, want ErrUnreachable", err)
		}
	})
}

func TestExitError(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	res, err := run(t, c, Command{Script: "echo partial; echo first >&2; echo 'lsblk: bad usage' >&2; exit 2", Display: "lsblk -J"})
	var exit *ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("Run: got %v, want *ExitError", err)
	}
	if exit.Code != 2 || res.ExitCode != 2 {
		t.Errorf("exit code: got %d (result %d), want 2", exit.Code, res.ExitCode)
	}
	if got, want := err.Error(), `command "lsblk -J": exit status 2: first; lsblk: bad usage`; got != want {
		t.Errorf("error: got %q, want %q", got, want)
	}
	if !strings.Contains(exit.Stderr, "bad usage") {
		t.Errorf("ExitError.Stderr: got %q, want it to hold the stderr", exit.Stderr)
	}
	if string(res.Stdout) != "partial\n" {
		t.Errorf("stdout: got %q, want %q", res.Stdout, "partial\n")
	}
}

func TestKilledBySignal(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	_, err := run(t, c, Command{Script: "kill -TERM $$"})
	var exit *ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("Run: got %v, want *ExitError", err)
	}
	if exit.Code != -1 || exit.Signal != "TERM" {
		t.Errorf("got code %d signal %q, want -1 TERM", exit.Code, exit.Signal)
	}
	if !strings.Contains(err.Error(), "killed by signal TERM") {
		t.Errorf("error: got %q, want it to name the signal", err)
	}
}

func TestTimeoutKills(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	_, err := run(t, c, Command{Script: "echo $$ > " + Quote(pidFile) + "; exec sleep 60", Timeout: 300 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run returned after %s, want about 300ms", d)
	}
	if !strings.Contains(err.Error(), "sleep 60") || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("error: got %q, want it to name the command and the timeout", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "sleep to be killed", func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH })
}

func TestContextCancelKills(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	pidFile := filepath.Join(t.TempDir(), "pid")
	_, err := c.Run(ctx, Command{Script: "echo $$ > " + Quote(pidFile) + "; sleep 60; true"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got %v, want context.Canceled", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the shell to be killed", func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH })
}

func TestOnLineStreams(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	lines := make(chan string, 10)
	stdin, feed := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := run(t, c, Command{
			Script: "echo first; echo second >&2; cat >/dev/null; echo last",
			Stdin:  stdin,
			OnLine: func(line string) { lines <- line },
		})
		done <- err
	}()
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case line := <-lines:
			got[line] = true
		case err := <-done:
			t.Fatalf("Run ended before its first lines were seen: %v", err)
		case <-time.After(testTimeout):
			t.Fatalf("lines: got %v, want first and second while the command runs", got)
		}
	}
	if !got["first"] || !got["second"] {
		t.Errorf("lines: got %v, want first and second", got)
	}
	select {
	case err := <-done:
		t.Fatalf("Run ended while its stdin was open: %v", err)
	default:
	}
	feed.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not end after stdin closed")
	}
	if line := <-lines; line != "last" {
		t.Errorf("last line: got %q, want %q", line, "last")
	}
}

func TestOutputTooLarge(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	start := time.Now()
	res, err := run(t, c, Command{Script: "yes", MaxOutput: 4096})
	if !errors.Is(err, ErrOutputTooLarge) {
		t.Fatalf("Run: got %v, want ErrOutputTooLarge", err)
	}
	if !strings.Contains(err.Error(), `"yes"`) {
		t.Errorf("error: got %q, want it to name the command", err)
	}
	if len(res.Stdout) != 4096 || !res.Truncated {
		t.Errorf("result: got %d bytes, truncated %v; want 4096, true", len(res.Stdout), res.Truncated)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %s", d)
	}
	// Exactly MaxOutput bytes is fine.
	res, err = run(t, c, Command{Script: "head -c 4096 /dev/zero", MaxOutput: 4096})
	if err != nil || len(res.Stdout) != 4096 {
		t.Errorf("Run of exactly MaxOutput: got %d bytes, %v; want 4096, nil", len(res.Stdout), err)
	}
}

func TestDisplayHidesScript(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	const secret = "s3cret-Pa55"
	tests := map[string]Command{
		"exit":     {Script: "echo " + secret + " >/dev/null; echo failed >&2; exit 3"},
		"timeout":  {Script: "sleep 60 # " + secret, Timeout: 100 * time.Millisecond},
		"overflow": {Script: "yes " + secret + "-not-printed | tr -d a-z", MaxOutput: 10},
	}
	for name, cmd := range tests {
		t.Run(name, func(t *testing.T) {
			cmd.Display = "ipmitool user set password 2 (redacted)"
			_, err := run(t, c, cmd)
			if err == nil {
				t.Fatal("Run: got no error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the secret", err)
			}
			if !strings.Contains(err.Error(), cmd.Display) {
				t.Errorf("error %q does not show the Display", err)
			}
		})
	}
}

func TestUpload(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	dir := t.TempDir()
	name := filepath.Join(dir, "it's a \"tricky\" $(touch pwned) `id` name;\n& *.txt")
	content := "line one\n$HOME 'quoted' \\ back\x00binary\n"
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.Upload(ctx, name, 0o640, strings.NewReader(content)); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Errorf("content: got %q, want %q", got, content)
	}
	info, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o640 {
		t.Errorf("mode: got %v, want 0640", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the file", len(entries))
	}

	// A source that fails leaves no file behind.
	failed := filepath.Join(dir, "failed")
	err = c.Upload(ctx, failed, 0o600, io.MultiReader(strings.NewReader("part"), errReader{}))
	if err == nil || !strings.Contains(err.Error(), "broken source") {
		t.Errorf("Upload from a failing source: got %v, want the source's error", err)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("after a failed upload the folder holds %d entries, want only the first file", len(entries))
	}

	if err := c.Upload(ctx, "relative/path", 0o600, strings.NewReader("")); err == nil {
		t.Error("Upload to a relative path: got no error")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken source") }

func TestKeepaliveClosesDeadConnection(t *testing.T) {
	srv, cfg := setup(t)
	cfg.KeepaliveInterval = 50 * time.Millisecond
	c := dial(t, cfg)
	if _, err := run(t, c, Command{Script: "true"}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	srv.ignoreKeepalives.Store(true)
	select {
	case <-c.done:
	case <-time.After(testTimeout):
		t.Fatal("client still open with keepalives unanswered")
	}
	_, err := run(t, c, Command{Script: "true"})
	if !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Run after keepalives failed: got %v, want ErrConnectionLost", err)
	}
}

func TestKeepaliveKeepsLiveConnection(t *testing.T) {
	_, cfg := setup(t)
	cfg.KeepaliveInterval = 20 * time.Millisecond
	c := dial(t, cfg)
	time.Sleep(300 * time.Millisecond)
	if _, err := run(t, c, Command{Script: "true"}); err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestConnectionLost(t *testing.T) {
	srv, cfg := setup(t)
	c := dial(t, cfg)
	time.AfterFunc(200*time.Millisecond, srv.close)
	_, err := run(t, c, Command{Script: "sleep 60"})
	if !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Run: got %v, want ErrConnectionLost", err)
	}
}

func TestCloseTwice(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := run(t, c, Command{Script: "true"}); err == nil {
		t.Error("Run after Close: got no error")
	}
}

func TestConfig(t *testing.T) {
	signer := newSigner(t)
	hostKey := AuthorizedKey(newSigner(t), "")
	tests := map[string]struct {
		addr    string
		want    string
		wantErr bool
	}{
		"host":           {addr: "192.0.2.7", want: "192.0.2.7:22"},
		"host and port":  {addr: "192.0.2.7:2222", want: "192.0.2.7:2222"},
		"name":           {addr: "ramdisk.example", want: "ramdisk.example:22"},
		"bare ipv6":      {addr: "2001:db8::7", want: "[2001:db8::7]:22"},
		"bracketed ipv6": {addr: "[2001:db8::7]", want: "[2001:db8::7]:22"},
		"ipv6 and port":  {addr: "[2001:db8::7]:2222", want: "[2001:db8::7]:2222"},
		"empty":          {addr: "", wantErr: true},
		"bad port":       {addr: "192.0.2.7:x", wantErr: true},
		"no host":        {addr: ":22", wantErr: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := Config{Addr: tt.addr, HostKey: hostKey, Signer: signer}.Validate()
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Errorf("Validate: got %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got, _ := hostPort(tt.addr); got != tt.want {
				t.Errorf("address: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHostKeyAlgorithms(t *testing.T) {
	ed := newSigner(t).PublicKey()
	if got := hostKeyAlgorithms(ed); len(got) != 1 || got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("ed25519: got %v, want [%s]", got, ssh.KeyAlgoED25519)
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	got := hostKeyAlgorithms(rsaKey)
	want := []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("rsa: got %v, want %v", got, want)
	}
}

func TestLineSplitter(t *testing.T) {
	long := strings.Repeat("x", MaxLineLength+100)
	tests := map[string]struct {
		writes []string
		want   []string
	}{
		"lines":             {writes: []string{"a\nb\n"}, want: []string{"a", "b"}},
		"split across":      {writes: []string{"ab", "c\nd", "e\n"}, want: []string{"abc", "de"}},
		"no final newline":  {writes: []string{"a\nlast"}, want: []string{"a", "last"}},
		"crlf":              {writes: []string{"a\r\n"}, want: []string{"a"}},
		"empty line":        {writes: []string{"\n\n"}, want: []string{"", ""}},
		"long line cut":     {writes: []string{long + "\nnext\n"}, want: []string{long[:MaxLineLength], "next"}},
		"long across":       {writes: []string{long[:3000], long[3000:], "\nnext"}, want: []string{long[:MaxLineLength], "next"}},
		"exactly max":       {writes: []string{long[:MaxLineLength] + "\n"}, want: []string{long[:MaxLineLength]}},
		"exactly max split": {writes: []string{long[:MaxLineLength], "\nz\n"}, want: []string{long[:MaxLineLength], "z"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			emit := func(s string) { got = append(got, s) }
			var l lineSplitter
			for _, w := range tt.writes {
				l.write([]byte(w), emit)
			}
			l.flush(emit)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %d lines %.80q, want %d lines %.80q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func TestStderrKeepsTail(t *testing.T) {
	_, cfg := setup(t)
	c := dial(t, cfg)
	res, err := run(t, c, Command{Script: "head -c 200000 /dev/zero | tr '\\0' a >&2; echo END >&2"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Stderr) != StderrLimit || !res.Truncated || !strings.HasSuffix(string(res.Stderr), "aEND\n") {
		t.Errorf("stderr: got %d bytes ending %q, truncated %v; want %d ending aEND, true",
			len(res.Stderr), res.Stderr[max(0, len(res.Stderr)-10):], res.Truncated, StderrLimit)
	}
}

// waitFor polls cond until it holds, failing the test after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
