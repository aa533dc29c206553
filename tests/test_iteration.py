"""The SFT / vision-language batch sequence across world sizes (infir/data/iteration.py), pure Python.

One process's sequence (each epoch shuffled from (seed, epoch), epochs concatenated, cut to whole optimizer
steps) is the reference: on W ranks every optimizer step must read exactly the same global batches, every rank
the same number of them, and a resume after s steps (also on another W) must continue with the next ones.
Before: each rank dropped its epochs' odd last batch (the DDP run stopped short of its planned steps), a resume
restarted each rank at s x the single-process accumulation, and an epoch of one batch could not feed 2 ranks.
"""

from __future__ import annotations

import random

import pytest

from infir.data.iteration import ShuffledEpochs


def reference(n: int, batch_size: int, epochs: int, seed: int, namespace: str) -> list[list[int]]:
    """One process's batches as the code before this change made them (written out independently here)."""
    batches = []
    for epoch in range(epochs):
        order = list(range(n))
        random.Random(f"{namespace}:{seed}:{epoch}").shuffle(order)
        batches += [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return batches


def plan(n: int, batch_size: int, epochs: int) -> ShuffledEpochs:
    return ShuffledEpochs(list(range(n)), list, seed=7, batch_size=batch_size, epochs=epochs, namespace="t")


# (items, micro batch, epochs, micro-batches per optimizer step): an odd number of batches per epoch, an epoch
# shorter than a step (debug=smoke of llama3_2_1b_sft: 1 batch per epoch, steps of 2), a step of 6 for W=3
CASES = [(45, 4, 2, 2), (3, 4, 4, 2), (3, 4, 7, 6), (50, 3, 3, 6), (10, 1, 1, 6)]


# the world size must divide the micro-batches of a step (train.py refuses it otherwise)
@pytest.mark.parametrize("n,batch_size,epochs,per_step,world",
                         [(*case, world) for case in CASES for world in (1, 2, 3) if case[3] % world == 0])
def test_ranks_split_one_process_sequence_into_the_same_whole_optimizer_steps(n, batch_size, epochs, per_step,
                                                                              world):
    single = reference(n, batch_size, epochs, seed=7, namespace="t")
    steps = len(single) // per_step
    one = plan(n, batch_size, epochs)
    assert [one.global_batch_items(g) for g in range(len(single))] == single  # one process: unchanged
    assert list(one) == single and len(one) == one.total_steps() == len(single)

    ranks = [one.for_rank(r, world, per_step) for r in range(world)]
    assert {r.optimizer_steps() for r in ranks} == {steps}  # planned max_steps, any W
    seen = [list(r) for r in ranks]
    assert {len(s) for s in seen} == {len(r) for r in ranks} == {steps * per_step // world}  # = executed
    local = per_step // world  # micro-batches per rank per step (Lightning's accumulate_grad_batches)
    for step in range(steps):
        batches = {g for r in range(world) for g in range(step * per_step + r, (step + 1) * per_step, world)}
        assert sorted(sum((seen[r][step * local : (step + 1) * local] for r in range(world)), []), key=str) == \
            sorted((single[g] for g in batches), key=str)
        assert batches == set(range(step * per_step, (step + 1) * per_step))
    for r in range(world):  # rank r's k-th batch is global batch k * W + r
        assert seen[r] == single[r : steps * per_step : world]

    # resume after s optimizer steps, saved on any world size: the same next batches on this one
    for done in range(steps + 1):
        for r in range(world):
            resumed = one.for_rank(r, world, per_step)
            resumed.resume_after(done)
            assert list(resumed) == seen[r][done * local :]
            assert len(resumed) == len(seen[r])  # Lightning's epoch length stays the whole run's


def test_one_batch_per_epoch_feeds_two_ranks_and_too_few_batches_fail_clearly():
    one = plan(3, 4, 4)  # 1 batch per epoch, 4 epochs, steps of 2 batches
    ranks = [one.for_rank(r, 2, 2) for r in (0, 1)]
    assert [list(r) for r in ranks] == [[one.global_batch_items(0), one.global_batch_items(2)],
                                        [one.global_batch_items(1), one.global_batch_items(3)]]
    assert [r.rank_batches(2) for r in ranks] == [[2], []]
    with pytest.raises(ValueError, match="cannot make one optimizer step of 2"):
        plan(3, 4, 1).for_rank(0, 2, 2)
    with pytest.raises(ValueError, match="cannot be split over 2 ranks"):
        one.for_rank(0, 2, 3)
    with pytest.raises(ValueError, match="after 3 optimizer steps of a 2-step run"):
        ranks[0].resume_after(3)
    with pytest.raises(ValueError, match="not a multiple of the world size 2"):
        ranks[0].resume(1, 0)
