package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
)

type networkView struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	CIDR         string   `json:"cidr"`
	Gateway      string   `json:"gateway"`
	DNS          []string `json:"dns"`
	Domain       string   `json:"domain"`
	RangeStart   string   `json:"range_start"`
	RangeEnd     string   `json:"range_end"`
	LeaseSeconds int      `json:"lease_seconds"`
	RelayAddrs   []string `json:"relay_addrs"`
	Interface    string   `json:"interface"`
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runNetwork(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand(args, "network", "list", "show", "create", "delete")
	if err != nil {
		return err
	}
	c, err := newAPIClient(e)
	if err != nil {
		return err
	}
	fs, out := cliFlags("network "+sub, stderr)
	switch sub {
	case "list":
		if _, err := parseInterspersed(fs, rest); err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/networks", nil, &raw); err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(stdout, raw)
		}
		var page struct {
			Items []networkView `json:"items"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tCIDR\tGATEWAY\tRANGE\tRELAYS\tINTERFACE")
		for _, n := range page.Items {
			rng := "-"
			if n.RangeStart != "" {
				rng = n.RangeStart + "-" + n.RangeEnd
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Kind, n.CIDR, dash(n.Gateway), rng, dash(strings.Join(n.RelayAddrs, ",")), dash(n.Interface))
		}
		return tw.Flush()
	case "show", "delete":
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("network %s NETWORK", sub)
		}
		if sub == "delete" {
			if err := c.do(ctx, "DELETE", "/networks/"+url.PathEscape(pos[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "network %s deleted\n", pos[0])
			return nil
		}
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/networks/"+url.PathEscape(pos[0]), nil, &raw); err != nil {
			return err
		}
		return printJSON(stdout, raw)
	case "create":
		kind := fs.String("kind", "provisioning", "provisioning, bmc or os")
		cidr := fs.String("cidr", "", "IPv4 prefix, e.g. 198.51.100.0/24")
		gateway := fs.String("gateway", "", "default router")
		dns := fs.String("dns", "", "DNS servers, comma separated")
		domain := fs.String("domain", "", "DNS domain")
		rng := fs.String("range", "", "dynamic range START-END")
		lease := fs.Duration("lease", 0, "lease time (default 1h)")
		relays := fs.String("relays", "", "giaddr values of the DHCP relays serving it, comma separated")
		iface := fs.String("interface", "", "the boot service's interface on it (DHCP without relay)")
		bmcPort := fs.Int("bmc-port", 0, "the RMCP+ port of the BMCs of a bmc network (default 623)")
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 || *cidr == "" {
			return usageError("network create NAME --cidr PREFIX [flags]")
		}
		body := map[string]any{"name": pos[0], "kind": *kind, "cidr": *cidr, "gateway": *gateway, "dns": splitList(*dns),
			"domain": *domain, "relay_addrs": splitList(*relays), "interface": *iface, "lease_seconds": int(lease.Seconds()), "bmc_port": *bmcPort}
		if *rng != "" {
			start, end, ok := strings.Cut(*rng, "-")
			if !ok {
				return usageError("--range wants START-END")
			}
			body["range_start"], body["range_end"] = start, end
		}
		var raw json.RawMessage
		if err := c.do(ctx, "POST", "/networks", body, &raw); err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(stdout, raw)
		}
		var n networkView
		if err := json.Unmarshal(raw, &n); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "network %s (%s, %s) created: %s\n", n.Name, n.Kind, n.CIDR, n.ID)
		return nil
	}
	return nil
}
