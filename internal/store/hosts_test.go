package store_test

import (
	"errors"
	"testing"

	"bareflow/internal/store"
	"bareflow/internal/store/storetest"
)

func TestHosts(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "hv-1", PXEMAC: nthMAC(41)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetHost(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("host of a plain machine: got %v, want ErrNotFound", err)
	}
	if err := s.ClaimHostUndo(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("claim of a plain machine: got %v, want ErrNotFound", err)
	}
	h := store.Host{MachineID: m.ID, AgentURL: "http://192.0.2.10:8600", CPUs: 64, MemoryBytes: 256 << 30, StorageBytes: 3 << 40,
		WorkspacePath: "/var/lib/libvirt/images"}
	if err := s.RecordHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordHost(ctx, store.Host{MachineID: "00000000-0000-4000-8000-000000000000", AgentURL: "x", WorkspacePath: "/w"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("host of no machine: got %v, want ErrNotFound", err)
	}
	got, err := s.GetHost(ctx, m.ID)
	if err != nil || got.CPUs != 64 || got.StorageBytes != 3<<40 || got.Guests != 0 || got.ConvertedAt.IsZero() || !got.UndoAt.IsZero() {
		t.Fatalf("host: got %+v, %v", got, err)
	}

	if got, err = s.SetHostGuests(ctx, m.ID, 2); err != nil || got.Guests != 2 {
		t.Fatalf("set guests: got %+v, %v", got, err)
	}
	// A conversion run again keeps the guest count.
	h.CPUs = 32
	if err := s.RecordHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetHost(ctx, m.ID); got.CPUs != 32 || got.Guests != 2 {
		t.Errorf("host recorded again: got %+v, want 32 CPUs and 2 guests", got)
	}
	if err := s.ClaimHostUndo(ctx, m.ID); !errors.Is(err, store.ErrHostHasGuests) {
		t.Errorf("claim with guests: got %v, want ErrHostHasGuests", err)
	}
	if _, err := s.SetHostGuests(ctx, m.ID, -1); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("negative guests: got %v, want ErrInvalid", err)
	}
	if _, err := s.SetHostGuests(ctx, m.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimHostUndo(ctx, m.ID); err != nil {
		t.Fatalf("claim without guests: %v", err)
	}
	if err := s.ClaimHostUndo(ctx, m.ID); err != nil {
		t.Errorf("claim again: %v", err)
	}
	// A host being turned back takes no guests.
	if _, err := s.SetHostGuests(ctx, m.ID, 1); !errors.Is(err, store.ErrConflict) {
		t.Errorf("guests on a claimed host: got %v, want ErrConflict", err)
	}
	if err := s.ReleaseHostUndo(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetHostGuests(ctx, m.ID, 1); err != nil {
		t.Errorf("guests after the claim was released: %v", err)
	}
	if _, err := s.SetHostGuests(ctx, m.ID, 0); err != nil {
		t.Fatal(err)
	}

	list, err := s.ListHosts(ctx)
	if err != nil || len(list) != 1 || list[0].MachineID != m.ID {
		t.Fatalf("list: got %+v, %v", list, err)
	}
	if err := s.RemoveHost(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveHost(ctx, m.ID); err != nil {
		t.Errorf("remove again: %v", err)
	}
	if list, err = s.ListHosts(ctx); err != nil || len(list) != 0 {
		t.Errorf("list after remove: got %+v, %v", list, err)
	}
}
