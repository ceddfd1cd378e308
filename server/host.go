package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"bareflow/contract"
	"bareflow/internal/store"
)

// maxAgentTimeoutSeconds bounds the wait for a host agent.
const maxAgentTimeoutSeconds = 3600

type convertHostRequest struct {
	installRequest
	Host                contract.HostSettings `json:"host"`
	AgentTimeoutSeconds int                   `json:"agent_timeout_seconds"`
}

// convertToHost starts a ConvertToHost workflow: an install with the host
// disk layout and configuration, then the agent's probe and the host record.
func (s *Server) convertToHost(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var in convertHostRequest
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Image == "" {
		return errInvalid("image: the image's ID or name is required")
	}
	im, err := s.store.GetImage(c.Request().Context(), in.Image)
	if errors.Is(err, store.ErrNotFound) {
		return errInvalid("image: no image " + fmt.Sprintf("%q", in.Image))
	}
	if err != nil {
		return err
	}
	if err := checkInstallRequest(&in.installRequest, false, im); err != nil {
		return err
	}
	if err := checkHostRequest(&in); err != nil {
		return err
	}
	switch m.State {
	case contract.MachineDiscovered, contract.MachineEnrolled, contract.MachineRegistering:
		return &apiError{Status: http.StatusConflict, Code: "machine_not_registered", Message: fmt.Sprintf(
			"machine %s is %s: register it first, so that its disks are known", m.Name, m.State)}
	}
	if err := ramdiskOperationAllowed(m, in.Force, in.RamdiskTimeoutSeconds, "converting it replaces its OS and disks"); err != nil {
		return err
	}
	if in.RAID != nil && s.cfg.CheckRAID != nil && !m.InventoryAt.IsZero() {
		inv, err := s.store.GetInventory(c.Request().Context(), m.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			if err := s.cfg.CheckRAID(*in.RAID, inv); err != nil {
				return &apiError{Status: http.StatusBadRequest, Code: "raid_spec_invalid", Message: err.Error()}
			}
		}
	}
	op, err := s.startOperation(c, m, contract.OperationConvertHost, contract.WorkflowConvertToHost, func(opID string) any {
		return contract.ConvertHostInput{
			Install: contract.InstallInput{
				OperationID: opID, MachineID: m.ID, Image: im.ID, RAID: in.RAID,
				RootDisk: in.RootDisk, RootSizeBytes: in.RootSizeBytes, Partitions: in.Partitions,
				OS: in.OS, Probe: in.Probe,
				RamdiskTimeout: time.Duration(in.RamdiskTimeoutSeconds) * time.Second,
				OSTimeout:      time.Duration(in.OSTimeoutSeconds) * time.Second,
				RequestedBy:    actor(c),
			},
			MachineName:  m.Name,
			Host:         in.Host,
			AgentTimeout: time.Duration(in.AgentTimeoutSeconds) * time.Second,
		}
	})
	if err != nil {
		return err
	}
	setAudit(c, "machine.convert_host", m.ID, op.ID)
	return c.JSON(http.StatusAccepted, s.toOperationJSON(op))
}

// checkHostRequest refuses host settings the conversion would fail on.
func checkHostRequest(in *convertHostRequest) error {
	h := in.Host.WithDefaults()
	switch {
	case h.AgentPort < 1 || h.AgentPort > 65535:
		return errInvalid("host.agent_port must be from 1 to 65535")
	case h.WorkspaceFS != "xfs" && h.WorkspaceFS != "ext4":
		return errInvalid("host.workspace_fs must be xfs or ext4")
	case h.WorkspacePath[0] != '/' || path.Clean(h.WorkspacePath) != h.WorkspacePath || h.WorkspacePath == "/" ||
		strings.ContainsAny(h.WorkspacePath, " \t\r\n\"'\\$`"):
		return errInvalid("host.workspace_path must be an absolute clean path other than /, without spaces or quotes")
	case in.AgentTimeoutSeconds < 0 || in.AgentTimeoutSeconds > maxAgentTimeoutSeconds:
		return errInvalid(fmt.Sprintf("agent_timeout_seconds must be from 0 to %d", maxAgentTimeoutSeconds))
	}
	if h.ControllerURL != "" {
		u, err := url.Parse(h.ControllerURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(h.ControllerURL, " \t\r\n\"'\\$`") {
			return errInvalid("host.controller_url must be an http or https URL without spaces or quotes")
		}
	}
	for i, p := range in.Partitions {
		if p.Label == contract.WorkspaceLabel {
			return errInvalid(fmt.Sprintf("partitions[%d].label: %s is the host's workspace", i, contract.WorkspaceLabel))
		}
	}
	if in.Probe.Address == "" && !hasStaticAddress(in.OS.Network) {
		return errInvalid("a host conversion probes its agent at the OS's address: give the OS a static address or probe.address")
	}
	return nil
}

// undoHostRequest is a wipe's: the undo wipes the host's disks.
type undoHostRequest = wipeRequest

// undoHost starts an UndoHost workflow: the host, without guests, is wiped
// back to ready and its host record removed.
func (s *Server) undoHost(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var in undoHostRequest
	if err := decode(c, &in); err != nil {
		return err
	}
	if err := in.check(m, "undoing a host wipes"); err != nil {
		return err
	}
	h, err := s.store.GetHost(c.Request().Context(), m.ID)
	if errors.Is(err, store.ErrNotFound) {
		return &apiError{Status: http.StatusConflict, Code: "not_a_host", Message: fmt.Sprintf("machine %s is not a hypervisor host", m.Name)}
	}
	if err != nil {
		return err
	}
	if h.Guests > 0 {
		return &apiError{Status: http.StatusConflict, Code: "host_has_guests", Message: fmt.Sprintf(
			"host %s has %d guests: move or delete them first", m.Name, h.Guests)}
	}
	if err := ramdiskOperationAllowed(m, true, in.RamdiskTimeoutSeconds, ""); err != nil {
		return err
	}
	op, err := s.startOperation(c, m, contract.OperationUndoHost, contract.WorkflowUndoHost, func(opID string) any {
		return contract.UndoHostInput{Wipe: contract.WipeInput{
			OperationID: opID, MachineID: m.ID, Erase: in.Erase, KeepRAID: in.KeepRAID,
			RamdiskTimeout: time.Duration(in.RamdiskTimeoutSeconds) * time.Second,
			EraseTimeout:   time.Duration(in.EraseTimeoutHours) * time.Hour,
			RequestedBy:    actor(c),
		}}
	})
	if err != nil {
		return err
	}
	setAudit(c, "machine.undo_host", m.ID, op.ID)
	return c.JSON(http.StatusAccepted, s.toOperationJSON(op))
}

type hostJSON struct {
	MachineID     string     `json:"machine_id"`
	Name          string     `json:"name,omitempty"`
	AgentURL      string     `json:"agent_url"`
	CPUs          int        `json:"cpus"`
	MemoryBytes   int64      `json:"memory_bytes"`
	StorageBytes  int64      `json:"storage_bytes"`
	WorkspacePath string     `json:"workspace_path"`
	Guests        int        `json:"guests"`
	ConvertedAt   time.Time  `json:"converted_at"`
	UndoAt        *time.Time `json:"undo_at,omitempty"`
}

func toHostJSON(h store.Host, name string) hostJSON {
	j := hostJSON{MachineID: h.MachineID, Name: name, AgentURL: h.AgentURL, CPUs: h.CPUs, MemoryBytes: h.MemoryBytes,
		StorageBytes: h.StorageBytes, WorkspacePath: h.WorkspacePath, Guests: h.Guests, ConvertedAt: h.ConvertedAt}
	if !h.UndoAt.IsZero() {
		j.UndoAt = &h.UndoAt
	}
	return j
}

// machineHost is the machine's host record for its JSON; nil when it is no
// host.
func (s *Server) machineHost(c echo.Context, m store.Machine) (*hostJSON, error) {
	h, err := s.store.GetHost(c.Request().Context(), m.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	j := toHostJSON(h, m.Name)
	return &j, nil
}

// listHosts lists the hypervisor hosts with their capacity.
func (s *Server) listHosts(c echo.Context) error {
	hosts, err := s.store.ListHosts(c.Request().Context())
	if err != nil {
		return err
	}
	out := page[hostJSON]{Items: make([]hostJSON, len(hosts))}
	for i, h := range hosts {
		name := ""
		if m, err := s.store.GetMachine(c.Request().Context(), h.MachineID); err == nil {
			name = m.Name
		}
		out.Items[i] = toHostJSON(h, name)
	}
	return c.JSON(http.StatusOK, out)
}

// showHost returns one host.
func (s *Server) showHost(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	h, err := s.machineHost(c, m)
	if err != nil {
		return err
	}
	if h == nil {
		return errNotFound("machine " + m.Name + " is not a hypervisor host")
	}
	return c.JSON(http.StatusOK, h)
}

type hostUpdate struct {
	// Guests is the host's guest count, set by the guest controller.
	Guests *int `json:"guests"`
}

// updateHost sets a host's guest count: the hook of the guest controller
// until bareflow manages guests itself. A host being undone takes none.
func (s *Server) updateHost(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var in hostUpdate
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Guests == nil || *in.Guests < 0 || *in.Guests > 1<<20 {
		return errInvalid("guests: a count from 0 is required")
	}
	h, err := s.store.SetHostGuests(c.Request().Context(), m.ID, *in.Guests)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("machine " + m.Name + " is not a hypervisor host")
	}
	if errors.Is(err, store.ErrConflict) {
		return &apiError{Status: http.StatusConflict, Code: "host_undoing", Message: fmt.Sprintf(
			"host %s is being turned back into a plain machine: it takes no guests", m.Name)}
	}
	if err != nil {
		return err
	}
	setAudit(c, "host.update", m.ID, "")
	return c.JSON(http.StatusOK, toHostJSON(h, m.Name))
}
