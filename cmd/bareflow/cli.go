package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"bareflow/contract"
)

// The CLI decodes the API's JSON into these views.
type (
	machineView struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		State      string `json:"state"`
		PXEMAC     string `json:"pxe_mac"`
		SystemUUID string `json:"system_uuid"`
		Serial     string `json:"serial"`
		Vendor     string `json:"vendor"`
		Model      string `json:"model"`
		BMC        *struct {
			Address     string `json:"address"`
			User        string `json:"user"`
			PasswordSet bool   `json:"password_set"`
		} `json:"bmc"`
		PowerState   string     `json:"power_state"`
		PowerStateAt *time.Time `json:"power_state_at"`
		LastError    *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"last_error"`
		CPUs        int                    `json:"cpus"`
		MemoryBytes int64                  `json:"memory_bytes"`
		Disks       int                    `json:"disks"`
		Hardware    *contract.Inventory    `json:"hardware"`
		RAID        []contract.BuiltVolume `json:"raid"`
		RootDevice  string                 `json:"root_device"`
		OS          *struct {
			Image       string    `json:"image"`
			RootDisk    string    `json:"root_disk"`
			Hostname    string    `json:"hostname"`
			Address     string    `json:"address"`
			InstalledAt time.Time `json:"installed_at"`
		} `json:"os"`
		CreatedAt time.Time `json:"created_at"`
	}
	operationView struct {
		ID          string  `json:"id"`
		MachineName string  `json:"machine_name"`
		Kind        string  `json:"kind"`
		State       string  `json:"state"`
		Step        string  `json:"step"`
		Progress    float64 `json:"progress"`
		Error       *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		WorkflowID string     `json:"workflow_id"`
		StartedAt  time.Time  `json:"started_at"`
		FinishedAt *time.Time `json:"finished_at"`
		WebUIURL   string     `json:"web_ui_url"`
	}
)

func (o operationView) final() bool {
	return o.State == "succeeded" || o.State == "failed" || o.State == "canceled"
}

// cliFlags is a flag set with the common -o flag.
func cliFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "table", "output: table or json")
	return fs, out
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func printJSON(w io.Writer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func subcommand(args []string, what string, known ...string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, usageError("%s needs a subcommand: %s", what, strings.Join(known, ", "))
	}
	for _, k := range known {
		if args[0] == k {
			return k, args[1:], nil
		}
	}
	return "", nil, usageError("unknown %s subcommand %q (want %s)", what, args[0], strings.Join(known, ", "))
}

func runMachine(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand(args, "machine", "list", "show", "create", "update", "delete", "register", "raid",
		"install", "reinstall", "wipe", "adopt", "adopt-script", "convert-to-host", "undo-host")
	if err != nil {
		return err
	}
	c, err := newAPIClient(e)
	if err != nil {
		return err
	}
	switch sub {
	case "install", "reinstall":
		return runInstall(ctx, c, sub, rest, stdout, stderr)
	case "wipe":
		return runWipe(ctx, c, rest, stdout, stderr)
	case "adopt":
		return runAdopt(ctx, c, rest, stdout, stderr)
	case "adopt-script":
		return runAdoptScript(ctx, c, rest, stdout, stderr)
	case "convert-to-host":
		return runConvertToHost(ctx, c, rest, stdout, stderr)
	case "undo-host":
		return runUndoHost(ctx, c, rest, stdout, stderr)
	}
	fs, out := cliFlags("machine "+sub, stderr)
	switch sub {
	case "list":
		state := fs.String("state", "", "only machines in this state")
		vendor := fs.String("vendor", "", "only machines of this vendor")
		model := fs.String("model", "", "only machines of this model")
		cpusMin := fs.String("cpus-min", "", "only machines with at least this many logical CPUs")
		memMin := fs.String("memory-min", "", "only machines with at least this much memory (64GiB, or bytes)")
		disksMin := fs.String("disks-min", "", "only machines with at least this many disks")
		limit := fs.Int("limit", 0, "page size (default 100)")
		all := fs.Bool("all", true, "follow every page")
		if _, err := parseInterspersed(fs, rest); err != nil {
			return err
		}
		var items []machineView
		var raws []json.RawMessage
		after := ""
		for {
			q := url.Values{}
			for k, v := range map[string]string{"state": *state, "vendor": *vendor, "model": *model, "cpus_min": *cpusMin,
				"memory_min": *memMin, "disks_min": *disksMin, "after": after} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if *limit > 0 {
				q.Set("limit", fmt.Sprint(*limit))
			}
			var page struct {
				Items []json.RawMessage `json:"items"`
				Next  string            `json:"next"`
			}
			if err := c.do(ctx, "GET", "/machines?"+q.Encode(), nil, &page); err != nil {
				return err
			}
			for _, r := range page.Items {
				var m machineView
				if err := json.Unmarshal(r, &m); err != nil {
					return err
				}
				items, raws = append(items, m), append(raws, r)
			}
			if page.Next == "" || !*all {
				break
			}
			after = page.Next
		}
		if *out == "json" {
			b, _ := json.Marshal(raws)
			return printJSON(stdout, b)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tPOWER\tBMC\tPXE MAC\tMODEL\tCPUS\tMEMORY\tDISKS\tLAST ERROR\tID")
		for _, m := range items {
			bmcAddr, lastErr := "-", "-"
			if m.BMC != nil {
				bmcAddr = m.BMC.Address
			}
			if m.LastError != nil {
				lastErr = m.LastError.Code
			}
			cpus, mem, disks := "-", "-", "-"
			if m.CPUs > 0 || m.MemoryBytes > 0 || m.Disks > 0 {
				cpus, mem, disks = fmt.Sprint(m.CPUs), gib(m.MemoryBytes), fmt.Sprint(m.Disks)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.State, m.PowerState, bmcAddr, dash(m.PXEMAC),
				dash(m.Model), cpus, mem, disks, lastErr, m.ID)
		}
		return tw.Flush()
	case "show":
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("machine show MACHINE")
		}
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/machines/"+url.PathEscape(pos[0]), nil, &raw); err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(stdout, raw)
		}
		var m machineView
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		return showMachine(stdout, m)
	case "create", "update":
		mac := fs.String("mac", "", "MAC address the machine PXE-boots from")
		bmcAddr := fs.String("bmc-addr", "", "BMC address, IP[:port] (port 623 by default)")
		bmcUser := fs.String("bmc-user", "", "BMC user")
		bmcPassword := fs.String("bmc-password", "", "BMC password (prefer --bmc-password-file or BAREFLOW_BMC_PASSWORD)")
		bmcPasswordFile := fs.String("bmc-password-file", "", "file holding the BMC password")
		cipher := fs.Int("bmc-cipher-suite", 0, "RMCP+ cipher suite (3 or 17; 0 lets bareflow choose)")
		vendor := fs.String("vendor", "", "vendor")
		model := fs.String("model", "", "model")
		serial := fs.String("serial", "", "serial number")
		name := fs.String("name", "", "new name (update)")
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("machine %s NAME [flags]", sub)
		}
		body := map[string]any{}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		put := func(flagName, key, v string) {
			if set[flagName] {
				body[key] = v
			}
		}
		put("mac", "pxe_mac", *mac)
		put("vendor", "vendor", *vendor)
		put("model", "model", *model)
		put("serial", "serial", *serial)
		bmcBody := map[string]any{}
		if set["bmc-addr"] {
			bmcBody["address"] = *bmcAddr
		}
		if set["bmc-user"] {
			bmcBody["user"] = *bmcUser
		}
		if set["bmc-cipher-suite"] {
			bmcBody["cipher_suite"] = *cipher
		}
		pw, pwSet, err := bmcPasswordInput(*bmcPassword, set["bmc-password"], *bmcPasswordFile)
		if err != nil {
			return err
		}
		if pwSet {
			bmcBody["password"] = pw
		}
		if len(bmcBody) > 0 {
			body["bmc"] = bmcBody
		}
		var raw json.RawMessage
		if sub == "create" {
			body["name"] = pos[0]
			err = c.do(ctx, "POST", "/machines", body, &raw)
		} else {
			put("name", "name", *name)
			err = c.do(ctx, "PATCH", "/machines/"+url.PathEscape(pos[0]), body, &raw)
		}
		if err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(stdout, raw)
		}
		var m machineView
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		return showMachine(stdout, m)
	case "register":
		bmcMode := fs.String("bmc-mode", "", "BMC set-up: static, dhcp, keep or skip (default: keep a BMC the machine has, else static from the BMC network)")
		bmcNetwork := fs.String("bmc-network", "", "BMC network of a static set-up (default: the only bmc network)")
		leave := fs.Bool("leave-in-ramdisk", false, "keep the machine running its ramdisk afterwards")
		force := fs.Bool("force", false, "register a running machine (it is rebooted into the ramdisk)")
		timeout := fs.Duration("ramdisk-timeout", 0, "how long to wait for the ramdisk (default 30m)")
		wait := fs.Bool("wait", true, "wait for the operation to end")
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("machine register MACHINE")
		}
		body := map[string]any{"leave_in_ramdisk": *leave, "force": *force,
			"ramdisk_timeout_seconds": int(timeout.Seconds()),
			"bmc":                     map[string]string{"mode": *bmcMode, "network": *bmcNetwork}}
		return startAndMaybeWait(ctx, c, stdout, "/machines/"+url.PathEscape(pos[0])+"/register", body, *wait, 0)
	case "raid":
		specFile := fs.String("f", "", "the RAID spec, a JSON file ({\"arrays\": [...]}; - for stdin)")
		level := fs.String("level", "", "one array of this level (0, 1, 1e, 5, 6, 10, 50, 60, jbod), instead of -f")
		slots := fs.String("slots", "", "its disks, comma-separated, as the controller names them (252:0) or block devices for md (vdb)")
		count := fs.Int("count", 0, "or: this many disks")
		media := fs.String("media", "", "of this media (hdd, ssd, nvme)")
		controller := fs.String("controller", "", "PCI address of the controller, or md")
		root := fs.Bool("root", true, "the array holds the OS")
		leave := fs.Bool("leave-in-ramdisk", false, "keep the machine in its ramdisk afterwards")
		force := fs.Bool("force", false, "build on a running machine (its disks are cleared)")
		wait := fs.Bool("wait", true, "wait for the operation to end")
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 || (*specFile == "") == (*level == "") {
			return usageError("machine raid MACHINE (-f SPEC.json | --level L [--slots a,b | --count N] [--media M] [--controller C])")
		}
		body := map[string]any{"leave_in_ramdisk": *leave, "force": *force}
		if *specFile != "" {
			var raw []byte
			if *specFile == "-" {
				raw, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
			} else {
				raw, err = os.ReadFile(*specFile)
			}
			if err != nil {
				return fmt.Errorf("read RAID spec: %w", err)
			}
			var spec map[string]any
			if err := json.Unmarshal(raw, &spec); err != nil {
				return fmt.Errorf("RAID spec %s is not a JSON object: %w", *specFile, err)
			}
			for k, v := range spec {
				body[k] = v
			}
		} else {
			disks := map[string]any{}
			if *slots != "" {
				disks["slots"] = strings.Split(*slots, ",")
			}
			if *count > 0 {
				disks["count"] = *count
			}
			if *media != "" {
				disks["media"] = *media
			}
			body["arrays"] = []map[string]any{{"level": *level, "controller": *controller, "disks": disks, "root": *root}}
		}
		return startAndMaybeWait(ctx, c, stdout, "/machines/"+url.PathEscape(pos[0])+"/raid", body, *wait, 0)
	case "delete":
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("machine delete MACHINE")
		}
		if err := c.do(ctx, "DELETE", "/machines/"+url.PathEscape(pos[0]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "machine %s deleted\n", pos[0])
		return nil
	}
	return nil
}

func bmcPasswordInput(flagValue string, flagSet bool, file string) (string, bool, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", false, fmt.Errorf("read BMC password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), true, nil
	case flagSet:
		return flagValue, true, nil
	case os.Getenv("BAREFLOW_BMC_PASSWORD") != "":
		return os.Getenv("BAREFLOW_BMC_PASSWORD"), true, nil
	}
	return "", false, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func showMachine(w io.Writer, m machineView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", m.Name)
	fmt.Fprintf(tw, "ID:\t%s\n", m.ID)
	fmt.Fprintf(tw, "State:\t%s\n", m.State)
	power := m.PowerState
	if m.PowerStateAt != nil {
		power += " (seen " + m.PowerStateAt.Local().Format(time.RFC3339) + ")"
	}
	fmt.Fprintf(tw, "Power:\t%s\n", power)
	fmt.Fprintf(tw, "PXE MAC:\t%s\n", dash(m.PXEMAC))
	if m.BMC != nil {
		pw := "not set"
		if m.BMC.PasswordSet {
			pw = "set"
		}
		fmt.Fprintf(tw, "BMC:\t%s, user %s, password %s\n", m.BMC.Address, dash(m.BMC.User), pw)
	} else {
		fmt.Fprintf(tw, "BMC:\t-\n")
	}
	fmt.Fprintf(tw, "Vendor / model:\t%s / %s\n", dash(m.Vendor), dash(m.Model))
	fmt.Fprintf(tw, "Serial / UUID:\t%s / %s\n", dash(m.Serial), dash(m.SystemUUID))
	if m.LastError != nil {
		fmt.Fprintf(tw, "Last error:\t%s: %s\n", m.LastError.Code, m.LastError.Message)
	}
	if inv := m.Hardware; inv != nil {
		showHardware(tw, inv)
	}
	for _, v := range m.RAID {
		root := ""
		if v.Root {
			root = " (root)"
		}
		fmt.Fprintf(tw, "Volume %s:\tRAID %s on %s, %s, %s%s\n", v.ID, v.Level, v.Controller, dash(v.Device), gib(v.SizeBytes), root)
	}
	if m.OS != nil {
		fmt.Fprintf(tw, "OS:\timage %s on %s, host %s at %s, installed %s\n", m.OS.Image, m.OS.RootDisk, dash(m.OS.Hostname),
			dash(m.OS.Address), m.OS.InstalledAt.Format(time.RFC3339))
	}
	if m.RootDevice != "" {
		fmt.Fprintf(tw, "Root disk:\t%s\n", m.RootDevice)
	}
	return tw.Flush()
}

// gib prints a size in GiB.
func gib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
}

// showHardware prints an inventory, one line per part.
func showHardware(tw io.Writer, inv *contract.Inventory) {
	fmt.Fprintf(tw, "Firmware:\t%s, BIOS %s %s\n", dash(inv.System.BootMode), dash(inv.System.BIOSVendor), dash(inv.System.BIOSVersion))
	fmt.Fprintf(tw, "CPU:\t%s: %d socket(s), %d cores, %d threads\n", dash(inv.CPU.Model), inv.CPU.Sockets, inv.CPU.Cores, inv.CPU.Threads)
	fmt.Fprintf(tw, "Memory:\t%s in %d DIMM(s)\n", gib(inv.Memory.TotalBytes), len(inv.Memory.DIMMs))
	for _, n := range inv.NICs {
		link := "down"
		if n.Link {
			link = "up"
			if n.SpeedMbps > 0 {
				link = fmt.Sprintf("up %d Mb/s", n.SpeedMbps)
			}
		}
		lldp := ""
		if n.LLDP != nil {
			lldp = fmt.Sprintf(", switch %s port %s", dash(n.LLDP.SystemName), dash(n.LLDP.PortID))
		}
		fmt.Fprintf(tw, "NIC %s:\t%s %s, link %s%s\n", n.Name, n.MAC, dash(n.Driver), link, lldp)
	}
	for _, d := range inv.Disks {
		fmt.Fprintf(tw, "Disk %s:\t%s %s %s, %s, serial %s\n", d.Name, gib(d.SizeBytes), d.Type, dash(d.Transport), dash(d.Model), dash(d.Serial))
	}
	for _, r := range inv.RAID {
		fmt.Fprintf(tw, "RAID:\t%s (%s, tool %s): %d physical, %d logical disk(s)\n", dash(r.Model), dash(r.Driver), dash(r.Tool),
			len(r.PhysicalDisks), len(r.LogicalDisks))
	}
	if n := inv.GPUCount(); n > 0 {
		fmt.Fprintf(tw, "GPUs:\t%d\n", n)
	}
	for _, w := range inv.Warnings {
		fmt.Fprintf(tw, "Warning:\t%s\n", w)
	}
}

// startAndMaybeWait prints the operation an API call started and, with
// wait, follows it to its end.
func startAndMaybeWait(ctx context.Context, c *apiClient, stdout io.Writer, path string, body any, wait bool, timeout time.Duration) error {
	var op operationView
	if err := c.do(ctx, "POST", path, body, &op); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == "machine_busy" {
			return fmt.Errorf("%s", ae.Message)
		}
		return err
	}
	fmt.Fprintf(stdout, "operation %s started (%s)\n", op.ID, op.Kind)
	if op.WebUIURL != "" {
		fmt.Fprintf(stdout, "  web UI: %s\n", op.WebUIURL)
	}
	if !wait {
		return nil
	}
	return waitOperation(ctx, c, stdout, op.ID, timeout)
}

// waitOperation polls an operation, printing a progress line at each change,
// until it ends. A failed or canceled operation is an error.
func waitOperation(ctx context.Context, c *apiClient, stdout io.Writer, id string, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := ""
	for {
		var op operationView
		if err := c.do(ctx, "GET", "/operations/"+url.PathEscape(id), nil, &op); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("gave up waiting for operation %s: %w", id, ctx.Err())
			}
			return err
		}
		line := fmt.Sprintf("%-9s %3.0f%%  %s", op.State, op.Progress*100, op.Step)
		if line != last {
			fmt.Fprintf(stdout, "%s  %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
		if op.final() {
			switch op.State {
			case "succeeded":
				return nil
			case "canceled":
				return fmt.Errorf("operation %s was canceled", op.ID)
			}
			if op.Error != nil {
				return fmt.Errorf("operation %s failed: %s: %s", op.ID, op.Error.Code, op.Error.Message)
			}
			return fmt.Errorf("operation %s failed", op.ID)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for operation %s: %w", id, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func runPower(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand(args, "power", "on", "off", "hard-off", "reset", "cycle", "status")
	if err != nil {
		return err
	}
	c, err := newAPIClient(e)
	if err != nil {
		return err
	}
	fs, out := cliFlags("power "+sub, stderr)
	if sub == "status" {
		cached := fs.Bool("cached", false, "answer the last recorded state instead of asking the BMC")
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("power status MACHINE")
		}
		q := "?refresh=true"
		if *cached {
			q = ""
		}
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/machines/"+url.PathEscape(pos[0])+"/power"+q, nil, &raw); err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(stdout, raw)
		}
		var st struct {
			PowerState string     `json:"power_state"`
			ObservedAt *time.Time `json:"observed_at"`
			Source     string     `json:"source"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: power %s (%s", pos[0], st.PowerState, st.Source)
		if st.ObservedAt != nil {
			fmt.Fprintf(stdout, ", %s", st.ObservedAt.Local().Format(time.RFC3339))
		}
		fmt.Fprintln(stdout, ")")
		return nil
	}
	wait := fs.Bool("wait", true, "wait for the operation to end, with a progress line")
	timeout := fs.Duration("timeout", 0, "give up waiting after this long (0: never)")
	grace := fs.Duration("grace", 0, "off: how long to wait for the OS to shut down before a hard off (default 3m)")
	delay := fs.Duration("cycle-delay", 0, "cycle: how long to keep the chassis off (default 5s)")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("power %s MACHINE", sub)
	}
	body := map[string]any{"action": strings.ReplaceAll(sub, "-", "_")}
	if *grace > 0 {
		body["soft_off_grace_seconds"] = int(grace.Seconds())
	}
	if *delay > 0 {
		body["cycle_delay_seconds"] = int(delay.Seconds())
	}
	return startAndMaybeWait(ctx, c, stdout, "/machines/"+url.PathEscape(pos[0])+"/power", body, *wait, *timeout)
}

func runBootDev(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	dev, rest, err := subcommand(args, "bootdev", "pxe", "disk", "none")
	if err != nil {
		return err
	}
	c, err := newAPIClient(e)
	if err != nil {
		return err
	}
	fs, _ := cliFlags("bootdev", stderr)
	efi := fs.Bool("efi", false, "UEFI boot")
	persistent := fs.Bool("persistent", false, "keep the override for every boot, not just the next")
	wait := fs.Bool("wait", true, "wait for the operation to end")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("bootdev %s MACHINE", dev)
	}
	mode := "legacy"
	if *efi {
		mode = "efi"
	}
	body := map[string]any{"device": dev, "mode": mode, "persistent": *persistent}
	return startAndMaybeWait(ctx, c, stdout, "/machines/"+url.PathEscape(pos[0])+"/boot-device", body, *wait, 0)
}

func runOperation(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand(args, "operation", "list", "show", "wait", "cancel")
	if err != nil {
		return err
	}
	c, err := newAPIClient(e)
	if err != nil {
		return err
	}
	fs, out := cliFlags("operation "+sub, stderr)
	switch sub {
	case "list":
		machine := fs.String("machine", "", "only this machine's operations")
		limit := fs.Int("limit", 20, "how many")
		if _, err := parseInterspersed(fs, rest); err != nil {
			return err
		}
		path := fmt.Sprintf("/operations?limit=%d", *limit)
		if *machine != "" {
			path = fmt.Sprintf("/machines/%s/operations?limit=%d", url.PathEscape(*machine), *limit)
		}
		var raw json.RawMessage
		if err := c.do(ctx, "GET", path, nil, &raw); err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(stdout, raw)
		}
		var page struct {
			Items []operationView `json:"items"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tMACHINE\tKIND\tSTATE\tSTEP\tSTARTED\tERROR")
		for _, op := range page.Items {
			errCode := "-"
			if op.Error != nil {
				errCode = op.Error.Code
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", op.ID, dash(op.MachineName), op.Kind, op.State, dash(op.Step), op.StartedAt.Local().Format(time.RFC3339), errCode)
		}
		return tw.Flush()
	case "show", "cancel":
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("operation %s ID", sub)
		}
		method, path := "GET", "/operations/"+url.PathEscape(pos[0])
		if sub == "cancel" {
			method, path = "POST", path+"/cancel"
		}
		var raw json.RawMessage
		if err := c.do(ctx, method, path, nil, &raw); err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(stdout, raw)
		}
		var op operationView
		if err := json.Unmarshal(raw, &op); err != nil {
			return err
		}
		if sub == "cancel" {
			fmt.Fprintf(stdout, "cancel of operation %s requested\n", op.ID)
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Operation:\t%s (%s)\n", op.ID, op.Kind)
		fmt.Fprintf(tw, "Machine:\t%s\n", dash(op.MachineName))
		fmt.Fprintf(tw, "State:\t%s, step %s, %.0f%%\n", op.State, dash(op.Step), op.Progress*100)
		if op.Error != nil {
			fmt.Fprintf(tw, "Error:\t%s: %s\n", op.Error.Code, op.Error.Message)
		}
		fmt.Fprintf(tw, "Started:\t%s\n", op.StartedAt.Local().Format(time.RFC3339))
		if op.FinishedAt != nil {
			fmt.Fprintf(tw, "Finished:\t%s\n", op.FinishedAt.Local().Format(time.RFC3339))
		}
		fmt.Fprintf(tw, "Workflow:\t%s\n", op.WorkflowID)
		if op.WebUIURL != "" {
			fmt.Fprintf(tw, "Web UI:\t%s\n", op.WebUIURL)
		}
		return tw.Flush()
	case "wait":
		timeout := fs.Duration("timeout", 0, "give up after this long (0: never)")
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("operation wait ID")
		}
		return waitOperation(ctx, c, stdout, pos[0], *timeout)
	}
	return nil
}

func runToken(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand(args, "token", "list", "create", "revoke")
	if err != nil {
		return err
	}
	c, err := newAPIClient(e)
	if err != nil {
		return err
	}
	fs, out := cliFlags("token "+sub, stderr)
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/tokens", nil, &raw); err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(stdout, raw)
		}
		var page struct {
			Items []struct {
				ID        string    `json:"id"`
				Name      string    `json:"name"`
				Prefix    string    `json:"prefix"`
				CreatedAt time.Time `json:"created_at"`
			} `json:"items"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPREFIX\tCREATED\tID")
		for _, t := range page.Items {
			fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\n", t.Name, t.Prefix, t.CreatedAt.Local().Format(time.RFC3339), t.ID)
		}
		return tw.Flush()
	case "create":
		if len(pos) != 1 {
			return usageError("token create NAME")
		}
		var t struct {
			Token string `json:"token"`
		}
		if err := c.do(ctx, "POST", "/tokens", map[string]string{"name": pos[0]}, &t); err != nil {
			return err
		}
		fmt.Fprintln(stdout, t.Token)
		return nil
	case "revoke":
		if len(pos) != 1 {
			return usageError("token revoke ID")
		}
		return c.do(ctx, "DELETE", "/tokens/"+url.PathEscape(pos[0]), nil, nil)
	}
	return nil
}
