package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"bareflow/contract"
	"bareflow/internal/secret"
	"bareflow/internal/store"
)

// defaultBMCPort is the RMCP+ port assumed when an address has none.
const defaultBMCPort = 623

type bmcJSON struct {
	Address     string `json:"address"`
	User        string `json:"user,omitempty"`
	PasswordSet bool   `json:"password_set"`
	CipherSuite int    `json:"cipher_suite,omitempty"`
}

type errorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type machineJSON struct {
	ID           string                `json:"id"`
	Name         string                `json:"name"`
	State        contract.MachineState `json:"state"`
	PXEMAC       string                `json:"pxe_mac,omitempty"`
	SystemUUID   string                `json:"system_uuid,omitempty"`
	Serial       string                `json:"serial,omitempty"`
	Vendor       string                `json:"vendor,omitempty"`
	Model        string                `json:"model,omitempty"`
	BMC          *bmcJSON              `json:"bmc,omitempty"`
	PowerState   contract.PowerState   `json:"power_state"`
	PowerStateAt *time.Time            `json:"power_state_at,omitempty"`
	LastError    *errorJSON            `json:"last_error,omitempty"`
	Labels       map[string]string     `json:"labels,omitempty"`
	// CPUs, MemoryBytes and Disks sum up the hardware inventory; Hardware
	// is the whole inventory, on a single machine's page only.
	CPUs        int                 `json:"cpus,omitempty"`
	MemoryBytes int64               `json:"memory_bytes,omitempty"`
	Disks       int                 `json:"disks,omitempty"`
	InventoryAt *time.Time          `json:"inventory_at,omitempty"`
	Hardware    *contract.Inventory `json:"hardware,omitempty"`
	// RAID and RootDevice are what the last RAID build made, on a single
	// machine's page only.
	RAID       []contract.BuiltVolume `json:"raid,omitempty"`
	RootDevice string                 `json:"root_device,omitempty"`
	// OS is what the last install put on the machine, on a single
	// machine's page only.
	OS *installedOSJSON `json:"os,omitempty"`
	// Host is the machine's hypervisor host record, on a single
	// machine's page only, when it is one.
	Host      *hostJSON `json:"host,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   int       `json:"version"`
}

func toMachineJSON(m store.Machine) machineJSON {
	j := machineJSON{
		ID: m.ID, Name: m.Name, State: m.State, SystemUUID: m.SystemUUID, Serial: m.Serial,
		Vendor: m.Vendor, Model: m.Model, PowerState: m.PowerState, Labels: m.Labels,
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, Version: m.Version,
	}
	if j.PowerState == "" {
		j.PowerState = contract.PowerUnknown
	}
	if len(m.PXEMAC) > 0 {
		j.PXEMAC = m.PXEMAC.String()
	}
	if m.BMCAddr.IsValid() {
		j.BMC = &bmcJSON{Address: m.BMCAddr.String(), User: m.BMCUser, PasswordSet: m.HasBMCPassword, CipherSuite: m.BMCCipherSuite}
	}
	if !m.PowerStateAt.IsZero() {
		t := m.PowerStateAt
		j.PowerStateAt = &t
	}
	if m.LastErrorCode != "" || m.LastError != "" {
		j.LastError = &errorJSON{Code: m.LastErrorCode, Message: m.LastError}
	}
	if !m.InventoryAt.IsZero() {
		t := m.InventoryAt
		j.InventoryAt = &t
		j.CPUs, j.MemoryBytes, j.Disks = m.CPUThreads, m.MemoryBytes, m.DiskCount
	}
	return j
}

// bmcInput is the BMC part of a create or update request. The password is
// write-only: no response ever carries it.
type bmcInput struct {
	Address     *string `json:"address"`
	User        *string `json:"user"`
	Password    *string `json:"password"`
	CipherSuite *int    `json:"cipher_suite"`
}

type machineInput struct {
	Name       *string            `json:"name"`
	State      *string            `json:"state"`
	PXEMAC     *string            `json:"pxe_mac"`
	SystemUUID *string            `json:"system_uuid"`
	Serial     *string            `json:"serial"`
	Vendor     *string            `json:"vendor"`
	Model      *string            `json:"model"`
	BMC        *bmcInput          `json:"bmc"`
	Labels     *map[string]string `json:"labels"`
	// Version, on update, makes the change fail when the machine changed
	// since the client read it.
	Version *int `json:"version"`
}

func parseMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return net.HardwareAddr{}, nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, errInvalid(fmt.Sprintf("pxe_mac %q is not a 48-bit MAC address", s))
	}
	return mac, nil
}

// parseBMCAddr accepts an IP address with or without a port.
func parseBMCAddr(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, defaultBMCPort), nil
	}
	return netip.AddrPort{}, errInvalid(fmt.Sprintf("bmc.address %q must be an IP address, optionally with a port", s))
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) createMachine(c echo.Context) error {
	var in machineInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Name == nil || *in.Name == "" {
		return errInvalid("name is required")
	}
	mc := store.MachineCreate{
		Name: *in.Name, SystemUUID: str(in.SystemUUID), Serial: str(in.Serial),
		Vendor: str(in.Vendor), Model: str(in.Model),
	}
	if in.State != nil {
		st := contract.MachineState(*in.State)
		if err := st.Validate(); err != nil {
			return errInvalid(err.Error())
		}
		mc.State = st
	}
	if in.Labels != nil {
		mc.Labels = *in.Labels
	}
	mac, err := parseMAC(str(in.PXEMAC))
	if err != nil {
		return err
	}
	if len(mac) > 0 {
		mc.PXEMAC = mac
	}
	if in.BMC != nil {
		if mc.BMCAddr, err = parseBMCAddr(str(in.BMC.Address)); err != nil {
			return err
		}
		mc.BMCUser = str(in.BMC.User)
		mc.BMCPassword = secret.String(str(in.BMC.Password))
		if in.BMC.CipherSuite != nil {
			mc.BMCCipherSuite = *in.BMC.CipherSuite
		}
	}
	m, err := s.store.CreateMachine(c.Request().Context(), mc)
	if err != nil {
		return err
	}
	setAudit(c, "machine.create", m.ID, "")
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/machines/"+m.ID)
	return c.JSON(http.StatusCreated, toMachineJSON(m))
}

// machine finds the machine named by the :id parameter: its ID or its name.
func (s *Server) machine(c echo.Context) (store.Machine, error) {
	ref := c.Param("id")
	ctx := c.Request().Context()
	var (
		m   store.Machine
		err error
	)
	if _, perr := uuid.Parse(ref); perr == nil {
		m, err = s.store.GetMachine(ctx, ref)
	} else {
		m, err = s.store.GetMachineByName(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return m, errNotFound(fmt.Sprintf("no machine %q", ref))
	}
	return m, err
}

func (s *Server) showMachine(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	j := toMachineJSON(m)
	if !m.InventoryAt.IsZero() {
		inv, err := s.store.GetInventory(c.Request().Context(), m.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			j.Hardware = &inv
		}
	}
	vols, root, err := s.store.RAID(c.Request().Context(), m.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	j.RAID, j.RootDevice = vols, root
	inst, err := s.store.InstalledOS(c.Request().Context(), m.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if inst.ImageID != "" {
		j.OS = &installedOSJSON{Image: inst.ImageID, RootDisk: inst.RootDisk, Hostname: inst.Hostname, Address: inst.Address,
			InstalledAt: inst.InstalledAt}
	}
	if j.Host, err = s.machineHost(c, m); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, j)
}

type installedOSJSON struct {
	Image       string    `json:"image"`
	RootDisk    string    `json:"root_disk"`
	Hostname    string    `json:"hostname,omitempty"`
	Address     string    `json:"address,omitempty"`
	InstalledAt time.Time `json:"installed_at"`
}

// hardwareFilters reads the hardware query parameters of a machine listing.
func hardwareFilters(c echo.Context, f *store.MachineFilter) error {
	f.Model = c.QueryParam("model")
	for _, p := range []struct {
		name string
		dst  *int
	}{{"cpus", &f.CPUs}, {"cpus_min", &f.MinCPUs}, {"disks", &f.Disks}, {"disks_min", &f.MinDisks}} {
		v := c.QueryParam(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalid(p.name + " must be a whole number")
		}
		*p.dst = n
	}
	if v := c.QueryParam("memory_min"); v != "" {
		n, err := parseBytes(v)
		if err != nil {
			return errInvalid("memory_min: " + err.Error())
		}
		f.MinMemoryBytes = n
	}
	return nil
}

// parseBytes reads a size: a number of bytes, or a number with a unit
// (KiB, MiB, GiB, TiB, or KB, MB, GB, TB in powers of ten).
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}, {"", 1},
	}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n < 0 || n > (1<<62)/u.mult {
			break
		}
		return n * u.mult, nil
	}
	return 0, fmt.Errorf("%q is not a size such as 68719476736 or 64GiB", s)
}

func (s *Server) listMachines(c echo.Context) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	f := store.MachineFilter{Vendor: c.QueryParam("vendor"), Limit: limit, After: c.QueryParam("after")}
	if err := hardwareFilters(c, &f); err != nil {
		return err
	}
	if v := c.QueryParam("state"); v != "" {
		f.State = contract.MachineState(v)
		if err := f.State.Validate(); err != nil {
			return errInvalid(err.Error())
		}
	}
	ms, next, err := s.store.ListMachines(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := page[machineJSON]{Items: make([]machineJSON, len(ms)), Next: next}
	for i, m := range ms {
		out.Items[i] = toMachineJSON(m)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) updateMachine(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var in machineInput
	if err := decode(c, &in); err != nil {
		return err
	}
	u := store.MachineUpdate{Name: in.Name, SystemUUID: in.SystemUUID, Serial: in.Serial, Vendor: in.Vendor, Model: in.Model, Labels: in.Labels, ExpectVersion: in.Version}
	if in.State != nil {
		st := contract.MachineState(*in.State)
		if err := st.Validate(); err != nil {
			return errInvalid(err.Error())
		}
		u.State = &st
	}
	if in.PXEMAC != nil {
		mac, err := parseMAC(*in.PXEMAC)
		if err != nil {
			return err
		}
		u.PXEMAC = &mac
	}
	if b := in.BMC; b != nil {
		if b.Address != nil {
			ap, err := parseBMCAddr(*b.Address)
			if err != nil {
				return err
			}
			u.BMCAddr = &ap
		}
		u.BMCUser, u.BMCCipherSuite = b.User, b.CipherSuite
		if b.Password != nil {
			pw := secret.String(*b.Password)
			u.BMCPassword = &pw
		}
	}
	m, err = s.store.UpdateMachine(c.Request().Context(), m.ID, u)
	if err != nil {
		return err
	}
	setAudit(c, "machine.update", m.ID, "")
	return c.JSON(http.StatusOK, toMachineJSON(m))
}

func (s *Server) deleteMachine(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	if err := s.refuseIfBusy(c.Request().Context(), m); err != nil {
		return err
	}
	if err := s.store.DeleteMachine(c.Request().Context(), m.ID); err != nil {
		return err
	}
	setAudit(c, "machine.delete", m.ID, "")
	return c.NoContent(http.StatusNoContent)
}

type powerRequest struct {
	Action contract.PowerAction `json:"action"`
	// SoftOffGraceSeconds bounds how long "off" waits for the OS before it
	// turns the chassis off hard.
	SoftOffGraceSeconds int `json:"soft_off_grace_seconds,omitempty"`
	// CycleDelaySeconds is how long "cycle" keeps the chassis off.
	CycleDelaySeconds int `json:"cycle_delay_seconds,omitempty"`
}

const maxPowerDelaySeconds = 3600

func (s *Server) power(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var in powerRequest
	if err := decode(c, &in); err != nil {
		return err
	}
	if err := in.Action.Validate(); err != nil {
		return errInvalid(err.Error())
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"soft_off_grace_seconds", in.SoftOffGraceSeconds}, {"cycle_delay_seconds", in.CycleDelaySeconds}} {
		if f.v < 0 || f.v > maxPowerDelaySeconds {
			return errInvalid(f.name + " must be from 0 to " + strconv.Itoa(maxPowerDelaySeconds))
		}
	}
	if !m.BMCAddr.IsValid() {
		return errInvalid(fmt.Sprintf("machine %s has no BMC address; set bmc.address first", m.Name))
	}
	op, err := s.startOperation(c, m, contract.OperationPower, contract.WorkflowPower, func(opID string) any {
		return contract.PowerInput{
			OperationID: opID, MachineID: m.ID, Action: in.Action, RequestedBy: actor(c),
			SoftOffGrace: time.Duration(in.SoftOffGraceSeconds) * time.Second,
			CycleDelay:   time.Duration(in.CycleDelaySeconds) * time.Second,
		}
	})
	if err != nil {
		return err
	}
	setAudit(c, "power."+string(in.Action), m.ID, op.ID)
	return c.JSON(http.StatusAccepted, s.toOperationJSON(op))
}

type bootDeviceRequest struct {
	Device     contract.BootDevice `json:"device"`
	Mode       contract.BootMode   `json:"mode,omitempty"`
	Persistent bool                `json:"persistent,omitempty"`
}

func (s *Server) setBootDevice(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var in bootDeviceRequest
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Mode == "" {
		in.Mode = contract.BootModeLegacy
	}
	if err := errors.Join(in.Device.Validate(), in.Mode.Validate()); err != nil {
		return errInvalid(err.Error())
	}
	if !m.BMCAddr.IsValid() {
		return errInvalid(fmt.Sprintf("machine %s has no BMC address; set bmc.address first", m.Name))
	}
	op, err := s.startOperation(c, m, contract.OperationSetBootDevice, contract.WorkflowSetBootDevice, func(opID string) any {
		return contract.SetBootDeviceInput{OperationID: opID, MachineID: m.ID, Device: in.Device, Mode: in.Mode, Persistent: in.Persistent, RequestedBy: actor(c)}
	})
	if err != nil {
		return err
	}
	setAudit(c, "boot_device."+string(in.Device), m.ID, op.ID)
	return c.JSON(http.StatusAccepted, s.toOperationJSON(op))
}

type powerStatusJSON struct {
	MachineID  string              `json:"machine_id"`
	PowerState contract.PowerState `json:"power_state"`
	ObservedAt *time.Time          `json:"observed_at,omitempty"`
	// Source is "bmc" for a live read, "record" for the last one stored.
	Source string `json:"source"`
}

// powerStatus answers the last recorded power state, or with refresh=true
// asks the BMC through a short read-only workflow that never waits for, nor
// blocks, an operation on the machine.
func (s *Server) powerStatus(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	out := powerStatusJSON{MachineID: m.ID, PowerState: m.PowerState, Source: "record"}
	if out.PowerState == "" {
		out.PowerState = contract.PowerUnknown
	}
	if !m.PowerStateAt.IsZero() {
		t := m.PowerStateAt
		out.ObservedAt = &t
	}
	if refresh, _ := strconv.ParseBool(c.QueryParam("refresh")); !refresh {
		return c.JSON(http.StatusOK, out)
	}
	if !m.BMCAddr.IsValid() {
		return errInvalid(fmt.Sprintf("machine %s has no BMC address", m.Name))
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.StatusTimeout)
	defer cancel()
	res, err := s.readPower(ctx, m.ID)
	if err != nil {
		return err
	}
	at := res.At
	out.PowerState, out.ObservedAt, out.Source = res.PowerState, &at, "bmc"
	return c.JSON(http.StatusOK, out)
}

type registerRequest struct {
	BMC *struct {
		Mode          contract.BMCSetupMode `json:"mode"`
		Network       string                `json:"network"`
		Username      string                `json:"username"`
		VerifySeconds int                   `json:"verify_seconds"`
	} `json:"bmc"`
	LeaveInRamdisk        bool `json:"leave_in_ramdisk"`
	RamdiskTimeoutSeconds int  `json:"ramdisk_timeout_seconds"`
	// Force registers a machine that runs an OS: it is rebooted into the
	// ramdisk.
	Force bool `json:"force"`
}

const maxRamdiskTimeoutSeconds = 24 * 3600

// register starts a Register workflow: the machine boots the ramdisk
// (through its BMC, or by hand), reports its hardware and gets its BMC set
// up. It also refreshes the inventory of a registered machine.
func (s *Server) register(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var in registerRequest
	if c.Request().ContentLength != 0 {
		if err := decode(c, &in); err != nil {
			return err
		}
	}
	var setup contract.BMCSetup
	if in.BMC != nil {
		setup = contract.BMCSetup{Mode: in.BMC.Mode, Network: in.BMC.Network, Username: in.BMC.Username,
			VerifyWithin: time.Duration(in.BMC.VerifySeconds) * time.Second}
		if in.BMC.VerifySeconds < 0 || in.BMC.VerifySeconds > maxPowerDelaySeconds {
			return errInvalid("bmc.verify_seconds must be from 0 to " + strconv.Itoa(maxPowerDelaySeconds))
		}
	}
	if err := setup.Mode.Validate(); err != nil {
		return errInvalid("bmc.mode: " + err.Error())
	}
	if setup.Username != "" && !validBMCUsername(setup.Username) {
		return errInvalid("bmc.username must be 1 to 16 letters, digits, '-', '_' or '.'")
	}
	if err := ramdiskOperationAllowed(m, in.Force, in.RamdiskTimeoutSeconds, "registering reboots it into the ramdisk"); err != nil {
		return err
	}
	op, err := s.startOperation(c, m, contract.OperationRegister, contract.WorkflowRegister, func(opID string) any {
		return contract.RegisterInput{
			OperationID: opID, MachineID: m.ID, BMC: setup, LeaveInRamdisk: in.LeaveInRamdisk,
			RamdiskTimeout: time.Duration(in.RamdiskTimeoutSeconds) * time.Second, RequestedBy: actor(c),
		}
	})
	if err != nil {
		return err
	}
	setAudit(c, "machine.register", m.ID, op.ID)
	return c.JSON(http.StatusAccepted, s.toOperationJSON(op))
}

// ramdiskOperationAllowed checks what every operation in the ramdisk
// checks: its timeout, and that the machine is not running an OS (unless
// forced: consequence says what the operation does to it) nor being wiped.
func ramdiskOperationAllowed(m store.Machine, force bool, timeoutSeconds int, consequence string) error {
	if timeoutSeconds < 0 || timeoutSeconds > maxRamdiskTimeoutSeconds {
		return errInvalid("ramdisk_timeout_seconds must be from 0 to " + strconv.Itoa(maxRamdiskTimeoutSeconds))
	}
	switch m.State {
	case contract.MachineRunning, contract.MachineDeploying:
		if !force {
			return &apiError{Status: http.StatusConflict, Code: "machine_in_use", Message: fmt.Sprintf(
				"machine %s is %s: %s; send force: true to do it anyway", m.Name, m.State, consequence)}
		}
	case contract.MachineWiping:
		return &apiError{Status: http.StatusConflict, Code: "machine_in_use", Message: fmt.Sprintf("machine %s is being wiped", m.Name)}
	}
	return nil
}

func validBMCUsername(u string) bool {
	if len(u) == 0 || len(u) > 16 {
		return false
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

type raidRequest struct {
	contract.RAIDSpec
	LeaveInRamdisk        bool `json:"leave_in_ramdisk"`
	RamdiskTimeoutSeconds int  `json:"ramdisk_timeout_seconds"`
	// Force builds RAID on a machine that runs an OS: its disks are
	// cleared.
	Force bool `json:"force"`
}

// makeRAID starts a MakeRAID workflow. The spec is checked first against
// the machine's recorded hardware, so a spec the hardware cannot satisfy is
// refused before the machine is touched.
func (s *Server) makeRAID(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var in raidRequest
	if err := decode(c, &in); err != nil {
		return err
	}
	if len(in.Arrays) == 0 {
		return errInvalid("arrays: at least one array is required")
	}
	for i, a := range in.Arrays {
		if err := a.Level.Validate(); err != nil {
			return errInvalid(fmt.Sprintf("arrays[%d].level: %v", i, err))
		}
	}
	if err := ramdiskOperationAllowed(m, in.Force, in.RamdiskTimeoutSeconds, "building RAID clears its disks"); err != nil {
		return err
	}
	switch m.State {
	case contract.MachineDiscovered, contract.MachineEnrolled, contract.MachineRegistering:
		return &apiError{Status: http.StatusConflict, Code: "machine_not_registered", Message: fmt.Sprintf(
			"machine %s is %s: register it first, so that its controllers and disks are known", m.Name, m.State)}
	}
	if !m.InventoryAt.IsZero() && s.cfg.CheckRAID != nil {
		inv, err := s.store.GetInventory(c.Request().Context(), m.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			if err := s.cfg.CheckRAID(in.RAIDSpec, inv); err != nil {
				return &apiError{Status: http.StatusBadRequest, Code: "raid_spec_invalid", Message: err.Error()}
			}
		}
	}
	op, err := s.startOperation(c, m, contract.OperationRAID, contract.WorkflowMakeRAID, func(opID string) any {
		return contract.MakeRAIDInput{
			OperationID: opID, MachineID: m.ID, Spec: in.RAIDSpec, LeaveInRamdisk: in.LeaveInRamdisk,
			RamdiskTimeout: time.Duration(in.RamdiskTimeoutSeconds) * time.Second, RequestedBy: actor(c),
		}
	})
	if err != nil {
		return err
	}
	setAudit(c, "machine.raid", m.ID, op.ID)
	return c.JSON(http.StatusAccepted, s.toOperationJSON(op))
}
