package devserver

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/server/common/log/tag"
)

func TestServerLogger(t *testing.T) {
	tests := map[string]struct {
		floor    slog.Level
		stopping bool
		log      func(serverLogger)
		want     []string // substrings of the output; nil wants none
	}{
		"info dropped at the default floor": {
			floor: slog.LevelWarn,
			log:   func(l serverLogger) { l.Info("membership joined", tag.NewStringTag("service", "history")) },
		},
		"warn kept with tags and component": {
			floor: slog.LevelWarn,
			log:   func(l serverLogger) { l.Warn("shard lost", tag.NewInt32("shard-id", 1)) },
			want:  []string{"level=WARN", `msg="shard lost"`, "shard-id=1", "component=temporal"},
		},
		"with adds tags": {
			floor: slog.LevelWarn,
			log: func(l serverLogger) {
				l.With(tag.NewStringTag("service", "matching")).(serverLogger).Error("poll failed")
			},
			want: []string{"level=ERROR", "service=matching"},
		},
		"info kept at a debug floor": {
			floor: slog.LevelDebug,
			log:   func(l serverLogger) { l.Info("started") },
			want:  []string{"level=INFO", "msg=started"},
		},
		"errors dropped while stopping": {
			floor:    slog.LevelWarn,
			stopping: true,
			log:      func(l serverLogger) { l.Error("dial refused") },
		},
		"errors kept while stopping at a debug floor": {
			floor:    slog.LevelDebug,
			stopping: true,
			log:      func(l serverLogger) { l.Error("dial refused") },
			want:     []string{"msg=\"dial refused\""},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			stopping := &atomic.Bool{}
			stopping.Store(tc.stopping)
			base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			tc.log(newServerLogger(base, tc.floor, stopping))
			got := buf.String()
			if tc.want == nil && got != "" {
				t.Errorf("output: got %q, want none", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("output: got %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

func TestFatalBecomesError(t *testing.T) {
	var buf bytes.Buffer
	l := newServerLogger(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelWarn, &atomic.Bool{})
	err := func() (err error) {
		defer recoverFatal(&err)
		l.Fatal("Failed to start gRPC listener", tag.NewStringTag("address", "127.0.0.1:7233"))
		return nil
	}()
	var f fatalError
	if !errors.As(err, &f) || !strings.Contains(err.Error(), "address=127.0.0.1:7233") {
		t.Errorf("error: got %v, want a fatalError naming the address", err)
	}
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("log: got %q, want the fatal message at error", buf.String())
	}
}
