// Package activities holds bareflow's Temporal activities: the only place
// where a workflow's decisions touch the world.
//
// Each activity is a method of a struct whose fields are small interfaces
// (a BMC connector, a record keeper); the adapters that implement them with
// go-ipmi and PostgreSQL are wired in by package workers. The package itself
// imports no I/O library, so workflows can reference activities through nil
// struct-pointer method values without pulling drivers into their build.
//
// Every activity's comment says how it is idempotent and whether it
// heartbeats. Permanent failures are non-retryable application errors whose
// type is one of the stable contract.Err* strings; transient ones stay
// retryable and the calling workflow's retry policy decides.
package activities
