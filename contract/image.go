package contract

// ImageFormat is how an OS image is stored at its source.
type ImageFormat string

// Image formats.
const (
	ImageRaw     ImageFormat = "raw"
	ImageQCOW2   ImageFormat = "qcow2"
	ImageRawGzip ImageFormat = "raw.gz"
	ImageRawXz   ImageFormat = "raw.xz"
	ImageRawZstd ImageFormat = "raw.zst"
)

// ImageFormats lists every image format.
var ImageFormats = []ImageFormat{ImageRaw, ImageQCOW2, ImageRawGzip, ImageRawXz, ImageRawZstd}

// Validate reports whether f is a known format.
func (f ImageFormat) Validate() error {
	return oneOf(f, ImageFormats, "image format", "raw, qcow2, raw.gz, raw.xz or raw.zst")
}

// OSFamily says how an installed OS is configured.
type OSFamily string

// OS families.
const (
	OSDebian  OSFamily = "debian"
	OSUbuntu  OSFamily = "ubuntu"
	OSRHEL    OSFamily = "rhel"
	OSSUSE    OSFamily = "suse"
	OSGeneric OSFamily = "generic"
)

// OSFamilies lists every OS family.
var OSFamilies = []OSFamily{OSDebian, OSUbuntu, OSRHEL, OSSUSE, OSGeneric}

// Validate reports whether f is a known family.
func (f OSFamily) Validate() error {
	return oneOf(f, OSFamilies, "OS family", "debian, ubuntu, rhel, suse or generic")
}

// ImageBootMode is the firmware an image boots with.
type ImageBootMode string

// Image boot modes.
const (
	ImageBootBIOS ImageBootMode = "bios"
	ImageBootUEFI ImageBootMode = "uefi"
	ImageBootBoth ImageBootMode = "both"
)

// Validate reports whether m is a known boot mode.
func (m ImageBootMode) Validate() error {
	return oneOf(m, []ImageBootMode{ImageBootBIOS, ImageBootUEFI, ImageBootBoth}, "image boot mode", "bios, uefi or both")
}
