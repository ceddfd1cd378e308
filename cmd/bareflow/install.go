package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// readJSONObject reads a JSON object from a file, or from stdin for "-".
func readJSONObject(name, what string) (map[string]any, error) {
	var (
		raw []byte
		err error
	)
	if name == "-" {
		raw, err = io.ReadAll(io.LimitReader(os.Stdin, 4<<20))
	} else {
		raw, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%s %s is not a JSON object: %w", what, name, err)
	}
	return obj, nil
}

// runInstall is `machine install` and `machine reinstall`: a request from
// -f, with the common fields as flags on top.
func runInstall(ctx context.Context, c *apiClient, sub string, rest []string, stdout, stderr io.Writer) error {
	fs, _ := cliFlags("machine "+sub, stderr)
	reqFile := fs.String("f", "", "the request, a JSON file (see the API's InstallRequest; - for stdin)")
	image := fs.String("image", "", "the image's name or ID")
	hostname := fs.String("hostname", "", "the host name")
	rootDisk := fs.String("root-disk", "", "the root disk's path (/dev/sda)")
	keyFile := fs.String("ssh-key-file", "", "an authorized_keys file for root")
	passwordHash := fs.String("root-password-hash", "", "root's crypt(3) hash ($6$…)")
	keep := fs.String("keep", "", "reinstall: labels of the partitions to keep, comma-separated")
	force := fs.Bool("force", false, "install over a running OS")
	wait := fs.Bool("wait", true, "wait for the operation to end")
	pos, err := parseInterspersed(fs, rest)
	usage := "machine " + sub + " MACHINE [-f REQUEST.json] [--image IMAGE] [--hostname H] [--root-disk /dev/X] [--ssh-key-file F] [--root-password-hash H]"
	if sub == "reinstall" {
		usage += " [--keep data,logs]"
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("%s", usage)
	}
	body := map[string]any{}
	if *reqFile != "" {
		if body, err = readJSONObject(*reqFile, "install request"); err != nil {
			return err
		}
	}
	osSettings, _ := body["os"].(map[string]any)
	if osSettings == nil {
		osSettings = map[string]any{}
	}
	if *image != "" {
		body["image"] = *image
	}
	if *hostname != "" {
		osSettings["hostname"] = *hostname
	}
	if *passwordHash != "" {
		osSettings["root_password_hash"] = *passwordHash
	}
	if *keyFile != "" {
		raw, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("read SSH keys: %w", err)
		}
		var keys []string
		for _, l := range strings.Split(string(raw), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				keys = append(keys, l)
			}
		}
		osSettings["ssh_authorized_keys"] = keys
	}
	if len(osSettings) > 0 {
		body["os"] = osSettings
	}
	if *rootDisk != "" {
		body["root_disk"] = map[string]any{"path": *rootDisk}
	}
	if *keep != "" {
		if sub != "reinstall" {
			return usageError("--keep is for machine reinstall")
		}
		body["keep"] = strings.Split(*keep, ",")
	}
	if *force {
		body["force"] = true
	}
	if body["image"] == nil {
		return usageError("%s: an image is required (--image or in -f)", usage)
	}
	return startAndMaybeWait(ctx, c, stdout, "/machines/"+url.PathEscape(pos[0])+"/"+sub, body, *wait, 0)
}

// runWipe is `machine wipe`.
func runWipe(ctx context.Context, c *apiClient, rest []string, stdout, stderr io.Writer) error {
	fs, _ := cliFlags("machine wipe", stderr)
	confirm := fs.String("confirm", "", "the machine's name or ID again: a wipe destroys every disk")
	erase := fs.String("erase", "", "also erase the data: auto, nvme, ata-secure-erase, discard or overwrite")
	keepRAID := fs.Bool("keep-raid", false, "leave the RAID configuration as it is")
	wait := fs.Bool("wait", true, "wait for the operation to end")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *confirm == "" {
		return usageError("machine wipe MACHINE --confirm MACHINE [--erase METHOD] [--keep-raid]")
	}
	body := map[string]any{"confirm": *confirm, "erase": *erase, "keep_raid": *keepRAID}
	return startAndMaybeWait(ctx, c, stdout, "/machines/"+url.PathEscape(pos[0])+"/wipe", body, *wait, 0)
}
