import json

from ftc import metrics


def test_lines_are_json_with_step(tmp_path):
    w = metrics.MetricsWriter(tmp_path / "m" / "metrics.jsonl")
    w.write(10, {"loss": 1.25, "learning_rate": 2e-4, "epoch": 0.5, "note": "x", "obj": object(), "step": 99})
    w.write(20, {"loss": float("nan"), "grad_norm": float("inf"), "ok": True})
    lines = (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"step": 10, "loss": 1.25, "learning_rate": 2e-4, "epoch": 0.5, "note": "x"}
    assert json.loads(lines[1]) == {"step": 20, "loss": "nan", "grad_norm": "inf", "ok": True}


def test_tensor_like_values_are_unwrapped(tmp_path):
    class T:
        def item(self):
            return 0.5

    w = metrics.MetricsWriter(tmp_path / "m.jsonl")
    assert w.write(1, {"loss": T()}) == {"step": 1, "loss": 0.5}


def test_disabled_writer_writes_nothing(tmp_path):
    metrics.MetricsWriter(tmp_path / "m.jsonl", enabled=False).write(1, {"loss": 1.0})
    assert not (tmp_path / "m.jsonl").exists()


def test_read_skips_torn_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    assert metrics.read(p) == [{"step": 1, "loss": 2.0}]
    assert metrics.read(tmp_path / "none") == []


def test_throughput_leaves_out_warmup():
    now = [0.0]
    tp = metrics.Throughput(warmup=1, clock=lambda: now[0])
    for tokens, secs in ((1000, 5.0), (500, 1.0), (300, 0.5)):
        tp.step_begin()
        tp.add_tokens(tokens)
        now[0] += secs
        tp.step_end()
    assert tp.tokens_per_second() == 800 / 1.5
    s = tp.summary()
    assert s["train_tokens"] == 1800 and s["measured_steps"] == 2 and s["measured_tokens"] == 800
    assert metrics.Throughput().tokens_per_second() is None
