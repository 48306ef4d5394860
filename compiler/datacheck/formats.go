package datacheck

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Lookup finds a `columns` source in a row: the top-level column of that
// name when the row has one (top is then true), else a dotted path into
// nested objects and lists, "conversations.0.value", where a number
// indexes a list. data.py's lookup is the same rule.
func Lookup(row map[string]any, src string) (v any, top, ok bool) {
	if v, ok := row[src]; ok {
		return v, true, true
	}
	if !strings.Contains(src, ".") {
		return nil, false, false
	}
	var cur any = row
	for _, seg := range strings.Split(src, ".") {
		switch x := cur.(type) {
		case map[string]any:
			if cur, ok = x[seg]; !ok {
				return nil, false, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) || strconv.Itoa(i) != seg {
				return nil, false, false
			}
			cur = x[i]
		default:
			return nil, false, false
		}
	}
	return cur, false, true
}

// pathBreak says where a dotted `columns` path stops matching a row,
// for a hint: `"data" has no "question"; it has ["answers", "query"]`.
// "" when the path is a plain column name.
func pathBreak(row map[string]any, src string) string {
	if !strings.Contains(src, ".") || row == nil {
		return ""
	}
	var cur any = row
	segs := strings.Split(src, ".")
	for i, seg := range segs {
		at := "the row"
		if i > 0 {
			at = strconv.Quote(strings.Join(segs[:i], "."))
		}
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[seg]
			if !ok {
				return fmt.Sprintf("%s has no %q; it has %s", at, seg, keyList(x))
			}
			cur = v
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || strconv.Itoa(n) != seg {
				return fmt.Sprintf("%s is a list: index it with a number, not %q", at, seg)
			}
			if n >= len(x) {
				return fmt.Sprintf("%s has %d items, so no item %d (items count from 0)", at, len(x), n)
			}
			cur = x[n]
		default:
			return fmt.Sprintf("%s is %s, not an object or a list", at, jsonType(x))
		}
	}
	return ""
}

// ShareGPTRoles maps a ShareGPT turn's "from" to a message role.
var ShareGPTRoles = map[string]string{
	"human": "user", "user": "user",
	"gpt": "assistant", "assistant": "assistant",
	"system": "system", "tool": "tool",
}

// shareGPTFrom lists ShareGPTRoles' keys in the order messages name them.
var shareGPTFrom = []string{"human", "gpt", "system", "user", "assistant", "tool"}

// alpaca checks {instruction, output} with optional input and system,
// each a string (input and system may be null).
func (c rowChecker) alpaca() *problem {
	for _, w := range []string{"instruction", "output"} {
		if _, p := c.get(w); p != nil {
			return p
		}
	}
	if p := c.strings("instruction", "output"); p != nil {
		return p
	}
	for _, w := range []string{"input", "system"} {
		if v, ok := c.row[w]; ok && v != nil {
			if _, ok := v.(string); !ok {
				return &problem{msg: fmt.Sprintf("%q must be a string, got %s", c.s.source(w), jsonType(v))}
			}
		}
	}
	return nil
}

// sharegpt checks {conversations: [{from, value}, ...]} with at least one
// gpt turn.
func (c rowChecker) sharegpt() *problem {
	v, p := c.get("conversations")
	if p != nil {
		return p
	}
	name := c.s.source("conversations")
	l, ok := v.([]any)
	if !ok {
		return &problem{msg: fmt.Sprintf("%q must be a list of turns, got %s", name, jsonType(v))}
	}
	if len(l) == 0 {
		return &problem{msg: fmt.Sprintf("%q is an empty list", name)}
	}
	learn := false
	for i, t := range l {
		at := fmt.Sprintf("turn %d of %q", i+1, name)
		o, ok := t.(map[string]any)
		if !ok {
			return &problem{msg: fmt.Sprintf("%s must be an object {\"from\", \"value\"}, got %s", at, jsonType(t))}
		}
		from, ok := o["from"]
		if !ok {
			if _, role := o["role"]; role {
				return &problem{msg: fmt.Sprintf("%s has no \"from\" but a \"role\": OpenAI-style messages; declare format: \"messages\"", at)}
			}
			return &problem{msg: fmt.Sprintf("%s has no \"from\"", at)}
		}
		value, ok := o["value"]
		if !ok {
			return &problem{msg: fmt.Sprintf("%s has no \"value\"", at)}
		}
		f, _ := from.(string)
		role, known := ShareGPTRoles[f]
		if !known {
			return &problem{msg: fmt.Sprintf("%s: from %s is not one of %s", at, jsonText(from), strings.Join(shareGPTFrom, ", "))}
		}
		if _, ok := value.(string); !ok {
			return &problem{msg: fmt.Sprintf("%s: value must be a string, got %s", at, jsonType(value))}
		}
		learn = learn || role == "assistant"
	}
	if !learn {
		return &problem{msg: fmt.Sprintf("%q has no gpt turn to learn from", name)}
	}
	return nil
}

// checkTools checks a messages row's optional tools column: the function
// schemas the chat template is given, a list of objects.
func (c rowChecker) checkTools() *problem {
	v, ok := c.row["tools"]
	if !ok || v == nil {
		return nil
	}
	name := c.s.source("tools")
	l, ok := v.([]any)
	if !ok {
		return &problem{msg: fmt.Sprintf("%q must be a list of function schemas, got %s", name, jsonType(v))}
	}
	for i, t := range l {
		if _, ok := t.(map[string]any); !ok {
			return &problem{msg: fmt.Sprintf("tool %d of %q must be an object, got %s", i+1, name, jsonType(t))}
		}
	}
	return nil
}

// checkToolCalls checks an assistant message's tool_calls:
// [{"function": {"name": "...", "arguments": {...} or "{...}"}}, ...].
func checkToolCalls(v any, at string) string {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return fmt.Sprintf("%s: tool_calls must be a non-empty list, got %s", at, jsonType(v))
	}
	for j, tc := range l {
		call := fmt.Sprintf("%s: tool call %d", at, j+1)
		o, ok := tc.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s must be an object {\"function\": {\"name\", \"arguments\"}}, got %s", call, jsonType(tc))
		}
		fn, ok := o["function"].(map[string]any)
		if !ok {
			return fmt.Sprintf("%s has no \"function\" object", call)
		}
		if n, ok := fn["name"].(string); !ok || n == "" {
			return fmt.Sprintf("%s: function has no \"name\"", call)
		}
		switch a := fn["arguments"].(type) {
		case nil, map[string]any:
		case string:
			var x any
			if err := json.Unmarshal([]byte(a), &x); err != nil {
				return fmt.Sprintf("%s: arguments is a string that is not JSON: %v", call, err)
			}
			if _, ok := x.(map[string]any); !ok {
				return fmt.Sprintf("%s: arguments must hold a JSON object, got %s", call, jsonType(x))
			}
		default:
			return fmt.Sprintf("%s: arguments must be an object or a JSON string, got %s", call, jsonType(a))
		}
	}
	return ""
}
