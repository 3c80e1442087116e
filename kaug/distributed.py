"""torch.distributed support: which rank this is, shared seeds, summed statistics.

Everything here is a no-op in a single process. Under torchrun (or any
initialised process group), loaders serve each rank a disjoint shard of every
epoch and `fit` sums its statistics over all ranks.
"""

import torch

from kaug._checks import invalid


def process_group(rank=None, world_size=None):
    """(rank, world_size): given, or from the initialised process group, or (0, 1)."""
    if rank is None and world_size is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1
    if rank is None or world_size is None:
        raise invalid("rank", rank, "and world_size must be given together")
    if not (
        isinstance(world_size, int)
        and world_size >= 1
        and isinstance(rank, int)
        and 0 <= rank < world_size
    ):
        raise invalid("rank", rank, f"must be an int in [0, world_size={world_size})")
    return rank, world_size


def shared_seed(seed, world_size, shuffle=True):
    """A seed every rank agrees on: `seed`, or rank 0's random draw, broadcast.

    The broadcast makes creating an unseeded, shuffled loader a collective call
    in a distributed run: every rank must create it. Unshuffled orders need no
    agreement.
    """
    if world_size == 1 or seed is not None or not shuffle:
        return seed
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise invalid("seed", seed, "must be given when rank and world_size are set by hand")
    drawn = torch.randint(0, 2**62, (1,), dtype=torch.int64)
    if torch.distributed.get_backend() == "nccl":
        drawn = drawn.cuda()
    torch.distributed.broadcast(drawn, src=0)
    return int(drawn.item())


def shard(order, rank, world_size, pad=True):
    """This rank's part of an epoch's order.

    With `pad`, the order is first padded to a multiple of world_size by repeating
    its start (like DistributedSampler), so every rank gets as many batches;
    without, the shards are an exact partition (for statistics, which must not
    count an image twice).
    """
    if world_size == 1:
        return order
    padding = (-len(order)) % world_size
    if pad and padding:
        order = torch.cat([order, order[:padding]])
    return order[rank::world_size]


def all_reduce_sum(*tensors):
    """Sum each tensor over all ranks, in place (nothing without a process group)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    for tensor in tensors:
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
