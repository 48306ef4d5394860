package config

import (
	"encoding/json"
	"os"
	"testing"
)

// TestMixRows runs the table the training entrypoints' tests read too
// (stdlib/python/tests/test_mixture.py): the step plan counts the rows a
// mix draws as ftc/mixture.py draws them.
func TestMixRows(t *testing.T) {
	b, err := os.ReadFile("testdata/mix_rows.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases [][3]float64
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := MixRows(int64(c[0]), c[1]); got != int64(c[2]) {
			t.Errorf("MixRows(%v, %v) = %d, want %v", c[0], c[1], got, c[2])
		}
	}
}
