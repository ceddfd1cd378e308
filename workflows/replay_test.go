package workflows

import (
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"bareflow/contract"
)

// TestReplayCommittedHistories replays the histories of real runs, recorded
// by the integration tests of cmd/bareflow (go test ./cmd/bareflow -run
// TestDevPowerThroughAPI -update-histories), against today's workflow code.
// A change to the command sequence of a live workflow type that is not
// guarded by workflow.GetVersion fails here: running workflows would break.
func TestReplayCommittedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("histories: got %d files, want at least 4", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Power, workflow.RegisterOptions{Name: contract.WorkflowPower})
			r.RegisterWorkflowWithOptions(SetBootDevice, workflow.RegisterOptions{Name: contract.WorkflowSetBootDevice})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: got %v, want nil", f, err)
			}
		})
	}
}

// TestReplayDetectsChangedSequence checks that the replay test can fail: a
// Power workflow whose steps come in another order does not replay the
// recorded cycle.
func TestReplayDetectsChangedSequence(t *testing.T) {
	f := filepath.Join("testdata", "histories", "power_cycle.json")
	if _, err := os.Stat(f); err != nil {
		t.Fatal(err)
	}
	changed := func(ctx workflow.Context, in contract.PowerInput) (contract.PowerResult, error) {
		// The same workflow without its pause between off and on.
		in.Action = contract.PowerActionOn
		return Power(ctx, in)
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: contract.WorkflowPower})
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err == nil {
		t.Fatal("replay of a changed command sequence: got nil, want a nondeterminism error")
	}
}
