//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bareflow/contract"
	"bareflow/internal/lab/osimage"
	"bareflow/internal/lab/qemulab"
)

// The VM of TestQEMUHost.
const (
	hostPXEMAC   = "52:54:00:bf:04:01"
	hostSerial   = "BFHOST0001"
	hostUUID     = "2e8f4d63-9b52-4c70-83da-456789abcdef"
	hostDiskSize = "512M"
	hostRootSize = 128 << 20
	hostAddr     = "198.51.100.78"
	hostName     = "lab-hv-1"
	hostImgPort  = "8098"
	hostAgent    = 8600
	hostWS       = "/opt/workspace"
	// hostOpTimeout bounds the conversion and the undo, each.
	hostOpTimeout = 15 * time.Minute
)

// TestQEMUHost converts a lab VM into a hypervisor host and back. The
// conversion is TestQEMUInstall's install with the host layout (a root of
// 128 MiB, the rest of the 512 MiB disk an ext4 workspace at
// /opt/workspace) and host.conf: the lab image's init starts its host agent
// (busybox httpd on port 8600) when host.conf exists and says so on the
// serial console; bareflow probes the port and records the host with its
// capacity. The undo is refused while the host has guests; with none, it
// resets the VM into the ramdisk through the BMC (ipmi_sim's hard reset:
// the VM network-boots first and the boot service, with the wipe's boot
// intent set, answers with the ramdisk), wipes the disk and powers the VM
// off (QEMU exits), and the machine is ready with a blank disk: its first
// MiB is zeros and neither wipefs nor blkid -p finds a signature in the
// image file. No one plays the operator: the BMC does every power change.
func TestQEMUHost(t *testing.T) {
	q := newQEMULab(t, 0, false)
	dev := q.dev
	ctx := context.Background()

	img, err := osimage.BuildBootable(ctx, osImageCache(t), osimage.BootOptions{RamdiskDir: regRamdiskDir(t)})
	if err != nil {
		t.Fatalf("build the bootable image: %v", err)
	}
	www := t.TempDir()
	art, err := osimage.CompressZstd(ctx, img.Path, filepath.Join(www, "lab-os.raw.zst"))
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := qemulab.InNetns(q.lab.NS, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(regServerIP, hostImgPort))
		return err
	}); err != nil {
		t.Fatalf("listen in the lab: %v", err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(www)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if code := dev.call(t, "POST", "/images", dev.token, map[string]any{
		"name": "lab-os", "url": "http://" + net.JoinHostPort(regServerIP, hostImgPort) + "/lab-os.raw.zst",
		"format": "raw.zst", "checksum_algo": "sha256", "checksum": art.SHA256, "virtual_size": img.Size,
		"os_family": "debian", "boot_mode": "bios",
	}, nil); code != http.StatusCreated {
		t.Fatalf("create image: got %d, want 201", code)
	}

	var m regMachine
	if code := dev.call(t, "POST", "/machines", dev.token, map[string]any{"name": "hv-vm", "pxe_mac": hostPXEMAC}, &m); code != http.StatusCreated {
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
	qemulab.Run(t, "qemu-img", "create", "-q", "-f", "raw", disk, hostDiskSize)
	vm := q.startVM(t, labVM{pxeMAC: hostPXEMAC, serial: hostSerial, uuid: hostUUID, devices: []string{
		"-drive", "if=none,id=d0,format=raw,file=" + disk,
		"-device", "virtio-blk-pci,drive=d0,serial=BFHOSTDISK0,bootindex=2",
	}})
	waitRegistered(t, dev, vm, m.ID)

	req := map[string]any{
		"image":           "lab-os",
		"root_size_bytes": hostRootSize,
		"os": map[string]any{
			"hostname": hostName,
			"network": map[string]any{
				"interfaces": []map[string]any{{"name": "eth0", "addresses": []string{hostAddr + "/24"}, "gateway": regServerIP}},
				"dns":        []string{regServerIP},
			},
		},
		"host": map[string]any{
			"controller_url": "http://" + regServerIP + ":9000", "agent_port": hostAgent,
			"workspace_path": hostWS, "workspace_fs": "ext4",
		},
		"ramdisk_timeout_seconds": 300,
		"os_timeout_seconds":      600,
		"agent_timeout_seconds":   300,
	}
	start := time.Now()
	var op apiOperation
	if code := dev.call(t, "POST", "/machines/"+m.ID+"/convert-to-host", dev.token, req, &op); code != http.StatusAccepted {
		t.Fatalf("convert-to-host: got %d %+v, want 202", code, op.Error)
	}
	op = pollHostOperation(t, dev, vm, op.ID, "convert", hostOpTimeout, true)
	if op.State != "succeeded" {
		t.Fatalf("convert %s ended %s at step %q: %+v", op.ID, op.State, op.Step, op.Error)
	}
	t.Logf("convert: %.1fs from the request to a recorded host", time.Since(start).Seconds())

	t.Run("the host agent came up", func(t *testing.T) {
		want := "bareflow-host-agent up port=8600 machine=" + m.ID
		serial, err := os.ReadFile(filepath.Join(q.work, "serial.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(serial), want) {
			t.Fatalf("serial console lacks %q; its end:\n%s", want, vm.SerialTail(40))
		}
		for _, l := range strings.Split(string(serial), "\n") {
			if strings.Contains(l, "bareflow-host-agent") || strings.Contains(l, "bareflow-os-up") {
				t.Logf("serial console: %q", strings.TrimSpace(l))
			}
		}
		resp, err := qemulab.HTTPClient(q.lab.NS).Get("http://" + net.JoinHostPort(hostAddr, "8600") + "/status")
		if err != nil {
			t.Fatalf("agent status: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), m.ID) {
			t.Errorf("agent status: got %d %q, want 200 with the machine ID", resp.StatusCode, body)
		}
		t.Logf("agent status: %s", bytes.TrimSpace(body))
	})

	type hostView struct {
		AgentURL      string `json:"agent_url"`
		CPUs          int    `json:"cpus"`
		MemoryBytes   int64  `json:"memory_bytes"`
		StorageBytes  int64  `json:"storage_bytes"`
		WorkspacePath string `json:"workspace_path"`
		Guests        int    `json:"guests"`
	}
	t.Run("the machine is a host with its capacity", func(t *testing.T) {
		var got struct {
			State string    `json:"state"`
			Host  *hostView `json:"host"`
		}
		if code := dev.call(t, "GET", "/machines/"+m.ID, dev.token, nil, &got); code != http.StatusOK {
			t.Fatalf("get machine: got %d", code)
		}
		h := got.Host
		if got.State != "running" || h == nil {
			t.Fatalf("machine: got state %q, host %+v; want running, a host", got.State, h)
		}
		t.Logf("host: %+v", *h)
		// The workspace: the 512 MiB disk less the image's partitions
		// before root, the 128 MiB root and the GPT's room.
		if h.CPUs != regSMP || h.MemoryBytes < 900<<20 || h.MemoryBytes > 1100<<20 ||
			h.StorageBytes < 256<<20 || h.StorageBytes > 384<<20 || h.WorkspacePath != hostWS ||
			h.AgentURL != "http://"+hostAddr+":8600" {
			t.Errorf("host: got %+v; want %d CPUs, about 1 GiB, a workspace of 256–384 MiB at %s, agent at %s:8600",
				*h, regSMP, hostWS, hostAddr)
		}
		var list struct {
			Items []hostView `json:"items"`
		}
		if code := dev.call(t, "GET", "/hosts", dev.token, nil, &list); code != http.StatusOK || len(list.Items) != 1 {
			t.Errorf("hosts: got %d %+v, want the one host", code, list.Items)
		}
	})

	// Guests block the undo.
	if code := dev.call(t, "PATCH", "/hosts/"+m.ID, dev.token, map[string]any{"guests": 1}, nil); code != http.StatusOK {
		t.Fatalf("set guests: got %d, want 200", code)
	}
	var e apiErr
	if code := dev.call(t, "POST", "/machines/"+m.ID+"/undo-host", dev.token, map[string]any{"confirm": "hv-vm"}, &e); code != http.StatusConflict {
		t.Fatalf("undo with a guest: got %d %+v, want 409", code, e.Error)
	}
	if code := dev.call(t, "PATCH", "/hosts/"+m.ID, dev.token, map[string]any{"guests": 0}, nil); code != http.StatusOK {
		t.Fatalf("clear guests: got %d, want 200", code)
	}

	start = time.Now()
	if code := dev.call(t, "POST", "/machines/"+m.ID+"/undo-host", dev.token, map[string]any{"confirm": "hv-vm", "ramdisk_timeout_seconds": 300}, &op); code != http.StatusAccepted {
		t.Fatalf("undo-host: got %d %+v, want 202", code, op.Error)
	}
	// The undo ends with the VM powered off: QEMU exits.
	op = pollHostOperation(t, dev, vm, op.ID, "undo", hostOpTimeout, false)
	if op.State != "succeeded" {
		t.Fatalf("undo %s ended %s at step %q: %+v", op.ID, op.State, op.Step, op.Error)
	}
	t.Logf("undo: %.1fs from the request to ready", time.Since(start).Seconds())
	var got struct {
		State string    `json:"state"`
		Host  *hostView `json:"host"`
	}
	if code := dev.call(t, "GET", "/machines/"+m.ID, dev.token, nil, &got); code != http.StatusOK || got.State != "ready" || got.Host != nil {
		t.Errorf("machine after the undo: got %d state %q host %+v, want ready and no host", code, got.State, got.Host)
	}
	for deadline := time.Now().Add(time.Minute); vm.Running() && time.Now().Before(deadline); {
		time.Sleep(time.Second)
	}
	t.Run("the disk is blank", func(t *testing.T) {
		f, err := os.Open(disk)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(f, head); err != nil {
			t.Fatal(err)
		}
		if i := bytes.IndexFunc(head, func(r rune) bool { return r != 0 }); i >= 0 {
			t.Errorf("the disk's first MiB is not blank: a non-zero byte at %d", i)
		}
		if out, err := exec.Command("wipefs", "--no-act", disk).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("wipefs on the disk image: %v, %q; want no signature", err, out)
		}
		out, err := exec.Command("blkid", "-p", disk).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("blkid -p on the disk image: %v, %q; want exit 2 (nothing found)", err, out)
		}
	})
}

// pollHostOperation polls the operation until it ends, logging its steps;
// vmMustRun fails the test when QEMU exits meanwhile.
func pollHostOperation(t *testing.T, dev *devProcess, vm *qemulab.QEMU, id, what string, timeout time.Duration, vmMustRun bool) apiOperation {
	t.Helper()
	start := time.Now()
	var (
		op    apiOperation
		steps []opStep
		last  string
	)
	for deadline := start.Add(timeout); ; {
		if code := dev.call(t, "GET", "/operations/"+id, dev.token, nil, &op); code != http.StatusOK {
			t.Fatalf("get operation: got %d, want 200", code)
		}
		if op.Step != last {
			last = op.Step
			steps = append(steps, opStep{op.Step, time.Since(start)})
		}
		if contract.OperationState(op.State).Final() {
			break
		}
		if vmMustRun && !vm.Running() {
			t.Fatalf("QEMU exited during the %s (step %q): %v", what, op.Step, vm.Err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s not done %s after the request: %s at step %q (steps %s)", what, id, timeout, op.State, op.Step, formatSteps(steps))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("%s: steps as polled every 0.5s: %s", what, formatSteps(steps))
	return op
}
