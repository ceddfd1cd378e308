//go:build linux

package ramdisk

import (
	"context"
	"sync"

	"go.temporal.io/sdk/client"

	"bareflow/contract"
)

// signalCapture stands in for the Temporal client: it records the
// RamdiskReady signals phone-home sends. Only the two methods the boot
// service calls are implemented; the embedded nil client.Client makes any
// other call panic.
type signalCapture struct {
	client.Client
	mu    sync.Mutex
	ready chan contract.RamdiskReady
	other []string
}

func newSignalCapture() *signalCapture {
	return &signalCapture{ready: make(chan contract.RamdiskReady, 8)}
}

func (s *signalCapture) SignalWorkflow(_ context.Context, workflowID, _ string, name string, arg any) error {
	if name == contract.SignalRamdiskReady {
		if r, ok := arg.(contract.RamdiskReady); ok {
			s.ready <- r
			return nil
		}
	}
	s.mu.Lock()
	s.other = append(s.other, workflowID+" "+name)
	s.mu.Unlock()
	return nil
}

func (s *signalCapture) SignalWithStartWorkflow(_ context.Context, workflowID, name string, _ any,
	_ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	s.mu.Lock()
	s.other = append(s.other, workflowID+" "+name+" (start)")
	s.mu.Unlock()
	return nil, nil
}
