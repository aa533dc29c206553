import pytest

from infir.training.schedules import LRSchedule, warmup_steps_from


@pytest.mark.parametrize("kind", ["cosine", "linear", "wsd"])
def test_warmup_then_decay_to_floor(kind):
    s = LRSchedule(kind, total_steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert s(0) == pytest.approx(0.1)          # first warmup step
    assert s(9) == pytest.approx(1.0)          # peak at the end of warmup
    assert s(99) == pytest.approx(0.1)         # last step lands on the floor
    values = [s(i) for i in range(10, 100)]
    assert all(a >= b - 1e-12 for a, b in zip(values, values[1:]))  # never increases after warmup


def test_wsd_is_flat_until_the_decay_window():
    s = LRSchedule("wsd", total_steps=100, warmup_steps=0, min_lr_ratio=0.0, decay_fraction=0.2)
    assert s(79) == 1.0 and s(80) == 1.0 and s(90) < 1.0 and s(99) == pytest.approx(0.0)


def test_invalid_schedule_names_the_key():
    with pytest.raises(ValueError, match="phase.schedule.kind"):
        LRSchedule("exp", total_steps=10)
    with pytest.raises(ValueError, match="warmup_steps"):
        LRSchedule("cosine", total_steps=10, warmup_steps=11)
    assert warmup_steps_from(200, None, 0.1) == 20 and warmup_steps_from(200, 7, 0.1) == 7
