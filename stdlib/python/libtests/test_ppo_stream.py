"""ftc.train_ppo.PromptStream: a PPO run resumed from a checkpoint draws
the prompt batches and random numbers the uninterrupted run drew after
it, as trl's PPO loop consumes them (`for batch in dataloader`, pass after
pass, with random draws between batches). In the libtests: it needs torch,
and runs on each profile's own."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ftc import train_ppo


def loader(own_generator):
    # 10 prompts, 4 a batch, the ragged rest dropped: 2 batches a pass.
    # A shuffling sampler draws each pass's order from torch's global
    # generator, or, given one, from a generator of its own (as accelerate
    # gives the sampler under several processes).
    g = torch.Generator().manual_seed(7) if own_generator else None
    return DataLoader(list(range(10)), batch_size=4, shuffle=True, drop_last=True, generator=g)


def updates(stream, n, save_after=None):
    """n updates as trl's loop makes them: a batch, then sampling (random
    draws from torch and numpy); the stream's position and generators
    after update save_after, as the checkpoint callback saves them."""
    def repeat():
        while True:
            yield from stream

    it, out, saved = repeat(), [], None
    for u in range(1, n + 1):
        batch = next(it).tolist()
        out.append((batch, torch.rand(2).tolist(), np.random.permutation(4).tolist()))
        if u == save_after:
            saved = (stream.position(), train_ppo.rng_state())
    return out, saved


@pytest.mark.parametrize("own_generator", [False, True], ids=["global", "own"])
@pytest.mark.parametrize("at", [3, 4, 5], ids=["mid-pass", "pass-end", "later-pass"])
def test_resumed_stream_continues_the_uninterrupted_one(own_generator, at):
    torch.manual_seed(42)
    np.random.seed(42)
    whole, saved = updates(train_ppo.PromptStream(loader(own_generator)), 9, save_after=at)

    # A fresh process: the same seeds, then whatever the trainer's setup
    # draws before the loop starts.
    torch.manual_seed(42)
    np.random.seed(42)
    torch.rand(5)
    np.random.rand(3)
    stream = train_ppo.PromptStream(loader(own_generator))
    pos, rng = saved
    stream.resume_at(pos, at, lambda: train_ppo.set_rng_state(rng))
    after, _ = updates(stream, 9 - at)
    assert after == whole[at:]


def test_without_a_saved_position_the_stream_skips_the_batches_drawn():
    torch.manual_seed(0)
    stream = train_ppo.PromptStream(loader(False))
    calls = []
    stream.resume_at(None, 3, lambda: calls.append(stream.drawn))
    out, _ = updates(stream, 3)
    # 3 batches dropped (a pass and a half), the generators reset once,
    # then the stream goes on: the rest of the second pass, then a third.
    assert calls == [1] and stream.passes == 2 and len(out) == 3
