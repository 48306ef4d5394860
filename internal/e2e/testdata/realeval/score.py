def exact_match(prompts, completions, answer, **kwargs):
    """1 where the answer is exactly the expected one."""
    return [1.0 if c[0]["content"].strip() == a else 0.0 for c, a in zip(completions, answer)]
