package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"bareflow/contract"
	"bareflow/internal/store"
)

// A workflow closing after it recorded its outcome is waited for at most
// closingRetries times closingWait before the machine counts as busy.
const (
	closingRetries = 25
	closingWait    = 200 * time.Millisecond
)

type operationJSON struct {
	ID          string                  `json:"id"`
	MachineID   string                  `json:"machine_id,omitempty"`
	MachineName string                  `json:"machine_name,omitempty"`
	Kind        contract.OperationKind  `json:"kind"`
	State       contract.OperationState `json:"state"`
	Step        string                  `json:"step,omitempty"`
	Progress    float64                 `json:"progress"`
	Error       *errorJSON              `json:"error,omitempty"`
	RequestedBy string                  `json:"requested_by,omitempty"`
	WorkflowID  string                  `json:"workflow_id"`
	RunID       string                  `json:"run_id,omitempty"`
	StartedAt   time.Time               `json:"started_at"`
	FinishedAt  *time.Time              `json:"finished_at,omitempty"`
	// Link is the API path of the operation.
	Link string `json:"link"`
	// WebUIURL opens the run in the Temporal Web UI.
	WebUIURL string `json:"web_ui_url,omitempty"`
}

func (s *Server) toOperationJSON(op store.Operation) operationJSON {
	j := operationJSON{
		ID: op.ID, MachineID: op.MachineID, MachineName: op.MachineName, Kind: op.Kind, State: op.State,
		Step: op.Step, Progress: op.Progress, RequestedBy: op.RequestedBy, WorkflowID: op.WorkflowID,
		RunID: op.RunID, StartedAt: op.StartedAt, Link: "/api/v1/operations/" + op.ID,
	}
	if op.ErrorCode != "" || op.Error != "" {
		j.Error = &errorJSON{Code: op.ErrorCode, Message: op.Error}
	}
	if !op.FinishedAt.IsZero() {
		t := op.FinishedAt
		j.FinishedAt = &t
	}
	if s.cfg.WebUIURL != "" && op.WorkflowID != "" && op.RunID != "" {
		j.WebUIURL = fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", s.cfg.WebUIURL,
			url.PathEscape(s.cfg.Namespace), url.PathEscape(op.WorkflowID), url.PathEscape(op.RunID))
	}
	return j
}

// startOperation starts a mutating workflow on the machine's workflow ID.
// When another operation holds the machine, the answer is 409 naming it.
// The operation record is written here and again by the workflow's first
// activity; the store merges the two in either order.
func (s *Server) startOperation(c echo.Context, m store.Machine, kind contract.OperationKind, workflowType string, input func(opID string) any) (store.Operation, error) {
	ctx := c.Request().Context()
	opID := uuid.NewString()
	wid := contract.MachineWorkflowID(m.ID)
	var run client.WorkflowRun
	for attempt := 0; ; attempt++ {
		var err error
		run, err = s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                       wid,
			TaskQueue:                s.cfg.TaskQueue,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
			// Without this the SDK answers with the running workflow instead
			// of the conflict.
			WorkflowExecutionErrorWhenAlreadyStarted: true,
		}, workflowType, input(opID))
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			// An operation records its outcome just before its workflow
			// closes: when no operation is still open, the holder is
			// closing and the machine is free a moment later.
			if _, aerr := s.store.ActiveOperation(ctx, m.ID); errors.Is(aerr, store.ErrNotFound) && attempt < closingRetries {
				select {
				case <-ctx.Done():
					return store.Operation{}, ctx.Err()
				case <-time.After(closingWait):
				}
				continue
			}
			return store.Operation{}, s.busy(ctx, m)
		}
		if err != nil {
			return store.Operation{}, fmt.Errorf("start %s workflow: %w", workflowType, err)
		}
		break
	}
	op := store.Operation{
		ID: opID, MachineID: m.ID, MachineName: m.Name, Kind: kind, WorkflowID: wid, RunID: run.GetRunID(),
		State: contract.OperationPending, RequestedBy: actor(c), StartedAt: time.Now().UTC(),
	}
	if err := s.store.UpsertOperation(ctx, op); err != nil {
		// The workflow runs and writes the record itself; the client still
		// gets the operation it started.
		s.log.Error("cannot record operation; the workflow will", "error", err, "operation_id", opID, "workflow_id", wid)
	}
	if stored, err := s.store.GetOperation(ctx, opID); err == nil {
		op = stored
	}
	return op, nil
}

// busy is the 409 answer for a machine held by a running operation.
func (s *Server) busy(ctx context.Context, m store.Machine) error {
	e := &apiError{Status: http.StatusConflict, Code: codeBusy}
	active, err := s.store.ActiveOperation(ctx, m.ID)
	if err == nil {
		j := s.toOperationJSON(active)
		e.Operation = &j
		e.Message = fmt.Sprintf("machine %s is busy with operation %s (%s, step %s); wait for it or cancel it", m.Name, active.ID, active.Kind, active.Step)
		return e
	}
	e.Message = fmt.Sprintf("machine %s is busy with workflow %s; wait for it or cancel it", m.Name, contract.MachineWorkflowID(m.ID))
	return e
}

// refuseIfBusy answers 409 when an operation holds the machine.
func (s *Server) refuseIfBusy(ctx context.Context, m store.Machine) error {
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, contract.MachineWorkflowID(m.ID), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe workflow of machine %s: %w", m.ID, err)
	}
	if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return s.busy(ctx, m)
	}
	return nil
}

// readPower runs a PowerStatus workflow and waits for its answer.
func (s *Server) readPower(ctx context.Context, machineID string) (contract.PowerStatusResult, error) {
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       contract.PowerStatusWorkflowID(machineID),
		TaskQueue:                s.cfg.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowExecutionTimeout: s.cfg.StatusTimeout,
	}, contract.WorkflowPowerStatus, contract.PowerStatusInput{MachineID: machineID})
	if err != nil {
		return contract.PowerStatusResult{}, fmt.Errorf("start power status read: %w", err)
	}
	var res contract.PowerStatusResult
	err = run.Get(ctx, &res)
	switch {
	case err == nil:
		return res, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return res, &apiError{Status: http.StatusGatewayTimeout, Code: codeWorkflowTimedOut, Message: "the BMC did not answer in time; is a worker running?"}
	}
	code, msg := failure(err)
	return res, &apiError{Status: http.StatusBadGateway, Code: code, Message: msg}
}

// failure extracts the stable error code and message of a failed workflow.
func failure(err error) (string, string) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() != "" {
		return appErr.Type(), appErr.Message()
	}
	return codeInternal, "the operation failed"
}

func (s *Server) operation(c echo.Context) (store.Operation, error) {
	op, err := s.store.GetOperation(c.Request().Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return op, errNotFound(fmt.Sprintf("no operation %q", c.Param("id")))
	}
	return op, err
}

func (s *Server) showOperation(c echo.Context) error {
	op, err := s.operation(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.toOperationJSON(op))
}

func (s *Server) listOperations(c echo.Context) error {
	return s.operations(c, c.QueryParam("machine_id"))
}

func (s *Server) machineOperations(c echo.Context) error {
	m, err := s.machine(c)
	if err != nil {
		return err
	}
	return s.operations(c, m.ID)
}

func (s *Server) operations(c echo.Context, machineID string) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	f := store.OperationFilter{MachineID: machineID, Limit: limit, After: c.QueryParam("after"), State: contract.OperationState(c.QueryParam("state"))}
	ops, next, err := s.store.ListOperations(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := page[operationJSON]{Items: make([]operationJSON, len(ops)), Next: next}
	for i, op := range ops {
		out.Items[i] = s.toOperationJSON(op)
	}
	return c.JSON(http.StatusOK, out)
}

// cancelOperation asks the operation's workflow to stop. The workflow runs
// its cleanup and records the operation as canceled.
func (s *Server) cancelOperation(c echo.Context) error {
	op, err := s.operation(c)
	if err != nil {
		return err
	}
	if op.State.Final() {
		return &apiError{Status: http.StatusConflict, Code: codeFinished, Message: fmt.Sprintf("operation %s already %s", op.ID, op.State)}
	}
	err = s.temporal.CancelWorkflow(c.Request().Context(), op.WorkflowID, op.RunID)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return &apiError{Status: http.StatusConflict, Code: codeFinished, Message: fmt.Sprintf("operation %s is no longer running", op.ID)}
	}
	if err != nil {
		return fmt.Errorf("cancel workflow %s: %w", op.WorkflowID, err)
	}
	setAudit(c, "operation.cancel", op.MachineID, op.ID)
	j := s.toOperationJSON(op)
	return c.JSON(http.StatusAccepted, j)
}
