"""Device-side random draws: seeded, repeatable, in range."""

import torch

from kaug.sampling import bernoulli, make_generator, rank_seed, uniform


def test_seeded_generators_repeat_and_wide_seeds_work():
    a, b = make_generator(torch.device("cpu"), 7), make_generator(torch.device("cpu"), 7)
    assert torch.equal(uniform((5,), a), uniform((5,), b))
    big = make_generator(torch.device("cpu"), 2**63 - 1 + 5 * 1_000_003)  # a rank's offset
    assert uniform((3,), big).shape == (3,)


def test_unseeded_generators_follow_torch_global_seed():
    torch.manual_seed(3)
    first = uniform((4,), make_generator(torch.device("cpu")))
    torch.manual_seed(3)
    assert torch.equal(first, uniform((4,), make_generator(torch.device("cpu"))))


def test_draws_are_in_range_and_per_rank_seeds_differ():
    generator = make_generator(torch.device("cpu"), 0)
    u = uniform((10000,), generator, -2.0, 3.0)
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean().item() - 0.5) < 0.05
    assert abs(bernoulli((10000,), generator, 0.3).float().mean().item() - 0.3) < 0.02
    assert rank_seed(None, 1) is None and rank_seed(5, 0) == 5 and rank_seed(5, 1) != 5
