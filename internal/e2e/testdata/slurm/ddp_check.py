"""A small DDP training loop that checks gradients are synchronised.

Started by torchrun (one process per rank, gloo on CPU). Each rank trains
the same model on different data; after every backward pass the DDP
gradient must equal the average of the ranks' local gradients (computed
without DDP on a copy of the model), and the local gradients must differ
between ranks (or the check would prove nothing). After the last step
the parameters must be identical on every rank. Prints one line per rank
that the tests read.
"""
import copy
import os
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()

torch.manual_seed(0)
model = torch.nn.Linear(8, 4)
ddp = torch.nn.parallel.DistributedDataParallel(model)
opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
data = torch.Generator().manual_seed(1000 + rank)

grads_synced, data_differs = True, True
for step in range(3):
    x, y = torch.randn(16, 8, generator=data), torch.randn(16, 4, generator=data)
    local = copy.deepcopy(model)
    F.mse_loss(local(x), y).backward()
    opt.zero_grad()
    F.mse_loss(ddp(x), y).backward()
    for p, lp in zip(model.parameters(), local.parameters()):
        mean = lp.grad.clone()
        dist.all_reduce(mean)
        mean /= world
        grads_synced &= torch.allclose(p.grad, mean, atol=1e-6)
        mine = [torch.zeros_like(lp.grad) for _ in range(world)]
        dist.all_gather(mine, lp.grad)
        data_differs &= not all(torch.equal(mine[0], g) for g in mine[1:])
    opt.step()

flat = torch.cat([p.detach().flatten() for p in model.parameters()])
every = [torch.zeros_like(flat) for _ in range(world)]
dist.all_gather(every, flat)
params_in_sync = all(torch.equal(every[0], f) for f in every)
total = torch.tensor([rank + 1.0])
dist.all_reduce(total)

print(
    f"rank={rank} world={world} node={os.environ.get('FTC_NODE_RANK')} "
    f"gpus={os.environ.get('CUDA_VISIBLE_DEVICES')} allreduce={total.item()} "
    f"grads_synced={grads_synced} data_differs={data_differs} params_in_sync={params_in_sync}",
    flush=True,
)
dist.destroy_process_group()
sys.exit(0 if grads_synced and data_differs and params_in_sync else 1)
