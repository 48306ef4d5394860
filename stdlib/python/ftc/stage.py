"""The stage file (stage.json) and the stage config inside it, as dataclasses.

The runtime writes stage.json into the stage's run directory
(runtime/exec/stagefile.go); paths in it are relative to that directory.
The `config` object is the plan's stage config: compiler/plan/common.go
(StageConfig) for training kinds, compiler/plan/prepare.go (PrepareConfig)
for prepare. Parsing is strict about what the Go side always writes and
lenient (defaults) about the speed switches it does not write yet.

stage.schema.json beside this file is the JSON Schema of stage.json,
generated from those Go types (internal/stageschema); the tests check the
examples' stage files against it and that this module reads every
property it names (tests/test_stage_schema.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAGE_FILE_VERSION = "ftc.dev/stage/v1alpha1"
KINDS = ("prepare", "sft", "reward", "ppo", "grpo", "rloo", "export", "dpo", "orpo", "simpo", "kto", "reference", "eval")


class StageError(ValueError):
    """A stage file or config that cannot be run, with the field named."""


def _req(obj: dict, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise StageError(f"stage.json: {where}.{key} is missing")
    return obj[key]


def _num(obj: dict, key: str, where: str, default: Any = None) -> Any:
    v = obj.get(key, default) if isinstance(obj, dict) else default
    if v is None:
        if default is None:
            raise StageError(f"stage.json: {where}.{key} is missing")
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise StageError(f"stage.json: {where}.{key} must be a number, got {v!r}")
    return v


@dataclass(frozen=True)
class Input:
    """One input: a local path (relative to the run directory) or a Hub reference."""

    kind: str
    path: str | None = None
    repo: str | None = None
    revision: str | None = None


@dataclass(frozen=True)
class World:
    processes: int
    strategy: str


@dataclass(frozen=True)
class ModelConfig:
    repo: str
    revision: str
    dtype: str = "bf16"
    attention: str = "sdpa"
    family: str = ""
    # input names the role holding trained weights; "" for Hub weights.
    input: str = ""
    kind: str = ""
    adapter: str = ""
    chat_template: str = ""
    chat_template_sha256: str = ""

    @classmethod
    def parse(cls, d: dict, where: str) -> "ModelConfig":
        return cls(
            repo=_req(d, "repo", where),
            revision=d.get("revision") or "main",
            dtype=d.get("dtype") or "bf16",
            attention=d.get("attention") or "sdpa",
            family=d.get("family") or "",
            input=d.get("input") or "",
            kind=d.get("kind") or "",
            adapter=d.get("adapter") or "",
            chat_template=d.get("chatTemplate") or "",
            chat_template_sha256=d.get("chatTemplateSHA256") or "",
        )


@dataclass(frozen=True)
class QuantConfig:
    type: str = "nf4"
    double_quant: bool = True
    compute: str = "bf16"
    storage: str = "uint8"


@dataclass(frozen=True)
class AdapterConfig:
    type: str = "lora"
    r: int = 16
    alpha: float = 32
    dropout: float = 0.05
    # "all-linear" or a list of module names.
    targets: Any = "all-linear"
    quant: QuantConfig = field(default_factory=QuantConfig)

    @classmethod
    def parse(cls, d: dict) -> "AdapterConfig":
        q = d.get("quant") or {}
        targets = d.get("targets", "all-linear")
        if not (targets == "all-linear" or (isinstance(targets, list) and targets)):
            raise StageError(f"stage.json: config.adapter.targets must be \"all-linear\" or a list, got {targets!r}")
        t = d.get("type", "lora")
        if t not in ("none", "lora", "qlora"):
            raise StageError(f"stage.json: config.adapter.type {t!r} is not none, lora or qlora")
        return cls(
            type=t,
            r=int(d.get("r", 16)),
            alpha=float(d.get("alpha", 32)),
            dropout=float(d.get("dropout", 0.05)),
            targets=targets,
            quant=QuantConfig(
                type=q.get("type", "nf4"),
                double_quant=bool(q.get("doubleQuant", True)),
                compute=q.get("compute", "bf16"),
                storage=q.get("storage", "uint8"),
            ),
        )


@dataclass(frozen=True)
class TrainingConfig:
    learning_rate: float
    schedule: str
    warmup_ratio: float
    weight_decay: float
    optimizer: str
    max_grad_norm: float
    micro_batch: int
    grad_accum: int
    global_batch: int
    seed: int
    epochs: float = 0.0
    steps: int = 0

    @classmethod
    def parse(cls, d: dict) -> "TrainingConfig":
        w = "config.training"
        t = cls(
            learning_rate=float(_num(d, "learningRate", w)),
            schedule=d.get("schedule", "cosine"),
            warmup_ratio=float(_num(d, "warmupRatio", w, 0.0)),
            weight_decay=float(_num(d, "weightDecay", w, 0.0)),
            optimizer=d.get("optimizer", "adamw"),
            max_grad_norm=float(_num(d, "maxGradNorm", w, 1.0)),
            micro_batch=int(_num(d, "microBatch", w)),
            grad_accum=int(_num(d, "gradAccum", w, 1)),
            global_batch=int(_num(d, "globalBatch", w, 0)),
            seed=int(_num(d, "seed", w, 42)),
            epochs=float(d.get("epochs") or 0.0),
            steps=int(d.get("steps") or 0),
        )
        if t.epochs and t.steps:
            raise StageError("stage.json: config.training has both epochs and steps")
        return t


@dataclass(frozen=True)
class MixInput:
    """One training source of a mix: its input role and weight."""

    input: str
    weight: float


@dataclass(frozen=True)
class DataConfig:
    max_length: int
    over_length: str = "drop"
    packing: bool = False
    has_eval: bool = False
    # mix lists the training sources when there are several (inputs
    # train.0, train.1, ...); empty for the one input "train".
    mix: tuple = ()


def _mix(data: dict) -> tuple:
    out = []
    for i, m in enumerate(data.get("mix") or []):
        w = _num(m, "weight", f"config.data.mix[{i}]")
        if not w > 0:
            raise StageError(f"stage.json: config.data.mix[{i}].weight {w} is not more than 0")
        out.append(MixInput(input=_req(m, "input", f"config.data.mix[{i}]"), weight=float(w)))
    return tuple(out)


@dataclass(frozen=True)
class Distributed:
    # "cuda": the plan trains on GPUs; "cpu": on CPUs (ftc run --cpu).
    device: str = "cuda"
    strategy: str = "single"
    processes: int = 1
    nodes: int = 1
    gpus_per_node: int = 1
    offload_optimizer: bool = False
    offload_params: bool = False
    nccl_timeout_minutes: int = 30


def _device(dist: dict) -> str:
    d = dist.get("device") or "cuda"
    if d not in ("cuda", "cpu"):
        raise StageError(f"stage.json: config.distributed.device {d!r} is not cpu (or absent, for GPUs)")
    return d


@dataclass(frozen=True)
class Cadence:
    log_every: int = 10
    save_every: int = 500
    eval_every: int = 0
    keep_checkpoints: int = 2


@dataclass(frozen=True)
class PPOConfig:
    total_episodes: int = 0
    epochs: int = 4
    mini_batches: int = 1
    response_length: int = 53
    kl_coef: float = 0.05
    clip_range: float = 0.2
    value_clip_range: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    whiten_rewards: bool = False
    missing_eos_penalty: float | None = None
    temperature: float = 0.7

    @classmethod
    def parse(cls, d: dict) -> "PPOConfig":
        return cls(
            total_episodes=int(d.get("totalEpisodes") or 0),
            epochs=int(d.get("epochs", 4)),
            mini_batches=int(d.get("miniBatches", 1)),
            response_length=int(d.get("responseLength", 53)),
            kl_coef=float(d.get("klCoef", 0.05)),
            clip_range=float(d.get("clipRange", 0.2)),
            value_clip_range=float(d.get("valueClipRange", 0.2)),
            vf_coef=float(d.get("vfCoef", 0.1)),
            gamma=float(d.get("gamma", 1.0)),
            lam=float(d.get("lam", 0.95)),
            whiten_rewards=bool(d.get("whitenRewards", False)),
            missing_eos_penalty=d.get("missingEOSPenalty"),
            temperature=float(d.get("temperature", 0.7)),
        )


@dataclass(frozen=True)
class Generation:
    engine: str = "transformers"
    gpus: int = 1
    port: int = 8000
    group_port: int = 51216
    memory_utilization: float = 0.9


@dataclass(frozen=True)
class GRPOConfig:
    generations: int = 8
    max_prompt_length: int = 0
    max_completion_length: int = 256
    beta: float = 0.04
    temperature: float = 0.9
    generation: Generation = field(default_factory=Generation)

    @classmethod
    def parse(cls, d: dict) -> "GRPOConfig":
        g = d.get("generation") or {}
        return cls(
            generations=int(d.get("generations", 8)),
            max_prompt_length=int(d.get("maxPromptLength") or 0),
            max_completion_length=int(d.get("maxCompletionLength", 256)),
            beta=float(d.get("beta", 0.04)),
            temperature=float(d.get("temperature", 0.9)),
            generation=Generation(
                engine=g.get("engine", "transformers"),
                gpus=int(g.get("gpus", 1)),
                port=int(g.get("port", 8000)),
                group_port=int(g.get("groupPort", 51216)),
                memory_utilization=float(g.get("memoryUtilization", 0.9)),
            ),
        )


@dataclass(frozen=True)
class DPOConfig:
    """compiler/config.DPO: trl's DPO knobs, which the plan writes into the
    trainer arguments; read here for the record and the checks."""

    beta: float
    loss: str
    label_smoothing: float

    @classmethod
    def parse(cls, d: dict) -> "DPOConfig":
        beta = float(_num(d, "beta", "config.dpo"))
        if beta <= 0:
            raise StageError(f"stage.json: config.dpo.beta {beta} must be above 0")
        return cls(beta=beta, loss=_req(d, "loss", "config.dpo"), label_smoothing=float(d.get("labelSmoothing") or 0.0))


@dataclass(frozen=True)
class RLOOConfig:
    """compiler/config.RLOO: trl 1.x's RLOO knobs, GRPO's sampling knobs
    without a vLLM server; the plan writes them into the trainer
    arguments."""

    generations: int = 2
    max_prompt_length: int = 0
    max_completion_length: int = 256
    beta: float = 0.05
    temperature: float = 1.0

    @classmethod
    def parse(cls, d: dict) -> "RLOOConfig":
        c = cls(
            generations=int(_num(d, "generations", "config.rloo")),
            max_prompt_length=int(d.get("maxPromptLength") or 0),
            max_completion_length=int(_num(d, "maxCompletionLength", "config.rloo")),
            beta=float(d.get("beta") or 0.0),
            temperature=float(_num(d, "temperature", "config.rloo")),
        )
        if c.generations < 2:
            raise StageError(f"stage.json: config.rloo.generations {c.generations} must be at least 2 "
                             "(the leave-one-out baseline needs another completion)")
        return c


@dataclass(frozen=True)
class ORPOConfig:
    """compiler/config.ORPO: trl's ORPO knobs (beta, the odds-ratio weight),
    which the plan writes into the trainer arguments."""

    beta: float

    @classmethod
    def parse(cls, d: dict) -> "ORPOConfig":
        beta = float(_num(d, "beta", "config.orpo"))
        if beta <= 0:
            raise StageError(f"stage.json: config.orpo.beta {beta} must be above 0")
        return cls(beta=beta)


@dataclass(frozen=True)
class KTOConfig:
    """compiler/config.KTO: trl's KTO knobs, which the plan writes into the
    trainer arguments, and whether preference pairs become KTO's rows."""

    beta: float
    desirable_weight: float
    undesirable_weight: float
    unpair_preferences: bool
    loss: str = "kto"  # trl's loss_type (the plan's trainer_args.json carries it)

    @classmethod
    def parse(cls, d: dict) -> "KTOConfig":
        out = {}
        for name, key in (("beta", "beta"), ("desirable_weight", "desirableWeight"),
                          ("undesirable_weight", "undesirableWeight")):
            v = float(_num(d, key, "config.kto"))
            if v <= 0:
                raise StageError(f"stage.json: config.kto.{key} {v} must be above 0")
            out[name] = v
        loss = d.get("loss", "kto")
        if loss not in KTO_LOSSES:
            raise StageError(f"stage.json: config.kto.loss {loss!r} is not one of {', '.join(KTO_LOSSES)}")
        return cls(unpair_preferences=bool(d.get("unpairPreferences")), loss=loss, **out)


# schema/stage.cue #KTO.kto.loss: what both profiles' KTOTrainer take.
KTO_LOSSES = ("kto", "apo_zero_unpaired")


@dataclass(frozen=True)
class SimPOConfig:
    """compiler/config.SimPO: the knobs of trl's CPOTrainer with its SimPO
    loss, which the plan writes into the trainer arguments."""

    beta: float
    gamma: float

    @classmethod
    def parse(cls, d: dict) -> "SimPOConfig":
        beta = float(_num(d, "beta", "config.simpo"))
        gamma = float(d.get("gamma") or 0.0)
        if beta <= 0:
            raise StageError(f"stage.json: config.simpo.beta {beta} must be above 0")
        if gamma < 0:
            raise StageError(f"stage.json: config.simpo.gamma {gamma} must be at least 0")
        return cls(beta=beta, gamma=gamma)


@dataclass(frozen=True)
class ReferenceStageConfig:
    """compiler/plan/reference.go (ReferenceConfig): the model in input role
    "model" and the input roles of the prepared pairs whose reference
    log-probabilities the stage writes."""

    model: ModelConfig
    data: tuple[str, ...]
    max_length: int
    tokens_per_forward: int
    device: str

    @classmethod
    def parse(cls, d: dict) -> "ReferenceStageConfig":
        roles = d.get("data") or []
        if not roles or not all(isinstance(r, str) and r for r in roles):
            raise StageError(f"stage.json: config.data must list the prepared inputs' roles, got {roles!r}")
        return cls(model=ModelConfig.parse(_req(d, "model", "config"), "config.model"), data=tuple(roles),
                   max_length=int(_num(d, "maxLength", "config")),
                   tokens_per_forward=int(_num(d, "tokensPerForward", "config")),
                   device=_device(d))


@dataclass(frozen=True)
class EvalStageConfig:
    """compiler/plan/eval.go (EvalConfig): the model in input role "model",
    the prepared rows in "data", and for mode "generate" the generation
    settings and the scorers (input roles scorers.N)."""

    model: ModelConfig
    mode: str
    max_length: int
    max_new_tokens: int
    temperature: float
    seed: int
    scorers: tuple["RewardConfig", ...]
    device: str

    @classmethod
    def parse(cls, d: dict) -> "EvalStageConfig":
        mode = _req(d, "mode", "config")
        if mode not in ("loss", "generate"):
            raise StageError(f"stage.json: config.mode {mode!r} is not loss or generate")
        scorers = []
        for i, sc in enumerate(d.get("scorers") or []):
            if _req(sc, "kind", f"config.scorers[{i}]") != "function":
                raise StageError(f"stage.json: config.scorers[{i}].kind must be function")
            scorers.append(RewardConfig(kind="function", weight=float(sc.get("weight", 1.0)), role=f"scorers.{i}",
                                        file=sc.get("file", ""), name=_req(sc, "name", f"config.scorers[{i}]"),
                                        sha256=sc.get("sha256", "")))
        if mode == "generate" and not scorers:
            raise StageError("stage.json: an eval stage in mode generate needs scorers")
        return cls(model=ModelConfig.parse(_req(d, "model", "config"), "config.model"), mode=mode,
                   max_length=int(_num(d, "maxLength", "config")),
                   max_new_tokens=int(d.get("maxNewTokens") or 0), temperature=float(d.get("temperature") or 0.0),
                   seed=int(d.get("seed") or 0), scorers=tuple(scorers), device=_device(d))


@dataclass(frozen=True)
class RewardConfig:
    """One GRPO reward; its input role is rewards.<index>."""

    kind: str
    weight: float
    role: str
    model: ModelConfig | None = None
    file: str = ""
    name: str = ""
    sha256: str = ""


# Speed switches: the plan writes a speed block for SFT stages
# (compiler/config.Speed); other methods read the defaults.
SPEED_FIELDS = (
    "speed.paddingFree",
    "speed.chunkedLoss",
    "speed.lossChunkTokens",
    "speed.compile",
    "speed.attention",
)


@dataclass(frozen=True)
class SpeedConfig:
    # Flatten each micro batch into one row with per-document position ids
    # (no padding), with per-document attention.
    padding_free: bool = True
    # Cross-entropy in chunks over the LM head, never materialising
    # full-vocabulary logits.
    chunked_loss: bool = True
    loss_chunk_tokens: int = 4096
    # torch.compile the decoder layers' MLPs and norms.
    compile: bool = False
    # Kernel for packed per-document attention: "auto", "varlen", "loop",
    # "mask" (dense block-diagonal mask).
    attention: str = "auto"

    @classmethod
    def parse(cls, d: dict | None) -> "SpeedConfig":
        d = d or {}
        att = d.get("attention", "auto")
        if att not in ("auto", "varlen", "loop", "mask"):
            raise StageError(f"stage.json: config.speed.attention {att!r} is not auto, varlen, loop or mask")
        n = int(d.get("lossChunkTokens", 4096))
        if n < 128:
            raise StageError("stage.json: config.speed.lossChunkTokens must be >= 128")
        return cls(
            padding_free=bool(d.get("paddingFree", True)),
            chunked_loss=bool(d.get("chunkedLoss", True)),
            loss_chunk_tokens=n,
            compile=bool(d.get("compile", False)),
            attention=att,
        )


@dataclass(frozen=True)
class TrainConfig:
    """The stage config of a training kind (sft, reward, ppo, grpo, rloo,
    dpo, orpo, simpo)."""

    method: str
    models: dict[str, ModelConfig]
    adapter: AdapterConfig
    gradient_checkpointing: str
    training: TrainingConfig
    data: DataConfig
    distributed: Distributed
    cadence: Cadence
    speed: SpeedConfig
    backend: str = "trl"
    completion_only: bool = True
    center_rewards: float | None = None
    ppo: PPOConfig | None = None
    grpo: GRPOConfig | None = None
    rloo: RLOOConfig | None = None
    rewards: tuple[RewardConfig, ...] = ()
    dpo: DPOConfig | None = None
    orpo: ORPOConfig | None = None
    simpo: SimPOConfig | None = None
    kto: KTOConfig | None = None
    # The passthrough settings (config.trainer, config.peft): library
    # keywords the entrypoints apply last (compat.passthrough).
    trainer: dict = field(default_factory=dict)
    peft: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, d: dict) -> "TrainConfig":
        method = _req(d, "method", "config")
        models = {role: ModelConfig.parse(m, f"config.models.{role}") for role, m in (_req(d, "models", "config") or {}).items()}
        data = _req(d, "data", "config")
        dist = d.get("distributed") or {}
        off = dist.get("offload") or {}
        cad = d.get("cadence") or {}
        # The plan resolves "auto" from its memory estimate: a stage says
        # on or off, which the trainer arguments follow (compiler/plan).
        gc = d.get("gradientCheckpointing")
        if gc not in ("on", "off"):
            raise StageError(f"stage.json: config.gradientCheckpointing {gc!r} is not on or off (the plan resolves auto)")
        rewards = []
        for i, rw in enumerate(d.get("rewards") or []):
            role = f"rewards.{i}"
            kind = _req(rw, "kind", f"config.rewards[{i}]")
            if kind == "model":
                rewards.append(RewardConfig(kind=kind, weight=float(rw.get("weight", 1.0)), role=role,
                                            model=ModelConfig.parse(_req(rw, "model", f"config.rewards[{i}]"), f"config.rewards[{i}].model")))
            elif kind == "function":
                rewards.append(RewardConfig(kind=kind, weight=float(rw.get("weight", 1.0)), role=role,
                                            file=rw.get("file", ""), name=_req(rw, "name", f"config.rewards[{i}]"),
                                            sha256=rw.get("sha256", "")))
            else:
                raise StageError(f"stage.json: config.rewards[{i}].kind {kind!r} is not model or function")
        co = d.get("completionOnly")
        return cls(
            method=method,
            models=models,
            adapter=AdapterConfig.parse(d.get("adapter") or {}),
            gradient_checkpointing=gc,
            training=TrainingConfig.parse(_req(d, "training", "config")),
            data=DataConfig(
                max_length=int(_num(data, "maxLength", "config.data")),
                over_length=data.get("overLength", "drop"),
                packing=bool(data.get("packing", False)),
                has_eval=bool(data.get("hasEval", False)),
                mix=_mix(data),
            ),
            distributed=Distributed(
                device=_device(dist),
                strategy=dist.get("strategy", "single"),
                processes=int(dist.get("processes", 1)),
                nodes=int(dist.get("nodes", 1) or 1),
                gpus_per_node=int(dist.get("gpusPerNode", 1) or 1),
                offload_optimizer=bool(off.get("optimizer", False)),
                offload_params=bool(off.get("params", False)),
                nccl_timeout_minutes=int(dist.get("ncclTimeoutMinutes", 30) or 30),
            ),
            cadence=Cadence(
                log_every=int(cad.get("logEvery", 10)),
                save_every=int(cad.get("saveEvery", 500)),
                eval_every=int(cad.get("evalEvery") or 0),
                keep_checkpoints=int(cad.get("keepCheckpoints", 2)),
            ),
            speed=SpeedConfig.parse(d.get("speed")),
            backend=d.get("backend") or "trl",
            completion_only=True if co is None else bool(co),
            center_rewards=d.get("centerRewards"),
            ppo=PPOConfig.parse(d["ppo"]) if d.get("ppo") else None,
            grpo=GRPOConfig.parse(d["grpo"]) if d.get("grpo") else None,
            rloo=RLOOConfig.parse(d["rloo"]) if d.get("rloo") else None,
            rewards=tuple(rewards),
            dpo=DPOConfig.parse(d["dpo"]) if d.get("dpo") else None,
            orpo=ORPOConfig.parse(d["orpo"]) if d.get("orpo") else None,
            simpo=SimPOConfig.parse(d["simpo"]) if d.get("simpo") else None,
            kto=KTOConfig.parse(d["kto"]) if d.get("kto") else None,
            trainer=_passthrough(d, "trainer"),
            peft=_passthrough(d, "peft"),
        )

    def model(self, role: str) -> ModelConfig:
        if role not in self.models:
            raise StageError(f"stage.json: config.models has no {role!r} model (have {sorted(self.models)})")
        return self.models[role]

    def gradient_checkpointing_on(self) -> bool:
        return self.gradient_checkpointing == "on"
        if self.gradient_checkpointing == "off":
            return False
        if self.speed.gradient_checkpointing is not None:
            return self.speed.gradient_checkpointing
        return True


@dataclass(frozen=True)
class DatasetConfig:
    format: str
    source_kind: str
    source_ref: str
    prompt: str = "implicit"
    columns: dict[str, str] = field(default_factory=dict)
    encoding: str = ""
    config: str = ""
    split: str = "train"


@dataclass(frozen=True)
class PrepareConfig:
    consumer: str
    dataset: DatasetConfig
    tokenizer_repo: str
    tokenizer_revision: str
    max_length: int
    over_length: str = "drop"
    packing: bool = False
    backend: str = ""
    completion_only: bool = False
    max_prompt_length: int = 0
    eval_fraction: float = 0.0
    seed: int | None = None
    chat_template: str = ""
    chat_template_sha256: str = ""

    @classmethod
    def parse(cls, d: dict) -> "PrepareConfig":
        ds = _req(d, "dataset", "config")
        src = _req(ds, "source", "config.dataset")
        tok = _req(d, "tokenizer", "config")
        fmt = _req(ds, "format", "config.dataset")
        if fmt not in ("messages", "alpaca", "sharegpt", "prompt-completion", "text", "preference", "prompt",
                       "unpaired-preference"):
            raise StageError(f"stage.json: config.dataset.format {fmt!r} is unknown")
        ol = d.get("overLength", "drop")
        if ol not in ("drop", "truncate"):
            raise StageError(f"stage.json: config.overLength {ol!r} is not drop or truncate")
        consumer = _req(d, "consumer", "config")
        if consumer not in ("sft", "reward", "ppo", "grpo", "dpo", "kto"):
            raise StageError(f"stage.json: config.consumer {consumer!r} is unknown")
        return cls(
            consumer=consumer,
            dataset=DatasetConfig(
                format=fmt,
                source_kind=_req(src, "kind", "config.dataset.source"),
                source_ref=src.get("ref", ""),
                prompt=ds.get("prompt") or "implicit",
                columns=dict(ds.get("columns") or {}),
                encoding=ds.get("encoding") or "",
                config=ds.get("config") or "",
                split=ds.get("split") or "train",
            ),
            tokenizer_repo=_req(tok, "repo", "config.tokenizer"),
            tokenizer_revision=tok.get("revision") or "main",
            max_length=int(_num(d, "maxLength", "config")),
            over_length=ol,
            packing=bool(d.get("packing", False)),
            backend=d.get("backend") or "",
            completion_only=bool(d.get("completionOnly", False)),
            max_prompt_length=int(d.get("maxPromptLength") or 0),
            eval_fraction=float(d.get("evalFraction") or 0.0),
            seed=d.get("seed"),
            chat_template=tok.get("chatTemplate") or "",
            chat_template_sha256=tok.get("chatTemplateSHA256") or "",
        )


@dataclass(frozen=True)
class ExportConfig:
    """compiler/plan/export.go (ExportConfig): the trained model (input
    role "model", on the base in role "base") and the form to write."""

    form: str
    dtype: str
    model: ModelConfig

    @classmethod
    def parse(cls, d: dict) -> "ExportConfig":
        form = _req(d, "form", "config")
        if form not in ("adapter", "merged", "full"):
            raise StageError(f"stage.json: config.form {form!r} is not adapter, merged or full")
        dtype = d.get("dtype") or "bf16"
        if dtype not in ("bf16", "fp16", "fp32"):
            raise StageError(f"stage.json: config.dtype {dtype!r} is not bf16, fp16 or fp32 (ftc never merges into "
                             "4-bit weights)")
        return cls(form=form, dtype=dtype, model=ModelConfig.parse(_req(d, "model", "config"), "config.model"))


@dataclass
class StageFile:
    name: str
    kind: str
    key: str
    config: dict
    inputs: dict[str, Input]
    root: Path
    output: Path
    checkpoints: Path
    metrics: Path
    world: World
    resume_from: Path | None = None
    api_version: str = STAGE_FILE_VERSION
    # grace_seconds bounds the save after SIGTERM (ftc/preempt.py); None:
    # the default.
    grace_seconds: int | None = None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "StageFile":
        p = Path(path).resolve()
        try:
            raw = json.loads(p.read_text())
        except FileNotFoundError:
            raise StageError(f"stage file {p} does not exist") from None
        except json.JSONDecodeError as e:
            raise StageError(f"stage file {p}: {e}") from None
        return cls.parse(raw, p.parent)

    @classmethod
    def parse(cls, raw: dict, root: Path) -> "StageFile":
        v = raw.get("apiVersion")
        if v != STAGE_FILE_VERSION:
            raise StageError(f"stage.json: apiVersion {v!r}, this entrypoint reads {STAGE_FILE_VERSION}")
        kind = _req(raw, "kind", "stage")
        if kind not in KINDS:
            raise StageError(f"stage.json: kind {kind!r} is not one of {', '.join(KINDS)}")
        root = Path(root)

        def rel(key: str, default: str | None = None) -> Path:
            v = raw.get(key) or default
            if not v:
                raise StageError(f"stage.json: {key} is missing")
            return (root / v).resolve()

        inputs = {}
        for role, inp in (raw.get("inputs") or {}).items():
            inputs[role] = Input(kind=inp.get("kind", ""), path=inp.get("path") or None,
                                 repo=inp.get("repo") or None, revision=inp.get("revision") or None)
        w = raw.get("world") or {}
        checkpoints = rel("checkpoints", "checkpoints")
        resume = rel("resumeFrom") if raw.get("resumeFrom") else None
        # A job the scheduler requeues (Slurm) reruns this file as it was
        # submitted, while its earlier attempt may have saved newer
        # checkpoints since: continue from the newest complete one.
        from . import checkpoint

        latest = checkpoint.newest(checkpoints)
        if latest is not None:
            given = checkpoint.read_manifest(resume) if resume is not None else None
            if given is None or latest[0].step > given.step:
                resume = latest[1].resolve()
        return cls(
            api_version=v,
            name=_req(raw, "name", "stage"),
            kind=kind,
            key=raw.get("key", ""),
            config=_req(raw, "config", "stage"),
            inputs=inputs,
            root=root,
            output=rel("output", "output"),
            checkpoints=checkpoints,
            metrics=rel("metrics", "metrics.jsonl"),
            world=World(processes=int(w.get("processes", 1)), strategy=w.get("strategy", "single")),
            resume_from=resume,
            grace_seconds=int(raw["graceSeconds"]) if raw.get("graceSeconds") else None,
        )

    def input(self, role: str) -> Input:
        if role not in self.inputs:
            raise StageError(f"stage.json: no input with role {role!r} (have {sorted(self.inputs)})")
        return self.inputs[role]

    def input_path(self, role: str) -> Path:
        """The local path of an input; an error for Hub references."""
        inp = self.input(role)
        if not inp.path:
            raise StageError(f"stage.json: input {role!r} is a Hub reference ({inp.repo}@{inp.revision}), not a local path")
        return (self.root / inp.path).resolve()

    def has_input(self, role: str) -> bool:
        return role in self.inputs

    def train_config(self) -> TrainConfig:
        if self.kind in ("prepare", "export", "reference", "eval"):
            raise StageError(f"stage.json: a {self.kind} stage has no training config")
        cfg = TrainConfig.parse(self.config)
        if cfg.method != self.kind:
            raise StageError(f"stage.json: kind {self.kind!r} but config.method {cfg.method!r}")
        return cfg

    def prepare_config(self) -> PrepareConfig:
        if self.kind != "prepare":
            raise StageError(f"stage.json: kind {self.kind!r} is not prepare")
        return PrepareConfig.parse(self.config)

    def eval_config(self) -> EvalStageConfig:
        if self.kind != "eval":
            raise StageError(f"stage.json: kind {self.kind!r} is not eval")
        return EvalStageConfig.parse(self.config)

    def reference_config(self) -> ReferenceStageConfig:
        if self.kind != "reference":
            raise StageError(f"stage.json: kind {self.kind!r} is not reference")
        return ReferenceStageConfig.parse(self.config)

    def export_config(self) -> ExportConfig:
        if self.kind != "export":
            raise StageError(f"stage.json: kind {self.kind!r} is not export")
        return ExportConfig.parse(self.config)


def _passthrough(d: dict, name: str) -> dict:
    v = d.get(name) or {}
    if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
        raise StageError(f"stage.json: config.{name} must be an object of library keywords, got {v!r}")
    return dict(v)
