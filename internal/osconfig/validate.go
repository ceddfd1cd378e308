package osconfig

import (
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

var (
	labelRE      = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	ifNameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)
	instanceIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	uuidRE       = regexp.MustCompile(`^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}|[0-9A-Fa-f]{16})$`)
	fsTypeRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9._]{0,31}$`)
	fsOptionsRE  = regexp.MustCompile(`^[A-Za-z0-9_.,=:+/@-]{1,256}$`)
	cryptRE      = regexp.MustCompile(`^[A-Za-z0-9./$=]+$`)
)

// forbiddenRoots are trees Config.Files may not write under.
var forbiddenRoots = []string{"/proc", "/sys", "/dev", "/run"}

// Validate refuses hostile or inconsistent input. Every error wraps
// ErrInvalidConfig and names the offending field.
func (c Config) Validate() error {
	if _, err := c.normalize(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// normalize validates c and returns its network as a flat list of links.
func (c Config) normalize() (*network, error) {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(validateHostname(c.Hostname, c.Domain))
	for i, a := range c.DNS {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
			add(fmt.Errorf("dns[%d]: %q is not a usable address", i, a))
		}
	}
	for i, d := range c.SearchDomains {
		if err := validateDomain(d); err != nil {
			add(fmt.Errorf("search domain[%d]: %w", i, err))
		}
	}
	if c.RootPasswordHash != "" {
		add(ValidatePasswordHash(c.RootPasswordHash))
	}
	for i, k := range c.SSHAuthorizedKeys {
		if err := ValidateAuthorizedKey(k); err != nil {
			add(fmt.Errorf("ssh key[%d]: %w", i, err))
		}
	}
	add(validateMounts(c.Filesystems))
	if len(c.UserData) > MaxUserData {
		add(fmt.Errorf("user-data is %d bytes, more than %d", len(c.UserData), MaxUserData))
	}
	if c.InstanceID != "" && !instanceIDRE.MatchString(c.InstanceID) {
		add(fmt.Errorf("instance-id %q: want 1–128 of [A-Za-z0-9._-]", c.InstanceID))
	}
	if len(c.UserData) > 0 && c.InstanceID == "" {
		add(errors.New("user-data needs an instance-id"))
	}
	add(validateFiles(c.Files))
	n, err := c.buildNetwork()
	add(err)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return n, nil
}

func validateHostname(host, domain string) error {
	if host == "" {
		if domain != "" {
			return errors.New("domain set without hostname")
		}
		return nil
	}
	if !labelRE.MatchString(host) {
		return fmt.Errorf("hostname %q: want one RFC 1123 label (letters, digits, inner hyphens, at most 63)", host)
	}
	if domain == "" {
		return nil
	}
	if err := validateDomain(domain); err != nil {
		return fmt.Errorf("domain: %w", err)
	}
	if len(host)+1+len(domain) > 253 {
		return fmt.Errorf("fqdn %s.%s is longer than 253", host, domain)
	}
	return nil
}

func validateDomain(d string) error {
	if d == "" || len(d) > 253 {
		return fmt.Errorf("%q: want 1–253 characters", d)
	}
	for l := range strings.SplitSeq(d, ".") {
		if !labelRE.MatchString(l) {
			return fmt.Errorf("%q: label %q is not RFC 1123", d, l)
		}
	}
	return nil
}

// ValidatePasswordHash accepts a crypt(3) SHA-512 ($6$), SHA-256 ($5$) or
// yescrypt ($y$) hash, and refuses anything that could break /etc/shadow.
func ValidatePasswordHash(h string) error {
	if strings.ContainsAny(h, ":\n\r\x00") {
		return errors.New("password hash contains ':' or a control character")
	}
	if !cryptRE.MatchString(h) {
		return errors.New("password hash has characters outside the crypt alphabet")
	}
	parts := strings.Split(h, "$")
	// "", id, [params], salt, hash
	if len(parts) < 4 || parts[0] != "" {
		return errors.New("password hash is not in crypt(3) form $id$salt$hash")
	}
	id, digest := parts[1], parts[len(parts)-1]
	var want int
	switch id {
	case "6":
		want = 86
	case "5":
		want = 43
	case "y":
		if len(parts) != 5 {
			return errors.New("yescrypt hash: want $y$params$salt$hash")
		}
		want = 43
	default:
		return fmt.Errorf("password hash scheme $%s$: want $6$, $5$ or $y$", id)
	}
	if id != "y" {
		switch {
		case len(parts) == 5 && !strings.HasPrefix(parts[2], "rounds="):
			return errors.New("password hash: unexpected field before salt")
		case len(parts) > 5:
			return errors.New("password hash: too many fields")
		}
	}
	if len(digest) != want {
		return fmt.Errorf("password hash $%s$: digest is %d characters, want %d", id, len(digest), want)
	}
	if parts[len(parts)-2] == "" {
		return errors.New("password hash: empty salt")
	}
	return nil
}

func validateMounts(ms []Mount) error {
	var errs []error
	uuids := map[string]bool{}
	points := map[string]bool{}
	for i, m := range ms {
		if err := m.validate(); err != nil {
			errs = append(errs, fmt.Errorf("filesystem[%d]: %w", i, err))
			continue
		}
		u := strings.ToLower(m.UUID)
		if uuids[u] {
			errs = append(errs, fmt.Errorf("filesystem[%d]: uuid %s listed twice", i, m.UUID))
		}
		uuids[u] = true
		if m.MountPoint != "none" {
			if points[m.MountPoint] {
				errs = append(errs, fmt.Errorf("filesystem[%d]: mount point %s listed twice", i, m.MountPoint))
			}
			points[m.MountPoint] = true
		}
	}
	return errors.Join(errs...)
}

func (m Mount) validate() error {
	if !uuidRE.MatchString(m.UUID) {
		return fmt.Errorf("uuid %q is not a filesystem uuid", m.UUID)
	}
	if !fsTypeRE.MatchString(m.FSType) {
		return fmt.Errorf("fstype %q: want [a-z0-9._]", m.FSType)
	}
	switch {
	case m.MountPoint == "none":
		if m.FSType != "swap" {
			return errors.New("mount point none is for swap only")
		}
	case m.FSType == "swap":
		return fmt.Errorf("swap mounts on none, not %q", m.MountPoint)
	default:
		if err := validateAbsPath(m.MountPoint, 4096); err != nil {
			return fmt.Errorf("mount point: %w", err)
		}
		if strings.ContainsAny(m.MountPoint, " \t\\#") {
			return fmt.Errorf("mount point %q contains whitespace, '\\' or '#'", m.MountPoint)
		}
	}
	if m.Options != "" && !fsOptionsRE.MatchString(m.Options) {
		return fmt.Errorf("options %q: want [A-Za-z0-9_.,=:+/@-]", m.Options)
	}
	if m.Pass < 0 || m.Pass > 2 {
		return fmt.Errorf("pass %d: want 0–2", m.Pass)
	}
	return nil
}

// validateAbsPath accepts absolute, clean, printable UTF-8 paths.
func validateAbsPath(p string, maxLen int) error {
	switch {
	case p == "" || p[0] != '/':
		return fmt.Errorf("%q is not absolute", p)
	case len(p) > maxLen:
		return fmt.Errorf("path longer than %d", maxLen)
	case !utf8.ValidString(p):
		return errors.New("path is not UTF-8")
	case strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Errorf("%q contains a control character", p)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not clean (want %q)", p, path.Clean(p))
	case p == "/":
		return errors.New("path is the root directory")
	}
	for e := range strings.SplitSeq(p[1:], "/") {
		if e == ".." || e == "." {
			return fmt.Errorf("%q has a %q element", p, e)
		}
	}
	return nil
}

func validateFiles(files []File) error {
	var errs []error
	seen := map[string]bool{}
	for i, f := range files {
		if err := validateAbsPath(f.Path, 1024); err != nil {
			errs = append(errs, fmt.Errorf("file[%d]: %w", i, err))
			continue
		}
		for _, r := range forbiddenRoots {
			if underDir(f.Path, r) {
				errs = append(errs, fmt.Errorf("file[%d]: %s is under %s", i, f.Path, r))
			}
		}
		if reserved(f.Path) {
			errs = append(errs, fmt.Errorf("file[%d]: %s is written by bareflow itself", i, f.Path))
		}
		if seen[f.Path] {
			errs = append(errs, fmt.Errorf("file[%d]: %s listed twice", i, f.Path))
		}
		seen[f.Path] = true
		if f.Mode&^0o7777 != 0 || f.Mode.Type() != 0 {
			errs = append(errs, fmt.Errorf("file[%d]: mode %v: want permission bits of a regular file", i, f.Mode))
		}
		if len(f.Content) > MaxFileContent {
			errs = append(errs, fmt.Errorf("file[%d]: %d bytes, more than %d", i, len(f.Content), MaxFileContent))
		}
	}
	return errors.Join(errs...)
}

// underDir reports whether p is dir or inside it.
func underDir(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// reserved reports whether a Config.Files path would clash with what
// Render or Edits write, whatever the family.
func reserved(p string) bool {
	switch p {
	case pathHostname, pathHosts, pathSSHDir, pathAuthorizedKeys, pathSeedDir,
		pathMetaData, pathUserData, pathNetworkConfig, pathCloudNetDisable,
		pathInterfaces, pathNetplan, pathShadow, pathFstab, pathSUSENetConfig:
		return true
	}
	for _, pre := range generatedPrefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// keyTypes are the authorized_keys key types accepted.
var keyTypes = map[string]bool{
	"ssh-ed25519":                              true,
	"ssh-rsa":                                  true,
	"ecdsa-sha2-nistp256":                      true,
	"ecdsa-sha2-nistp384":                      true,
	"ecdsa-sha2-nistp521":                      true,
	"sk-ssh-ed25519@openssh.com":               true,
	"sk-ecdsa-sha2-nistp256@openssh.com":       true,
	"ssh-ed25519-cert-v01@openssh.com":         true,
	"ssh-rsa-cert-v01@openssh.com":             true,
	"ecdsa-sha2-nistp256-cert-v01@openssh.com": true,
	"ecdsa-sha2-nistp384-cert-v01@openssh.com": true,
	"ecdsa-sha2-nistp521-cert-v01@openssh.com": true,
}

// ValidateAuthorizedKey accepts one authorized_keys line: optional
// options, a known key type, the base64 key blob whose embedded type
// matches, and an optional comment. Control characters are refused.
func ValidateAuthorizedKey(line string) error {
	if len(line) > 16<<10 {
		return errors.New("key line longer than 16 KiB")
	}
	if !utf8.ValidString(line) {
		return errors.New("key line is not UTF-8")
	}
	if strings.IndexFunc(line, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) >= 0 {
		return errors.New("key line contains a newline or control character")
	}
	rest := strings.TrimSpace(line)
	if rest == "" || rest[0] == '#' {
		return errors.New("key line is empty or a comment")
	}
	typ, rest := nextField(rest)
	if !keyTypes[typ] {
		// typ was the options field; its quotes must balance.
		_, r, err := splitOptions(strings.TrimSpace(line))
		if err != nil {
			return err
		}
		typ, rest = nextField(r)
		if !keyTypes[typ] {
			return fmt.Errorf("unknown key type %q", truncate(typ, 40))
		}
	}
	blob, _ := nextField(rest)
	raw, err := decodeBase64(blob)
	if err != nil {
		return fmt.Errorf("%s key blob: %w", typ, err)
	}
	if len(raw) < 4 {
		return fmt.Errorf("%s key blob too short", typ)
	}
	n := int(raw[0])<<24 | int(raw[1])<<16 | int(raw[2])<<8 | int(raw[3])
	if n > len(raw)-4 || string(raw[4:4+n]) != typ {
		return fmt.Errorf("%s key blob does not hold a %s key", typ, typ)
	}
	return nil
}

// splitOptions splits the leading options field, honouring double quotes.
func splitOptions(s string) (opts, rest string, err error) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote && i+1 < len(s):
			i++
		case c == '"':
			inQuote = !inQuote
		case (c == ' ' || c == '\t') && !inQuote:
			return s[:i], strings.TrimLeft(s[i:], " \t"), nil
		}
	}
	if inQuote {
		return "", "", errors.New("key options: unbalanced quote")
	}
	return "", "", errors.New("key line has options but no key")
}

func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], strings.TrimLeft(s[i:], " \t")
	}
	return s, ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// buildNetwork validates the network part and resolves it into links.
func (c Config) buildNetwork() (*network, error) {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	n := &network{byName: map[string]*link{}}
	addLink := func(l *link) bool {
		if !ifNameRE.MatchString(l.name) {
			fail("%s name %q: want 1–15 of [A-Za-z0-9_.-], starting with a letter or digit", l.kind, l.name)
			return false
		}
		if l.name == "lo" || l.name == "bonding_masters" {
			fail("%s name %q is reserved", l.kind, l.name)
			return false
		}
		if prev, ok := n.byName[l.name]; ok {
			fail("%s name %q is already used by a %s", l.kind, l.name, prev.kind)
			return false
		}
		if err := l.addr.validate(); err != nil {
			fail("%s %s: %w", l.kind, l.name, err)
		}
		n.byName[l.name] = l
		n.links = append(n.links, l)
		return true
	}
	macs := map[string]string{}
	for _, ifc := range c.Interfaces {
		l := &link{kind: kindEthernet, name: ifc.Name, mac: ifc.MAC, addr: ifc.Addressing}
		if !addLink(l) {
			continue
		}
		if ifc.MAC != nil {
			if len(ifc.MAC) != 6 {
				fail("interface %s: mac %v: want a 6-byte ethernet address", ifc.Name, ifc.MAC)
				continue
			}
			k := ifc.MAC.String()
			if other, ok := macs[k]; ok {
				fail("interface %s: mac %s is also interface %s", ifc.Name, k, other)
			}
			macs[k] = ifc.Name
		}
	}
	memberOf := map[string]string{}
	for _, b := range c.Bonds {
		mode, err := bondMode(b.Mode)
		l := &link{kind: kindBond, name: b.Name, addr: b.Addressing, mode: mode}
		if !addLink(l) {
			continue
		}
		if err != nil {
			fail("bond %s: %w", b.Name, err)
		}
		if len(b.Members) == 0 {
			fail("bond %s: no members", b.Name)
		}
		for i, m := range b.Members {
			port, err := n.resolveMember(b.Name, i, m, macs)
			if err != nil {
				fail("bond %s: member %q: %w", b.Name, m, err)
				continue
			}
			if other, ok := memberOf[port.name]; ok {
				fail("bond %s: member %q is already a member of bond %s", b.Name, m, other)
				continue
			}
			if port.addr.hasL3() {
				fail("bond %s: member %s is also configured on its own (dhcp4 or addresses); drop one", b.Name, port.name)
			}
			memberOf[port.name] = b.Name
			port.controller = b.Name
			l.ports = append(l.ports, port.name)
		}
		opts, err := validateBondOptions(mode, b.Options, l.ports)
		if err != nil {
			fail("bond %s: %w", b.Name, err)
		}
		l.options = opts
	}
	for _, v := range c.VLANs {
		name := v.Name
		if name == "" {
			name = v.Parent + "." + strconv.Itoa(v.ID)
		}
		l := &link{kind: kindVLAN, name: name, addr: v.Addressing, parent: v.Parent, vlanID: v.ID}
		if !addLink(l) {
			continue
		}
		if v.ID < 1 || v.ID > 4094 {
			fail("vlan %s: id %d: want 1–4094", name, v.ID)
		}
		p, ok := n.byName[v.Parent]
		switch {
		case !ok:
			fail("vlan %s: parent %q is not a configured interface or bond", name, v.Parent)
		case p.kind == kindVLAN:
			fail("vlan %s: parent %s is a vlan; stacked vlans are not supported", name, v.Parent)
		case p.controller != "":
			fail("vlan %s: parent %s is a member of bond %s; put the vlan on the bond", name, v.Parent, p.controller)
		}
	}
	for _, l := range n.links {
		if l.kind == kindVLAN {
			if p, ok := n.byName[l.parent]; ok {
				for _, o := range n.links {
					if o != l && o.kind == kindVLAN && o.parent == l.parent && o.vlanID == l.vlanID {
						if o.name < l.name {
							fail("vlan %s: id %d on %s is also vlan %s", l.name, l.vlanID, p.name, o.name)
						}
					}
				}
			}
		}
	}
	for i, r := range c.Routes {
		if err := n.placeRoute(r); err != nil {
			fail("route[%d] %s: %w", i, r.To, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	n.sort()
	n.dns, n.search = c.DNS, c.SearchDomains
	return n, nil
}

// resolveMember finds or creates the port link a bond member names.
func (n *network) resolveMember(bond string, i int, m string, macs map[string]string) (*link, error) {
	if hw, err := net.ParseMAC(m); err == nil {
		if len(hw) != 6 {
			return nil, errors.New("want a 6-byte ethernet address")
		}
		if name, ok := macs[hw.String()]; ok {
			return n.byName[name], nil
		}
		name := bond + "p" + strconv.Itoa(i)
		if !ifNameRE.MatchString(name) {
			return nil, fmt.Errorf("port name %q for it is too long; list it as an interface with a name", name)
		}
		if _, ok := n.byName[name]; ok {
			return nil, fmt.Errorf("port name %q for it is already used", name)
		}
		l := &link{kind: kindEthernet, name: name, mac: hw}
		macs[hw.String()] = name
		n.byName[name] = l
		n.links = append(n.links, l)
		return l, nil
	}
	if l, ok := n.byName[m]; ok {
		if l.kind != kindEthernet {
			return nil, fmt.Errorf("is a %s, want a physical interface", l.kind)
		}
		return l, nil
	}
	if !ifNameRE.MatchString(m) || m == "lo" {
		return nil, errors.New("neither a mac address nor an interface name")
	}
	l := &link{kind: kindEthernet, name: m}
	n.byName[m] = l
	n.links = append(n.links, l)
	return l, nil
}

func (a Addressing) hasL3() bool {
	return a.DHCP4 || len(a.Addresses) > 0 || a.Gateway.IsValid()
}

func (a Addressing) validate() error {
	var errs []error
	has4, has6 := false, false
	seen := map[string]bool{}
	for _, p := range a.Addresses {
		ad := p.Addr()
		switch {
		case !p.IsValid():
			errs = append(errs, fmt.Errorf("address %q is not a prefix", p))
			continue
		case ad.Zone() != "" || ad.IsUnspecified() || ad.IsMulticast() || ad.IsLoopback() || ad.Is4In6():
			errs = append(errs, fmt.Errorf("address %s is not usable on a link", p))
			continue
		}
		if seen[ad.String()] {
			errs = append(errs, fmt.Errorf("address %s listed twice", ad))
		}
		seen[ad.String()] = true
		if ad.Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	if a.DHCP4 && has4 {
		errs = append(errs, errors.New("dhcp4 and static IPv4 addresses are exclusive"))
	}
	if g := a.Gateway; g.IsValid() {
		switch {
		case g.Zone() != "" || g.IsUnspecified() || g.IsMulticast() || g.IsLoopback() || g.Is4In6():
			errs = append(errs, fmt.Errorf("gateway %s is not usable", g))
		case g.Is4() && !has4:
			errs = append(errs, fmt.Errorf("gateway %s needs a static IPv4 address on the link", g))
		case g.Is6() && !has6:
			errs = append(errs, fmt.Errorf("gateway %s needs a static IPv6 address on the link", g))
		}
	}
	if a.MTU != 0 && (a.MTU < 68 || a.MTU > 65535) {
		errs = append(errs, fmt.Errorf("mtu %d: want 68–65535", a.MTU))
	}
	return errors.Join(errs...)
}

// placeRoute attaches r to its link.
func (n *network) placeRoute(r Route) error {
	if !r.To.IsValid() || r.To.Masked() != r.To || r.To.Addr().Zone() != "" || r.To.Addr().Is4In6() {
		return errors.New("destination must be a valid network prefix with host bits clear")
	}
	v := r.Via
	if !v.IsValid() || v.Zone() != "" || v.IsUnspecified() || v.IsMulticast() || v.IsLoopback() || v.Is4In6() {
		return fmt.Errorf("via %s is not a usable gateway", v)
	}
	if v.Is4() != r.To.Addr().Is4() {
		return fmt.Errorf("via %s is not the family of the destination", v)
	}
	if r.Interface != "" {
		l, ok := n.byName[r.Interface]
		switch {
		case !ok:
			return fmt.Errorf("interface %q is not configured", r.Interface)
		case l.controller != "":
			return fmt.Errorf("interface %s is a bond member", r.Interface)
		case r.Via.Is4() && !l.addr.DHCP4 && len(l.v4()) == 0:
			return fmt.Errorf("interface %s has no IPv4 addressing", r.Interface)
		case r.Via.Is6() && len(l.v6()) == 0:
			return fmt.Errorf("interface %s has no IPv6 address", r.Interface)
		}
		l.routes = append(l.routes, r)
		return nil
	}
	for _, l := range n.links {
		for _, p := range l.addr.Addresses {
			if p.IsValid() && p.Masked().Contains(v) {
				l.routes = append(l.routes, r)
				return nil
			}
		}
	}
	return fmt.Errorf("no link has a static address on the subnet of %s; set Interface", v)
}
