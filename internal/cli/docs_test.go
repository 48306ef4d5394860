package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// repoRoot is where the documentation lives, seen from this package.
const repoRoot = "../.."

// TestCLIReference fails when docs/cli.md is not what the commands'
// definitions generate. FTC_UPDATE_GOLDEN=1 (or go run
// ./internal/cli/gendocs) rewrites it.
func TestCLIReference(t *testing.T) {
	path := filepath.Join(repoRoot, "docs", "cli.md")
	got := CLIReference()
	if os.Getenv("FTC_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go run ./internal/cli/gendocs)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("docs/cli.md is stale (-committed +generated); run go run ./internal/cli/gendocs:\n%s", diff)
	}
	// Flags whose default comes from the environment do not make the
	// reference depend on who generates it.
	for _, v := range envDefaults {
		t.Setenv(v, "from-the-environment")
	}
	if diff := cmp.Diff(string(got), string(CLIReference())); diff != "" {
		t.Errorf("the reference depends on the environment:\n%s", diff)
	}
}

// docFiles are the documents whose code blocks TestDocs checks: the
// README, the guides in docs/, the examples' READMEs and the entrypoints'.
func docFiles(t *testing.T) []string {
	files := []string{filepath.Join(repoRoot, "README.md")}
	for _, glob := range []string{"docs/*.md", "examples/*/README.md", "stdlib/python/README.md"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, glob))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

// TestDocs checks every code block of the documentation against the real
// CLI:
//
//   - a shell block (sh, bash, shell, console; or untagged, made of
//     command lines) and the "$ " lines of a text block: every ftc
//     command line names a command that exists, flags that command has,
//     values those flags accept and the arguments it takes; a make
//     target exists in the Makefile; a script run with bash exists. The
//     cheap ones run for real, from the repository root, offline: ftc
//     vet, ftc plan (without --out), ftc run --dry-run on the local backend
//     and ftc version, on files that exist, and must exit 0;
//   - a reference block (untagged, with indented flag lines, like the
//     README's Commands): every flag it lists under an "ftc CMD" line is
//     a flag of CMD;
//   - a relative link names a file that exists;
//   - a cue block is either a fragment of a tested file, named in a
//     comment above it (<!-- fragment of examples/X/recipe.cue -->, the
//     path relative to the document), each of its lines, without
//     comments, in that file and in order; or a whole recipe (it has
//     apiVersion), which vet accepts but for its data files, which a
//     block cannot ship.
func TestDocs(t *testing.T) {
	files := docFiles(t)
	for i := range files {
		files[i], _ = filepath.Rel(repoRoot, files[i])
	}
	if len(files) < 3 {
		t.Fatalf("documents found: %q; want the README, docs/*.md and the examples' READMEs", files)
	}
	t.Chdir(repoRoot)
	t.Setenv("FTC_CACHE", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "1") // dry runs resolve from the recipes' pins and locks alone
	t.Setenv("CUDA_VISIBLE_DEVICES", "")
	ran := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range checkLinks(f, string(src)) {
			t.Error(p)
		}
		for _, b := range codeBlocks(f, string(src)) {
			for _, p := range checkBlock(b, func(args []string) error {
				ran++
				return runFTC(args)
			}) {
				t.Error(p)
			}
			switch {
			case b.lang != "cue":
			case b.of != "":
				if p := checkFragment(b); p != "" {
					t.Error(p)
				}
			case strings.Contains(b.text, "apiVersion:"):
				for _, p := range vetRecipeBlock(t, b) {
					t.Error(p)
				}
			default:
				t.Errorf("%s:%d: a cue block without apiVersion must say which tested file it is a fragment of (<!-- fragment of PATH --> above it)", b.file, b.line)
			}
		}
	}
	t.Logf("ran %d documented commands", ran)
	if ran == 0 {
		t.Error("no documented command ran; the README's first command should")
	}
}

// TestDocsCheckerFindsMistakes shows that TestDocs fails on what a stale
// document says: an unknown command, an unknown flag, a value the flag
// refuses, a missing argument, a missing make target, a reference block
// listing a flag its command does not have.
func TestDocsCheckerFindsMistakes(t *testing.T) {
	t.Chdir(repoRoot)
	for _, tc := range []struct{ lang, text, want string }{
		{"sh", "ftc run --gpus 8 --no-such-flag examples/sft-ddp/recipe.cue\n", "unknown flag: --no-such-flag"},
		{"sh", "ftc frobnicate x.cue\n", `unknown command "frobnicate"`},
		{"sh", "ftc run --gpus N examples/sft-ddp/recipe.cue\n", `invalid argument "N"`},
		{"sh", "ftc plan\n", "missing recipe file"},
		{"sh", "ftc env make x.cue\n", "names no command"},
		{"sh", "go run ./cmd/ftc vet --strict x.cue   # a comment\n", "unknown flag: --strict"},
		{"bash", "FTC_CACHE=/x ftc status --all\n", "unknown flag: --all"},
		{"sh", "ftc lock x.cue && ftc build --pushh r x.cue\n", "unknown flag: --pushh"},
		{"sh", "ftc run x.cue \\\n    --backnd slurm\n", "unknown flag: --backnd"},
		{"sh", "make no-such-target\n", `no target "no-such-target"`},
		{"sh", "bash scripts/no-such.sh\n", "no such file"},
		{"sh", "go install ./cmd/ftx\n", "no such file"},
		{"text", "$ ftc vet --json recipe.cue\n", "unknown flag: --json"},
		{"", "ftc run FILE     execute\n    --gpus N   GPUs\n    --nodes N  nodes\n", "ftc run has no flag --nodes"},
		{"", "ftc cache gc [--keep RECIPE] [--keep-weeks N]   drop entries\n    --help\n", "ftc cache gc has no flag --keep-weeks"},
		{"sh", "ftc plan examples/no-such/recipe.cue\n", "no such file"},
	} {
		b := block{file: "test.md", line: 1, lang: tc.lang, text: tc.text}
		problems := checkBlock(b, func([]string) error { return nil })
		if len(problems) != 1 || !strings.Contains(problems[0], tc.want) {
			t.Errorf("%q: got %q, want one problem with %q", tc.text, problems, tc.want)
		}
	}
	// A recipe block is vetted; only its data files may be missing.
	recipe := block{file: "test.md", line: 1, lang: "cue", text: `package recipe

import (
	"ftc.dev/stdlib/gpus"
	"ftc.dev/stdlib/models"
	"ftc.dev/stdlib/profiles"
)

apiVersion:  "ftc.dev/v1alpha1"
name:        "x"
environment: profiles.Pinned2025Q1
hardware: {gpu: gpus.H100_80G, strategy: "single"}
datasets: chat: {file: {path: "data/chat.jsonl", sha256: "…"}, format: "messages"}
stages: sft: {method: "sft", model: models.Qwen25_05BInstruct, data: train: datasets.chat, training: learningRate: "2e-5"}
`}
	if problems := vetRecipeBlock(t, recipe); len(problems) != 1 || !strings.Contains(problems[0], "learningRate") {
		t.Errorf("a recipe block with a mistake: got %q, want one problem at learningRate", problems)
	}
	recipe.text = strings.Replace(recipe.text, `"2e-5"`, `2e-5`, 1)
	if problems := vetRecipeBlock(t, recipe); len(problems) != 0 {
		t.Errorf("a recipe block without data: got %q, want none", problems)
	}
	// A fragment must be in the file it names.
	frag := block{file: "README.md", line: 1, lang: "cue", of: "examples/sft-ddp/recipe.cue", text: "hardware: topologies.OneNode8 & strategies.DDP & {gpu: gpus.H100_80G} // 8 GPUs\n"}
	if p := checkFragment(frag); p != "" {
		t.Errorf("a true fragment: %s", p)
	}
	frag.text = "hardware: topologies.OneNode4 & strategies.DDP & {gpu: gpus.H100_80G}\n"
	if p := checkFragment(frag); !strings.Contains(p, "is not in examples/sft-ddp/recipe.cue") {
		t.Errorf("a stale fragment: got %q", p)
	}
	// A link to a file that is not there is reported.
	if p := checkLinks("README.md", "see [the guide](docs/no-such.md#x) and [here](#why)\n"); len(p) != 1 {
		t.Errorf("a broken link: got %q, want one problem", p)
	}
	// A documented command that runs and fails is reported.
	b := block{file: "test.md", line: 1, lang: "sh", text: "ftc vet --set stages.sft.training.learningRate=x examples/sft-ddp/recipe.cue\n"}
	if problems := checkBlock(b, runFTC); len(problems) != 1 {
		t.Errorf("a failing vet: got %q, want one problem", problems)
	}
}

type block struct {
	file string
	line int // of the opening fence
	lang string
	text string
	// of is the file a fragment is taken from, from a comment
	// <!-- fragment of PATH --> just above the block.
	of string
}

var fragmentOf = regexp.MustCompile(`^<!-- fragment of (\S+) -->$`)

// codeBlocks returns the fenced code blocks of a Markdown document.
func codeBlocks(file, src string) []block {
	var out []block
	var cur *block
	var fence, last string
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if cur == nil {
			if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
				fence = trimmed[:3]
				cur = &block{file: file, line: n, lang: strings.TrimSpace(trimmed[3:])}
				if m := fragmentOf.FindStringSubmatch(last); m != nil {
					cur.of = m[1]
				}
			} else if strings.TrimSpace(line) != "" {
				last = strings.TrimSpace(line)
			}
			continue
		}
		if strings.HasPrefix(trimmed, fence) && strings.TrimSpace(trimmed[3:]) == "" {
			out = append(out, *cur)
			cur = nil
			continue
		}
		cur.text += line + "\n"
	}
	return out
}

var indentedFlag = regexp.MustCompile(`^\s+-`)

// checkBlock returns the problems of one block; run executes the ftc
// command lines worth running.
func checkBlock(b block, run func([]string) error) []string {
	switch b.lang {
	case "sh", "bash", "shell", "console":
		return checkShell(b, b.text, run)
	case "text":
		var cmds []string
		for _, l := range strings.Split(b.text, "\n") {
			if c, ok := strings.CutPrefix(l, "$ "); ok {
				cmds = append(cmds, c)
			}
		}
		return checkShell(b, strings.Join(cmds, "\n"), func([]string) error { return nil })
	case "":
		lines := strings.Split(b.text, "\n")
		if slices.ContainsFunc(lines, indentedFlag.MatchString) {
			return checkReference(b)
		}
		var ftcLines []string
		for _, l := range lines {
			if strings.HasPrefix(l, "ftc ") {
				ftcLines = append(ftcLines, l)
			}
		}
		if len(ftcLines) > 0 && len(ftcLines) == len(slices.DeleteFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "" })) {
			return checkShell(b, b.text, run)
		}
	}
	return nil
}

// checkShell checks the commands of a shell script.
func checkShell(b block, script string, run func([]string) error) []string {
	var problems []string
	for _, c := range shellCommands(script) {
		where := fmt.Sprintf("%s:%d: %s", b.file, b.line+c.line, strings.Join(c.words, " "))
		words := c.words
		for len(words) > 0 && (isAssignment(words[0]) || words[0] == "sudo" || words[0] == "time") {
			words = words[1:]
		}
		if len(words) == 0 {
			continue
		}
		var args []string
		isFTC := false
		switch {
		case words[0] == "ftc" || words[0] == "bin/ftc" || words[0] == "./bin/ftc":
			args, isFTC = words[1:], true
		case len(words) >= 3 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/ftc":
			args, isFTC = words[3:], true
		case words[0] == "make":
			for _, target := range words[1:] {
				if !strings.Contains(target, "=") && !strings.HasPrefix(target, "-") && !makeTargets()[target] {
					problems = append(problems, fmt.Sprintf("%s: the Makefile has no target %q", where, target))
				}
			}
		case words[0] == "go":
			for _, w := range words[1:] {
				if strings.HasPrefix(w, "./") && !strings.Contains(w, "...") {
					if _, err := os.Stat(w); err != nil {
						problems = append(problems, fmt.Sprintf("%s: %v", where, err))
					}
				}
			}
		case (words[0] == "bash" || words[0] == "sh") && len(words) > 1 && !strings.HasPrefix(words[1], "-") && !strings.Contains(words[1], "$"):
			if _, err := os.Stat(words[1]); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			}
		}
		if !isFTC {
			continue
		}
		cmd, positional, err := parseFTC(args)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		for _, p := range positional {
			if strings.HasPrefix(p, "examples/") || strings.HasPrefix(p, "docs/") {
				if _, err := os.Stat(p); err != nil {
					problems = append(problems, fmt.Sprintf("%s: %v", where, err))
				}
			}
		}
		if worthRunning(cmd, positional) {
			if err := run(args); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			}
		}
	}
	return problems
}

// parseFTC parses an ftc command line as ftc would, without running it:
// the command, its flags and their values, its arguments.
func parseFTC(args []string) (*cobra.Command, []string, error) {
	root := newRoot(io.Discard, io.Discard)
	root.InitDefaultHelpCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return nil, nil, err
	}
	cmd.InitDefaultHelpFlag()
	cmd.InitDefaultVersionFlag()
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, nil, err
	}
	positional := cmd.Flags().Args()
	if help, _ := cmd.Flags().GetBool("help"); help {
		return cmd, nil, nil
	}
	if !cmd.Runnable() {
		if cmd == root && slices.Contains(rest, "--version") {
			return cmd, nil, nil
		}
		return nil, nil, fmt.Errorf("%q names no command (%s has subcommands)", strings.Join(args, " "), cmd.CommandPath())
	}
	if err := cmd.ValidateArgs(positional); err != nil {
		return nil, nil, err
	}
	return cmd, positional, nil
}

// worthRunning says whether a documented command is cheap and local
// enough to run in a test: vet, plan (without writing files) and local
// dry runs on recipes that exist, version.
func worthRunning(cmd *cobra.Command, positional []string) bool {
	switch cmd.CommandPath() {
	case "ftc version":
		return true
	case "ftc vet", "ftc plan", "ftc run":
		if f := cmd.Flags().Lookup("out"); f != nil && f.Changed {
			return false
		}
		if cmd.Name() == "run" {
			if dry, _ := cmd.Flags().GetBool("dry-run"); !dry {
				return false
			}
			if b, _ := cmd.Flags().GetString("backend"); b != "local" {
				return false
			}
		}
		for _, p := range positional {
			if _, err := os.Stat(p); err != nil {
				return false
			}
		}
		return true
	}
	return false
}

// runFTC runs ftc in this process and reports a non-zero exit.
func runFTC(args []string) error {
	var stdout, stderr bytes.Buffer
	if code := Run(args, &stdout, &stderr); code != 0 {
		return fmt.Errorf("exit %d:\n%s", code, stderr.String())
	}
	return nil
}

func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	return ok && name != "" && !strings.ContainsAny(name, "-./$")
}

var makeTarget = regexp.MustCompile(`(?m)^([a-zA-Z][a-zA-Z0-9_-]*):`)

func makeTargets() map[string]bool {
	src, _ := os.ReadFile("Makefile")
	targets := map[string]bool{}
	for _, m := range makeTarget.FindAllStringSubmatch(string(src), -1) {
		targets[m[1]] = true
	}
	return targets
}

type shellCommand struct {
	line  int // within the script, from 1
	words []string
}

// shellCommands splits a script into simple commands: words with quotes
// removed, comments dropped, backslash-newlines joined, split at ;, &,
// &&, || and |.
func shellCommands(script string) []shellCommand {
	var out []shellCommand
	var words []string
	var word strings.Builder
	inWord := false
	line, start := 1, 1
	flushWord := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	flush := func() {
		flushWord()
		if len(words) > 0 {
			out = append(out, shellCommand{line: start, words: words})
		}
		words = nil
	}
	r := []rune(script)
	for i := 0; i < len(r); i++ {
		c := r[i]
		if len(words) == 0 && !inWord {
			start = line
		}
		switch {
		case c == '\\' && i+1 < len(r) && r[i+1] == '\n':
			i++
			line++
		case c == '\\' && i+1 < len(r):
			i++
			word.WriteRune(r[i])
			inWord = true
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(r) && r[j] != c {
				if r[j] == '\n' {
					line++
				}
				j++
			}
			word.WriteString(string(r[i+1 : min(j, len(r))]))
			inWord = true
			i = j
		case c == '#' && !inWord:
			for i+1 < len(r) && r[i+1] != '\n' {
				i++
			}
		case c == '\n':
			flush()
			line++
		case c == ';' || c == '&' || c == '|':
			flush()
		case c == ' ' || c == '\t':
			flushWord()
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	flush()
	return out
}

var (
	descriptionGap = regexp.MustCompile(`\s{2,}`)
	longFlag       = regexp.MustCompile(`(?:^|[\s\[(,|])--([a-z][a-z0-9-]*)`)
	shortFlag      = regexp.MustCompile(`(?:^|[\s\[(,|])-([a-zA-Z])(?:[\s,\]]|$)`)
)

// checkReference checks a block that lists commands and their flags: the
// flags named on an "ftc CMD" line and on the indented lines below it
// must be CMD's.
func checkReference(b block) []string {
	var problems []string
	var cmd *cobra.Command
	for i, l := range strings.Split(b.text, "\n") {
		if strings.HasPrefix(l, "ftc ") {
			cmd = nil
			root := newRoot(io.Discard, io.Discard)
			c, _, err := root.Find(strings.Fields(l)[1:2])
			if err != nil || c == root {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: no such command", b.file, b.line+1+i, strings.Fields(l)[1]))
				continue
			}
			// The longest command path the line starts with.
			for _, w := range strings.Fields(l)[2:] {
				sub, _, err := c.Find([]string{w})
				if err != nil || sub == c {
					break
				}
				c = sub
			}
			cmd = c
			cmd.InitDefaultHelpFlag()
		} else if !indentedFlag.MatchString(l) && !strings.HasPrefix(l, " ") {
			cmd = nil
		}
		if cmd == nil {
			continue
		}
		// The synopsis: the line up to its description, which may
		// mention other programs' flags.
		syn := l
		if loc := descriptionGap.FindStringIndex(strings.TrimLeft(l, " ")); loc != nil {
			syn = strings.TrimLeft(l, " ")[:loc[0]]
		}
		if !strings.HasPrefix(l, "ftc ") && !indentedFlag.MatchString(l) {
			syn = ""
		}
		for _, m := range longFlag.FindAllStringSubmatch(syn, -1) {
			if cmd.Flags().Lookup(m[1]) == nil && cmd.InheritedFlags().Lookup(m[1]) == nil {
				problems = append(problems, fmt.Sprintf("%s:%d: %s has no flag --%s", b.file, b.line+1+i, cmd.CommandPath(), m[1]))
			}
		}
		for _, m := range shortFlag.FindAllStringSubmatch(syn, -1) {
			if cmd.Flags().ShorthandLookup(m[1]) == nil && cmd.InheritedFlags().ShorthandLookup(m[1]) == nil {
				problems = append(problems, fmt.Sprintf("%s:%d: %s has no flag -%s", b.file, b.line+1+i, cmd.CommandPath(), m[1]))
			}
		}
	}
	return problems
}

// vetRecipeBlock vets a recipe shown in a cue block, in a directory of
// its own: only its data files (which the block cannot ship) may be
// reported.
func vetRecipeBlock(t *testing.T, b block) []string {
	dir := t.TempDir()
	path := filepath.Join(dir, "recipe.cue")
	// An elided pin ("…") stands for the data's real one: a well-formed
	// pin lets vet go on to the rules that span fields.
	text := strings.ReplaceAll(b.text, `sha256: "…"`, `sha256: "`+strings.Repeat("0", 64)+`"`)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if Run([]string{"vet", path}, &stdout, &stderr) == 0 {
		return nil
	}
	var problems []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		rest, ok := strings.CutPrefix(l, path+":")
		if !ok {
			continue
		}
		if _, msg, ok := strings.Cut(rest, ": "); ok && dataFileDiag.MatchString(msg) {
			continue
		}
		problems = append(problems, fmt.Sprintf("%s:%d: recipe block: %s", b.file, b.line, l))
	}
	return problems
}

// dataFileDiag matches what vet says about a data file or its pin.
var dataFileDiag = regexp.MustCompile(`^datasets\.[A-Za-z0-9_]+\.file(\.[a-z0-9]+)?: `)

// checkFragment checks that a cue fragment's lines are those of the file
// it names, in order; comments and spacing may differ.
func checkFragment(b block) string {
	src, err := os.ReadFile(filepath.Join(filepath.Dir(b.file), b.of))
	if err != nil {
		return fmt.Sprintf("%s:%d: %v", b.file, b.line, err)
	}
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		if l = cueLine(l); l != "" {
			lines = append(lines, l)
		}
	}
	i := 0
	for n, l := range strings.Split(b.text, "\n") {
		if l = cueLine(l); l == "" {
			continue
		}
		for i < len(lines) && lines[i] != l {
			i++
		}
		if i == len(lines) {
			return fmt.Sprintf("%s:%d: %q is not in %s (or not in this order)", b.file, b.line+1+n, l, b.of)
		}
		i++
	}
	return ""
}

// cueLine is a line of CUE without its comment and with spacing
// normalised.
func cueLine(l string) string {
	inString := false
	for i := 0; i < len(l); i++ {
		switch {
		case l[i] == '\\' && inString:
			i++
		case l[i] == '"':
			inString = !inString
		case !inString && strings.HasPrefix(l[i:], "//"):
			l = l[:i]
		}
	}
	return strings.Join(strings.Fields(l), " ")
}

// TestGuideExamples checks what docs/sweeps.md says of its examples: the
// sweep's training stages share one prepare stage, the shared-base
// recipes plan, and a prepare stage of the same data, tokenizer and
// length has one key across recipes.
func TestGuideExamples(t *testing.T) {
	plans := map[string]*plan.Plan{}
	for _, f := range []string{"sweep/recipe.cue", "shared/sft-small.cue", "shared/sft-large.cue"} {
		p, diags, err := compiler.Plan(filepath.Join(repoRoot, "docs", "examples", f), nil)
		if err != nil {
			t.Fatalf("%s: %v\n%v", f, err, diags)
		}
		for _, d := range diags {
			t.Errorf("%s: a warning: %v", f, d)
		}
		plans[f] = p
	}
	prepares := func(p *plan.Plan) (names []string, keys []string) {
		for _, s := range p.Stages {
			if s.Kind == "prepare" {
				names, keys = append(names, s.Name), append(keys, string(s.Key))
			}
		}
		return
	}
	sweep := plans["sweep/recipe.cue"]
	names, keys := prepares(sweep)
	if len(names) != 1 || names[0] != "sft-lr1e-5.prepare" {
		t.Fatalf("the sweep's prepare stages: %q, want one, sft-lr1e-5.prepare", names)
	}
	var trained []string
	for _, s := range sweep.Stages {
		if s.Kind != "sft" {
			continue
		}
		trained = append(trained, s.Name)
		if !slices.ContainsFunc(s.Inputs, func(in plan.Input) bool { return in.Role == "train" && in.Stage == names[0] }) {
			t.Errorf("%s does not train on %s: %+v", s.Name, names[0], s.Inputs)
		}
	}
	if want := []string{"sft-lr1e-5", "sft-lr2e-4", "sft-lr5e-5"}; !slices.Equal(trained, want) {
		t.Errorf("the sweep's training stages: %q, want %q", trained, want)
	}
	_, small := prepares(plans["shared/sft-small.cue"])
	if !slices.Equal(small, keys) {
		t.Errorf("sft-small's prepare key %q differs from the sweep's %q", small, keys)
	}
	_, large := prepares(plans["shared/sft-large.cue"])
	if slices.Equal(large, keys) {
		t.Errorf("sft-large prepares for another tokenizer, yet has the sweep's prepare key %q", keys)
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// checkLinks reports relative links of a document to files that do not
// exist.
func checkLinks(file, src string) []string {
	var problems []string
	inCode := false
	for n, l := range strings.Split(src, "\n") {
		if t := strings.TrimLeft(l, " "); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			inCode = !inCode
		}
		if inCode {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(file), target)); err != nil {
				problems = append(problems, fmt.Sprintf("%s:%d: link to %s: %v", file, n+1, m[1], err))
			}
		}
	}
	return problems
}
