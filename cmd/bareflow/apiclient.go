package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// apiClient is the CLI's client of the bareflow API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("API answered %d", e.Status)
	}
	return e.Code + ": " + e.Message
}

func newAPIClient(e env) (*apiClient, error) {
	tok := e.Token
	if tok == "" {
		b, err := os.ReadFile(e.tokenFile())
		if err != nil {
			return nil, fmt.Errorf("no API token: set BAREFLOW_TOKEN (or BAREFLOW_TOKEN_FILE; %s is not readable)", e.tokenFile())
		}
		tok = strings.TrimSpace(string(b))
	}
	u, err := url.Parse(e.APIURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("BAREFLOW_API_URL %q is not a URL such as http://127.0.0.1:8080", e.APIURL)
	}
	return &apiClient{base: strings.TrimSuffix(e.APIURL, "/"), token: tok, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/api/v1"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("cannot reach the bareflow API at %s (set BAREFLOW_API_URL): %v", c.base, ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read API answer: %w", err)
	}
	if resp.StatusCode >= 400 {
		var env struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(data, &env) == nil && env.Error != nil {
			env.Error.Status = resp.StatusCode
			return env.Error
		}
		return &apiError{Status: resp.StatusCode}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode API answer: %w", err)
	}
	return nil
}
