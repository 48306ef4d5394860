package ident

import "strings"

// IsCommit reports whether s is a full commit id: 40 lower-case hex
// digits. A branch or tag name is not: it moves.
func IsCommit(s string) bool { return len(s) == 40 && isLowerHex(s) }

// IsSHA256Hex reports whether s is a sha256 sum as 64 lower-case hex
// digits (how recipes write a file's sha256).
func IsSHA256Hex(s string) bool { return len(s) == 64 && isLowerHex(s) }

// IsDigest reports whether s is a digest as OCI and ftc's keys write it:
// "sha256:" and 64 lower-case hex digits.
func IsDigest(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	return ok && IsSHA256Hex(h)
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
