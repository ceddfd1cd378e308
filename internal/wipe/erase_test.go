package wipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Whole disks as inspectScript prints them: an NVMe namespace of 4 KiB
// sectors, a SATA SSD and a SATA HDD.
const (
	nvmeDisk = `attr size 3125627568
attr ro 0
attr removable 0
attr queue/rotational 0
attr queue/discard_max_bytes 2199023255040
attr queue/discard_granularity 4096
attr queue/logical_block_size 4096
node disk nvme0n1 259:0 - - -
`
	ssdDisk = `attr size 976773168
attr ro 0
attr removable 0
attr queue/rotational 0
attr queue/discard_max_bytes 2147450880
attr queue/discard_granularity 512
attr queue/logical_block_size 512
node disk sda 8:0 - - -
`
	hddDisk = `attr size 7814037168
attr ro 0
attr removable 0
attr queue/rotational 1
attr queue/discard_max_bytes 0
attr queue/discard_granularity 0
attr queue/logical_block_size 512
node disk sdb 8:16 - - -
`
	plainMounts = "22 1 0:21 / / rw,relatime - rootfs rootfs rw\n"
	noSwaps     = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
)

// started is what the launcher prints for a job it started.
func started(disk, requested, method, variant string) string {
	return fmt.Sprintf("started\n"+`{"disk":"%s","job":"bf01","requested":"%s","method":"%s","variant":"%s","pid":4242,"status":"running","phase":"","size":1,"offset":0,"from":0,"chunk":1048576,"param":"0","started":1700000000,"phase_started":1700000000,"updated":1700000000,"restarts":0,"error":""}`+"\n",
		disk, requested, method, variant)
}

// eraseFake is a machine with the three disks, no erase job, and the
// identify outputs of testdata.
func eraseFake(ctrl, hdparmSda string) *fakeRunner {
	f := &fakeRunner{
		outputs: map[string][]string{
			"inspect nvme0n1":          {nvmeDisk},
			"inspect sda":              {ssdDisk},
			"inspect sdb":              {hddDisk},
			"cat /proc/self/mountinfo": {plainMounts},
			"swaps":                    {noSwaps},
		},
		files: map[string]string{
			"nvme id-ns /dev/nvme0n1 -o json": "nvme-id-ns.json",
		},
	}
	if ctrl != "" {
		f.files["nvme id-ctrl /dev/nvme0n1 -o json"] = ctrl
	}
	if hdparmSda != "" {
		f.files["hdparm -I /dev/sda"] = hdparmSda
		f.files["hdparm -I /dev/sdb"] = "hdparm-I-hdd.txt"
	}
	for _, d := range []string{"nvme0n1", "sda", "sdb"} {
		f.outputs["bareflow-erase-status "+DefaultStateDir+" "+d] = []string{"none 1700000000\n"}
	}
	return f
}

// TestStartEraseChooses checks the job StartErase launches for each
// method on each disk, from replayed nvme and hdparm outputs.
func TestStartEraseChooses(t *testing.T) {
	tests := map[string]struct {
		ctrl, hdparm string
		disk         string
		opts         EraseOptions
		// method, variant, chunk and parameter of the job
		method  Method
		variant string
		chunk   int64
		param   string
		// commands that must have run
		ran []string
	}{
		"nvme format keeps the namespace's LBA format": {ctrl: "nvme-id-ctrl-format-only.json", disk: "/dev/nvme0n1",
			opts: EraseOptions{Method: MethodNVMe}, method: MethodNVMe, variant: "format", chunk: DefaultDiscardChunk, param: "1",
			ran: []string{"nvme id-ctrl /dev/nvme0n1 -o json", "nvme id-ns /dev/nvme0n1 -o json"}},
		"nvme sanitize by block erase": {ctrl: "nvme-id-ctrl-sanitize.json", disk: "/dev/nvme0n1",
			opts: EraseOptions{Method: MethodNVMe, Sanitize: true}, method: MethodNVMe, variant: "sanitize-block", chunk: DefaultDiscardChunk, param: "2"},
		"auto formats an NVMe namespace": {ctrl: "nvme-id-ctrl-sanitize.json", disk: "/dev/nvme0n1",
			opts: EraseOptions{Method: MethodAuto}, method: MethodNVMe, variant: "format", chunk: DefaultDiscardChunk, param: "1"},
		"auto discards an NVMe namespace whose controller cannot format": {ctrl: "nvme-id-ctrl-no-format.json", disk: "/dev/nvme0n1",
			opts: EraseOptions{Method: MethodAuto}, method: MethodDiscard, variant: "verify", chunk: DefaultDiscardChunk, param: "0"},
		"auto discards an SSD, then reads zeros back": {disk: "/dev/sda",
			opts: EraseOptions{Method: MethodAuto}, method: MethodDiscard, variant: "verify", chunk: DefaultDiscardChunk, param: "0"},
		"auto overwrites a hard disk": {disk: "/dev/sdb",
			opts: EraseOptions{Method: MethodAuto}, method: MethodOverwrite, variant: "zero", chunk: DefaultOverwriteChunk, param: "0"},
		"ata secure erase with the drive's estimate": {hdparm: "hdparm-I-ssd.txt", disk: "/dev/sda",
			opts: EraseOptions{Method: MethodATASecureErase}, method: MethodATASecureErase, variant: "normal", chunk: DefaultDiscardChunk, param: "2",
			ran: []string{"hdparm -I /dev/sda"}},
		"ata enhanced secure erase": {hdparm: "hdparm-I-ssd.txt", disk: "/dev/sda",
			opts: EraseOptions{Method: MethodATASecureErase, Enhanced: true}, method: MethodATASecureErase, variant: "enhanced", chunk: DefaultDiscardChunk, param: "8"},
		"ata secure erase of a hard disk, more than 508 minutes": {hdparm: "hdparm-I-ssd.txt", disk: "/dev/sdb",
			opts: EraseOptions{Method: MethodATASecureErase}, method: MethodATASecureErase, variant: "normal", chunk: DefaultDiscardChunk, param: "508"},
		"secure discard": {disk: "/dev/sda",
			opts: EraseOptions{Method: MethodDiscard, Secure: true, ChunkBytes: 256 << 20}, method: MethodDiscard, variant: "secure", chunk: 256 << 20, param: "0"},
		"write zeroes needs no discard": {disk: "/dev/sdb",
			opts: EraseOptions{Method: MethodDiscard, Zero: true}, method: MethodDiscard, variant: "zeroout", chunk: DefaultDiscardChunk, param: "0"},
		"random overwrite": {disk: "/dev/sdb",
			opts: EraseOptions{Method: MethodOverwrite, Random: true}, method: MethodOverwrite, variant: "random", chunk: DefaultOverwriteChunk, param: "0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := eraseFake(tc.ctrl, tc.hdparm)
			dname := strings.TrimPrefix(tc.disk, "/dev/")
			f.outputs["bareflow-erase-start "+DefaultStateDir+" "+dname] = []string{started(tc.disk, string(tc.opts.Method), string(tc.method), tc.variant)}
			st, err := StartErase(context.Background(), f, tc.disk, tc.opts)
			if err != nil {
				t.Fatalf("StartErase: %v (ran %q)", err, f.commands())
			}
			if st.Status != JobRunning || st.PID != 4242 {
				t.Errorf("state: got %+v, want the launcher's", st)
			}
			args := f.launched()
			if len(args) != 15 {
				t.Fatalf("job arguments: got %q, want 15", args)
			}
			size := map[string]string{"nvme0n1": "1600321314816", "sda": "500107862016", "sdb": "4000787030016"}[dname]
			want := []string{DefaultStateDir, dname, tc.disk, args[3], string(tc.opts.Method), string(tc.method), tc.variant,
				size, itoa(tc.chunk), tc.param, "0", "0", "0", "", "5"}
			if !slices.Equal(args, want) {
				t.Errorf("job arguments:\ngot  %q\nwant %q", args, want)
			}
			if !strings.HasPrefix(args[3], "bf") || len(args[3]) != 26 {
				t.Errorf("job ID %q: want bf and 24 hex digits", args[3])
			}
			for _, c := range tc.ran {
				if !slices.Contains(f.commands(), c) {
					t.Errorf("%q did not run (ran %q)", c, f.commands())
				}
			}
		})
	}
}

// TestStartEraseRefuses checks the refusals, each before any job starts.
func TestStartEraseRefuses(t *testing.T) {
	tests := map[string]struct {
		ctrl, hdparm string
		disk         string
		opts         EraseOptions
		setup        func(f *fakeRunner)
		want         error
		contains     string
	}{
		"a frozen drive": {hdparm: "hdparm-I-ssd-frozen.txt", disk: "/dev/sda", opts: EraseOptions{Method: MethodATASecureErase},
			want: ErrFrozen, contains: "/dev/sda: its security is frozen (the firmware froze it at boot); power-cycle or hot-plug the drive"},
		"a drive without the security feature set": {hdparm: "hdparm-I-no-security.txt", disk: "/dev/sda", opts: EraseOptions{Method: MethodATASecureErase},
			want: ErrUnsupported, contains: "does not support the ATA security feature set"},
		"an enhanced erase the drive lacks": {hdparm: "hdparm-I-ssd.txt", disk: "/dev/sdb", opts: EraseOptions{Method: MethodATASecureErase, Enhanced: true},
			want: ErrUnsupported, contains: "/dev/sdb does not support the enhanced security erase"},
		"hdparm cannot identify the drive": {disk: "/dev/sda", opts: EraseOptions{Method: MethodATASecureErase},
			setup: func(f *fakeRunner) {
				f.fails = map[string]string{"hdparm -I /dev/sda": "HDIO_DRIVE_CMD(identify) failed: Invalid argument"}
			},
			want: ErrUnsupported, contains: "cannot identify /dev/sda as an ATA drive"},
		"an ATA erase of an NVMe disk": {disk: "/dev/nvme0n1", opts: EraseOptions{Method: MethodATASecureErase},
			want: ErrUnsupported, contains: "is an NVMe disk, not ATA"},
		"a sanitize the controller lacks": {ctrl: "nvme-id-ctrl-format-only.json", disk: "/dev/nvme0n1", opts: EraseOptions{Method: MethodNVMe, Sanitize: true},
			want: ErrUnsupported, contains: "supports no sanitize action (SANICAP 0x0)"},
		"a format the controller lacks": {ctrl: "nvme-id-ctrl-no-format.json", disk: "/dev/nvme0n1", opts: EraseOptions{Method: MethodNVMe},
			want: ErrUnsupported, contains: "(QEMU NVMe Ctrl) does not support Format NVM (OACS 0x0)"},
		"an NVMe method on a SATA disk": {disk: "/dev/sda", opts: EraseOptions{Method: MethodNVMe},
			want: ErrUnsupported, contains: "/dev/sda is not an NVMe namespace"},
		"a discard the disk lacks": {disk: "/dev/sdb", opts: EraseOptions{Method: MethodDiscard},
			want: ErrUnsupported, contains: "/dev/sdb does not support discard"},
		"a mounted disk": {disk: "/dev/sda", opts: EraseOptions{Method: MethodOverwrite},
			setup: func(f *fakeRunner) {
				f.outputs["cat /proc/self/mountinfo"] = []string{plainMounts + "40 22 8:0 / /mnt rw - ext4 /dev/sda rw\n"}
			},
			want: ErrBusy, contains: "mounted on /mnt"},
		"a disk in an md array": {disk: "/dev/sda", opts: EraseOptions{Method: MethodOverwrite},
			setup: func(f *fakeRunner) {
				f.outputs["inspect sda"] = []string{ssdDisk + "node holder md0 9:0 sda - -\n"}
			},
			want: ErrBusy, contains: "held by md0"},
		"a read-only disk": {disk: "/dev/sda", opts: EraseOptions{Method: MethodOverwrite},
			setup: func(f *fakeRunner) {
				f.outputs["inspect sda"] = []string{strings.Replace(ssdDisk, "attr ro 0", "attr ro 1", 1)}
			},
			want: ErrBusy, contains: "read-only"},
		"an erase of another method running": {disk: "/dev/sda", opts: EraseOptions{Method: MethodDiscard},
			setup: func(f *fakeRunner) {
				f.outputs["bareflow-erase-status "+DefaultStateDir+" sda"] = []string{"alive 1700000100\n" +
					strings.SplitN(started("/dev/sda", "overwrite", "overwrite", "zero"), "\n", 2)[1]}
			},
			want: ErrBusy, contains: "an erase of /dev/sda by overwrite (zero) is running"},
		"a bad path":            {disk: "/dev/sda1;reboot", opts: EraseOptions{Method: MethodAuto}, want: ErrInvalid},
		"an unknown method":     {disk: "/dev/sda", opts: EraseOptions{Method: "shred"}, want: ErrInvalid, contains: `erase method "shred"`},
		"random with a discard": {disk: "/dev/sda", opts: EraseOptions{Method: MethodDiscard, Random: true}, want: ErrInvalid, contains: "random goes with method overwrite"},
		"sanitize with auto":    {disk: "/dev/sda", opts: EraseOptions{Method: MethodAuto, Sanitize: true}, want: ErrInvalid, contains: "sanitize goes with method nvme"},
		"secure and zero":       {disk: "/dev/sda", opts: EraseOptions{Method: MethodDiscard, Secure: true, Zero: true}, want: ErrInvalid},
		"a chunk not in MiB":    {disk: "/dev/sda", opts: EraseOptions{Method: MethodOverwrite, ChunkBytes: 1000}, want: ErrInvalid},
		"an overwrite chunk of 1 GiB": {disk: "/dev/sda", opts: EraseOptions{Method: MethodOverwrite, ChunkBytes: 1 << 30}, want: ErrInvalid,
			contains: "an overwrite takes at most 256 MiB"},
		"a state dir with ..":    {disk: "/dev/sda", opts: EraseOptions{Method: MethodOverwrite, StateDir: "/run/../etc"}, want: ErrInvalid},
		"a state dir with space": {disk: "/dev/sda", opts: EraseOptions{Method: MethodOverwrite, StateDir: "/run/a b"}, want: ErrInvalid},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := eraseFake(tc.ctrl, tc.hdparm)
			if tc.setup != nil {
				tc.setup(f)
			}
			_, err := StartErase(context.Background(), f, tc.disk, tc.opts)
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.contains) {
				t.Errorf("got %v, want %v containing %q", err, tc.want, tc.contains)
			}
			if f.launched() != nil {
				t.Errorf("a job was started: %q", f.launched())
			}
		})
	}
}

// stateLine is a state file for the status script's output.
func stateLine(status, method, variant, phase string, offset, restarts int, extra ...string) string {
	param := "0"
	if len(extra) > 0 {
		param = extra[0]
	}
	return fmt.Sprintf(`{"disk":"/dev/sda","job":"bf02","requested":"%s","method":"%s","variant":"%s","pid":777,"status":"%s","phase":"%s","size":104857600,"offset":%d,"from":0,"chunk":1048576,"param":"%s","started":1700000000,"phase_started":1700000060,"updated":1700000100,"restarts":%d,"error":"%s"}`,
		method, method, variant, status, phase, offset, param, restarts, map[bool]string{true: "writing 1048576 bytes at offset 5242880: dd: error writing '/dev/sda': Input/output error"}[status == "failed"])
}

func TestEraseStatus(t *testing.T) {
	key := "bareflow-erase-status " + DefaultStateDir + " sda"
	start := "bareflow-erase-start " + DefaultStateDir + " sda"
	t.Run("a running overwrite", func(t *testing.T) {
		f := &fakeRunner{outputs: map[string][]string{key: {"alive 1700000120\n" + stateLine("running", "overwrite", "zero", "overwrite", 26214400, 0)}}}
		st, err := EraseStatus(context.Background(), f, "/dev/sda", "")
		if err != nil || st.Status != JobRunning || st.Percent != 25 || st.BytesDone != 26214400 || !st.Alive || st.Resumed {
			t.Errorf("got %+v, %v; want running at 25%%", st, err)
		}
	})
	t.Run("an ATA erase's progress from the drive's estimate", func(t *testing.T) {
		f := &fakeRunner{outputs: map[string][]string{key: {"alive 1700000120\n" + stateLine("running", "ata-secure-erase", "normal", "erase", 0, 0, "2")}}}
		st, err := EraseStatus(context.Background(), f, "/dev/sda", "")
		if err != nil || st.Percent != 50 || st.EstimatedSeconds != 120 {
			t.Errorf("got %+v, %v; want 50%% of a 120 s estimate", st, err)
		}
		f.outputs[key] = []string{"alive 1700009999\n" + stateLine("running", "ata-secure-erase", "normal", "erase", 0, 0, "2")}
		if st, _ := EraseStatus(context.Background(), f, "/dev/sda", ""); st.Percent != 99 {
			t.Errorf("past its estimate: got %v%%, want 99", st.Percent)
		}
	})
	t.Run("a job that died is resumed where it was", func(t *testing.T) {
		f := &fakeRunner{outputs: map[string][]string{
			key:   {"dead 1700000120\n" + stateLine("running", "overwrite", "zero", "overwrite", 26214400, 1)},
			start: {"started\n" + strings.Replace(stateLine("running", "overwrite", "zero", "overwrite", 26214400, 2), `"pid":777`, `"pid":888`, 1)},
		}}
		st, err := EraseStatus(context.Background(), f, "/dev/sda", "")
		if err != nil || !st.Resumed || st.PID != 888 || st.Restarts != 2 {
			t.Fatalf("got %+v, %v; want the job resumed", st, err)
		}
		args := f.launched()
		want := []string{DefaultStateDir, "sda", "/dev/sda", args[3], "overwrite", "overwrite", "zero", "104857600", "1048576", "0", "26214400", "1700000000", "2", "overwrite", "5"}
		if !slices.Equal(args, want) {
			t.Errorf("job arguments:\ngot  %q\nwant %q", args, want)
		}
	})
	t.Run("a sanitize that died polls again without a new sanitize", func(t *testing.T) {
		f := &fakeRunner{outputs: map[string][]string{
			key:   {"dead 1700000120\n" + strings.ReplaceAll(stateLine("running", "nvme", "sanitize-block", "sanitize", 0, 0, "2"), "/dev/sda", "/dev/sda")},
			start: {"started\n" + stateLine("running", "nvme", "sanitize-block", "sanitize", 0, 1, "2")},
		}}
		if _, err := EraseStatus(context.Background(), f, "/dev/sda", ""); err != nil {
			t.Fatal(err)
		}
		if args := f.launched(); args[10] != "0" || args[13] != "sanitize" || args[9] != "2" {
			t.Errorf("job arguments: got %q, want offset 0, phase sanitize, action 2", args)
		}
	})
	t.Run("a format that died starts again", func(t *testing.T) {
		f := &fakeRunner{outputs: map[string][]string{
			key:   {"dead 1700000120\n" + stateLine("running", "nvme", "format", "format", 0, 0, "1")},
			start: {"started\n" + stateLine("running", "nvme", "format", "format", 0, 1, "1")},
		}}
		if _, err := EraseStatus(context.Background(), f, "/dev/sda", ""); err != nil {
			t.Fatal(err)
		}
		if args := f.launched(); args[13] != "" || args[9] != "1" {
			t.Errorf("job arguments: got %q, want no phase and LBA format 1", args)
		}
	})
	t.Run("a job that keeps dying is failed", func(t *testing.T) {
		f := &fakeRunner{outputs: map[string][]string{key: {"dead 1700000120\n" + stateLine("running", "overwrite", "zero", "overwrite", 0, MaxRestarts)}}}
		st, err := EraseStatus(context.Background(), f, "/dev/sda", "")
		if !errors.Is(err, ErrEraseFailed) || st.Status != JobFailed || f.launched() != nil {
			t.Errorf("got %+v, %v; want failed, no restart", st, err)
		}
	})
	t.Run("a failed job", func(t *testing.T) {
		f := &fakeRunner{outputs: map[string][]string{key: {"dead 1700000120\n" + stateLine("failed", "overwrite", "zero", "overwrite", 5242880, 0)}}}
		st, err := EraseStatus(context.Background(), f, "/dev/sda", "")
		if !errors.Is(err, ErrEraseFailed) || !strings.Contains(err.Error(), "Input/output error") || st.Status != JobFailed {
			t.Errorf("got %+v, %v; want the job's error", st, err)
		}
	})
	t.Run("no job", func(t *testing.T) {
		f := &fakeRunner{outputs: map[string][]string{key: {"none 1700000120\n"}}}
		if _, err := EraseStatus(context.Background(), f, "/dev/sda", ""); !errors.Is(err, ErrNoJob) {
			t.Errorf("got %v, want ErrNoJob", err)
		}
	})
	t.Run("a state file naming another disk is not resumed", func(t *testing.T) {
		f := &fakeRunner{outputs: map[string][]string{key: {"dead 1700000120\n" + strings.Replace(stateLine("running", "overwrite", "zero", "overwrite", 0, 0), "/dev/sda", "/dev/sdb", 1)}}}
		if _, err := EraseStatus(context.Background(), f, "/dev/sda", ""); !errors.Is(err, ErrInvalid) || f.launched() != nil {
			t.Errorf("got %v, want ErrInvalid and no restart", err)
		}
	})
	t.Run("a state file with a hostile variant is not resumed", func(t *testing.T) {
		f := &fakeRunner{outputs: map[string][]string{key: {"dead 1700000120\n" + stateLine("running", "overwrite", "zero;reboot", "overwrite", 0, 0)}}}
		if _, err := EraseStatus(context.Background(), f, "/dev/sda", ""); !errors.Is(err, ErrInvalid) || f.launched() != nil {
			t.Errorf("got %v, want ErrInvalid and no restart", err)
		}
	})
}

// TestStartEraseIdempotent checks what StartErase does with the job it
// finds.
func TestStartEraseIdempotent(t *testing.T) {
	key := "bareflow-erase-status " + DefaultStateDir + " sda"
	start := "bareflow-erase-start " + DefaultStateDir + " sda"
	opts := EraseOptions{Method: MethodOverwrite}
	t.Run("a running job of the same request is re-attached", func(t *testing.T) {
		f := eraseFake("", "")
		f.outputs[key] = []string{"alive 1700000120\n" + stateLine("running", "overwrite", "zero", "overwrite", 1048576, 0)}
		st, err := StartErase(context.Background(), f, "/dev/sda", opts)
		if err != nil || st.PID != 777 || f.launched() != nil || slices.Contains(f.commands(), "inspect sda") {
			t.Errorf("got %+v, %v (ran %q); want the running job, nothing else", st, err, f.commands())
		}
	})
	t.Run("a finished job of the same request is returned", func(t *testing.T) {
		f := eraseFake("", "")
		f.outputs[key] = []string{"dead 1700000120\n" + stateLine("done", "overwrite", "zero", "overwrite", 104857600, 0)}
		st, err := StartErase(context.Background(), f, "/dev/sda", opts)
		if err != nil || st.Status != JobDone || st.Percent != 100 || f.launched() != nil {
			t.Errorf("got %+v, %v; want the finished job", st, err)
		}
	})
	t.Run("a finished job of another request is followed by a new one", func(t *testing.T) {
		f := eraseFake("", "")
		f.outputs[key] = []string{"dead 1700000120\n" + stateLine("done", "overwrite", "random", "overwrite", 104857600, 0)}
		f.outputs[start] = []string{started("/dev/sda", "overwrite", "overwrite", "zero")}
		if _, err := StartErase(context.Background(), f, "/dev/sda", opts); err != nil {
			t.Fatal(err)
		}
		if args := f.launched(); args == nil || args[6] != "zero" || args[10] != "0" {
			t.Errorf("job arguments: got %q, want a new zero overwrite from 0", args)
		}
	})
	t.Run("a finished job of an earlier operation is followed by a new one", func(t *testing.T) {
		f := eraseFake("", "")
		f.outputs[key] = []string{"dead 1700000120\n" + stateLine("done", "overwrite", "zero", "overwrite", 104857600, 0)}
		f.outputs[start] = []string{started("/dev/sda", "overwrite", "overwrite", "zero")}
		o := opts
		o.Request = "operation-2"
		if _, err := StartErase(context.Background(), f, "/dev/sda", o); err != nil {
			t.Fatal(err)
		}
		args := f.launched()
		if args == nil || args[10] != "0" || !slices.Contains(args, requestJobID("operation-2")) {
			t.Errorf("job arguments: got %q, want a new overwrite from 0 with job ID %s", args, requestJobID("operation-2"))
		}
	})
	t.Run("a finished job of the same operation is returned", func(t *testing.T) {
		f := eraseFake("", "")
		line := strings.Replace(stateLine("done", "overwrite", "zero", "overwrite", 104857600, 0), `"job":"bf02"`,
			`"job":"`+requestJobID("operation-1")+`"`, 1)
		f.outputs[key] = []string{"dead 1700000120\n" + line}
		o := opts
		o.Request = "operation-1"
		st, err := StartErase(context.Background(), f, "/dev/sda", o)
		if err != nil || st.Status != JobDone || f.launched() != nil {
			t.Errorf("got %+v, %v; want the finished job, nothing launched", st, err)
		}
	})
	t.Run("a failed overwrite is resumed from its offset", func(t *testing.T) {
		f := eraseFake("", "")
		f.outputs[key] = []string{"dead 1700000120\n" + stateLine("failed", "overwrite", "zero", "overwrite", 5242880, 3)}
		f.outputs[start] = []string{started("/dev/sda", "overwrite", "overwrite", "zero")}
		if _, err := StartErase(context.Background(), f, "/dev/sda", opts); err != nil {
			t.Fatal(err)
		}
		if args := f.launched(); args == nil || args[10] != "5242880" || args[12] != "0" {
			t.Errorf("job arguments: got %q, want offset 5242880, restarts 0", args)
		}
	})
	t.Run("another launcher at work", func(t *testing.T) {
		f := eraseFake("", "")
		f.outputs[start] = []string{"busy\n"}
		if _, err := StartErase(context.Background(), f, "/dev/sda", opts); !errors.Is(err, ErrBusy) {
			t.Errorf("got %v, want ErrBusy", err)
		}
	})
}

func TestProbeParsers(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	s := parseHdparmSecurity(read("hdparm-I-ssd.txt"))
	if want := (ataSecurity{present: true, supported: true, enhanced: true, normalMinutes: 2, enhancedMinutes: 8}); s != want {
		t.Errorf("ssd: got %+v, want %+v", s, want)
	}
	if s := parseHdparmSecurity(read("hdparm-I-ssd-frozen.txt")); !s.frozen || !s.supported || s.enabled {
		t.Errorf("frozen ssd: got %+v", s)
	}
	if s := parseHdparmSecurity(read("hdparm-I-hdd.txt")); s.enhanced || s.normalMinutes != 508 || s.enhancedMinutes != 0 {
		t.Errorf("hdd: got %+v", s)
	}
	if s := parseHdparmSecurity(read("hdparm-I-no-security.txt")); s.present || s.supported {
		t.Errorf("no security: got %+v", s)
	}
	c, err := parseNVMeController(read("nvme-id-ctrl-sanitize.json"))
	if err != nil || !c.canFormat() || c.FNA != 4 {
		t.Errorf("sanitize controller: got %+v, %v", c, err)
	}
	if act, v := c.sanitizeAction(); act != 2 || v != "sanitize-block" {
		t.Errorf("sanitize action: got %d %s, want block erase", act, v)
	}
	if act, v := (nvmeController{SANICAP: 1}).sanitizeAction(); act != 4 || v != "sanitize-crypto" {
		t.Errorf("crypto only: got %d %s", act, v)
	}
	if act, _ := (nvmeController{SANICAP: 4}).sanitizeAction(); act != 3 {
		t.Errorf("overwrite only: got %d", act)
	}
	ns, err := parseNVMeNamespace(read("nvme-id-ns.json"))
	if err != nil || ns.lbaFormat() != 1 {
		t.Errorf("namespace: got %+v (LBA format %d), %v", ns, ns.lbaFormat(), err)
	}
	if got := (nvmeNamespace{FLBAS: 0x62, NLBAF: 63}).lbaFormat(); got != 0x32 {
		t.Errorf("LBA format of FLBAS 0x62 with 64 formats: got %#x, want 0x32", got)
	}
	if _, err := parseNVMeController([]byte("not json")); err == nil {
		t.Error("garbage parsed as id-ctrl")
	}
}
