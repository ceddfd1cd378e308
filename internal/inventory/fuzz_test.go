package inventory

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds random bytes to every parser, and to Parse as the output
// of every command at once. Nothing may panic, and the inventory must keep
// its invariants and marshal to JSON.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.out"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		// Seeds are kept small: the first part of each capture.
		f.Add(b[:min(len(b), 4096)])
	}
	for _, g := range garbage {
		if len(g) <= 4096 {
			f.Add(g)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range parsers {
			_ = p(b)
		}
		outputs := map[string]Output{}
		for _, c := range Commands() {
			outputs[c.Name] = Output{Stdout: b, Err: string(b[:min(len(b), 64)])}
		}
		inv := Parse(outputs)
		checkInvariants(t, "fuzz", inv)
		if _, err := json.Marshal(inv); err != nil {
			t.Errorf("marshal: %v", err)
		}
	})
}
