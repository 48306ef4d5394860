package display

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFormats(t *testing.T) {
	for got, want := range map[string]string{
		Short("sha256:" + strings.Repeat("ab", 32)): "abababababab",
		Short("abc"):              "abc",
		HumanBytes(512):           "512 B",
		HumanBytes(1536):          "1.5 KiB",
		HumanBytes(12 << 20):      "12.0 MiB",
		HumanCount(8_030_000_000): "8.03B",
		HumanCount(494_000_000):   "494M",
		HumanCount(1234):          "1234",
		FormatMetrics(map[string]any{"step": 3.0, "loss": 1.23456, "a": "x"}): "a=x loss=1.235",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestHashProgress: small files say nothing; a large one at most once a
// second, and always when it is done.
func TestHashProgress(t *testing.T) {
	var buf bytes.Buffer
	clock := newFakeClock()
	h := HashProgress(&buf, clock.now)
	h("/d/small.jsonl", 10, 100)
	const big = 1 << 30
	h("/d/big.bin", 0, big)
	h("/d/big.bin", big/4, big) // within the second
	clock.add(time.Second)
	h("/d/big.bin", big/2, big)
	h("/d/big.bin", big, big) // done: said at once
	want := "hashing big.bin: 0% of 1.0 GiB\nhashing big.bin: 50% of 1.0 GiB\nhashing big.bin: 100% of 1.0 GiB\n"
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}
