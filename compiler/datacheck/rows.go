package datacheck

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Roles are the message roles the entrypoints accept.
var Roles = []string{"system", "user", "assistant", "tool"}

// Spec is what a dataset declares about its rows.
type Spec struct {
	// Format is one of messages, alpaca, sharegpt, prompt-completion,
	// text, preference, prompt, unpaired-preference (schema/data.cue).
	Format string
	// Prompt is "implicit" or "explicit" (preference data).
	Prompt string
	// Columns renames source columns: {wanted: source}.
	Columns map[string]string
}

// problem is what is wrong with one row. group, when set, names a
// problem that may be shared by every row (a missing column): said once
// when it is.
type problem struct {
	msg   string
	group string
}

// Group names for problems every row may share.
const (
	groupMissing  = "missing:" // + the wanted column
	groupImplicit = "implicit-prompt"
)

// source returns the file's name of a wanted column.
func (s Spec) source(want string) string {
	if src, ok := s.Columns[want]; ok {
		return src
	}
	return want
}

// CheckRow returns what is wrong with one decoded row, or "" when it has
// the declared shape.
func (s Spec) CheckRow(v any) string {
	if p := s.checkRow(v); p != nil {
		return p.msg
	}
	return ""
}

func (s Spec) checkRow(v any) *problem {
	raw, ok := v.(map[string]any)
	if !ok {
		return &problem{msg: fmt.Sprintf("a row must be a JSON object, got %s", jsonType(v))}
	}
	// Renaming first, as prepare does: the checks below see wanted names,
	// the messages name the file's columns. A source that is a path into
	// nested values leaves its top-level column in place.
	row := raw
	if len(s.Columns) > 0 {
		row = make(map[string]any, len(raw))
		for k, x := range raw {
			row[k] = x
		}
		for _, want := range sortedKeys(s.Columns) {
			src := s.Columns[want]
			x, top, ok := Lookup(raw, src)
			if !ok {
				return &problem{msg: fmt.Sprintf("column %q (renamed to %q) is not in the row; row has %s", src, want, keyList(raw)),
					group: groupMissing + want}
			}
			if top {
				delete(row, src)
			}
			row[want] = x
		}
	}
	c := rowChecker{s: s, row: row, raw: raw}
	switch s.Format {
	case "messages":
		return c.messagesRow()
	case "alpaca":
		return c.alpaca()
	case "sharegpt":
		return c.sharegpt()
	case "prompt-completion":
		return c.promptCompletion()
	case "text":
		return c.text()
	case "preference":
		return c.preference()
	case "prompt":
		return c.prompt()
	case "unpaired-preference":
		return c.unpaired()
	}
	return &problem{msg: fmt.Sprintf("unknown format %q", s.Format)}
}

// label is an unpaired-preference row's label, through the columns'
// renaming; ok is false for other formats and rows without a boolean one.
func (s Spec) label(v any) (label, ok bool) {
	raw, isObj := v.(map[string]any)
	if s.Format != "unpaired-preference" || !isObj {
		return false, false
	}
	x, _, found := Lookup(raw, s.source("label"))
	label, ok = x.(bool)
	return label, found && ok
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type rowChecker struct {
	s   Spec
	row map[string]any // renamed
	raw map[string]any // as in the file
}

// get returns a wanted column, or a problem naming it as the file does.
func (c rowChecker) get(want string) (any, *problem) {
	v, ok := c.row[want]
	if !ok {
		return nil, &problem{msg: fmt.Sprintf("no %q column; row has %s", c.s.source(want), keyList(c.raw)),
			group: groupMissing + want}
	}
	return v, nil
}

func (c rowChecker) messagesRow() *problem {
	v, p := c.get("messages")
	if p != nil {
		return p
	}
	name := c.s.source("messages")
	if msg := checkMessages(v, name); msg != "" {
		return &problem{msg: msg}
	}
	if p := c.checkTools(); p != nil {
		return p
	}
	for _, m := range v.([]any) {
		if m.(map[string]any)["role"] == "assistant" {
			return nil
		}
	}
	return &problem{msg: fmt.Sprintf("%q has no assistant turn to learn from", name)}
}

func (c rowChecker) promptCompletion() *problem {
	p, pr := c.get("prompt")
	if pr != nil {
		return pr
	}
	q, pr := c.get("completion")
	if pr != nil {
		return pr
	}
	if isMessages(p) || isMessages(q) {
		if msg := textOrMessages(p, c.s.source("prompt")); msg != "" {
			return &problem{msg: msg}
		}
		if msg := textOrMessages(q, c.s.source("completion")); msg != "" {
			return &problem{msg: msg}
		}
		return nil
	}
	return c.strings("prompt", "completion")
}

// unpaired checks a KTO row: prompt and completion as prompt-completion
// has them, and a label that is a JSON boolean (true desirable, false
// undesirable). A 0/1 or "yes" is refused rather than guessed at.
func (c rowChecker) unpaired() *problem {
	if p := c.promptCompletion(); p != nil {
		return p
	}
	l, p := c.get("label")
	if p != nil {
		return p
	}
	if _, ok := l.(bool); !ok {
		return &problem{msg: fmt.Sprintf("%q must be true (desirable) or false (undesirable), got %s", c.s.source("label"), jsonType(l))}
	}
	return nil
}

func (c rowChecker) text() *problem {
	if _, p := c.get("text"); p != nil {
		return p
	}
	return c.strings("text")
}

func (c rowChecker) preference() *problem {
	ch, p := c.get("chosen")
	if p != nil {
		return p
	}
	rj, p := c.get("rejected")
	if p != nil {
		return p
	}
	if m, ok := c.row["margin"]; ok && m != nil {
		if _, num := m.(json.Number); !num {
			return &problem{msg: fmt.Sprintf("%q must be a number, got %s", c.s.source("margin"), jsonType(m))}
		}
	}
	if c.s.Prompt == "explicit" {
		pv, p := c.get("prompt")
		if p != nil {
			return p
		}
		if isMessages(pv) || isMessages(ch) || isMessages(rj) {
			for _, w := range []string{"prompt", "chosen", "rejected"} {
				if msg := textOrMessages(c.row[w], c.s.source(w)); msg != "" {
					return &problem{msg: msg}
				}
			}
			return nil
		}
		return c.strings("prompt", "chosen", "rejected")
	}
	if _, ok := c.row["prompt"]; ok {
		return &problem{msg: fmt.Sprintf("the row has a %q column, but the dataset declares prompt: \"implicit\"", c.s.source("prompt")),
			group: groupImplicit}
	}
	conv := isMessages(ch)
	if conv != isMessages(rj) {
		return &problem{msg: fmt.Sprintf("%q and %q must both be conversations or both be text", c.s.source("chosen"), c.s.source("rejected"))}
	}
	if conv {
		for _, w := range []string{"chosen", "rejected"} {
			if msg := checkMessages(c.row[w], c.s.source(w)); msg != "" {
				return &problem{msg: msg}
			}
		}
		return nil
	}
	return c.strings("chosen", "rejected")
}

func (c rowChecker) prompt() *problem {
	v, p := c.get("prompt")
	if p != nil {
		return p
	}
	if _, ok := v.(string); ok {
		return nil
	}
	name := c.s.source("prompt")
	if _, ok := v.([]any); !ok {
		return &problem{msg: fmt.Sprintf("%q must be a string or a list of messages, got %s", name, jsonType(v))}
	}
	if msg := checkMessages(v, name); msg != "" {
		return &problem{msg: msg}
	}
	l := v.([]any)
	if l[len(l)-1].(map[string]any)["role"] == "assistant" {
		return &problem{msg: fmt.Sprintf("%q ends with an assistant message; a prompt must end before the answer", name)}
	}
	return nil
}

// strings checks that wanted columns hold strings.
func (c rowChecker) strings(wants ...string) *problem {
	for _, w := range wants {
		if l, ok := c.row[w].([]any); ok {
			// A list that is almost a conversation: say what is wrong
			// with it rather than that it is not a string.
			if msg := checkMessages(l, c.s.source(w)); msg != "" {
				return &problem{msg: msg}
			}
		}
		if _, ok := c.row[w].(string); !ok {
			return &problem{msg: fmt.Sprintf("%q must be a string, got %s", c.s.source(w), jsonType(c.row[w]))}
		}
	}
	return nil
}

// isMessages is data.py's is_messages: a non-empty list of objects that
// each have a role and a content (or tool calls).
func isMessages(v any) bool {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return false
	}
	for _, m := range l {
		o, ok := m.(map[string]any)
		if !ok {
			return false
		}
		if _, ok := o["role"]; !ok {
			return false
		}
		_, content := o["content"]
		_, calls := o["tool_calls"]
		if !content && !calls {
			return false
		}
	}
	return true
}

func textOrMessages(v any, name string) string {
	if _, ok := v.(string); ok {
		return ""
	}
	if _, ok := v.([]any); !ok {
		return fmt.Sprintf("%q must be a string or a list of messages, got %s", name, jsonType(v))
	}
	return checkMessages(v, name)
}

// checkMessages is data.py's check_messages, saying which message is
// wrong and how.
func checkMessages(v any, name string) string {
	l, ok := v.([]any)
	if !ok {
		return fmt.Sprintf("%q must be a list of messages, got %s", name, jsonType(v))
	}
	if len(l) == 0 {
		return fmt.Sprintf("%q is an empty list", name)
	}
	for i, m := range l {
		at := fmt.Sprintf("message %d of %q", i+1, name)
		o, ok := m.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s must be an object {\"role\", \"content\"}, got %s", at, jsonType(m))
		}
		role, ok := o["role"]
		if !ok {
			if _, from := o["from"]; from {
				return fmt.Sprintf("%s has no \"role\" but a \"from\": ShareGPT turns; declare format: \"sharegpt\"", at)
			}
			return fmt.Sprintf("%s has no \"role\"", at)
		}
		if r, ok := role.(string); !ok || !contains(Roles, r) {
			return fmt.Sprintf("%s: role %s is not one of %s", at, jsonText(role), strings.Join(Roles, ", "))
		}
		calls, hasCalls := o["tool_calls"]
		if hasCalls && calls != nil {
			if role != "assistant" {
				return fmt.Sprintf("%s: only an assistant message may have tool_calls, this one is %s", at, jsonText(role))
			}
			if msg := checkToolCalls(calls, at); msg != "" {
				return msg
			}
		}
		content, ok := o["content"]
		if !ok && !(hasCalls && calls != nil) {
			return fmt.Sprintf("%s has no \"content\"", at)
		}
		if _, ok := content.(string); !ok && !(content == nil && hasCalls && calls != nil) {
			return fmt.Sprintf("%s: content must be a string, got %s", at, jsonType(content))
		}
	}
	return ""
}

// Want describes the row shape s declares, in the file's column names,
// for hints.
func (s Spec) Want() string {
	q := func(w string) string { return strconv.Quote(s.source(w)) }
	msgs := `[{"role": ..., "content": ...}, ...]`
	switch s.Format {
	case "messages":
		return fmt.Sprintf("want {%s: %s} with at least one assistant turn", q("messages"), msgs)
	case "alpaca":
		return fmt.Sprintf("want {%s: \"...\", %s: \"...\"} with optional %s and %s strings", q("instruction"), q("output"), q("input"), q("system"))
	case "sharegpt":
		return fmt.Sprintf("want {%s: [{\"from\": \"human\", \"value\": ...}, {\"from\": \"gpt\", \"value\": ...}, ...]} with at least one gpt turn", q("conversations"))
	case "prompt-completion":
		return fmt.Sprintf("want {%s: ..., %s: ...}, each a string or a list of messages", q("prompt"), q("completion"))
	case "text":
		return fmt.Sprintf("want {%s: \"...\"}", q("text"))
	case "preference":
		if s.Prompt == "explicit" {
			return fmt.Sprintf("want {%s: ..., %s: ..., %s: ...}, each a string or a list of messages (prompt: \"explicit\")", q("prompt"), q("chosen"), q("rejected"))
		}
		return fmt.Sprintf("want {%s: ..., %s: ...}, both strings or both lists of messages, each holding the prompt (prompt: \"implicit\")", q("chosen"), q("rejected"))
	case "prompt":
		return fmt.Sprintf("want {%s: \"...\"} or {%s: %s} not ending with an assistant turn", q("prompt"), q("prompt"), msgs)
	case "unpaired-preference":
		return fmt.Sprintf("want {%s: ..., %s: ..., %s: true or false}, prompt and completion each a string or a list of messages", q("prompt"), q("completion"), q("label"))
	}
	return ""
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	if v == nil {
		return "null"
	}
	return jsonType(v)
}

// keyList lists a row's columns for messages: ["a", "b"].
func keyList(row map[string]any) string {
	keys := sortedKeys(row)
	for i, k := range keys {
		keys[i] = strconv.Quote(k)
	}
	return "[" + strings.Join(keys, ", ") + "]"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
