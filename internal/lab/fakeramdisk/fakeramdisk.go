// Package fakeramdisk runs a real SSH server standing in for a machine's
// PXE ramdisk, for the integration tests of bareflow packages that work on
// the ramdisk over SSH.
//
// Start runs Debian's dropbear, the ramdisk's own SSH server, on a free port
// of 127.0.0.1 with a fresh ed25519 host key and public-key logins only, and
// lets root log in with Options.AuthorizedKey. The server is the host's real
// dropbear running the host's real programs as root; what makes it look like
// a ramdisk is set up in a private mount namespace that only dropbear and
// the commands it runs see:
//
//   - root's home, /root, is a bind mount of a folder of the test's own
//     whose .ssh/authorized_keys holds the one authorized key. The host's
//     /root (and its .ssh) is neither read nor changed.
//   - the authorized key carries a forced command, a wrapper script that
//     appends the requested command to a log (Commands), puts a folder of
//     stand-in programs (Options.Tools) first on PATH and then runs the
//     command with /bin/sh -c, as the ramdisk's dash would.
//   - Options.Files replace files and Options.Shadow replace whole folders,
//     /proc/cpuinfo or /sys/block say, with bind mounts of files the test
//     wrote. The production scripts read the usual paths; nothing in them
//     knows about the fake.
//
// Stand-in programs are shell script bodies; CannedOutput and CannedByArgs
// make the common ones, and any body may call a real program, for example
// ipmitool pointed at a simulated BMC.
//
// Start needs root, dropbear and dropbearkey (Debian package dropbear-bin)
// and the mount command. A test that cannot have them is skipped, unless the
// environment sets BAREFLOW_REQUIRE_INTEGRATION=1, which makes it fail
// instead. Every process that dropbear started is killed when the test ends,
// and with the last of them the mount namespace and its mounts disappear.
package fakeramdisk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"bareflow/internal/ramdisk"
)

// RequireIntegrationEnv is the environment variable that turns a missing
// prerequisite from a skipped test into a failed one.
const RequireIntegrationEnv = "BAREFLOW_REQUIRE_INTEGRATION"

// SystemPath is the PATH after the stand-in programs' folder.
const SystemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// home is the folder that the fake home is mounted on.
const home = "/root"

// Bounds of the lab's waits.
const (
	readyTimeout = 10 * time.Second
	stopTimeout  = 3 * time.Second
	startTries   = 3
)

// Options say what the fake ramdisk holds.
type Options struct {
	// AuthorizedKey is the public key root may log in with, in
	// authorized_keys form. Required.
	AuthorizedKey string
	// Tools maps a program name to the body of a shell script that stands
	// in for the program: it is run, with the command's arguments, in
	// place of any program of that name on the system. A body without a
	// "#!" line is run by /bin/sh.
	Tools map[string]string
	// Files maps absolute paths to the content the ramdisk's commands read
	// there. A path inside one of Shadow's folders or inside /root is
	// created in the fake folder; any other path must name an existing
	// file of the host, which is covered by a bind mount ("/proc/cpuinfo",
	// "/proc/meminfo"). The commands may write to them, changing only the
	// test's copy; ReadFile shows what they wrote.
	Files map[string]string
	// Links maps absolute paths inside Shadow's folders or /root to
	// symbolic link targets, as sysfs has ("/sys/block/sda" →
	// "../devices/pci0000:00/…/block/sda").
	Links map[string]string
	// Shadow lists existing folders of the host that the ramdisk's
	// commands see replaced by a folder holding only the Files and Links
	// below them, "/sys/block" or "/sys/class/net" say. Shadowed folders
	// may not nest.
	Shadow []string
}

// Ramdisk is a running fake ramdisk.
type Ramdisk struct {
	dir     string
	addr    string
	hostKey string
	log     string

	mu     sync.Mutex // held by stop
	cmd    *exec.Cmd  // nil when stopped
	exited chan struct{}
	mntNS  string
}

// Start starts a fake ramdisk and stops it when the test ends.
func Start(t testing.TB, opts Options) *Ramdisk {
	t.Helper()
	requirements(t)

	dir := t.TempDir()
	if dir == home || strings.HasPrefix(dir, home+"/") {
		t.Fatalf("fakeramdisk: the test's temporary folder %s is under %s, which the fake ramdisk hides; set TMPDIR elsewhere", dir, home)
	}
	plan, err := prepare(dir, opts)
	if err != nil {
		t.Fatalf("fakeramdisk: %v", err)
	}

	r := &Ramdisk{dir: dir, hostKey: plan.hostKey, log: filepath.Join(dir, "dropbear.log")}
	for try := 1; ; try++ {
		err := r.start(plan)
		if err == nil {
			break
		}
		if try == startTries {
			t.Fatalf("fakeramdisk: start dropbear: %v\n%s", err, r.Log())
		}
		t.Logf("fakeramdisk: start dropbear (try %d of %d): %v", try, startTries, err)
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("fakeramdisk: %v", err)
		}
		if t.Failed() {
			t.Logf("fakeramdisk: dropbear log:\n%s", r.Log())
		}
	})
	return r
}

// requirements skips or fails t when the fake ramdisk cannot run here.
func requirements(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (for a private mount namespace)")
	}
	for _, prog := range []string{"dropbear", "dropbearkey", "mount", "/bin/sh"} {
		if _, err := exec.LookPath(prog); err != nil {
			if prog == "dropbear" || prog == "dropbearkey" {
				prog += " (Debian package dropbear-bin)"
			}
			missing = append(missing, prog)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "fakeramdisk needs " + strings.Join(missing, ", ")
	if os.Getenv(RequireIntegrationEnv) == "1" {
		t.Fatalf("%s (%s=1)", msg, RequireIntegrationEnv)
	}
	t.Skip(msg)
}

// plan is what prepare wrote, for start.
type plan struct {
	hostKeyFile string
	setup       string // the script that mounts and then runs dropbear
	hostKey     string
}

// prepare writes the host key, the fake home, the stand-in programs, the
// wrapper, the fake files and the setup script into dir.
func prepare(dir string, opts Options) (plan, error) {
	var p plan
	clientKey, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(opts.AuthorizedKey))
	if err != nil {
		return p, fmt.Errorf("authorized key: %w", err)
	}

	p.hostKeyFile = filepath.Join(dir, "host_key")
	out, err := exec.Command("dropbearkey", "-t", "ed25519", "-f", p.hostKeyFile).CombinedOutput()
	if err != nil {
		return p, fmt.Errorf("dropbearkey: %w: %s", err, out)
	}
	if p.hostKey, err = publicKeyLine(out); err != nil {
		return p, fmt.Errorf("dropbearkey: %w", err)
	}

	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		return p, err
	}
	// The ramdisk's commands run on the host: power commands must never
	// reach it. Stand-ins that do nothing are there unless a test brings
	// its own.
	tools := map[string]string{}
	for _, name := range []string{"poweroff", "reboot", "halt", "shutdown"} {
		tools[name] = "echo \"fakeramdisk: $(basename \"$0\") $* ignored\" >&2\nexit 0\n"
	}
	for name, body := range opts.Tools {
		tools[name] = body
	}
	for name, body := range tools {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
			return p, fmt.Errorf("tool %q: not a program name", name)
		}
		if strings.ContainsRune(body, 0) {
			return p, fmt.Errorf("tool %q: script body holds a NUL byte", name)
		}
		if !strings.HasPrefix(body, "#!") {
			body = "#!/bin/sh\n" + body
		}
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			return p, err
		}
	}

	commandLog := filepath.Join(dir, "commands.log")
	if err := os.WriteFile(commandLog, nil, 0o600); err != nil {
		return p, err
	}
	wrapper := filepath.Join(dir, "session")
	if strings.ContainsAny(wrapper, "\"\\\n") {
		return p, fmt.Errorf("temporary folder %q cannot be named in an authorized_keys command option", dir)
	}
	if err := os.WriteFile(wrapper, []byte(wrapperScript(bin, commandLog)), 0o755); err != nil {
		return p, err
	}

	// The fake home, with root's only authorized key forced to run the
	// wrapper.
	fakeHome := filepath.Join(dir, "root")
	sshDir := filepath.Join(fakeHome, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return p, err
	}
	if err := os.Chmod(fakeHome, 0o700); err != nil {
		return p, err
	}
	line := fmt.Sprintf("command=\"%s\" %s %s\n", wrapper,
		strings.TrimSpace(string(ssh.MarshalAuthorizedKey(clientKey))), strings.Join(strings.Fields(comment), " "))
	if err := os.WriteFile(filepath.Join(sshDir, "authorized_keys"), []byte(line), 0o600); err != nil {
		return p, err
	}

	mounts, err := writeFiles(dir, fakeHome, opts)
	if err != nil {
		return p, err
	}
	mounts = append(mounts, mount{source: fakeHome, target: home})

	p.setup = filepath.Join(dir, "setup")
	if err := os.WriteFile(p.setup, []byte(setupScript(mounts)), 0o755); err != nil {
		return p, err
	}
	return p, nil
}

// publicKeyLine returns the authorized_keys line of dropbearkey's output,
// without its comment.
func publicKeyLine(out []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, _, _, _, err := ssh.ParseAuthorizedKey(sc.Bytes())
		if err == nil {
			return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
		}
	}
	return "", fmt.Errorf("no public key in output: %s", out)
}

// wrapperScript is the forced command of every session.
func wrapperScript(bin, commandLog string) string {
	return `#!/bin/sh
# fakeramdisk session: records the command, puts the stand-in programs
# first on PATH and runs the command as the ramdisk would.
if [ -n "${SSH_ORIGINAL_COMMAND+set}" ]; then
	printf '%s\0' "$SSH_ORIGINAL_COMMAND" >>` + ramdisk.Quote(commandLog) + `
fi
PATH=` + ramdisk.Quote(bin+":"+SystemPath) + `
export PATH
unset SSH_AUTH_SOCK
if [ -z "${SSH_ORIGINAL_COMMAND+set}" ]; then
	exec /bin/sh
fi
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
`
}

// mount is one bind mount of the setup script.
type mount struct {
	source, target string
}

// writeFiles writes Options.Files and Options.Links below dir/fs (or into
// the fake home) and returns the bind mounts that show them.
func writeFiles(dir, fakeHome string, opts Options) ([]mount, error) {
	fsRoot := filepath.Join(dir, "fs")
	shadows := slices.Clone(opts.Shadow)
	sort.Strings(shadows)
	for i, s := range shadows {
		if err := checkPath(s); err != nil {
			return nil, fmt.Errorf("shadow %q: %w", s, err)
		}
		if s == "/" || s == home || strings.HasPrefix(s, home+"/") {
			return nil, fmt.Errorf("shadow %q: / and %s cannot be shadowed", s, home)
		}
		if i > 0 && within(s, shadows[i-1]) {
			return nil, fmt.Errorf("shadow %q: inside shadowed %q", s, shadows[i-1])
		}
		if info, err := os.Stat(s); err != nil || !info.IsDir() {
			return nil, fmt.Errorf("shadow %q: not a folder of this host", s)
		}
		if err := os.MkdirAll(filepath.Join(fsRoot, s), 0o755); err != nil {
			return nil, err
		}
	}
	// place returns where the fake content of path goes, and whether it
	// needs a bind mount of its own.
	place := func(path string) (string, bool, error) {
		if err := checkPath(path); err != nil {
			return "", false, err
		}
		if within(path, home) && path != home {
			if path == filepath.Join(home, ".ssh") || within(path, filepath.Join(home, ".ssh")) {
				return "", false, fmt.Errorf("%s/.ssh belongs to the fake ramdisk", home)
			}
			return filepath.Join(fakeHome, strings.TrimPrefix(path, home)), false, nil
		}
		for _, s := range shadows {
			if within(path, s) && path != s {
				return filepath.Join(fsRoot, path), false, nil
			}
		}
		return filepath.Join(fsRoot, path), true, nil
	}

	var mounts []mount
	for _, path := range sortedKeys(opts.Files) {
		dst, own, err := place(path)
		if err != nil {
			return nil, fmt.Errorf("file %q: %w", path, err)
		}
		if own {
			if info, err := os.Stat(path); err != nil || info.IsDir() {
				return nil, fmt.Errorf("file %q: outside Shadow and /root, so it must be a file of this host", path)
			}
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, []byte(opts.Files[path]), 0o644); err != nil {
			return nil, err
		}
		if own {
			mounts = append(mounts, mount{source: dst, target: path})
		}
	}
	for _, path := range sortedKeys(opts.Links) {
		dst, own, err := place(path)
		if err != nil {
			return nil, fmt.Errorf("link %q: %w", path, err)
		}
		if own {
			return nil, fmt.Errorf("link %q: links can only be made inside Shadow or /root", path)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.Symlink(opts.Links[path], dst); err != nil {
			return nil, fmt.Errorf("link %q: %w", path, err)
		}
	}
	for _, s := range shadows {
		mounts = append(mounts, mount{source: filepath.Join(fsRoot, s), target: s})
	}
	return mounts, nil
}

func checkPath(path string) error {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return errors.New("not a clean absolute path")
	}
	return nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// setupScript makes the bind mounts and then becomes dropbear, whose
// arguments it is given. It runs as the first process of the private mount
// namespace.
func setupScript(mounts []mount) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# fakeramdisk: runs in a private mount namespace.\nset -e\nmount --make-rprivate /\n")
	for _, m := range mounts {
		fmt.Fprintf(&b, "mount --bind %s %s\n", ramdisk.Quote(m.source), ramdisk.Quote(m.target))
	}
	b.WriteString("exec \"$@\"\n")
	return b.String()
}

// start runs dropbear on a free port and waits until it answers.
func (r *Ramdisk) start(p plan) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	r.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logFile, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()

	cmd := exec.Command("/bin/sh", p.setup, "dropbear", "-F", "-E", "-s",
		"-p", r.addr, "-r", p.hostKeyFile, "-P", filepath.Join(r.dir, "dropbear.pid"))
	cmd.Dir = r.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Unshareflags: syscall.CLONE_NEWNS}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.setup, err)
	}
	r.cmd = cmd
	r.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(r.exited)
	}()
	// The namespace is known once the process exists; it stays the same
	// through the setup script's exec of dropbear.
	r.mntNS, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid))
	if own, _ := os.Readlink("/proc/self/ns/mnt"); r.mntNS == "" || r.mntNS == own {
		// Without a namespace of its own the stop could not tell the
		// fake ramdisk's processes from the host's.
		r.mntNS = ""
		_ = r.stop()
		return fmt.Errorf("dropbear is not in a mount namespace of its own")
	}

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-r.exited:
			return fmt.Errorf("dropbear exited at start: %s", cmd.ProcessState)
		default:
		}
		if answers(r.addr) {
			return nil
		}
		if time.Now().After(deadline) {
			_ = r.stop()
			return fmt.Errorf("dropbear not answering on %s after %s", r.addr, readyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers reports whether an SSH server greets on addr.
func answers(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns the SSH server's address, 127.0.0.1:port.
func (r *Ramdisk) Addr() string { return r.addr }

// HostKey returns the server's ed25519 host key in authorized_keys form,
// as the ramdisk reports it when it phones home.
func (r *Ramdisk) HostKey() string { return r.hostKey }

// Commands returns the commands of the sessions so far, oldest first, each
// as the client sent it.
func (r *Ramdisk) Commands() []string {
	data, err := os.ReadFile(filepath.Join(r.dir, "commands.log"))
	if err != nil || len(data) == 0 {
		return nil
	}
	cmds := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	// The SSH adapter's prologue (the shell's PID for its timeouts) is not
	// part of what the caller asked for.
	for i, c := range cmds {
		cmds[i] = strings.TrimPrefix(c, ramdisk.PIDPrologue)
	}
	return cmds
}

// ReadFile returns the content that the ramdisk's commands see at path,
// when path is one of Options.Files or lies in a shadowed folder or /root:
// what the test gave, or what a command wrote there since.
func (r *Ramdisk) ReadFile(path string) ([]byte, error) {
	if err := checkPath(path); err != nil {
		return nil, fmt.Errorf("read %q: %w", path, err)
	}
	if within(path, home) {
		return os.ReadFile(filepath.Join(r.dir, "root", strings.TrimPrefix(path, home)))
	}
	return os.ReadFile(filepath.Join(r.dir, "fs", path))
}

// Log returns what dropbear logged.
func (r *Ramdisk) Log() string {
	data, _ := os.ReadFile(r.log)
	return string(data)
}

// Stop stops the server and every command it runs, as a ramdisk that
// powers off. Start arranges for it to be called when the test ends;
// calling it earlier makes the ramdisk disappear under its clients.
func (r *Ramdisk) Stop() error { return r.stop() }

// stop sends SIGTERM to dropbear's process group, SIGKILL after
// stopTimeout, then kills whatever else runs in the mount namespace (the
// commands of sessions, which dropbear starts in sessions of their own) and
// waits for them to be gone.
func (r *Ramdisk) stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return nil
	}
	pgid := r.cmd.Process.Pid
	r.cmd = nil
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-r.exited:
		case <-time.After(stopTimeout):
			return fmt.Errorf("dropbear (pid %d) still running %s after SIGKILL", pgid, stopTimeout)
		}
	}
	if r.mntNS == "" {
		return nil
	}
	deadline := time.Now().Add(stopTimeout)
	for {
		left := r.namespacePIDs()
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of the fake ramdisk still running %s after SIGKILL", left, stopTimeout)
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// namespacePIDs returns the processes in the fake ramdisk's mount
// namespace.
func (r *Ramdisk) namespacePIDs() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && ns == r.mntNS {
			pids = append(pids, pid)
		}
	}
	return pids
}
