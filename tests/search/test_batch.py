"""Batch selection: one particle and a run of rows are views, repeating one particle broadcasts it; each holds
exactly what the general gather holds."""

import pytest
import torch

from flowscale.search.context import Batch


def batch(n: int, guided: bool) -> Batch:
    g = torch.Generator().manual_seed(n)
    x, u, x0 = (torch.randn(n, 3, 4, 4, generator=g) for _ in range(3))
    guide = torch.randn(n, 3, 4, 4, generator=g) if guided else None
    return Batch(x, u, x0, torch.randn(n, generator=g, dtype=torch.float64), torch.arange(10, 10 + n),
                 torch.full((n,), 3), guide, 3)


def same(a: Batch, b: Batch) -> bool:
    pairs = [(a.x, b.x), (a.u, b.u), (a.x0, b.x0), (a.reward, b.reward), (a.ids, b.ids), (a.step, b.step)]
    pairs += [] if a.guide is None and b.guide is None else [(a.guide, b.guide)]
    return a.at == b.at and all(p.dtype == q.dtype and torch.equal(p, q) for p, q in pairs)


@pytest.mark.parametrize("guided", [False, True])
def test_one_particle_rows_and_repeats_equal_the_gather(guided):
    b = batch(5, guided)
    for j in (0, 3, -1):
        assert same(b.take(j), b.take([j % 5]))
        assert b.take(j).x.data_ptr() == b.x[j % 5].data_ptr()  # a view, not a copy
    assert same(b.rows(1, 4), b.take([1, 2, 3]))
    one = b.take(2)
    assert same(one.repeat(4), one.take([0, 0, 0, 0]))
    assert same(Batch.cat([one.repeat(3), b.take(0).repeat(2)]), b.take([2, 2, 2, 0, 0]))
    assert same(b.repeat(2), b.take([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]))
    for bad in (5, -6):
        with pytest.raises(IndexError):
            b.take(bad)
