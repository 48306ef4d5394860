package display

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Short is a key or digest as people read it: its first 12 hex digits.
func Short(k string) string {
	k = strings.TrimPrefix(k, "sha256:")
	if len(k) > 12 {
		return k[:12]
	}
	return k
}

// FormatMetrics writes a stage's metrics as k=v, sorted, without step.
func FormatMetrics(m map[string]any) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if k == "step" {
			continue
		}
		switch v := m[k].(type) {
		case float64:
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v))
		default:
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}

// HumanBytes writes a size in binary units: 512 B, 1.5 KiB, 12.0 MiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// HumanCount writes a parameter count as people do: 8.03B, 494M.
func HumanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.3gB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.3gM", float64(n)/1e6)
	}
	return fmt.Sprint(n)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// HashProgress reports on w the hashing of files of 256 MiB or more, at
// most once a second (resolve.Hasher.Progress); now is the clock.
func HashProgress(w io.Writer, now func() time.Time) func(path string, done, total int64) {
	var last time.Time
	return func(path string, done, total int64) {
		if total < 256<<20 || (now().Sub(last) < time.Second && done < total) {
			return
		}
		last = now()
		fmt.Fprintf(w, "hashing %s: %d%% of %s\n", filepath.Base(path), done*100/total, HumanBytes(total))
	}
}
