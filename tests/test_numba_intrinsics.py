"""The dynamic job claiming every numba kernel uses (``numba_intrinsics.claim``)."""

from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from contrast_sr.ops.numba_intrinsics import claim  # noqa: E402


@numba.njit(parallel=True)
def _claim_all(jobs, hits, order, counter):
    """The kernels' loop: each job records how often it ran and the claim order it got."""
    seen = np.zeros(1, dtype=np.int64)
    for _ in numba.prange(jobs):
        job = claim(counter)
        while job < jobs:
            hits[job] += 1
            order[job] = claim(seen)
            job = claim(counter)


@pytest.mark.parametrize("jobs", [1, 2, 7, 100, 4096])
@pytest.mark.parametrize("threads", [1, 2])
def test_every_job_is_claimed_exactly_once(jobs, threads):
    hits = np.zeros(jobs, dtype=np.int64)
    order = np.full(jobs, -1, dtype=np.int64)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        counter = np.zeros(1, dtype=np.int64)
        _claim_all(jobs, hits, order, counter)
    finally:
        numba.set_num_threads(before)
    assert (hits == 1).all()
    assert sorted(order) == list(range(jobs))  # the claims hand out 0 .. jobs-1 once each
    # every prange iteration ends on a failed claim: one per iteration beyond the jobs
    assert counter[0] == 2 * jobs


def test_claim_returns_the_old_value_and_adds_one():
    @numba.njit
    def twice(counter):
        return claim(counter), claim(counter)

    counter = np.array([5], dtype=np.int64)
    assert twice(counter) == (5, 6)
    assert counter[0] == 7


def test_claim_rejects_other_counters():
    @numba.njit
    def bad(counter):
        return claim(counter)

    with pytest.raises(numba.core.errors.TypingError):
        bad(np.zeros(1, dtype=np.int32))
