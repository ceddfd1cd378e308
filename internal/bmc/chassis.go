package bmc

import (
	"context"
	"fmt"

	"github.com/bougou/go-ipmi/pkg/command/app"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"

	"bareflow/contract"
)

// PowerState returns the chassis power state the BMC reports.
func (c *Client) PowerState(ctx context.Context) (contract.PowerState, error) {
	st, err := c.chassisStatus(ctx, "get power state")
	if err != nil {
		return contract.PowerUnknown, err
	}
	return st.Power, nil
}

// PowerOn asks the BMC to turn the chassis on. Success means the BMC took
// the request, not that the machine is on: read PowerState to verify.
func (c *Client) PowerOn(ctx context.Context) error {
	return c.chassisControl(ctx, "power on", chassis.ChassisControlPowerUp)
}

// PowerOffHard asks the BMC to turn the chassis off at once, without the OS
// shutting down.
func (c *Client) PowerOffHard(ctx context.Context) error {
	return c.chassisControl(ctx, "power off", chassis.ChassisControlPowerDown)
}

// PowerOffSoft asks the BMC to emulate a press of the power button (ACPI
// soft shutdown). The chassis goes off only when the OS handles the button
// and shuts down, which may take minutes or never happen: wait for
// PowerState with a deadline, then turn it off hard.
func (c *Client) PowerOffSoft(ctx context.Context) error {
	return c.chassisControl(ctx, "soft power off", chassis.ChassisControlSoftShutdown)
}

// Reset asks the BMC for a hard reset; the chassis stays on. Many BMCs do
// nothing, or answer an error, when the chassis is off.
func (c *Client) Reset(ctx context.Context) error {
	return c.chassisControl(ctx, "reset", chassis.ChassisControlHardReset)
}

// Cycle asks the BMC to turn the chassis off and, after its power-cycle
// interval (about a second on many BMCs), on again. Some BMCs refuse a cycle
// while the chassis is off.
func (c *Client) Cycle(ctx context.Context) error {
	return c.chassisControl(ctx, "power cycle", chassis.ChassisControlPowerCycle)
}

func (c *Client) chassisControl(ctx context.Context, op string, ctl chassis.ChassisControl) error {
	return c.exchange(ctx, op, types.CommandChassisControl, func(ctx context.Context) error {
		_, err := c.ipmi.ChassisControl(ctx, ctl)
		return err
	})
}

// ChassisStatus is what Get Chassis Status reports.
type ChassisStatus struct {
	// Power is the chassis power state.
	Power contract.PowerState
	// PowerRestorePolicy is what the chassis does when mains power returns:
	// "always-off", "previous", "always-on" or "unknown".
	PowerRestorePolicy string
	// PowerOverload, PowerInterlock, PowerFault and PowerControlFault are
	// the current power faults. PowerControlFault means the BMC tried to turn
	// the power on or off and the chassis did not follow.
	PowerOverload     bool
	PowerInterlock    bool
	PowerFault        bool
	PowerControlFault bool
	// LastPowerEvent says what last changed the power: "command",
	// "power fault", "interlock", "overload", "ac failed", or "" when the BMC
	// does not say.
	LastPowerEvent string
	// Intrusion is true while the chassis is open.
	Intrusion bool
	// FrontPanelLockout is true while the power and reset buttons are
	// disabled.
	FrontPanelLockout bool
	// DriveFault and FanFault report drive and cooling faults.
	DriveFault bool
	FanFault   bool
}

// ChassisStatus returns the chassis status: power, last power event, faults
// and intrusion.
func (c *Client) ChassisStatus(ctx context.Context) (ChassisStatus, error) {
	return c.chassisStatus(ctx, "get chassis status")
}

func (c *Client) chassisStatus(ctx context.Context, op string) (ChassisStatus, error) {
	var res *chassis.GetChassisStatusResponse
	err := c.exchange(ctx, op, types.CommandGetChassisStatus, func(ctx context.Context) error {
		var err error
		res, err = c.ipmi.GetChassisStatus(ctx)
		return err
	})
	if err != nil {
		return ChassisStatus{Power: contract.PowerUnknown}, err
	}
	st := ChassisStatus{
		Power:              contract.PowerOff,
		PowerRestorePolicy: res.PowerRestorePolicy.String(),
		PowerOverload:      res.PowerOverload,
		PowerInterlock:     res.InterLock,
		PowerFault:         res.PowerFault,
		PowerControlFault:  res.PowerControlFault,
		Intrusion:          res.ChassisIntrusionActive,
		FrontPanelLockout:  res.FrontPanelLockoutActive,
		DriveFault:         res.DriveFault,
		FanFault:           res.CollingFanFault,
	}
	if res.PowerIsOn {
		st.Power = contract.PowerOn
	}
	switch {
	case res.LastPowerOnByCommand:
		st.LastPowerEvent = "command"
	case res.LastPowerDownByPowerFault:
		st.LastPowerEvent = "power fault"
	case res.LastPowerDownByPowerInterlockActivated:
		st.LastPowerEvent = "interlock"
	case res.LastPowerDownByPowerOverload:
		st.LastPowerEvent = "overload"
	case res.ACFailed:
		st.LastPowerEvent = "ac failed"
	}
	return st, nil
}

// BootOverride is the boot flags parameter (5) of the system boot options.
type BootOverride struct {
	// Device is the device the next boot is forced to. It is empty when the
	// BMC names a device bareflow does not use; Selector then says which.
	Device contract.BootDevice
	// Selector is the raw boot device selector (data 2, bits 5:2).
	Selector uint8
	// Mode is the firmware mode the override asks for.
	Mode contract.BootMode
	// Persistent is true when the override applies to every boot, false
	// when to the next one only.
	Persistent bool
	// Valid is the boot flags' valid bit. BMCs clear it after the boot that
	// used the override, or after 60 s without a boot unless told otherwise;
	// some never set it.
	Valid bool
}

// SetBootDevice sets the boot device override: dev for the firmware mode
// mode, for the next boot or, when persistent, every boot. BootNone removes
// the override. It sets the boot flags parameter alone, without the "set in
// progress" handshake, which some BMCs (ipmi_sim among them) reject.
// Success means the BMC took the flags; read them back with BootDevice to
// verify, knowing that some BMCs keep only the device.
func (c *Client) SetBootDevice(ctx context.Context, dev contract.BootDevice, mode contract.BootMode, persistent bool) error {
	op := fmt.Sprintf("set boot device %s (%s)", dev, mode)
	if err := dev.Validate(); err != nil {
		return fmt.Errorf("%s on %s: %w", op, c.addr, err)
	}
	if err := mode.Validate(); err != nil {
		return fmt.Errorf("%s on %s: %w", op, c.addr, err)
	}
	sel := bootSelectors[dev]
	bootType := types.BIOSBootTypeLegacy
	if mode == contract.BootModeEFI {
		bootType = types.BIOSBootTypeEFI
	}
	return c.exchange(ctx, op, types.CommandSetSystemBootOptions, func(ctx context.Context) error {
		return c.ipmi.SetBootDevice(ctx, sel, bootType, persistent)
	})
}

var bootSelectors = map[contract.BootDevice]types.BootDeviceSelector{
	contract.BootNone: types.BootDeviceSelectorNoOverride,
	contract.BootPXE:  types.BootDeviceSelectorForcePXE,
	contract.BootDisk: types.BootDeviceSelectorForceHardDrive,
}

// BootDevice reads the boot device override back from the BMC (Get System
// Boot Options, parameter 5).
func (c *Client) BootDevice(ctx context.Context) (BootOverride, error) {
	var res *chassis.GetSystemBootOptionsParamResponse
	err := c.exchange(ctx, "get boot device", types.CommandGetSystemBootOptions, func(ctx context.Context) error {
		var err error
		res, err = c.ipmi.GetSystemBootOptionsParam(ctx, types.BootOptionParamSelector_BootFlags, 0, 0)
		return err
	})
	if err != nil {
		return BootOverride{}, err
	}
	var flags types.BootOptionParam_BootFlags
	if err := flags.Unpack(res.ParamData); err != nil {
		return BootOverride{}, fmt.Errorf("get boot device %s: malformed boot flags % x: %w", c.addr, res.ParamData, err)
	}
	bo := BootOverride{
		Selector:   uint8(flags.BootDeviceSelector),
		Mode:       contract.BootModeLegacy,
		Persistent: flags.Persist,
		Valid:      flags.BootFlagsValid,
	}
	if flags.BIOSBootType == types.BIOSBootTypeEFI {
		bo.Mode = contract.BootModeEFI
	}
	for dev, sel := range bootSelectors {
		if sel == flags.BootDeviceSelector {
			bo.Device = dev
		}
	}
	return bo, nil
}

// MCInfo is the BMC's identity, from Get Device ID.
type MCInfo struct {
	DeviceID       uint8
	DeviceRevision uint8
	// FirmwareRevision is "major.minor", such as "9.08".
	FirmwareRevision string
	// IPMIVersion is the IPMI specification version, such as "2.0".
	IPMIVersion string
	// ManufacturerID is the IANA enterprise number of the maker.
	ManufacturerID uint32
	ProductID      uint16
	// Available is false while the BMC updates its firmware or initializes.
	Available bool
	// AuxFirmwareRevision is the optional vendor-specific revision, up to 4
	// bytes.
	AuxFirmwareRevision []byte
}

// MCInfo returns the BMC's identity.
func (c *Client) MCInfo(ctx context.Context) (MCInfo, error) {
	var res *app.GetDeviceIDResponse
	err := c.exchange(ctx, "get device id", types.CommandGetDeviceID, func(ctx context.Context) error {
		var err error
		res, err = c.ipmi.GetDeviceID(ctx)
		return err
	})
	if err != nil {
		return MCInfo{}, err
	}
	return MCInfo{
		DeviceID:            res.DeviceID,
		DeviceRevision:      res.DeviceRevision,
		FirmwareRevision:    fmt.Sprintf("%d.%02d", res.MajorFirmwareRevision, res.MinorFirmwareRevision),
		IPMIVersion:         fmt.Sprintf("%d.%d", res.MajorIPMIVersion, res.MinorIPMIVersion),
		ManufacturerID:      res.ManufacturerID,
		ProductID:           res.ProductID,
		Available:           res.DeviceAvailable,
		AuxFirmwareRevision: res.AuxiliaryFirmwareRevision,
	}, nil
}
