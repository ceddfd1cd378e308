package wipe

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// nvmeController is what an erase needs of "nvme id-ctrl -o json".
type nvmeController struct {
	// OACS bit 1: Format NVM is supported.
	OACS int64 `json:"oacs"`
	// SANICAP bits 0, 1, 2: crypto erase, block erase, overwrite.
	SANICAP int64 `json:"sanicap"`
	// FNA bit 0: a format applies to every namespace.
	FNA int64  `json:"fna"`
	MN  string `json:"mn"`
}

func (c nvmeController) canFormat() bool { return c.OACS&0x2 != 0 }

// Sanitize actions (NVMe base specification, Sanitize command, SANACT).
const (
	sanactBlockErase  = 2
	sanactOverwrite   = 3
	sanactCryptoErase = 4
)

// sanitizeAction is the sanitize the controller supports, best first:
// block erase (the media itself), crypto erase, overwrite; 0 when none.
func (c nvmeController) sanitizeAction() (int, string) {
	switch {
	case c.SANICAP&0x2 != 0:
		return sanactBlockErase, "sanitize-block"
	case c.SANICAP&0x1 != 0:
		return sanactCryptoErase, "sanitize-crypto"
	case c.SANICAP&0x4 != 0:
		return sanactOverwrite, "sanitize-overwrite"
	}
	return 0, ""
}

// parseNVMeController reads "nvme id-ctrl -o json". nvme-cli writes the
// identify fields as numbers under their specification names.
func parseNVMeController(out []byte) (nvmeController, error) {
	var c nvmeController
	if err := json.Unmarshal(out, &c); err != nil {
		return c, fmt.Errorf("nvme id-ctrl: %w", err)
	}
	return c, nil
}

// nvmeNamespace is what a format needs of "nvme id-ns -o json".
type nvmeNamespace struct {
	FLBAS int64 `json:"flbas"`
	NLBAF int64 `json:"nlbaf"`
}

// lbaFormat is the index of the namespace's LBA format: FLBAS bits 3:0,
// and bits 6:5 as the high bits when there are more than 16 formats.
func (n nvmeNamespace) lbaFormat() int64 {
	i := n.FLBAS & 0xf
	if n.NLBAF >= 16 {
		i |= (n.FLBAS >> 5 & 0x3) << 4
	}
	return i
}

func parseNVMeNamespace(out []byte) (nvmeNamespace, error) {
	var n nvmeNamespace
	if err := json.Unmarshal(out, &n); err != nil {
		return n, fmt.Errorf("nvme id-ns: %w", err)
	}
	return n, nil
}

// ataSecurity is the Security section of "hdparm -I".
type ataSecurity struct {
	present   bool // the section was printed
	supported bool
	enabled   bool
	locked    bool
	frozen    bool
	expired   bool // the password attempt counter ran out
	enhanced  bool // enhanced erase supported
	// normalMinutes and enhancedMinutes are the drive's estimates; 508
	// stands for "more than 508".
	normalMinutes, enhancedMinutes int64
}

var eraseTime = regexp.MustCompile(`(?:more than )?(\d+)min for (ENHANCED )?SECURITY ERASE UNIT`)

// parseHdparmSecurity reads the Security section of "hdparm -I": one line
// per flag, "not" before a flag that is off ("\tnot\tfrozen", "\t\tfrozen"),
// then the erase time estimates.
func parseHdparmSecurity(out []byte) ataSecurity {
	var s ataSecurity
	in := false
	for l := range strings.Lines(string(out)) {
		t := strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(t, "Security:") {
			in, s.present = true, true
			continue
		}
		if !in {
			continue
		}
		if t != "" && t[0] != ' ' && t[0] != '\t' {
			break // the next section
		}
		for _, m := range eraseTime.FindAllStringSubmatch(t, -1) {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			if m[2] != "" {
				s.enhancedMinutes = n
			} else {
				s.normalMinutes = n
			}
		}
		f := strings.Fields(t)
		if len(f) == 0 {
			continue
		}
		on := true
		if f[0] == "not" || f[0] == "(?)" {
			on, f = false, f[1:]
		}
		switch strings.Join(f, " ") {
		case "supported":
			s.supported = on
		case "enabled":
			s.enabled = on
		case "locked":
			s.locked = on
		case "frozen":
			s.frozen = on
		case "expired: security count":
			s.expired = on
		case "supported: enhanced erase":
			s.enhanced = on
		}
	}
	return s
}
