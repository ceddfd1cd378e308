package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
	"bareflow/internal/osconfig"
	"bareflow/internal/store"
)

// Fleet API codes.
const (
	codeFleetState    = "fleet_state"
	codeFleetFinished = "fleet_finished"
	// maxFleetRefusals bounds how many machines a refusal names.
	maxFleetRefusals = 5
)

// fleetFilter selects a fleet's machines with the filters of GET /machines,
// and labels.
type fleetFilter struct {
	State    contract.MachineState `json:"state"`
	Vendor   string                `json:"vendor"`
	Model    string                `json:"model"`
	CPUs     int                   `json:"cpus"`
	CPUsMin  int                   `json:"cpus_min"`
	Disks    int                   `json:"disks"`
	DisksMin int                   `json:"disks_min"`
	// MemoryMin is a size: bytes, or 64GiB.
	MemoryMin string `json:"memory_min"`
	// Labels must all match.
	Labels map[string]string `json:"labels"`
}

type fleetWipeRequest struct {
	Erase                 contract.EraseMethod `json:"erase"`
	KeepRAID              bool                 `json:"keep_raid"`
	RamdiskTimeoutSeconds int                  `json:"ramdisk_timeout_seconds"`
	EraseTimeoutHours     int                  `json:"erase_timeout_hours"`
}

type fleetRequest struct {
	Op contract.FleetOp `json:"op"`
	// IDs names the machines by ID or name; Filter selects them instead.
	IDs    []string     `json:"ids"`
	Filter *fleetFilter `json:"filter"`
	// Confirm, for a wipe, must be "wipe N machines" with the count.
	Confirm         string `json:"confirm"`
	Concurrency     int    `json:"concurrency"`
	Canaries        int    `json:"canaries"`
	FailureBudget   int    `json:"failure_budget"`
	CancelOnFailure bool   `json:"cancel_on_failure"`
	// GroupBy is "network" or "label:<key>"; GroupLimit bounds the running
	// machines of one group.
	GroupBy    string `json:"group_by"`
	GroupLimit int    `json:"group_limit"`
	// The template of the operation named by Op.
	Install *installRequest   `json:"install"`
	Wipe    *fleetWipeRequest `json:"wipe"`
	Power   *powerRequest     `json:"power"`
	// Register is a register refresh of each machine.
	Register *registerRequest `json:"register"`
	// HostnamePattern names each installed machine: {name} and {index}.
	HostnamePattern string `json:"hostname_pattern"`
}

type fleetMachineJSON struct {
	ID          string                     `json:"id"`
	Name        string                     `json:"name"`
	Group       string                     `json:"group,omitempty"`
	Canary      bool                       `json:"canary,omitempty"`
	State       contract.FleetMachineState `json:"state"`
	OperationID string                     `json:"operation_id,omitempty"`
	Error       *errorJSON                 `json:"error,omitempty"`
	StartedAt   *time.Time                 `json:"started_at,omitempty"`
	FinishedAt  *time.Time                 `json:"finished_at,omitempty"`
}

type fleetCountsJSON struct {
	Total    int `json:"total"`
	Waiting  int `json:"waiting"`
	Running  int `json:"running"`
	Done     int `json:"done"`
	Failed   int `json:"failed"`
	Canceled int `json:"canceled"`
	Skipped  int `json:"skipped"`
}

type fleetJSON struct {
	ID             string              `json:"id"`
	WorkflowID     string              `json:"workflow_id"`
	Op             contract.FleetOp    `json:"op"`
	State          contract.FleetState `json:"state"`
	Reason         string              `json:"reason,omitempty"`
	Counts         fleetCountsJSON     `json:"counts"`
	CanariesPassed bool                `json:"canaries_passed"`
	Concurrency    int                 `json:"concurrency"`
	Canaries       int                 `json:"canaries"`
	FailureBudget  int                 `json:"failure_budget"`
	GroupBy        string              `json:"group_by,omitempty"`
	GroupLimit     int                 `json:"group_limit,omitempty"`
	MaxRunning     int                 `json:"max_running"`
	Runs           int                 `json:"runs"`
	RequestedBy    string              `json:"requested_by,omitempty"`
	StartedAt      *time.Time          `json:"started_at,omitempty"`
	FinishedAt     *time.Time          `json:"finished_at,omitempty"`
	Machines       []fleetMachineJSON  `json:"machines"`
	// Link is the API path of the fleet.
	Link     string `json:"link"`
	WebUIURL string `json:"web_ui_url,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toFleetJSON(p contract.FleetProgress) fleetJSON {
	c := p.Counts
	j := fleetJSON{
		ID: p.FleetID, WorkflowID: contract.FleetWorkflowID(p.FleetID), Op: p.Op, State: p.State, Reason: p.Reason,
		Counts:         fleetCountsJSON{Total: c.Total, Waiting: c.Waiting, Running: c.Running, Done: c.Done, Failed: c.Failed, Canceled: c.Canceled, Skipped: c.Skipped},
		CanariesPassed: p.CanariesPassed, Concurrency: p.Concurrency, Canaries: p.Canaries, FailureBudget: p.FailureBudget,
		GroupBy: p.GroupBy, GroupLimit: p.GroupLimit, MaxRunning: p.MaxRunning, Runs: p.Runs, RequestedBy: p.RequestedBy,
		StartedAt: timePtr(p.StartedAt), FinishedAt: timePtr(p.FinishedAt),
		Machines: make([]fleetMachineJSON, len(p.Machines)), Link: "/api/v1/fleets/" + p.FleetID,
	}
	for i, m := range p.Machines {
		mj := fleetMachineJSON{ID: m.ID, Name: m.Name, Group: m.Group, Canary: m.Canary, State: m.State, OperationID: m.OperationID,
			StartedAt: timePtr(m.StartedAt), FinishedAt: timePtr(m.FinishedAt)}
		if m.ErrorCode != "" || m.Error != "" {
			mj.Error = &errorJSON{Code: m.ErrorCode, Message: m.Error}
		}
		j.Machines[i] = mj
	}
	return j
}

// startFleet resolves the machines, checks the request and starts a Fleet
// workflow on fleet/<uuid>.
func (s *Server) startFleet(c echo.Context) error {
	var in fleetRequest
	if err := decode(c, &in); err != nil {
		return err
	}
	if err := in.Op.Validate(); err != nil {
		return errInvalid("op: " + err.Error())
	}
	ctx := c.Request().Context()
	ms, err := s.fleetMachines(ctx, in)
	if err != nil {
		return err
	}
	fin, err := s.fleetInput(ctx, &in, ms)
	if err != nil {
		return err
	}
	groups, err := s.fleetGroups(ctx, in.GroupBy, ms)
	if err != nil {
		return err
	}
	fin.RequestedBy = actor(c)
	fin.FleetID = uuid.NewString()
	fin.Machines = make([]contract.FleetMachine, len(ms))
	for i, m := range ms {
		fin.Machines[i] = contract.FleetMachine{ID: m.ID, Name: m.Name, Group: groups[i]}
	}
	wid := contract.FleetWorkflowID(fin.FleetID)
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       wid,
		TaskQueue:                s.cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, contract.WorkflowFleet, fin)
	if err != nil {
		return fmt.Errorf("start fleet workflow: %w", err)
	}
	setAudit(c, "fleet.start."+string(fin.Op), fin.FleetID, "")
	j := toFleetJSON(initialProgress(fin))
	if s.cfg.WebUIURL != "" {
		j.WebUIURL = fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", s.cfg.WebUIURL,
			url.PathEscape(s.cfg.Namespace), url.PathEscape(wid), url.PathEscape(run.GetRunID()))
	}
	c.Response().Header().Set(echo.HeaderLocation, j.Link)
	return c.JSON(http.StatusAccepted, j)
}

// initialProgress is the progress of a fleet that has not started a machine
// yet, as the workflow will report it.
func initialProgress(in contract.FleetInput) contract.FleetProgress {
	p := contract.FleetProgress{
		FleetID: in.FleetID, Op: in.Op, State: contract.FleetRunning, CanariesPassed: in.Canaries == 0,
		Counts:      contract.FleetCounts{Total: len(in.Machines), Waiting: len(in.Machines)},
		Concurrency: in.Concurrency, GroupBy: in.GroupBy, GroupLimit: in.GroupLimit, Canaries: in.Canaries,
		FailureBudget: in.FailureBudget, Runs: 1, RequestedBy: in.RequestedBy,
		Machines: make([]contract.FleetMachineProgress, len(in.Machines)),
	}
	if p.Concurrency == 0 {
		p.Concurrency = contract.DefaultFleetConcurrency
	}
	for i, m := range in.Machines {
		p.Machines[i] = contract.FleetMachineProgress{ID: m.ID, Name: m.Name, Group: m.Group, Canary: i < in.Canaries,
			State: contract.FleetMachineWaiting}
	}
	return p
}

// fleetMachines resolves the machines of a request: by ID or name in the
// order given, or by filter in name order.
func (s *Server) fleetMachines(ctx context.Context, in fleetRequest) ([]store.Machine, error) {
	switch {
	case len(in.IDs) > 0 && in.Filter != nil:
		return nil, errInvalid("name the machines by ids or by filter, not both")
	case len(in.IDs) > contract.MaxFleetMachines:
		return nil, errInvalid(fmt.Sprintf("ids: a fleet has at most %d machines", contract.MaxFleetMachines))
	case len(in.IDs) > 0:
		return s.machinesByRef(ctx, in.IDs)
	case in.Filter != nil:
		return s.machinesByFilter(ctx, *in.Filter)
	}
	return nil, errInvalid("name the machines: ids, or filter ({} for every machine)")
}

func (s *Server) machinesByRef(ctx context.Context, refs []string) ([]store.Machine, error) {
	ms := make([]store.Machine, 0, len(refs))
	seen := map[string]bool{}
	var unknown []string
	for _, ref := range refs {
		var (
			m   store.Machine
			err error
		)
		if _, perr := uuid.Parse(ref); perr == nil {
			m, err = s.store.GetMachine(ctx, ref)
		} else {
			m, err = s.store.GetMachineByName(ctx, ref)
		}
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
			unknown = append(unknown, strconv.Quote(ref))
			continue
		}
		if err != nil {
			return nil, err
		}
		if seen[m.ID] {
			return nil, errInvalid(fmt.Sprintf("ids: machine %s is named twice", m.Name))
		}
		seen[m.ID] = true
		ms = append(ms, m)
	}
	if len(unknown) > 0 {
		return nil, errInvalid("ids: no machine " + strings.Join(firstN(unknown, maxFleetRefusals), ", "))
	}
	return ms, nil
}

func (s *Server) machinesByFilter(ctx context.Context, ff fleetFilter) ([]store.Machine, error) {
	f := store.MachineFilter{State: ff.State, Vendor: ff.Vendor, Model: ff.Model, CPUs: ff.CPUs, MinCPUs: ff.CPUsMin,
		Disks: ff.Disks, MinDisks: ff.DisksMin, Limit: store.MaxLimit}
	if f.State != "" {
		if err := f.State.Validate(); err != nil {
			return nil, errInvalid("filter.state: " + err.Error())
		}
	}
	if f.CPUs < 0 || f.MinCPUs < 0 || f.Disks < 0 || f.MinDisks < 0 {
		return nil, errInvalid("filter: cpus, cpus_min, disks and disks_min must not be negative")
	}
	if ff.MemoryMin != "" {
		n, err := parseBytes(ff.MemoryMin)
		if err != nil {
			return nil, errInvalid("filter.memory_min: " + err.Error())
		}
		f.MinMemoryBytes = n
	}
	var ms []store.Machine
	for {
		page, next, err := s.store.ListMachines(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			if labelsMatch(m.Labels, ff.Labels) {
				ms = append(ms, m)
			}
		}
		if len(ms) > contract.MaxFleetMachines {
			return nil, errInvalid(fmt.Sprintf("filter: more than %d machines match; a fleet has at most %d", contract.MaxFleetMachines, contract.MaxFleetMachines))
		}
		if next == "" {
			break
		}
		f.After = next
	}
	if len(ms) == 0 {
		return nil, errInvalid("filter: no machine matches")
	}
	return ms, nil
}

func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func firstN(items []string, n int) []string {
	if len(items) <= n {
		return items
	}
	return append(items[:n:n], fmt.Sprintf("and %d more", len(items)-n))
}

// fleetInput checks the request's limits and template against the machines
// and builds the workflow's input (machines and IDs are filled in later).
func (s *Server) fleetInput(ctx context.Context, in *fleetRequest, ms []store.Machine) (contract.FleetInput, error) {
	n := len(ms)
	fin := contract.FleetInput{Op: in.Op, Concurrency: in.Concurrency, Canaries: in.Canaries, FailureBudget: in.FailureBudget,
		CancelOnFailure: in.CancelOnFailure, GroupBy: in.GroupBy, GroupLimit: in.GroupLimit}
	switch {
	case in.Concurrency < 0 || in.Concurrency > contract.MaxFleetMachines:
		return fin, errInvalid(fmt.Sprintf("concurrency must be from 1 to %d (0: %d)", contract.MaxFleetMachines, contract.DefaultFleetConcurrency))
	case in.Canaries < 0 || in.Canaries > n:
		return fin, errInvalid(fmt.Sprintf("canaries must be from 0 to the %d machines of the fleet", n))
	case in.FailureBudget < 0:
		return fin, errInvalid("failure_budget must not be negative")
	case in.GroupLimit < 0:
		return fin, errInvalid("group_limit must not be negative")
	case in.GroupLimit > 0 && in.GroupBy == "":
		return fin, errInvalid("group_limit needs group_by: network or label:<key>")
	}
	if in.GroupBy != "" && in.GroupBy != "network" {
		key, ok := strings.CutPrefix(in.GroupBy, "label:")
		if !ok || key == "" {
			return fin, errInvalid(`group_by must be "network" or "label:<key>", such as label:rack`)
		}
	}
	templates := 0
	for _, set := range []bool{in.Install != nil, in.Wipe != nil, in.Power != nil, in.Register != nil} {
		if set {
			templates++
		}
	}
	if templates > 1 {
		return fin, errInvalid("give only the template of the fleet's op")
	}
	if in.HostnamePattern != "" && in.Op != contract.FleetInstall {
		return fin, errInvalid("hostname_pattern is for install fleets")
	}
	var (
		err   error
		check func(store.Machine) error
	)
	switch in.Op {
	case contract.FleetPower:
		fin.Template.Power, err = fleetPowerTemplate(in.Power)
		// A machine without a BMC is not refused: its operation fails at
		// once with BMCNotConfigured and counts against the budget.
	case contract.FleetRegister:
		var force bool
		fin.Template.Register, force, err = fleetRegisterTemplate(in.Register)
		check = func(m store.Machine) error {
			return ramdiskOperationAllowed(m, force, 0, "registering reboots it into the ramdisk")
		}
	case contract.FleetWipe:
		if want := fmt.Sprintf("wipe %d machines", n); in.Confirm != want {
			return fin, &apiError{Status: http.StatusBadRequest, Code: "confirmation_required", Message: fmt.Sprintf(
				"a wipe destroys every disk of %d machines: send confirm %q", n, want)}
		}
		fin.Template.Wipe, err = fleetWipeTemplate(in.Wipe)
		check = func(m store.Machine) error {
			if err := machineRegistered(m); err != nil {
				return err
			}
			return ramdiskOperationAllowed(m, true, 0, "")
		}
	case contract.FleetInstall:
		var force bool
		fin.Template.Install, force, err = s.fleetInstallTemplate(ctx, in, ms)
		fin.HostnamePattern = in.HostnamePattern
		check = func(m store.Machine) error {
			if err := machineRegistered(m); err != nil {
				return err
			}
			return ramdiskOperationAllowed(m, force, 0, "installing replaces its OS and disks")
		}
	}
	if err != nil {
		return fin, err
	}
	if check != nil {
		var refusals []string
		var first *apiError
		for _, m := range ms {
			err := check(m)
			var ae *apiError
			if errors.As(err, &ae) {
				if first == nil {
					first = ae
				}
				refusals = append(refusals, ae.Message)
			} else if err != nil {
				return fin, err
			}
		}
		if first != nil {
			return fin, &apiError{Status: first.Status, Code: first.Code, Message: fmt.Sprintf("%d of the %d machines cannot be part of a %s fleet: %s",
				len(refusals), n, in.Op, strings.Join(firstN(refusals, maxFleetRefusals), "; "))}
		}
	}
	return fin, nil
}

func machineRegistered(m store.Machine) error {
	switch m.State {
	case contract.MachineDiscovered, contract.MachineEnrolled, contract.MachineRegistering:
		return &apiError{Status: http.StatusConflict, Code: "machine_not_registered", Message: fmt.Sprintf(
			"machine %s is %s: register it first", m.Name, m.State)}
	}
	return nil
}

func fleetPowerTemplate(in *powerRequest) (*contract.PowerInput, error) {
	if in == nil {
		return nil, errInvalid(`power: the power request is required ({"action": "on"})`)
	}
	if err := in.Action.Validate(); err != nil {
		return nil, errInvalid("power.action: " + err.Error())
	}
	if in.SoftOffGraceSeconds < 0 || in.SoftOffGraceSeconds > maxPowerDelaySeconds ||
		in.CycleDelaySeconds < 0 || in.CycleDelaySeconds > maxPowerDelaySeconds {
		return nil, errInvalid("power: soft_off_grace_seconds and cycle_delay_seconds must be from 0 to " + strconv.Itoa(maxPowerDelaySeconds))
	}
	return &contract.PowerInput{Action: in.Action,
		SoftOffGrace: time.Duration(in.SoftOffGraceSeconds) * time.Second,
		CycleDelay:   time.Duration(in.CycleDelaySeconds) * time.Second}, nil
}

func fleetRegisterTemplate(in *registerRequest) (*contract.RegisterInput, bool, error) {
	if in == nil {
		in = &registerRequest{}
	}
	var setup contract.BMCSetup
	if in.BMC != nil {
		if in.BMC.VerifySeconds < 0 || in.BMC.VerifySeconds > maxPowerDelaySeconds {
			return nil, false, errInvalid("register.bmc.verify_seconds must be from 0 to " + strconv.Itoa(maxPowerDelaySeconds))
		}
		setup = contract.BMCSetup{Mode: in.BMC.Mode, Network: in.BMC.Network, Username: in.BMC.Username,
			VerifyWithin: time.Duration(in.BMC.VerifySeconds) * time.Second}
	}
	if err := setup.Mode.Validate(); err != nil {
		return nil, false, errInvalid("register.bmc.mode: " + err.Error())
	}
	if setup.Username != "" && !validBMCUsername(setup.Username) {
		return nil, false, errInvalid("register.bmc.username must be 1 to 16 letters, digits, '-', '_' or '.'")
	}
	if in.RamdiskTimeoutSeconds < 0 || in.RamdiskTimeoutSeconds > maxRamdiskTimeoutSeconds {
		return nil, false, errInvalid("register.ramdisk_timeout_seconds must be from 0 to " + strconv.Itoa(maxRamdiskTimeoutSeconds))
	}
	return &contract.RegisterInput{BMC: setup, LeaveInRamdisk: in.LeaveInRamdisk,
		RamdiskTimeout: time.Duration(in.RamdiskTimeoutSeconds) * time.Second}, in.Force, nil
}

func fleetWipeTemplate(in *fleetWipeRequest) (*contract.WipeInput, error) {
	if in == nil {
		in = &fleetWipeRequest{}
	}
	if err := in.Erase.Validate(); err != nil {
		return nil, errInvalid("wipe.erase: " + err.Error())
	}
	if in.EraseTimeoutHours < 0 || in.EraseTimeoutHours > maxEraseTimeoutHours {
		return nil, errInvalid("wipe.erase_timeout_hours must be from 0 to " + strconv.Itoa(maxEraseTimeoutHours))
	}
	if in.RamdiskTimeoutSeconds < 0 || in.RamdiskTimeoutSeconds > maxRamdiskTimeoutSeconds {
		return nil, errInvalid("wipe.ramdisk_timeout_seconds must be from 0 to " + strconv.Itoa(maxRamdiskTimeoutSeconds))
	}
	return &contract.WipeInput{Erase: in.Erase, KeepRAID: in.KeepRAID,
		RamdiskTimeout: time.Duration(in.RamdiskTimeoutSeconds) * time.Second,
		EraseTimeout:   time.Duration(in.EraseTimeoutHours) * time.Hour}, nil
}

// fleetInstallTemplate checks an install template as a single install is
// checked, with the host name each machine gets. A template for more than
// one machine takes no static address: every machine would get it.
func (s *Server) fleetInstallTemplate(ctx context.Context, in *fleetRequest, ms []store.Machine) (*contract.InstallInput, bool, error) {
	r := in.Install
	if r == nil {
		return nil, false, errInvalid("install: the install request is required (image, os …)")
	}
	if r.Image == "" {
		return nil, false, errInvalid("install.image: the image's ID or name is required")
	}
	if err := contract.ValidateHostnamePattern(in.HostnamePattern); err != nil {
		return nil, false, errInvalid("hostname_pattern: " + err.Error())
	}
	if len(ms) > 1 {
		if !strings.Contains(in.HostnamePattern, "{name}") && !strings.Contains(in.HostnamePattern, "{index}") {
			return nil, false, errInvalid("hostname_pattern: a fleet of several machines needs {name} or {index} in it, such as web-{index}")
		}
		if hasStaticAddress(r.OS.Network) || r.Probe.Address != "" {
			return nil, false, errInvalid("install.os.network: a fleet template applies to every machine, so it takes no static address nor probe address; use dhcp")
		}
	}
	im, err := s.store.GetImage(ctx, r.Image)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, errInvalid("install.image: no image " + strconv.Quote(r.Image))
	}
	if err != nil {
		return nil, false, err
	}
	checked := *r
	if in.HostnamePattern != "" {
		checked.OS.Hostname = contract.ExpandHostname(in.HostnamePattern, ms[0].Name, 1)
	}
	if err := checkInstallRequest(&checked, false, im); err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			ae.Message = "install: " + ae.Message
		}
		return nil, false, err
	}
	if r.RamdiskTimeoutSeconds < 0 || r.RamdiskTimeoutSeconds > maxRamdiskTimeoutSeconds {
		return nil, false, errInvalid("install.ramdisk_timeout_seconds must be from 0 to " + strconv.Itoa(maxRamdiskTimeoutSeconds))
	}
	if in.HostnamePattern != "" {
		for i, m := range ms[1:] {
			settings := r.OS
			settings.Hostname = contract.ExpandHostname(in.HostnamePattern, m.Name, i+2)
			if _, err := osconfig.FromSettings(settings, nil, "check"); err != nil {
				return nil, false, errInvalid(fmt.Sprintf("hostname_pattern gives machine %s a bad host name: %v", m.Name, err))
			}
		}
	}
	return &contract.InstallInput{
		Image: im.ID, RAID: r.RAID, RootDisk: r.RootDisk, RootSizeBytes: r.RootSizeBytes, Partitions: r.Partitions,
		OS: r.OS, Probe: r.Probe,
		RamdiskTimeout: time.Duration(r.RamdiskTimeoutSeconds) * time.Second,
		OSTimeout:      time.Duration(r.OSTimeoutSeconds) * time.Second,
	}, r.Force, nil
}

func hasStaticAddress(n contract.NetworkSettings) bool {
	for _, i := range n.Interfaces {
		if len(i.Addresses) > 0 {
			return true
		}
	}
	for _, b := range n.Bonds {
		if len(b.Addresses) > 0 {
			return true
		}
	}
	for _, v := range n.VLANs {
		if len(v.Addresses) > 0 {
			return true
		}
	}
	return false
}

// fleetGroups returns each machine's group: the network its PXE MAC has a
// lease on (provisioning networks first, then by name), or a label's value.
// A machine with none gets "".
func (s *Server) fleetGroups(ctx context.Context, groupBy string, ms []store.Machine) ([]string, error) {
	groups := make([]string, len(ms))
	if key, ok := strings.CutPrefix(groupBy, "label:"); ok {
		for i, m := range ms {
			groups[i] = m.Labels[key]
		}
		return groups, nil
	}
	if groupBy != "network" {
		return groups, nil
	}
	nets, err := s.store.ListNetworks(ctx)
	if err != nil {
		return nil, err
	}
	byMAC, byMachine := map[string]string{}, map[string]string{}
	for _, provisioning := range []bool{true, false} {
		for _, n := range nets {
			if (n.Kind == store.NetworkProvisioning) != provisioning {
				continue
			}
			leases, err := s.store.ListLeases(ctx, n.ID)
			if err != nil {
				return nil, err
			}
			for _, l := range leases {
				if len(l.MAC) > 0 {
					if _, ok := byMAC[l.MAC.String()]; !ok {
						byMAC[l.MAC.String()] = n.Name
					}
				}
				if _, ok := byMachine[l.MachineID]; !ok && l.MachineID != "" {
					byMachine[l.MachineID] = n.Name
				}
			}
		}
	}
	for i, m := range ms {
		if g, ok := byMAC[m.PXEMAC.String()]; ok && len(m.PXEMAC) > 0 {
			groups[i] = g
		} else {
			groups[i] = byMachine[m.ID]
		}
	}
	return groups, nil
}

// fleetID reads the :id parameter: a fleet's UUID.
func fleetID(c echo.Context) (string, error) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil {
		return "", errNotFound(fmt.Sprintf("no fleet %q", id))
	}
	return id, nil
}

// showFleet answers a fleet's progress, from its workflow's query.
func (s *Server) showFleet(c echo.Context) error {
	id, err := fleetID(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.StatusTimeout)
	defer cancel()
	v, err := s.temporal.QueryWorkflow(ctx, contract.FleetWorkflowID(id), "", contract.QueryFleetProgress)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return errNotFound(fmt.Sprintf("no fleet %q", id))
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &apiError{Status: http.StatusGatewayTimeout, Code: codeWorkflowTimedOut, Message: "the fleet did not answer in time; is a worker running?"}
	case err != nil:
		return fmt.Errorf("query fleet %s: %w", id, err)
	}
	var p contract.FleetProgress
	if err := v.Get(&p); err != nil {
		return fmt.Errorf("decode fleet %s progress: %w", id, err)
	}
	return c.JSON(http.StatusOK, toFleetJSON(p))
}

func (s *Server) pauseFleet(c echo.Context) error {
	return s.controlFleet(c, contract.UpdateFleetPause, "fleet.pause")
}

func (s *Server) resumeFleet(c echo.Context) error {
	return s.controlFleet(c, contract.UpdateFleetResume, "fleet.resume")
}

func (s *Server) cancelFleet(c echo.Context) error {
	return s.controlFleet(c, contract.UpdateFleetCancel, "fleet.cancel")
}

// controlFleet sends a fleet one of its updates and answers its progress.
// The fleet's validator refuses what its state does not allow: 409.
func (s *Server) controlFleet(c echo.Context, update, audit string) error {
	id, err := fleetID(c)
	if err != nil {
		return err
	}
	setAudit(c, audit, id, "")
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.StatusTimeout)
	defer cancel()
	wid := contract.FleetWorkflowID(id)
	h, err := s.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   wid,
		UpdateName:   update,
		Args:         []any{contract.FleetControl{RequestedBy: actor(c)}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var p contract.FleetProgress
	if err == nil {
		err = h.Get(ctx, &p)
	}
	var (
		nf     *serviceerror.NotFound
		appErr *temporal.ApplicationError
	)
	switch {
	case err == nil:
		return c.JSON(http.StatusOK, toFleetJSON(p))
	case errors.As(err, &appErr) && appErr.Type() == contract.ErrFleetState:
		return &apiError{Status: http.StatusConflict, Code: codeFleetState, Message: appErr.Message()}
	case errors.As(err, &nf):
		// Also the answer for a fleet whose workflow has ended.
		if _, derr := s.temporal.DescribeWorkflowExecution(ctx, wid, ""); derr == nil {
			return &apiError{Status: http.StatusConflict, Code: codeFleetFinished, Message: fmt.Sprintf("fleet %s has ended", id)}
		}
		return errNotFound(fmt.Sprintf("no fleet %q", id))
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &apiError{Status: http.StatusGatewayTimeout, Code: codeWorkflowTimedOut, Message: "the fleet did not answer in time; is a worker running?"}
	}
	return fmt.Errorf("%s fleet %s: %w", update, id, err)
}
