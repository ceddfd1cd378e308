package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain runs main when the test binary is re-executed as the command.
func TestMain(m *testing.M) {
	if os.Getenv("BAREFLOW_IMAGEWRITER_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"bareflow-imagewriter"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		return
	}
	os.Exit(m.Run())
}

// command runs the binary with args and returns its exit code and the JSON
// lines it printed.
func command(t *testing.T, args ...string) (int, []map[string]any) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "BAREFLOW_IMAGEWRITER_MAIN=1")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stdout line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return code, lines
}

func TestCommand(t *testing.T) {
	image := bytes.Repeat([]byte("bareflow"), 1<<17)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Write(image)
	}))
	defer srv.Close()
	sum := sha256.Sum256(image)
	good := "sha256:" + hex.EncodeToString(sum[:])
	bad := "sha256:" + strings.Repeat("0", 64)

	for name, tc := range map[string]struct {
		checksum string
		extra    []string
		code     int
		last     string // key of the last line, and its value for "error"
	}{
		"done":      {good, nil, 0, "done"},
		"mismatch":  {bad, nil, 3, "ImageChecksumMismatch"},
		"usage":     {good, []string{"--format", "xz"}, 2, ""},
		"no target": {good, []string{"--target="}, 2, ""},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "disk")
			args := append([]string{"--url", srv.URL, "--header", "Authorization:Bearer t0ken", "--checksum", tc.checksum,
				"--target", target, "--state-dir", filepath.Join(dir, "state")}, tc.extra...)
			code, lines := command(t, args...)
			if code != tc.code {
				t.Fatalf("exit code: got %d, want %d (output %v)", code, tc.code, lines)
			}
			switch tc.last {
			case "":
				return
			case "done":
				last := lines[len(lines)-1]
				if last["done"] != true || last["sha256"] != hex.EncodeToString(sum[:]) || last["bytes_out"] != float64(len(image)) {
					t.Errorf("last line: got %v, want done with the checksum and size", last)
				}
				got, err := os.ReadFile(target)
				if err != nil || !bytes.Equal(got, image) {
					t.Errorf("target: got %d bytes (%v), want the image", len(got), err)
				}
			default:
				if last := lines[len(lines)-1]; last["error"] != tc.last {
					t.Errorf("last line: got %v, want error %s", last, tc.last)
				}
			}
		})
	}
}

// TestCommandQcow2 writes a qcow2 image made by qemu-img and compares the
// target with qemu-img's own conversion.
func TestCommandQcow2(t *testing.T) {
	qemuImg, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skipf("qemu-img is not installed: %v", err)
	}
	dir := t.TempDir()
	raw := make([]byte, 8<<20)
	copy(raw[1<<20:], bytes.Repeat([]byte("bareflow qcow2 "), 100000))
	copy(raw[6<<20:], bytes.Repeat([]byte{0xfe, 0x01, 0x77}, 30000))
	if err := os.WriteFile(filepath.Join(dir, "source.raw"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "image.qcow2")
	for _, args := range [][]string{
		{"convert", "-c", "-f", "raw", "-O", "qcow2", filepath.Join(dir, "source.raw"), img},
		{"convert", "-f", "qcow2", "-O", "raw", img, filepath.Join(dir, "want.raw")},
	} {
		if out, err := exec.Command(qemuImg, args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}
	file, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "want.raw"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "image.qcow2", time.Time{}, bytes.NewReader(file))
	}))
	defer srv.Close()
	sum := sha256.Sum256(file)

	for _, format := range []string{"qcow2", "auto"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "disk")
			// Not zeroed: the image's holes must be made zeros.
			if err := os.WriteFile(target, bytes.Repeat([]byte{0xab}, len(want)), 0o644); err != nil {
				t.Fatal(err)
			}
			code, lines := command(t, "--url", srv.URL, "--format", format, "--checksum", "sha256:"+hex.EncodeToString(sum[:]),
				"--target", target, "--state-dir", filepath.Join(dir, "state"))
			if code != 0 {
				t.Fatalf("exit code: got %d, want 0 (output %v)", code, lines)
			}
			last := lines[len(lines)-1]
			if last["done"] != true || last["format"] != "qcow2" || last["bytes_out"] != float64(len(want)) || last["bytes_in"] != float64(len(file)) {
				t.Errorf("last line: got %v, want done, qcow2, %d bytes out, %d in", last, len(want), len(file))
			}
			if got, err := os.ReadFile(target); err != nil || !bytes.Equal(got, want) {
				t.Errorf("target: got %d bytes (%v), want qemu-img's conversion of %d bytes", len(got), err, len(want))
			}
		})
	}
}
