//go:build linux

package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bareflow/contract"
	"bareflow/internal/lab/osimage"
	"bareflow/internal/lab/qemulab"
)

// The VM of TestQEMUInstall.
const (
	installPXEMAC  = "52:54:00:bf:03:01"
	installSerial  = "BFINST0001"
	installUUID    = "1e8f4d63-9b52-4c70-83da-456789abcdef"
	installDiskMiB = 384
	// installAddr is the static address the installed OS is given, on the
	// lab's segment outside the DHCP range.
	installAddr     = "198.51.100.77"
	installHostname = "lab-web-1"
	// installImagePort is where the test serves the image in the lab's
	// namespace.
	installImagePort = "8099"
	// installOpTimeout bounds the install from the request: the write over
	// the lab's network under TCG, the configuration, the reboot through
	// the BMC, the boot of the installed system.
	installOpTimeout = 12 * time.Minute
)

// TestQEMUInstall is the install issue end to end in the QEMU lab: a VM
// registered and left in its ramdisk gets a bootable image that the lab
// builds (bareflow's PXE kernel, a busybox system that applies
// /etc/hostname and /etc/network/interfaces and runs dropbear), streamed
// from an HTTP server in the lab's namespace; bareflow grows its root,
// writes the hostname and a static address in the Debian format, resets
// the VM through its BMC (ipmi_sim wired to QEMU), and the boot service
// answers the VM's network boot with a local boot. The installed system
// must come up: its serial console says so with the hostname and address
// it was given, and bareflow's own probe (a TCP connection to port 22 of
// that address) ends the install with the machine running.
func TestQEMUInstall(t *testing.T) {
	q := newQEMULab(t, 0, false)
	dev := q.dev
	ctx := context.Background()

	// The image: built (or taken from the cache), compressed, served in
	// the namespace with Range.
	buildStart := time.Now()
	img, err := osimage.BuildBootable(ctx, osImageCache(t), osimage.BootOptions{RamdiskDir: regRamdiskDir(t)})
	if err != nil {
		t.Fatalf("build the bootable image: %v", err)
	}
	www := t.TempDir()
	art, err := osimage.CompressZstd(ctx, img.Path, filepath.Join(www, "lab-os.raw.zst"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bootable image: %d MiB raw, %d KiB as raw.zst, root %d MiB, built or found in %.1fs",
		img.Size>>20, art.Size>>10, img.Root.Size>>20, time.Since(buildStart).Seconds())
	var ln net.Listener
	if err := qemulab.InNetns(q.lab.NS, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(regServerIP, installImagePort))
		return err
	}); err != nil {
		t.Fatalf("listen in the lab: %v", err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(www)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	var image struct {
		ID string `json:"id"`
	}
	if code := dev.call(t, "POST", "/images", dev.token, map[string]any{
		"name": "lab-os", "url": "http://" + net.JoinHostPort(regServerIP, installImagePort) + "/lab-os.raw.zst",
		"format": "raw.zst", "checksum_algo": "sha256", "checksum": art.SHA256, "virtual_size": img.Size,
		"os_family": "debian", "boot_mode": "bios",
	}, &image); code != http.StatusCreated {
		t.Fatalf("create image: got %d, want 201", code)
	}

	// Registered and left in the ramdisk, as in TestQEMUMakeRAID: starting
	// QEMU is powering the machine on.
	var m regMachine
	if code := dev.call(t, "POST", "/machines", dev.token, map[string]any{"name": "install-vm", "pxe_mac": installPXEMAC}, &m); code != http.StatusCreated {
		t.Fatalf("create machine: got %d, want 201", code)
	}
	var regOp apiOperation
	if code := dev.call(t, "POST", "/machines/"+m.ID+"/register", dev.token, map[string]any{"leave_in_ramdisk": true}, &regOp); code != http.StatusAccepted {
		t.Fatalf("register: got %d, want 202", code)
	}
	if op := dev.waitOperation(t, regOp.ID, "waiting_for_power_on", time.Minute); op.Step != "waiting_for_power_on" {
		t.Fatalf("register operation before QEMU starts: got %s at step %q (%+v)", op.State, op.Step, op.Error)
	}
	disk := filepath.Join(q.work, "disk0.img")
	qemulab.Run(t, "qemu-img", "create", "-q", "-f", "raw", disk, "384M")
	vm := q.startVM(t, labVM{pxeMAC: installPXEMAC, serial: installSerial, uuid: installUUID, devices: []string{
		"-drive", "if=none,id=d0,format=raw,file=" + disk,
		"-device", "virtio-blk-pci,drive=d0,serial=BFINSTDISK0,bootindex=2",
	}})
	waitRegistered(t, dev, vm, m.ID)

	req := map[string]any{
		"image": "lab-os",
		"os": map[string]any{
			"hostname": installHostname,
			"network": map[string]any{
				"interfaces": []map[string]any{{"name": "eth0", "addresses": []string{installAddr + "/24"}, "gateway": regServerIP}},
				"dns":        []string{regServerIP},
			},
			"ssh_authorized_keys": []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtlc3Qta2V5LWZvci1iYXJlZmxvdy10ZXN0cy0xMjM0 ops@lab"},
		},
		"ramdisk_timeout_seconds": 300,
		"os_timeout_seconds":      600,
	}
	start := time.Now()
	var op apiOperation
	if code := dev.call(t, "POST", "/machines/"+m.ID+"/install", dev.token, req, &op); code != http.StatusAccepted {
		t.Fatalf("install: got %d %+v, want 202", code, op.Error)
	}
	var (
		steps []opStep
		last  string
	)
	for deadline := start.Add(installOpTimeout); ; {
		if code := dev.call(t, "GET", "/operations/"+op.ID, dev.token, nil, &op); code != http.StatusOK {
			t.Fatalf("get operation: got %d, want 200", code)
		}
		if op.Step != last {
			last = op.Step
			steps = append(steps, opStep{op.Step, time.Since(start)})
		}
		if contract.OperationState(op.State).Final() {
			break
		}
		if !vm.Running() {
			t.Fatalf("QEMU exited during the install (step %q): %v", op.Step, vm.Err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("install %s not done %s after the request: %s at step %q (steps %s)", op.ID, installOpTimeout, op.State, op.Step, formatSteps(steps))
		}
		time.Sleep(500 * time.Millisecond)
	}
	total := time.Since(start)
	t.Logf("install: %.1fs from the request to running; steps as polled every 0.5s: %s", total.Seconds(), formatSteps(steps))
	if op.State != "succeeded" {
		t.Fatalf("install %s ended %s at step %q: %+v", op.ID, op.State, op.Step, op.Error)
	}

	t.Run("the installed system came up with its hostname and address", func(t *testing.T) {
		want := "bareflow-os-up hostname=" + installHostname + " addr=" + installAddr + "/24"
		serial, err := os.ReadFile(filepath.Join(q.work, "serial.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(serial), want) {
			t.Fatalf("serial console lacks %q; its end:\n%s", want, vm.SerialTail(40))
		}
		t.Logf("serial console: %q", want)
	})
	t.Run("the machine is running the image", func(t *testing.T) {
		var got struct {
			State string `json:"state"`
			OS    *struct {
				Image    string `json:"image"`
				RootDisk string `json:"root_disk"`
				Hostname string `json:"hostname"`
				Address  string `json:"address"`
			} `json:"os"`
		}
		if code := dev.call(t, "GET", "/machines/"+m.ID, dev.token, nil, &got); code != http.StatusOK {
			t.Fatalf("get machine: got %d", code)
		}
		if got.State != "running" || got.OS == nil || got.OS.Image != image.ID || got.OS.Hostname != installHostname ||
			got.OS.Address != net.JoinHostPort(installAddr, "22") {
			t.Errorf("machine: got state %q, os %+v; want running with image %s at %s:22", got.State, got.OS, image.ID, installAddr)
		}
	})
}

// osImageCache is where the lab's OS images are kept between runs.
func osImageCache(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../build/osimage")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
