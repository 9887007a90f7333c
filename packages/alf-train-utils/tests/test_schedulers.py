"""alf.utils.schedulers: the progress registry and every scheduler, checked
against independent formulas (numpy.interp, Smith's cyclical formula, ...)."""

import math
import pickle

import gin
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import alf.summary
from alf.utils import schedulers
from alf.utils.schedulers import (
    PROGRESS_TYPES,
    ConstantScheduler,
    CyclicalScheduler,
    ExponentialScheduler,
    LinearScheduler,
    Scheduler,
    StepScheduler,
    as_scheduler,
    disallow_scheduler,
    get_all_progresses,
    get_progress,
    update_all_progresses,
    update_progress,
)


@pytest.fixture(autouse=True)
def _clean_registry():
    """Every test starts from progress 0 with schedulers allowed."""
    update_all_progresses({"percent": 0.0, "iterations": 0, "env_steps": 0, "global_counter": 0})
    schedulers._scheduler_allowed = True
    yield
    update_all_progresses({"percent": 0.0, "iterations": 0, "env_steps": 0, "global_counter": 0})
    schedulers._scheduler_allowed = True


@gin.configurable(module="test_schedulers")
def _configured_lr(lr):
    return lr


# --------------------------------------------------------------------------
# registry


def test_progress_registry_roundtrip():
    assert set(PROGRESS_TYPES) == {"percent", "iterations", "env_steps", "global_counter"}
    assert get_all_progresses() == {
        "percent": 0.0,
        "iterations": 0,
        "env_steps": 0,
        "global_counter": 0,
    }
    update_progress("percent", 0.25)
    update_progress("iterations", np.int64(7))
    update_progress("env_steps", torch.tensor(1000))
    assert get_progress("percent") == 0.25
    assert get_progress("iterations") == 7 and type(get_progress("iterations")) is int
    assert get_progress("env_steps") == 1000 and type(get_progress("env_steps")) is int

    snapshot = get_all_progresses()
    snapshot["percent"] = 0.9  # a copy: the registry is unchanged
    assert get_progress("percent") == 0.25


def test_global_counter_progress_follows_alf_summary():
    alf.summary.set_global_counter(42)
    assert get_progress("global_counter") == 42
    sched = LinearScheduler("global_counter", [(0, 0.0), (100, 1.0)])
    assert sched() == pytest.approx(0.42)
    # setting it through the registry sets alf.summary's counter
    update_progress("global_counter", 10)
    assert int(alf.summary.get_global_counter()) == 10
    assert sched() == pytest.approx(0.1)
    alf.summary.increment_global_counter()
    assert sched() == pytest.approx(0.11)


def test_update_all_progresses_from_another_snapshot():
    update_all_progresses({"percent": 0.5, "iterations": 3, "env_steps": 30, "global_counter": 4})
    parent = get_all_progresses()
    update_all_progresses({"percent": 0.0, "iterations": 0, "env_steps": 0, "global_counter": 0})
    update_all_progresses(parent)
    assert get_all_progresses() == parent
    assert int(alf.summary.get_global_counter()) == 4


def test_registry_bad_input_lists_valid_types_and_changes_nothing():
    with pytest.raises(ValueError, match="'percent', 'iterations', 'env_steps', 'global_counter'"):
        update_progress("epochs", 1)
    with pytest.raises(ValueError, match="progress_type must be one of"):
        get_progress("epochs")
    with pytest.raises(TypeError, match="real number"):
        update_progress("iterations", "3")
    with pytest.raises(TypeError, match="real number"):
        update_progress("iterations", True)
    with pytest.raises(ValueError, match="finite"):
        update_progress("percent", float("nan"))
    with pytest.raises(ValueError, match="integer"):
        update_progress("global_counter", 1.5)
    with pytest.raises(ValueError, match="scalar"):
        update_progress("env_steps", torch.ones(2))
    with pytest.raises(TypeError, match="dict"):
        update_all_progresses([("percent", 0.5)])
    # the valid first entry is not applied when a later one is bad
    with pytest.raises(ValueError, match="progresses key"):
        update_all_progresses({"percent": 0.5, "epoch": 1})
    assert get_progress("percent") == 0.0


def test_disallow_scheduler():
    sched = StepScheduler("iterations", [(10, 1.0)])
    const = as_scheduler(3)
    assert sched() == 1.0
    disallow_scheduler()
    with pytest.raises(RuntimeError, match="disallow"):
        sched()
    with pytest.raises(RuntimeError, match="disallow"):
        sched.progress()
    assert const() == 3


# --------------------------------------------------------------------------
# independent reference formulas


def step_reference(schedule, x, warm_up_period=0, start=0):
    """A slow scan written from the spec's sentences."""
    if x < start:
        return 0
    if x < start + warm_up_period:
        return schedule[0][1] * (x - start) / warm_up_period
    for p, v in schedule:
        if p > x:
            return v
    return schedule[-1][1]


def cyclical_reference(x, base, bound, h, mode):
    """Smith (2017), eqs. of the triangular policy; step mode from the
    half-cycle parity."""
    if mode == "linear":
        cycle = math.floor(1 + x / (2 * h))
        dist = abs(x / h - 2 * cycle + 1)
        return base + (bound - base) * max(0.0, 1 - dist)
    return base + (bound - base) * (math.floor(x / h) % 2)


progress_values = st.floats(0, 1000, allow_nan=False)
sorted_progresses = st.lists(st.integers(0, 1000), min_size=1, max_size=6).map(sorted)


@given(
    progresses=sorted_progresses,
    values=st.lists(st.floats(-10, 10), min_size=6, max_size=6),
    xs=st.lists(progress_values, min_size=1, max_size=5),
)
def test_step_scheduler_matches_reference(progresses, values, xs):
    schedule = list(zip(progresses, values))
    sched = StepScheduler("env_steps", schedule)
    for x in xs + [float(p) for p in progresses]:
        update_progress("env_steps", x)
        assert sched() == step_reference(schedule, x)


@given(
    progresses=sorted_progresses,
    v0=st.floats(0.1, 10),
    warm_up=st.floats(0.5, 200),
    start=st.integers(0, 300),
    xs=st.lists(progress_values, min_size=1, max_size=5),
)
def test_step_scheduler_warm_up(progresses, v0, warm_up, start, xs):
    schedule = [(p, v0 * (i + 1)) for i, p in enumerate(progresses)]
    sched = StepScheduler("iterations", schedule, warm_up_period=warm_up, start=start)
    for x in xs + [start, start + warm_up / 2, start + warm_up]:
        update_progress("iterations", x)
        assert sched() == pytest.approx(step_reference(schedule, x, warm_up, start), abs=1e-12)


def test_step_scheduler_hand_values():
    sched = StepScheduler("iterations", [(10, 1.0), (20, 0.5), (30, 0.1)], warm_up_period=4)
    got = []
    for it in [0, 1, 2, 3, 4, 9, 10, 19, 20, 29, 30, 1000]:
        update_progress("iterations", it)
        got.append(sched())
    assert got == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1]
    late = StepScheduler("iterations", [(10, 2.0)], warm_up_period=2, start=5)
    for it, want in [(0, 0), (4, 0), (5, 0.0), (6, 1.0), (7, 2.0), (50, 2.0)]:
        update_progress("iterations", it)
        assert late() == want


@given(
    gaps=st.lists(st.floats(0.01, 100), min_size=0, max_size=6),
    values=st.lists(st.floats(-100, 100), min_size=7, max_size=7),
    xs=st.lists(st.floats(0, 800), min_size=1, max_size=6),
)
def test_linear_scheduler_matches_numpy_interp(gaps, values, xs):
    progresses = np.concatenate([[0.0], np.cumsum(gaps)]).tolist()
    values = values[: len(progresses)]
    sched = LinearScheduler("percent", list(zip(progresses, values)))
    for x in xs + progresses:
        update_progress("percent", x)
        assert sched() == pytest.approx(np.interp(x, progresses, values), rel=1e-9, abs=1e-9)


def test_linear_scheduler_jump_and_single_point():
    sched = LinearScheduler("percent", [(0, 1.0), (0.5, 0.0), (0.5, 10.0), (1.0, 20.0)])
    for x, want in [(0.0, 1.0), (0.25, 0.5), (0.5, 10.0), (0.75, 15.0), (1.0, 20.0), (2.0, 20.0)]:
        update_progress("percent", x)
        assert sched() == pytest.approx(want)
    const = LinearScheduler("iterations", [(0, 3.0)])
    update_progress("iterations", 99)
    assert const() == 3.0


@given(
    initial=st.floats(-10, 10),
    rate=st.floats(0.01, 2),
    time=st.floats(0.1, 1000),
    periods=st.floats(0, 50),
)
def test_exponential_scheduler_matches_formula(initial, rate, time, periods):
    x = periods * time
    sched = ExponentialScheduler(
        "env_steps", initial_value=initial, decay_rate=rate, decay_time=time
    )
    update_progress("env_steps", x)
    want = initial * np.exp(np.log(rate) * x / time)
    assert sched() == pytest.approx(want, rel=1e-9, abs=1e-12)


@given(
    base=st.floats(-5, 5),
    bound=st.floats(-5, 5),
    h=st.integers(1, 50),
    xs=st.lists(st.integers(0, 10_000), min_size=1, max_size=8),
    mode=st.sampled_from(["step", "linear"]),
)
def test_cyclical_scheduler_matches_smith_formula_integer_progress(base, bound, h, xs, mode):
    sched = CyclicalScheduler("iterations", base, bound, h, switch_mode=mode)
    for x in xs:
        update_progress("iterations", x)
        want = cyclical_reference(x, base, bound, h, mode)
        assert sched() == pytest.approx(want, rel=1e-9, abs=1e-9)


@given(
    h=st.floats(0.01, 0.5),
    x=st.floats(0, 1),
    mode=st.sampled_from(["step", "linear"]),
)
def test_cyclical_scheduler_matches_smith_formula_float_progress(h, x, mode):
    sched = CyclicalScheduler("percent", 1.0, 0.0, h, switch_mode=mode)
    update_progress("percent", x)
    want = cyclical_reference(x, 1.0, 0.0, h, mode)
    if mode == "step" and abs(x / h - round(x / h)) < 1e-9:
        return  # at a switching point rounding decides the side
    assert sched() == pytest.approx(want, abs=1e-7)


def test_cyclical_scheduler_td3_alternation_and_hand_values():
    every_other = CyclicalScheduler("iterations", 0, 1, 1)  # step mode by default
    got = []
    for it in range(6):
        update_progress("iterations", it)
        got.append(every_other())
    assert got == [0, 1, 0, 1, 0, 1] and all(type(v) is int for v in got)
    exact = CyclicalScheduler("iterations", 0.1, 0.3, 2)
    update_progress("iterations", 3)
    assert exact() == 0.3  # the bound itself, not 0.1 + 0.2 * 1.0
    tri = CyclicalScheduler("iterations", 1.0, 3.0, 4, switch_mode="linear")
    got = []
    for it in range(10):
        update_progress("iterations", it)
        got.append(tri())
    assert got == [1.0, 1.5, 2.0, 2.5, 3.0, 2.5, 2.0, 1.5, 1.0, 1.5]


def test_constant_scheduler_and_as_scheduler():
    c = ConstantScheduler(0.3)
    assert c() == 0.3
    update_progress("percent", 0.9)
    assert c() == 0.3
    assert isinstance(as_scheduler(0.5), ConstantScheduler) and as_scheduler(0.5)() == 0.5
    assert as_scheduler(c) is c
    lin = LinearScheduler("percent", [(0, 0.0), (1, 1.0)])
    assert as_scheduler(lin) is lin
    fn = lambda: 7  # noqa: E731
    assert as_scheduler(fn) is fn


def test_scheduler_base_class():
    assert Scheduler("percent").progress_type == "percent"
    update_progress("percent", 0.3)
    assert Scheduler("percent").progress() == 0.3
    with pytest.raises(NotImplementedError):
        Scheduler("percent")()
    assert isinstance(ExponentialScheduler("percent", 1.0, 0.5, 1.0), Scheduler)


ALL = [
    ConstantScheduler(0.25),
    StepScheduler("iterations", [(10, 1.0), (20, 0.5)], warm_up_period=5, start=2),
    StepScheduler("iterations", [(10, 1.0)]),
    LinearScheduler("percent", [(0, 1.0), (0.5, 0.1), (1.0, 0.01)]),
    ExponentialScheduler("env_steps", 1.0, 0.5, 100),
    CyclicalScheduler("global_counter", 0.1, 1.0, 3, switch_mode="linear"),
]


@pytest.mark.parametrize("sched", ALL, ids=lambda s: type(s).__name__)
def test_pickle_and_repr(sched):
    update_all_progresses({"percent": 0.3, "iterations": 6, "env_steps": 150, "global_counter": 4})
    copy = pickle.loads(pickle.dumps(sched))
    assert type(copy) is type(sched)
    assert copy() == sched()
    assert repr(copy) == repr(sched)
    # the repr reads as the call that made the scheduler
    namespace = {cls.__name__: cls for cls in map(type, ALL)}
    rebuilt = eval(repr(sched), namespace)
    assert repr(rebuilt) == repr(sched) and rebuilt() == sched()
    assert repr(ALL[3]) == "LinearScheduler('percent', [(0, 1.0), (0.5, 0.1), (1.0, 0.01)])"
    assert repr(ALL[2]) == "StepScheduler('iterations', [(10, 1.0)])"


@pytest.mark.parametrize("x", [-7.5, -3, -1, -0.25])
def test_progress_below_zero(x):
    """A progress below 0 (not refused): the linear schedule holds its first
    value (as numpy.interp), the cyclical one continues its period backwards."""
    lin = LinearScheduler("env_steps", [(0, 2.0), (10, 4.0)])
    for mode in ("step", "linear"):
        cyc = CyclicalScheduler("env_steps", 1.0, 3.0, 2, switch_mode=mode)
        update_progress("env_steps", x)
        assert lin() == np.interp(x, [0, 10], [2.0, 4.0])
        assert cyc() == pytest.approx(cyclical_reference(x, 1.0, 3.0, 2, mode))


def test_global_counter_takes_whole_floats():
    update_progress("global_counter", 12.0)
    assert get_progress("global_counter") == 12 and type(get_progress("global_counter")) is int
    assert int(alf.summary.get_global_counter()) == 12
    with pytest.raises(ValueError, match="'global_counter' must be an integer; got 1.5"):
        update_progress("global_counter", 1.5)


def test_schedulers_are_gin_configurable():
    try:
        gin.parse_config(
            """
            LinearScheduler.progress_type = 'iterations'
            LinearScheduler.schedule = [(0, 1.0), (10, 0.0)]
            alf.utils.schedulers.CyclicalScheduler.switch_mode = 'linear'
            _configured_lr.lr = @ExponentialScheduler()
            ExponentialScheduler.progress_type = 'percent'
            ExponentialScheduler.initial_value = 2.0
            ExponentialScheduler.decay_rate = 0.5
            ExponentialScheduler.decay_time = 0.5
            StepScheduler.warm_up_period = 3
            """
        )
        lin = LinearScheduler()
        update_progress("iterations", 4)
        assert lin() == pytest.approx(0.6)
        cyc = CyclicalScheduler("iterations", 0.0, 1.0, 8)
        assert cyc() == pytest.approx(0.5)
        exp = _configured_lr()
        assert isinstance(exp, ExponentialScheduler)
        update_progress("percent", 1.0)
        assert exp() == pytest.approx(0.5)
        step = StepScheduler("iterations", [(10, 3.0)])
        update_progress("iterations", 1)
        assert step() == pytest.approx(1.0)
    finally:
        gin.clear_config()


# --------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: StepScheduler("epochs", [(1, 1.0)]), ValueError, "'percent', 'iterations'"),
        (lambda: LinearScheduler(None, [(0, 1.0)]), ValueError, "progress_type must be one of"),
        (lambda: StepScheduler("percent", []), ValueError, "at least one"),
        (lambda: LinearScheduler("percent", []), ValueError, "at least one"),
        (lambda: StepScheduler("percent", 0.5), TypeError, "schedule must be a list"),
        (lambda: StepScheduler("percent", [(0.5, 1), (0.2, 2)]), ValueError, "sorted"),
        (lambda: LinearScheduler("percent", [(0, 1), (1, 2), (0.5, 3)]), ValueError, "sorted"),
        (lambda: LinearScheduler("percent", [(0.1, 1.0)]), ValueError, r"schedule\[0\]\[0\]"),
        (lambda: LinearScheduler("percent", [(0, "a")]), TypeError, r"schedule\[0\]\[1\]"),
        (lambda: StepScheduler("percent", [(0, 1, 2)]), ValueError, r"schedule\[0\] must be"),
        (lambda: StepScheduler("percent", [(1, 1)], warm_up_period=-1), ValueError, "warm_up"),
        (lambda: ExponentialScheduler("percent", 1.0, 0.5, 0), ValueError, "decay_time"),
        (lambda: ExponentialScheduler("percent", 1.0, -0.5, 1), ValueError, "decay_rate"),
        (lambda: CyclicalScheduler("iterations", 0, 1, 0), ValueError, "half_cycle_size"),
        (lambda: CyclicalScheduler("iterations", 0, 1, -2), ValueError, "half_cycle_size"),
        (lambda: CyclicalScheduler("iterations", 0, 1, 1, "cosine"), ValueError, "switch_mode"),
        (lambda: CyclicalScheduler("iterations", "0", 1, 1), TypeError, "base_lr"),
    ],
)
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()
