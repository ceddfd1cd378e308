// Package ipmisim runs a real simulated BMC, OpenIPMI's ipmi_sim, for the
// tests of bareflow packages that talk IPMI.
//
// Start writes a LAN configuration, an emulator command file and a small
// chassis-control shell script into the test's temporary directory, starts
// ipmi_sim in its own process group on a free UDP port of 127.0.0.1, and waits
// until it answers. The script stands in for the machine's hardware: it keeps
// the power state and the last boot device in files, which Power and
// BootDevice read back for assertions.
//
// What the simulated BMC does, as bareflow sees it:
//
//   - Chassis Control power up, power down, hard reset, power cycle and soft
//     shutdown all answer success. A power cycle turns the power off at once
//     and ipmi_sim turns it on again about one second later. A soft shutdown
//     turns the power off unless Options.IgnoreSoftOff is set, which stands
//     for a guest without an ACPI power-button handler.
//   - Set System Boot Options parameter 5 passes only the boot device on to
//     the hardware (pxe, default for a disk, none, cdrom, bios): the valid,
//     persistent and EFI bits are dropped. Get System Boot Options parameter 5
//     answers with that device and all those bits clear.
//   - RMCP+ works with cipher suite 3; ipmi_sim has no suite 17.
//   - The LAN port is UDP, so Restart can bind the same port again at once.
//   - Users (Set User Name, Set User Password, Set User Access, enable and
//     disable) work and are kept in the state directory across Restart. The
//     BMC keeps one access record per user, not one per channel, and stores
//     16 bytes of a password: a 20-byte password only works when its last 4
//     bytes are zero. Enabling a user and turning on its IPMI messaging are
//     the same bit, and Get User Access reports the enable status as unknown.
//     Test Password accepts any password. ipmi_sim writes changed users
//     to its state directory on a one-second tick: a Restart sooner than
//     that loses the change.
//   - Options.LAN gives the LAN channel's IP settings (address source,
//     address, netmask, default gateway, MAC) a store in files, through
//     ipmi_sim's lan_config_program, so that "lan set" changes are committed
//     there, read back by "lan print" and kept across Restart, and a switch
//     to DHCP can be answered with a lease. Without it ipmi_sim keeps the IP
//     settings in memory only, reports the MAC as 00:00:00:00:00:00 and
//     accepts any address source.
//   - Options.VMSerial adds ipmi_sim's VM serial interface (the system
//     interface, channel 15) on a TCP port of 127.0.0.1, for QEMU's
//     ipmi-bmc-extern device. With Options.VMPower as well, the chassis is
//     that VM instead of the chassis-control script: power down (and the
//     off half of a power cycle) makes QEMU shut down, Get Chassis Status
//     reports on while a VM is connected and off otherwise, a hard reset
//     resets the VM; power up does nothing (no VM is started), soft
//     shutdown and Set System Boot Options answer "Invalid data field", and
//     Power, SetPower, BootDevice and Calls see none of it.
//   - Options.Netns runs ipmi_sim inside a network namespace, with its LAN
//     interface on Options.Host and Options.Port there (the VM serial
//     interface on 127.0.0.1 of the namespace), for a lab whose machines
//     and workers all live in that namespace.
//   - Not implemented by ipmi_sim: Cold Reset (ipmitool's "mc reset cold"
//     does not wait for an answer and reports success; nothing is reset),
//     the SOL payload access commands ("sol payload enable|status" answer
//     "Invalid command"), and "sol info" without a sol line in the
//     configuration.
//   - Options.SOL adds Serial over LAN: activating the SOL payload (payload
//     instance 1) connects the session to the serial port Options.SOL
//     names, such as a test's TCP server playing the machine's console.
//     One activation at a time: a second one answers "payload already
//     active" until the first is deactivated or its session closes.
//
// Tests that cannot find ipmi_sim are skipped, unless the environment sets
// BAREFLOW_REQUIRE_INTEGRATION=1, which makes them fail instead.
package ipmisim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bareflow/contract"
)

// RequireIntegrationEnv is the environment variable that turns a missing
// ipmi_sim from a skipped test into a failed one.
const RequireIntegrationEnv = "BAREFLOW_REQUIRE_INTEGRATION"

// Default credentials of the simulated BMC's administrator, user 2.
const (
	DefaultUser     = "admin"
	DefaultPassword = "password"
)

// Bounds of the lab's waits.
const (
	readyTimeout = 10 * time.Second
	stopTimeout  = 3 * time.Second
	startTries   = 3
)

// bmcIPMB is the IPMB address of the simulated BMC.
const bmcIPMB = "0x20"

// lanChannel is the channel number of the BMC's one LAN interface.
const lanChannel = 1

// Options say how the simulated BMC and its machine start.
type Options struct {
	// User and Password are the credentials of the BMC's administrator.
	// They default to DefaultUser and DefaultPassword.
	User, Password string
	// InitialPower is the chassis power state at start. The zero value and
	// PowerUnknown mean off.
	InitialPower contract.PowerState
	// IgnoreSoftOff makes a soft shutdown do nothing, as on a machine whose
	// OS does not handle the ACPI power button.
	IgnoreSoftOff bool
	// LAN, when not nil, backs the LAN channel's IP settings with files and
	// sets their initial values. See LANConfig.
	LAN *LANConfig
	// VMSerial adds the line "serial 15 127.0.0.1 PORT codec VM" to the LAN
	// configuration, so that a QEMU ipmi-bmc-extern chardev can connect to
	// Sim.VMPort and give its guest a KCS interface to this BMC.
	VMSerial bool
	// VMPower, with VMSerial, leaves the chassis-control script out, so
	// that ipmi_sim sends chassis power control to the connected VM: a
	// power down shuts QEMU down. See the package comment.
	VMPower bool
	// Netns, when set, is the network namespace (as `ip netns` names it)
	// ipmi_sim runs in; the readiness check is sent from inside it.
	Netns string
	// Host is the IPv4 address the LAN interface listens on; empty means
	// 127.0.0.1. With Netns it is an address of that namespace.
	Host string
	// Port is the UDP port of the LAN interface; zero means a free port
	// of the host's loopback.
	Port int
	// SOL, when not empty, adds Serial over LAN: the line
	// "sol "SOL" 115200" in the LAN configuration. SOL names the machine's
	// serial port as ipmi_sim sees it: "tcp:HOST:PORT" (a plain TCP
	// connection), "telnet:HOST:PORT" (with telnet processing) or a device
	// path. ipmi_sim connects to it as a client and keeps trying while
	// nothing listens there.
	SOL string
	// Machine, when set, is a program that stands for the machine's
	// hardware behind the chassis-control script, such as one that starts
	// and stops a QEMU VM: the script runs "Machine NAME VALUE" after
	// recording each change it is asked for ("power 1", "power 0",
	// "reset 1", "boot pxe", "boot default", "shutdown 1"), and
	// "Machine status" to answer a power query, which must print 1 (on) or
	// 0 (off). When it fails, the BMC answers the request with an error.
	// ipmi_sim waits while it runs: it must return well within a second,
	// leaving anything slow to a process of its own. Not with VMPower.
	Machine string
}

// Sim is one running ipmi_sim and the simulated machine behind it.
type Sim struct {
	// Host and Port are where the BMC's RMCP+ LAN interface listens.
	Host string
	Port int
	// VMPort is the TCP port of 127.0.0.1 where the VM serial interface
	// listens when Options.VMSerial is set, or 0. It stays the same across
	// Restart, so that a QEMU with a reconnecting chardev finds it again.
	// ipmi_sim does not set SO_REUSEADDR: after a client was connected,
	// Restart may fail to bind the port again for about a minute.
	VMPort int
	// User and Password are the administrator's credentials.
	User, Password string
	// Dir holds ipmi_sim's configuration (lan.conf, emu.cmd), its log
	// (ipmi_sim.log) and state directory (state), the chassis-control
	// script (chassis) and the machine's state files (power, boot, calls);
	// with Options.LAN also the LAN store script (lancontrol) and its files
	// (lan/).
	Dir string

	vmSerial bool
	vmPower  bool
	lan      bool
	netns    string
	sol      string

	mu   sync.Mutex
	proc *process
}

// process is one ipmi_sim run.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
}

// Start starts a simulated BMC for the test t and stops it when the test
// ends. It skips the test when ipmi_sim is not installed, unless
// BAREFLOW_REQUIRE_INTEGRATION=1.
func Start(t testing.TB, opts Options) *Sim {
	t.Helper()
	if _, err := exec.LookPath("ipmi_sim"); err != nil {
		if os.Getenv(RequireIntegrationEnv) == "1" {
			t.Fatalf("ipmi_sim not found (%v) and %s=1: install the openipmi package", err, RequireIntegrationEnv)
		}
		t.Skipf("ipmi_sim not found (%v): install the openipmi package, or set %s=1 to make this a failure", err, RequireIntegrationEnv)
	}
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	for _, v := range []string{opts.User, opts.Password} {
		if strings.ContainsAny(v, "\"\n") {
			t.Fatalf("ipmisim: user and password must not contain a double quote or a newline")
		}
	}

	if strings.ContainsAny(opts.SOL, "\"\n") {
		t.Fatalf("ipmisim: SOL must not contain a double quote or a newline")
	}
	if opts.VMPower && !opts.VMSerial {
		t.Fatalf("ipmisim: VMPower needs VMSerial")
	}
	if opts.VMPower && opts.Machine != "" {
		t.Fatalf("ipmisim: Machine and VMPower both name the machine")
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.Is4() {
		t.Fatalf("ipmisim: Host %q: want an IPv4 address", host)
	}
	s := &Sim{Host: host, User: opts.User, Password: opts.Password, Dir: t.TempDir(),
		vmSerial: opts.VMSerial, vmPower: opts.VMPower, lan: opts.LAN != nil, netns: opts.Netns, sol: opts.SOL}
	t.Cleanup(s.Stop)
	if err := s.writeFiles(opts); err != nil {
		t.Fatalf("ipmisim: %v", err)
	}

	var lastErr error
	for range startTries {
		port, err := opts.Port, error(nil)
		if port == 0 {
			if port, err = freeUDPPort(); err != nil {
				t.Fatalf("ipmisim: %v", err)
			}
		}
		if s.vmSerial {
			if s.VMPort, err = freeTCPPort(); err != nil {
				t.Fatalf("ipmisim: %v", err)
			}
		}
		if err := s.start(port); err != nil {
			lastErr = err
			continue // most likely another process took the port meanwhile
		}
		return s
	}
	t.Fatalf("ipmisim: start ipmi_sim: %v", lastErr)
	return nil
}

// Addr returns the address of the BMC's LAN interface.
func (s *Sim) Addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(s.Host), uint16(s.Port))
}

// Stop kills ipmi_sim and waits until it is gone, so the BMC stops answering
// as if it had become unreachable. The machine's state files stay. Stop may
// be called more than once.
func (s *Sim) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Restart stops ipmi_sim if it runs and starts it again on the same port
// (and VM port), with the machine's power state and boot device, the users
// and the LAN settings of Options.LAN kept. The LAN interface is
// UDP, which leaves nothing like TCP's TIME_WAIT behind, so the port can be
// bound again at once.
func (s *Sim) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(s.Port); err != nil {
		t.Fatalf("ipmisim: restart ipmi_sim on port %d: %v", s.Port, err)
	}
}

// Running reports whether ipmi_sim runs.
func (s *Sim) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return false
	}
	select {
	case <-s.proc.done:
		return false
	default:
		return true
	}
}

// Power returns the chassis power state as the simulated hardware sees it.
func (s *Sim) Power() contract.PowerState {
	switch s.readState("power") {
	case "1":
		return contract.PowerOn
	case "0":
		return contract.PowerOff
	}
	return contract.PowerUnknown
}

// SetPower changes the power state behind the BMC's back, as a front-panel
// button or a power loss would.
func (s *Sim) SetPower(state contract.PowerState) error {
	v := "0"
	if state == contract.PowerOn {
		v = "1"
	}
	return s.writeState("power", v)
}

// BootDevice returns the last boot device the BMC passed on to the hardware,
// in ipmi_sim's words: "pxe", "default" (a disk), "none", "cdrom" or "bios".
// It is "none" until a boot device is set.
func (s *Sim) BootDevice() string {
	return s.readState("boot")
}

// Calls returns, in order, every change the BMC asked of the hardware, one
// "NAME VALUE" string each, such as "power 1", "reset 1", "boot pxe" or
// "shutdown 1".
func (s *Sim) Calls() []string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "calls"))
	if err != nil {
		return nil
	}
	var calls []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			calls = append(calls, line)
		}
	}
	return calls
}

// Log returns what ipmi_sim wrote to its standard output and error.
func (s *Sim) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "ipmi_sim.log"))
	return string(b)
}

func (s *Sim) readState(name string) string {
	b, err := os.ReadFile(filepath.Join(s.Dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// writeState replaces a state file atomically, as the script does, so that
// neither side ever reads a half-written file.
func (s *Sim) writeState(name, value string) error {
	tmp := filepath.Join(s.Dir, name+".go.tmp")
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.Dir, name))
}

func (s *Sim) writeFiles(opts Options) error {
	power := "0"
	if opts.InitialPower == contract.PowerOn {
		power = "1"
	}
	if err := s.writeState("power", power); err != nil {
		return err
	}
	if err := s.writeState("boot", "none"); err != nil {
		return err
	}
	if opts.IgnoreSoftOff {
		if err := os.WriteFile(filepath.Join(s.Dir, "ignore_soft_off"), nil, 0o644); err != nil {
			return err
		}
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "state"), 0o755); err != nil {
		return err
	}
	if opts.LAN != nil {
		if err := s.writeLANFiles(*opts.LAN); err != nil {
			return err
		}
	}
	script := filepath.Join(s.Dir, "chassis")
	if err := os.WriteFile(script, []byte(chassisScript(s.Dir, opts.Machine)), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir, "emu.cmd"), []byte(emulatorCommands), 0o644)
}

// start runs ipmi_sim on port and waits until it answers.
func (s *Sim) start(port int) error {
	conf := lanConfig(lanParams{
		dir: s.Dir, host: s.Host, port: port, user: s.User, password: s.Password,
		lanControl: s.lan, vmPort: s.VMPort, vmPower: s.vmPower, sol: s.sol,
	})
	if err := os.WriteFile(filepath.Join(s.Dir, "lan.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "ipmi_sim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy

	argv := []string{"ipmi_sim", "-n",
		"-c", filepath.Join(s.Dir, "lan.conf"),
		"-f", filepath.Join(s.Dir, "emu.cmd"),
		"-s", filepath.Join(s.Dir, "state")}
	if s.netns != "" {
		// ip execs ipmi_sim under its own PID, in the namespace.
		argv = append([]string{"ip", "netns", "exec", s.netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()

	s.mu.Lock()
	s.proc = p
	s.Port = port
	s.mu.Unlock()

	if err := waitReady(s.netns, s.Host, port, p.done); err != nil {
		s.Stop()
		return fmt.Errorf("%w; ipmi_sim log:\n%s", err, s.Log())
	}
	return nil
}

// stop ends the process group: SIGTERM, then SIGKILL when it lingers.
func (p *process) stop() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// freeTCPPort returns a TCP port of 127.0.0.1 that nothing listens on now.
func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free TCP port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freeUDPPort returns a UDP port of 127.0.0.1 that nothing is bound to now.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free UDP port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// rmcpPing is an RMCP/ASF presence ping: RMCP header (version 6, no RMCP
// ACK, class ASF), the ASF IANA number 4542, message type 80h, tag, reserved,
// data length 0.
var rmcpPing = []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x01, 0x00, 0x00}

// waitReady pings the LAN interface (from inside netns, when set) until it answers with an ASF pong, the
// process exits, or readyTimeout passes.
func waitReady(netns, host string, port int, exited <-chan struct{}) error {
	conn, err := dialUDP(netns, net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(readyTimeout)
	buf := make([]byte, 512)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("ipmi_sim exited before it answered")
		default:
		}
		if _, err := conn.Write(rmcpPing); err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := conn.Read(buf)
			// An ASF pong: class ASF, message type 40h.
			if err == nil && n >= 12 && buf[3] == 0x06 && buf[8] == 0x40 {
				return nil
			}
			if err != nil && !isTimeout(err) {
				// Connection refused: nothing listens yet.
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return fmt.Errorf("ipmi_sim did not answer an RMCP ping on %s:%d within %s", host, port, readyTimeout)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// lanParams are what lanConfig writes into ipmi_sim's LAN configuration.
type lanParams struct {
	dir            string
	host           string
	port           int
	user, password string
	// lanControl adds the lan_config_program line for the LAN store.
	lanControl bool
	// vmPort, when not 0, adds the VM serial interface on that TCP port.
	vmPort int
	// vmPower leaves the chassis-control script out: chassis control
	// goes to the VM.
	vmPower bool
	// sol, when not empty, adds a sol line with this serial device.
	sol string
}

// lanConfig is ipmi_sim's LAN configuration: one LAN channel on p.host,
// the administrator as user 2, and the chassis-control script (unless
// p.vmPower); with p.lanControl the LAN store script, with p.vmPort the VM
// serial interface.
// ipmi_sim runs the scripts through popen, hence the shell quoting of their
// paths.
func lanConfig(p lanParams) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name \"bareflow\"\n")
	fmt.Fprintf(&b, "set_working_mc %s\n", bmcIPMB)
	fmt.Fprintf(&b, "startlan %d\n", lanChannel)
	fmt.Fprintf(&b, "  addr %s %d\n", p.host, p.port)
	fmt.Fprintf(&b, "  priv_limit admin\n")
	for _, lvl := range []string{"callback", "user", "operator", "admin"} {
		fmt.Fprintf(&b, "  allowed_auths_%s md5 md2 straight none\n", lvl)
	}
	fmt.Fprintf(&b, "  guid a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5\n")
	if p.lanControl {
		fmt.Fprintf(&b, "  lan_config_program \"%s %d\"\n", shellQuote(filepath.Join(p.dir, lanControlScript)), lanChannel)
	}
	fmt.Fprintf(&b, "endlan\n")
	if p.vmPort != 0 {
		fmt.Fprintf(&b, "serial 15 127.0.0.1 %d codec VM\n", p.vmPort)
	}
	if p.sol != "" {
		fmt.Fprintf(&b, "sol \"%s\" 115200\n", p.sol)
	}
	if !p.vmPower {
		fmt.Fprintf(&b, "chassis_control \"%s %s\"\n", shellQuote(filepath.Join(p.dir, "chassis")), bmcIPMB)
	}
	fmt.Fprintf(&b, "user 2 true \"%s\" \"%s\" admin 10 md5 md2 straight none\n", p.user, p.password)
	return b.String()
}

// emulatorCommands define the one management controller, the BMC at 20h:
// device ID 0, revision 3, firmware 9.08, chassis, SEL, SDR, FRU and sensor
// device support, manufacturer 4753 (OpenIPMI's), product 0f02h.
const emulatorCommands = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x03 9 8 0x9f 0x1291 0x0f02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
`

// chassisScript is the simulated hardware. ipmi_sim runs it as
// "chassis 0x20 get NAME..." and expects "NAME:VALUE" lines back, or as
// "chassis 0x20 set NAME VALUE..." to change something. It keeps each value in
// a file of dir, replaced atomically, and returns at once. With machine
// set, it also hands each change to that program and asks it for the power
// state (see Options.Machine).
func chassisScript(dir, machine string) string {
	return `#!/bin/sh
# Simulated machine behind a bareflow test BMC (package ipmisim).
D=` + shellQuote(dir) + `
M=` + shellQuote(machine) + `
shift # the BMC's IPMB address
op=$1
shift
put() { printf '%s\n' "$2" > "$D/$1.tmp" && mv -f "$D/$1.tmp" "$D/$1"; }
get() { v=; read -r v < "$D/$1"; printf '%s:%s\n' "$1" "$v"; }
case $op in
get)
	for k in "$@"; do
		case $k in
		power)
			if [ -n "$M" ]; then
				v=$("$M" status 2>>"$D/machine.log") || v=0
				put power "$v"
			fi
			get power
			;;
		boot) get boot ;;
		esac
	done
	;;
set)
	while [ $# -ge 2 ]; do
		k=$1 v=$2
		shift 2
		printf '%s %s\n' "$k" "$v" >> "$D/calls"
		case $k in
		power) put power "$v" ;;
		boot) put boot "$v" ;;
		shutdown) [ -e "$D/ignore_soft_off" ] || put power 0 ;;
		esac
		if [ -n "$M" ]; then
			# The hardware failed to do it: the BMC answers with an error.
			"$M" "$k" "$v" </dev/null >>"$D/machine.log" 2>&1 || exit 1
		fi
	done
	;;
*)
	exit 1
	;;
esac
exit 0
`
}
