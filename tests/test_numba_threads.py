"""The numbers of the fast path do not depend on numba's thread count.

The low-rank kernels run every trial on the calling thread (a thread pool
inside them collapsed under load, see docs/performance.md), so one and two
numba threads must give the same bits; this guards any future parallel
driver as well.
"""
from __future__ import annotations

import numpy as np
import pytest

import nmrnn_np as nm

pytestmark = pytest.mark.skipif(not nm.HAVE_NUMBA, reason="the numba fast path needs numba")


def _run(model, params, data, threads):
    import numba
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        inputs, targets, mask = data
        loss, grads = model.loss_and_grad(params, inputs, targets, mask, backend="numba")
        sim = model.simulate(params, inputs, backend="numba").as_dict()
        return loss, grads, sim
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize("batch", [1, 2, 5, 40])
@pytest.mark.parametrize("kind", ["nmrnn", "nmrnn_feedback_global", "lrrnn"])
def test_same_bits_with_one_and_two_threads(kind, batch):
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba was started with one thread")
    if kind == "lrrnn":
        model = nm.LowRankRNN(N=23, K=3, U=3, O=2)
    elif kind == "nmrnn":
        model = nm.NMRNN(N=23, K=3, M=5, U=3, O=2)
    else:
        model = nm.NMRNN(N=23, K=2, M=4, U=3, O=2, feedback=True, signal_dim=1)
    params = model.init_params(1)
    rng = np.random.default_rng(batch)
    T = 17
    inputs = rng.standard_normal((batch, T, 3)) * (rng.random((batch, T, 3)) < 0.5)
    targets = rng.standard_normal((batch, T, 2))
    mask = (rng.random((batch, T)) < 0.7).astype(float)
    one = _run(model, params, (inputs, targets, mask), 1)
    two = _run(model, params, (inputs, targets, mask), 2)
    assert one[0] == two[0]
    assert one[1].keys() == two[1].keys()
    for k in one[1]:
        assert np.array_equal(one[1][k], two[1][k]), k
    for k in one[2]:
        assert np.array_equal(one[2][k], two[2][k]), k
