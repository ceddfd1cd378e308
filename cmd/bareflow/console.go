package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"golang.org/x/net/websocket"
	"golang.org/x/term"
)

// consoleEscape is how to leave the console: '~' then '.' right after a
// newline (or first thing), as in ssh. "~~" sends one '~'.
const consoleEscape = "~."

// runConsole is `bareflow console MACHINE`: the machine's serial console
// through the API's websocket, with the local terminal in raw mode.
func runConsole(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	force := fs.Bool("force", false, "take the serial console over when another session (not bareflow's) holds it")
	readOnly := fs.Bool("read-only", false, "watch only; never type")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bareflow console MACHINE [--force] [--read-only]")
		fmt.Fprintln(stderr, "Leave with ~. at the start of a line.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("console takes one MACHINE")
	}
	machine := pos[0]
	c, err := newAPIClient(e)
	if err != nil {
		return err
	}
	// Ask first, so that an unknown machine gets the API's own answer; the
	// websocket handshake only tells its status.
	var m struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := c.do(ctx, "GET", "/machines/"+url.PathEscape(machine), nil, &m); err != nil {
		return err
	}

	q := url.Values{}
	if *readOnly {
		q.Set("mode", "read")
	}
	if *force {
		q.Set("force", "true")
	}
	u, err := url.Parse(c.base + "/api/v1/machines/" + url.PathEscape(m.ID) + "/console")
	if err != nil {
		return err
	}
	origin := *u
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.RawQuery = q.Encode()
	cfg, err := websocket.NewConfig(u.String(), origin.Scheme+"://"+origin.Host)
	if err != nil {
		return err
	}
	cfg.Protocol = []string{"bareflow.console"}
	cfg.Header.Set("Authorization", "Bearer "+c.token)
	ws, err := cfg.DialContext(ctx)
	if err != nil {
		return fmt.Errorf("the API refused the console of %s (%v): the BMC may be unreachable, another session may hold its serial console (try --force), or another client holds the input (try --read-only)", m.Name, err)
	}
	defer ws.Close()

	in := os.Stdin
	restore := func() {}
	if term.IsTerminal(int(in.Fd())) {
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("raw terminal: %w", err)
		}
		restore = func() { _ = term.Restore(int(in.Fd()), old) }
	}
	defer restore()
	fmt.Fprintf(stdout, "[connected to %s; leave with %s at the start of a line]\r\n", m.Name, consoleEscape)
	err = bridgeTerminal(ctx, ws, in, stdout)
	restore()
	fmt.Fprintf(stdout, "\r\n[left the console of %s]\n", m.Name)
	return err
}

// bridgeTerminal copies in (through the escape filter) to conn and conn to
// out, until the escape, the end of in, the end of conn or ctx.
func bridgeTerminal(ctx context.Context, conn io.ReadWriteCloser, in io.Reader, out io.Writer) error {
	done := make(chan error, 2)
	go func() {
		_, err := io.Copy(out, conn)
		done <- err
	}()
	go func() {
		_, err := io.Copy(conn, newEscapeReader(in))
		if errors.Is(err, errEscape) {
			err = nil
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
	}
	conn.Close()
	if err != nil && (errors.Is(err, io.EOF) || strings.Contains(err.Error(), "use of closed network connection")) {
		err = nil
	}
	return err
}

// errEscape ends the input when the user typed the escape.
var errEscape = errors.New("escape")

// escapeReader passes its input on but for the escape "~." after a newline,
// which ends it, and "~~", which passes one '~'.
type escapeReader struct {
	r         *bufio.Reader
	lineStart bool
	tilde     bool // a '~' at a line start waits for the next byte
}

func newEscapeReader(r io.Reader) *escapeReader {
	return &escapeReader{r: bufio.NewReader(r), lineStart: true}
}

func (e *escapeReader) Read(p []byte) (int, error) {
	if len(p) < 2 {
		return 0, io.ErrShortBuffer
	}
	n := 0
	for n < len(p)-1 {
		if n > 0 && e.r.Buffered() == 0 {
			break // hand over what we have rather than wait
		}
		b, err := e.r.ReadByte()
		if err != nil {
			if e.tilde {
				e.tilde = false
				p[n] = '~'
				n++
			}
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		switch {
		case e.tilde:
			e.tilde = false
			switch b {
			case '.':
				return n, errEscape
			case '~':
				p[n] = '~'
				n++
			default:
				p[n], p[n+1] = '~', b
				n += 2
			}
			e.lineStart = b == '\r' || b == '\n'
		case e.lineStart && b == '~':
			e.tilde = true
		default:
			p[n] = b
			n++
			e.lineStart = b == '\r' || b == '\n'
		}
	}
	return n, nil
}
