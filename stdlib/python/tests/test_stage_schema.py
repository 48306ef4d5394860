"""stage.json against its JSON Schema (ftc/stage.schema.json).

The schema is generated from the Go types of stage.json by
internal/stageschema and committed beside the entrypoints; the Go tests
check it is current and that every stage file the compiler plans for the
examples matches it (their goldens: examples/testdata/stages). Here the
same files, and this package's fixtures, are checked against the same
schema with a validator as small as the Go one (the keywords the
generator emits, nothing else), and parsed with ftc/stage.py. And every
property the schema names is one stage.py reads, or is listed in IGNORED
with the reason: Go adding a field Python never reads fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ftc
from ftc.stage import KINDS, StageError, StageFile

SCHEMA_FILE = Path(ftc.__file__).parent / "stage.schema.json"
REPO = Path(__file__).resolve().parents[3]
GOLDENS = REPO / "examples" / "testdata" / "stages"
FIXTURES = Path(__file__).parent / "fixtures"

# Properties stage.py knowingly does not read, as "Def.property": reason.
IGNORED = {
    "Source.pin": "the pin keys the prepare stage; the runtime lays out the pinned data",
    "Source.pinned": "whether the pin was resolved is the runtime's concern",
}

# The keywords internal/stageschema emits; the Go validator accepts the same.
KEYWORDS = {
    "$schema", "$id", "$defs", "$ref", "title", "description", "x-ftc-configByKind",
    "type", "enum", "properties", "required", "additionalProperties", "items", "oneOf",
}


def load_schema() -> dict:
    schema = json.loads(SCHEMA_FILE.read_text())
    check_keywords(schema, schema, "#")
    return schema


def check_keywords(root: dict, s: dict, at: str) -> None:
    """Refuses a schema using a keyword this validator does not implement."""
    if not isinstance(s, dict):
        raise ValueError(f"schema {at}: not a schema object")
    for k, v in s.items():
        if k not in KEYWORDS:
            raise ValueError(f"schema {at}: keyword {k!r} is not implemented by this validator")
        if k in ("$defs", "properties"):
            for name, sub in v.items():
                check_keywords(root, sub, f"{at}/{k}/{name}")
        elif k == "items" or (k == "additionalProperties" and not isinstance(v, bool)):
            check_keywords(root, v, f"{at}/{k}")
        elif k == "oneOf":
            for i, sub in enumerate(v):
                check_keywords(root, sub, f"{at}/oneOf/{i}")
        elif k == "$ref":
            resolve(root, v)


def resolve(root: dict, ref: str) -> dict:
    if ref == "#":
        return root
    if not ref.startswith("#/$defs/") or ref[len("#/$defs/"):] not in root.get("$defs", {}):
        raise ValueError(f"$ref {ref!r} names no definition")
    return root["$defs"][ref[len("#/$defs/"):]]


def is_type(x, name: str) -> bool:
    if name == "null":
        return x is None
    if name == "boolean":
        return isinstance(x, bool)
    if name == "string":
        return isinstance(x, str)
    if name == "object":
        return isinstance(x, dict)
    if name == "array":
        return isinstance(x, list)
    if name == "number":
        return isinstance(x, (int, float)) and not isinstance(x, bool)
    if name == "integer":  # JSON Schema: no fractional part (1.0 included)
        return (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())
    return False


def validate(root: dict, s: dict, x, at: str = "$") -> list[str]:
    """Every violation of s by x, each with its path."""
    errs = []
    if "$ref" in s:
        errs += validate(root, resolve(root, s["$ref"]), x, at)
    if "type" in s:
        names = [s["type"]] if isinstance(s["type"], str) else s["type"]
        if not any(is_type(x, n) for n in names):
            return errs + [f"{at}: {x!r} is not {' or '.join(names)}"]
    if "enum" in s and not any(x == v and type(x) is type(v) for v in s["enum"]):
        errs.append(f"{at}: {x!r} is not one of {s['enum']}")
    if isinstance(x, dict):
        props = s.get("properties", {})
        for r in s.get("required", []):
            if r not in x:
                errs.append(f"{at}: {r!r} is required")
        for k in sorted(x):
            if k in props:
                errs += validate(root, props[k], x[k], f"{at}.{k}")
            elif s.get("additionalProperties") is False:
                errs.append(f"{at}: {k!r} is not a known property")
            elif isinstance(s.get("additionalProperties"), dict):
                errs += validate(root, s["additionalProperties"], x[k], f"{at}.{k}")
    if isinstance(x, list) and "items" in s:
        for i, el in enumerate(x):
            errs += validate(root, s["items"], el, f"{at}[{i}]")
    if "oneOf" in s:
        why = [validate(root, alt, x, at) for alt in s["oneOf"]]
        matched = sum(1 for w in why if not w)
        if matched == 0:
            errs.append(f"{at}: matches none of oneOf: " + "; ".join(f"({i}) {w[0]}" for i, w in enumerate(why)))
        elif matched > 1:
            errs.append(f"{at}: matches {matched} of oneOf, want exactly one")
    return errs


def validate_stage(schema: dict, doc: dict) -> list[str]:
    """The root, then the config against the one its kind carries (as the
    Go side's ValidateStage)."""
    errs = validate(schema, schema, doc)
    if errs:
        return errs
    ref = schema["x-ftc-configByKind"].get(doc["kind"])
    if ref is None:
        return [f"$.kind: {doc['kind']!r} has no stage config in x-ftc-configByKind"]
    return [f"$.config of a {doc['kind']} stage ({ref}): {e}" for e in validate(schema, resolve(schema, ref), doc["config"])]


def stage_files() -> list[Path]:
    files = sorted(GOLDENS.glob("*/*.json")) + sorted(FIXTURES.glob("*.stage.json"))
    assert len(files) > 20, f"no stage files under {GOLDENS} (go test ./examples writes them)"
    return files


def ids(paths):
    return [str(p.relative_to(REPO)) for p in paths]


@pytest.fixture(scope="module")
def schema():
    return load_schema()


@pytest.mark.parametrize("path", stage_files(), ids=ids(stage_files()))
def test_stage_file_matches_schema_and_parses(schema, path, tmp_path):
    doc = json.loads(path.read_text())
    assert validate_stage(schema, doc) == []
    st = StageFile.parse(doc, tmp_path)
    parse_config(st)


def parse_config(st: StageFile):
    if st.kind == "prepare":
        return st.prepare_config()
    if st.kind == "export":
        return st.export_config()
    if st.kind == "reference":
        return st.reference_config()
    if st.kind == "eval":
        return st.eval_config()
    return st.train_config()


def sft_golden() -> dict:
    return json.loads((GOLDENS / "sft-trl-single--speed" / "sft.json").read_text())


@pytest.mark.parametrize("change,want", [
    (lambda d: d["config"]["training"].__setitem__("learningRat", 1e-5),
     "$.config.training: 'learningRat' is not a known property"),
    (lambda d: d.__setitem__("resume", "x"), "$: 'resume' is not a known property"),
    (lambda d: d["config"]["training"].__setitem__("learningRate", "2e-5"),
     "$.config.training.learningRate: '2e-5' is not number"),
    (lambda d: d["config"]["training"].__setitem__("microBatch", 1.5),
     "$.config.training.microBatch: 1.5 is not integer"),
    (lambda d: d["config"]["training"].__setitem__("microBatch", True),
     "$.config.training.microBatch: True is not integer"),
    (lambda d: d["world"].__setitem__("strategy", "zero4"), "$.world.strategy: 'zero4' is not one of"),
    (lambda d: d.__setitem__("kind", "ipo"), "$.kind: 'ipo' is not one of"),
    (lambda d: d["config"]["data"].pop("maxLength"), "$.config.data: 'maxLength' is required"),
    (lambda d: d["config"].__setitem__("adapter", None), "$.config.adapter: None is not object"),
    (lambda d: d["config"]["adapter"].__setitem__("targets", "all"), "$.config.adapter.targets: matches none of oneOf"),
    (lambda d: d["config"]["speed"].__setitem__("gradientCheckpointing", True),
     "$.config.speed: 'gradientCheckpointing' is not a known property"),
    (lambda d: d["inputs"]["train"].__setitem__("kind", 3), "$.inputs.train.kind: 3 is not string"),
    (lambda d: d.__setitem__("kind", "prepare"), "$.config of a prepare stage (#/$defs/PrepareConfig)"),
], ids=["unknown-field", "unknown-top-level", "wrong-type", "fraction", "bool-for-int", "bad-enum", "bad-kind",
        "missing", "null", "targets", "speed-field-go-lacks", "map-value", "config-of-another-kind"])
def test_validator_catches(schema, change, want):
    doc = sft_golden()
    assert validate_stage(schema, doc) == []
    change(doc)
    errs = validate_stage(schema, doc)
    assert any(want in e for e in errs), errs


def test_validator_refuses_keywords_it_cannot_check():
    for s in ({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
              {"$ref": "#/$defs/Nope"}):
        with pytest.raises(ValueError):
            check_keywords(s, s, "#")


def test_kinds_agree(schema):
    assert tuple(schema["$defs"]["StageFile"]["properties"]["kind"]["enum"]) == KINDS
    assert sorted(schema["x-ftc-configByKind"]) == sorted(KINDS)


# ---- every property the schema names is one stage.py reads -------------


class Tracked(dict):
    """A JSON object of schema definition `name` that records which of
    its properties the parser asks for (present or not)."""

    read: set = set()

    def __init__(self, name, items):
        super().__init__(items)
        self.name = name

    def _mark(self, key):
        Tracked.read.add(f"{self.name}.{key}")

    def __getitem__(self, key):
        self._mark(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._mark(key)
        return super().get(key, default)

    def __contains__(self, key):
        self._mark(key)
        return super().__contains__(key)


def track(root: dict, s: dict, x, name: str = ""):
    """x with every object of a schema definition wrapped in Tracked."""
    if "$ref" in s:
        return track(root, resolve(root, s["$ref"]), x, s["$ref"].rsplit("/", 1)[-1])
    if "oneOf" in s:
        for alt in s["oneOf"]:
            if not validate(root, alt, x):
                return track(root, alt, x, name)
    if isinstance(x, dict) and "properties" in s:
        return Tracked(name, {k: track(root, s["properties"].get(k, {}), v) for k, v in x.items()})
    if isinstance(x, dict) and isinstance(s.get("additionalProperties"), dict):
        return {k: track(root, s["additionalProperties"], v) for k, v in x.items()}
    if isinstance(x, list) and "items" in s:
        return [track(root, s["items"], el) for el in x]
    return x


def reachable(root: dict) -> set[str]:
    """Every "Def.property" of the definitions the stage file reaches."""
    out, seen = set(), set()

    def walk(s):
        if "$ref" in s:
            name = s["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                return
            seen.add(name)
            d = resolve(root, s["$ref"])
            out.update(f"{name}.{p}" for p in d.get("properties", {}))
            walk(d)
        for sub in list(s.get("properties", {}).values()) + s.get("oneOf", []):
            walk(sub)
        for k in ("items", "additionalProperties"):
            if isinstance(s.get(k), dict):
                walk(s[k])

    walk(root)
    return out


def unread(schema: dict, root: Path) -> list[str]:
    """The properties of the schema no stage file's parse asks for."""
    Tracked.read = set()
    for path in stage_files():
        doc = json.loads(path.read_text())
        kind_ref = schema["x-ftc-configByKind"][doc["kind"]]
        wrapped = track(schema, schema, doc)
        # The root's oneOf picks the config by shape; the kind decides.
        wrapped["config"] = track(schema, {"$ref": kind_ref}, doc["config"])
        parse_config(StageFile.parse(wrapped, root))
    return sorted(reachable(schema) - Tracked.read - set(IGNORED))


def test_stage_py_reads_every_property(schema, tmp_path):
    props = reachable(schema)
    assert not set(IGNORED) - props, f"IGNORED names properties the schema does not have: {sorted(set(IGNORED) - props)}"
    missed = unread(schema, tmp_path)
    assert not missed, (f"stage.py never reads {missed}: read them (ftc/stage.py), or list them in IGNORED "
                        "with the reason; if no stage file under examples/testdata/stages has the object, "
                        "add a variant to examples/stageschema_test.go")


def test_a_property_python_never_reads_is_caught(schema, tmp_path):
    """As if Go added TrainingConfig.labelSmoothing and Distributed.zeroStage."""
    s = json.loads(json.dumps(schema))
    s["$defs"]["TrainingConfig"]["properties"]["labelSmoothing"] = {"type": "number"}
    s["$defs"]["Distributed"]["properties"]["zeroStage"] = {"type": "integer"}
    assert unread(s, tmp_path) == ["Distributed.zeroStage", "TrainingConfig.labelSmoothing"]


def test_parse_rejects_a_stage_file_the_schema_rejects(tmp_path):
    """The schema is stricter than stage.py in shape; where stage.py checks
    values (kinds), both refuse."""
    doc = sft_golden()
    doc["kind"] = "ipo"
    with pytest.raises(StageError):
        StageFile.parse(doc, tmp_path)
