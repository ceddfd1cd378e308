package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"bareflow/internal/store"
)

type tokenJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// Token is the secret itself, present only in the answer that creates it.
	Token string `json:"token,omitempty"`
}

func toTokenJSON(t store.Token) tokenJSON {
	j := tokenJSON{ID: t.ID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt}
	if !t.LastUsedAt.IsZero() {
		u := t.LastUsedAt
		j.LastUsedAt = &u
	}
	return j
}

func (s *Server) listTokens(c echo.Context) error {
	ts, err := s.store.ListTokens(c.Request().Context())
	if err != nil {
		return err
	}
	out := page[tokenJSON]{Items: make([]tokenJSON, 0, len(ts))}
	for _, t := range ts {
		if t.RevokedAt.IsZero() {
			out.Items = append(out.Items, toTokenJSON(t))
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) createToken(c echo.Context) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Name == "" {
		return errInvalid("name is required")
	}
	plain, t, err := s.store.CreateToken(c.Request().Context(), in.Name)
	if err != nil {
		return err
	}
	setAudit(c, "token.create", t.ID, "")
	j := toTokenJSON(t)
	j.Token = plain
	return c.JSON(http.StatusCreated, j)
}

func (s *Server) revokeToken(c echo.Context) error {
	if err := s.store.RevokeToken(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	setAudit(c, "token.revoke", c.Param("id"), "")
	return c.NoContent(http.StatusNoContent)
}

type auditJSON struct {
	ID          int64          `json:"id"`
	At          time.Time      `json:"at"`
	Actor       string         `json:"actor"`
	Action      string         `json:"action"`
	TargetKind  string         `json:"target_kind,omitempty"`
	TargetID    string         `json:"target_id,omitempty"`
	OperationID string         `json:"operation_id,omitempty"`
	RemoteAddr  string         `json:"remote_addr,omitempty"`
	Details     map[string]any `json:"details,omitempty"`
}

func (s *Server) listAudit(c echo.Context) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	f := store.AuditFilter{TargetID: c.QueryParam("target_id"), Limit: limit}
	if v := c.QueryParam("before"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before < 1 {
			return errInvalid("before must be an audit entry ID")
		}
	}
	es, err := s.store.ListAudit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := page[auditJSON]{Items: make([]auditJSON, len(es))}
	for i, e := range es {
		out.Items[i] = auditJSON{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, TargetKind: e.TargetKind,
			TargetID: e.TargetID, OperationID: e.OperationID, RemoteAddr: e.RemoteAddr, Details: e.Details}
	}
	if limit == 0 {
		limit = store.DefaultLimit
	}
	if len(es) == limit {
		out.Next = strconv.FormatInt(es[len(es)-1].ID, 10)
	}
	return c.JSON(http.StatusOK, out)
}
