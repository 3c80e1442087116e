"""Random draws on the device from an explicit torch.Generator; no image math.

Every function draws for a whole batch in one call, so a batch costs a handful of
kernel launches however many images it holds, and nothing waits on the host.
"""

import torch


def make_generator(device, seed=None):
    """A torch.Generator on `device`.

    Without a seed it is seeded from torch's global RNG, so
    `torch.manual_seed` / `keras.utils.set_random_seed` make runs repeatable.
    Seeds are taken modulo 2**64 (torch's seed width).
    """
    if seed is None:
        seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) % 2**64)
    return generator


def rank_seed(seed, rank):
    """The seed of one rank's augmentation draws: distinct per rank, None stays None."""
    return None if seed is None else seed + rank * 1_000_003


def uniform(shape, generator, low=0.0, high=1.0, dtype=torch.float32):
    """Uniform draws in [low, high); `low`/`high` may be tensors broadcasting to `shape`."""
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=dtype)
    return low + (high - low) * u


def bernoulli(shape, generator, p=0.5):
    """Boolean draws, True with probability `p`."""
    return uniform(shape, generator) < p
