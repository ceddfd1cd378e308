package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// fleetView is the CLI's view of a fleet (GET /fleets/{id}).
type fleetView struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	Op         string `json:"op"`
	State      string `json:"state"`
	Reason     string `json:"reason"`
	Counts     struct {
		Total    int `json:"total"`
		Waiting  int `json:"waiting"`
		Running  int `json:"running"`
		Done     int `json:"done"`
		Failed   int `json:"failed"`
		Canceled int `json:"canceled"`
		Skipped  int `json:"skipped"`
	} `json:"counts"`
	CanariesPassed bool   `json:"canaries_passed"`
	Concurrency    int    `json:"concurrency"`
	Canaries       int    `json:"canaries"`
	FailureBudget  int    `json:"failure_budget"`
	GroupBy        string `json:"group_by"`
	GroupLimit     int    `json:"group_limit"`
	MaxRunning     int    `json:"max_running"`
	Machines       []struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Group       string `json:"group"`
		Canary      bool   `json:"canary"`
		State       string `json:"state"`
		OperationID string `json:"operation_id"`
		Error       *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"machines"`
	WebUIURL string `json:"web_ui_url"`
}

func (f fleetView) final() bool {
	return f.State == "succeeded" || f.State == "failed" || f.State == "canceled"
}

func (f fleetView) countsLine() string {
	c := f.Counts
	return fmt.Sprintf("%s: %d done, %d running, %d waiting, %d failed, %d canceled, %d skipped of %d",
		f.State, c.Done, c.Running, c.Waiting, c.Failed, c.Canceled, c.Skipped, c.Total)
}

const fleetStartUsage = `fleet start --op install|wipe|power|register (--machines A,B,… | --filter state=ready,model=…,label.rack=r1)
    [--concurrency N] [--canaries N] [--failure-budget N] [--cancel-on-failure]
    [--group-by network|label:KEY --group-limit N] [--wait]
  power:    --action on|off|hard_off|reset|cycle
  wipe:     --confirm "wipe N machines" [--erase METHOD] [--keep-raid]
  install:  -f INSTALL.json | --image IMAGE, --hostname-pattern 'web-{index}' [--force]
  register: [--bmc-mode static|dhcp|keep|skip] [--force]`

// runFleet is `bareflow fleet start|show|pause|resume|cancel`.
func runFleet(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand(args, "fleet", "start", "show", "wait", "pause", "resume", "cancel")
	if err != nil {
		return err
	}
	c, err := newAPIClient(e)
	if err != nil {
		return err
	}
	if sub == "start" {
		return runFleetStart(ctx, c, rest, stdout, stderr)
	}
	fs, out := cliFlags("fleet "+sub, stderr)
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("fleet %s ID", sub)
	}
	path := "/fleets/" + url.PathEscape(pos[0])
	var raw json.RawMessage
	switch sub {
	case "show":
		err = c.do(ctx, "GET", path, nil, &raw)
	case "wait":
		return waitFleet(ctx, c, stdout, pos[0])
	default:
		err = c.do(ctx, "POST", path+"/"+sub, nil, &raw)
	}
	if err != nil {
		return err
	}
	if *out == "json" {
		return printJSON(stdout, raw)
	}
	var f fleetView
	if err := json.Unmarshal(raw, &f); err != nil {
		return err
	}
	return showFleet(stdout, f)
}

// parseFleetFilter reads key=value,… into the API's filter object.
func parseFleetFilter(s string) (map[string]any, error) {
	filter := map[string]any{}
	labels := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return nil, usageError("--filter: %q is not key=value", part)
		}
		switch k {
		case "state", "vendor", "model", "memory_min":
			filter[k] = v
		case "cpus", "cpus_min", "disks", "disks_min":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, usageError("--filter: %s must be a whole number", k)
			}
			filter[k] = n
		default:
			key, ok := strings.CutPrefix(k, "label.")
			if !ok || key == "" {
				return nil, usageError("--filter: unknown key %q (want state, vendor, model, cpus, cpus_min, disks, disks_min, memory_min or label.KEY)", k)
			}
			labels[key] = v
		}
	}
	if len(labels) > 0 {
		filter["labels"] = labels
	}
	return filter, nil
}

func runFleetStart(ctx context.Context, c *apiClient, rest []string, stdout, stderr io.Writer) error {
	fs, out := cliFlags("fleet start", stderr)
	op := fs.String("op", "", "the operation: install, wipe, power or register")
	machines := fs.String("machines", "", "the machines, by name or ID, comma-separated, in start order")
	filter := fs.String("filter", "", "or the machines matching: state=ready,model=…,cpus_min=…,memory_min=64GiB,label.rack=r1")
	concurrency := fs.Int("concurrency", 0, "machines at once (default 10)")
	canaries := fs.Int("canaries", 0, "machines that run first, alone; a failure of one stops the fleet")
	budget := fs.Int("failure-budget", 0, "machines that may fail before the fleet stops")
	cancelOnFailure := fs.Bool("cancel-on-failure", false, "cancel the running machines when the fleet fails")
	groupBy := fs.String("group-by", "", "group machines by network or label:KEY")
	groupLimit := fs.Int("group-limit", 0, "machines of one group at once")
	confirm := fs.String("confirm", "", `wipe: "wipe N machines" with the count`)
	action := fs.String("action", "", "power: on, off, hard_off, reset or cycle")
	erase := fs.String("erase", "", "wipe: also erase the data (auto, nvme, ata-secure-erase, discard, overwrite)")
	keepRAID := fs.Bool("keep-raid", false, "wipe: leave the RAID configuration")
	reqFile := fs.String("f", "", "install: the install request, a JSON file (- for stdin)")
	image := fs.String("image", "", "install: the image's name or ID")
	pattern := fs.String("hostname-pattern", "", "install: host names, {name} or {index} (web-{index})")
	bmcMode := fs.String("bmc-mode", "", "register: BMC set-up (static, dhcp, keep, skip)")
	force := fs.Bool("force", false, "install, register: also machines that run an OS")
	wait := fs.Bool("wait", false, "follow the fleet to its end")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *op == "" || (*machines == "") == (*filter == "") {
		return usageError("%s", fleetStartUsage)
	}
	body := map[string]any{"op": *op, "concurrency": *concurrency, "canaries": *canaries, "failure_budget": *budget,
		"cancel_on_failure": *cancelOnFailure, "group_by": *groupBy, "group_limit": *groupLimit}
	if *machines != "" {
		body["ids"] = strings.Split(*machines, ",")
	} else {
		f, err := parseFleetFilter(*filter)
		if err != nil {
			return err
		}
		body["filter"] = f
	}
	switch *op {
	case "power":
		body["power"] = map[string]any{"action": *action}
	case "wipe":
		body["confirm"] = *confirm
		body["wipe"] = map[string]any{"erase": *erase, "keep_raid": *keepRAID}
	case "install":
		install := map[string]any{}
		if *reqFile != "" {
			if install, err = readJSONObject(*reqFile, "install request"); err != nil {
				return err
			}
		}
		if *image != "" {
			install["image"] = *image
		}
		if *force {
			install["force"] = true
		}
		body["install"] = install
		body["hostname_pattern"] = *pattern
	case "register":
		body["register"] = map[string]any{"bmc": map[string]any{"mode": *bmcMode}, "force": *force}
	}
	var raw json.RawMessage
	if err := c.do(ctx, "POST", "/fleets", body, &raw); err != nil {
		return err
	}
	var f fleetView
	if err := json.Unmarshal(raw, &f); err != nil {
		return err
	}
	if *out == "json" && !*wait {
		return printJSON(stdout, raw)
	}
	fmt.Fprintf(stdout, "fleet %s started (%s over %d machines)\n", f.ID, f.Op, f.Counts.Total)
	if f.WebUIURL != "" {
		fmt.Fprintf(stdout, "  web UI: %s\n", f.WebUIURL)
	}
	if !*wait {
		return nil
	}
	return waitFleet(ctx, c, stdout, f.ID)
}

// waitFleet polls a fleet, printing its counts at each change, until it
// ends; a failed or canceled fleet is an error.
func waitFleet(ctx context.Context, c *apiClient, stdout io.Writer, id string) error {
	last := ""
	for {
		var f fleetView
		if err := c.do(ctx, "GET", "/fleets/"+url.PathEscape(id), nil, &f); err != nil {
			return err
		}
		if line := f.countsLine(); line != last {
			fmt.Fprintf(stdout, "%s  %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
		if f.final() {
			if f.State != "succeeded" {
				return fmt.Errorf("fleet %s %s: %s", f.ID, f.State, f.Reason)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for fleet %s: %w", id, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func showFleet(w io.Writer, f fleetView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Fleet:\t%s (%s)\n", f.ID, f.Op)
	fmt.Fprintf(tw, "State:\t%s\n", f.countsLine())
	if f.Reason != "" {
		fmt.Fprintf(tw, "Reason:\t%s\n", f.Reason)
	}
	limits := fmt.Sprintf("concurrency %d, canaries %d (passed: %v), failure budget %d", f.Concurrency, f.Canaries, f.CanariesPassed, f.FailureBudget)
	if f.GroupBy != "" {
		limits += fmt.Sprintf(", at most %d per %s", f.GroupLimit, f.GroupBy)
	}
	fmt.Fprintf(tw, "Limits:\t%s; most at once %d\n", limits, f.MaxRunning)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tGROUP\tOPERATION\tERROR")
	for _, m := range f.Machines {
		state, errText := m.State, "-"
		if m.Canary {
			state += " (canary)"
		}
		if m.Error != nil {
			errText = m.Error.Code + ": " + m.Error.Message
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, state, dash(m.Group), dash(m.OperationID), errText)
	}
	return tw.Flush()
}
