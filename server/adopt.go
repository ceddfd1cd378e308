package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/ssh"

	"bareflow/activities"
	"bareflow/contract"
	"bareflow/internal/ramdisk"
	"bareflow/internal/secret"
	"bareflow/internal/store"
)

// Names of the secrets the adoption endpoints keep in the store.
const (
	// sshKeySecret is bareflow's SSH key, made by whichever of the API and
	// the workers needs it first; it must match workers.SSHKeySecret.
	sshKeySecret = "ssh-key"
	// scriptLinkSecret signs the short-lived links of the prepare script.
	scriptLinkSecret = "adopt-script-key"
)

// Adoption limits.
const (
	defaultScriptLinkTTL = 15 * time.Minute
	maxScriptLinkTTL     = 24 * time.Hour
	maxAdoptPassword     = 256
	defaultSSHPort       = 22
)

// unixUser is a login name the prepare script and the adoption accept.
var unixUser = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)

// sshHost is a host name or address of an OS to adopt (IP literals are
// checked with netip).
var sshHost = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)

type adoptBMCInput struct {
	Address     string `json:"address"`
	Port        int    `json:"port"`
	Username    string `json:"username"`
	Password    string `json:"password"`
	CipherSuite int    `json:"cipher_suite"`
}

type adoptSSHInput struct {
	Address  string `json:"address"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	HostKey  string `json:"host_key"`
	Password string `json:"password"`
}

type adoptRequest struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	BMC    *adoptBMCInput    `json:"bmc"`
	SSH    *adoptSSHInput    `json:"ssh"`
}

// adoptTarget is a checked adoption request.
type adoptTarget struct {
	bmcAddr netip.AddrPort
	sshAddr string
	sshUser string
	hostKey string
}

func checkAdoptRequest(in adoptRequest) (adoptTarget, error) {
	var t adoptTarget
	switch {
	case in.Name == "":
		return t, errInvalid("name is required")
	case in.BMC == nil || in.BMC.Address == "":
		return t, errInvalid("bmc.address is required")
	case in.BMC.Username == "" || in.BMC.Password == "":
		return t, errInvalid("bmc.username and bmc.password are required: the BMC is checked with them")
	case len(in.BMC.Password) > maxAdoptPassword || len(in.BMC.Username) > 64:
		return t, errInvalid("bmc.username or bmc.password is too long")
	case in.SSH == nil || in.SSH.Address == "":
		return t, errInvalid("ssh.address is required")
	case len(in.SSH.Password) > maxAdoptPassword:
		return t, errInvalid("ssh.password is too long")
	case in.BMC.CipherSuite < 0 || in.BMC.CipherSuite > 255:
		return t, errInvalid("bmc.cipher_suite must be from 0 to 255")
	}
	ap, err := parseBMCAddr(in.BMC.Address)
	if err != nil {
		return t, err
	}
	if in.BMC.Port != 0 {
		if in.BMC.Port < 1 || in.BMC.Port > 65535 {
			return t, errInvalid("bmc.port must be from 1 to 65535")
		}
		ap = netip.AddrPortFrom(ap.Addr(), uint16(in.BMC.Port))
	}
	t.bmcAddr = ap
	host := strings.TrimSuffix(strings.TrimPrefix(in.SSH.Address, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	} else if !sshHost.MatchString(host) || len(host) > 253 {
		return t, errInvalid(fmt.Sprintf("ssh.address %q must be an IP address or a host name", in.SSH.Address))
	}
	port := in.SSH.Port
	if port == 0 {
		port = defaultSSHPort
	}
	if port < 1 || port > 65535 {
		return t, errInvalid("ssh.port must be from 1 to 65535")
	}
	t.sshAddr = net.JoinHostPort(host, strconv.Itoa(port))
	t.sshUser = in.SSH.Username
	if t.sshUser == "" {
		t.sshUser = "root"
	}
	if !unixUser.MatchString(t.sshUser) {
		return t, errInvalid("ssh.username must be a login name: letters, digits, '_', '.' or '-', at most 32")
	}
	if in.SSH.HostKey != "" {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(in.SSH.HostKey))
		if err != nil {
			return t, errInvalid(`ssh.host_key must be a public key in authorized_keys form ("ssh-ed25519 AAAA…")`)
		}
		t.hostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	return t, nil
}

// adopt starts the adoption of a server that already runs an OS: it records
// the machine (state registering) with the BMC credentials and the SSH
// password waiting, sealed, for the Adopt workflow, which completes the
// record or removes it.
func (s *Server) adopt(c echo.Context) error {
	var in adoptRequest
	if err := decode(c, &in); err != nil {
		return err
	}
	t, err := checkAdoptRequest(in)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	m, err := s.store.BeginAdoption(ctx, store.AdoptionCreate{
		Name: in.Name, Labels: in.Labels,
		BMCAddr: t.bmcAddr, BMCUser: in.BMC.Username, BMCPassword: secret.String(in.BMC.Password), BMCCipherSuite: in.BMC.CipherSuite,
		SSHAddr: t.sshAddr, SSHPassword: secret.String(in.SSH.Password),
	})
	if err != nil {
		return err
	}
	op, err := s.startOperation(c, m, contract.OperationAdopt, contract.WorkflowAdopt, func(opID string) any {
		return contract.AdoptInput{
			OperationID: opID, MachineID: m.ID, BMCAddr: t.bmcAddr.String(), BMCCipherSuite: in.BMC.CipherSuite,
			SSH:         contract.AdoptSSH{Addr: t.sshAddr, User: t.sshUser, HostKey: t.hostKey, Password: in.SSH.Password != ""},
			RequestedBy: actor(c),
		}
	})
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if derr := s.store.DiscardAdoption(dctx, m.ID); derr != nil {
			s.log.Error("cannot remove the machine of an adoption that did not start", "machine_id", m.ID, "error", derr)
		}
		return err
	}
	setAudit(c, "machine.adopt", m.ID, op.ID)
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/machines/"+m.ID)
	return c.JSON(http.StatusAccepted, s.toOperationJSON(op))
}

type adoptionJSON struct {
	OSName     string    `json:"os_name"`
	Kernel     string    `json:"kernel"`
	Hostname   string    `json:"hostname,omitempty"`
	Address    string    `json:"address"`
	SSHUser    string    `json:"ssh_user"`
	SSHHostKey string    `json:"ssh_host_key"`
	AdoptedAt  time.Time `json:"adopted_at"`
}

// showAdoption answers what the adoption of a machine recorded of its OS.
func (s *Server) showAdoption(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	o, err := s.store.GetAdoptedOS(c.Request().Context(), m.ID)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound(fmt.Sprintf("machine %s was not adopted", m.Name))
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, adoptionJSON{OSName: o.Name, Kernel: o.Kernel, Hostname: o.Hostname, Address: o.Address,
		SSHUser: o.SSHUser, SSHHostKey: o.SSHHostKey, AdoptedAt: o.AdoptedAt})
}

// bareflowPublicKey returns bareflow's public SSH key in authorized_keys
// form. The key is made on first use, by the API or a worker alike.
func (s *Server) bareflowPublicKey(ctx context.Context) (string, error) {
	pem, err := s.store.EnsureSecret(ctx, sshKeySecret, func() ([]byte, error) {
		p, _, err := ramdisk.GenerateKey()
		return p, err
	})
	if err != nil {
		return "", fmt.Errorf("bareflow's SSH key: %w", err)
	}
	signer, err := ramdisk.ParseKey(pem)
	if err != nil {
		return "", fmt.Errorf("bareflow's SSH key: %w", err)
	}
	return ramdisk.AuthorizedKey(signer, "bareflow"), nil
}

// scriptLinkKey returns the key that signs prepare-script links.
func (s *Server) scriptLinkKey(ctx context.Context) ([]byte, error) {
	return s.store.EnsureSecret(ctx, scriptLinkSecret, func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	})
}

func scriptLinkMAC(key []byte, user string, exp int64) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "adopt-script\x00%s\x00%d", user, exp)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// scriptLinkValid checks a link token, "EXPIRY.MAC", for user.
func (s *Server) scriptLinkValid(ctx context.Context, user, token string) (bool, error) {
	expText, mac, ok := strings.Cut(token, ".")
	exp, err := strconv.ParseInt(expText, 10, 64)
	if !ok || err != nil || time.Now().Unix() > exp {
		return false, nil
	}
	key, err := s.scriptLinkKey(ctx)
	if err != nil {
		return false, err
	}
	return hmac.Equal([]byte(mac), []byte(scriptLinkMAC(key, user, exp))), nil
}

type scriptLinkRequest struct {
	User       string `json:"user"`
	TTLSeconds int    `json:"ttl_seconds"`
}

type scriptLinkJSON struct {
	User string `json:"user"`
	// Path is the link below the API's base URL; URL is it as this request
	// reached the API.
	Path      string    `json:"path"`
	URL       string    `json:"url"`
	Command   string    `json:"command"`
	ExpiresAt time.Time `json:"expires_at"`
}

// adoptScriptLink makes a short-lived link to the prepare script for one
// user. The link, not an API token, is what lands on the server to adopt
// (in its shell history): it only fetches the script, which carries only
// bareflow's public key, and it expires.
func (s *Server) adoptScriptLink(c echo.Context) error {
	in := scriptLinkRequest{}
	if c.Request().ContentLength != 0 {
		if err := decode(c, &in); err != nil {
			return err
		}
	}
	if in.User == "" {
		in.User = "root"
	}
	if !unixUser.MatchString(in.User) {
		return errInvalid("user must be a login name: letters, digits, '_', '.' or '-', at most 32")
	}
	ttl := defaultScriptLinkTTL
	if in.TTLSeconds != 0 {
		ttl = time.Duration(in.TTLSeconds) * time.Second
		if ttl < time.Minute || ttl > maxScriptLinkTTL {
			return errInvalid("ttl_seconds must be from 60 to " + strconv.Itoa(int(maxScriptLinkTTL.Seconds())))
		}
	}
	key, err := s.scriptLinkKey(c.Request().Context())
	if err != nil {
		return err
	}
	exp := time.Now().Add(ttl).Truncate(time.Second)
	q := url.Values{"user": {in.User}, "token": {fmt.Sprintf("%d.%s", exp.Unix(), scriptLinkMAC(key, in.User, exp.Unix()))}}
	path := "/api/v1/adopt/prepare.sh?" + q.Encode()
	full := c.Scheme() + "://" + c.Request().Host + path
	setAudit(c, "adopt.script_link", in.User, "")
	return c.JSON(http.StatusOK, scriptLinkJSON{User: in.User, Path: path, URL: full, Command: PrepareCommand(full), ExpiresAt: exp.UTC()})
}

// PrepareCommand is the one line an operator runs on a server, as the
// user bareflow will log in as, to fetch and run the prepare script.
func PrepareCommand(scriptURL string) string {
	return "curl -fsS '" + strings.ReplaceAll(scriptURL, "'", `'\''`) + "' | sh"
}

// adoptScript serves the prepare script for ?user= (root by default): to a
// caller with a valid short-lived link token, or with a bearer token like
// every other call.
func (s *Server) adoptScript(c echo.Context) error {
	user := c.QueryParam("user")
	if user == "" {
		user = "root"
	}
	if !unixUser.MatchString(user) {
		return errInvalid("user must be a login name: letters, digits, '_', '.' or '-', at most 32")
	}
	serve := func(c echo.Context) error {
		key, err := s.bareflowPublicKey(c.Request().Context())
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Blob(http.StatusOK, "text/x-shellscript; charset=utf-8", []byte(activities.AuthorizeKeyScript(user, key)))
	}
	tok := c.QueryParam("token")
	if tok == "" {
		return s.authenticate(serve)(c)
	}
	ok, err := s.scriptLinkValid(c.Request().Context(), user, tok)
	if err != nil {
		return err
	}
	if !ok {
		return &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Message: "the script link is not valid for this user or has expired; make a new one (bareflow machine adopt-script)"}
	}
	return serve(c)
}
