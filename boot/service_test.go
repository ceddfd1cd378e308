package boot

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"bareflow/internal/store/storetest"
)

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"zero is valid":     {cfg: Config{}},
		"full":              {cfg: Config{Interfaces: []string{"eth1"}, RelayAddr: "0.0.0.0:67", TFTPAddr: ":69", HTTPAddr: "0.0.0.0:8081", PublicURL: "http://203.0.113.5:8081", ServerAddr: "203.0.113.5", AutoRegister: true, UEFIBootFile: "snponly.efi"}},
		"bad relay address": {cfg: Config{RelayAddr: "somewhere"}, wantErr: "relay address"},
		"bad public URL":    {cfg: Config{PublicURL: "ftp://x"}, wantErr: "public URL"},
		"boot file path":    {cfg: Config{BIOSBootFile: "../undionly.kpxe"}, wantErr: "BIOS boot file"},
		"bad interface":     {cfg: Config{Interfaces: []string{"a/b"}}, wantErr: "interface"},
		"server address v6": {cfg: Config{ServerAddr: "2001:db8::1"}, wantErr: "server address"},
		"two-line key":      {cfg: Config{SSHAuthorizedKey: "a\nb"}, wantErr: "SSH authorized key"},
		"negative duration": {cfg: Config{TokenTTL: -time.Second}, wantErr: "token lifetime"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error about %s", err, tc.wantErr)
			}
		})
	}
	d := Config{}.withDefaults()
	if d.HTTPAddr != DefaultHTTPAddr || d.TFTPAddr != "" || d.RelayAddr != "" || len(d.Interfaces) != 0 || d.AutoRegister ||
		d.PublicURL != "http://"+DefaultHTTPAddr || d.IPXEDir != DefaultIPXEDir || d.UEFIBootFile != "ipxe.efi" {
		t.Errorf("defaults: got %+v, want HTTP on loopback only", d)
	}
}

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServiceRun runs the service as bareflow boot would, with TFTP and
// HTTP boot on loopback, and fetches from both.
func TestServiceRun(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	root := tftpRoot(t)
	httpAddr := freeTCPAddr(t)
	tftpPort := freeUDPPort(t)
	svc, err := New(Config{HTTPAddr: httpAddr, TFTPAddr: "127.0.0.1:" + strconv.Itoa(tftpPort), TFTPRoot: root}, st, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runService(t, svc)

	var resp *http.Response
	waitFor(t, 10*time.Second, "HTTP boot to listen", func() bool {
		resp, err = http.Get("http://" + httpAddr + "/metrics")
		return err == nil
	})
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: got %d, want 200", resp.StatusCode)
	}

	// Phone-home without Temporal is refused with 503 once the body is
	// valid, and 400 before.
	r, err := http.Post("http://"+httpAddr+"/boot/v1/phone-home", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("phone-home with an empty body: got %d, want 400", r.StatusCode)
	}

	curl := lookTool(t, "curl", "curl")
	local := filepath.Join(t.TempDir(), "undionly.kpxe")
	out, err := runTool(t, t.TempDir(), curl, "-sS", "--tftp-blksize", "1468", "-o", local, "tftp://127.0.0.1:"+strconv.Itoa(tftpPort)+"/undionly.kpxe")
	if err != nil {
		t.Fatalf("TFTP through Run: %v: %s", err, out)
	}
	got, _ := os.ReadFile(local)
	want, _ := os.ReadFile(filepath.Join(root, "undionly.kpxe"))
	if !bytes.Equal(got, want) {
		t.Errorf("TFTP through Run: got %d bytes, want %d identical bytes", len(got), len(want))
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		EnvInterfaces: "eth1, eth2", EnvRelayAddr: "0.0.0.0:67", EnvAutoRegister: "true",
		EnvPublicURL: "http://203.0.113.5:8081", EnvUEFIBootFile: "snponly.efi",
	}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Interfaces) != 2 || c.Interfaces[1] != "eth2" || c.RelayAddr != "0.0.0.0:67" || !c.AutoRegister || c.UEFIBootFile != "snponly.efi" {
		t.Errorf("got %+v", c)
	}
	env[EnvAutoRegister] = "maybe"
	if _, err := ConfigFromEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), EnvAutoRegister) {
		t.Errorf("bad bool: got %v, want an error naming %s", err, EnvAutoRegister)
	}
	if c, err := ConfigFromEnv(func(string) string { return "" }); err != nil || c.TFTPAddr != "" || c.RelayAddr != "" {
		t.Errorf("empty environment: got %+v, %v, want the zero config", c, err)
	}
}
