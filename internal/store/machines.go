package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"bareflow/contract"
	"bareflow/internal/secret"
)

// ErrNoBMC means the machine has no BMC address. It matches ErrNotFound too.
var ErrNoBMC = fmt.Errorf("no BMC: %w", ErrNotFound)

// Label limits.
const (
	maxLabels        = 64
	maxLabelKeyLen   = 63
	maxLabelValueLen = 255
)

// Machine is a physical server bareflow knows. Its BMC password is never
// here: BMCCredentials returns it.
type Machine struct {
	ID    string
	Name  string
	State contract.MachineState
	// PXEMAC is the MAC address the machine network-boots from; nil when
	// unknown.
	PXEMAC     net.HardwareAddr
	SystemUUID string
	Serial     string
	Vendor     string
	Model      string
	// BMCAddr is the BMC's LAN address and RMCP+ port; the zero value means
	// the machine has no BMC yet.
	BMCAddr        netip.AddrPort
	BMCUser        string
	HasBMCPassword bool
	// BMCCipherSuite is the IPMI cipher suite ID; 0 lets the BMC client
	// choose.
	BMCCipherSuite int
	PowerState     contract.PowerState
	// PowerStateAt is when PowerState was observed; zero when never.
	PowerStateAt  time.Time
	LastErrorCode string
	LastError     string
	Labels        map[string]string
	// CPUThreads, MemoryBytes and DiskCount sum up the hardware inventory
	// (GetInventory returns it whole); InventoryAt is zero when none was
	// collected.
	CPUThreads  int
	MemoryBytes int64
	DiskCount   int
	InventoryAt time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Version increases on every change but power-state observations. Pass
	// it as MachineUpdate.ExpectVersion to detect concurrent changes.
	Version int
}

// MachineRef names a machine.
type MachineRef struct {
	ID   string
	Name string
}

// BMCCredentials is what it takes to talk to a machine's BMC.
type BMCCredentials struct {
	Addr        netip.AddrPort
	User        string
	Password    secret.String
	CipherSuite int
}

// MachineCreate is a new machine. Name is required; everything else is
// optional.
type MachineCreate struct {
	Name string
	// State is where the machine starts; empty means enrolled (created by an
	// operator). The boot service creates discovered machines.
	State          contract.MachineState
	PXEMAC         net.HardwareAddr
	SystemUUID     string
	Serial         string
	Vendor         string
	Model          string
	BMCAddr        netip.AddrPort
	BMCUser        string
	BMCPassword    secret.String
	BMCCipherSuite int
	Labels         map[string]string
}

// MachineUpdate changes some fields of a machine: a nil field is left alone.
type MachineUpdate struct {
	Name  *string
	State *contract.MachineState
	// PXEMAC set to an empty address clears it.
	PXEMAC     *net.HardwareAddr
	SystemUUID *string
	Serial     *string
	Vendor     *string
	Model      *string
	// BMCAddr set to the zero value removes the BMC: address, user and
	// password.
	BMCAddr *netip.AddrPort
	BMCUser *string
	// BMCPassword set to an empty string clears the password.
	BMCPassword    *secret.String
	BMCCipherSuite *int
	// Labels replaces every label.
	Labels *map[string]string
	// ExpectVersion, when set, makes the update fail with ErrStale unless
	// the machine is still at that version.
	ExpectVersion *int
}

// MachineFilter selects machines for ListMachines. Zero fields select all.
type MachineFilter struct {
	State  contract.MachineState
	Vendor string
	Model  string
	// MinCPUs, MinMemoryBytes and MinDisks select machines with at least
	// that many logical CPUs, bytes of memory and disks; CPUs and Disks
	// exactly that many.
	MinCPUs        int
	CPUs           int
	MinMemoryBytes int64
	MinDisks       int
	Disks          int
	// Limit is the page size: DefaultLimit when zero, at most MaxLimit.
	Limit int
	// After is the cursor ListMachines returned for the previous page.
	After string
}

// machineColumns are read by scanMachine, in order.
const machineColumns = `id, name, state, pxe_mac, system_uuid, serial, vendor, model,
	bmc_addr, bmc_port, bmc_user, bmc_password IS NOT NULL, bmc_cipher_suite,
	power_state, power_state_at, last_error_code, last_error, labels,
	cpu_threads, memory_bytes, disk_count, inventory_at,
	created_at, updated_at, version`

func scanMachine(row pgx.Row) (Machine, error) {
	var (
		m         Machine
		mac       net.HardwareAddr
		bmcAddr   netip.Addr
		bmcPort   *int32
		powerAt   *time.Time
		invAt     *time.Time
		state     string
		powerStat string
	)
	err := row.Scan(&m.ID, &m.Name, &state, &mac, &m.SystemUUID, &m.Serial, &m.Vendor, &m.Model,
		&bmcAddr, &bmcPort, &m.BMCUser, &m.HasBMCPassword, &m.BMCCipherSuite,
		&powerStat, &powerAt, &m.LastErrorCode, &m.LastError, &m.Labels,
		&m.CPUThreads, &m.MemoryBytes, &m.DiskCount, &invAt,
		&m.CreatedAt, &m.UpdatedAt, &m.Version)
	if err != nil {
		return Machine{}, err
	}
	m.State = contract.MachineState(state)
	m.PowerState = contract.PowerState(powerStat)
	if len(mac) > 0 {
		m.PXEMAC = mac
	}
	if bmcAddr.IsValid() && bmcPort != nil {
		m.BMCAddr = netip.AddrPortFrom(bmcAddr, uint16(*bmcPort))
	}
	if powerAt != nil {
		m.PowerStateAt = *powerAt
	}
	if invAt != nil {
		m.InventoryAt = *invAt
	}
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	return m, nil
}

// bmcPasswordAD binds a sealed BMC password to its machine.
func bmcPasswordAD(machineID string) string { return "machines.bmc_password:" + machineID }

func (s *Store) seal(pw secret.String, ad string) ([]byte, error) {
	if s.box == nil {
		return nil, secret.ErrNoKey
	}
	return s.box.Seal(pw, ad)
}

func (s *Store) open(sealed []byte, ad string) (secret.String, error) {
	if s.box == nil {
		return "", secret.ErrNoKey
	}
	return s.box.Open(sealed, ad)
}

func validMAC(mac net.HardwareAddr) error {
	if len(mac) != 0 && len(mac) != 6 {
		return invalidf("PXE MAC %s must be a 6-byte Ethernet address", mac)
	}
	return nil
}

// macArg is mac as a query argument: NULL when empty.
func macArg(mac net.HardwareAddr) any {
	if len(mac) == 0 {
		return nil
	}
	return mac
}

// bmcArgs returns the address and port columns of a BMC address, NULL for
// the zero value.
func bmcArgs(ap netip.AddrPort) (addr, port any, err error) {
	if ap == (netip.AddrPort{}) {
		return nil, nil, nil
	}
	a := ap.Addr().Unmap()
	if !a.IsValid() || a.IsUnspecified() || ap.Port() == 0 {
		return nil, nil, invalidf("BMC address %s must be a host address and a port", ap)
	}
	if a.Zone() != "" {
		return nil, nil, invalidf("BMC address %s must not carry an IPv6 zone", ap)
	}
	return a, int32(ap.Port()), nil
}

func validCipherSuite(cs int) error {
	if cs < 0 || cs > 255 {
		return invalidf("BMC cipher suite %d must be between 0 and 255", cs)
	}
	return nil
}

func validLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return invalidf("%d labels, at most %d allowed", len(labels), maxLabels)
	}
	for k, v := range labels {
		if k == "" || len(k) > maxLabelKeyLen {
			return invalidf("label key %q must be 1 to %d bytes", k, maxLabelKeyLen)
		}
		if len(v) > maxLabelValueLen {
			return invalidf("label %q: value longer than %d bytes", k, maxLabelValueLen)
		}
	}
	return nil
}

func labelsArg(labels map[string]string) map[string]string {
	if labels == nil {
		return map[string]string{}
	}
	return labels
}

// CreateMachine records a new machine and returns it. A BMC password is
// sealed bound to the new machine's ID. A taken name or PXE MAC gives a
// *ConflictError.
func (s *Store) CreateMachine(ctx context.Context, in MachineCreate) (Machine, error) {
	if in.State == "" {
		in.State = contract.MachineEnrolled
	}
	if err := errors.Join(ValidName(in.Name), validState(in.State), validMAC(in.PXEMAC),
		validCipherSuite(in.BMCCipherSuite), validLabels(in.Labels)); err != nil {
		return Machine{}, fmt.Errorf("create machine: %w", err)
	}
	bmcAddr, bmcPort, err := bmcArgs(in.BMCAddr)
	if err != nil {
		return Machine{}, fmt.Errorf("create machine: %w", err)
	}
	id := newID()
	var sealed []byte
	if in.BMCPassword != "" {
		if bmcAddr == nil {
			return Machine{}, fmt.Errorf("create machine: %w", invalidf("a BMC password needs a BMC address"))
		}
		if sealed, err = s.seal(in.BMCPassword, bmcPasswordAD(id)); err != nil {
			return Machine{}, fmt.Errorf("create machine: seal BMC password: %w", err)
		}
	}
	row := s.pool.QueryRow(ctx, `
		INSERT INTO machines (id, name, state, pxe_mac, system_uuid, serial, vendor, model,
			bmc_addr, bmc_port, bmc_user, bmc_password, bmc_cipher_suite, labels)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		RETURNING `+machineColumns,
		id, in.Name, string(in.State), macArg(in.PXEMAC), truncate(in.SystemUUID), truncate(in.Serial),
		truncate(in.Vendor), truncate(in.Model), bmcAddr, bmcPort, in.BMCUser, sealed,
		in.BMCCipherSuite, labelsArg(in.Labels))
	m, err := scanMachine(row)
	if err != nil {
		return Machine{}, fmt.Errorf("create machine %q: %w", in.Name, dbError(err))
	}
	s.logger.Debug("created machine", "machine_id", m.ID, "name", m.Name)
	return m, nil
}

func validState(st contract.MachineState) error {
	if err := st.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// GetMachine returns the machine with the given ID.
func (s *Store) GetMachine(ctx context.Context, id string) (Machine, error) {
	if !isUUID(id) {
		return Machine{}, fmt.Errorf("get machine: %w", notFound("machine", id))
	}
	m, err := scanMachine(s.pool.QueryRow(ctx, `SELECT `+machineColumns+` FROM machines WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Machine{}, fmt.Errorf("get machine: %w", notFound("machine", id))
	}
	if err != nil {
		return Machine{}, fmt.Errorf("get machine %s: %w", id, err)
	}
	return m, nil
}

// GetMachineByName returns the machine with the given name.
func (s *Store) GetMachineByName(ctx context.Context, name string) (Machine, error) {
	m, err := scanMachine(s.pool.QueryRow(ctx, `SELECT `+machineColumns+` FROM machines WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Machine{}, fmt.Errorf("get machine by name: %w", notFound("machine", name))
	}
	if err != nil {
		return Machine{}, fmt.Errorf("get machine by name %q: %w", name, err)
	}
	return m, nil
}

// GetMachineByMAC returns the machine that PXE-boots from mac.
func (s *Store) GetMachineByMAC(ctx context.Context, mac net.HardwareAddr) (Machine, error) {
	if len(mac) != 6 {
		return Machine{}, fmt.Errorf("get machine by MAC: %w", notFound("machine with MAC", mac.String()))
	}
	m, err := scanMachine(s.pool.QueryRow(ctx, `SELECT `+machineColumns+` FROM machines WHERE pxe_mac = $1`, mac))
	if errors.Is(err, pgx.ErrNoRows) {
		return Machine{}, fmt.Errorf("get machine by MAC: %w", notFound("machine with MAC", mac.String()))
	}
	if err != nil {
		return Machine{}, fmt.Errorf("get machine by MAC %s: %w", mac, err)
	}
	return m, nil
}

// ListMachines returns a page of machines in name order, and the cursor of
// the next page ("" on the last page).
func (s *Store) ListMachines(ctx context.Context, f MachineFilter) ([]Machine, string, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.State != "" {
		if err := validState(f.State); err != nil {
			return nil, "", fmt.Errorf("list machines: %w", err)
		}
		where = append(where, "state = "+arg(string(f.State)))
	}
	if f.Vendor != "" {
		where = append(where, "vendor = "+arg(f.Vendor))
	}
	if f.Model != "" {
		where = append(where, "model = "+arg(f.Model))
	}
	for _, c := range []struct {
		cond string
		v    int64
	}{
		{"cpu_threads >= ", int64(f.MinCPUs)}, {"cpu_threads = ", int64(f.CPUs)},
		{"memory_bytes >= ", f.MinMemoryBytes}, {"disk_count >= ", int64(f.MinDisks)}, {"disk_count = ", int64(f.Disks)},
	} {
		if c.v < 0 {
			return nil, "", fmt.Errorf("list machines: %w", invalidf("hardware filters must not be negative"))
		}
		if c.v > 0 {
			where = append(where, c.cond+arg(c.v))
		}
	}
	if f.After != "" {
		parts, err := decodeCursor(f.After, 1)
		if err != nil {
			return nil, "", fmt.Errorf("list machines: %w", err)
		}
		where = append(where, "name > "+arg(parts[0]))
	}
	n := limit(f.Limit)
	q := `SELECT ` + machineColumns + ` FROM machines`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY name LIMIT ` + arg(n+1)

	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list machines: %w", err)
	}
	defer rows.Close()
	var ms []Machine
	for rows.Next() {
		m, err := scanMachine(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list machines: %w", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list machines: %w", err)
	}
	next := ""
	if len(ms) > n {
		ms = ms[:n]
		next = encodeCursor(ms[n-1].Name)
	}
	return ms, next, nil
}

// ListMachinesWithBMC returns every machine that has a BMC address, in name
// order. The fleet power sync walks it.
func (s *Store) ListMachinesWithBMC(ctx context.Context) ([]MachineRef, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name FROM machines WHERE bmc_addr IS NOT NULL ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list machines with BMC: %w", err)
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MachineRef, error) {
		var ref MachineRef
		err := r.Scan(&ref.ID, &ref.Name)
		return ref, err
	})
	if err != nil {
		return nil, fmt.Errorf("list machines with BMC: %w", err)
	}
	return refs, nil
}

// UpdateMachine changes the fields of u that are set and returns the machine
// as it is now. With ExpectVersion set it fails with ErrStale when the
// machine changed since that version.
func (s *Store) UpdateMachine(ctx context.Context, id string, u MachineUpdate) (Machine, error) {
	if !isUUID(id) {
		return Machine{}, fmt.Errorf("update machine: %w", notFound("machine", id))
	}
	var (
		sets []string
		args = []any{id}
	)
	set := func(col string, v any) {
		args = append(args, v)
		sets = append(sets, fmt.Sprintf("%s = $%d", col, len(args)))
	}
	wrap := func(err error) error { return fmt.Errorf("update machine %s: %w", id, err) }

	if u.Name != nil {
		if err := ValidName(*u.Name); err != nil {
			return Machine{}, wrap(err)
		}
		set("name", *u.Name)
	}
	if u.State != nil {
		if err := validState(*u.State); err != nil {
			return Machine{}, wrap(err)
		}
		set("state", string(*u.State))
	}
	if u.PXEMAC != nil {
		if err := validMAC(*u.PXEMAC); err != nil {
			return Machine{}, wrap(err)
		}
		set("pxe_mac", macArg(*u.PXEMAC))
	}
	for _, f := range []struct {
		col string
		v   *string
	}{{"system_uuid", u.SystemUUID}, {"serial", u.Serial}, {"vendor", u.Vendor}, {"model", u.Model}} {
		if f.v != nil {
			set(f.col, truncate(*f.v))
		}
	}
	removeBMC := u.BMCAddr != nil && *u.BMCAddr == (netip.AddrPort{})
	if u.BMCAddr != nil {
		addr, port, err := bmcArgs(*u.BMCAddr)
		if err != nil {
			return Machine{}, wrap(err)
		}
		set("bmc_addr", addr)
		set("bmc_port", port)
	}
	if removeBMC {
		if (u.BMCPassword != nil && *u.BMCPassword != "") || (u.BMCUser != nil && *u.BMCUser != "") {
			return Machine{}, wrap(invalidf("BMC credentials need a BMC address"))
		}
		set("bmc_user", "")
		set("bmc_password", nil)
	} else {
		if u.BMCUser != nil {
			set("bmc_user", *u.BMCUser)
		}
		if u.BMCPassword != nil {
			var sealed []byte
			if *u.BMCPassword != "" {
				var err error
				if sealed, err = s.seal(*u.BMCPassword, bmcPasswordAD(id)); err != nil {
					return Machine{}, wrap(fmt.Errorf("seal BMC password: %w", err))
				}
			}
			set("bmc_password", sealed)
		}
	}
	if u.BMCCipherSuite != nil {
		if err := validCipherSuite(*u.BMCCipherSuite); err != nil {
			return Machine{}, wrap(err)
		}
		set("bmc_cipher_suite", *u.BMCCipherSuite)
	}
	if u.Labels != nil {
		if err := validLabels(*u.Labels); err != nil {
			return Machine{}, wrap(err)
		}
		set("labels", labelsArg(*u.Labels))
	}

	if len(sets) == 0 {
		m, err := s.GetMachine(ctx, id)
		if err != nil {
			return Machine{}, err
		}
		if u.ExpectVersion != nil && m.Version != *u.ExpectVersion {
			return Machine{}, wrap(staleVersion(m.Version, *u.ExpectVersion))
		}
		return m, nil
	}

	q := `UPDATE machines SET ` + strings.Join(sets, ", ") + `, version = version + 1, updated_at = now() WHERE id = $1`
	if u.ExpectVersion != nil {
		args = append(args, *u.ExpectVersion)
		q += fmt.Sprintf(" AND version = $%d", len(args))
	}
	q += ` RETURNING ` + machineColumns
	m, err := scanMachine(s.pool.QueryRow(ctx, q, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return Machine{}, wrap(s.missingOrStale(ctx, id, u.ExpectVersion))
	}
	if err != nil {
		return Machine{}, wrap(dbError(err))
	}
	return m, nil
}

func staleVersion(got, want int) error {
	return fmt.Errorf("machine is at version %d, not %d: %w", got, want, ErrStale)
}

// missingOrStale explains why an update of machine id touched no row.
func (s *Store) missingOrStale(ctx context.Context, id string, expect *int) error {
	var version int
	err := s.pool.QueryRow(ctx, `SELECT version FROM machines WHERE id = $1`, id).Scan(&version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return err
	case expect != nil:
		return staleVersion(version, *expect)
	}
	return ErrStale
}

// DeleteMachine deletes a machine. Its operations stay, with their machine
// name.
func (s *Store) DeleteMachine(ctx context.Context, id string) error {
	if !isUUID(id) {
		return fmt.Errorf("delete machine: %w", notFound("machine", id))
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM machines WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete machine %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete machine: %w", notFound("machine", id))
	}
	return nil
}

// BMCCredentials returns the address and decrypted credentials of a
// machine's BMC. It fails with ErrNoBMC (which matches ErrNotFound) when the
// machine has no BMC address.
func (s *Store) BMCCredentials(ctx context.Context, id string) (BMCCredentials, error) {
	if !isUUID(id) {
		return BMCCredentials{}, fmt.Errorf("BMC credentials: %w", notFound("machine", id))
	}
	var (
		addr   netip.Addr
		port   *int32
		creds  BMCCredentials
		sealed []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT bmc_addr, bmc_port, bmc_user, bmc_password, bmc_cipher_suite FROM machines WHERE id = $1`, id).
		Scan(&addr, &port, &creds.User, &sealed, &creds.CipherSuite)
	if errors.Is(err, pgx.ErrNoRows) {
		return BMCCredentials{}, fmt.Errorf("BMC credentials: %w", notFound("machine", id))
	}
	if err != nil {
		return BMCCredentials{}, fmt.Errorf("BMC credentials of machine %s: %w", id, err)
	}
	if !addr.IsValid() || port == nil {
		return BMCCredentials{}, fmt.Errorf("BMC credentials of machine %s: %w", id, ErrNoBMC)
	}
	creds.Addr = netip.AddrPortFrom(addr, uint16(*port))
	if sealed != nil {
		if creds.Password, err = s.open(sealed, bmcPasswordAD(id)); err != nil {
			return BMCCredentials{}, fmt.Errorf("BMC credentials of machine %s: open password: %w", id, err)
		}
	}
	return creds, nil
}

// SetPowerState records the power state observed at a given time (now when
// at is zero). An observation older than the one recorded is ignored, so
// that a slow fleet sync cannot overwrite a newer result. It does not change
// the machine's version.
func (s *Store) SetPowerState(ctx context.Context, id string, ps contract.PowerState, at time.Time) error {
	if err := ps.Validate(); err != nil {
		return fmt.Errorf("set power state of machine %s: %w: %v", id, ErrInvalid, err)
	}
	if !isUUID(id) {
		return fmt.Errorf("set power state: %w", notFound("machine", id))
	}
	if at.IsZero() {
		at = time.Now()
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE machines
		SET power_state = $2, power_state_at = $3,
			updated_at = CASE WHEN power_state <> $2 THEN now() ELSE updated_at END
		WHERE id = $1 AND (power_state_at IS NULL OR power_state_at <= $3)`,
		id, string(ps), at)
	if err != nil {
		return fmt.Errorf("set power state of machine %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return s.mustExist(ctx, "set power state", id)
	}
	return nil
}

// mustExist returns nil when machine id exists and ErrNotFound otherwise.
func (s *Store) mustExist(ctx context.Context, op, id string) error {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM machines WHERE id = $1)`, id).Scan(&ok); err != nil {
		return fmt.Errorf("%s of machine %s: %w", op, id, err)
	}
	if !ok {
		return fmt.Errorf("%s: %w", op, notFound("machine", id))
	}
	return nil
}

// SetMachineState moves a machine to state.
func (s *Store) SetMachineState(ctx context.Context, id string, state contract.MachineState) error {
	if err := validState(state); err != nil {
		return fmt.Errorf("set state of machine %s: %w", id, err)
	}
	return s.setMachine(ctx, "set state", id, `state = $2`, string(state))
}

// SetMachineError records the last error of a machine: a stable code (one
// of the contract's error types) and a message for operators.
func (s *Store) SetMachineError(ctx context.Context, id, code, msg string) error {
	return s.setMachine(ctx, "set error", id, `last_error_code = $2, last_error = $3`, truncate(code), truncate(msg))
}

// ClearMachineError forgets the last error of a machine.
func (s *Store) ClearMachineError(ctx context.Context, id string) error {
	return s.setMachine(ctx, "clear error", id, `last_error_code = '', last_error = ''`)
}

// setMachine runs an UPDATE of one machine, $1 being its ID.
func (s *Store) setMachine(ctx context.Context, op, id, sets string, args ...any) error {
	if !isUUID(id) {
		return fmt.Errorf("%s: %w", op, notFound("machine", id))
	}
	tag, err := s.pool.Exec(ctx, `UPDATE machines SET `+sets+`, version = version + 1, updated_at = now() WHERE id = $1`,
		append([]any{id}, args...)...)
	if err != nil {
		return fmt.Errorf("%s of machine %s: %w", op, id, dbError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", op, notFound("machine", id))
	}
	return nil
}
