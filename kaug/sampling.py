"""Random draws on the device from an explicit torch.Generator; no image math.

Every function draws for a whole batch in one call, so a batch costs a handful of
kernel launches however many images it holds, and nothing waits on the host.
"""

import math

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


def box_tries(shape, scale, ratio, generator, tries=10):
    """torchvision's candidate boxes (RandomResizedCrop's, RandomErasing's): `tries` per
    image of a (B, C, H, W) batch, the area a share uniform in `scale` of the image's,
    the aspect ratio log-uniform in `ratio`.

    Returns:
        ((B, tries) round(sqrt(area * ratio)), (B, tries) round(sqrt(area / ratio))),
        as floats.
    """
    batch, _, height, width = shape
    area = height * width * uniform((batch, tries), generator, *scale)
    aspect = torch.exp(uniform((batch, tries), generator, *(math.log(r) for r in ratio)))
    return torch.round(torch.sqrt(area * aspect)), torch.round(torch.sqrt(area / aspect))


def first_fit(fits):
    """For (B, tries) bool `fits`: (B,) whether any try fits, and (B, 1) the index of
    the first that does (0 where none does)."""
    return fits.any(1), fits.float().argmax(1, keepdim=True)


def bernoulli(shape, generator, p=0.5):
    """Boolean draws, True with probability `p`."""
    return uniform(shape, generator) < p


def gamma(shape, concentration, generator, rounds=8):
    """Gamma(concentration, 1) draws from `generator` (Marsaglia and Tsang's method,
    vectorised: `rounds` candidates per draw, the first accepted one kept; all of
    them fail with probability under 0.05 ** rounds)."""
    boost = concentration < 1  # Gamma(a) = Gamma(a + 1) * U ** (1 / a)
    a = concentration + 1 if boost else concentration
    d = a - 1 / 3
    c = 1 / math.sqrt(9 * d)
    device = generator.device
    z = torch.randn((rounds, *shape), generator=generator, device=device, dtype=torch.float64)
    u = uniform((rounds, *shape), generator, dtype=torch.float64)
    v = (1 + c * z) ** 3
    log_v = torch.log(v.clamp(min=1e-300))
    accepted = (v > 0) & (torch.log(u) < 0.5 * z**2 + d - d * v + d * log_v)
    first = accepted.float().argmax(0, keepdim=True)
    draws = (d * v).gather(0, first)[0]
    if boost:
        draws = draws * uniform(shape, generator, dtype=torch.float64) ** (1 / concentration)
    return draws


def beta(shape, alpha, generator):
    """Beta(alpha, alpha) draws in float64 (MixUp's and CutMix's mixing shares)."""
    x, y = gamma(shape, alpha, generator), gamma(shape, alpha, generator)
    total = x + y
    return torch.where(total > 0, x / total.clamp(min=1e-300), 0.5)


def dirichlet(shape, k, alpha, generator):
    """Dirichlet(alpha, ..., alpha) draws of `k` shares each, (*shape, k), in float64
    (AugMix's chain weights); a draw whose gammas all underflow is uniform."""
    draws = gamma((*shape, k), alpha, generator)
    total = draws.sum(-1, keepdim=True)
    return torch.where(total > 0, draws / total.clamp(min=1e-300), 1.0 / k)
