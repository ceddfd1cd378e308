package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"bareflow/contract"
	"bareflow/internal/secret"
)

// AdoptionCreate starts the adoption of a server that runs an OS: the
// machine's record, in state registering, and what waits for the Adopt
// workflow (the BMC credentials until they are seen to work, the SSH
// password until bareflow's key is installed).
type AdoptionCreate struct {
	Name   string
	Labels map[string]string
	// BMCAddr is the BMC's address and port; required with its user and
	// password.
	BMCAddr        netip.AddrPort
	BMCUser        string
	BMCPassword    secret.String
	BMCCipherSuite int
	// SSHAddr is host:port of the live OS; an address that another
	// machine's OS is recorded at is refused.
	SSHAddr string
	// SSHPassword, when set, is kept sealed until the key is installed.
	SSHPassword secret.String
}

// AdoptedOS is what an adoption records of the OS a machine runs.
type AdoptedOS struct {
	Name       string
	Kernel     string
	Hostname   string
	Address    string
	SSHUser    string
	SSHHostKey string
	AdoptedAt  time.Time
}

// Adoption is what CompleteAdoption records.
type Adoption struct {
	Inventory contract.Inventory
	OS        AdoptedOS
	// BMCAddr is where the BMC answered with the pending credentials.
	BMCAddr        netip.AddrPort
	BMCCipherSuite int
	PowerState     contract.PowerState
}

func adoptPasswordAD(machineID string) string { return "adopt_pending.ssh_password:" + machineID }

// BeginAdoption records the machine of an adoption and what waits for the
// workflow, in one transaction. A BMC address that another machine has, or
// that another adoption claims, and an SSH address another machine's OS is
// recorded at, give a *ConflictError; so does a taken name.
func (s *Store) BeginAdoption(ctx context.Context, in AdoptionCreate) (Machine, error) {
	if err := errors.Join(ValidName(in.Name), validCipherSuite(in.BMCCipherSuite), validLabels(in.Labels)); err != nil {
		return Machine{}, fmt.Errorf("begin adoption: %w", err)
	}
	addr, port, err := bmcArgs(in.BMCAddr)
	if err != nil || addr == nil {
		return Machine{}, fmt.Errorf("begin adoption: %w", invalidf("a BMC address and port are required"))
	}
	if in.BMCUser == "" || in.BMCPassword == "" {
		return Machine{}, fmt.Errorf("begin adoption: %w", invalidf("BMC user and password are required"))
	}
	if in.SSHAddr == "" {
		return Machine{}, fmt.Errorf("begin adoption: %w", invalidf("an SSH address is required"))
	}
	id := newID()
	bmcSealed, err := s.seal(in.BMCPassword, bmcPendingAD(id))
	if err != nil {
		return Machine{}, fmt.Errorf("begin adoption: seal BMC password: %w", err)
	}
	var sshSealed []byte
	if in.SSHPassword != "" {
		if sshSealed, err = s.seal(in.SSHPassword, adoptPasswordAD(id)); err != nil {
			return Machine{}, fmt.Errorf("begin adoption: seal SSH password: %w", err)
		}
	}
	var m Machine
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var other string
		err := tx.QueryRow(ctx, `SELECT name FROM machines WHERE bmc_addr = $1 AND bmc_port = $2
			UNION ALL SELECT m.name FROM adopt_pending p JOIN machines m ON m.id = p.machine_id WHERE p.bmc_addr = $1 AND p.bmc_port = $2
			LIMIT 1`, addr, port).Scan(&other)
		switch {
		case err == nil:
			return &ConflictError{Resource: "machine " + other, Field: "BMC address", Value: in.BMCAddr.String()}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		err = tx.QueryRow(ctx, `SELECT name FROM machines WHERE os_address = $1 AND os_address <> '' LIMIT 1`, in.SSHAddr).Scan(&other)
		switch {
		case err == nil:
			return &ConflictError{Resource: "machine " + other, Field: "OS address", Value: in.SSHAddr}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		row := tx.QueryRow(ctx, `INSERT INTO machines (id, name, state, labels) VALUES ($1, $2, $3, $4) RETURNING `+machineColumns,
			id, in.Name, string(contract.MachineRegistering), labelsArg(in.Labels))
		if m, err = scanMachine(row); err != nil {
			return dbError(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO bmc_pending (machine_id, username, password) VALUES ($1, $2, $3)`,
			id, in.BMCUser, bmcSealed); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO adopt_pending (machine_id, bmc_addr, bmc_port, ssh_password) VALUES ($1, $2, $3, $4)`,
			id, addr, port, sshSealed)
		if hasCode(err, pgUniqueViolation) {
			return &ConflictError{Resource: "adoption", Field: "BMC address", Value: in.BMCAddr.String()}
		}
		return err
	})
	if err != nil {
		return Machine{}, fmt.Errorf("begin adoption of %q: %w", in.Name, err)
	}
	s.logger.Debug("began adoption", "machine_id", m.ID, "name", m.Name)
	return m, nil
}

// AdoptSSHPassword returns the SSH password of a machine's adoption. It
// fails with ErrNotFound when none waits.
func (s *Store) AdoptSSHPassword(ctx context.Context, machineID string) (secret.String, error) {
	if !isUUID(machineID) {
		return "", fmt.Errorf("adoption SSH password: %w", notFound("machine", machineID))
	}
	var sealed []byte
	err := s.pool.QueryRow(ctx, `SELECT ssh_password FROM adopt_pending WHERE machine_id = $1`, machineID).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && sealed == nil) {
		return "", fmt.Errorf("adoption SSH password: %w", notFound("adoption SSH password", machineID))
	}
	if err != nil {
		return "", fmt.Errorf("adoption SSH password of %s: %w", machineID, err)
	}
	pw, err := s.open(sealed, adoptPasswordAD(machineID))
	if err != nil {
		return "", fmt.Errorf("adoption SSH password of %s: %w", machineID, err)
	}
	return pw, nil
}

// DropAdoptSSHPassword forgets the SSH password of a machine's adoption.
// Dropping none does nothing.
func (s *Store) DropAdoptSSHPassword(ctx context.Context, machineID string) error {
	if !isUUID(machineID) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE adopt_pending SET ssh_password = NULL WHERE machine_id = $1`, machineID); err != nil {
		return fmt.Errorf("drop adoption SSH password of %s: %w", machineID, err)
	}
	return nil
}

// CompleteAdoption records, in one transaction, the inventory, the OS and
// the BMC of an adopted machine, makes it running and forgets what waited
// for the adoption. Hardware that another machine has (its system UUID,
// its vendor and serial, or a NIC's MAC as that machine's PXE MAC) gives a
// *DuplicateMachineError and records nothing. Completing a completed
// adoption again succeeds without a change.
func (s *Store) CompleteAdoption(ctx context.Context, machineID string, a Adoption) error {
	if !isUUID(machineID) {
		return fmt.Errorf("complete adoption: %w", notFound("machine", machineID))
	}
	if err := errors.Join(validCipherSuite(a.BMCCipherSuite), a.PowerState.Validate()); err != nil {
		return fmt.Errorf("complete adoption: %w", fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	addr, port, err := bmcArgs(a.BMCAddr)
	if err != nil || addr == nil {
		return fmt.Errorf("complete adoption: %w", invalidf("a BMC address and port are required"))
	}
	inv := a.Inventory
	doc, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("complete adoption of %s: %w", machineID, err)
	}
	if len(doc) > maxInventoryBytes {
		return fmt.Errorf("complete adoption of %s: %w", machineID, invalidf("inventory is %d bytes, more than %d", len(doc), maxInventoryBytes))
	}
	at := inv.CollectedAt
	if at.IsZero() {
		at = time.Now()
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var adopted *time.Time
		err := tx.QueryRow(ctx, `SELECT adopted_at FROM machines WHERE id = $1 FOR UPDATE`, machineID).Scan(&adopted)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("complete adoption: %w", notFound("machine", machineID))
		}
		if err != nil {
			return fmt.Errorf("complete adoption of %s: %w", machineID, err)
		}
		if adopted != nil {
			return nil
		}
		if err := duplicateHardware(ctx, tx, machineID, inv); err != nil {
			return fmt.Errorf("complete adoption: %w", err)
		}
		var (
			user   string
			sealed []byte
		)
		err = tx.QueryRow(ctx, `SELECT username, password FROM bmc_pending WHERE machine_id = $1`, machineID).Scan(&user, &sealed)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("complete adoption: %w", notFound("pending BMC credentials", machineID))
		}
		if err != nil {
			return fmt.Errorf("complete adoption of %s: %w", machineID, err)
		}
		pw, err := s.open(sealed, bmcPendingAD(machineID))
		if err != nil {
			return fmt.Errorf("complete adoption of %s: %w", machineID, err)
		}
		resealed, err := s.seal(pw, bmcPasswordAD(machineID))
		if err != nil {
			return fmt.Errorf("complete adoption of %s: %w", machineID, err)
		}
		o := a.OS
		_, err = tx.Exec(ctx, `UPDATE machines SET state = $2,
			inventory = $3, inventory_at = $4, vendor = $5, model = $6, serial = $7, system_uuid = $8,
			cpu_threads = $9, memory_bytes = $10, disk_count = $11,
			bmc_addr = $12, bmc_port = $13, bmc_user = $14, bmc_password = $15, bmc_cipher_suite = $16,
			power_state = $17, power_state_at = now(),
			os_name = $18, os_kernel = $19, os_hostname = $20, os_address = $21, os_ssh_user = $22, os_ssh_host_key = $23,
			adopted_at = now(), last_error_code = '', last_error = '', version = version + 1, updated_at = now()
			WHERE id = $1`,
			machineID, string(contract.MachineRunning),
			doc, at, truncate(inv.System.Vendor), truncate(inv.System.Model), truncate(inv.System.Serial), truncate(inv.System.UUID),
			inv.CPU.Threads, inv.Memory.TotalBytes, inv.DiskCount(),
			addr, port, user, resealed, a.BMCCipherSuite,
			string(a.PowerState),
			truncate(o.Name), truncate(o.Kernel), truncate(o.Hostname), truncate(o.Address), truncate(o.SSHUser), o.SSHHostKey)
		if err != nil {
			return fmt.Errorf("complete adoption of %s: %w", machineID, dbError(err))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM bmc_pending WHERE machine_id = $1`, machineID); err != nil {
			return fmt.Errorf("complete adoption of %s: %w", machineID, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM adopt_pending WHERE machine_id = $1`, machineID); err != nil {
			return fmt.Errorf("complete adoption of %s: %w", machineID, err)
		}
		return nil
	})
}

// duplicateHardware finds another machine that has the hardware of inv:
// the same system UUID, the same vendor and serial, or a NIC's MAC as its
// PXE MAC.
func duplicateHardware(ctx context.Context, tx pgx.Tx, machineID string, inv contract.Inventory) error {
	var other, otherID string
	check := func(field, value, query string, args ...any) error {
		err := tx.QueryRow(ctx, query, append([]any{machineID}, args...)...).Scan(&other, &otherID)
		switch {
		case err == nil:
			return &DuplicateMachineError{Field: field, Value: value, Other: other, OtherID: otherID}
		case errors.Is(err, pgx.ErrNoRows):
			return nil
		}
		return err
	}
	if u := inv.System.UUID; u != "" {
		if err := check("system UUID", u, `SELECT name, id FROM machines WHERE system_uuid = $2 AND id <> $1 LIMIT 1`, u); err != nil {
			return err
		}
	}
	if v, sn := inv.System.Vendor, inv.System.Serial; sn != "" {
		if err := check("serial", sn, `SELECT name, id FROM machines WHERE serial = $2 AND vendor = $3 AND id <> $1 LIMIT 1`, sn, v); err != nil {
			return err
		}
	}
	for _, n := range inv.NICs {
		mac, err := net.ParseMAC(n.MAC)
		if err != nil || len(mac) != 6 {
			continue
		}
		if err := check("MAC", mac.String(), `SELECT name, id FROM machines WHERE pxe_mac = $2 AND id <> $1 LIMIT 1`, mac); err != nil {
			return err
		}
	}
	return nil
}

// DiscardAdoption removes the machine of an adoption that did not
// complete, with what waited for it; its operations stay, with its name.
// A machine that was not made by an adoption, or whose adoption completed,
// is left alone. Discarding again does nothing.
func (s *Store) DiscardAdoption(ctx context.Context, machineID string) error {
	if !isUUID(machineID) {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM machines m WHERE m.id = $1 AND m.adopted_at IS NULL
		AND EXISTS (SELECT 1 FROM adopt_pending p WHERE p.machine_id = m.id)`, machineID)
	if err != nil {
		return fmt.Errorf("discard adoption of %s: %w", machineID, err)
	}
	return nil
}

// GetAdoptedOS returns what the adoption of a machine recorded of its OS.
// A machine that was not adopted gives ErrNotFound.
func (s *Store) GetAdoptedOS(ctx context.Context, machineID string) (AdoptedOS, error) {
	if !isUUID(machineID) {
		return AdoptedOS{}, fmt.Errorf("adopted OS: %w", notFound("machine", machineID))
	}
	var (
		o  AdoptedOS
		at *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT os_name, os_kernel, os_hostname, os_address, os_ssh_user, os_ssh_host_key, adopted_at
		FROM machines WHERE id = $1`, machineID).Scan(&o.Name, &o.Kernel, &o.Hostname, &o.Address, &o.SSHUser, &o.SSHHostKey, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return AdoptedOS{}, fmt.Errorf("adopted OS: %w", notFound("machine", machineID))
	}
	if err != nil {
		return AdoptedOS{}, fmt.Errorf("adopted OS of %s: %w", machineID, err)
	}
	if at == nil {
		return AdoptedOS{}, fmt.Errorf("adopted OS: %w", notFound("adoption", machineID))
	}
	o.AdoptedAt = *at
	return o, nil
}
