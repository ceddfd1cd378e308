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

type imageView struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	URL          string   `json:"url"`
	HeaderNames  []string `json:"header_names"`
	Format       string   `json:"format"`
	ChecksumAlgo string   `json:"checksum_algo"`
	Checksum     string   `json:"checksum"`
	VirtualSize  int64    `json:"virtual_size"`
	OSFamily     string   `json:"os_family"`
	BootMode     string   `json:"boot_mode"`
}

// headerFlags collects repeated --header NAME:VALUE flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want NAME:VALUE")
	}
	h[strings.TrimSpace(k)] = strings.TrimSpace(val)
	return nil
}

func runImage(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand(args, "image", "list", "show", "create", "delete")
	if err != nil {
		return err
	}
	c, err := newAPIClient(e)
	if err != nil {
		return err
	}
	fs, out := cliFlags("image "+sub, stderr)
	switch sub {
	case "list":
		if _, err := parseInterspersed(fs, rest); err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/images", nil, &raw); err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(stdout, raw)
		}
		var page struct {
			Items []imageView `json:"items"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tFORMAT\tOS\tBOOT\tSIZE\tURL")
		for _, im := range page.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", im.Name, im.Format, im.OSFamily, im.BootMode, gib(im.VirtualSize), im.URL)
		}
		return tw.Flush()
	case "show", "delete":
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("image %s IMAGE", sub)
		}
		if sub == "delete" {
			if err := c.do(ctx, "DELETE", "/images/"+url.PathEscape(pos[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "image %s deleted\n", pos[0])
			return nil
		}
		var raw json.RawMessage
		if err := c.do(ctx, "GET", "/images/"+url.PathEscape(pos[0]), nil, &raw); err != nil {
			return err
		}
		return printJSON(stdout, raw)
	case "create":
		src := fs.String("url", "", "where the image is fetched from (http or https)")
		format := fs.String("format", "", "raw, qcow2, raw.gz, raw.xz or raw.zst")
		checksum := fs.String("checksum", "", "sha256:HEX or sha512:HEX of the file at the URL")
		size := fs.Int64("virtual-size", 0, "the disk size it expands to, in bytes")
		family := fs.String("os", "generic", "debian, ubuntu, rhel, suse or generic")
		boot := fs.String("boot", "both", "bios, uefi or both")
		headers := headerFlags{}
		fs.Var(headers, "header", "an extra request header NAME:VALUE (repeatable), e.g. a token; stored encrypted")
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		algo, sum, ok := strings.Cut(*checksum, ":")
		if len(pos) != 1 || *src == "" || *format == "" || !ok {
			return usageError("image create NAME --url URL --format FORMAT --checksum sha256:HEX [flags]")
		}
		body := map[string]any{"name": pos[0], "url": *src, "format": *format, "checksum_algo": algo, "checksum": sum,
			"virtual_size": *size, "os_family": *family, "boot_mode": *boot, "headers": map[string]string(headers)}
		var im imageView
		if err := c.do(ctx, "POST", "/images", body, &im); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "image %s (%s, %s) created: %s\n", im.Name, im.Format, im.OSFamily, im.ID)
		return nil
	}
	return nil
}
