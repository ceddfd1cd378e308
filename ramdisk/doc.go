// Package ramdisk holds bareflow's PXE ramdisk: the build script
// (build.sh, run by `make ramdisk`), the init the kernel starts (init), the
// lists of Debian packages, kernel modules and tools it carries
// (packages.txt, modules.txt, tools.txt), and the test that boots it in QEMU
// through bareflow's boot service (qemu_test.go). The package has no Go code
// of its own; docs/ramdisk.md describes the ramdisk.
package ramdisk
