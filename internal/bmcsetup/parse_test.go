package bmcsetup_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bareflow/internal/bmcsetup"
)

var update = flag.Bool("update", false, "rewrite the testdata/*/*.golden files")

// renderParsed parses the ipmitool output in file with the parser its name
// calls for, and renders the result as text.
func renderParsed(name, out string) (string, error) {
	var b strings.Builder
	switch {
	case strings.HasPrefix(name, "mc_info"):
		mc, err := bmcsetup.ParseMCInfo(out)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%+v\n", mc)
	case strings.HasPrefix(name, "channel_info"):
		ci, err := bmcsetup.ParseChannelInfo(out)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%+v\nIsLAN: %t\n", ci, ci.IsLAN())
	case strings.HasPrefix(name, "lan_print"):
		l, err := bmcsetup.ParseLANPrint(out)
		if err != nil {
			return "", err
		}
		prefix, ok := l.Prefix()
		fmt.Fprintf(&b, "%+v\nPrefix: %d %t\n", l, prefix, ok)
	case strings.HasPrefix(name, "user_list"):
		users, err := bmcsetup.ParseUserList(out)
		if err != nil {
			return "", err
		}
		for _, u := range users {
			fmt.Fprintf(&b, "%+v Empty:%t\n", u, u.Empty())
		}
	case strings.HasPrefix(name, "channel_getaccess"):
		st, err := bmcsetup.ParseEnableStatus(out)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "Enable Status: %s\n", st)
	default:
		return "", fmt.Errorf("no parser for %s", name)
	}
	return b.String(), nil
}

// TestParseGolden parses every captured or written output in testdata and
// compares the result with its .golden file. Files named *_error.txt must
// fail to parse; their golden file holds the error.
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d testdata files, want at least 20", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(filepath.Base(filepath.Dir(file))+"/"+name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := renderParsed(name, string(in))
			wantErr := strings.HasSuffix(name, "_error")
			switch {
			case wantErr && err == nil:
				t.Fatalf("parse %s: got no error, want one; result:\n%s", file, got)
			case wantErr:
				got = "error: " + err.Error() + "\n"
			case err != nil:
				t.Fatalf("parse %s: %v", file, err)
			}
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("parse %s:\ngot:\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]struct {
		parse func(string) error
		in    string
	}{
		"channel info without header": {
			parse: func(s string) error { _, err := bmcsetup.ParseChannelInfo(s); return err },
			in:    "  Channel Medium Type   : 802.3 LAN\n",
		},
		"channel info bad number": {
			parse: func(s string) error { _, err := bmcsetup.ParseChannelInfo(s); return err },
			in:    "Channel 0xzz info:\n  Channel Medium Type   : 802.3 LAN\n",
		},
		"lan print empty": {
			parse: func(s string) error { _, err := bmcsetup.ParseLANPrint(s); return err },
			in:    "",
		},
		"lan print bad address": {
			parse: func(s string) error { _, err := bmcsetup.ParseLANPrint(s); return err },
			in:    "IP Address Source       : Static Address\nIP Address              : 192.0.2.300\n",
		},
		"lan print bad MAC": {
			parse: func(s string) error { _, err := bmcsetup.ParseLANPrint(s); return err },
			in:    "IP Address Source       : Static Address\nIP Address              : 192.0.2.3\nMAC Address             : zz\n",
		},
		"user list header only": {
			parse: func(s string) error { _, err := bmcsetup.ParseUserList(s); return err },
			in:    "ID  Name\t     Callin  Link Auth\tIPMI Msg   Channel Priv Limit\n",
		},
		"user list garbage line": {
			parse: func(s string) error { _, err := bmcsetup.ParseUserList(s); return err },
			in:    "Get User Access command failed (channel 1, user 1): Invalid data field in request\n",
		},
		"user list ID out of range": {
			parse: func(s string) error { _, err := bmcsetup.ParseUserList(s); return err },
			in:    "64  bob              true    true       true       ADMINISTRATOR\n",
		},
		"mc info empty": {
			parse: func(s string) error { _, err := bmcsetup.ParseMCInfo(s); return err },
			in:    "Unable to establish IPMI v2 / RMCP+ session\n",
		},
		"enable status missing": {
			parse: func(s string) error { _, err := bmcsetup.ParseEnableStatus(s); return err },
			in:    "User ID              : 3\n",
		},
		"sol payload status garbage": {
			parse: func(s string) error { _, err := bmcsetup.ParseSOLPayloadStatus(s); return err },
			in:    "Error getting SOL payload status for user 3 on channel 1: Invalid command\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tc.parse(tc.in); err == nil {
				t.Errorf("parse %q: got no error, want one", tc.in)
			}
		})
	}
}

func TestParseSOLPayloadStatus(t *testing.T) {
	tests := map[string]struct {
		in   string
		want bool
	}{
		"enabled":  {"User 3 on channel 1 is enabled\n", true},
		"disabled": {"User 3 on channel 1 is disabled\n", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := bmcsetup.ParseSOLPayloadStatus(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("ParseSOLPayloadStatus(%q) = %t, %v; want %t", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestIPSourceValidate(t *testing.T) {
	tests := map[string]struct {
		src     bmcsetup.IPSource
		wantErr bool
	}{
		"static": {bmcsetup.IPStatic, false},
		"dhcp":   {bmcsetup.IPDHCP, false},
		"keep":   {bmcsetup.IPKeep, false},
		"bios":   {bmcsetup.IPBIOS, true},
		"empty":  {"", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.src.Validate()
			if (err != nil) != tc.wantErr {
				t.Errorf("Validate(%q) = %v, want error %t", tc.src, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, bmcsetup.ErrInvalidRequest) {
				t.Errorf("Validate(%q) = %v, want ErrInvalidRequest", tc.src, err)
			}
		})
	}
}
