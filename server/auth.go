package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"bareflow/internal/store"
)

const (
	ctxToken       = "bareflow.token"
	ctxAuditTarget = "bareflow.audit_target"
	ctxAuditOp     = "bareflow.audit_operation"
	ctxAuditAction = "bareflow.audit_action"
)

var errUnauthorized = &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized, Message: "a valid bearer token is required"}

// authenticate checks the bearer token of every API call.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return errUnauthorized
		}
		t, err := s.store.AuthenticateToken(c.Request().Context(), strings.TrimSpace(tok))
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
			s.log.Info("refused API token", "remote", c.RealIP(), "path", c.Path())
			return errUnauthorized
		}
		if err != nil {
			return err
		}
		c.Set(ctxToken, t)
		return next(c)
	}
}

func actor(c echo.Context) string {
	if t, ok := c.Get(ctxToken).(store.Token); ok {
		return t.Name
	}
	return ""
}

// setAudit names what a mutating handler did, for the audit trail.
func setAudit(c echo.Context, action, target, operationID string) {
	c.Set(ctxAuditAction, action)
	c.Set(ctxAuditTarget, target)
	if operationID != "" {
		c.Set(ctxAuditOp, operationID)
	}
}

// audit records every mutating call, refused or not: who asked for what,
// on which record, and how it ended.
func (s *Server) audit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if c.Request().Method == http.MethodGet {
			return err
		}
		status := c.Response().Status
		if err != nil {
			status = s.mapError(c, err).Status
		}
		action, _ := c.Get(ctxAuditAction).(string)
		if action == "" {
			action = c.Request().Method + " " + c.Path()
		}
		target, _ := c.Get(ctxAuditTarget).(string)
		if target == "" {
			target = c.Param("id")
		}
		opID, _ := c.Get(ctxAuditOp).(string)
		kind := strings.Split(strings.TrimPrefix(c.Path(), "/api/v1/"), "/")[0]
		e := store.AuditEntry{
			Actor: actor(c), Action: action, TargetKind: strings.TrimSuffix(kind, "s"), TargetID: target,
			OperationID: opID, RemoteAddr: c.RealIP(),
			Details: map[string]any{"status": status, "request_id": requestID(c)},
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 5*time.Second)
		defer cancel()
		if aerr := s.store.AddAudit(actx, e); aerr != nil {
			s.log.Error("cannot write audit entry", "error", aerr, "action", action, "request_id", requestID(c))
		}
		return err
	}
}
