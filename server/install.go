package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"bareflow/contract"
	"bareflow/internal/osconfig"
	"bareflow/internal/store"
)

// Bounds of install and wipe requests.
const (
	maxOSTimeoutSeconds   = 24 * 3600
	maxEraseTimeoutHours  = 14 * 24
	maxPartitions         = 16
	maxKeptPartitions     = 16
	maxPartitionSizeBytes = 1 << 50
)

var (
	partitionLabel = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,10}$`)
	blockDevice    = regexp.MustCompile(`^/dev/[a-z0-9][a-z0-9/_-]{0,63}$`)
)

type installRequest struct {
	// Image is the image's ID or name.
	Image         string                   `json:"image"`
	RAID          *contract.RAIDSpec       `json:"raid"`
	RootDisk      contract.RootDiskHint    `json:"root_disk"`
	RootSizeBytes int64                    `json:"root_size_bytes"`
	Partitions    []contract.PartitionSpec `json:"partitions"`
	// Keep names the partitions a reinstall leaves as they are.
	Keep                  []string            `json:"keep"`
	OS                    contract.OSSettings `json:"os"`
	Probe                 contract.OSProbe    `json:"probe"`
	RamdiskTimeoutSeconds int                 `json:"ramdisk_timeout_seconds"`
	OSTimeoutSeconds      int                 `json:"os_timeout_seconds"`
	// Force installs on a machine that runs an OS.
	Force bool `json:"force"`
}

// install starts an Install workflow on a registered machine.
func (s *Server) install(c echo.Context) error { return s.startInstall(c, false) }

// reinstall starts an Install workflow that keeps the RAID and the
// partitions named in keep, on a machine that runs an OS.
func (s *Server) reinstall(c echo.Context) error { return s.startInstall(c, true) }

func (s *Server) startInstall(c echo.Context, reinstall bool) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var in installRequest
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Image == "" {
		return errInvalid("image: the image's ID or name is required")
	}
	im, err := s.store.GetImage(c.Request().Context(), in.Image)
	if errors.Is(err, store.ErrNotFound) {
		return errInvalid("image: no image " + strconv.Quote(in.Image))
	}
	if err != nil {
		return err
	}
	if err := checkInstallRequest(&in, reinstall, im); err != nil {
		return err
	}
	switch {
	case m.State == contract.MachineDiscovered || m.State == contract.MachineEnrolled || m.State == contract.MachineRegistering:
		return &apiError{Status: http.StatusConflict, Code: "machine_not_registered", Message: fmt.Sprintf(
			"machine %s is %s: register it first, so that its disks are known", m.Name, m.State)}
	case reinstall && m.State != contract.MachineRunning && m.State != contract.MachineError:
		return &apiError{Status: http.StatusConflict, Code: "machine_not_running", Message: fmt.Sprintf(
			"machine %s is %s: a reinstall replaces a running OS; install it instead", m.Name, m.State)}
	}
	if !reinstall {
		if err := ramdiskOperationAllowed(m, in.Force, in.RamdiskTimeoutSeconds, "installing replaces its OS and disks"); err != nil {
			return err
		}
	} else if err := ramdiskOperationAllowed(m, true, in.RamdiskTimeoutSeconds, ""); err != nil {
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
	kind, audit := contract.OperationInstall, "machine.install"
	if reinstall {
		kind, audit = contract.OperationReinstall, "machine.reinstall"
	}
	op, err := s.startOperation(c, m, kind, contract.WorkflowInstall, func(opID string) any {
		return contract.InstallInput{
			OperationID: opID, MachineID: m.ID, Reinstall: reinstall, Image: im.ID, RAID: in.RAID,
			RootDisk: in.RootDisk, RootSizeBytes: in.RootSizeBytes, Partitions: in.Partitions, Keep: in.Keep,
			OS: in.OS, Probe: in.Probe,
			RamdiskTimeout: time.Duration(in.RamdiskTimeoutSeconds) * time.Second,
			OSTimeout:      time.Duration(in.OSTimeoutSeconds) * time.Second,
			RequestedBy:    actor(c),
		}
	})
	if err != nil {
		return err
	}
	setAudit(c, audit, m.ID, op.ID)
	return c.JSON(http.StatusAccepted, s.toOperationJSON(op))
}

// checkInstallRequest refuses what the install would fail on anyway, before
// the machine is touched.
func checkInstallRequest(in *installRequest, reinstall bool, im store.Image) error {
	if in.RAID != nil {
		if reinstall {
			return errInvalid("raid: a reinstall keeps the RAID the machine has")
		}
		if len(in.RAID.Arrays) == 0 {
			return errInvalid("raid.arrays: at least one array is required")
		}
		for i, a := range in.RAID.Arrays {
			if err := a.Level.Validate(); err != nil {
				return errInvalid(fmt.Sprintf("raid.arrays[%d].level: %v", i, err))
			}
		}
	}
	if len(in.Keep) > 0 && !reinstall {
		return errInvalid("keep: only a reinstall keeps partitions")
	}
	h := in.RootDisk
	switch {
	case h.Path != "" && !blockDevice.MatchString(h.Path):
		return errInvalid("root_disk.path must be a block device such as /dev/sda")
	case h.MinSizeBytes < 0 || h.MaxSizeBytes < 0 || h.MaxSizeBytes > 0 && h.MaxSizeBytes < h.MinSizeBytes:
		return errInvalid("root_disk: min_size_bytes and max_size_bytes must be positive, max at least min")
	case len(h.Serial) > 128 || len(h.WWN) > 128:
		return errInvalid("root_disk: serial and wwn are at most 128 characters")
	case in.RootSizeBytes < 0 || in.RootSizeBytes > maxPartitionSizeBytes:
		return errInvalid("root_size_bytes must be from 0 (the whole disk) to 1 PiB")
	case len(in.Partitions) > maxPartitions:
		return errInvalid(fmt.Sprintf("partitions: at most %d", maxPartitions))
	case len(in.Keep) > maxKeptPartitions:
		return errInvalid(fmt.Sprintf("keep: at most %d partitions", maxKeptPartitions))
	}
	labels := map[string]bool{}
	var mounts []osconfig.Mount
	for i, p := range in.Partitions {
		f := fmt.Sprintf("partitions[%d]", i)
		switch {
		case !partitionLabel.MatchString(p.Label):
			return errInvalid(f + ".label must be 1 to 11 letters, digits, '_' or '-', starting with a letter or digit")
		case labels[p.Label]:
			return errInvalid(f + ".label " + p.Label + " is used twice")
		case p.SizeBytes <= 0 || p.SizeBytes > maxPartitionSizeBytes:
			return errInvalid(f + ".size_bytes must be from 1 to 1 PiB")
		}
		labels[p.Label] = true
		switch p.Filesystem {
		case "ext4", "xfs", "vfat", "swap":
		default:
			return errInvalid(f + ".filesystem must be ext4, xfs, vfat or swap")
		}
		if p.MountPoint != "" {
			if p.Filesystem == "swap" {
				return errInvalid(f + ".mount_point: swap has none")
			}
			if p.MountPoint[0] != '/' || path.Clean(p.MountPoint) != p.MountPoint || p.MountPoint == "/" {
				return errInvalid(f + ".mount_point must be an absolute clean path other than /")
			}
			// A placeholder UUID: the check is of the mount point and
			// options, the real UUID comes from the new filesystem.
			mounts = append(mounts, osconfig.Mount{UUID: "00000000-0000-4000-8000-000000000000", MountPoint: p.MountPoint,
				FSType: p.Filesystem, Options: p.Options})
		}
	}
	kept := map[string]bool{}
	for i, k := range in.Keep {
		if !partitionLabel.MatchString(k) || kept[k] {
			return errInvalid(fmt.Sprintf("keep[%d]: %q is not a partition label, or is named twice", i, k))
		}
		kept[k] = true
	}
	if len(in.Keep) > 0 && im.VirtualSize <= 0 {
		return errInvalid("keep: image " + im.Name + " has no virtual size recorded, so bareflow cannot tell whether it would overwrite the partitions to keep")
	}
	if _, err := osconfig.FromSettings(in.OS, mounts, "check"); err != nil {
		return errInvalid("os: " + err.Error())
	}
	if in.Probe.Address != "" {
		if _, err := netip.ParseAddr(in.Probe.Address); err != nil {
			return errInvalid("probe.address must be an IP address")
		}
	}
	switch {
	case in.Probe.Port < 0 || in.Probe.Port > 65535:
		return errInvalid("probe.port must be from 1 to 65535")
	case in.OSTimeoutSeconds < 0 || in.OSTimeoutSeconds > maxOSTimeoutSeconds:
		return errInvalid("os_timeout_seconds must be from 0 to " + strconv.Itoa(maxOSTimeoutSeconds))
	}
	return nil
}

type wipeRequest struct {
	// Confirm must be the machine's name or ID.
	Confirm               string               `json:"confirm"`
	Erase                 contract.EraseMethod `json:"erase"`
	KeepRAID              bool                 `json:"keep_raid"`
	RamdiskTimeoutSeconds int                  `json:"ramdisk_timeout_seconds"`
	EraseTimeoutHours     int                  `json:"erase_timeout_hours"`
}

// check refuses a request that does not confirm machine m or asks for an
// unknown erase; what says what the operation does ("a wipe destroys").
func (in wipeRequest) check(m store.Machine, what string) error {
	if in.Confirm != m.Name && in.Confirm != m.ID {
		return &apiError{Status: http.StatusBadRequest, Code: "confirmation_required", Message: fmt.Sprintf(
			"%s every disk of machine %s: send confirm with its name (%s) or ID", what, m.Name, m.Name)}
	}
	if err := in.Erase.Validate(); err != nil {
		return errInvalid("erase: " + err.Error())
	}
	if in.EraseTimeoutHours < 0 || in.EraseTimeoutHours > maxEraseTimeoutHours {
		return errInvalid("erase_timeout_hours must be from 0 to " + strconv.Itoa(maxEraseTimeoutHours))
	}
	return nil
}

// wipe starts a Wipe workflow. The request must confirm the machine by its
// name or ID: a wipe destroys everything on its disks.
func (s *Server) wipe(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	var in wipeRequest
	if err := decode(c, &in); err != nil {
		return err
	}
	if err := in.check(m, "a wipe destroys"); err != nil {
		return err
	}
	switch m.State {
	case contract.MachineDiscovered, contract.MachineEnrolled, contract.MachineRegistering:
		return &apiError{Status: http.StatusConflict, Code: "machine_not_registered", Message: fmt.Sprintf(
			"machine %s is %s: register it first, so that its disks are known", m.Name, m.State)}
	}
	if err := ramdiskOperationAllowed(m, true, in.RamdiskTimeoutSeconds, ""); err != nil {
		return err
	}
	op, err := s.startOperation(c, m, contract.OperationWipe, contract.WorkflowWipe, func(opID string) any {
		return contract.WipeInput{
			OperationID: opID, MachineID: m.ID, Erase: in.Erase, KeepRAID: in.KeepRAID,
			RamdiskTimeout: time.Duration(in.RamdiskTimeoutSeconds) * time.Second,
			EraseTimeout:   time.Duration(in.EraseTimeoutHours) * time.Hour,
			RequestedBy:    actor(c),
		}
	})
	if err != nil {
		return err
	}
	setAudit(c, "machine.wipe", m.ID, op.ID)
	return c.JSON(http.StatusAccepted, s.toOperationJSON(op))
}
