//go:build linux

package wipe

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeTools writes fake nvme and hdparm programs into a directory: each
// logs its arguments to calls.log, answers hdparm -I with identify, nvme
// sanitize-log with the files of sanitizeLogs in turn (the last repeats),
// and fails "hdparm --security-erase…" when failErase is set.
func fakeTools(t *testing.T, identify string, sanitizeLogs []string, failErase bool) (dir string, calls func() []string) {
	t.Helper()
	dir = t.TempDir()
	abs := func(name string) string {
		p, err := filepath.Abs(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	var logs []string
	for _, l := range sanitizeLogs {
		logs = append(logs, abs(l))
	}
	logCall := fmt.Sprintf(`echo "${0##*/} $*" >>%q`, filepath.Join(dir, "calls.log"))
	nvme := "#!/bin/sh\n" + logCall + `
case $1 in
sanitize-log)
	n=0; [ -f "$FAKE/count" ] && read -r n <"$FAKE/count"
	n=$((n + 1)); echo "$n" >"$FAKE/count"
	set -- ` + strings.Join(logs, " ") + `
	while [ "$n" -gt 1 ] && [ "$#" -gt 1 ]; do shift; n=$((n - 1)); done
	cat "$1" ;;
format) echo "Success formatting namespace:1" ;;
sanitize) ;;
*) exit 1 ;;
esac
`
	fail := "false"
	if failErase {
		fail = "true"
	}
	hdparm := "#!/bin/sh\n" + logCall + `
case "$*" in
"-I "*) [ -n "$ID" ] && cat "$ID" ;;
*--security-erase*) if ` + fail + `; then echo "SECURITY_ERASE: Input/output error" >&2; exit 5; fi; sleep 1 ;;
esac
`
	id := ""
	if identify != "" {
		id = abs(identify)
	}
	nvme = strings.ReplaceAll(nvme, `"$FAKE`, `"`+dir)
	hdparm = strings.ReplaceAll(hdparm, `"$ID"`, fmt.Sprintf("%q", id))
	for name, body := range map[string]string{"nvme": nvme, "hdparm": hdparm} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, func() []string {
		b, _ := os.ReadFile(filepath.Join(dir, "calls.log"))
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
}

// runJob launches the real job script with the fake tools first on PATH
// and waits for it to end.
func runJob(t *testing.T, tools string, a jobArgs) EraseState {
	t.Helper()
	if _, err := exec.LookPath("setsid"); err != nil {
		skipOrFail(t, "setsid not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := shRunner{path: tools + ":" + os.Getenv("PATH")}
	a.dir = filepath.Join(t.TempDir(), "erase")
	stopJobs(t, a.dir, a.name)
	how, _, err := launch(ctx, r, a)
	if err != nil || how != "started" {
		t.Fatalf("launch: %s, %v", how, err)
	}
	for {
		j, err := readJob(ctx, r, a.dir, a.name)
		if err != nil {
			t.Fatal(err)
		}
		if j.file.Status != string(JobRunning) {
			return j.state()
		}
		if !j.alive {
			t.Fatalf("the job died: %+v", j.file)
		}
		if ctx.Err() != nil {
			t.Fatalf("the job did not end: %+v", j.file)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestJobScript runs the detached job for the methods that need hardware,
// with fake nvme and hdparm programs replaying testdata: it checks the
// commands the job issues and how it ends.
func TestJobScript(t *testing.T) {
	defer func(p int) { sanitizePoll = p }(sanitizePoll)
	sanitizePoll = 0
	nvme := func(variant, param, phase string) jobArgs {
		return jobArgs{name: "nvme0n1", requested: MethodNVMe, method: MethodNVMe, variant: variant, size: 1600321314816,
			chunk: DefaultDiscardChunk, param: param, phase: phase}
	}
	ata := func(variant, minutes string) jobArgs {
		return jobArgs{name: "sda", requested: MethodATASecureErase, method: MethodATASecureErase, variant: variant, size: 500107862016,
			chunk: DefaultDiscardChunk, param: minutes}
	}
	tests := map[string]struct {
		identify  string
		logs      []string
		failErase bool
		args      jobArgs
		status    JobStatus
		calls     []string
		errorHas  string
	}{
		"nvme format": {args: nvme("format", "1", ""), status: JobDone,
			calls: []string{"nvme format /dev/nvme0n1 --ses=1 --lbaf=1 --force --timeout=14400000"}},
		"nvme sanitize polled to the end": {args: nvme("sanitize-block", "2", ""), status: JobDone,
			logs: []string{"nvme-sanitize-log-in-progress.json", "nvme-sanitize-log-in-progress.json", "nvme-sanitize-log-completed.json"},
			calls: []string{"nvme sanitize /dev/nvme0n1 --sanact=2", "nvme sanitize-log /dev/nvme0n1 -o json",
				"nvme sanitize-log /dev/nvme0n1 -o json", "nvme sanitize-log /dev/nvme0n1 -o json"}},
		"nvme sanitize by overwrite in one pass": {args: nvme("sanitize-overwrite", "3", ""), status: JobDone,
			logs:  []string{"nvme-sanitize-log-completed.json"},
			calls: []string{"nvme sanitize /dev/nvme0n1 --sanact=3 --owpass=1", "nvme sanitize-log /dev/nvme0n1 -o json"}},
		"a restarted sanitize is not issued again": {args: nvme("sanitize-block", "2", "sanitize"), status: JobDone,
			logs:  []string{"nvme-sanitize-log-completed.json"},
			calls: []string{"nvme sanitize-log /dev/nvme0n1 -o json"}},
		"a failed sanitize": {args: nvme("sanitize-crypto", "4", ""), status: JobFailed,
			logs:     []string{"nvme-sanitize-log-failed.json"},
			calls:    []string{"nvme sanitize /dev/nvme0n1 --sanact=4", "nvme sanitize-log /dev/nvme0n1 -o json"},
			errorHas: "the controller reports the sanitize failed"},
		"ata secure erase": {identify: "hdparm-I-ssd.txt", args: ata("normal", "2"), status: JobDone,
			calls: []string{"hdparm -I /dev/sda", "hdparm --user-master u --security-set-pass bareflow /dev/sda",
				"hdparm --user-master u --security-erase bareflow /dev/sda"}},
		"ata enhanced erase": {identify: "hdparm-I-ssd.txt", args: ata("enhanced", "8"), status: JobDone,
			calls: []string{"hdparm -I /dev/sda", "hdparm --user-master u --security-set-pass bareflow /dev/sda",
				"hdparm --user-master u --security-erase-enhanced bareflow /dev/sda"}},
		"a drive frozen since the check": {identify: "hdparm-I-ssd-frozen.txt", args: ata("normal", "2"), status: JobFailed,
			calls: []string{"hdparm -I /dev/sda"}, errorHas: "the drive's ATA security is frozen"},
		"a failed erase drops the password": {identify: "hdparm-I-ssd.txt", args: ata("normal", "2"), status: JobFailed, failErase: true,
			calls: []string{"hdparm -I /dev/sda", "hdparm --user-master u --security-set-pass bareflow /dev/sda",
				"hdparm --user-master u --security-erase bareflow /dev/sda", "hdparm --user-master u --security-disable bareflow /dev/sda"},
			errorHas: "hdparm --security-erase: SECURITY_ERASE: Input/output error"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tools, calls := fakeTools(t, tc.identify, tc.logs, tc.failErase)
			st := runJob(t, tools, tc.args)
			if st.Status != tc.status || !strings.Contains(st.Error, tc.errorHas) {
				t.Errorf("end: got %s %q, want %s with %q", st.Status, st.Error, tc.status, tc.errorHas)
			}
			if got := calls(); !slices.Equal(got, tc.calls) {
				t.Errorf("calls:\ngot  %q\nwant %q", got, tc.calls)
			}
			if tc.status == JobDone && (st.Percent != 100 || st.BytesDone != tc.args.size) {
				t.Errorf("done: got %v%%, %d bytes; want 100%%, %d", st.Percent, st.BytesDone, tc.args.size)
			}
		})
	}
}
