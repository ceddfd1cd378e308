package store

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestRedactDSN(t *testing.T) {
	tests := map[string]struct {
		dsn, want string
	}{
		"url with password": {
			dsn:  "postgres://bareflow:s3cret@db.example:5432/bareflow?sslmode=disable",
			want: "postgres://bareflow:REDACTED@db.example:5432/bareflow?sslmode=disable",
		},
		"url without password": {
			dsn:  "postgres://postgres@127.0.0.1:5432/bareflow",
			want: "postgres://postgres@127.0.0.1:5432/bareflow",
		},
		"url with password holding @ and /": {
			dsn:  "postgresql://u:p@ss/w@rd@h/db",
			want: "postgresql://u:REDACTED@h/db",
		},
		"password in query": {
			dsn:  "postgres://u@h/db?sslmode=require&password=hunter2&x=1",
			want: "postgres://u@h/db?sslmode=require&password=REDACTED&x=1",
		},
		"keyword form": {
			dsn:  "host=h user=u password=hunter2 dbname=db",
			want: "host=h user=u password=REDACTED dbname=db",
		},
		"keyword form quoted": {
			dsn:  "host=h password='hun ter\\'2' dbname=db",
			want: "host=h password=REDACTED dbname=db",
		},
		"keyword form spaced": {
			dsn:  "host=h password = hunter2",
			want: "host=h password = REDACTED",
		},
		"empty": {dsn: "", want: ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := RedactDSN(tt.dsn); got != tt.want {
				t.Errorf("RedactDSN(%q) = %q, want %q", tt.dsn, got, tt.want)
			}
		})
	}
}

func TestParseErrorHidesPassword(t *testing.T) {
	tests := map[string]string{
		"bad port":    "postgres://u:hunter2@h:notaport/db",
		"bad keyword": "host=h password=hunter2 sslmode=bogus",
	}
	for name, dsn := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parsePoolConfig(dsn)
			if err == nil {
				t.Fatalf("parsePoolConfig(%q) = nil error, want one", dsn)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("got %q, want no password", err)
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := map[string]struct {
		files   fstest.MapFS
		want    []int
		wantErr string
	}{
		"ordered": {
			files: fstest.MapFS{"migrations/0002_b.sql": file("b"), "migrations/0001_a.sql": file("a")},
			want:  []int{1, 2},
		},
		"gap": {
			files:   fstest.MapFS{"migrations/0001_a.sql": file("a"), "migrations/0003_c.sql": file("c")},
			wantErr: "got version 3, want 2",
		},
		"duplicate": {
			files:   fstest.MapFS{"migrations/0001_a.sql": file("a"), "migrations/0001_b.sql": file("b")},
			wantErr: "got version 1, want 2",
		},
		"bad name": {
			files:   fstest.MapFS{"migrations/init.sql": file("a")},
			wantErr: "must look like",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ms, err := loadMigrations(tt.files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if len(got) != len(tt.want) || got[0] != tt.want[0] || got[len(got)-1] != tt.want[len(tt.want)-1] {
				t.Errorf("got versions %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEmbeddedMigrationsLoad(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if len(ms) == 0 || SchemaVersion() != len(ms) {
		t.Errorf("got %d migrations and schema version %d, want at least one and equal", len(ms), SchemaVersion())
	}
}

func TestValidName(t *testing.T) {
	tests := map[string]struct {
		name string
		ok   bool
	}{
		"simple":          {"web-01", true},
		"one char":        {"a", true},
		"63 chars":        {strings.Repeat("a", 63), true},
		"64 chars":        {strings.Repeat("a", 64), false},
		"upper case":      {"Web", false},
		"leading hyphen":  {"-web", false},
		"trailing hyphen": {"web-", false},
		"dot":             {"web.example", false},
		"empty":           {"", false},
	}
	for scenario, tt := range tests {
		t.Run(scenario, func(t *testing.T) {
			err := ValidName(tt.name)
			if (err == nil) != tt.ok {
				t.Errorf("ValidName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := encodeCursor("2026-01-02T03:04:05.123456Z", "5b1f0c1e-8a43-4f0e-9d55-0d2b9b0d8a11")
	parts, err := decodeCursor(c, 2)
	if err != nil {
		t.Fatalf("decodeCursor: %v", err)
	}
	if parts[0] != "2026-01-02T03:04:05.123456Z" || parts[1] != "5b1f0c1e-8a43-4f0e-9d55-0d2b9b0d8a11" {
		t.Errorf("got %q, want the encoded parts", parts)
	}
	for _, bad := range []string{"!!!", encodeCursor("only-one")} {
		if _, err := decodeCursor(bad, 2); !errors.Is(err, ErrInvalid) {
			t.Errorf("decodeCursor(%q): got %v, want ErrInvalid", bad, err)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newID()
		if !isUUID(id) || id[14] != '4' {
			t.Fatalf("got %q, want a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("got %q twice, want unique IDs", id)
		}
		seen[id] = true
	}
}

func TestTruncate(t *testing.T) {
	s := strings.Repeat("é", maxTextLen) // 2 bytes each
	got := truncate(s)
	if len(got) > maxTextLen || !strings.HasPrefix(s, got) || strings.ToValidUTF8(got, "?") != got {
		t.Errorf("got %d bytes (valid UTF-8: %v), want at most %d valid bytes", len(got), strings.ToValidUTF8(got, "?") == got, maxTextLen)
	}
}

func TestPoolSettingsInDSN(t *testing.T) {
	dsn := "postgres://postgres@127.0.0.1:5432/bareflow?sslmode=disable&pool_max_conns=32&pool_min_conns=2"
	conn, err := parseConnConfig(dsn)
	if err != nil {
		t.Fatalf("parseConnConfig: got %v, want nil", err)
	}
	for k := range conn.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			t.Errorf("runtime parameter %q would be sent to the server", k)
		}
	}
	pool, err := parsePoolConfig(dsn)
	if err != nil || pool.MaxConns != 32 {
		t.Errorf("pool size: got %d (%v), want 32 from the DSN", pool.MaxConns, err)
	}
	pool, err = parsePoolConfig("postgres://postgres@127.0.0.1:5432/bareflow")
	if err != nil || pool.MaxConns != defaultMaxConns {
		t.Errorf("default pool size: got %d (%v), want %d", pool.MaxConns, err, defaultMaxConns)
	}
}
