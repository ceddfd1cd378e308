package bmcsetup_test

import (
	"errors"
	"strings"
	"testing"

	"bareflow/internal/bmcsetup"
)

var builtinProfiles = []string{"generic", "dell", "hpe", "supermicro", "lenovo", "huawei", "inspur", "lab"}

func TestProfileFor(t *testing.T) {
	tests := map[string]struct {
		vendor string
		want   string
	}{
		"Dell":                       {"Dell Inc.", "dell"},
		"HPE":                        {"HPE", "hpe"},
		"Hewlett Packard Enterprise": {"Hewlett Packard Enterprise", "hpe"},
		"HP":                         {"HP", "hpe"},
		"Hewlett-Packard":            {"Hewlett-Packard", "hpe"},
		"HPC vendor is not HP":       {"HPC Systems Inc.", "generic"},
		"Huawei":                     {"Huawei", "huawei"},
		"Huawei long":                {"Huawei Technologies Co., Ltd.", "huawei"},
		"Inspur":                     {"Inspur", "inspur"},
		"Lenovo":                     {"Lenovo", "lenovo"},
		"Supermicro":                 {"Supermicro", "supermicro"},
		"Super Micro":                {"Super Micro Computer, Inc.", "supermicro"},
		"QEMU":                       {"QEMU", "lab"},
		"lab":                        {"bareflow-lab", "lab"},
		"surrounding space and case": {"  dell inc.  ", "dell"},
		"unknown":                    {"Acme Servers", "generic"},
		"empty":                      {"", "generic"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := bmcsetup.ProfileFor(tc.vendor).Name; got != tc.want {
				t.Errorf("ProfileFor(%q).Name = %q, want %q", tc.vendor, got, tc.want)
			}
		})
	}
}

func TestBuiltinProfiles(t *testing.T) {
	for _, name := range builtinProfiles {
		t.Run(name, func(t *testing.T) {
			p, ok := bmcsetup.ProfileByName(name)
			if !ok {
				t.Fatalf("ProfileByName(%q) not found", name)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if p.Name != name {
				t.Errorf("Name = %q, want %q", p.Name, name)
			}
			for _, s := range []int{1, 2} {
				if !contains(p.ReservedSlots, s) {
					t.Errorf("slot %d not reserved", s)
				}
			}
			if p.ResetAfterLANChange {
				t.Errorf("built-in profile resets the BMC; none is known to need it")
			}
		})
	}
	if _, ok := bmcsetup.ProfileByName("cray"); ok {
		t.Errorf("ProfileByName(cray) found a profile")
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestProfileValidate(t *testing.T) {
	tests := map[string]func(p *bmcsetup.Profile){
		"no name":                   func(p *bmcsetup.Profile) { p.Name = "" },
		"channel 12":                func(p *bmcsetup.Profile) { p.LANChannels = []int{12} },
		"slot 1":                    func(p *bmcsetup.Profile) { p.FirstSlot = 1 },
		"slots reversed":            func(p *bmcsetup.Profile) { p.FirstSlot, p.MaxSlot = 8, 4 },
		"slot 64":                   func(p *bmcsetup.Profile) { p.MaxSlot = 64 },
		"password size 18":          func(p *bmcsetup.Profile) { p.SetPasswordLength = 18 },
		"password longer than size": func(p *bmcsetup.Profile) { p.PasswordMaxLen, p.PasswordLength = 20, 20 },
		"generated too short":       func(p *bmcsetup.Profile) { p.PasswordLength = 4 },
		"quote special":             func(p *bmcsetup.Profile) { p.PasswordSpecials = `-'` },
		"dollar special":            func(p *bmcsetup.Profile) { p.PasswordSpecials = `$` },
		"complex without specials":  func(p *bmcsetup.Profile) { p.PasswordSpecials = "" },
		"negative wait":             func(p *bmcsetup.Profile) { p.ResetWait = -1 },
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			p := bmcsetup.Generic()
			mod(&p)
			if err := p.Validate(); !errors.Is(err, bmcsetup.ErrInvalidRequest) {
				t.Errorf("Validate() = %v, want ErrInvalidRequest", err)
			}
			if _, err := bmcsetup.GeneratePassword(p); err == nil {
				t.Errorf("GeneratePassword with an invalid profile: got no error")
			}
		})
	}
}

func TestGeneratePassword(t *testing.T) {
	const draws = 300
	for _, name := range builtinProfiles {
		t.Run(name, func(t *testing.T) {
			p, _ := bmcsetup.ProfileByName(name)
			allowed := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + p.PasswordSpecials
			seen := map[string]bool{}
			for range draws {
				s, err := bmcsetup.GeneratePassword(p)
				if err != nil {
					t.Fatal(err)
				}
				pw := s.Reveal()
				if len(pw) != p.PasswordLength {
					t.Fatalf("length %d, want %d", len(pw), p.PasswordLength)
				}
				if strings.ContainsAny(pw[:1], p.PasswordSpecials) {
					t.Errorf("password starts with a special character")
				}
				for i := range len(pw) {
					if !strings.ContainsRune(allowed, rune(pw[i])) {
						t.Fatalf("character %q not allowed", pw[i])
					}
					if i > 0 && pw[i] == pw[i-1] {
						t.Fatalf("character repeated at %d", i)
					}
				}
				for _, class := range []string{"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "0123456789", p.PasswordSpecials} {
					if !strings.ContainsAny(pw, class) {
						t.Fatalf("no character of %q", class)
					}
				}
				if seen[pw] {
					t.Fatalf("password repeated after %d draws", len(seen))
				}
				seen[pw] = true
				if s.String() != "REDACTED" {
					t.Fatalf("String() = %q, want REDACTED", s.String())
				}
			}
		})
	}
}
