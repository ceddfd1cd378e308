// Package workflows holds bareflow's durable operations: deterministic
// orchestration only. Workflows do no I/O, read no clock but the workflow's,
// start no goroutines and iterate no maps for output; every effect on the
// world is an activity from package activities, referenced through nil
// struct-pointer method values.
//
// Every mutating operation on a machine runs on the machine's workflow ID
// (contract.MachineWorkflowID), so two never run at once. Each one keeps an
// operation record that the API reads:
//
//	          StartOperation
//	pending ─────────────────► running ──(steps: RecordStep)──┐
//	                              │                           │
//	                              │ cancel                    ▼
//	                              ▼                     FinishOperation
//	                          canceled          succeeded │ failed (code, message)
//
// The finish is written in a disconnected context, so a canceled operation
// still says so. A failure's stable code (contract.Err*) becomes the
// machine's last error; a success clears it.
//
// Power, for example, acts and then verifies:
//
//	on:     SetPower(on) → WaitPowerState(on)
//	off:    SetPower(soft_off) → WaitPowerState(off, grace) ─ not off ─► SetPower(hard_off) → WaitPowerState(off)
//	cycle:  SetPower(hard_off) → WaitPowerState(off) → timer(cycle delay) → SetPower(on) → WaitPowerState(on)
//	reset:  SetPower(reset) → WaitPowerState(on)
package workflows
