package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestEscapeReader(t *testing.T) {
	for name, tc := range map[string]struct {
		in, want string
		escaped  bool
	}{
		"escape first thing":       {in: "~.after", want: "", escaped: true},
		"escape after a newline":   {in: "ls\r~.rest", want: "ls\r", escaped: true},
		"escape after a line feed": {in: "ls\n~.", want: "ls\n", escaped: true},
		"tilde mid-line":           {in: "a~.b", want: "a~.b"},
		"double tilde":             {in: "~~.", want: "~."},
		"tilde then other":         {in: "~x\r~.", want: "~x\r", escaped: true},
		"tilde at the end":         {in: "\r~", want: "\r~"},
		"no escape":                {in: "hello\r", want: "hello\r"},
	} {
		t.Run(name, func(t *testing.T) {
			r := newEscapeReader(iotestOneByte(strings.NewReader(tc.in)))
			var got strings.Builder
			buf := make([]byte, 8)
			var err error
			for {
				var n int
				n, err = r.Read(buf)
				got.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if got.String() != tc.want {
				t.Errorf("passed on: got %q, want %q", got.String(), tc.want)
			}
			if escaped := errors.Is(err, errEscape); escaped != tc.escaped {
				t.Errorf("escaped: got %v (%v), want %v", escaped, err, tc.escaped)
			}
		})
	}
}

// iotestOneByte reads one byte at a time, as a terminal delivers keys.
func iotestOneByte(r io.Reader) io.Reader { return oneByte{r} }

type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// pipeConn is the console's websocket in TestBridgeTerminal: what the
// terminal sends, and a machine's output.
type pipeConn struct {
	io.Reader
	sent strings.Builder
}

func (c *pipeConn) Write(p []byte) (int, error) { return c.sent.Write(p) }
func (c *pipeConn) Close() error                { return nil }

func TestBridgeTerminalLeavesOnEscape(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	conn := &pipeConn{Reader: pr}
	var out strings.Builder
	err := bridgeTerminal(context.Background(), conn, strings.NewReader("uname\r~.ignored"), &out)
	if err != nil {
		t.Fatalf("bridge: %v", err)
	}
	if got := conn.sent.String(); got != "uname\r" {
		t.Fatalf("sent to the machine: got %q, want %q", got, "uname\r")
	}
}
