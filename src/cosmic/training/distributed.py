"""Several GPUs or machines: PyTorch DistributedDataParallel under ``torchrun``.

``torchrun --nproc-per-node 4 -m cosmic.cli train stage1 ...`` (or ``torchrun ... $(which cosmic)``)
starts one process per GPU; each reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from the
environment (:func:`init`), takes ``batch_size / world`` samples of every global batch
(:func:`shard_positions`), runs its forward and backward through a :class:`DDP`-wrapped model
(gradients all-reduced: averaged over ranks), and only rank 0 validates, logs and writes
checkpoints. Backends: NCCL on CUDA, gloo on the CPU (what the tests use).

The paper trains on one GPU; several are our addition. With the split decoder (half of each batch
through Ẽ's z0, half through ẑ0, :meth:`cosmic.models.cosmic.Cosmic.forward`) each rank takes a
slice of *both* halves of the global batch, so the mean of the ranks' losses is the loss of the
whole batch and a run on W processes follows the same gradients as one process with the same
global batch (tests/training/test_distributed.py), except for the random noise of the forward pass
(quantisation noise, the z0 sample), which each rank draws from its own seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from cosmic.errors import InputError

__all__ = ["DistInfo", "init", "shard_positions", "StepSampler", "wrap", "mean_terms", "any_rank", "barrier",
           "rank_seed", "finish"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """True on the process that validates, logs and writes checkpoints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init(device_spec: str = "auto") -> DistInfo:
    """This process's place in a torchrun job (a one-process DistInfo outside torchrun) and its
    device: ``cuda:LOCAL_RANK`` when the device asked for is CUDA (``auto`` on a GPU machine)."""
    from cosmic.utils.device import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_spec)
    if world <= 1:
        return DistInfo(device=device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


def launch(train, cfg, resume: bool, progress: bool):
    """``train(cfg, info, resume, progress)`` inside this process's group (torchrun's, or one
    process), the precision checked against the device first and the group closed afterwards."""
    from cosmic.utils.device import check_precision

    info = init(cfg.device)
    check_precision(cfg.precision, info.device)
    try:
        return train(cfg, info, resume, progress)
    finally:
        finish(info)


def check_batch(batch: int, info: DistInfo) -> int:
    """The per-rank batch; InputError unless every rank gets an even share (the split decoder
    halves each rank's batch)."""
    if info.world == 1:
        return batch
    if batch % (2 * info.world):
        raise InputError(f"--batch-size {batch}: with {info.world} processes it must be a multiple of "
                         f"{2 * info.world} (each process takes an even share)")
    return batch // info.world


def shard_positions(batch: int, rank: int, world: int) -> list[int]:
    """Positions in the global batch (0..batch-1) that ``rank`` takes, in its local order: its
    slice of the first half, then its slice of the second half (see the module docstring)."""
    if world == 1:
        return list(range(batch))
    half, share = batch // 2, batch // (2 * world)
    first = list(range(rank * share, (rank + 1) * share))
    return first + [half + p for p in first]


class StepSampler(Sampler):
    """Dataset indices from ``first_step`` on: sample p of global step s is index s·batch + p, and
    this rank yields the positions :func:`shard_positions` gives it. Resuming at step s (with any
    number of processes) continues the data order of an uninterrupted run."""

    def __init__(self, first_step: int, batch: int, rank: int = 0, world: int = 1, total: int = 10**12):
        self.first_step, self.batch, self.total = first_step, batch, total
        self.positions = shard_positions(batch, rank, world)

    def __iter__(self):
        step = self.first_step
        while (step + 1) * self.batch <= self.total:
            base = step * self.batch
            yield from (base + p for p in self.positions)
            step += 1

    def __len__(self) -> int:
        return max(self.total // self.batch - self.first_step, 0) * len(self.positions)


def wrap(model: torch.nn.Module, info: DistInfo, ignore_suffix: str | None = ".quantiles") -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel (``model`` itself in a one-process run).

    Parameters named ``*ignore_suffix`` (the entropy bottleneck's quantiles: they get no gradient
    from the main loss, only from the auxiliary loss, which every rank computes identically from
    identical weights) are left out of the gradient all-reduce. Buffers are synchronised at the
    start only, not on every forward: they are the entropy coder's CDF tables, rebuilt by
    ``update()`` on rank 0 before each save."""
    if not info.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    if ignore_suffix:
        names = [n for n, _ in model.named_parameters() if n.endswith(ignore_suffix)]
        DDP._set_params_and_buffers_to_ignore_for_model(model, names)
    import inspect

    ids = [info.device.index] if info.device.type == "cuda" else None
    # no buffer sync on each forward (torch >= 2.14 names it forward_sync_buffers; older: broadcast_buffers)
    params = inspect.signature(DDP).parameters
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    return DDP(model, device_ids=ids, **no_sync)


def mean_terms(terms: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Loss terms averaged over ranks (for logging: the global batch's values)."""
    if not info.active:
        return terms
    keys = sorted(terms)
    t = torch.tensor([terms[k] for k in keys], dtype=torch.float64, device=_comm_device(info))
    dist.all_reduce(t)
    return {k: float(v) / info.world for k, v in zip(keys, t.tolist())}


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is true on any (a wall-time stop must be taken together)."""
    if not info.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=_comm_device(info))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


def rank_seed(seed: int, info: DistInfo, step: int = 0) -> int:
    """The torch seed of this rank: ``seed`` itself in a one-process run (so existing runs are
    unchanged), a distinct one per (rank, step) otherwise."""
    if not info.active:
        return seed
    return (seed * 1_000_003 + info.rank * 7919 + step) % (2**63)


def finish(info: DistInfo) -> None:
    """Leave the process group (end of a distributed run)."""
    if info.active and dist.is_initialized():
        dist.destroy_process_group()


def _comm_device(info: DistInfo) -> torch.device:
    return info.device if dist.get_backend() == "nccl" else torch.device("cpu")
