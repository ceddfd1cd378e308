package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

// runAdopt is `bareflow machine adopt NAME …`: it adopts a server that
// already runs an OS.
func runAdopt(ctx context.Context, c *apiClient, rest []string, stdout, stderr io.Writer) error {
	fs, _ := cliFlags("machine adopt", stderr)
	bmcAddr := fs.String("bmc", "", "BMC address, IP[:port] (port 623 by default)")
	bmcUser := fs.String("bmc-user", "", "BMC user")
	bmcPasswordFile := fs.String("bmc-password-file", "", "file holding the BMC password (or BAREFLOW_BMC_PASSWORD)")
	cipher := fs.Int("bmc-cipher-suite", 0, "RMCP+ cipher suite (3 or 17; 0 lets bareflow choose)")
	sshAddr := fs.String("ssh", "", "the OS's SSH address, IP or host name [:port] (port 22 by default)")
	sshUser := fs.String("ssh-user", "root", "the user bareflow logs in as")
	sshPasswordFile := fs.String("ssh-password-file", "", "file holding the user's password, used once to authorize bareflow's key")
	hostKey := fs.String("host-key", "", `the OS's SSH host key ("ssh-ed25519 AAAA…"); without it the key seen first is trusted`)
	wait := fs.Bool("wait", true, "wait for the operation to end")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *bmcAddr == "" || *bmcUser == "" || *sshAddr == "" {
		return usageError("machine adopt NAME --bmc ADDR --bmc-user U --bmc-password-file F --ssh ADDR [--ssh-user root] [--ssh-password-file F] [--host-key KEY]")
	}
	bmcPW, set, err := bmcPasswordInput("", false, *bmcPasswordFile)
	if err != nil {
		return err
	}
	if !set {
		return usageError("machine adopt needs the BMC password: --bmc-password-file F or BAREFLOW_BMC_PASSWORD")
	}
	bmcHost, bmcPort, err := splitAddr(*bmcAddr)
	if err != nil {
		return usageError("--bmc %q: %v", *bmcAddr, err)
	}
	sshHost, sshPort, err := splitAddr(*sshAddr)
	if err != nil {
		return usageError("--ssh %q: %v", *sshAddr, err)
	}
	bmcBody := map[string]any{"address": bmcHost, "username": *bmcUser, "password": bmcPW}
	if bmcPort != 0 {
		bmcBody["port"] = bmcPort
	}
	if *cipher != 0 {
		bmcBody["cipher_suite"] = *cipher
	}
	sshBody := map[string]any{"address": sshHost, "username": *sshUser}
	if sshPort != 0 {
		sshBody["port"] = sshPort
	}
	if *hostKey != "" {
		sshBody["host_key"] = *hostKey
	}
	if *sshPasswordFile != "" {
		b, err := os.ReadFile(*sshPasswordFile)
		if err != nil {
			return fmt.Errorf("read SSH password file: %w", err)
		}
		sshBody["password"] = strings.TrimRight(string(b), "\r\n")
	}
	body := map[string]any{"name": pos[0], "bmc": bmcBody, "ssh": sshBody}
	return startAndMaybeWait(ctx, c, stdout, "/machines/adopt", body, *wait, 0)
}

// splitAddr splits "host", "host:port" or "[v6]:port"; port 0 means none
// was given.
func splitAddr(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), 0, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("port %q is not from 1 to 65535", port)
	}
	return host, n, nil
}

// runAdoptScript is `bareflow machine adopt-script`: it prints the one
// line that, run on a server as the user bareflow will log in as,
// authorizes bareflow's SSH key there. The link in it expires.
func runAdoptScript(ctx context.Context, c *apiClient, rest []string, stdout, stderr io.Writer) error {
	fs, out := cliFlags("machine adopt-script", stderr)
	user := fs.String("user", "root", "the user the script is for; it refuses to run as any other")
	ttl := fs.Duration("ttl", 0, "how long the link works (default 15m, at most 24h)")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("machine adopt-script [--user U] [--ttl 15m]")
	}
	body := map[string]any{"user": *user}
	if *ttl > 0 {
		body["ttl_seconds"] = int(ttl.Seconds())
	}
	var raw json.RawMessage
	if err := c.do(ctx, "POST", "/adopt/script-link", body, &raw); err != nil {
		return err
	}
	if *out == "json" {
		return printJSON(stdout, raw)
	}
	var link struct {
		Path string `json:"path"`
	}
	if err := json.Unmarshal(raw, &link); err != nil {
		return err
	}
	// The link as this CLI reaches the API, which is how the server to
	// adopt most likely reaches it too.
	u := c.base + link.Path
	fmt.Fprintf(stdout, "curl -fsS '%s' | sh\n", strings.ReplaceAll(u, "'", `'\''`))
	return nil
}
