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

// maxInventoryBytes bounds the inventory document of one machine.
const maxInventoryBytes = 4 << 20

// RamdiskSession is the newest phone-home of a machine's ramdisk.
type RamdiskSession struct {
	MachineID  string
	WorkflowID string
	Addr       netip.Addr
	// SSHPort is the ramdisk's SSH port; zero means 22.
	SSHPort int
	// SSHHostKey is the ramdisk's host key in authorized_keys form.
	SSHHostKey string
	MACs       []string
	// ImageCacheURL is where the boot service the ramdisk phoned home
	// through serves cached images (the image's ID follows); empty when
	// it caches none.
	ImageCacheURL string
	// PhonedAt is when the boot service recorded it (database time).
	PhonedAt time.Time
}

// RecordRamdiskSession records a phone-home, replacing the machine's
// previous one, and returns it with the time it was recorded.
func (s *Store) RecordRamdiskSession(ctx context.Context, rs RamdiskSession) (RamdiskSession, error) {
	if !isUUID(rs.MachineID) {
		return RamdiskSession{}, fmt.Errorf("record ramdisk session: %w", notFound("machine", rs.MachineID))
	}
	if !rs.Addr.IsValid() || rs.SSHHostKey == "" || rs.WorkflowID == "" {
		return RamdiskSession{}, fmt.Errorf("record ramdisk session: %w", invalidf("address, SSH host key and workflow ID are required"))
	}
	if rs.MACs == nil {
		rs.MACs = []string{}
	}
	if rs.SSHPort == 0 {
		rs.SSHPort = 22
	}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO ramdisk_sessions (machine_id, workflow_id, addr, ssh_port, ssh_host_key, macs, image_cache_url, phoned_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now())
		ON CONFLICT (machine_id) DO UPDATE SET workflow_id = excluded.workflow_id, addr = excluded.addr,
			ssh_port = excluded.ssh_port, ssh_host_key = excluded.ssh_host_key, macs = excluded.macs,
			image_cache_url = excluded.image_cache_url, phoned_at = excluded.phoned_at
		RETURNING phoned_at`, rs.MachineID, rs.WorkflowID, rs.Addr.Unmap(), rs.SSHPort, rs.SSHHostKey, rs.MACs, rs.ImageCacheURL).Scan(&rs.PhonedAt)
	if err != nil {
		if hasCode(err, pgForeignKeyViolation) {
			return RamdiskSession{}, fmt.Errorf("record ramdisk session: %w", notFound("machine", rs.MachineID))
		}
		return RamdiskSession{}, fmt.Errorf("record ramdisk session of %s: %w", rs.MachineID, dbError(err))
	}
	return rs, nil
}

// GetRamdiskSession returns the newest phone-home of a machine's ramdisk.
func (s *Store) GetRamdiskSession(ctx context.Context, machineID string) (RamdiskSession, error) {
	if !isUUID(machineID) {
		return RamdiskSession{}, fmt.Errorf("get ramdisk session: %w", notFound("ramdisk session", machineID))
	}
	rs := RamdiskSession{MachineID: machineID}
	err := s.pool.QueryRow(ctx, `SELECT workflow_id, addr, ssh_port, ssh_host_key, macs, image_cache_url, phoned_at
		FROM ramdisk_sessions WHERE machine_id = $1`, machineID).Scan(&rs.WorkflowID, &rs.Addr, &rs.SSHPort, &rs.SSHHostKey, &rs.MACs,
		&rs.ImageCacheURL, &rs.PhonedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return RamdiskSession{}, fmt.Errorf("get ramdisk session: %w", notFound("ramdisk session", machineID))
	}
	if err != nil {
		return RamdiskSession{}, fmt.Errorf("get ramdisk session of %s: %w", machineID, err)
	}
	return rs, nil
}

// DeleteRamdiskSession forgets a machine's ramdisk (it was powered off or
// booted something else). Deleting none does nothing.
func (s *Store) DeleteRamdiskSession(ctx context.Context, machineID string) error {
	if !isUUID(machineID) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM ramdisk_sessions WHERE machine_id = $1`, machineID); err != nil {
		return fmt.Errorf("delete ramdisk session of %s: %w", machineID, err)
	}
	return nil
}

func secretAD(name string) string { return "secrets:" + name }

// EnsureSecret returns bareflow's secret called name, creating it with gen
// when it does not exist. Concurrent callers all get the value that was
// stored first.
func (s *Store) EnsureSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("ensure secret: %w", invalidf("name is required"))
	}
	read := func() ([]byte, error) {
		var sealed []byte
		err := s.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&sealed)
		if err != nil {
			return nil, err
		}
		v, err := s.open(sealed, secretAD(name))
		if err != nil {
			return nil, fmt.Errorf("open secret %s: %w", name, err)
		}
		return []byte(v.Reveal()), nil
	}
	v, err := read()
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("ensure secret %s: %w", name, err)
	}
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("ensure secret %s: generate: %w", name, err)
	}
	sealed, err := s.seal(secret.String(fresh), secretAD(name))
	if err != nil {
		return nil, fmt.Errorf("ensure secret %s: %w", name, err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		name, sealed); err != nil {
		return nil, fmt.Errorf("ensure secret %s: %w", name, err)
	}
	v, err = read()
	if err != nil {
		return nil, fmt.Errorf("ensure secret %s: %w", name, err)
	}
	return v, nil
}

func bmcPendingAD(machineID string) string { return "bmc_pending.password:" + machineID }

// PendingBMC returns the BMC credentials waiting for verification on a
// machine, creating them with username and the password gen makes when
// there are none. A re-run of the BMC set-up thus sets the same password:
// it is made once and kept until CommitBMC or DropPendingBMC.
func (s *Store) PendingBMC(ctx context.Context, machineID, username string, gen func() (secret.String, error)) (secret.String, error) {
	if !isUUID(machineID) {
		return "", fmt.Errorf("pending BMC credentials: %w", notFound("machine", machineID))
	}
	if username == "" {
		return "", fmt.Errorf("pending BMC credentials: %w", invalidf("username is required"))
	}
	read := func() (string, secret.String, error) {
		var (
			user   string
			sealed []byte
		)
		err := s.pool.QueryRow(ctx, `SELECT username, password FROM bmc_pending WHERE machine_id = $1`, machineID).Scan(&user, &sealed)
		if err != nil {
			return "", "", err
		}
		pw, err := s.open(sealed, bmcPendingAD(machineID))
		return user, pw, err
	}
	user, pw, err := read()
	if err == nil && user == username {
		return pw, nil
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("pending BMC credentials of %s: %w", machineID, err)
	}
	fresh, err := gen()
	if err != nil {
		return "", fmt.Errorf("pending BMC credentials of %s: generate password: %w", machineID, err)
	}
	sealed, err := s.seal(fresh, bmcPendingAD(machineID))
	if err != nil {
		return "", fmt.Errorf("pending BMC credentials of %s: %w", machineID, err)
	}
	// A pending record for another username is replaced; one for this
	// username written meanwhile wins.
	_, err = s.pool.Exec(ctx, `
		INSERT INTO bmc_pending (machine_id, username, password) VALUES ($1, $2, $3)
		ON CONFLICT (machine_id) DO UPDATE SET username = excluded.username, password = excluded.password,
			created_at = now()
		WHERE bmc_pending.username <> excluded.username`, machineID, username, sealed)
	if err != nil {
		if hasCode(err, pgForeignKeyViolation) {
			return "", fmt.Errorf("pending BMC credentials: %w", notFound("machine", machineID))
		}
		return "", fmt.Errorf("pending BMC credentials of %s: %w", machineID, err)
	}
	if _, pw, err = read(); err != nil {
		return "", fmt.Errorf("pending BMC credentials of %s: %w", machineID, err)
	}
	return pw, nil
}

// PendingBMCCredentials returns the pending credentials of a machine at
// addr, for an out-of-band check before they are committed.
func (s *Store) PendingBMCCredentials(ctx context.Context, machineID string, addr netip.AddrPort, cipherSuite int) (BMCCredentials, error) {
	if !isUUID(machineID) {
		return BMCCredentials{}, fmt.Errorf("pending BMC credentials: %w", notFound("pending BMC credentials", machineID))
	}
	var (
		user   string
		sealed []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT username, password FROM bmc_pending WHERE machine_id = $1`, machineID).Scan(&user, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return BMCCredentials{}, fmt.Errorf("pending BMC credentials: %w", notFound("pending BMC credentials", machineID))
	}
	if err != nil {
		return BMCCredentials{}, fmt.Errorf("pending BMC credentials of %s: %w", machineID, err)
	}
	pw, err := s.open(sealed, bmcPendingAD(machineID))
	if err != nil {
		return BMCCredentials{}, fmt.Errorf("pending BMC credentials of %s: %w", machineID, err)
	}
	return BMCCredentials{Addr: addr, User: user, Password: pw, CipherSuite: cipherSuite}, nil
}

// CommitBMC makes the machine's pending BMC credentials its own, at addr,
// in one transaction, and forgets the pending record. Committing when
// nothing is pending succeeds when the machine already has that address
// and user (a repeated commit), and fails with ErrNotFound otherwise.
func (s *Store) CommitBMC(ctx context.Context, machineID string, addr netip.AddrPort, cipherSuite int) error {
	if !isUUID(machineID) {
		return fmt.Errorf("commit BMC credentials: %w", notFound("machine", machineID))
	}
	if !addr.IsValid() || addr.Port() == 0 {
		return fmt.Errorf("commit BMC credentials: %w", invalidf("BMC address and port are required"))
	}
	if err := validCipherSuite(cipherSuite); err != nil {
		return fmt.Errorf("commit BMC credentials: %w", err)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			user   string
			sealed []byte
		)
		err := tx.QueryRow(ctx, `SELECT username, password FROM bmc_pending WHERE machine_id = $1 FOR UPDATE`, machineID).Scan(&user, &sealed)
		if errors.Is(err, pgx.ErrNoRows) {
			var have bool
			err := tx.QueryRow(ctx, `SELECT bmc_addr = $2 AND bmc_port = $3 AND bmc_password IS NOT NULL FROM machines WHERE id = $1`,
				machineID, addr.Addr(), int(addr.Port())).Scan(&have)
			if err == nil && have {
				return nil
			}
			return fmt.Errorf("commit BMC credentials: %w", notFound("pending BMC credentials", machineID))
		}
		if err != nil {
			return fmt.Errorf("commit BMC credentials of %s: %w", machineID, err)
		}
		pw, err := s.open(sealed, bmcPendingAD(machineID))
		if err != nil {
			return fmt.Errorf("commit BMC credentials of %s: %w", machineID, err)
		}
		resealed, err := s.seal(pw, bmcPasswordAD(machineID))
		if err != nil {
			return fmt.Errorf("commit BMC credentials of %s: %w", machineID, err)
		}
		tag, err := tx.Exec(ctx, `UPDATE machines SET bmc_addr = $2, bmc_port = $3, bmc_user = $4, bmc_password = $5,
			bmc_cipher_suite = $6, version = version + 1, updated_at = now() WHERE id = $1`,
			machineID, addr.Addr(), int(addr.Port()), user, resealed, cipherSuite)
		if err != nil {
			return fmt.Errorf("commit BMC credentials of %s: %w", machineID, dbError(err))
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("commit BMC credentials: %w", notFound("machine", machineID))
		}
		_, err = tx.Exec(ctx, `DELETE FROM bmc_pending WHERE machine_id = $1`, machineID)
		return err
	})
}

// DropPendingBMC forgets a machine's pending BMC credentials. Dropping
// none does nothing.
func (s *Store) DropPendingBMC(ctx context.Context, machineID string) error {
	if !isUUID(machineID) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM bmc_pending WHERE machine_id = $1`, machineID); err != nil {
		return fmt.Errorf("drop pending BMC credentials of %s: %w", machineID, err)
	}
	return nil
}

// DuplicateMachineError says an inventory's system UUID or serial belongs
// to another machine: the same server was registered twice (booted from
// two NICs, or re-added). It matches ErrConflict.
type DuplicateMachineError struct {
	Field   string
	Value   string
	Other   string
	OtherID string
}

// Error implements error.
func (e *DuplicateMachineError) Error() string {
	return fmt.Sprintf("machine %s (%s) already has %s %s", e.Other, e.OtherID, e.Field, e.Value)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *DuplicateMachineError) Is(target error) bool { return target == ErrConflict }

// SaveInventory records a machine's hardware inventory and the identity it
// shows (vendor, model, serial, system UUID). Saving the same inventory
// twice leaves the same record. When another machine carries the same
// system UUID the save is refused with a *DuplicateMachineError.
func (s *Store) SaveInventory(ctx context.Context, machineID string, inv contract.Inventory) error {
	if !isUUID(machineID) {
		return fmt.Errorf("save inventory: %w", notFound("machine", machineID))
	}
	doc, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("save inventory of %s: %w", machineID, err)
	}
	if len(doc) > maxInventoryBytes {
		return fmt.Errorf("save inventory of %s: %w", machineID, invalidf("inventory is %d bytes, more than %d", len(doc), maxInventoryBytes))
	}
	uuid := inv.System.UUID
	if uuid != "" {
		var other, otherID string
		err := s.pool.QueryRow(ctx, `SELECT name, id FROM machines WHERE system_uuid = $1 AND id <> $2 LIMIT 1`,
			uuid, machineID).Scan(&other, &otherID)
		switch {
		case err == nil:
			return fmt.Errorf("save inventory: %w", &DuplicateMachineError{Field: "system UUID", Value: uuid, Other: other, OtherID: otherID})
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("save inventory of %s: %w", machineID, err)
		}
	}
	at := inv.CollectedAt
	if at.IsZero() {
		at = time.Now()
	}
	tag, err := s.pool.Exec(ctx, `UPDATE machines SET inventory = $2, inventory_at = $3,
		vendor = $4, model = $5, serial = $6, system_uuid = $7,
		cpu_threads = $8, memory_bytes = $9, disk_count = $10,
		version = version + 1, updated_at = now()
		WHERE id = $1`, machineID, doc, at, inv.System.Vendor, inv.System.Model, inv.System.Serial, uuid,
		inv.CPU.Threads, inv.Memory.TotalBytes, inv.DiskCount())
	if err != nil {
		return fmt.Errorf("save inventory of %s: %w", machineID, dbError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("save inventory: %w", notFound("machine", machineID))
	}
	return nil
}

// GetInventory returns the hardware inventory of a machine. A machine
// whose inventory was never collected gives ErrNotFound.
func (s *Store) GetInventory(ctx context.Context, machineID string) (contract.Inventory, error) {
	if !isUUID(machineID) {
		return contract.Inventory{}, fmt.Errorf("get inventory: %w", notFound("machine", machineID))
	}
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT inventory FROM machines WHERE id = $1`, machineID).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return contract.Inventory{}, fmt.Errorf("get inventory: %w", notFound("machine", machineID))
	}
	if err != nil {
		return contract.Inventory{}, fmt.Errorf("get inventory of %s: %w", machineID, err)
	}
	if doc == nil {
		return contract.Inventory{}, fmt.Errorf("get inventory: %w", notFound("inventory", machineID))
	}
	var inv contract.Inventory
	if err := json.Unmarshal(doc, &inv); err != nil {
		return contract.Inventory{}, fmt.Errorf("get inventory of %s: %w", machineID, err)
	}
	return inv, nil
}

// BMCNetwork returns the BMC network called name, or, with an empty name,
// the only network of kind bmc. With no name and none or several BMC
// networks it returns ErrNotFound.
func (s *Store) BMCNetwork(ctx context.Context, name string) (Network, error) {
	if name != "" {
		n, err := s.GetNetworkByName(ctx, name)
		if err != nil {
			return Network{}, err
		}
		if n.Kind != NetworkBMC {
			return Network{}, fmt.Errorf("BMC network: %w", invalidf("network %s is of kind %s, not bmc", name, n.Kind))
		}
		return n, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+networkColumns+` FROM networks WHERE kind = 'bmc' ORDER BY name LIMIT 2`)
	if err != nil {
		return Network{}, fmt.Errorf("BMC network: %w", err)
	}
	ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Network, error) { return scanNetwork(r) })
	if err != nil {
		return Network{}, fmt.Errorf("BMC network: %w", err)
	}
	if len(ns) != 1 {
		return Network{}, fmt.Errorf("BMC network: %w", notFound("network of kind bmc", fmt.Sprintf("(%d found, name one)", len(ns))))
	}
	return ns[0], nil
}

// AllocateReserved gives mac a reserved address on the network: the one it
// holds already, or a free one of the network's pool. Allocating again for
// the same MAC returns the same address.
func (s *Store) AllocateReserved(ctx context.Context, n Network, mac net.HardwareAddr, machineID string) (Lease, error) {
	if l, err := s.GetLeaseByMAC(ctx, n.ID, mac); err == nil && l.Reserved {
		if l.MachineID != "" && l.MachineID != machineID {
			// Two BMCs with one MAC: handing the address out twice would
			// make both answer (or neither) at it.
			return Lease{}, fmt.Errorf("allocate address on %s for %s: %w: the MAC already holds %s for machine %s",
				n.Name, mac, ErrConflict, l.Addr, l.MachineID)
		}
		return l, nil
	}
	offer, err := s.OfferLease(ctx, LeaseRequest{NetworkID: n.ID, MAC: mac, Pool: PoolOf(n), Hold: time.Minute, MachineID: machineID})
	if err != nil {
		return Lease{}, fmt.Errorf("allocate address on %s for %s: %w", n.Name, mac, err)
	}
	l, err := s.ReserveLease(ctx, n.ID, mac, offer.Addr, machineID)
	if err != nil {
		return Lease{}, fmt.Errorf("allocate address on %s for %s: %w", n.Name, mac, err)
	}
	return l, nil
}

// SaveRAID records the RAID volumes a build made on a machine and the block
// device its OS goes on. Saving the same again leaves the same record.
func (s *Store) SaveRAID(ctx context.Context, machineID string, volumes []contract.BuiltVolume, rootDevice string) error {
	if !isUUID(machineID) {
		return fmt.Errorf("save RAID: %w", notFound("machine", machineID))
	}
	if volumes == nil {
		volumes = []contract.BuiltVolume{}
	}
	doc, err := json.Marshal(volumes)
	if err != nil {
		return fmt.Errorf("save RAID of %s: %w", machineID, err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE machines SET raid_volumes = $2, root_device = $3, version = version + 1, updated_at = now()
		WHERE id = $1`, machineID, doc, rootDevice)
	if err != nil {
		return fmt.Errorf("save RAID of %s: %w", machineID, dbError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("save RAID: %w", notFound("machine", machineID))
	}
	return nil
}

// RAID returns the RAID volumes a machine's last build made and its root
// device.
func (s *Store) RAID(ctx context.Context, machineID string) ([]contract.BuiltVolume, string, error) {
	if !isUUID(machineID) {
		return nil, "", fmt.Errorf("get RAID: %w", notFound("machine", machineID))
	}
	var (
		doc  []byte
		root string
	)
	err := s.pool.QueryRow(ctx, `SELECT raid_volumes, root_device FROM machines WHERE id = $1`, machineID).Scan(&doc, &root)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fmt.Errorf("get RAID: %w", notFound("machine", machineID))
	}
	if err != nil {
		return nil, "", fmt.Errorf("get RAID of %s: %w", machineID, err)
	}
	var vols []contract.BuiltVolume
	if err := json.Unmarshal(doc, &vols); err != nil {
		return nil, "", fmt.Errorf("get RAID of %s: %w", machineID, err)
	}
	return vols, root, nil
}

// InstalledOS is the OS a machine was last given by an install.
type InstalledOS struct {
	ImageID     string
	RootDisk    string
	Hostname    string
	Address     string
	InstalledAt time.Time
}

// RecordInstall records the OS a machine runs; a zero os (no ImageID)
// forgets it, as after a wipe.
func (s *Store) RecordInstall(ctx context.Context, machineID string, os InstalledOS) error {
	if !isUUID(machineID) {
		return fmt.Errorf("record install: %w", notFound("machine", machineID))
	}
	var image *string
	if os.ImageID != "" {
		image = &os.ImageID
	}
	tag, err := s.pool.Exec(ctx, `UPDATE machines SET os_image = $2, os_root_disk = $3, os_hostname = $4, os_address = $5,
		installed_at = CASE WHEN $2::uuid IS NULL THEN NULL ELSE now() END, version = version + 1, updated_at = now()
		WHERE id = $1`, machineID, image, os.RootDisk, os.Hostname, os.Address)
	if err != nil {
		return fmt.Errorf("record install on %s: %w", machineID, dbError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record install: %w", notFound("machine", machineID))
	}
	return nil
}

// InstalledOS returns the OS a machine was last given; ImageID is empty
// when none is recorded.
func (s *Store) InstalledOS(ctx context.Context, machineID string) (InstalledOS, error) {
	if !isUUID(machineID) {
		return InstalledOS{}, notFound("machine", machineID)
	}
	var (
		os    InstalledOS
		image *string
		at    *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT os_image::text, os_root_disk, os_hostname, os_address, installed_at FROM machines WHERE id = $1`,
		machineID).Scan(&image, &os.RootDisk, &os.Hostname, &os.Address, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return InstalledOS{}, notFound("machine", machineID)
	}
	if err != nil {
		return InstalledOS{}, fmt.Errorf("read installed OS of %s: %w", machineID, err)
	}
	if image != nil {
		os.ImageID = *image
	}
	if at != nil {
		os.InstalledAt = *at
	}
	return os, nil
}

// RamdiskSessionAt reports whether a ramdisk that phoned home runs at addr.
func (s *Store) RamdiskSessionAt(ctx context.Context, addr netip.Addr) (bool, error) {
	if !addr.IsValid() {
		return false, nil
	}
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ramdisk_sessions WHERE addr = $1)`, addr.Unmap()).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up ramdisk sessions at %s: %w", addr, err)
	}
	return ok, nil
}
