// Command bareflow is bareflow's single binary: `bareflow dev` runs the whole
// system on one machine; `bareflow server | worker | migrate` run the parts
// alone against an external Temporal and PostgreSQL; the other subcommands
// are the operator's client of the HTTP API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "bareflow:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "bareflow:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s (see 'bareflow help')", errUsage, fmt.Sprintf(format, args...))
}

const usage = `bareflow provisions bare-metal servers through durable workflows.

Run the system:
  bareflow dev        everything on one machine: embedded Temporal and Web UI, API, worker, boot service
  bareflow server     the HTTP API, against an external Temporal and PostgreSQL
  bareflow worker     a worker running workflows and activities
  bareflow boot       the boot service: DHCP, TFTP, HTTP boot and phone-home
  bareflow migrate    create and migrate the PostgreSQL database

Operate (talks to the API at $BAREFLOW_API_URL with $BAREFLOW_TOKEN):
  bareflow machine list|show|create|update|delete|register|raid|install|reinstall|wipe|adopt|adopt-script
  bareflow fleet start|show|wait|pause|resume|cancel
  bareflow adopt-script [--user U]   a link to a script that installs bareflow's SSH key on a server to adopt
  bareflow power on|off|hard-off|reset|cycle|status MACHINE
  bareflow bootdev pxe|disk|none MACHINE
  bareflow console MACHINE [--force] [--read-only]   the serial console; leave with ~. after a newline
  bareflow network list|show|create|delete
  bareflow image list|show|create|delete
  bareflow operation list|show|wait|cancel
  bareflow token list|create|revoke

  bareflow version
Each command takes -h for its flags.
`

// run is the whole program but the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError("no command")
	}
	env := loadEnv(getenv)
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest, env, stdout, stderr)
	case "server":
		return runServer(ctx, rest, env, stderr)
	case "worker":
		return runWorker(ctx, rest, env, stderr)
	case "boot":
		return runBoot(ctx, rest, env, stderr)
	case "migrate":
		return runMigrate(ctx, rest, env, stdout, stderr)
	case "machine", "machines":
		return runMachine(ctx, rest, env, stdout, stderr)
	case "power":
		return runPower(ctx, rest, env, stdout, stderr)
	case "network", "networks":
		return runNetwork(ctx, rest, env, stdout, stderr)
	case "image", "images":
		return runImage(ctx, rest, env, stdout, stderr)
	case "fleet", "fleets":
		return runFleet(ctx, rest, env, stdout, stderr)
	case "adopt-script":
		c, err := newAPIClient(env)
		if err != nil {
			return err
		}
		return runAdoptScript(ctx, c, rest, stdout, stderr)
	case "console":
		return runConsole(ctx, rest, env, stdout, stderr)
	case "bootdev":
		return runBootDev(ctx, rest, env, stdout, stderr)
	case "operation", "operations", "op":
		return runOperation(ctx, rest, env, stdout, stderr)
	case "token", "tokens":
		return runToken(ctx, rest, env, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "bareflow", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError("unknown command %q", cmd)
}
