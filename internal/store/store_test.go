package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"bareflow/contract"
	"bareflow/internal/secret"
	"bareflow/internal/store"
	"bareflow/internal/store/storetest"
)

// testTimeout bounds each integration test.
const testTimeout = time.Minute

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rawConn opens a plain connection to dsn for checks below the store's API.
func rawConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testContext(t), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	mac, err := net.ParseMAC(s)
	if err != nil {
		t.Fatalf("parse MAC %q: %v", s, err)
	}
	return mac
}

func ptr[T any](v T) *T { return &v }

func TestMigrate(t *testing.T) {
	t.Parallel()
	tests := map[string]func(t *testing.T, ctx context.Context, dsn string){
		"twice is idempotent": func(t *testing.T, ctx context.Context, dsn string) {
			s := storetest.Open(t, dsn) // migrates once
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("second Migrate: got %v, want nil", err)
			}
			var n int
			if err := rawConn(t, dsn).QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != store.SchemaVersion() {
				t.Errorf("got %d rows in schema_migrations, want %d", n, store.SchemaVersion())
			}
		},
		"concurrent": func(t *testing.T, ctx context.Context, dsn string) {
			var stores [4]*store.Store
			for i := range stores {
				s, err := store.Open(ctx, dsn, storetest.NewBox(t), nil)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				t.Cleanup(s.Close)
				stores[i] = s
			}
			var wg sync.WaitGroup
			errs := make([]error, len(stores))
			for i, s := range stores {
				wg.Go(func() { errs[i] = s.Migrate(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Migrate %d: got %v, want nil", i, err)
				}
			}
			v, err := stores[0].AppliedVersion(ctx)
			if err != nil || v != store.SchemaVersion() {
				t.Errorf("got version %d (%v), want %d", v, err, store.SchemaVersion())
			}
		},
		"newer database refused": func(t *testing.T, ctx context.Context, dsn string) {
			s := storetest.Open(t, dsn)
			newer := store.SchemaVersion() + 1
			if _, err := rawConn(t, dsn).Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future')`, newer); err != nil {
				t.Fatal(err)
			}
			err := s.Migrate(ctx)
			if !errors.Is(err, store.ErrSchemaTooNew) {
				t.Fatalf("got %v, want ErrSchemaTooNew", err)
			}
			if !strings.Contains(err.Error(), "newer bareflow") {
				t.Errorf("got message %q, want it to say a newer bareflow is needed", err)
			}
		},
		"fresh database has no version": func(t *testing.T, ctx context.Context, dsn string) {
			s, err := store.Open(ctx, dsn, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if v, err := s.AppliedVersion(ctx); err != nil || v != 0 {
				t.Errorf("got version %d (%v), want 0", v, err)
			}
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tt(t, testContext(t), storetest.DSN(t))
		})
	}
}

func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	// An empty database proves the server is there (or skips the test),
	// and its DSN is a template for one that does not exist yet.
	dsn := storetest.DSN(t)
	missing := strings.Replace(dsn, "/bft_", "/bft_ensure_", 1)
	if missing == dsn {
		t.Skip("test database URL is not in URL form")
	}
	admin := rawConn(t, storetest.ServerURL())
	t.Cleanup(func() {
		dbName := missing[strings.LastIndex(missing, "/")+1:]
		dbName, _, _ = strings.Cut(dbName, "?")
		_, _ = admin.Exec(context.Background(), `DROP DATABASE IF EXISTS `+pgx.Identifier{dbName}.Sanitize()+` WITH (FORCE)`)
	})

	if _, err := pgx.Connect(ctx, missing); err == nil {
		t.Fatalf("database of %s exists before EnsureDatabase, want it missing", store.RedactDSN(missing))
	}
	// Several callers race to create it.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = store.EnsureDatabase(ctx, missing) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("EnsureDatabase %d: got %v, want nil", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, missing)
	if err != nil {
		t.Fatalf("connect after EnsureDatabase: got %v, want nil", err)
	}
	conn.Close(ctx)
	if err := store.EnsureDatabase(ctx, dsn); err != nil {
		t.Errorf("EnsureDatabase on an existing database: got %v, want nil", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	// A port that was free a moment ago refuses connections.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const password = "hunter2-secret"
	host, port, _ := net.SplitHostPort(addr)
	dsns := map[string]string{
		"url":     "postgres://bareflow:" + password + "@" + addr + "/bareflow?sslmode=disable",
		"keyword": "host=" + host + " port=" + port + " user=bareflow password=" + password + " dbname=bareflow sslmode=prefer",
	}
	calls := map[string]func(ctx context.Context, dsn string) error{
		"Open": func(ctx context.Context, dsn string) error {
			s, err := store.Open(ctx, dsn, nil, nil)
			if err == nil {
				s.Close()
			}
			return err
		},
		"EnsureDatabase": store.EnsureDatabase,
	}
	for form, dsn := range dsns {
		for call, fn := range calls {
			t.Run(call+" "+form, func(t *testing.T) {
				err := fn(testContext(t), dsn)
				if !errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("got %v, want ErrUnavailable", err)
				}
				msg := err.Error()
				want := "cannot reach PostgreSQL at " + addr + " (database bareflow): connection refused"
				if msg != want {
					t.Errorf("got message %q, want %q", msg, want)
				}
				if strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, password) {
					t.Errorf("got message %q, want one line without the password", msg)
				}
			})
		}
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	if err := s.Ping(testContext(t)); err != nil {
		t.Errorf("Ping: got %v, want nil", err)
	}
}

func TestCreateMachine(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	existing, err := s.CreateMachine(ctx, store.MachineCreate{Name: "taken", PXEMAC: mustMAC(t, "52:54:00:00:00:01")})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	bmc := netip.MustParseAddrPort("10.1.0.5:623")
	tests := map[string]struct {
		in        store.MachineCreate
		wantErr   error
		wantInMsg string
	}{
		"full": {in: store.MachineCreate{
			Name: "web-01", State: contract.MachineDiscovered, PXEMAC: mustMAC(t, "52:54:00:00:00:02"),
			SystemUUID: "4c4c4544-0031", Serial: "SN1", Vendor: "Dell Inc.", Model: "R640",
			BMCAddr: bmc, BMCUser: "admin", BMCPassword: "pw", BMCCipherSuite: 17,
			Labels: map[string]string{"rack": "r1"},
		}},
		"minimal":  {in: store.MachineCreate{Name: "bare"}},
		"ipv6 BMC": {in: store.MachineCreate{Name: "v6", BMCAddr: netip.MustParseAddrPort("[2001:db8::5]:623")}},
		"name taken": {
			in:      store.MachineCreate{Name: "taken"},
			wantErr: store.ErrConflict, wantInMsg: `machine name "taken" is already taken`,
		},
		"MAC taken": {
			in:      store.MachineCreate{Name: "other", PXEMAC: existing.PXEMAC},
			wantErr: store.ErrConflict, wantInMsg: `machine PXE MAC "52:54:00:00:00:01" is already taken`,
		},
		"bad name":       {in: store.MachineCreate{Name: "Web_01"}, wantErr: store.ErrInvalid},
		"bad state":      {in: store.MachineCreate{Name: "x", State: "sleeping"}, wantErr: store.ErrInvalid},
		"long MAC":       {in: store.MachineCreate{Name: "x", PXEMAC: mustMAC(t, "00:00:00:00:fe:80:00:00")}, wantErr: store.ErrInvalid},
		"no BMC port":    {in: store.MachineCreate{Name: "x", BMCAddr: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 0)}, wantErr: store.ErrInvalid},
		"password alone": {in: store.MachineCreate{Name: "x", BMCPassword: "pw"}, wantErr: store.ErrInvalid},
		"cipher suite":   {in: store.MachineCreate{Name: "x", BMCCipherSuite: 300}, wantErr: store.ErrInvalid},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := s.CreateMachine(ctx, tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantInMsg) {
					t.Errorf("got message %q, want it to contain %q", err, tt.wantInMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			wantState := tt.in.State
			if wantState == "" {
				wantState = contract.MachineEnrolled
			}
			if m.Name != tt.in.Name || m.State != wantState || m.Version != 1 || m.PowerState != contract.PowerUnknown {
				t.Errorf("got name %q state %q version %d power %q, want %q %q 1 unknown", m.Name, m.State, m.Version, m.PowerState, tt.in.Name, wantState)
			}
			if !bytes.Equal(m.PXEMAC, tt.in.PXEMAC) || m.BMCAddr != tt.in.BMCAddr || m.BMCUser != tt.in.BMCUser {
				t.Errorf("got MAC %v BMC %v user %q, want %v %v %q", m.PXEMAC, m.BMCAddr, m.BMCUser, tt.in.PXEMAC, tt.in.BMCAddr, tt.in.BMCUser)
			}
			if m.HasBMCPassword != (tt.in.BMCPassword != "") || m.BMCCipherSuite != tt.in.BMCCipherSuite {
				t.Errorf("got has password %v cipher suite %d, want %v %d", m.HasBMCPassword, m.BMCCipherSuite, tt.in.BMCPassword != "", tt.in.BMCCipherSuite)
			}
			if m.Labels == nil || m.Labels["rack"] != tt.in.Labels["rack"] {
				t.Errorf("got labels %v, want %v", m.Labels, tt.in.Labels)
			}
			got, err := s.GetMachine(ctx, m.ID)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if got.Name != m.Name || !got.CreatedAt.Equal(m.CreatedAt) || got.Vendor != tt.in.Vendor || got.SystemUUID != tt.in.SystemUUID {
				t.Errorf("got %+v, want %+v", got, m)
			}
		})
	}
}

func TestGetMachine(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	mac := mustMAC(t, "52:54:00:12:34:56")
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "db-1", PXEMAC: mac})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		get     func() (store.Machine, error)
		wantErr error
	}{
		"by id":        {get: func() (store.Machine, error) { return s.GetMachine(ctx, m.ID) }},
		"by name":      {get: func() (store.Machine, error) { return s.GetMachineByName(ctx, "db-1") }},
		"by MAC":       {get: func() (store.Machine, error) { return s.GetMachineByMAC(ctx, mustMAC(t, "52-54-00-12-34-56")) }},
		"unknown id":   {get: func() (store.Machine, error) { return s.GetMachine(ctx, "00000000-0000-4000-8000-000000000000") }, wantErr: store.ErrNotFound},
		"malformed id": {get: func() (store.Machine, error) { return s.GetMachine(ctx, "db-1") }, wantErr: store.ErrNotFound},
		"unknown name": {get: func() (store.Machine, error) { return s.GetMachineByName(ctx, "db-2") }, wantErr: store.ErrNotFound},
		"unknown MAC":  {get: func() (store.Machine, error) { return s.GetMachineByMAC(ctx, mustMAC(t, "52:54:00:12:34:57")) }, wantErr: store.ErrNotFound},
		"nil MAC":      {get: func() (store.Machine, error) { return s.GetMachineByMAC(ctx, nil) }, wantErr: store.ErrNotFound},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tt.get()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err == nil && got.ID != m.ID {
				t.Errorf("got machine %s, want %s", got.ID, m.ID)
			}
		})
	}
}

func TestListMachines(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	const total = 25
	for i := range total {
		state := contract.MachineReady
		if i%5 == 0 {
			state = contract.MachineRunning
		}
		vendor := "HPE"
		if i%2 == 0 {
			vendor = "Dell Inc."
		}
		name := "node-" + string(rune('a'+i/10)) + string(rune('0'+i%10))
		if _, err := s.CreateMachine(ctx, store.MachineCreate{Name: name, State: state, Vendor: vendor}); err != nil {
			t.Fatal(err)
		}
	}
	tests := map[string]struct {
		filter    store.MachineFilter
		wantPages []int
	}{
		"all, pages of 10":      {filter: store.MachineFilter{Limit: 10}, wantPages: []int{10, 10, 5}},
		"all, default limit":    {filter: store.MachineFilter{}, wantPages: []int{25}},
		"exact page boundary":   {filter: store.MachineFilter{Limit: 5, State: contract.MachineRunning}, wantPages: []int{5}},
		"state filter, paged":   {filter: store.MachineFilter{Limit: 2, State: contract.MachineRunning}, wantPages: []int{2, 2, 1}},
		"vendor filter":         {filter: store.MachineFilter{Limit: 100, Vendor: "HPE"}, wantPages: []int{12}},
		"state with no machine": {filter: store.MachineFilter{State: contract.MachineWiping}, wantPages: []int{0}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := tt.filter
			var pages []int
			var names []string
			for {
				ms, next, err := s.ListMachines(ctx, f)
				if err != nil {
					t.Fatalf("list: %v", err)
				}
				pages = append(pages, len(ms))
				for _, m := range ms {
					names = append(names, m.Name)
					if tt.filter.State != "" && m.State != tt.filter.State {
						t.Errorf("got machine %s in state %s, want %s", m.Name, m.State, tt.filter.State)
					}
					if tt.filter.Vendor != "" && m.Vendor != tt.filter.Vendor {
						t.Errorf("got machine %s of vendor %s, want %s", m.Name, m.Vendor, tt.filter.Vendor)
					}
				}
				if next == "" || len(pages) > 10 {
					break
				}
				f.After = next
			}
			if len(pages) != len(tt.wantPages) {
				t.Fatalf("got pages %v, want %v", pages, tt.wantPages)
			}
			for i := range pages {
				if pages[i] != tt.wantPages[i] {
					t.Fatalf("got pages %v, want %v", pages, tt.wantPages)
				}
			}
			for i := 1; i < len(names); i++ {
				if names[i-1] >= names[i] {
					t.Errorf("got %q before %q, want name order without repeats", names[i-1], names[i])
				}
			}
		})
	}
	if _, _, err := s.ListMachines(ctx, store.MachineFilter{After: "not a cursor!"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bad cursor: got %v, want ErrInvalid", err)
	}
	if _, _, err := s.ListMachines(ctx, store.MachineFilter{State: "sleeping"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bad state: got %v, want ErrInvalid", err)
	}
}

func TestBMCPasswordSealed(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := storetest.DSN(t)
	s := storetest.Open(t, dsn)
	raw := rawConn(t, dsn)
	const password = "bmc-Pa55word"
	bmc := netip.MustParseAddrPort("10.1.0.7:623")
	a, err := s.CreateMachine(ctx, store.MachineCreate{Name: "a", BMCAddr: bmc, BMCUser: "admin", BMCPassword: password, BMCCipherSuite: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateMachine(ctx, store.MachineCreate{Name: "b", BMCAddr: bmc, BMCUser: "admin", BMCPassword: "other"})
	if err != nil {
		t.Fatal(err)
	}
	noBMC, err := s.CreateMachine(ctx, store.MachineCreate{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("raw column is not the plaintext", func(t *testing.T) {
		var sealed []byte
		if err := raw.QueryRow(ctx, `SELECT bmc_password FROM machines WHERE id = $1`, a.ID).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if len(sealed) == 0 || bytes.Contains(sealed, []byte(password)) {
			t.Errorf("got raw column %q, want ciphertext without the password", sealed)
		}
	})
	t.Run("credentials decrypt", func(t *testing.T) {
		creds, err := s.BMCCredentials(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := store.BMCCredentials{Addr: bmc, User: "admin", Password: password, CipherSuite: 3}
		if creds != want {
			t.Errorf("got %+v (password %q), want %+v", creds, creds.Password.Reveal(), want)
		}
	})
	t.Run("ciphertext moved to another row fails", func(t *testing.T) {
		if _, err := raw.Exec(ctx, `UPDATE machines SET bmc_password = (SELECT bmc_password FROM machines WHERE id = $1) WHERE id = $2`, a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		_, err := s.BMCCredentials(ctx, b.ID)
		if !errors.Is(err, secret.ErrDecrypt) {
			t.Errorf("got %v, want secret.ErrDecrypt", err)
		}
	})
	t.Run("machine without BMC", func(t *testing.T) {
		_, err := s.BMCCredentials(ctx, noBMC.ID)
		if !errors.Is(err, store.ErrNoBMC) || !errors.Is(err, store.ErrNotFound) {
			t.Errorf("got %v, want ErrNoBMC and ErrNotFound", err)
		}
	})
	t.Run("new password via update", func(t *testing.T) {
		m, err := s.UpdateMachine(ctx, b.ID, store.MachineUpdate{BMCPassword: ptr(secret.String("fresh"))})
		if err != nil {
			t.Fatal(err)
		}
		creds, err := s.BMCCredentials(ctx, b.ID)
		if err != nil || creds.Password.Reveal() != "fresh" || !m.HasBMCPassword {
			t.Errorf("got password %q has %v (%v), want fresh", creds.Password.Reveal(), m.HasBMCPassword, err)
		}
	})
	t.Run("removing the BMC drops credentials", func(t *testing.T) {
		m, err := s.UpdateMachine(ctx, b.ID, store.MachineUpdate{BMCAddr: &netip.AddrPort{}})
		if err != nil {
			t.Fatal(err)
		}
		if m.BMCAddr.IsValid() || m.HasBMCPassword || m.BMCUser != "" {
			t.Errorf("got BMC %v user %q password %v, want none", m.BMCAddr, m.BMCUser, m.HasBMCPassword)
		}
		if _, err := s.BMCCredentials(ctx, b.ID); !errors.Is(err, store.ErrNoBMC) {
			t.Errorf("got %v, want ErrNoBMC", err)
		}
	})
	t.Run("credentials print without the password", func(t *testing.T) {
		creds, err := s.BMCCredentials(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{"%v", "%+v", "%#v"} {
			if got := fmt.Sprintf(format, creds); strings.Contains(got, password) {
				t.Errorf("got %s, want no password", got)
			}
		}
	})
}

func TestUpdateMachine(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	if _, err := s.CreateMachine(ctx, store.MachineCreate{Name: "other", PXEMAC: mustMAC(t, "52:54:00:aa:aa:aa")}); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		update    func(m store.Machine) store.MachineUpdate
		wantErr   error
		wantInMsg string
		check     func(t *testing.T, before, after store.Machine)
	}{
		"fields with current version": {
			update: func(m store.Machine) store.MachineUpdate {
				return store.MachineUpdate{
					Name: ptr("renamed"), State: ptr(contract.MachineReady), PXEMAC: ptr(mustMAC(t, "52:54:00:bb:bb:bb")),
					Vendor: ptr("Supermicro"), BMCAddr: ptr(netip.MustParseAddrPort("10.0.0.9:623")), BMCUser: ptr("root"),
					BMCCipherSuite: ptr(17), Labels: &map[string]string{"role": "db"}, ExpectVersion: ptr(m.Version),
				}
			},
			check: func(t *testing.T, before, after store.Machine) {
				if after.Name != "renamed" || after.State != contract.MachineReady || after.PXEMAC.String() != "52:54:00:bb:bb:bb" ||
					after.Vendor != "Supermicro" || after.BMCAddr.String() != "10.0.0.9:623" || after.BMCUser != "root" ||
					after.BMCCipherSuite != 17 || after.Labels["role"] != "db" || len(after.Labels) != 1 {
					t.Errorf("got %+v, want every field updated", after)
				}
				if after.Version != before.Version+1 || !after.UpdatedAt.After(before.UpdatedAt) {
					t.Errorf("got version %d updated %v, want %d and later than %v", after.Version, after.UpdatedAt, before.Version+1, before.UpdatedAt)
				}
			},
		},
		"clear MAC": {
			update: func(store.Machine) store.MachineUpdate { return store.MachineUpdate{PXEMAC: &net.HardwareAddr{}} },
			check: func(t *testing.T, _, after store.Machine) {
				if after.PXEMAC != nil {
					t.Errorf("got MAC %v, want none", after.PXEMAC)
				}
			},
		},
		"stale version": {
			update: func(m store.Machine) store.MachineUpdate {
				return store.MachineUpdate{Model: ptr("x"), ExpectVersion: ptr(m.Version - 1)}
			},
			wantErr: store.ErrStale, wantInMsg: "version 1, not 0",
		},
		"stale version, nothing to change": {
			update: func(m store.Machine) store.MachineUpdate {
				return store.MachineUpdate{ExpectVersion: ptr(m.Version + 1)}
			},
			wantErr: store.ErrStale,
		},
		"name taken": {
			update:  func(store.Machine) store.MachineUpdate { return store.MachineUpdate{Name: ptr("other")} },
			wantErr: store.ErrConflict, wantInMsg: `name "other"`,
		},
		"MAC taken": {
			update: func(store.Machine) store.MachineUpdate {
				return store.MachineUpdate{PXEMAC: ptr(mustMAC(t, "52:54:00:aa:aa:aa"))}
			},
			wantErr: store.ErrConflict, wantInMsg: "PXE MAC",
		},
		"password without BMC": {
			update: func(store.Machine) store.MachineUpdate {
				return store.MachineUpdate{BMCPassword: ptr(secret.String("pw"))}
			},
			wantErr: store.ErrInvalid, wantInMsg: "needs a BMC address",
		},
		"bad state": {
			update: func(store.Machine) store.MachineUpdate {
				return store.MachineUpdate{State: ptr(contract.MachineState("gone"))}
			},
			wantErr: store.ErrInvalid,
		},
	}
	i := 0
	for name, tt := range tests {
		i++
		t.Run(name, func(t *testing.T) {
			m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "m" + string(rune('a'+i))})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.UpdateMachine(ctx, m.ID, tt.update(m))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantInMsg) {
					t.Fatalf("got %v, want %v containing %q", err, tt.wantErr, tt.wantInMsg)
				}
				after, err := s.GetMachine(ctx, m.ID)
				if err != nil || after.Version != m.Version {
					t.Errorf("got version %d after a failed update (%v), want %d", after.Version, err, m.Version)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			tt.check(t, m, got)
		})
	}
	if _, err := s.UpdateMachine(ctx, "00000000-0000-4000-8000-000000000000", store.MachineUpdate{Model: ptr("x")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown machine: got %v, want ErrNotFound", err)
	}
}

func TestMachineStatus(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "m1", BMCAddr: netip.MustParseAddrPort("10.0.0.1:623")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateMachine(ctx, store.MachineCreate{Name: "m0"}); err != nil {
		t.Fatal(err)
	}
	unknown := "00000000-0000-4000-8000-000000000000"

	t.Run("power state", func(t *testing.T) {
		now := time.Now().Truncate(time.Microsecond)
		if err := s.SetPowerState(ctx, m.ID, contract.PowerOn, now); err != nil {
			t.Fatal(err)
		}
		// An older observation arrives late and is ignored.
		if err := s.SetPowerState(ctx, m.ID, contract.PowerOff, now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetMachine(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.PowerState != contract.PowerOn || !got.PowerStateAt.Equal(now) || got.Version != m.Version {
			t.Errorf("got power %s at %v version %d, want on at %v version %d", got.PowerState, got.PowerStateAt, got.Version, now, m.Version)
		}
		if err := s.SetPowerState(ctx, m.ID, "flickering", now); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad power state: got %v, want ErrInvalid", err)
		}
		if err := s.SetPowerState(ctx, unknown, contract.PowerOn, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown machine: got %v, want ErrNotFound", err)
		}
	})
	t.Run("state and error", func(t *testing.T) {
		if err := s.SetMachineState(ctx, m.ID, contract.MachineError); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMachineError(ctx, m.ID, contract.ErrBMCAuthFailed, "BMC refused the password"); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetMachine(ctx, m.ID)
		if got.State != contract.MachineError || got.LastErrorCode != contract.ErrBMCAuthFailed || got.LastError != "BMC refused the password" {
			t.Errorf("got state %s error %s %q, want error BMCAuthFailed", got.State, got.LastErrorCode, got.LastError)
		}
		if err := s.ClearMachineError(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetMachine(ctx, m.ID)
		if got.LastErrorCode != "" || got.LastError != "" {
			t.Errorf("got error %s %q, want none", got.LastErrorCode, got.LastError)
		}
		if err := s.SetMachineState(ctx, m.ID, "gone"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad state: got %v, want ErrInvalid", err)
		}
		if err := s.SetMachineState(ctx, unknown, contract.MachineReady); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown machine: got %v, want ErrNotFound", err)
		}
	})
	t.Run("machines with BMC", func(t *testing.T) {
		refs, err := s.ListMachinesWithBMC(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != 1 || refs[0] != (store.MachineRef{ID: m.ID, Name: "m1"}) {
			t.Errorf("got %v, want only m1", refs)
		}
	})
}

func TestDeleteMachineKeepsOperations(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	opID := "11111111-1111-4111-8111-111111111111"
	if err := s.UpsertOperation(ctx, store.Operation{ID: opID, MachineID: m.ID, Kind: contract.OperationPower}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMachine(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMachine(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: got %v, want ErrNotFound", err)
	}
	op, err := s.GetOperation(ctx, opID)
	if err != nil {
		t.Fatal(err)
	}
	if op.MachineID != "" || op.MachineName != "doomed" {
		t.Errorf("got machine %q name %q, want none and doomed", op.MachineID, op.MachineName)
	}
}

func TestUpsertOperation(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	// What the API writes right after starting the workflow.
	fromAPI := func(id string) store.Operation {
		return store.Operation{
			ID: id, MachineID: m.ID, Kind: contract.OperationPower, WorkflowID: contract.MachineWorkflowID(m.ID),
			RunID: "run-1", State: contract.OperationPending, RequestedBy: "ops-token",
		}
	}
	// What the workflow's first activity writes.
	fromActivity := func(id string) store.Operation {
		return store.Operation{
			ID: id, MachineID: m.ID, Kind: contract.OperationPower, WorkflowID: contract.MachineWorkflowID(m.ID),
			RunID: "run-1", State: contract.OperationRunning, Step: "power on", Progress: 0.25, StartedAt: start,
		}
	}
	ids := []string{
		"aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002",
		"aaaaaaaa-0000-4000-8000-000000000003", "aaaaaaaa-0000-4000-8000-000000000004",
	}
	tests := map[string]struct {
		id     string
		writes []func(string) store.Operation
		want   func(id string) store.Operation
	}{
		"api then activity": {
			id: ids[0], writes: []func(string) store.Operation{fromAPI, fromActivity},
			want: func(id string) store.Operation {
				op := fromActivity(id)
				op.RequestedBy, op.MachineName = "ops-token", "m1"
				return op
			},
		},
		"activity then api": {
			id: ids[1], writes: []func(string) store.Operation{fromActivity, fromAPI},
			want: func(id string) store.Operation {
				op := fromActivity(id)
				op.RequestedBy, op.MachineName = "ops-token", "m1"
				return op
			},
		},
		"same data twice": {
			id: ids[2], writes: []func(string) store.Operation{fromActivity, fromActivity},
			want: func(id string) store.Operation {
				op := fromActivity(id)
				op.MachineName = "m1"
				return op
			},
		},
		"late pending after final": {
			id: ids[3],
			writes: []func(string) store.Operation{
				func(id string) store.Operation {
					op := fromActivity(id)
					op.State, op.Progress, op.Step, op.ErrorCode = contract.OperationFailed, 0.5, "verify", contract.ErrPowerStateTimeout
					return op
				},
				fromAPI,
			},
			want: func(id string) store.Operation {
				op := fromActivity(id)
				op.State, op.Progress, op.Step, op.ErrorCode = contract.OperationFailed, 0.5, "verify", contract.ErrPowerStateTimeout
				op.RequestedBy, op.MachineName = "ops-token", "m1"
				return op
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			for i, w := range tt.writes {
				if err := s.UpsertOperation(ctx, w(tt.id)); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			got, err := s.GetOperation(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want(tt.id)
			if got.MachineID != want.MachineID || got.MachineName != want.MachineName || got.Kind != want.Kind ||
				got.WorkflowID != want.WorkflowID || got.RunID != want.RunID || got.State != want.State ||
				got.Step != want.Step || got.Progress != want.Progress || got.ErrorCode != want.ErrorCode ||
				got.RequestedBy != want.RequestedBy || !got.StartedAt.Equal(want.StartedAt) {
				t.Errorf("got  %+v,\nwant %+v", got, want)
			}
			if got.State.Final() == got.FinishedAt.IsZero() {
				t.Errorf("got state %s finished at %v, want finished_at set exactly when final", got.State, got.FinishedAt)
			}
		})
	}

	t.Run("invalid", func(t *testing.T) {
		bad := map[string]struct {
			op   store.Operation
			want error
		}{
			"id not a UUID":   {op: store.Operation{ID: "op-1", Kind: "power"}, want: store.ErrInvalid},
			"no kind":         {op: store.Operation{ID: ids[0]}, want: store.ErrInvalid},
			"bad kind":        {op: store.Operation{ID: "bbbbbbbb-0000-4000-8000-000000000001", Kind: "Power Now"}, want: store.ErrInvalid},
			"bad state":       {op: store.Operation{ID: ids[0], Kind: "power", State: "paused"}, want: store.ErrInvalid},
			"progress":        {op: store.Operation{ID: ids[0], Kind: "power", Progress: 1.5}, want: store.ErrInvalid},
			"unknown machine": {op: store.Operation{ID: "bbbbbbbb-0000-4000-8000-000000000002", Kind: "power", MachineID: "00000000-0000-4000-8000-000000000000"}, want: store.ErrNotFound},
		}
		for name, tt := range bad {
			if err := s.UpsertOperation(ctx, tt.op); !errors.Is(err, tt.want) {
				t.Errorf("%s: got %v, want %v", name, err, tt.want)
			}
		}
	})
}

func TestUpdateOperation(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	m, err := s.CreateMachine(ctx, store.MachineCreate{Name: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	id := "cccccccc-0000-4000-8000-000000000001"
	if err := s.UpsertOperation(ctx, store.Operation{ID: id, MachineID: m.ID, Kind: contract.OperationPower}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		update    store.OperationUpdate
		wantState contract.OperationState
		wantStep  string
		wantProg  float64
		wantFinal bool
	}{
		{"running", store.OperationUpdate{State: ptr(contract.OperationRunning), Step: ptr("power off"), Progress: ptr(0.3)}, contract.OperationRunning, "power off", 0.3, false},
		{"progress only", store.OperationUpdate{Progress: ptr(0.6)}, contract.OperationRunning, "power off", 0.6, false},
		{"succeeded", store.OperationUpdate{State: ptr(contract.OperationSucceeded), Step: ptr("done")}, contract.OperationSucceeded, "done", 1, true},
		{"back to running is ignored", store.OperationUpdate{State: ptr(contract.OperationRunning), Step: ptr("again"), Progress: ptr(0.1)}, contract.OperationSucceeded, "done", 1, true},
		{"another final state is ignored", store.OperationUpdate{State: ptr(contract.OperationFailed), ErrorCode: ptr("X")}, contract.OperationSucceeded, "done", 1, true},
	}
	var finishedAt time.Time
	for _, st := range steps {
		if err := s.UpdateOperation(ctx, id, st.update); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := s.GetOperation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != st.wantState || got.Step != st.wantStep || got.Progress != st.wantProg || got.FinishedAt.IsZero() == st.wantFinal || got.ErrorCode != "" {
			t.Errorf("%s: got state %s step %q progress %v finished %v error %q, want %s %q %v finished=%v",
				st.name, got.State, got.Step, got.Progress, got.FinishedAt, got.ErrorCode, st.wantState, st.wantStep, st.wantProg, st.wantFinal)
		}
		if st.wantFinal {
			if !finishedAt.IsZero() && !got.FinishedAt.Equal(finishedAt) {
				t.Errorf("%s: got finished at %v, want it kept at %v", st.name, got.FinishedAt, finishedAt)
			}
			finishedAt = got.FinishedAt
		}
	}
	// A final upsert cannot revert it either.
	if err := s.UpsertOperation(ctx, store.Operation{ID: id, Kind: contract.OperationPower, State: contract.OperationRunning}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetOperation(ctx, id); got.State != contract.OperationSucceeded {
		t.Errorf("after upsert running: got state %s, want succeeded", got.State)
	}
	if err := s.UpdateOperation(ctx, "cccccccc-0000-4000-8000-00000000ffff", store.OperationUpdate{Step: ptr("x")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown operation: got %v, want ErrNotFound", err)
	}
	if err := s.UpdateOperation(ctx, id, store.OperationUpdate{Progress: ptr(-0.1)}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("negative progress: got %v, want ErrInvalid", err)
	}
}

func TestListOperations(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	m1, _ := s.CreateMachine(ctx, store.MachineCreate{Name: "m1"})
	m2, _ := s.CreateMachine(ctx, store.MachineCreate{Name: "m2"})
	base := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	// Seven operations on m1 (two with the same start), three on m2.
	ids := map[string][]string{}
	for i := range 10 {
		mid := m1.ID
		if i >= 7 {
			mid = m2.ID
		}
		at := base.Add(time.Duration(i) * time.Minute)
		if i == 3 {
			at = base.Add(2 * time.Minute)
		}
		id := "dddddddd-0000-4000-8000-00000000000" + string(rune('0'+i))
		st := contract.OperationSucceeded
		if i == 5 || i == 6 {
			st = contract.OperationRunning
		}
		if err := s.UpsertOperation(ctx, store.Operation{ID: id, MachineID: mid, Kind: contract.OperationPower, State: st, StartedAt: at}); err != nil {
			t.Fatal(err)
		}
		ids[mid] = append(ids[mid], id)
	}
	tests := map[string]struct {
		filter    store.OperationFilter
		wantTotal int
		wantPages int
	}{
		"all, pages of 3":      {filter: store.OperationFilter{Limit: 3}, wantTotal: 10, wantPages: 4},
		"one machine, paged":   {filter: store.OperationFilter{MachineID: m1.ID, Limit: 2}, wantTotal: 7, wantPages: 4},
		"state filter":         {filter: store.OperationFilter{State: contract.OperationRunning}, wantTotal: 2, wantPages: 1},
		"machine with none":    {filter: store.OperationFilter{MachineID: "00000000-0000-4000-8000-000000000000"}, wantTotal: 0, wantPages: 1},
		"malformed machine id": {filter: store.OperationFilter{MachineID: "m1"}, wantTotal: 0, wantPages: 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := tt.filter
			var all []store.Operation
			pages := 0
			for {
				ops, next, err := s.ListOperations(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				all = append(all, ops...)
				if next == "" || pages > 20 {
					break
				}
				f.After = next
			}
			if len(all) != tt.wantTotal || pages != tt.wantPages {
				t.Fatalf("got %d operations in %d pages, want %d in %d", len(all), pages, tt.wantTotal, tt.wantPages)
			}
			seen := map[string]bool{}
			for i, op := range all {
				if seen[op.ID] {
					t.Errorf("got %s twice, want each once", op.ID)
				}
				seen[op.ID] = true
				if i > 0 && op.StartedAt.After(all[i-1].StartedAt) {
					t.Errorf("got %v after %v, want newest first", op.StartedAt, all[i-1].StartedAt)
				}
			}
		})
	}

	t.Run("active operation", func(t *testing.T) {
		op, err := s.ActiveOperation(ctx, m1.ID)
		if err != nil {
			t.Fatal(err)
		}
		if op.ID != ids[m1.ID][6] {
			t.Errorf("got %s, want the newest running one %s", op.ID, ids[m1.ID][6])
		}
		if _, err := s.ActiveOperation(ctx, m2.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("machine without running operation: got %v, want ErrNotFound", err)
		}
	})
}

func TestTokens(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := storetest.DSN(t)
	s := storetest.Open(t, dsn)
	raw := rawConn(t, dsn)

	plain, tok, err := s.CreateToken(ctx, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, store.TokenPrefix) || len(plain) < 40 || !strings.HasPrefix(plain, tok.Prefix) || len(tok.Prefix) >= len(plain) {
		t.Errorf("got token %q prefix %q, want bft_… with a short display prefix", plain, tok.Prefix)
	}
	var stored int
	if err := raw.QueryRow(ctx, `SELECT count(*) FROM api_tokens WHERE position($1::bytea in token_hash) > 0 OR prefix = $2`, []byte(plain), plain).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Errorf("got the plaintext token stored, want only its hash")
	}

	t.Run("authenticate", func(t *testing.T) {
		got, err := s.AuthenticateToken(ctx, plain)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != tok.ID || got.LastUsedAt.IsZero() {
			t.Errorf("got %+v, want token %s with last use set", got, tok.ID)
		}
		again, err := s.AuthenticateToken(ctx, plain)
		if err != nil || !again.LastUsedAt.Equal(got.LastUsedAt) {
			t.Errorf("got last use %v (%v), want unchanged %v within a minute", again.LastUsedAt, err, got.LastUsedAt)
		}
	})
	t.Run("wrong tokens", func(t *testing.T) {
		for name, bad := range map[string]string{
			"empty":     "",
			"no prefix": plain[len(store.TokenPrefix):],
			"one off":   plain[:len(plain)-1] + map[bool]string{true: "b", false: "a"}[plain[len(plain)-1] == 'a'],
			"too long":  plain + "a",
		} {
			if _, err := s.AuthenticateToken(ctx, bad); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: got %v, want ErrNotFound", name, err)
			}
		}
	})
	t.Run("name conflict", func(t *testing.T) {
		_, _, err := s.CreateToken(ctx, "ci")
		var ce *store.ConflictError
		if !errors.Is(err, store.ErrConflict) || !errors.As(err, &ce) || ce.Resource != "token" {
			t.Errorf("got %v, want a token name conflict", err)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		if n, err := s.CountTokens(ctx); err != nil || n != 1 {
			t.Errorf("got %d tokens (%v), want 1", n, err)
		}
		if err := s.RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, tok.ID); err != nil {
			t.Errorf("second revoke: got %v, want nil", err)
		}
		if _, err := s.AuthenticateToken(ctx, plain); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoked token: got %v, want ErrNotFound", err)
		}
		if n, err := s.CountTokens(ctx); err != nil || n != 0 {
			t.Errorf("got %d tokens (%v), want 0", n, err)
		}
		// The name is free again.
		if _, _, err := s.CreateToken(ctx, "ci"); err != nil {
			t.Errorf("reuse revoked name: got %v, want nil", err)
		}
		list, err := s.ListTokens(ctx)
		if err != nil || len(list) != 2 || list[0].RevokedAt.IsZero() || !list[1].RevokedAt.IsZero() {
			t.Errorf("got %+v (%v), want the revoked token then the new one", list, err)
		}
		if err := s.RevokeToken(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown token: got %v, want ErrNotFound", err)
		}
	})
	t.Run("bad name", func(t *testing.T) {
		if _, _, err := s.CreateToken(ctx, "  "); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("got %v, want ErrInvalid", err)
		}
	})
}

func TestAudit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	opID := "eeeeeeee-0000-4000-8000-000000000001"
	for i := range 5 {
		target := "m1"
		if i%2 == 1 {
			target = "m2"
		}
		e := store.AuditEntry{Actor: "ci", Action: "machine.power", TargetKind: "machine", TargetID: target, RemoteAddr: "192.0.2.1:5555", Details: map[string]any{"n": i}}
		if i == 4 {
			e.OperationID = opID
		}
		if err := s.AddAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 || all[0].OperationID != opID || all[0].Details["n"] != float64(4) || all[0].At.IsZero() {
		t.Fatalf("got %+v, want 5 entries newest first with details and operation", all)
	}
	m1, err := s.ListAudit(ctx, store.AuditFilter{TargetID: "m1", Limit: 2})
	if err != nil || len(m1) != 2 || m1[0].TargetID != "m1" {
		t.Fatalf("got %+v (%v), want the two newest entries of m1", m1, err)
	}
	rest, err := s.ListAudit(ctx, store.AuditFilter{TargetID: "m1", Before: m1[1].ID})
	if err != nil || len(rest) != 1 || rest[0].ID >= m1[1].ID {
		t.Errorf("got %+v (%v), want the one older entry of m1", rest, err)
	}
	if err := s.AddAudit(ctx, store.AuditEntry{Actor: "ci"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("no action: got %v, want ErrInvalid", err)
	}
}

func TestNetworks(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := storetest.New(t)
	in := store.Network{
		Name: "prov", Kind: store.NetworkProvisioning, CIDR: netip.MustParsePrefix("10.10.0.0/24"),
		Gateway: netip.MustParseAddr("10.10.0.1"), DNS: []netip.Addr{netip.MustParseAddr("10.10.0.2"), netip.MustParseAddr("2001:db8::53")},
		Domain: "lab.example", RangeStart: netip.MustParseAddr("10.10.0.100"), RangeEnd: netip.MustParseAddr("10.10.0.199"),
		RelayAddrs: []netip.Addr{netip.MustParseAddr("10.10.0.1")}, Interface: "eth1",
	}
	n, err := s.CreateNetwork(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if n.ID == "" || n.LeaseSeconds != store.DefaultLeaseSeconds || n.CIDR != in.CIDR || n.Gateway != in.Gateway ||
		len(n.DNS) != 2 || n.DNS[1] != in.DNS[1] || n.RangeEnd != in.RangeEnd || len(n.RelayAddrs) != 1 || n.Interface != "eth1" {
		t.Errorf("got %+v, want %+v with a default lease", n, in)
	}
	bare, err := s.CreateNetwork(ctx, store.Network{Name: "bmc", Kind: store.NetworkBMC, CIDR: netip.MustParsePrefix("fd00::/64")})
	if err != nil {
		t.Fatal(err)
	}
	if bare.Gateway.IsValid() || bare.RangeStart.IsValid() || len(bare.DNS) != 0 {
		t.Errorf("got %+v, want no gateway, range or DNS", bare)
	}

	bad := map[string]struct {
		n    store.Network
		want error
	}{
		"name taken":     {n: store.Network{Name: "prov", Kind: store.NetworkOS, CIDR: netip.MustParsePrefix("10.20.0.0/24")}, want: store.ErrConflict},
		"bad kind":       {n: store.Network{Name: "x", Kind: "wan", CIDR: netip.MustParsePrefix("10.20.0.0/24")}, want: store.ErrInvalid},
		"host bits":      {n: store.Network{Name: "x", Kind: store.NetworkOS, CIDR: netip.MustParsePrefix("10.20.0.1/24")}, want: store.ErrInvalid},
		"gateway out":    {n: store.Network{Name: "x", Kind: store.NetworkOS, CIDR: netip.MustParsePrefix("10.20.0.0/24"), Gateway: netip.MustParseAddr("10.21.0.1")}, want: store.ErrInvalid},
		"half range":     {n: store.Network{Name: "x", Kind: store.NetworkOS, CIDR: netip.MustParsePrefix("10.20.0.0/24"), RangeStart: netip.MustParseAddr("10.20.0.5")}, want: store.ErrInvalid},
		"reversed range": {n: store.Network{Name: "x", Kind: store.NetworkOS, CIDR: netip.MustParsePrefix("10.20.0.0/24"), RangeStart: netip.MustParseAddr("10.20.0.9"), RangeEnd: netip.MustParseAddr("10.20.0.5")}, want: store.ErrInvalid},
		"no CIDR":        {n: store.Network{Name: "x", Kind: store.NetworkOS}, want: store.ErrInvalid},
	}
	for name, tt := range bad {
		if _, err := s.CreateNetwork(ctx, tt.n); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", name, err, tt.want)
		}
	}

	got, err := s.GetNetwork(ctx, n.ID)
	if err != nil || got.Name != "prov" {
		t.Errorf("get: got %+v (%v), want prov", got, err)
	}
	list, err := s.ListNetworks(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "bmc" {
		t.Errorf("list: got %+v (%v), want bmc and prov", list, err)
	}
	if err := s.DeleteNetwork(ctx, n.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetNetwork(ctx, n.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get deleted: got %v, want ErrNotFound", err)
	}
	if err := s.DeleteNetwork(ctx, n.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete deleted: got %v, want ErrNotFound", err)
	}
}
