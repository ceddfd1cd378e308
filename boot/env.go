package boot

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Environment variables read by ConfigFromEnv. Each sets the Config field of
// the same name; unset or empty leaves the default.
//
//	variable                          field             example
//	BAREFLOW_BOOT_INTERFACES          Interfaces        eth1,eth2
//	BAREFLOW_BOOT_RELAY_ADDR          RelayAddr         0.0.0.0:67
//	BAREFLOW_BOOT_SERVER_ADDR         ServerAddr        203.0.113.5
//	BAREFLOW_BOOT_TFTP_ADDR           TFTPAddr          :69
//	BAREFLOW_BOOT_TFTP_ROOT           TFTPRoot          /srv/tftp
//	BAREFLOW_BOOT_HTTP_ADDR           HTTPAddr          0.0.0.0:8081
//	BAREFLOW_BOOT_PUBLIC_URL          PublicURL         http://203.0.113.5:8081
//	BAREFLOW_BOOT_IPXE_DIR            IPXEDir           /usr/lib/ipxe
//	BAREFLOW_BOOT_UEFI_BOOT_FILE      UEFIBootFile      snponly.efi
//	BAREFLOW_BOOT_ARM64_BOOT_FILE     ARM64BootFile     ipxe-arm64.efi
//	BAREFLOW_BOOT_RAMDISK_DIR         RamdiskDir        /var/lib/bareflow/ramdisk
//	BAREFLOW_BOOT_KERNEL_ARGS         KernelArgs        console=ttyS0,115200
//	BAREFLOW_BOOT_SSH_AUTHORIZED_KEY  SSHAuthorizedKey  ssh-ed25519 AAAA… bareflow
//	BAREFLOW_BOOT_AUTO_REGISTER       AutoRegister      true
//	BAREFLOW_BOOT_IMAGE_CACHE_DIR     ImageCacheDir     /var/cache/bareflow/images
//	BAREFLOW_BOOT_IMAGE_CACHE_GIB     ImageCacheMaxBytes  200
const (
	EnvInterfaces       = "BAREFLOW_BOOT_INTERFACES"
	EnvRelayAddr        = "BAREFLOW_BOOT_RELAY_ADDR"
	EnvServerAddr       = "BAREFLOW_BOOT_SERVER_ADDR"
	EnvTFTPAddr         = "BAREFLOW_BOOT_TFTP_ADDR"
	EnvTFTPRoot         = "BAREFLOW_BOOT_TFTP_ROOT"
	EnvHTTPAddr         = "BAREFLOW_BOOT_HTTP_ADDR"
	EnvPublicURL        = "BAREFLOW_BOOT_PUBLIC_URL"
	EnvIPXEDir          = "BAREFLOW_BOOT_IPXE_DIR"
	EnvUEFIBootFile     = "BAREFLOW_BOOT_UEFI_BOOT_FILE"
	EnvARM64BootFile    = "BAREFLOW_BOOT_ARM64_BOOT_FILE"
	EnvRamdiskDir       = "BAREFLOW_BOOT_RAMDISK_DIR"
	EnvKernelArgs       = "BAREFLOW_BOOT_KERNEL_ARGS"
	EnvSSHAuthorizedKey = "BAREFLOW_BOOT_SSH_AUTHORIZED_KEY"
	EnvAutoRegister     = "BAREFLOW_BOOT_AUTO_REGISTER"
	EnvImageCacheDir    = "BAREFLOW_BOOT_IMAGE_CACHE_DIR"
	EnvImageCacheGiB    = "BAREFLOW_BOOT_IMAGE_CACHE_GIB"
)

// ConfigFromEnv reads a Config from the environment through getenv (os.Getenv
// in main) and validates it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{EnvRelayAddr, &c.RelayAddr}, {EnvServerAddr, &c.ServerAddr}, {EnvTFTPAddr, &c.TFTPAddr},
		{EnvTFTPRoot, &c.TFTPRoot}, {EnvHTTPAddr, &c.HTTPAddr}, {EnvPublicURL, &c.PublicURL},
		{EnvIPXEDir, &c.IPXEDir}, {EnvUEFIBootFile, &c.UEFIBootFile}, {EnvARM64BootFile, &c.ARM64BootFile},
		{EnvRamdiskDir, &c.RamdiskDir}, {EnvKernelArgs, &c.KernelArgs}, {EnvSSHAuthorizedKey, &c.SSHAuthorizedKey},
		{EnvImageCacheDir, &c.ImageCacheDir},
	} {
		*f.dst = strings.TrimSpace(getenv(f.name))
	}
	var errs []error
	if v := strings.TrimSpace(getenv(EnvInterfaces)); v != "" {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				c.Interfaces = append(c.Interfaces, name)
			}
		}
	}
	if v := strings.TrimSpace(getenv(EnvAutoRegister)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", EnvAutoRegister, v))
		}
		c.AutoRegister = b
	}
	if v := strings.TrimSpace(getenv(EnvImageCacheGiB)); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1<<20 {
			errs = append(errs, fmt.Errorf("%s=%q: want a number of GiB", EnvImageCacheGiB, v))
		}
		c.ImageCacheMaxBytes = n << 30
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}
