package boot

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ipxeBinaries are the files Debian's ipxe package installs that the boot
// service hands out.
var ipxeBinaries = []string{"undionly.kpxe", "ipxe.efi", "snponly.efi"}

// tftpRoot makes a TFTP root with copies of the iPXE binaries and a link
// that points outside the root.
func tftpRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, name := range ipxeBinaries {
		b, err := os.ReadFile(filepath.Join(DefaultIPXEDir, name))
		if err != nil {
			skipOrFail(t, "iPXE binaries (package ipxe) not found in %s: %v", DefaultIPXEDir, err)
		}
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sub", "file.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// startTFTP serves root on a loopback port until the test ends.
func startTFTP(t *testing.T, root string, bootFiles map[string]string) (*tftpServer, int) {
	t.Helper()
	ts, err := newTFTPServer(root, bootFiles, testLogger(t), newMetrics())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := ts.server()
	done := make(chan struct{})
	go func() { _ = srv.Serve(conn); close(done) }()
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
		ts.close()
	})
	return ts, conn.LocalAddr().(*net.UDPAddr).Port
}

func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(t, "%s (package %s) is not installed", name, pkg)
	}
	return p
}

// runTool runs a client with a deadline and returns its combined output.
func runTool(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestTFTPRealClients(t *testing.T) {
	t.Parallel()
	tftpBin := lookTool(t, "tftp", "tftp-hpa")
	curl := lookTool(t, "curl", "curl")
	root := tftpRoot(t)
	ts, port := startTFTP(t, root, nil)
	portS := strconv.Itoa(port)
	work := t.TempDir()

	for _, name := range ipxeBinaries {
		want, _ := os.ReadFile(filepath.Join(root, name))
		t.Run("tftp-hpa "+name, func(t *testing.T) {
			local := filepath.Join(work, "hpa-"+name)
			out, err := runTool(t, work, tftpBin, "-m", "binary", "127.0.0.1", portS, "-c", "get", name, local)
			got, rerr := os.ReadFile(local)
			if err != nil || rerr != nil || !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes (%v, %v, %s), want %d identical bytes", len(got), err, rerr, out, len(want))
			}
		})
		t.Run("curl blksize tsize "+name, func(t *testing.T) {
			local := filepath.Join(work, "curl-"+name)
			out, err := runTool(t, work, curl, "-sS", "--tftp-blksize", "1468", "-o", local, "tftp://127.0.0.1:"+portS+"/"+name)
			got, rerr := os.ReadFile(local)
			if err != nil || rerr != nil || !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes (%v, %v, %s), want %d identical bytes", len(got), err, rerr, out, len(want))
			}
		})
	}

	t.Run("many clients at once", func(t *testing.T) {
		want, _ := os.ReadFile(filepath.Join(root, "ipxe.efi"))
		const clients = 24
		var wg sync.WaitGroup
		errs := make(chan string, clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := filepath.Join(work, "many-"+strconv.Itoa(i))
				out, err := runTool(t, work, curl, "-sS", "--tftp-blksize", "1468", "-o", local, "tftp://127.0.0.1:"+portS+"/ipxe.efi")
				got, _ := os.ReadFile(local)
				if err != nil || !bytes.Equal(got, want) {
					errs <- "client " + strconv.Itoa(i) + ": " + out
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("file in a subfolder", func(t *testing.T) {
		local := filepath.Join(work, "sub.txt")
		if out, err := runTool(t, work, tftpBin, "-m", "binary", "127.0.0.1", portS, "-c", "get", "sub/file.txt", local); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if got, _ := os.ReadFile(local); string(got) != "hello\n" {
			t.Fatalf("got %q, want %q", got, "hello\n")
		}
	})

	refused := map[string]string{
		"parent folder":          "../../../../etc/passwd",
		"parent inside the path": "sub/../../etc/passwd",
		"absolute path":          "/etc/passwd",
		"link out of the root":   "escape",
		"missing file":           "nothing.here",
	}
	for name, path := range refused {
		t.Run("refused "+name, func(t *testing.T) {
			local := filepath.Join(work, "refused-"+strings.ReplaceAll(name, " ", "-"))
			out, _ := runTool(t, work, tftpBin, "-m", "binary", "127.0.0.1", portS, "-c", "get", path, local)
			if !strings.Contains(out, "Error") {
				t.Errorf("got %q, want a TFTP error", out)
			}
			if b, err := os.ReadFile(local); err == nil && len(b) > 0 {
				t.Errorf("got %d bytes of %s, want none", len(b), path)
			}
		})
	}

	t.Run("write refused", func(t *testing.T) {
		src := filepath.Join(work, "upload")
		if err := os.WriteFile(src, []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := runTool(t, work, tftpBin, "-m", "binary", "127.0.0.1", portS, "-c", "put", src, "uploaded")
		if !strings.Contains(out, "Error") {
			t.Errorf("got %q, want a TFTP error", out)
		}
		if _, err := os.Stat(filepath.Join(root, "uploaded")); err == nil {
			t.Errorf("the upload landed in the root")
		}
	})

	if got := counterValue(t, ts.metrics.tftp.WithLabelValues("read", outcomeRefused)); got < 3 {
		t.Errorf("refused reads counted: got %v, want at least 3", got)
	}
}

// TestTFTPServesDebianIPXELinks serves Debian's own iPXE folder, where
// ipxe.efi and snponly.efi are links out of the folder: the boot files are
// still served, byte for byte, while other links out of the root are not.
func TestTFTPServesDebianIPXELinks(t *testing.T) {
	t.Parallel()
	curl := lookTool(t, "curl", "curl")
	boot := map[string]string{}
	for _, name := range ipxeBinaries {
		p := filepath.Join(DefaultIPXEDir, name)
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, "iPXE binaries (package ipxe) not found in %s: %v", DefaultIPXEDir, err)
		}
		boot[name] = p
	}
	_, port := startTFTP(t, DefaultIPXEDir, boot)
	work := t.TempDir()
	for _, name := range ipxeBinaries {
		want, err := os.ReadFile(filepath.Join(DefaultIPXEDir, name))
		if err != nil {
			t.Fatal(err)
		}
		local := filepath.Join(work, name)
		out, err := runTool(t, work, curl, "-sS", "--tftp-blksize", "1468", "-o", local, "tftp://127.0.0.1:"+strconv.Itoa(port)+"/"+name)
		got, rerr := os.ReadFile(local)
		if err != nil || rerr != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: got %d bytes (%v, %v, %s), want %d identical bytes", name, len(got), err, rerr, out, len(want))
		}
	}
}

func TestCleanTFTPPath(t *testing.T) {
	tests := map[string]struct {
		in, want string
		ok       bool
	}{
		"plain":        {"ipxe.efi", "ipxe.efi", true},
		"subfolder":    {"a/b.txt", "a/b.txt", true},
		"dot segments": {"a/./b.txt", "a/b.txt", true},
		"parent":       {"../x", "", false},
		"inner parent": {"a/../../x", "", false},
		"absolute":     {"/etc/passwd", "", false},
		"backslash":    {"..\\x", "", false},
		"empty":        {"", "", false},
		"nul":          {"a\x00b", "", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := cleanTFTPPath(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %q, %v, want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
