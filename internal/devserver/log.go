package devserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger sends the Temporal server's logs to slog.
type serverLogger struct {
	l        *slog.Logger
	stopping *atomic.Bool
}

var (
	_ log.Logger      = serverLogger{}
	_ log.WithLogger  = serverLogger{}
	_ log.SLogWrapper = serverLogger{}
)

// newServerLogger returns a server logger that writes to base, tagged
// component=temporal, dropping records below floor. Once stopping is set, it
// drops everything unless floor is debug: while its services wind down one by
// one, the server logs every refused dial and cancelled poll between them.
func newServerLogger(base *slog.Logger, floor slog.Leveler, stopping *atomic.Bool) serverLogger {
	h := minLevelHandler{next: base.Handler(), floor: floor, stopping: stopping}
	return serverLogger{l: slog.New(h).With(slog.String("component", "temporal")), stopping: stopping}
}

func (s serverLogger) Debug(msg string, tags ...tag.Tag) { s.log(slog.LevelDebug, msg, tags) }
func (s serverLogger) Info(msg string, tags ...tag.Tag)  { s.log(slog.LevelInfo, msg, tags) }
func (s serverLogger) Warn(msg string, tags ...tag.Tag)  { s.log(slog.LevelWarn, msg, tags) }
func (s serverLogger) Error(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

// DPanic logs at error: it panics only in the server's development mode.
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

// Panic logs at error and panics, as the interface requires.
func (s serverLogger) Panic(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(msg)
}

// Fatal logs at error and panics with a fatalError instead of exiting the
// process, so that Start can return the failure as an error when the server
// reports it on Start's own goroutine.
func (s serverLogger) Fatal(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(fatalError{msg: msg, attrs: attrs(tags)})
}

// With returns a logger that adds tags to every record.
func (s serverLogger) With(tags ...tag.Tag) log.Logger {
	args := make([]any, 0, len(tags))
	for _, a := range attrs(tags) {
		args = append(args, a)
	}
	return serverLogger{l: s.l.With(args...), stopping: s.stopping}
}

// SLog gives the server's slog users the same filtered logger.
func (s serverLogger) SLog() *slog.Logger { return s.l }

func (s serverLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return
	}
	s.l.LogAttrs(ctx, level, msg, attrs(tags)...)
}

func attrs(tags []tag.Tag) []slog.Attr {
	out := make([]slog.Attr, 0, len(tags))
	for _, t := range tags {
		out = append(out, slog.Any(t.Key(), t.Value()))
	}
	return out
}

// fatalError is the panic value of serverLogger.Fatal.
type fatalError struct {
	msg   string
	attrs []slog.Attr
}

func (e fatalError) Error() string {
	s := e.msg
	for _, a := range e.attrs {
		s += fmt.Sprintf(" %s=%v", a.Key, a.Value)
	}
	return s
}

// recoverFatal turns a fatalError panic into *err; other panics go on.
func recoverFatal(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if f, ok := r.(fatalError); ok {
		*err = fmt.Errorf("temporal server: %w", f)
		return
	}
	panic(r)
}

// minLevelHandler drops records below floor, and every record once stopping
// is set unless floor is debug, before they reach next.
type minLevelHandler struct {
	next     slog.Handler
	floor    slog.Leveler
	stopping *atomic.Bool
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	floor := h.floor.Level()
	if h.stopping.Load() && floor > slog.LevelDebug {
		return false
	}
	return l >= floor && h.next.Enabled(ctx, l)
}

func (h minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ctx, r)
}

func (h minLevelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevelHandler{next: h.next.WithAttrs(as), floor: h.floor, stopping: h.stopping}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{next: h.next.WithGroup(name), floor: h.floor, stopping: h.stopping}
}
