//go:build linux

// Command vmpower is the hardware of a lab machine behind its simulated BMC:
// ipmi_sim's chassis-control script (ipmisim.Options.Machine, through a
// one-line wrapper that adds the folder) runs
//
//	vmpower MACHINE-DIR status | power 0|1 | reset 1 | boot DEVICE | shutdown 1
//
// and it starts, stops and resets the machine's QEMU as qemulab.PowerHook
// describes.
package main

import (
	"fmt"
	"os"

	"bareflow/internal/lab/qemulab"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: vmpower MACHINE-DIR status | NAME VALUE")
		os.Exit(2)
	}
	if err := qemulab.PowerHook(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "vmpower:", err)
		os.Exit(1)
	}
}
