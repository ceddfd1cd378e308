package fakeramdisk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"bareflow/internal/ramdisk"
)

const testTimeout = 30 * time.Second

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, signer, err := ramdisk.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

func dial(t *testing.T, r *Ramdisk, signer ssh.Signer) (*ramdisk.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := ramdisk.Dial(ctx, ramdisk.Config{Addr: r.Addr(), HostKey: r.HostKey(), Signer: signer})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func run(t *testing.T, c *ramdisk.Client, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	res, err := c.Run(ctx, ramdisk.Command{Script: script})
	if err != nil {
		t.Fatalf("run %q: %v", script, err)
	}
	return string(res.Stdout)
}

// rootSSHState describes the host's /root/.ssh, to check that the fake
// ramdisk leaves it alone.
func rootSSHState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	entries, err := os.ReadDir("/root/.ssh")
	if err != nil {
		return err.Error()
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue
		}
		b.WriteString(e.Name() + " " + info.ModTime().String() + " " + info.Mode().String() + "\n")
	}
	return b.String()
}

func TestFakeRamdisk(t *testing.T) {
	before := rootSSHState(t)
	signer := newKey(t)
	const serial = "SN-1234 'quoted' $HOME\n"
	r := Start(t, Options{
		AuthorizedKey: ramdisk.AuthorizedKey(signer, "bareflow-test"),
		Tools: map[string]string{
			"dmidecode": CannedByArgs(
				Answer{Args: "-s system-serial-number", Stdout: serial},
				Answer{Args: "-t *", Stdout: "type dump\n"},
			),
			"lspci":  CannedOutput("00:00.0 Host bridge: Intel Corporation 440FX\n"),
			"nvme":   CannedByArgs(Answer{Args: "list -o json", Stderr: "no nvme\n", Exit: 1}),
			"wrapme": "exec printf '%s|' \"$@\"\n",
		},
		Files: map[string]string{
			"/proc/cpuinfo":                  "processor\t: 0\nmodel name\t: Fake CPU\n",
			"/sys/block/vda/size":            "2097152\n",
			"/sys/block/vda/device/model":    "QEMU HARDDISK\n",
			"/root/notes.txt":                "in the fake home\n",
			"/sys/class/net/eth0/address":    "52:54:00:12:34:56\n",
			"/sys/class/net/eth0/operstate":  "up\n",
			"/sys/devices/virtual/fake/none": "x\n",
		},
		Links:  map[string]string{"/sys/class/net/eth1": "../../devices/virtual/fake"},
		Shadow: []string{"/sys/block", "/sys/class/net", "/sys/devices/virtual"},
	})
	c, err := dial(t, r, signer)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}

	tests := map[string]struct{ script, want string }{
		"canned tool":         {"dmidecode -s system-serial-number", serial},
		"canned by pattern":   {"dmidecode -t 17", "type dump\n"},
		"canned output":       {"lspci -vmm", "00:00.0 Host bridge: Intel Corporation 440FX\n"},
		"tool arguments":      {"wrapme 'a b' c", "a b|c|"},
		"real command":        {"id -u; echo $HOME; printf '%s' \"$0\"", "0\n/root\n/bin/sh"},
		"fake proc file":      {"grep 'model name' /proc/cpuinfo", "model name\t: Fake CPU\n"},
		"shadowed folder":     {"ls /sys/block; cat /sys/block/vda/size /sys/block/vda/device/model", "vda\n2097152\nQEMU HARDDISK\n"},
		"net folder":          {"ls /sys/class/net; cat /sys/class/net/eth0/address", "eth0\neth1\n52:54:00:12:34:56\n"},
		"link":                {"readlink /sys/class/net/eth1; cat /sys/class/net/eth1/none", "../../devices/virtual/fake\nx\n"},
		"fake home":           {"cat /root/notes.txt", "in the fake home\n"},
		"real file untouched": {"test -r /etc/os-release && echo yes", "yes\n"},
		"path":                {"echo \"$PATH\"", r.dir + "/bin:" + SystemPath + "\n"},
	}
	var scripts []string
	names := make([]string, 0, len(tests))
	for name := range tests {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		tt := tests[name]
		t.Run(name, func(t *testing.T) {
			if got := run(t, c, tt.script); got != tt.want {
				t.Errorf("%s: got %q, want %q", tt.script, got, tt.want)
			}
		})
		scripts = append(scripts, tt.script)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err = c.Run(ctx, ramdisk.Command{Script: "nvme list -o json", Display: "nvme list"})
	var exit *ramdisk.ExitError
	if !errors.As(err, &exit) || exit.Code != 1 || !strings.Contains(err.Error(), "no nvme") {
		t.Errorf("nvme: got %v, want exit status 1 with its stderr", err)
	}
	scripts = append(scripts, "nvme list -o json")
	_, err = c.Run(ctx, ramdisk.Command{Script: "dmidecode --bogus"})
	if !errors.As(err, &exit) || exit.Code != 2 || !strings.Contains(exit.Stderr, "no canned answer for: dmidecode --bogus") {
		t.Errorf("unexpected arguments: got %v, want exit status 2 naming them", err)
	}
	scripts = append(scripts, "dmidecode --bogus")

	// Commands may write to the fake files; the host's stay as they are.
	run(t, c, "echo 1 > /sys/block/vda/device/rescan; echo written >> /proc/cpuinfo")
	if got, err := r.ReadFile("/sys/block/vda/device/rescan"); err != nil || string(got) != "1\n" {
		t.Errorf("ReadFile of a written sysfs file: got %q, %v; want %q", got, err, "1\n")
	}
	if got, _ := r.ReadFile("/proc/cpuinfo"); !strings.HasSuffix(string(got), "Fake CPU\nwritten\n") {
		t.Errorf("ReadFile(/proc/cpuinfo): got %q, want the fake content and the written line", got)
	}
	scripts = append(scripts, "echo 1 > /sys/block/vda/device/rescan; echo written >> /proc/cpuinfo")

	upload := "/root/uploaded file's.txt"
	if err := c.Upload(ctx, upload, 0o600, strings.NewReader("uploaded\n")); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got, err := r.ReadFile(upload); err != nil || string(got) != "uploaded\n" {
		t.Errorf("uploaded file: got %q, %v; want %q", got, err, "uploaded\n")
	}

	got := r.Commands()
	if len(got) < len(scripts) || !slices.Equal(got[:len(scripts)], scripts) {
		t.Errorf("Commands: got %q, want it to start with %q", got, scripts)
	}

	// Nothing leaked to the host.
	if after := rootSSHState(t); after != before {
		t.Errorf("host /root/.ssh changed: got %q, want %q", after, before)
	}
	if _, err := os.Stat("/root/notes.txt"); !os.IsNotExist(err) {
		t.Errorf("fake home file visible on the host: %v", err)
	}
	if now, _ := os.ReadFile("/proc/cpuinfo"); strings.Contains(string(now), "Fake CPU") {
		t.Error("fake /proc/cpuinfo visible on the host")
	}
}

func TestWrongKeyRefused(t *testing.T) {
	r := Start(t, Options{AuthorizedKey: ramdisk.AuthorizedKey(newKey(t), "")})
	if _, err := dial(t, r, newKey(t)); !errors.Is(err, ramdisk.ErrAuth) {
		t.Errorf("Dial with an unknown key: got %v, want ErrAuth", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := ramdisk.Dial(ctx, ramdisk.Config{Addr: r.Addr(), HostKey: ramdisk.AuthorizedKey(newKey(t), ""), Signer: newKey(t)})
	if !errors.Is(err, ramdisk.ErrHostKeyMismatch) {
		t.Errorf("Dial pinned to another host key: got %v, want ErrHostKeyMismatch", err)
	}
	if got := r.Commands(); len(got) != 0 {
		t.Errorf("Commands: got %q, want none", got)
	}
}

// A timed-out command is killed by its signal, and a command still running
// when the ramdisk stops is killed with it. Dropbear sends a session's
// signal to the session's process only: in "sleep 60; echo" that is the
// shell, and the sleep, its child, lives on until Stop.
func TestStopKillsCommands(t *testing.T) {
	signer := newKey(t)
	r := Start(t, Options{AuthorizedKey: ramdisk.AuthorizedKey(signer, "")})
	c, err := dial(t, r, signer)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	start := time.Now()
	_, err = c.Run(ctx, ramdisk.Command{Script: "exec sleep 60", Timeout: 300 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run returned after %s", d)
	}
	waitFor(t, "the timed-out sleep to be killed", func() bool { return !slices.ContainsFunc(r.namespacePIDs(), isSleep) })

	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, ramdisk.Command{Script: "sleep 60; echo not reached"})
		done <- err
	}()
	waitFor(t, "sleep to start", func() bool { return slices.ContainsFunc(r.namespacePIDs(), isSleep) })
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if pids := r.namespacePIDs(); len(pids) != 0 {
		t.Errorf("processes left after Stop: %v", pids)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ramdisk.ErrConnectionLost) {
			t.Errorf("Run under a stopped ramdisk: got %v, want ErrConnectionLost", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run still waiting after the ramdisk stopped")
	}
}

func isSleep(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.TrimSpace(string(comm)) == "sleep"
}

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

func TestCannedByArgsPatterns(t *testing.T) {
	tests := map[string]struct{ args, want string }{
		"empty":     {"", "''"},
		"literal":   {"-t 1", "'-t 1'"},
		"wildcard":  {"-t *", "'-t '*"},
		"any":       {"*", "*"},
		"quotes":    {"it's ?", `'it'\''s '?`},
		"separator": {"a|b)", "'a|b)'"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := casePattern(tt.args); got != tt.want {
				t.Errorf("casePattern(%q): got %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	requirements(t)
	key := ramdisk.AuthorizedKey(newKey(t), "")
	tests := map[string]Options{
		"no key":               {},
		"bad tool name":        {AuthorizedKey: key, Tools: map[string]string{"a/b": "true"}},
		"relative file":        {AuthorizedKey: key, Files: map[string]string{"proc/cpuinfo": ""}},
		"missing host file":    {AuthorizedKey: key, Files: map[string]string{"/proc/no-such-file": ""}},
		"nested shadow":        {AuthorizedKey: key, Shadow: []string{"/sys/class", "/sys/class/net"}},
		"missing shadow":       {AuthorizedKey: key, Shadow: []string{"/no/such/folder"}},
		"ssh folder":           {AuthorizedKey: key, Files: map[string]string{"/root/.ssh/authorized_keys": ""}},
		"link outside shadows": {AuthorizedKey: key, Links: map[string]string{"/etc/foo": "bar"}},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := prepare(t.TempDir(), opts); err == nil {
				t.Error("prepare: got no error")
			}
		})
	}
}

// The client's keepalives and its reading of exit signals work with
// dropbear as they do with the unit tests' server.
func TestDropbearKeepaliveAndSignals(t *testing.T) {
	signer := newKey(t)
	r := Start(t, Options{AuthorizedKey: ramdisk.AuthorizedKey(signer, "")})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := ramdisk.Dial(ctx, ramdisk.Config{Addr: r.Addr(), HostKey: r.HostKey(), Signer: signer, KeepaliveInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	time.Sleep(300 * time.Millisecond)
	_, err = c.Run(ctx, ramdisk.Command{Script: "kill -TERM $$"})
	var exit *ramdisk.ExitError
	if !errors.As(err, &exit) || exit.Code != -1 || exit.Signal != "TERM" {
		t.Errorf("Run: got %v, want an ExitError with code -1 and signal TERM", err)
	}
}

// TestPowerCommandsNeverReachTheHost runs what a ramdisk operation runs to
// power a machine off: the stand-ins answer, the host stays up.
func TestPowerCommandsNeverReachTheHost(t *testing.T) {
	signer := newKey(t)
	rd := Start(t, Options{AuthorizedKey: ramdisk.AuthorizedKey(signer, "bareflow-test")})
	c, err := dial(t, rd, signer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, cmd := range []string{"poweroff -f", "reboot -f", "halt", "shutdown -h now"} {
		res, err := c.Run(t.Context(), ramdisk.Command{Script: cmd, Timeout: 10 * time.Second})
		if err != nil || !strings.Contains(string(res.Stderr), "ignored") {
			t.Errorf("%s: got %v, stderr %q, want the stand-in's answer", cmd, err, res.Stderr)
		}
	}
}

// TestTimeoutKillsWhatTheCommandStarted runs, through real dropbear, a
// script whose shell waits for a program it started: on a timeout the
// program dies too, not only the shell.
func TestTimeoutKillsWhatTheCommandStarted(t *testing.T) {
	signer := newKey(t)
	rd := Start(t, Options{AuthorizedKey: ramdisk.AuthorizedKey(signer, "bareflow-test")})
	c, err := dial(t, rd, signer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	_, err = c.Run(t.Context(), ramdisk.Command{
		Script:  "sleep 60 & echo $! >" + ramdisk.Quote(pidFile) + "; sleep 61; echo done",
		Timeout: 2 * time.Second,
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a timeout", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		// Gone, or a zombie waiting for its parent to be reaped.
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command's child %s still runs 5s after the timeout: %s", pid, stat)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The PID line is not part of the output.
	res, err := c.Run(t.Context(), ramdisk.Command{Script: "echo out; echo err >&2"})
	if err != nil || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
		t.Errorf("got %q %q %v, want out and err alone", res.Stdout, res.Stderr, err)
	}
}
