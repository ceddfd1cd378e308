package boot

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"bareflow/contract"
)

// WorkflowSignaler is the part of the Temporal client the boot service uses.
// client.Client implements it.
type WorkflowSignaler interface {
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
	SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
}

// signalTimeout bounds one call to Temporal from the event queue.
const signalTimeout = 10 * time.Second

// eventWorkers is how many goroutines send queued boot events.
const eventWorkers = 2

// bootEvent is a boot event waiting to be sent. With start set, the
// machine's Register workflow is started when it is not running.
type bootEvent struct {
	ev    contract.BootEvent
	start bool
}

// eventQueue sends boot events to workflows in the background, so that the
// DHCP path never waits on Temporal. When the queue is full, new events are
// dropped and counted: a workflow waits with a timer as well, so a lost
// event delays it and never stalls it.
type eventQueue struct {
	ch        chan bootEvent
	signaler  WorkflowSignaler
	taskQueue string
	logger    *slog.Logger
	metrics   *metrics
}

func newEventQueue(size int, s WorkflowSignaler, taskQueue string, logger *slog.Logger, m *metrics) *eventQueue {
	return &eventQueue{ch: make(chan bootEvent, size), signaler: s, taskQueue: taskQueue, logger: logger, metrics: m}
}

// push queues an event without blocking; it reports whether it was queued.
func (q *eventQueue) push(e bootEvent) bool {
	select {
	case q.ch <- e:
		return true
	default:
		q.metrics.events.WithLabelValues("dropped").Inc()
		q.logger.Debug("boot event queue full, event dropped", "machine_id", e.ev.MachineID, "mac", e.ev.MAC)
		return false
	}
}

// run sends events until ctx is done.
func (q *eventQueue) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range eventWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-q.ch:
					q.send(ctx, e)
				}
			}
		}()
	}
	wg.Wait()
}

func (q *eventQueue) send(ctx context.Context, e bootEvent) {
	if q.signaler == nil {
		q.metrics.events.WithLabelValues("no_temporal").Inc()
		return
	}
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	wid := contract.MachineWorkflowID(e.ev.MachineID)
	var err error
	if e.start {
		_, err = q.signaler.SignalWithStartWorkflow(ctx, wid, contract.SignalBootEvent, e.ev,
			client.StartWorkflowOptions{ID: wid, TaskQueue: q.taskQueue}, contract.WorkflowRegister,
			contract.RegisterInput{MachineID: e.ev.MachineID, Discovered: true, RequestedBy: "boot"})
	} else {
		err = q.signaler.SignalWorkflow(ctx, wid, "", contract.SignalBootEvent, e.ev)
	}
	var nf *serviceerror.NotFound
	switch {
	case err == nil:
		q.metrics.events.WithLabelValues("sent").Inc()
		q.logger.Debug("sent boot event", "machine_id", e.ev.MachineID, "workflow_id", wid, "kind", string(e.ev.Kind))
	case errors.As(err, &nf):
		// No operation runs on the machine: nobody waits for the event.
		q.metrics.events.WithLabelValues("no_workflow").Inc()
	default:
		q.metrics.events.WithLabelValues("failed").Inc()
		q.logger.Warn("cannot send boot event", "machine_id", e.ev.MachineID, "workflow_id", wid, "error", err)
	}
}
