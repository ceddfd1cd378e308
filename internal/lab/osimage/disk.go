package osimage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const sector = 512

// diskSpec is what assemble makes.
type diskSpec struct {
	size     int64
	table    Table
	rootSize int64
	rootFS   FSType
	// bootName is the first partition's GPT name and its filesystem's
	// label; legacyBoot marks it bootable for a BIOS (GPT attribute or
	// dos active flag).
	bootName   string
	legacyBoot bool
	// bootVolID is the vfat volume ID, 8 hex digits (random when empty).
	bootVolID string
	// bootCode, when set, is a file whose first 440 bytes go to the MBR.
	bootCode string
	// root is the root filesystem's content, rootUUID its UUID.
	root     *tree
	rootUUID string
	// fillBoot, when set, adds files to the boot filesystem (a file image
	// of the partition) before it is copied into the disk.
	fillBoot func(ctx context.Context, fat string) error
}

// assemble writes the disk image at disk: partition table, vfat boot
// partition, root filesystem, boot code. work is a folder for the
// intermediate files. It returns the image's description.
func assemble(ctx context.Context, work, disk string, s diskSpec) (Image, error) {
	tools := []string{"sfdisk", "mkfs.vfat", "mmd", "mcopy"}
	if s.rootFS == XFS {
		tools = append(tools, "mkfs.xfs")
	} else {
		tools = append(tools, "mkfs.ext4", "debugfs")
	}
	if err := needTools(tools...); err != nil {
		return Image{}, err
	}
	if err := createSparse(disk, s.size); err != nil {
		return Image{}, err
	}
	if _, err := runCmd(ctx, command{argv: []string{"sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk}, stdin: strings.NewReader(sfdiskScript(s))}); err != nil {
		return Image{}, err
	}

	// The boot filesystem.
	fat := filepath.Join(work, "boot.vfat")
	if err := createSparse(fat, bootSize); err != nil {
		return Image{}, err
	}
	volID := s.bootVolID
	if volID == "" {
		volID = randomHex(4)
	}
	if _, err := run(ctx, "mkfs.vfat", "-n", strings.ToUpper(s.bootName), "-i", volID,
		"-h", fmt.Sprint(firstOffset/sector), "-S", fmt.Sprint(sector), fat); err != nil {
		return Image{}, err
	}
	if s.fillBoot != nil {
		if err := s.fillBoot(ctx, fat); err != nil {
			return Image{}, err
		}
	}
	if err := copyInto(disk, fat, firstOffset); err != nil {
		return Image{}, err
	}
	if err := os.Remove(fat); err != nil {
		return Image{}, err
	}

	// The root filesystem.
	rootImg := filepath.Join(work, "root."+string(s.rootFS))
	if err := makeRoot(ctx, work, rootImg, s); err != nil {
		return Image{}, err
	}
	if err := copyInto(disk, rootImg, rootOffset); err != nil {
		return Image{}, err
	}
	if err := os.Remove(rootImg); err != nil {
		return Image{}, err
	}

	if s.bootCode != "" {
		if err := writeBootCode(disk, s.bootCode); err != nil {
			return Image{}, err
		}
	}
	img, err := describe(ctx, disk)
	if err != nil {
		return Image{}, err
	}
	img.Boot.FSType, img.Boot.UUID, img.Boot.Label = "vfat", espUUID(volID), strings.ToUpper(s.bootName)
	img.Root.FSType, img.Root.UUID, img.Root.Label = string(s.rootFS), s.rootUUID, RootLabel
	return img, nil
}

// sfdiskScript lays out the two partitions.
func sfdiskScript(s diskSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "label: %s\nunit: sectors\n", s.table)
	bootStart, bootLen := firstOffset/sector, bootSize/sector
	rootStart, rootLen := rootOffset/sector, s.rootSize/sector
	if s.table == GPT {
		b.WriteString("first-lba: 2048\n")
		fmt.Fprintf(&b, "start=%d, size=%d, type=%s, name=%q", bootStart, bootLen, TypeESP, s.bootName)
		if s.legacyBoot {
			b.WriteString(`, attrs="LegacyBIOSBootable"`)
		}
		fmt.Fprintf(&b, "\nstart=%d, size=%d, type=%s, name=%q\n", rootStart, rootLen, TypeRootX86_64, RootLabel)
		return b.String()
	}
	fmt.Fprintf(&b, "start=%d, size=%d, type=ef", bootStart, bootLen)
	if s.legacyBoot {
		b.WriteString(", bootable")
	}
	fmt.Fprintf(&b, "\nstart=%d, size=%d, type=83\n", rootStart, rootLen)
	return b.String()
}

// makeRoot makes the root filesystem in the file img.
func makeRoot(ctx context.Context, work, img string, s diskSpec) error {
	if err := createSparse(img, s.rootSize); err != nil {
		return err
	}
	if s.rootFS == XFS {
		blobs := filepath.Join(work, "blobs")
		if err := os.Mkdir(blobs, 0o700); err != nil {
			return err
		}
		proto, err := s.root.protoFile(blobs)
		if err != nil {
			return err
		}
		protoPath := filepath.Join(work, "root.proto")
		if err := os.WriteFile(protoPath, []byte(proto), 0o600); err != nil {
			return err
		}
		if _, err := run(ctx, "mkfs.xfs", "-q", "-f", "-L", RootLabel, "-m", "uuid="+s.rootUUID, "-p", protoPath, img); err != nil {
			return err
		}
		// A prototype file has no sticky bit: xfs_db sets it.
		for _, p := range s.root.paths() {
			if n := s.root.nodes[p]; n.mode&fs.ModeSticky != 0 {
				if _, err := run(ctx, "xfs_db", "-x", "-c", "path /"+p, "-c", fmt.Sprintf("write core.mode 0%o", inodeMode(n.mode)), img); err != nil {
					return err
				}
			}
		}
		return os.RemoveAll(blobs)
	}
	stage := filepath.Join(work, "stage")
	if err := os.Mkdir(stage, 0o755); err != nil {
		return err
	}
	if err := s.root.stage(stage); err != nil {
		return fmt.Errorf("stage the root tree: %w", err)
	}
	if _, err := run(ctx, "mkfs.ext4", "-q", "-F", "-b", "4096", "-L", RootLabel, "-U", s.rootUUID,
		"-E", "root_owner=0:0", "-d", stage, img); err != nil {
		return err
	}
	if err := debugfsWrite(ctx, img, s.root.ownerScript()); err != nil {
		return fmt.Errorf("set owners: %w", err)
	}
	return os.RemoveAll(stage)
}

// debugfsWrite runs a debugfs command file on an ext filesystem, writable.
// debugfs exits 0 when a command fails, so any message on standard error
// but its banner is a failure.
func debugfsWrite(ctx context.Context, img, script string) error {
	path, err := lookTool("debugfs")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-w", "-f", "-", img)
	cmd.Stdin = strings.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debugfs -w %s: %w: %s", img, err, stderr.String())
	}
	var bad []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "debugfs ") {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("debugfs -w %s: %s", img, strings.Join(bad, "; "))
	}
	return nil
}

// describe reads the image's partition table back.
func describe(ctx context.Context, disk string) (Image, error) {
	out, err := run(ctx, "sfdisk", "--json", disk)
	if err != nil {
		return Image{}, err
	}
	var d struct {
		Table struct {
			Label      string `json:"label"`
			ID         string `json:"id"`
			Partitions []struct {
				Start int64  `json:"start"`
				Size  int64  `json:"size"`
				Type  string `json:"type"`
				UUID  string `json:"uuid"`
				Name  string `json:"name"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return Image{}, fmt.Errorf("sfdisk --json %s: %w", disk, err)
	}
	if len(d.Table.Partitions) != 2 {
		return Image{}, fmt.Errorf("sfdisk --json %s: %d partitions, want 2", disk, len(d.Table.Partitions))
	}
	st, err := os.Stat(disk)
	if err != nil {
		return Image{}, err
	}
	img := Image{Size: st.Size(), Table: Table(d.Table.Label), DiskID: d.Table.ID}
	var parts [2]Part
	for i, p := range d.Table.Partitions {
		parts[i] = Part{Number: i + 1, Start: p.Start * sector, Size: p.Size * sector, Type: p.Type, PartUUID: p.UUID, Name: p.Name}
		if img.Table == DOS {
			parts[i].Type = strings.ToLower(p.Type)
			parts[i].PartUUID = fmt.Sprintf("%s-%02d", strings.TrimPrefix(strings.ToLower(d.Table.ID), "0x"), i+1)
		}
	}
	img.Boot, img.Root = parts[0], parts[1]
	return img, nil
}

// createSparse creates (or truncates) a file of size bytes, all holes.
func createSparse(p string, size int64) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyInto writes the file src into dst at offset, skipping blocks of
// zeros so that dst stays sparse (dst's blocks there must be zero).
func copyInto(dst, src string, offset int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := copySparse(out, in, offset); err != nil {
		out.Close()
		return fmt.Errorf("copy %s into %s: %w", src, dst, err)
	}
	return out.Close()
}

// copySparse copies in to out at offset, writing only blocks that are not
// all zeros.
func copySparse(out io.WriterAt, in io.Reader, offset int64) error {
	buf := make([]byte, 1*MiB)
	zero := make([]byte, len(buf))
	pos := offset
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			for b := 0; b < n; b += 64 << 10 {
				e := min(b+64<<10, n)
				if !bytes.Equal(buf[b:e], zero[:e-b]) {
					if _, werr := out.WriteAt(buf[b:e], pos+int64(b)); werr != nil {
						return werr
					}
				}
			}
			pos += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeBootCode puts the first 440 bytes of the file code (an MBR boot
// program) at the start of disk, leaving the disk signature and the
// partition table alone.
func writeBootCode(disk, code string) error {
	b, err := os.ReadFile(code)
	if err != nil {
		return err
	}
	if len(b) > 440 {
		b = b[:440]
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// mtools runs an mtools command on a FAT image file.
func mtools(ctx context.Context, args ...string) error {
	_, err := runCmd(ctx, command{argv: args, env: []string{"MTOOLS_SKIP_CHECK=1"}})
	return err
}
