"""The speed switches: chunked cross-entropy, per-document attention for
padding-free rows, torch.compile. Each is off-able from the stage config
(stage.SpeedConfig), so it can be measured on and off.

torch is imported inside the functions; the module imports without it.
"""

from __future__ import annotations

import inspect
import logging

from . import compat

log = logging.getLogger("ftc")

IGNORE = -100


# ---- chunked cross-entropy over the LM head -----------------------------


def _chunked_ce_function():
    import torch

    class ChunkedLinearCE(torch.autograd.Function):
        """sum of next-token cross-entropy over h @ w.T, in chunks of rows.

        Forward computes each chunk's logits (bf16 matmul, fp32 softmax, as
        transformers' loss does), its loss, and right away its gradient
        with respect to h (and w when w trains), so the full [tokens x
        vocab] logits never exist: peak extra memory is one chunk's logits.
        Backward only scales the stored gradients by the incoming scalar.
        """

        @staticmethod
        def forward(ctx, h, w, labels, chunk):
            n = h.shape[0]
            need_w = w.requires_grad
            loss = torch.zeros((), dtype=torch.float32, device=h.device)
            grad_h = torch.empty_like(h)
            grad_w = torch.zeros(w.shape, dtype=torch.float32, device=w.device) if need_w else None
            with torch.autocast(device_type=h.device.type, enabled=False):
                for s in range(0, n, chunk):
                    hc, lc = h[s:s + chunk], labels[s:s + chunk]
                    logits = (hc @ w.t()).float()
                    lse = torch.logsumexp(logits, dim=-1)
                    loss += (lse - logits.gather(1, lc[:, None]).squeeze(1)).sum()
                    # d(sum CE)/d(logits) = softmax - onehot, made in place.
                    logits.sub_(lse[:, None]).exp_()
                    logits[torch.arange(lc.shape[0], device=lc.device), lc] -= 1.0
                    g = logits.to(h.dtype)
                    del logits
                    grad_h[s:s + chunk] = g @ w
                    if need_w:
                        grad_w += (g.t() @ hc).float()
            ctx.save_for_backward(grad_h, grad_w if need_w else torch.empty(0, device=h.device))
            ctx.need_w = need_w
            ctx.w_dtype = w.dtype
            return loss

        @staticmethod
        def backward(ctx, grad_out):
            grad_h, grad_w = ctx.saved_tensors
            gh = grad_h * grad_out.to(grad_h.dtype)
            gw = (grad_w * grad_out).to(ctx.w_dtype) if ctx.need_w else None
            return gh, gw, None, None

    return ChunkedLinearCE


_CE = None


def chunked_cross_entropy(hidden, weight, labels, chunk: int = 4096):
    """(sum of CE over valid next-token targets, number of targets).

    hidden [B, T, H] predicts labels [B, T] shifted by one, as causal LM
    losses do; IGNORE targets are skipped before any matmul.
    """
    import torch

    global _CE
    if _CE is None:
        _CE = _chunked_ce_function()
    h = hidden[:, :-1, :]
    tgt = labels[:, 1:].to(h.device)
    valid = tgt != IGNORE
    n = valid.sum()
    if int(n) == 0:
        # Keep every trainable parameter in the graph so DDP's gradient
        # reduction still sees them.
        zero = hidden.float().sum() * 0.0
        if weight.requires_grad:
            zero = zero + weight.float().sum() * 0.0
        return zero, n
    return _CE.apply(h[valid].contiguous(), weight, tgt[valid], int(chunk)), n


def patch_chunked_loss(model, chunk: int) -> None:
    """Makes the causal LM's forward compute its loss with
    chunked_cross_entropy when labels are given (no logits returned).

    The patch sits on the inner causal LM, so calls still go through
    DDP/PEFT wrappers (gradient hooks, adapters). The loss is the sum over
    targets divided by `ftc_loss_denominator` (the token count of the whole
    accumulated batch), or by the local count when none is given.
    """
    from transformers.modeling_outputs import CausalLMOutputWithPast

    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = target.get_output_embeddings()
    if not hasattr(head, "weight"):
        raise compat.Unsupported("chunked loss needs a plain linear LM head")
    if hasattr(head, "base_layer"):
        raise compat.Unsupported("chunked loss reads lm_head's weight directly; an adapter on lm_head would be "
                                 "skipped. Leave lm_head out of the LoRA targets or set speed.chunkedLoss false")
    backbone = getattr(target, target.base_model_prefix, None) or target.get_decoder()
    original = target.forward

    def forward(input_ids=None, attention_mask=None, position_ids=None, labels=None, ftc_loss_denominator=None,
                **kw):
        if labels is None:
            return original(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kw)
        kw = {k: v for k, v in kw.items() if v is not None and k not in ("use_cache", "return_dict",
                                                                            "num_items_in_batch")}
        out = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                       use_cache=False, **kw)
        hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
        loss_sum, n = chunked_cross_entropy(hidden, head.weight, labels, chunk)
        denom = ftc_loss_denominator if ftc_loss_denominator is not None else n.clamp(min=1)
        return CausalLMOutputWithPast(loss=loss_sum / denom, logits=None)

    target.forward = forward
    target._ftc_chunked_loss = True


# ---- per-document attention for padding-free rows ----------------------


def block_causal_mask(position_ids, dtype, window=None):
    """A 4D additive mask [B, 1, T, T]: causal within each document (a
    document starts where its position id is 0), closed across them; with
    a sliding window, a token sees itself and the window - 1 before it (as
    transformers' sliding-window masks)."""
    import torch

    doc = (position_ids == 0).long().cumsum(-1)
    T = position_ids.shape[-1]
    same = doc[:, :, None] == doc[:, None, :]
    causal = torch.ones(T, T, dtype=torch.bool, device=position_ids.device).tril()
    if window:
        causal = causal & ~torch.ones(T, T, dtype=torch.bool, device=position_ids.device).tril(-window)
    allowed = (same & causal)[:, None]
    mask = torch.zeros(allowed.shape, dtype=dtype, device=position_ids.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)


def packed_mask_window(config):
    """The sliding window ftc's block-causal mask must carry itself where
    it hands the model a 4D mask (compat.packed_attention_mode "mask",
    transformers 4.x before the attention interface): those releases use a
    given 4D mask as it is, so a model whose every layer slides (Mistral
    and Phi-3, measured on 4.48.2 by libtests/test_family_training.py;
    Qwen2 with use_sliding_window, whose 4.48 SDPA mask slides on every
    layer) would otherwise see past its window in packed rows. Gemma 2's
    decoder layers window the mask they are given themselves, on their
    local layers only: none for it (Gemma 3 always has the interface)."""
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "model_type", "") in ("gemma2", "gemma3_text", "gemma3"):
        return None
    if getattr(config, "model_type", "") == "qwen2" and not getattr(config, "use_sliding_window", False):
        return None
    return int(window)


def _cu_seqlens(position_ids):
    import torch

    flat = position_ids.reshape(-1)
    starts = (flat == 0).nonzero().flatten()
    if starts.numel() == 0 or int(starts[0]) != 0:
        starts = torch.cat([starts.new_zeros(1), starts])
    cu = torch.cat([starts, starts.new_tensor([flat.numel()])]).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


def _loop_attention(q, k, v, cu, scale, window=None, softcap=None):
    """q [T, H, D], k/v [T, Hkv, D]: SDPA per document (flash kernel, causal).

    window: the layer's sliding window (a token sees itself and the
    window - 1 tokens before it, as transformers' masks and flash-attn's
    window_size); softcap: tanh capping of the scores (Gemma 2), which
    SDPA cannot do, so those documents take the eager computation
    transformers' own eager attention does (softmax in fp32)."""
    import torch
    import torch.nn.functional as F

    H, Hkv = q.shape[1], k.shape[1]
    outs = []
    bounds = cu.tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        qi, ki, vi = (x[s:e].transpose(0, 1)[None] for x in (q, k, v))
        if Hkv != H:
            ki = ki.repeat_interleave(H // Hkv, dim=1)
            vi = vi.repeat_interleave(H // Hkv, dim=1)
        n = e - s
        if softcap is None and (not window or n <= window):
            out = F.scaled_dot_product_attention(qi, ki, vi, is_causal=True, scale=scale)
        else:
            allowed = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
            if window and n > window:
                allowed &= ~torch.ones(n, n, dtype=torch.bool, device=q.device).tril(-window)
            if softcap is None:
                out = F.scaled_dot_product_attention(qi, ki, vi, attn_mask=allowed, scale=scale)
            else:
                w = torch.matmul(qi, ki.transpose(-1, -2)) * scale
                w = torch.tanh(w / softcap) * softcap
                w = w.masked_fill(~allowed, float("-inf"))
                out = torch.matmul(torch.softmax(w, dim=-1, dtype=torch.float32).to(qi.dtype), vi)
        outs.append(out[0].transpose(0, 1))
    return torch.cat(outs, dim=0)


def _varlen_kernel():
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    params = inspect.signature(varlen_attn).parameters
    if "is_causal" in params:
        causal = {"is_causal": True}
    elif "window_size" in params:
        causal = {"window_size": (-1, 0)}
    else:
        return None
    gqa = "enable_gqa" in params
    has_scale = "scale" in params

    def run(q, k, v, cu, max_len, scale):
        H, Hkv = q.shape[1], k.shape[1]
        kw = dict(causal)
        if has_scale:
            kw["scale"] = scale
        if Hkv != H:
            if gqa:
                kw["enable_gqa"] = True
            else:
                k = k.repeat_interleave(H // Hkv, dim=1)
                v = v.repeat_interleave(H // Hkv, dim=1)
        out = varlen_attn(q, k, v, cu, cu, max_len, max_len, **kw)
        return out[0] if isinstance(out, tuple) else out

    return run


class PackedAttention:
    """The attention function ftc registers with transformers for
    padding-free rows. Mode "varlen" uses torch's varlen flash kernel (one
    launch for all documents), "loop" one SDPA call per document; "auto"
    tries varlen once against loop on a small input and keeps it only if
    it agrees."""

    def __init__(self, mode: str = "auto"):
        self.mode = mode
        self.kernel = None
        self.checked = mode == "loop"
        self._pos = None
        self._cu = None

    def _choose(self, device, dtype):
        import torch

        self.checked = True
        kernel = _varlen_kernel()
        if kernel is None:
            if self.mode == "varlen":
                raise compat.Unsupported("speed.attention \"varlen\": this torch has no torch.nn.attention.varlen")
            log.info("ftc: packed attention: per-document SDPA (no varlen kernel in this torch)")
            return
        g = torch.Generator(device="cpu").manual_seed(0)
        q = torch.randn(24, 4, 64, generator=g).to(device, dtype)
        k = torch.randn(24, 2, 64, generator=g).to(device, dtype)
        v = torch.randn(24, 2, 64, generator=g).to(device, dtype)
        cu = torch.tensor([0, 5, 17, 24], dtype=torch.int32, device=device)
        try:
            got = kernel(q, k, v, cu, 12, 64 ** -0.5)
            want = _loop_attention(q, k, v, cu, 64 ** -0.5)
            ok = torch.allclose(got.float(), want.float(), atol=2e-2, rtol=2e-2)
        except Exception as e:  # an unsupported dtype, device or layout
            if self.mode == "varlen":
                raise
            log.info("ftc: packed attention: varlen kernel unusable here (%s); per-document SDPA", e)
            return
        if not ok:
            if self.mode == "varlen":
                raise compat.Unsupported("torch varlen attention disagrees with per-document SDPA")
            log.info("ftc: packed attention: varlen kernel disagrees with SDPA; per-document SDPA")
            return
        self.kernel = kernel
        log.info("ftc: packed attention: torch varlen kernel")

    def __call__(self, module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        pos = kwargs.get("position_ids")
        if attention_mask is not None or pos is None:
            from transformers.integrations.sdpa_attention import sdpa_attention_forward

            return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                          dropout=dropout, **kwargs)
        if not self.checked:
            self._choose(query.device, query.dtype)
        B, H, T, D = query.shape
        scale = scaling if scaling is not None else D ** -0.5
        q = query.transpose(1, 2).reshape(B * T, H, D)
        k = key.transpose(1, 2).reshape(B * T, key.shape[1], D)
        v = value.transpose(1, 2).reshape(B * T, value.shape[1], D)
        # Every layer of one forward (and a checkpointed layer's recompute)
        # gets the same position_ids tensor: work out the document bounds
        # once, since reading max_len back syncs the GPU with the host.
        # Holding the tensor keeps its id from being reused.
        if self._pos is not pos or self._cu is None or self._cu[2] != B:
            self._cu = (*_cu_seqlens(pos.expand(B, -1) if pos.shape[0] != B else pos), B)
            self._pos = pos
        cu, max_len, _ = self._cu
        # A sliding-window layer (Gemma 2/3's local layers, Mistral-style
        # windows) and Gemma 2's score softcapping: the model's own
        # attention does both, so the packed documents must too.
        window, softcap = kwargs.get("sliding_window"), kwargs.get("softcap")
        if window is not None and window >= max_len:
            window = None
        if self.kernel is not None and window is None and softcap is None:
            out = self.kernel(q, k, v, cu, max_len, scale)
        else:
            out = _loop_attention(q, k, v, cu, scale, window, softcap)
        return out.reshape(B, T, H, D), None


ATTENTION_NAME = "ftc_packed"
_registered: PackedAttention | None = None


def register_packed_attention(mode: str = "auto") -> str:
    """Registers ftc's packed attention with transformers; returns the
    attn_implementation name to load models with."""
    global _registered
    iface = compat.attention_interface()
    if iface is None:
        raise compat.Unsupported("transformers has no AttentionInterface (4.50+)")
    if _registered is None:
        _registered = PackedAttention(mode)
        iface.register(ATTENTION_NAME, _registered)
    return ATTENTION_NAME


# ---- torch.compile -------------------------------------------------------


# The attention module's projections, by the names the supported families
# give them: compiled one by one (with their LoRA adapters, if any).
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


def compile_blocks(model) -> int:
    """Compiles each decoder layer's MLP, norms and attention projections in
    place (module.compile keeps parameter names, so adapters and
    checkpoints are unaffected). The attention kernel between the
    projections is left eager: its per-document bounds are data-dependent.
    Compiling a LoRA-wrapped projection fuses the adapter's dropout,
    scaling and sum around the two matmuls."""
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    n = 0
    for layer in target.modules():
        if type(layer).__name__.endswith("DecoderLayer"):
            subs = [getattr(layer, name, None) for name in ("mlp", "input_layernorm", "post_attention_layernorm")]
            attn = getattr(layer, "self_attn", None)
            subs += [getattr(attn, name, None) for name in PROJECTIONS] if attn is not None else []
            for sub in subs:
                if sub is not None and hasattr(sub, "compile"):
                    sub.compile(dynamic=True)
                    n += 1
    return n


def uncast_lora_inputs(model) -> int:
    """Stops peft casting each LoRA layer's input to the adapter's dtype.

    peft keeps adapter weights in fp32 and casts the layer's input to fp32
    before the adapter's dropout and matmuls; under autocast the matmul
    then casts it back to bf16. On a Qwen2.5-7B LoRA step that was two full
    copies of the activations per adapted layer and a dropout in fp32: 14%
    of the GPU time (bench/gpu/results/2026-11-30-h200.json). With the cast
    off, autocast casts the small adapter weights instead; the sums are
    the same bf16 matmuls. Call it only when the forward runs under
    autocast (mixed precision), where mixed dtypes are cast for the
    matmul. peft releases without the switch (before 0.15) keep casting.
    Returns the number of layers changed."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:
        return 0
    n = 0
    for m in model.modules():
        if isinstance(m, BaseTunerLayer) and hasattr(m, "_cast_input_dtype"):
            m.cast_input_dtype_enabled = False
            n += 1
    return n
