package store_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"bareflow/contract"
	"bareflow/internal/secret"
	"bareflow/internal/store"
	"bareflow/internal/store/storetest"
)

func TestRamdiskSessions(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "rd-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRamdiskSession(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session before phone-home: got %v, want ErrNotFound", err)
	}
	first, err := s.RecordRamdiskSession(ctx, store.RamdiskSession{MachineID: m.ID, WorkflowID: "machine/" + m.ID,
		Addr: netip.MustParseAddr("198.51.100.50"), SSHHostKey: "ssh-ed25519 AAAA1", MACs: []string{"52:54:00:00:00:01"}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.RecordRamdiskSession(ctx, store.RamdiskSession{MachineID: m.ID, WorkflowID: "machine/" + m.ID,
		Addr: netip.MustParseAddr("198.51.100.51"), SSHPort: 2222, SSHHostKey: "ssh-ed25519 AAAA2"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRamdiskSession(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Addr != second.Addr || got.SSHPort != 2222 || got.SSHHostKey != "ssh-ed25519 AAAA2" || got.PhonedAt.Before(first.PhonedAt) {
		t.Errorf("session: got %+v, want the second phone-home", got)
	}
	if _, err := s.RecordRamdiskSession(ctx, store.RamdiskSession{MachineID: m.ID, WorkflowID: "w", Addr: netip.MustParseAddr("198.51.100.51")}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("session without host key: got %v, want ErrInvalid", err)
	}
	if err := s.DeleteRamdiskSession(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRamdiskSession(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session after delete: got %v, want ErrNotFound", err)
	}
}

func TestEnsureSecret(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	calls := 0
	gen := func() ([]byte, error) { calls++; return []byte("key-material"), nil }
	a, err := s.EnsureSecret(ctx, "ssh-key", gen)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.EnsureSecret(ctx, "ssh-key", func() ([]byte, error) { return []byte("other"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != "key-material" || string(b) != "key-material" || calls != 1 {
		t.Errorf("secret: got %q then %q after %d generations, want the first kept", a, b, calls)
	}
}

func TestPendingBMCCommit(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "bmc-pending-1"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	gen := func() (secret.String, error) { n++; return secret.String("Pw-" + strings.Repeat("x", n)), nil }
	pw1, err := s.PendingBMC(ctx, m.ID, "bareflow", gen)
	if err != nil {
		t.Fatal(err)
	}
	pw2, err := s.PendingBMC(ctx, m.ID, "bareflow", gen)
	if err != nil {
		t.Fatal(err)
	}
	if pw1.Reveal() != pw2.Reveal() || n != 1 {
		t.Fatalf("pending password: got %q then %q (%d made), want one kept", pw1.Reveal(), pw2.Reveal(), n)
	}
	// Pending credentials are not the machine's until committed.
	if got, _ := s.GetMachine(ctx, m.ID); got.BMCAddr.IsValid() || got.HasBMCPassword {
		t.Fatalf("machine before commit: got BMC %v (password %v), want none", got.BMCAddr, got.HasBMCPassword)
	}
	addr := netip.MustParseAddrPort("203.0.113.10:623")
	cred, err := s.PendingBMCCredentials(ctx, m.ID, addr, 3)
	if err != nil || cred.User != "bareflow" || cred.Password.Reveal() != pw1.Reveal() || cred.Addr != addr {
		t.Fatalf("pending credentials: got %+v, %v", cred, err)
	}
	if err := s.CommitBMC(ctx, m.ID, addr, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitBMC(ctx, m.ID, addr, 3); err != nil {
		t.Errorf("second commit: got %v, want nil (already committed)", err)
	}
	got, err := s.BMCCredentials(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Addr != addr || got.User != "bareflow" || got.Password.Reveal() != pw1.Reveal() || got.CipherSuite != 3 {
		t.Errorf("committed credentials: got %+v, want %s bareflow", got, addr)
	}
	if _, err := s.PendingBMCCredentials(ctx, m.ID, addr, 3); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("pending after commit: got %v, want ErrNotFound", err)
	}
	// A dropped set-up leaves nothing behind.
	if _, err := s.PendingBMC(ctx, m.ID, "bareflow", gen); err != nil {
		t.Fatal(err)
	}
	if err := s.DropPendingBMC(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitBMC(ctx, m.ID, netip.MustParseAddrPort("203.0.113.11:623"), 3); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("commit after drop: got %v, want ErrNotFound", err)
	}
}

func TestSaveInventory(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	a, err := s.CreateMachine(ctx, store.MachineCreate{Name: "inv-a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateMachine(ctx, store.MachineCreate{Name: "inv-b"})
	if err != nil {
		t.Fatal(err)
	}
	inv := contract.Inventory{
		CollectedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		System:      contract.SystemInfo{Vendor: "Dell Inc.", Model: "PowerEdge R740", Serial: "7XK2M53", UUID: "4c4c4544-0058-4b10-8032-b7c04f4d3533"},
		CPU:         contract.CPUInfo{Sockets: 2, Cores: 32, Threads: 64},
		Memory:      contract.MemoryInfo{TotalBytes: 384 << 30},
		Disks:       []contract.Disk{{Name: "sda", SizeBytes: 1 << 40}, {Name: "sdb"}},
	}
	if err := s.SaveInventory(ctx, a.ID, inv); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveInventory(ctx, a.ID, inv); err != nil {
		t.Fatalf("second save: %v", err)
	}
	m, err := s.GetMachine(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Vendor != "Dell Inc." || m.Serial != "7XK2M53" || m.SystemUUID != inv.System.UUID || m.CPUThreads != 64 ||
		m.MemoryBytes != 384<<30 || m.DiskCount != 2 || !m.InventoryAt.Equal(inv.CollectedAt) {
		t.Errorf("machine after save: got %+v", m)
	}
	got, err := s.GetInventory(ctx, a.ID)
	if err != nil || got.System.Model != "PowerEdge R740" || len(got.Disks) != 2 || got.Disks[0].SizeBytes != 1<<40 {
		t.Errorf("inventory: got %+v, %v", got, err)
	}
	var dup *store.DuplicateMachineError
	if err := s.SaveInventory(ctx, b.ID, inv); !errors.As(err, &dup) || dup.Other != "inv-a" || !errors.Is(err, store.ErrConflict) {
		t.Errorf("same hardware on another machine: got %v, want a duplicate of inv-a", err)
	}
	if _, err := s.GetInventory(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("inventory never collected: got %v, want ErrNotFound", err)
	}

	for name, tc := range map[string]struct {
		f    store.MachineFilter
		want int
	}{
		"cpus_min 64":     {store.MachineFilter{MinCPUs: 64}, 1},
		"cpus_min 65":     {store.MachineFilter{MinCPUs: 65}, 0},
		"cpus 64":         {store.MachineFilter{CPUs: 64}, 1},
		"memory_min 384G": {store.MachineFilter{MinMemoryBytes: 384 << 30}, 1},
		"memory_min 385G": {store.MachineFilter{MinMemoryBytes: 385 << 30}, 0},
		"disks 2":         {store.MachineFilter{Disks: 2}, 1},
		"disks_min 3":     {store.MachineFilter{MinDisks: 3}, 0},
		"model":           {store.MachineFilter{Model: "PowerEdge R740"}, 1},
		"vendor and cpus": {store.MachineFilter{Vendor: "Dell Inc.", MinCPUs: 2}, 1},
	} {
		ms, _, err := s.ListMachines(ctx, tc.f)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(ms) != tc.want {
			t.Errorf("%s: got %d machines, want %d", name, len(ms), tc.want)
		}
	}
	if _, _, err := s.ListMachines(ctx, store.MachineFilter{MinCPUs: -1}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("negative filter: got %v, want ErrInvalid", err)
	}
}

func TestBMCNetworkAllocation(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	if _, err := s.BMCNetwork(ctx, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no BMC network: got %v, want ErrNotFound", err)
	}
	n, err := s.CreateNetwork(ctx, store.Network{Name: "bmc", Kind: store.NetworkBMC, CIDR: netip.MustParsePrefix("203.0.113.0/24"),
		Gateway: netip.MustParseAddr("203.0.113.1"), RangeStart: netip.MustParseAddr("203.0.113.10"), RangeEnd: netip.MustParseAddr("203.0.113.11"), BMCPort: 6230})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.BMCNetwork(ctx, "")
	if err != nil || got.ID != n.ID || got.BMCPort != 6230 {
		t.Fatalf("the only BMC network: got %+v, %v", got, err)
	}
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "alloc-1"})
	if err != nil {
		t.Fatal(err)
	}
	mac := mustMAC(t, "0c:c4:7a:00:00:01")
	l1, err := s.AllocateReserved(ctx, n, mac, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := s.AllocateReserved(ctx, n, mac, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	inRange := func(a netip.Addr) bool {
		return a == netip.MustParseAddr("203.0.113.10") || a == netip.MustParseAddr("203.0.113.11")
	}
	if l1.Addr != l2.Addr || !l2.Reserved || !inRange(l1.Addr) {
		t.Errorf("allocations: got %s then %s (reserved %v), want the same address of the range twice", l1.Addr, l2.Addr, l2.Reserved)
	}
	other, err := s.AllocateReserved(ctx, n, mustMAC(t, "0c:c4:7a:00:00:02"), m.ID)
	if err != nil || other.Addr == l1.Addr || !inRange(other.Addr) {
		t.Errorf("second BMC: got %s, %v, want the other address of the range", other.Addr, err)
	}
	// Another machine whose BMC reports the same MAC (a cloned or
	// misconfigured BMC) does not get the address a second time.
	m2, err := s.CreateMachine(ctx, store.MachineCreate{Name: "alloc-2"})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := s.AllocateReserved(ctx, n, mac, m2.ID); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), m.ID) {
		t.Errorf("same MAC for another machine: got %s, %v; want ErrConflict naming %s", l.Addr, err, m.ID)
	}
	if _, err := s.AllocateReserved(ctx, n, mustMAC(t, "0c:c4:7a:00:00:03"), m.ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("pool exhausted: got %v, want ErrConflict", err)
	}
}

func TestSaveRAID(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "raid-1"})
	if err != nil {
		t.Fatal(err)
	}
	if vols, root, err := s.RAID(ctx, m.ID); err != nil || len(vols) != 0 || root != "" {
		t.Fatalf("RAID of a new machine: got %v %q %v, want none", vols, root, err)
	}
	vols := []contract.BuiltVolume{{Controller: "md", Level: contract.RAID10, ID: "bf-r10", Device: "md127", SizeBytes: 2 << 30, Root: true}}
	if err := s.SaveRAID(ctx, m.ID, vols, "md127"); err != nil {
		t.Fatal(err)
	}
	got, root, err := s.RAID(ctx, m.ID)
	if err != nil || len(got) != 1 || got[0] != vols[0] || root != "md127" {
		t.Errorf("RAID: got %+v %q %v, want %+v on md127", got, root, err, vols)
	}
	if err := s.SaveRAID(ctx, m.ID, nil, "bad device;"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bad root device: got %v, want ErrInvalid", err)
	}
}
