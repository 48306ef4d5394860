// Package shq quotes text for the shell scripts ftc writes (launch.sh,
// Slurm batch scripts, the command of a Kubernetes container): the one
// place where a value becomes shell text. Every value is written so that
// sh and bash read it back byte for byte: a recipe string holding $(...),
// backquotes, ';', quotes, globs or line breaks stays one literal word and
// never becomes a command.
//
// Only variables a renderer names are left to expand (the per-node
// $FTC_MASTER_ADDR and $FTC_NODE_RANK of a multi-node launch); any other
// '$' is literal.
package shq

import (
	"strings"
)

// Bare reports whether s reads back as itself without quoting: non-empty,
// only letters, digits and -_=./:,@%+ and a '#' that does not start it.
// (A leading '=' or '~' and everything else is quoted.)
func Bare(s string) bool {
	if s == "" || s[0] == '#' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_=./:,@%+#", c) >= 0) {
			return false
		}
	}
	return true
}

// Quote returns s as one shell word: bare when Bare(s), else in single
// quotes, inside which nothing is special (a single quote ends the quotes,
// is escaped with a backslash and reopens them). Line breaks are kept
// literally inside the quotes. A NUL byte cannot be passed to a program
// at all: check with Valid first.
func Quote(s string) string {
	if Bare(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Valid reports whether s can be written as a shell word and passed to a
// program: it holds no NUL byte.
func Valid(s string) bool { return strings.IndexByte(s, 0) < 0 }

// Word quotes s like Quote, except that references to the variables in
// vars, written $NAME or ${NAME}, become "$NAME" expansions. "$NAMEX" is
// not a reference to NAME.
func Word(s string, vars ...string) string {
	if len(vars) == 0 || !strings.Contains(s, "$") {
		return Quote(s)
	}
	var b strings.Builder
	lit := 0 // start of the pending literal
	flush := func(end int) {
		if end > lit {
			b.WriteString(Quote(s[lit:end]))
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		for _, v := range vars {
			n := 0
			switch {
			case strings.HasPrefix(s[i:], "${"+v+"}"):
				n = len(v) + 3
			case strings.HasPrefix(s[i:], "$"+v) && (i+1+len(v) == len(s) || !nameChar(s[i+1+len(v)])):
				n = len(v) + 1
			default:
				continue
			}
			flush(i)
			b.WriteString(`"$` + v + `"`)
			i += n - 1
			lit = i + 1
			break
		}
	}
	flush(len(s))
	return b.String()
}

// Join writes argv as one shell command line, each argument a Word. A
// first word that holds '=' is quoted, or the shell would read it as an
// assignment rather than the command.
func Join(argv []string, vars ...string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = Word(a, vars...)
		if i == 0 && words[i] == a && strings.Contains(a, "=") {
			words[i] = "'" + a + "'"
		}
	}
	return strings.Join(words, " ")
}

// IsName reports whether s is a shell variable name.
func IsName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameChar(s[i]) {
			return false
		}
	}
	return true
}

func nameChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Comment keeps s on one '#' comment line: line breaks become spaces.
func Comment(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
