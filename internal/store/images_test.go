package store_test

import (
	"errors"
	"strings"
	"testing"

	"bareflow/contract"
	"bareflow/internal/secret"
	"bareflow/internal/store"
	"bareflow/internal/store/storetest"
)

func TestImages(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	sum := strings.Repeat("ab", 32)
	in := store.ImageCreate{
		Image: store.Image{Name: "debian-12", URL: "https://images.example.net/debian-12.raw.zst", Format: contract.ImageRawZstd,
			ChecksumAlgo: "sha256", Checksum: strings.ToUpper(sum), VirtualSize: 2 << 30, OSFamily: contract.OSDebian, BootMode: contract.ImageBootUEFI},
		Headers: map[string]secret.String{"X-Auth-Token": "s3cr3t"},
	}
	im, err := s.CreateImage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if im.Checksum != sum || len(im.HeaderNames) != 1 || im.HeaderNames[0] != "X-Auth-Token" {
		t.Errorf("created: got %+v", im)
	}
	got, headers, err := s.ImageSource(ctx, "debian-12")
	if err != nil || got.ID != im.ID || headers["X-Auth-Token"].Reveal() != "s3cr3t" {
		t.Fatalf("source: got %+v %v %v", got, headers, err)
	}
	if byID, err := s.GetImage(ctx, im.ID); err != nil || byID.Name != "debian-12" || byID.OSFamily != contract.OSDebian {
		t.Errorf("by ID: got %+v %v", byID, err)
	}
	if list, err := s.ListImages(ctx); err != nil || len(list) != 1 {
		t.Errorf("list: got %d, %v", len(list), err)
	}
	if _, err := s.CreateImage(ctx, in); !errors.Is(err, store.ErrConflict) {
		t.Errorf("same name again: got %v, want ErrConflict", err)
	}
	for name, mutate := range map[string]func(*store.ImageCreate){
		"file URL":         func(c *store.ImageCreate) { c.URL = "file:///etc/passwd" },
		"credentials":      func(c *store.ImageCreate) { c.URL = "https://u:p@example.net/x.raw" },
		"bad checksum":     func(c *store.ImageCreate) { c.Checksum = "xyz" },
		"sha1":             func(c *store.ImageCreate) { c.ChecksumAlgo = "sha1" },
		"unknown format":   func(c *store.ImageCreate) { c.Format = "vmdk" },
		"header injection": func(c *store.ImageCreate) { c.Headers = map[string]secret.String{"X-A": "a\r\nHost: evil"} },
		"bad name":         func(c *store.ImageCreate) { c.Name = "Debian 12" },
	} {
		c := in
		c.Name = "other"
		mutate(&c)
		if _, err := s.CreateImage(ctx, c); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	if err := s.DeleteImage(ctx, im.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetImage(ctx, "debian-12"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: got %v, want ErrNotFound", err)
	}
}
