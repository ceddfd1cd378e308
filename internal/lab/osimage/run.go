package osimage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// commandTimeout bounds each tool run.
const commandTimeout = 5 * time.Minute

// command describes one tool run.
type command struct {
	argv  []string
	stdin io.Reader
	env   []string
	dir   string
}

// run runs argv and returns its standard output; a failure carries the
// command line and its standard error.
func run(ctx context.Context, argv ...string) ([]byte, error) {
	return runCmd(ctx, command{argv: argv})
}

func runCmd(ctx context.Context, c command) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	path, err := lookTool(c.argv[0])
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, c.argv[1:]...)
	cmd.Stdin = c.stdin
	cmd.Dir = c.dir
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), c.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", strings.Join(c.argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// needTools fails with the names of the tools that are not on PATH.
func needTools(names ...string) error {
	var missing []string
	for _, n := range names {
		if _, err := lookTool(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingTool, strings.Join(missing, ", "))
	}
	return nil
}

// sbinDirs hold the system tools that a non-root PATH may lack.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// lookTool finds a tool on PATH, then in the sbin folders.
func lookTool(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := d + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrMissingTool, name)
}
