"""ftc's speed switches against the plain computation, on a real Qwen2 from
transformers: the chunked loss equals the model's own loss and gradients;
packed rows with per-document attention give each document the logits it
has alone; ftc's trainer with gradient accumulation learns what one plain
step over the whole global batch learns."""

import torch
import torch.nn.functional as F
from conftest import qwen2

from ftc import collate, compat, speed, trainer
from ftc.packing import IGNORE


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_chunked_loss_equals_the_models_own_loss_and_gradients():
    ref, got = qwen2(seed=1), qwen2(seed=1)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 300, (2, 37), generator=g)
    labels = ids.clone()
    labels[0, :10] = IGNORE  # a prompt
    labels[1, 30:] = IGNORE  # padding
    want = ref(input_ids=ids, labels=labels).loss
    want.backward()
    speed.patch_chunked_loss(got, chunk=8)  # 8 does not divide the 60 targets
    out = got(input_ids=ids, labels=labels)
    assert out.logits is None  # the full logits never exist
    out.loss.backward()
    assert torch.allclose(out.loss, want, rtol=1e-5), (out.loss.item(), want.item())
    gr, gg = grads(ref), grads(got)
    assert gr.keys() == gg.keys() and "lm_head.weight" in gg
    for n in gr:
        assert torch.allclose(gg[n], gr[n], rtol=1e-4, atol=1e-6), n


def test_chunked_loss_without_targets_keeps_parameters_in_the_graph():
    m = qwen2()
    speed.patch_chunked_loss(m, chunk=8)
    ids = torch.randint(0, 300, (1, 9))
    out = m(input_ids=ids, labels=torch.full_like(ids, IGNORE))
    out.loss.backward()
    assert out.loss.item() == 0.0 and m.lm_head.weight.grad is not None


def documents(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 300, (n,), generator=g) for n in lengths]


def packed(docs):
    ids = torch.cat(docs)[None]
    pos = torch.cat([torch.arange(len(d)) for d in docs])[None]
    return ids, pos


def assert_each_document_alone(logits, docs, ref):
    s = 0
    for d in docs:
        alone = ref(input_ids=d[None]).logits[0]
        assert torch.allclose(logits[s:s + len(d)], alone, atol=2e-5, rtol=1e-4), f"document at {s}"
        s += len(d)


# transformers 4.48 (pinned-2025q1) has no AttentionInterface: the sft
# entrypoint passes ftc's 4D block-causal mask to the model's sdpa there
# (compat.packed_attention_mode "mask"), so that is what is checked.
HAS_INTERFACE = compat.attention_interface() is not None


def test_ftc_packed_attention_keeps_documents_apart():
    docs = documents([7, 19, 1, 12, 30])
    ids, pos = packed(docs)
    with torch.no_grad():
        if HAS_INTERFACE:
            m = qwen2(seed=2, attention=speed.register_packed_attention("loop"))
            got = m(input_ids=ids, position_ids=pos).logits[0]
        else:
            assert compat.packed_attention_mode(compat.version("transformers"), "sdpa", False) == "mask"
            got = qwen2(seed=2)(input_ids=ids, position_ids=pos,
                                attention_mask=speed.block_causal_mask(pos, torch.float32)).logits[0]
        assert_each_document_alone(got, docs, qwen2(seed=2))
        # Without per-document attention the later documents would see the
        # earlier ones: the check above can fail.
        leaky = qwen2(seed=2, attention="eager")(input_ids=ids, position_ids=pos,
                                                 attention_mask=torch.ones_like(ids)).logits[0]
        assert not torch.allclose(leaky[7:26], got[7:26], atol=1e-3)


def test_native_packed_detection_backs_the_compat_decision():
    """compat.packed_attention_mode says "native" for sdpa on transformers 5
    (packed rows detected from position_ids): true on this transformers,
    but only without a KV cache, which is why the sft entrypoint turns the
    cache off for padding-free rows."""
    docs = documents([11, 5, 23], seed=3)
    ids, pos = packed(docs)
    if compat.version("transformers") < (5,):
        # transformers 4.x does not detect packed rows: without ftc's mask
        # the documents see each other, hence compat's "mask" there.
        assert compat.packed_attention_mode(compat.version("transformers"), "sdpa", False, "mask") == "mask"
        with torch.no_grad():
            leaky = qwen2(seed=4)(input_ids=ids, position_ids=pos, use_cache=False).logits[0]
            alone = qwen2(seed=4)(input_ids=docs[1][None]).logits[0]
        assert not torch.allclose(leaky[11:16], alone, atol=1e-3)
        return
    assert compat.packed_attention_mode(compat.version("transformers"), "sdpa", False, "mask") == "native"
    with torch.no_grad():
        got = qwen2(seed=4)(input_ids=ids, position_ids=pos, use_cache=False).logits[0]
        assert_each_document_alone(got, docs, qwen2(seed=4))
        cached = qwen2(seed=4)(input_ids=ids, position_ids=pos, use_cache=True).logits[0]
        assert not torch.allclose(cached[11:], got[11:], atol=1e-3)


def test_block_causal_mask_matches_per_document_attention():
    docs = documents([4, 9, 6], seed=5)
    _, pos = packed(docs)
    mask = speed.block_causal_mask(pos, torch.float32)
    q = torch.randn(1, 4, pos.shape[1], 16)
    k, v = torch.randn(1, 2, pos.shape[1], 16), torch.randn(1, 2, pos.shape[1], 16)
    want = F.scaled_dot_product_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), attn_mask=mask)
    cu = torch.tensor([0, 4, 13, 19], dtype=torch.int32)
    got = speed._loop_attention(q[0].transpose(0, 1), k[0].transpose(0, 1), v[0].transpose(0, 1), cu, 16 ** -0.5)
    assert torch.allclose(got.transpose(0, 1)[None], want, atol=1e-5)


def rows(lengths, prompt, seed=0):
    out = []
    for i, d in enumerate(documents(lengths, seed)):
        ids = d.tolist()
        labels = [IGNORE] * prompt + ids[prompt:]
        out.append({"input_ids": ids, "labels": labels})
    return out


def one_plain_step(model, data, lr):
    """One SGD step on the per-token mean over every target of data."""
    total, n = 0.0, 0
    for r in data:
        out = model(input_ids=torch.tensor([r["input_ids"]]))
        logits, tgt = out.logits[0, :-1], torch.tensor(r["labels"][1:])
        total = total + F.cross_entropy(logits, tgt, ignore_index=IGNORE, reduction="sum")
        n += int((tgt != IGNORE).sum())
    (total / n).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return model


def ftc_step(tmp_path, data, lr, *, flatten, chunked, attention, mask_dtype=None):
    from transformers import Trainer, TrainingArguments

    m = qwen2(seed=6, attention=attention)
    if chunked:
        speed.patch_chunked_loss(m, chunk=5)
    cls = trainer.sft_trainer_class(Trainer, chunked=chunked, packed_mask_dtype=mask_dtype)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, gradient_accumulation_steps=2,
                             max_steps=1, learning_rate=lr, lr_scheduler_type="constant", optim="sgd",
                             weight_decay=0.0, max_grad_norm=0.0, use_cpu=True, report_to="none",
                             save_strategy="no", remove_unused_columns=False, disable_tqdm=True, seed=0,
                             average_tokens_across_devices=False)
    col = collate.FlattenCollator(0) if flatten else collate.PadCollator(0)
    m.train()
    t = cls(model=m, args=args, train_dataset=data, data_collator=col)
    t.train()
    return m


def test_ftc_trainer_learns_the_plain_mean_over_the_global_batch(tmp_path):
    """4 rows of unequal length and target count, micro batch 2 x
    accumulation 2: one ftc step moves every weight as one plain step on
    the per-token mean over all 4 rows does, for both layouts."""
    data = rows([13, 40, 8, 25], prompt=3, seed=7)
    lr = 0.5
    want = one_plain_step(qwen2(seed=6).train(), data, lr)
    # Padding-free rows with ftc's attention, or with its mask where this
    # transformers has no attention interface (as the sft entrypoint does).
    if HAS_INTERFACE:
        packed_layout = (True, True, speed.register_packed_attention("loop"), None)
    else:
        packed_layout = (True, True, "sdpa", torch.float32)
    for flatten, chunked, attention, mask_dtype in (packed_layout, (False, False, "sdpa", None)):
        got = ftc_step(tmp_path, data, lr, flatten=flatten, chunked=chunked, attention=attention,
                       mask_dtype=mask_dtype)
        moved = 0.0
        for (n, p), (_, q) in zip(want.named_parameters(), got.named_parameters()):
            assert torch.allclose(q, p, atol=2e-6, rtol=1e-4), (flatten, n, (q - p).abs().max().item())
            moved = max(moved, (q - qwen2(seed=6).get_parameter(n)).abs().max().item())
        assert moved > 1e-3  # the step did move the weights


def test_this_transformers_tells_deepspeed_not_to_divide_again():
    """transformers 5 passes scale_wrt_gas=False itself, so ftc patches
    nothing on the current profile; transformers 4.46-4.48 (the pinned
    one) does not, and ftc's scale_loss_once_under_deepspeed patches it."""
    from transformers import Trainer

    if compat.version("transformers") < (4, 49):
        assert not compat.passes_scale_wrt_gas(Trainer)
        return
    assert compat.passes_scale_wrt_gas(Trainer)
    assert compat.passes_scale_wrt_gas(trainer.sft_trainer_class(Trainer, chunked=True))


def lora_bf16(seed=0):
    from peft import LoraConfig, get_peft_model

    m = qwen2(seed=seed).to(torch.bfloat16)
    torch.manual_seed(seed)
    m = get_peft_model(m, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM",
                                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                      "up_proj", "down_proj"]))
    for n, p in m.named_parameters():  # B starts at zero: give the adapter a say
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.05, generator=torch.Generator().manual_seed(len(n)))
    return m


def test_uncast_lora_inputs_trains_what_peft_trains_under_autocast():
    """Without peft's input cast, LoRA layers under autocast compute the
    same loss and adapter gradients (both run bf16 matmuls), and the
    adapter weights stay fp32."""
    ref, got = lora_bf16(), lora_bf16()
    n = speed.uncast_lora_inputs(got)
    if compat.version("peft") < (0, 15):
        assert n == 0  # this peft always casts; nothing to change
        return
    assert n == 7 * 2  # every adapted projection of both layers
    ids = torch.randint(0, 300, (2, 33), generator=torch.Generator().manual_seed(3))
    losses = []
    for m in (ref, got):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(input_ids=ids, labels=ids)
        out.loss.backward()
        losses.append(out.loss.float())
    assert torch.allclose(losses[0], losses[1], rtol=1e-2), losses
    gr, gg = grads(ref), grads(got)
    assert gr.keys() == gg.keys() and all("lora_" in k for k in gg)
    for k in gr:
        assert gg[k].dtype == torch.float32
        rel = (gg[k] - gr[k]).norm() / gr[k].norm().clamp(min=1e-12)
        assert rel < 0.05, (k, float(rel))
