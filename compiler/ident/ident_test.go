package ident

import (
	"strings"
	"testing"
)

func TestIdentifiers(t *testing.T) {
	commit := strings.Repeat("0123456789", 4)
	hex64 := commit + "abcdef0123456789abcdef01"
	for _, c := range []struct {
		s                 string
		commit, hex, dgst bool
	}{
		{commit, true, false, false},
		{strings.ToUpper("abcdef" + commit[6:]), false, false, false}, // upper case is not how the Hub writes them
		{"main", false, false, false},
		{commit[:39], false, false, false},
		{hex64, false, true, false},
		{"sha256:" + hex64, false, false, true},
		{"sha512:" + hex64, false, false, false},
		{"sha256:" + hex64[:63] + "g", false, false, false},
		{"", false, false, false},
	} {
		if IsCommit(c.s) != c.commit || IsSHA256Hex(c.s) != c.hex || IsDigest(c.s) != c.dgst {
			t.Errorf("%q: commit %v hex %v digest %v, want %v %v %v", c.s, IsCommit(c.s), IsSHA256Hex(c.s), IsDigest(c.s), c.commit, c.hex, c.dgst)
		}
	}
}
