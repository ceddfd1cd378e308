package boot

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"text/template"
	"time"

	"golang.org/x/crypto/ssh"

	"bareflow/contract"
	"bareflow/internal/store"
)

// maxPhoneHomeBody bounds a phone-home request body.
const maxPhoneHomeBody = 64 << 10

// maxPhoneHomeMACs bounds the NICs a ramdisk may report.
const maxPhoneHomeMACs = 64

// bootStore is what HTTP boot reads and writes. *store.Store implements it.
type bootStore interface {
	GetMachineByMAC(ctx context.Context, mac net.HardwareAddr) (store.Machine, error)
	GetBootIntent(ctx context.Context, machineID string) (store.BootIntent, error)
	CreateBootToken(ctx context.Context, machineID, workflowID string, ttl time.Duration) (string, store.BootToken, error)
	ConsumeBootToken(ctx context.Context, plaintext, machineID string, fn func(store.BootToken) error) (store.BootToken, error)
	RecordRamdiskSession(ctx context.Context, rs store.RamdiskSession) (store.RamdiskSession, error)
}

// httpBoot serves iPXE scripts, the ramdisk's files and phone-home.
type httpBoot struct {
	cfg      Config
	st       bootStore
	signaler WorkflowSignaler
	events   *eventQueue
	files    *os.Root    // nil when no ramdisk folder is configured
	images   *imageCache // nil when images are not cached
	metrics  *metrics
	logger   *slog.Logger
}

func (b *httpBoot) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boot/v1/ipxe/{mac}", b.script)
	mux.HandleFunc("GET /boot/v1/files/{name}", b.file)
	mux.HandleFunc("POST /boot/v1/phone-home", b.phoneHome)
	if b.images != nil {
		mux.HandleFunc("GET /boot/v1/images/{id}", b.images.serve)
	}
	mux.Handle("GET /metrics", b.metrics.handler())
	return mux
}

var ramdiskScript = template.Must(template.New("ramdisk").Parse(`#!ipxe
# bareflow: ramdisk for {{.Name}} ({{.MachineID}})
echo bareflow: loading the ramdisk for {{.Name}}
kernel {{.Base}}/boot/v1/files/{{.Kernel}} initrd={{.Initrd}} bareflow.machine={{.MachineID}} bareflow.phone_home={{.Base}}/boot/v1/phone-home bareflow.token={{.Token}}{{if .SSHKey}} bareflow.ssh_key={{.SSHKey}}{{end}}{{if .Args}} {{.Args}}{{end}}
initrd {{.Base}}/boot/v1/files/{{.Initrd}}
boot
`))

var localScript = template.Must(template.New("local").Parse(`#!ipxe
# bareflow: {{.Reason}}; boot from the local disk
echo bareflow: {{.Reason}}, booting from the local disk
iseq ${platform} efi && exit ||
sanboot --no-describe --drive 0x80 || exit
`))

// ramdiskData fills ramdiskScript.
type ramdiskData struct {
	Name, MachineID, Base, Kernel, Initrd, Token, SSHKey, Args string
}

// localData fills localScript.
type localData struct{ Reason string }

func render(t *template.Template, data any) []byte {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		// The templates are fixed and their data plain strings.
		panic(err)
	}
	return buf.Bytes()
}

// sshKeyArg encodes an authorized key for the kernel command line, where
// spaces split arguments.
func sshKeyArg(key string) string {
	if key == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(key))
}

func (b *httpBoot) count(endpoint, outcome string) {
	b.metrics.http.WithLabelValues(endpoint, outcome).Inc()
}

func writeScript(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// script renders the iPXE script of the machine with the MAC in the path:
// the ramdisk, with a fresh phone-home token, when a boot intent waits for
// it; the local disk otherwise.
func (b *httpBoot) script(w http.ResponseWriter, r *http.Request) {
	const ep = "ipxe_script"
	mac, err := net.ParseMAC(r.PathValue("mac"))
	if err != nil || len(mac) != 6 {
		b.count(ep, outcomeBadRequest)
		http.Error(w, "bad MAC address", http.StatusBadRequest)
		return
	}
	log := b.logger.With("mac", mac.String())
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	m, err := b.st.GetMachineByMAC(ctx, mac)
	if errors.Is(err, store.ErrNotFound) {
		b.count(ep, "local_unknown")
		log.Info("iPXE script for an unknown MAC: local disk")
		writeScript(w, render(localScript, localData{Reason: "unknown machine " + mac.String()}))
		return
	}
	if err != nil {
		b.count(ep, outcomeUnavailable)
		log.Warn("cannot look up machine", "error", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	log = log.With("machine_id", m.ID)
	b.events.push(bootEvent{ev: contract.BootEvent{MachineID: m.ID, Kind: contract.BootEventScript, MAC: mac.String(), At: time.Now().UTC()}})
	intent, err := b.st.GetBootIntent(ctx, m.ID)
	if errors.Is(err, store.ErrNotFound) {
		b.count(ep, "local")
		log.Debug("no boot intent: local disk")
		writeScript(w, render(localScript, localData{Reason: "no boot work for " + m.Name}))
		return
	}
	if err != nil {
		b.count(ep, outcomeUnavailable)
		log.Warn("cannot read boot intent", "error", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	token, _, err := b.st.CreateBootToken(ctx, m.ID, intent.WorkflowID, b.cfg.TokenTTL)
	if err != nil {
		b.count(ep, outcomeUnavailable)
		log.Warn("cannot mint phone-home token", "error", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	b.count(ep, "ramdisk")
	log.Info("iPXE script: ramdisk", "workflow_id", intent.WorkflowID)
	writeScript(w, render(ramdiskScript, ramdiskData{
		Name: m.Name, MachineID: m.ID, Base: b.cfg.PublicURL, Kernel: b.cfg.Kernel, Initrd: b.cfg.Initrd,
		Token: token, SSHKey: sshKeyArg(b.cfg.SSHAuthorizedKey), Args: b.cfg.KernelArgs,
	}))
}

// file serves a file of the ramdisk folder, with Range support.
func (b *httpBoot) file(w http.ResponseWriter, r *http.Request) {
	const ep = "file"
	name := r.PathValue("name")
	if b.files == nil || !validFileName(name) {
		b.count(ep, outcomeNotFound)
		http.NotFound(w, r)
		return
	}
	f, err := b.files.Open(name)
	if err != nil {
		b.count(ep, outcomeNotFound)
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		b.count(ep, outcomeNotFound)
		http.NotFound(w, r)
		return
	}
	b.count(ep, outcomeOK)
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, st.ModTime(), f)
}

// phoneHomeRequest is what the ramdisk POSTs when its SSH server is up.
type phoneHomeRequest struct {
	MachineID  string   `json:"machine_id"`
	Token      string   `json:"token"`
	Addr       string   `json:"addr"`
	SSHPort    int      `json:"ssh_port,omitempty"`
	MACs       []string `json:"macs"`
	SSHHostKey string   `json:"ssh_host_key"`
}

// phoneHome is a checked phoneHomeRequest.
type phoneHome struct {
	MachineID  string
	Token      string
	Addr       netip.Addr
	SSHPort    int
	MACs       []string
	SSHHostKey string
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// decodePhoneHome reads and checks a phone-home body. Every field is
// checked; the SSH host key is parsed and returned in canonical
// authorized_keys form. remote is used when the body has no address.
func decodePhoneHome(r io.Reader, remote netip.Addr) (phoneHome, error) {
	dec := json.NewDecoder(io.LimitReader(r, maxPhoneHomeBody+1))
	dec.DisallowUnknownFields()
	var req phoneHomeRequest
	if err := dec.Decode(&req); err != nil {
		return phoneHome{}, fmt.Errorf("body is not a phone-home JSON object")
	}
	if dec.More() {
		return phoneHome{}, fmt.Errorf("body has data after the JSON object")
	}
	var out phoneHome
	if !uuidPattern.MatchString(req.MachineID) {
		return phoneHome{}, fmt.Errorf("machine_id must be a UUID")
	}
	out.MachineID = req.MachineID
	if req.Token == "" || len(req.Token) > 128 {
		return phoneHome{}, fmt.Errorf("token is required")
	}
	out.Token = req.Token
	switch {
	case req.Addr != "":
		a, err := netip.ParseAddr(req.Addr)
		if err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			return phoneHome{}, fmt.Errorf("addr must be a unicast IP address")
		}
		out.Addr = a.Unmap()
	case remote.IsValid():
		out.Addr = remote.Unmap()
	default:
		return phoneHome{}, fmt.Errorf("addr is required")
	}
	if req.SSHPort < 0 || req.SSHPort > 65535 {
		return phoneHome{}, fmt.Errorf("ssh_port must be from 1 to 65535")
	}
	out.SSHPort = req.SSHPort
	if len(req.MACs) > maxPhoneHomeMACs {
		return phoneHome{}, fmt.Errorf("at most %d MACs", maxPhoneHomeMACs)
	}
	for _, s := range req.MACs {
		mac, err := net.ParseMAC(s)
		if err != nil || len(mac) != 6 {
			return phoneHome{}, fmt.Errorf("macs must be Ethernet addresses")
		}
		out.MACs = append(out.MACs, mac.String())
	}
	if req.SSHHostKey == "" {
		return phoneHome{}, fmt.Errorf("ssh_host_key is required")
	}
	key, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(req.SSHHostKey))
	if err != nil || len(bytes.TrimSpace(rest)) > 0 {
		return phoneHome{}, fmt.Errorf("ssh_host_key must be one public key in authorized_keys form")
	}
	out.SSHHostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	return out, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

type jsonError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// phoneHome checks the ramdisk's token, records the ramdisk's address and
// host key, and signals the machine's workflow that the ramdisk is up. The token is spent only when the signal went
// through, so a ramdisk may retry after a failure on bareflow's side.
func (b *httpBoot) phoneHome(w http.ResponseWriter, r *http.Request) {
	const ep = "phone_home"
	remote := netip.Addr{}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = ap.Addr()
	}
	log := b.logger.With("remote_addr", remote.String())
	r.Body = http.MaxBytesReader(w, r.Body, maxPhoneHomeBody)
	ph, err := decodePhoneHome(r.Body, remote)
	if err != nil {
		b.count(ep, outcomeBadRequest)
		log.Warn("phone-home refused: bad body", "error", err)
		writeJSON(w, http.StatusBadRequest, jsonError{Code: "InvalidInput", Message: err.Error()})
		return
	}
	log = log.With("machine_id", ph.MachineID)
	if b.signaler == nil {
		b.count(ep, outcomeUnavailable)
		writeJSON(w, http.StatusServiceUnavailable, jsonError{Code: "Unavailable", Message: "no workflow service"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), signalTimeout)
	defer cancel()
	var wid, cacheURL string
	if b.images != nil {
		cacheURL = b.cfg.PublicURL + "/boot/v1/images/"
	}
	_, err = b.st.ConsumeBootToken(ctx, ph.Token, ph.MachineID, func(t store.BootToken) error {
		wid = t.WorkflowID
		// Recorded first and on its own: a workflow whose signal is lost
		// finds its ramdisk there.
		if _, err := b.st.RecordRamdiskSession(ctx, store.RamdiskSession{
			MachineID: ph.MachineID, WorkflowID: t.WorkflowID, Addr: ph.Addr, SSHPort: ph.SSHPort, SSHHostKey: ph.SSHHostKey, MACs: ph.MACs,
			ImageCacheURL: cacheURL,
		}); err != nil {
			return err
		}
		return b.signaler.SignalWorkflow(ctx, t.WorkflowID, "", contract.SignalRamdiskReady, contract.RamdiskReady{
			MachineID: ph.MachineID, Addr: ph.Addr.String(), SSHPort: ph.SSHPort, MACs: ph.MACs, SSHHostKey: ph.SSHHostKey,
			ImageCacheURL: cacheURL, At: time.Now().UTC(),
		})
	})
	var te *store.BootTokenError
	switch {
	case errors.As(err, &te):
		b.count(ep, outcomeForbidden)
		log.Warn("phone-home refused: bad token", "reason", string(te.Reason))
		writeJSON(w, http.StatusForbidden, jsonError{Code: "Forbidden", Message: "token refused"})
	case err != nil:
		b.count(ep, outcomeUnavailable)
		log.Warn("phone-home failed; the ramdisk may retry", "workflow_id", wid, "error", err)
		writeJSON(w, http.StatusServiceUnavailable, jsonError{Code: "Unavailable", Message: "try again"})
	default:
		b.count(ep, outcomeOK)
		log.Info("ramdisk phoned home", "workflow_id", wid, "addr", ph.Addr.String())
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}
