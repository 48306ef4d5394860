package diag

import "sort"

// EditDistance is the optimal-string-alignment distance: insertions,
// deletions, substitutions and swaps of neighbours ("alpah") cost one.
func EditDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Nearest is the name among names nearest to name when it is near enough
// to be a typo of it (the "did you mean" of schema fields, stage names and
// passthrough keys), else "".
func Nearest(name string, names []string) string {
	all := append([]string(nil), names...)
	sort.Strings(all)
	best, bestD := "", 1<<30
	for _, n := range all {
		if d := EditDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" && bestD <= max(2, len(name)/3) && bestD < len(name) {
		return best
	}
	return ""
}
