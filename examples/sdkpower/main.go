// Command sdkpower starts a bareflow power workflow from another Go program,
// with the Temporal SDK and package contract alone: no bareflow API, no
// bareflow code beyond the contract.
//
//	go run ./examples/sdkpower -machine 6f1c1f7e-… -action cycle
//
// It uses the machine's workflow ID, so it is refused while another
// operation runs on the machine, exactly like the API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
)

func main() {
	addr := flag.String("address", envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend")
	ns := flag.String("namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace")
	machine := flag.String("machine", "", "machine ID (see `bareflow machine list`)")
	action := flag.String("action", "on", "on, off, hard_off, reset or cycle")
	flag.Parse()
	if err := run(*addr, *ns, *machine, contract.PowerAction(*action)); err != nil {
		log.Fatal(err)
	}
}

func run(addr, ns, machineID string, action contract.PowerAction) error {
	if machineID == "" {
		return errors.New("-machine is required")
	}
	if err := action.Validate(); err != nil {
		return err
	}
	c, err := client.Dial(client.Options{HostPort: addr, Namespace: ns})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       contract.MachineWorkflowID(machineID),
		TaskQueue:                contract.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without this the SDK answers with the running workflow instead
		// of the conflict.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, contract.WorkflowPower, contract.PowerInput{MachineID: machineID, Action: action, RequestedBy: "sdkpower"})
	var busy *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &busy) {
		return fmt.Errorf("machine %s is busy with another operation", machineID)
	}
	if err != nil {
		return err
	}
	fmt.Printf("started %s run %s\n", run.GetID(), run.GetRunID())
	var res contract.PowerResult
	if err := run.Get(ctx, &res); err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			return fmt.Errorf("power %s failed: %s: %s", action, appErr.Type(), appErr.Message())
		}
		return err
	}
	fmt.Printf("machine %s is %s (hard off: %t)\n", res.MachineID, res.PowerState, res.HardOff)
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
