package store_test

import (
	"errors"
	"net/netip"
	"testing"

	"bareflow/contract"
	"bareflow/internal/store"
	"bareflow/internal/store/storetest"
)

func TestAdoption(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := testContext(t)
	bmcAddr := netip.MustParseAddrPort("198.51.100.70:623")
	m, err := s.BeginAdoption(ctx, store.AdoptionCreate{Name: "adopt-1", BMCAddr: bmcAddr, BMCUser: "root", BMCPassword: "calvin",
		SSHAddr: "198.51.100.71:22", SSHPassword: "hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	if m.State != contract.MachineRegistering || m.BMCAddr.IsValid() {
		t.Errorf("new adoption: got state %s, BMC %s, want registering without a BMC until it is verified", m.State, m.BMCAddr)
	}
	cred, err := s.PendingBMCCredentials(ctx, m.ID, bmcAddr, 0)
	if err != nil || cred.User != "root" || cred.Password.Reveal() != "calvin" {
		t.Fatalf("pending BMC credentials: got %+v, %v, want root/calvin", cred, err)
	}
	if pw, err := s.AdoptSSHPassword(ctx, m.ID); err != nil || pw.Reveal() != "hunter2" {
		t.Fatalf("SSH password: got %v, want hunter2", err)
	}

	// A second adoption of the same BMC is refused.
	_, err = s.BeginAdoption(ctx, store.AdoptionCreate{Name: "adopt-2", BMCAddr: bmcAddr, BMCUser: "root", BMCPassword: "x", SSHAddr: "198.51.100.72:22"})
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Field != "BMC address" {
		t.Errorf("second adoption of one BMC: got %v, want a BMC address conflict", err)
	}

	if err := s.DropAdoptSSHPassword(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdoptSSHPassword(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SSH password after drop: got %v, want ErrNotFound", err)
	}

	inv := contract.Inventory{System: contract.SystemInfo{Vendor: "Dell Inc.", Model: "PowerEdge R740", Serial: "7XK2M53", UUID: "4c4c4544-0058-3410-804b-b8c04f324d33"},
		CPU: contract.CPUInfo{Threads: 64}, NICs: []contract.NIC{{Name: "eno1", MAC: "e4:43:4b:1a:2b:30"}}}
	a := store.Adoption{Inventory: inv, BMCAddr: bmcAddr, PowerState: contract.PowerOn,
		OS: store.AdoptedOS{Name: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0-18-amd64", Hostname: "web-1", Address: "198.51.100.71:22",
			SSHUser: "root", SSHHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"}}
	if err := s.CompleteAdoption(ctx, m.ID, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteAdoption(ctx, m.ID, a); err != nil {
		t.Errorf("completing again: got %v, want nil", err)
	}
	got, err := s.GetMachine(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != contract.MachineRunning || got.BMCAddr != bmcAddr || !got.HasBMCPassword || got.SystemUUID != inv.System.UUID ||
		got.CPUThreads != 64 || got.PowerState != contract.PowerOn {
		t.Errorf("adopted machine: got %+v, want running with its BMC, inventory and power", got)
	}
	if c, err := s.BMCCredentials(ctx, m.ID); err != nil || c.Password.Reveal() != "calvin" || c.User != "root" {
		t.Errorf("BMC credentials: got %+v, %v, want root/calvin", c, err)
	}
	o, err := s.GetAdoptedOS(ctx, m.ID)
	if err != nil || o.Name != a.OS.Name || o.Kernel != a.OS.Kernel || o.SSHHostKey != a.OS.SSHHostKey || o.AdoptedAt.IsZero() {
		t.Errorf("adopted OS: got %+v, %v, want %+v", o, err, a.OS)
	}
	if err := s.DiscardAdoption(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetMachine(ctx, m.ID); err != nil {
		t.Errorf("discarding a completed adoption removed the machine: %v", err)
	}

	// The same hardware under another adoption is a duplicate, by UUID, by
	// vendor and serial, or by a NIC that is another machine's PXE MAC.
	for name, hw := range map[string]contract.Inventory{
		"uuid":   {System: contract.SystemInfo{UUID: inv.System.UUID}},
		"serial": {System: contract.SystemInfo{Vendor: "Dell Inc.", Serial: "7XK2M53"}},
		"mac":    {NICs: []contract.NIC{{Name: "eth0", MAC: "52:54:00:aa:bb:01"}}},
	} {
		t.Run(name, func(t *testing.T) {
			other, err := s.CreateMachine(ctx, store.MachineCreate{Name: "pxe-" + name, PXEMAC: mustMAC(t, "52:54:00:aa:bb:01")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.DeleteMachine(ctx, other.ID) })
			addr := netip.AddrPortFrom(netip.MustParseAddr("198.51.100.80"), uint16(1000+len(name)))
			dup, err := s.BeginAdoption(ctx, store.AdoptionCreate{Name: "dup-" + name, BMCAddr: addr, BMCUser: "u", BMCPassword: "p",
				SSHAddr: "198.51.100.81:" + name})
			if err != nil {
				t.Fatal(err)
			}
			err = s.CompleteAdoption(ctx, dup.ID, store.Adoption{Inventory: hw, BMCAddr: addr, PowerState: contract.PowerOn})
			var de *store.DuplicateMachineError
			if !errors.As(err, &de) {
				t.Fatalf("duplicate by %s: got %v, want a DuplicateMachineError", name, err)
			}
			if got, err := s.GetMachine(ctx, dup.ID); err != nil || got.State != contract.MachineRegistering || got.BMCAddr.IsValid() {
				t.Errorf("refused adoption: got %+v, %v, want nothing recorded", got, err)
			}
			if err := s.DiscardAdoption(ctx, dup.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetMachine(ctx, dup.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("discarded adoption: got %v, want the machine gone", err)
			}
			if _, err := s.GetMachine(ctx, other.ID); err != nil {
				t.Errorf("discard removed another machine: %v", err)
			}
		})
	}

	// The BMC of an adopted machine, and the address of its OS, are taken.
	if _, err := s.BeginAdoption(ctx, store.AdoptionCreate{Name: "adopt-3", BMCAddr: bmcAddr, BMCUser: "u", BMCPassword: "p", SSHAddr: "198.51.100.90:22"}); !errors.As(err, &ce) {
		t.Errorf("adoption of an adopted machine's BMC: got %v, want a conflict", err)
	}
	if _, err := s.BeginAdoption(ctx, store.AdoptionCreate{Name: "adopt-4", BMCAddr: netip.MustParseAddrPort("198.51.100.91:623"), BMCUser: "u", BMCPassword: "p",
		SSHAddr: "198.51.100.71:22"}); !errors.As(err, &ce) || ce.Field != "OS address" {
		t.Errorf("adoption at an adopted machine's OS address: got %v, want an OS address conflict", err)
	}
}
