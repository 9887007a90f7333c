"""Execution modes of alf.utils.common: contexts, decorators, nesting and
restoration on exceptions."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alf.utils import common
from alf.utils.common import (
    EXE_MODE_EVAL,
    EXE_MODE_OTHER,
    EXE_MODE_PRETRAIN,
    EXE_MODE_REPLAY,
    EXE_MODE_ROLLOUT,
    eval_context,
    exe_mode_name,
    is_eval,
    is_pretrain,
    is_replay,
    is_rollout,
    mark_eval,
    mark_pretrain,
    mark_replay,
    mark_rollout,
    pretrain_context,
    replay_context,
    rollout_context,
    set_exe_mode,
)

CONTEXTS = {
    "rollout": rollout_context,
    "replay": replay_context,
    "eval": eval_context,
    "pretrain": pretrain_context,
}
MARKS = {
    "rollout": mark_rollout,
    "replay": mark_replay,
    "eval": mark_eval,
    "pretrain": mark_pretrain,
}


def flags():
    """(is_rollout, is_replay, is_eval, is_pretrain) now."""
    return (is_rollout(), is_replay(), is_eval(), is_pretrain())


def expected_flags(name):
    return tuple(name == n for n in ("rollout", "replay", "eval", "pretrain"))


@pytest.fixture(autouse=True)
def _other_mode():
    set_exe_mode(EXE_MODE_OTHER)
    yield
    set_exe_mode(EXE_MODE_OTHER)


def test_constants_and_names():
    assert [
        EXE_MODE_ROLLOUT,
        EXE_MODE_REPLAY,
        EXE_MODE_OTHER,
        EXE_MODE_EVAL,
        EXE_MODE_PRETRAIN,
    ] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert exe_mode_name() == "other" and flags() == (False,) * 4
    for mode, name in [(0, "rollout"), (1, "replay"), (3, "eval"), (4, "pretrain"), (2, "other")]:
        set_exe_mode(mode)
        assert exe_mode_name() == name
        assert flags() == expected_flags(name)


def test_set_exe_mode_returns_previous_and_rejects_bad_modes():
    assert set_exe_mode(EXE_MODE_EVAL) == EXE_MODE_OTHER
    assert set_exe_mode(EXE_MODE_REPLAY) == EXE_MODE_EVAL
    for bad in (5, -1, "eval", True, 1.0, None):
        with pytest.raises(ValueError, match="mode must be one of"):
            set_exe_mode(bad)
    assert exe_mode_name() == "replay"


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_context_sets_and_restores(name):
    with replay_context():
        with CONTEXTS[name]() as ctx:
            assert exe_mode_name() == name and flags() == expected_flags(name)
            assert isinstance(ctx, CONTEXTS[name])
        assert exe_mode_name() == "replay"
        with pytest.raises(KeyError):
            with CONTEXTS[name]():
                raise KeyError("boom")
        assert exe_mode_name() == "replay"
    assert exe_mode_name() == "other"


@pytest.mark.parametrize("name", sorted(MARKS))
def test_mark_decorators(name):
    @MARKS[name]
    def body(x, y=1):
        """doc of body"""
        return exe_mode_name(), x + y

    @MARKS[name]
    def fails():
        raise RuntimeError("inside " + exe_mode_name())

    assert body.__name__ == "body" and body.__doc__ == "doc of body"
    with eval_context() if name != "eval" else rollout_context():
        outer = exe_mode_name()
        assert body(2, y=3) == (name, 5)
        assert exe_mode_name() == outer
        with pytest.raises(RuntimeError, match="inside " + name):
            fails()
        assert exe_mode_name() == outer
    with pytest.raises(TypeError, match="callable"):
        MARKS[name](3)


def test_one_context_instance_nested_and_reused():
    ctx = rollout_context()
    with ctx:
        with eval_context():
            with ctx:
                assert is_rollout()
            assert is_eval()
        assert is_rollout()
    assert exe_mode_name() == "other"
    with ctx:
        assert is_rollout()
    assert exe_mode_name() == "other"


@given(
    st.lists(st.sampled_from(sorted(CONTEXTS) + ["mark:" + n for n in sorted(MARKS)]), max_size=8)
)
def test_arbitrary_nesting_matches_a_stack(names):
    """Entering the modes in order, then unwinding (through an exception
    from the innermost), always shows the innermost mode."""
    seen = []

    def enter(i):
        if i == len(names):
            seen.append(exe_mode_name())
            raise ValueError("unwind")
        kind = names[i]
        if kind.startswith("mark:"):
            MARKS[kind[5:]](lambda: (seen.append(exe_mode_name()), enter(i + 1)))()
        else:
            with CONTEXTS[kind]():
                seen.append(exe_mode_name())
                enter(i + 1)

    with pytest.raises(ValueError, match="unwind"):
        enter(0)
    expected = [n.replace("mark:", "") for n in names]
    innermost = expected[-1] if expected else "other"
    assert seen == expected + [innermost]
    assert exe_mode_name() == "other"


def test_public_module_names():
    for name in ("rollout_context", "mark_replay", "is_pretrain", "set_exe_mode"):
        assert getattr(common, name).__module__ == "alf.utils.common"
