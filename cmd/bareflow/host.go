package main

import (
	"context"
	"io"
	"net/url"
)

// runConvertToHost is `machine convert-to-host`: the request from -f (an
// install request plus host), with the host settings as flags on top.
func runConvertToHost(ctx context.Context, c *apiClient, rest []string, stdout, stderr io.Writer) error {
	fs, _ := cliFlags("machine convert-to-host", stderr)
	reqFile := fs.String("f", "", "the request, a JSON file (an install request plus host; - for stdin)")
	image := fs.String("image", "", "the image's name or ID")
	controller := fs.String("controller-url", "", "the URL the host agent reports to")
	workspace := fs.String("workspace-path", "", "where the workspace is mounted (default /var/lib/libvirt/images)")
	workspaceFS := fs.String("workspace-fs", "", "the workspace's filesystem: xfs (default) or ext4")
	agentPort := fs.Int("agent-port", 0, "the host agent's port (default 8600)")
	force := fs.Bool("force", false, "convert a machine that runs an OS")
	wait := fs.Bool("wait", true, "wait for the operation to end")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	usage := "machine convert-to-host MACHINE -f REQUEST.json [--image IMAGE] [--controller-url URL] [--workspace-path P] [--workspace-fs xfs|ext4] [--agent-port N]"
	if len(pos) != 1 {
		return usageError("%s", usage)
	}
	body := map[string]any{}
	if *reqFile != "" {
		if body, err = readJSONObject(*reqFile, "host request"); err != nil {
			return err
		}
	}
	host, _ := body["host"].(map[string]any)
	if host == nil {
		host = map[string]any{}
	}
	for k, v := range map[string]string{"controller_url": *controller, "workspace_path": *workspace, "workspace_fs": *workspaceFS} {
		if v != "" {
			host[k] = v
		}
	}
	if *agentPort != 0 {
		host["agent_port"] = *agentPort
	}
	if len(host) > 0 {
		body["host"] = host
	}
	if *image != "" {
		body["image"] = *image
	}
	if *force {
		body["force"] = true
	}
	if body["image"] == nil {
		return usageError("%s: an image is required (--image or in -f)", usage)
	}
	return startAndMaybeWait(ctx, c, stdout, "/machines/"+url.PathEscape(pos[0])+"/convert-to-host", body, *wait, 0)
}

// runUndoHost is `machine undo-host`: the host, without guests, is wiped
// back to ready.
func runUndoHost(ctx context.Context, c *apiClient, rest []string, stdout, stderr io.Writer) error {
	fs, _ := cliFlags("machine undo-host", stderr)
	confirm := fs.String("confirm", "", "the machine's name or ID again: the undo wipes every disk")
	erase := fs.String("erase", "", "also erase the data: auto, nvme, ata-secure-erase, discard or overwrite")
	keepRAID := fs.Bool("keep-raid", false, "leave the RAID configuration as it is")
	wait := fs.Bool("wait", true, "wait for the operation to end")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *confirm == "" {
		return usageError("machine undo-host MACHINE --confirm MACHINE [--erase METHOD] [--keep-raid]")
	}
	body := map[string]any{"confirm": *confirm, "erase": *erase, "keep_raid": *keepRAID}
	return startAndMaybeWait(ctx, c, stdout, "/machines/"+url.PathEscape(pos[0])+"/undo-host", body, *wait, 0)
}
