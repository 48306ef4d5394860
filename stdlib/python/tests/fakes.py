"""A fake tokenizer for tests: the methods ftc's tokenization calls, with
a Qwen-style chat template, and one token per character (special markers
are one token each), so token boundaries are easy to reason about."""

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


class FakeTokenizer:
    eos_token = "<|im_end|>"
    pad_token = "<|endoftext|>"
    chat_template = "fake"
    name_or_path = "fake/tokenizer"

    def __init__(self, prefix_stable: bool = True):
        self.prefix_stable = prefix_stable

    @property
    def eos_token_id(self):
        return SPECIAL.index(self.eos_token)

    @property
    def pad_token_id(self):
        return SPECIAL.index(self.pad_token)

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False, tools=None):
        assert tokenize is False
        out = ""
        if tools:
            out += "<|im_start|>system\ntools:" + ",".join(t["function"]["name"] for t in tools) + "<|im_end|>\n"
        for i, m in enumerate(messages):
            content = m["content"]
            for tc in m.get("tool_calls") or []:
                # Templates get arguments as an object (data._chat_messages).
                assert isinstance(tc["function"]["arguments"], dict)
                content += "<call>" + tc["function"]["name"] + str(sorted(tc["function"]["arguments"].items()))
            if not self.prefix_stable and i == len(messages) - 1:
                # Templates that rewrite the last turn break prefix stability.
                content = content.upper()
            out += f"<|im_start|>{m['role']}\n{content}<|im_end|>\n"
        if add_generation_prompt:
            out += "<|im_start|>assistant\n"
        return out

    def encode(self, text, add_special_tokens=False):
        ids, i = [], 0
        while i < len(text):
            for s in SPECIAL:
                if text.startswith(s, i):
                    ids.append(SPECIAL.index(s))
                    i += len(s)
                    break
            else:
                ids.append(100 + ord(text[i]))
                i += 1
        return ids

    def decode(self, ids, skip_special_tokens=False):
        out = []
        for t in ids:
            if t < len(SPECIAL):
                if not skip_special_tokens:
                    out.append(SPECIAL[t])
            else:
                out.append(chr(t - 100))
        return "".join(out)
