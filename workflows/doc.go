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
//
// Register onboards a machine; the machine's state moves discovered or
// enrolled → registering → ready (error on failure):
//
//	PrepareRamdisk (state registering, ramdisk boot intent)
//	  │ has a BMC, not booting already: SetBootDevice(pxe) → SetPower(hard_off) → wait off → SetPower(on) → wait on
//	  ▼ no BMC: waiting_for_power_on (someone powers it on)
//	wait for the ramdisk ── signal ramdisk-ready ────────────┐
//	    │                 └─ AwaitRamdisk (record + SSH port) ┤  first of the two wins;
//	    └─ timer (RamdiskTimeout) ─► RamdiskTimeout           │  the other is canceled
//	                                                          ▼
//	CollectInventory (SSH, heartbeats) → SaveInventory (DuplicateMachine when the system UUID is known)
//	  │ BMC kept (created with credentials): PowerState with them
//	  ▼ otherwise: ConfigureBMC (in-band ipmitool; password kept pending)
//	VerifyBMC (out-of-band, new credentials, retried for BMC.VerifyWithin) → CommitBMC
//	  │ not LeaveInRamdisk: SetPower(hard_off) → wait off (or PowerOffRamdisk without a BMC)
//	  ▼
//	FinishRamdisk (disconnected: boot intent cleared, pending credentials dropped, state ready | error)
package workflows
