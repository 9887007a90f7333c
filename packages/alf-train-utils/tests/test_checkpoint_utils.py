"""Checkpointer, enable_checkpoint, is_checkpoint_enabled and
extract_sub_state_dict_from_checkpoint: ALF's layout (read back with plain
``torch.load``), folders written the way ALF writes them, load options, bad
input, corrupt files, retention, recovery from an interrupted re-save."""

import hashlib
import json
import os
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from alf.utils.checkpoint_utils import (
    Checkpointer,
    enable_checkpoint,
    extract_sub_state_dict_from_checkpoint,
    is_checkpoint_enabled,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alf_train_ckpt_models as models  # noqa: E402


def plain_load(path):
    return torch.load(path, weights_only=True)


def dir_digest(d):
    """``name -> sha256`` of every file of ``d`` (to prove nothing changed)."""
    out = {}
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def alf_style_folder(d, alg, step):
    """Write step ``step`` of ``alg`` as ALF does, with three plain
    ``torch.save`` calls: optimizers (``_optimizers.i`` entries holding
    ``param_groups``) and ``_replay_buffer`` entries in their own files."""
    sd = OrderedDict(alg.state_dict())
    sd["_optimizers.0"] = alg._optimizers[0].state_dict()
    sd["sub._optimizers.0"] = alg.sub._optimizers[0].state_dict()
    sd["_replay_buffer"] = alg._replay_buffer.state_dict()
    model = {k: v for k, v in sd.items() if "_optimizers." not in k and "_replay_buffer" not in k}
    opt = {k: v for k, v in sd.items() if "_optimizers." in k}
    rb = {k: v for k, v in sd.items() if "_replay_buffer" in k}
    os.makedirs(d, exist_ok=True)
    torch.save({"alg": model, "global_step": step}, os.path.join(d, f"ckpt-{step}"))
    torch.save({"alg": opt}, os.path.join(d, f"ckpt-{step}-optimizer"))
    torch.save({"alg": rb}, os.path.join(d, f"ckpt-{step}-replay_buffer"))


# ------------------------------------------------------------------ layout


def test_layout_is_alfs(tmp_path):
    alg = models.new_alg()
    Checkpointer(str(tmp_path), alg=alg).save(7)
    names = sorted(os.listdir(tmp_path))
    assert names == [
        "ckpt-7",
        "ckpt-7-optimizer",
        "ckpt-7-replay_buffer",
        "ckpt-structure-optimizer.json",
        "ckpt-structure-replay_buffer.json",
        "ckpt-structure.json",
    ]
    model = plain_load(tmp_path / "ckpt-7")
    opt = plain_load(tmp_path / "ckpt-7-optimizer")
    rb = plain_load(tmp_path / "ckpt-7-replay_buffer")
    assert set(model) == {"alg", "global_step"} and model["global_step"] == 7
    assert list(model["alg"]) == list(alg.state_dict())  # module keys, data transformer included
    assert "_data_transformer.running_mean" in model["alg"]
    assert set(opt["alg"]) == {"_optimizers.0", "sub._optimizers.0"}
    assert opt["alg"]["_optimizers.0"]["param_groups"][0]["lr"] == 1e-3
    exp_avg = alg._optimizers[0].state[alg.net[0].weight]["exp_avg"]
    assert torch.equal(opt["alg"]["_optimizers.0"]["state"][0]["exp_avg"], exp_avg)
    assert torch.equal(
        opt["alg"]["sub._optimizers.0"]["state"][0]["momentum_buffer"],
        alg.sub._optimizers[0].state[alg.sub.layer.weight]["momentum_buffer"],
    )
    assert set(rb["alg"]) == {"_replay_buffer"}
    assert torch.equal(rb["alg"]["_replay_buffer"]["data"], alg._replay_buffer.data)
    for k, v in alg.state_dict().items():
        assert torch.equal(model["alg"][k], v), k


def test_structure_json_lists_the_saved_keys(tmp_path):
    alg = models.new_alg()
    Checkpointer(str(tmp_path), alg=alg).save(3)
    for json_name, ckpt_name in [
        ("ckpt-structure.json", "ckpt-3"),
        ("ckpt-structure-optimizer.json", "ckpt-3-optimizer"),
        ("ckpt-structure-replay_buffer.json", "ckpt-3-replay_buffer"),
    ]:
        with open(tmp_path / json_name) as f:
            structure = json.load(f)
        state = plain_load(tmp_path / ckpt_name)
        assert set(structure["alg"]) == set(state["alg"])
    with open(tmp_path / "ckpt-structure.json") as f:
        structure = json.load(f)
    assert structure["alg"]["head.weight"] == "float32[4, 8]"
    assert structure["alg"]["net.1.num_batches_tracked"] == "int64[]"
    assert structure["global_step"] == "int"


def test_round_trip_restores_every_tensor(tmp_path):
    alg = models.new_alg(seed=1)
    before = models.snapshot(alg)
    ck = Checkpointer(str(tmp_path), alg=alg)
    ck.save(12)
    other = models.new_alg(seed=2)
    other.train_step(5)
    assert Checkpointer(str(tmp_path), alg=other).load() == 12
    models.assert_same(models.snapshot(other), before)
    # the restored optimizers keep training identically
    alg.train_step(9)
    other.train_step(9)
    models.assert_same(models.snapshot(other), models.snapshot(alg))


def test_alf_written_folder_loads(tmp_path):
    src = models.new_alg(seed=3)
    alf_style_folder(str(tmp_path), src, 40)
    alf_style_folder(str(tmp_path), models.new_alg(seed=4), 30)
    dst = models.new_alg(seed=5)
    ck = Checkpointer(str(tmp_path), alg=dst)
    assert ck.has_checkpoint() and ck.has_checkpoint(30) and not ck.has_checkpoint(35)
    assert ck.checkpointed_steps() == [30, 40]
    assert ck.load() == 40
    models.assert_same(models.snapshot(dst), models.snapshot(src))


def test_our_folder_reads_like_alfs(tmp_path):
    """What ALF's loader does: load the three files, merge per item, load."""
    src = models.new_alg(seed=6)
    Checkpointer(str(tmp_path), alg=src).save(5)
    merged = plain_load(tmp_path / "ckpt-5")
    for suffix in ("-optimizer", "-replay_buffer"):
        for k, v in plain_load(tmp_path / f"ckpt-5{suffix}").items():
            merged[k].update(v)
    dst = models.new_alg(seed=7)
    state = merged["alg"]
    dst._optimizers[0].load_state_dict(state.pop("_optimizers.0"))
    dst.sub._optimizers[0].load_state_dict(state.pop("sub._optimizers.0"))
    dst._replay_buffer.load_state_dict(state.pop("_replay_buffer"))
    dst.load_state_dict(state)
    models.assert_same(models.snapshot(dst), models.snapshot(src))


def test_plain_items_and_data_parallel(tmp_path):
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    rb = models.DuckReplayBuffer()
    rb.data.fill_(3.0)
    ck = Checkpointer(str(tmp_path), net=nn.DataParallel(net), opt=opt, replay_buffer=rb)
    ck.save(np.int64(2))
    model = plain_load(tmp_path / "ckpt-2")
    assert list(model["net"]) == ["weight", "bias"]  # unwrapped, no "module."
    assert model["opt"] == {} and model["replay_buffer"] == {}
    assert "param_groups" in plain_load(tmp_path / "ckpt-2-optimizer")["opt"]
    assert set(plain_load(tmp_path / "ckpt-2-replay_buffer")["replay_buffer"]) == {"data", "pos"}
    net2 = nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters())
    rb2 = models.DuckReplayBuffer()
    assert Checkpointer(str(tmp_path), net=net2, opt=opt2, replay_buffer=rb2).load() == 2
    assert torch.equal(net2.weight, net.weight) and torch.equal(rb2.data, rb.data)
    assert torch.equal(opt2.state[net2.weight]["exp_avg"], opt.state[net.weight]["exp_avg"])


def test_step_may_be_a_tensor_and_resaving_replaces(tmp_path):
    alg = models.new_alg()
    ck = Checkpointer(str(tmp_path), alg=alg, durable=False)
    models.fill(alg, 1.0)
    ck.save(torch.tensor(4))
    models.fill(alg, 2.0)
    ck.save(4)
    dst = models.new_alg(seed=1)
    assert Checkpointer(str(tmp_path), alg=dst).load(4) == 4
    models.assert_same(models.snapshot(dst), models.snapshot(alg))
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


# ------------------------------------------------------------------ load options


def test_latest_and_missing_steps(tmp_path):
    ck = Checkpointer(str(tmp_path / "new" / "dir"), alg=models.new_alg())
    assert os.path.isdir(tmp_path / "new" / "dir") and ck.ckpt_dir == str(tmp_path / "new" / "dir")
    assert not ck.has_checkpoint()
    assert ck.load() == -1 and ck.load(3) == -1
    for s in (3, 10, 7):
        ck.save(s)
    assert ck.checkpointed_steps() == [3, 7, 10]
    assert ck.load() == 10 and ck.load(7) == 7 and ck.load(8) == -1


def test_ignored_parameter_prefixes(tmp_path):
    src = models.new_alg(seed=1)
    Checkpointer(str(tmp_path), alg=src).save(1)
    dst = models.new_alg(seed=2)
    head_before = dst.head.weight.detach().clone()
    sub_opt_before = dst.sub._optimizers[0].state_dict()["state"][0]["momentum_buffer"].clone()
    ck = Checkpointer(str(tmp_path), alg=dst)
    assert ck.load(ignored_parameter_prefixes=["alg.head.", "alg.sub._optimizers"]) == 1
    assert torch.equal(dst.head.weight, head_before)  # kept, and not "missing"
    assert torch.equal(dst.net[0].weight, src.net[0].weight)
    assert torch.equal(dst.sub.layer.weight, src.sub.layer.weight)
    assert torch.equal(
        dst.sub._optimizers[0].state_dict()["state"][0]["momentum_buffer"], sub_opt_before
    )


@pytest.mark.parametrize("what", ["optimizer", "replay_buffer", "data_transformers"])
def test_including_switches(tmp_path, what):
    src = models.new_alg(seed=1)
    Checkpointer(str(tmp_path), alg=src).save(1)
    dst = models.new_alg(seed=2)
    models.fill(dst, -5.0)
    kwargs = {f"including_{what}": False}
    assert Checkpointer(str(tmp_path), alg=dst).load(**kwargs) == 1
    got, want = models.snapshot(dst), models.snapshot(src)
    for k in got:
        untouched = {
            "optimizer": k.startswith("opt"),
            "replay_buffer": k.startswith("rb."),
            "data_transformers": k.startswith("module._data_transformer."),
        }[what]
        expected = torch.full_like(got[k], -5.0) if untouched else want[k]
        assert torch.equal(got[k], expected), k


def test_strict_lists_missing_and_unexpected_keys_and_changes_nothing(tmp_path):
    src = models.new_alg(seed=1)
    Checkpointer(str(tmp_path), alg=src).save(1)
    dst = models.new_alg(seed=2)
    del dst.head  # its keys become unexpected
    dst.extra = nn.Linear(2, 2)  # its keys become missing
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    ck = Checkpointer(str(tmp_path), alg=dst)
    with pytest.raises(RuntimeError) as e:
        ck.load()
    msg = str(e.value)
    assert "missing keys" in msg and "'alg.extra.weight'" in msg and "'alg.extra.bias'" in msg
    assert "unexpected keys" in msg and "'alg.head.weight'" in msg
    assert "ckpt-1" in msg
    for k, v in dst.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert ck.load(strict=False) == 1
    assert torch.equal(dst.net[0].weight, src.net[0].weight)
    assert torch.equal(dst.extra.weight, before["extra.weight"])


def test_unknown_item_is_unexpected(tmp_path):
    Checkpointer(str(tmp_path), alg=models.new_alg(), other=nn.Linear(1, 1)).save(1)
    with pytest.raises(RuntimeError, match="unexpected keys: \\['other'\\]"):
        Checkpointer(str(tmp_path), alg=models.new_alg()).load()
    missing = Checkpointer(str(tmp_path), alg=models.new_alg(), third=nn.Linear(1, 1))
    with pytest.raises(RuntimeError, match="'third.weight'"):
        missing.load()


def test_shape_mismatch_is_an_error_before_any_change(tmp_path):
    Checkpointer(str(tmp_path), alg=models.new_alg(hidden=8)).save(1)
    dst = models.new_alg(hidden=16)
    before = models.snapshot(dst)
    with pytest.raises(RuntimeError, match="shape mismatches.*alg.net.0.weight"):
        Checkpointer(str(tmp_path), alg=dst).load(strict=False)
    models.assert_same(models.snapshot(dst), before)


def test_optimizer_group_mismatch_is_an_error_before_any_change(tmp_path):
    Checkpointer(str(tmp_path), alg=models.new_alg(seed=1)).save(1)
    dst = models.new_alg(seed=2)
    dst._optimizers = [torch.optim.Adam(dst.net.parameters())]  # 4 parameters, not 6
    before = models.snapshot(dst)
    with pytest.raises(RuntimeError, match="alg._optimizers.0: checkpoint groups have \\[6\\]"):
        Checkpointer(str(tmp_path), alg=dst).load()
    models.assert_same(models.snapshot(dst), before)


def test_enable_checkpoint(tmp_path):
    alg = models.new_alg(seed=1)
    assert is_checkpoint_enabled(alg.sub)
    enable_checkpoint(alg.sub, False)
    assert not is_checkpoint_enabled(alg.sub) and is_checkpoint_enabled(alg)
    Checkpointer(str(tmp_path), alg=alg).save(1)
    model = plain_load(tmp_path / "ckpt-1")["alg"]
    assert not [k for k in model if k.startswith("sub.")]
    assert set(plain_load(tmp_path / "ckpt-1-optimizer")["alg"]) == {"_optimizers.0"}
    dst = models.new_alg(seed=2)
    sub_before = dst.sub.layer.weight.detach().clone()
    enable_checkpoint(dst.sub, False)
    assert Checkpointer(str(tmp_path), alg=dst).load() == 1  # strict, nothing missing
    assert torch.equal(dst.sub.layer.weight, sub_before)
    enable_checkpoint(dst.sub)
    assert is_checkpoint_enabled(dst.sub)
    with pytest.raises(RuntimeError, match="missing keys.*alg.sub.layer.weight"):
        Checkpointer(str(tmp_path), alg=dst).load()


def test_map_location_loads_tensors_saved_on_another_device(tmp_path):
    """A file whose storages are tagged ``cuda:1`` (as a GPU run writes them):
    made by registering a location tagger while saving."""
    from torch import serialization

    def tagger(storage):
        return "cuda:1" if storage.device.type == "cpu" else None

    src = models.new_alg(seed=1)
    serialization.register_package(1, tagger, lambda obj, location: None)
    try:
        Checkpointer(str(tmp_path), alg=src).save(1)
    finally:
        serialization._package_registry[:] = [
            entry for entry in serialization._package_registry if entry[1] is not tagger
        ]
    path = str(tmp_path / "ckpt-1")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)  # the file really says cuda:1
    dst = models.new_alg(seed=2)
    assert Checkpointer(str(tmp_path), alg=dst).load(map_location="cpu") == 1
    models.assert_same(models.snapshot(dst), models.snapshot(src))
    if not torch.cuda.is_available():
        dst2 = models.new_alg(seed=3)
        assert Checkpointer(str(tmp_path), alg=dst2).load() == 1  # default: CPU
        models.assert_same(models.snapshot(dst2), models.snapshot(src))
        sub = extract_sub_state_dict_from_checkpoint("alg.head", path)
        assert sub["weight"].device.type == "cpu"


def test_device_round_trip(tmp_path, device):
    src = nn.Linear(3, 2).to(device)
    Checkpointer(str(tmp_path), net=src).save(1)
    dst = nn.Linear(3, 2)
    assert Checkpointer(str(tmp_path), net=dst).load(map_location="cpu") == 1
    assert torch.equal(dst.weight, src.weight.cpu())


# ------------------------------------------------------------------ sub state dicts


def test_extract_sub_state_dict(tmp_path):
    alg = models.new_alg(seed=1)
    Checkpointer(str(tmp_path), alg=alg, other=nn.Linear(2, 2)).save(9)
    path = str(tmp_path / "ckpt-9")
    sub = extract_sub_state_dict_from_checkpoint("alg.sub", path)
    assert list(sub) == list(alg.sub.state_dict())
    fresh = models.SubAlg()
    fresh.load_state_dict(sub)
    assert torch.equal(fresh.layer.weight, alg.sub.layer.weight)
    net = extract_sub_state_dict_from_checkpoint("alg.net.0", path)
    assert set(net) == {"weight", "bias"} and torch.equal(net["weight"], alg.net[0].weight)
    whole = extract_sub_state_dict_from_checkpoint("", path)
    assert set(whole) == {"alg", "other", "global_step"} and whole["global_step"] == 9
    assert list(extract_sub_state_dict_from_checkpoint("alg", path)) == list(alg.state_dict())
    with pytest.raises(KeyError) as e:
        extract_sub_state_dict_from_checkpoint("alg.nothing", path)
    msg = str(e.value)
    assert "'alg.nothing'" in msg and "['alg', 'other', 'global_step']" in msg
    with pytest.raises(TypeError, match="checkpoint_prefix"):
        extract_sub_state_dict_from_checkpoint(None, path)


# ------------------------------------------------------------------ bad input


def test_bad_items_and_options(tmp_path):
    d = str(tmp_path / "never")
    with pytest.raises(TypeError, match="alg="):
        Checkpointer(d, alg=object())
    with pytest.raises(TypeError, match="opt="):
        Checkpointer(d, net=nn.Linear(1, 1), opt=[1, 2])
    with pytest.raises(ValueError, match="global_step"):
        Checkpointer(d, global_step=nn.Linear(1, 1))
    with pytest.raises(ValueError, match="max_to_keep"):
        Checkpointer(d, max_to_keep=0)
    with pytest.raises(TypeError, match="durable"):
        Checkpointer(d, durable=nn.Linear(1, 1))
    with pytest.raises(TypeError, match="ckpt_dir"):
        Checkpointer(3)
    assert not os.path.exists(d)  # nothing created before the checks
    with pytest.raises(TypeError, match="module"):
        enable_checkpoint(object())
    with pytest.raises(TypeError, match="flag"):
        enable_checkpoint(nn.Linear(1, 1), "no")
    with pytest.raises(TypeError, match="module"):
        is_checkpoint_enabled(3)


@pytest.mark.parametrize(
    "step, error", [(-1, ValueError), (True, TypeError), (1.5, TypeError), ("last", TypeError)]
)
def test_bad_global_step(tmp_path, step, error):
    ck = Checkpointer(str(tmp_path), net=nn.Linear(1, 1))
    with pytest.raises(error, match="global_step"):
        ck.save(step)
    assert os.listdir(tmp_path) == []
    if step != "last":
        with pytest.raises((TypeError, ValueError), match="global_step"):
            ck.load(step)


def test_bad_load_arguments(tmp_path):
    ck = Checkpointer(str(tmp_path), net=nn.Linear(1, 1))
    ck.save(1)
    with pytest.raises(TypeError, match="ignored_parameter_prefixes"):
        ck.load(ignored_parameter_prefixes="net.")
    with pytest.raises(TypeError, match="strict"):
        ck.load(strict=None)
    with pytest.raises(TypeError, match="including_optimizer"):
        ck.load(including_optimizer=1)
    with pytest.raises(ValueError, match="'latest'"):
        ck.has_checkpoint("newest")


@pytest.mark.parametrize("victim", ["ckpt-2", "ckpt-2-optimizer", "ckpt-2-replay_buffer"])
@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_file_names_the_file_and_changes_nothing(tmp_path, victim, damage):
    ck = Checkpointer(str(tmp_path), alg=models.new_alg(seed=1))
    ck.save(1)
    ck.save(2)
    path = tmp_path / victim
    raw = path.read_bytes()
    path.write_bytes(
        {"truncate": raw[: len(raw) // 2], "garbage": b"\x80\x02garbage", "empty": b""}[damage]
    )
    digest = dir_digest(tmp_path)
    dst = models.new_alg(seed=3)
    before = models.snapshot(dst)
    with pytest.raises(RuntimeError, match="truncated or corrupt") as e:
        Checkpointer(str(tmp_path), alg=dst).load()
    assert str(path) in str(e.value)
    models.assert_same(models.snapshot(dst), before)
    assert dir_digest(tmp_path) == digest
    assert Checkpointer(str(tmp_path), alg=dst).load(1) == 1  # the other step is intact
    if victim == "ckpt-2":
        with pytest.raises(RuntimeError, match=str(path)):
            extract_sub_state_dict_from_checkpoint("alg", str(path))


class PickledState:
    """An item whose state holds a NumPy array (refused by weights_only)."""

    def __init__(self):
        self.value = np.zeros(3)

    def state_dict(self):
        return {"value": self.value.copy()}

    def load_state_dict(self, state):
        self.value = state["value"].copy()


def test_weights_only_opt_in(tmp_path):
    item = PickledState()
    item.value[:] = 7
    Checkpointer(str(tmp_path), item=item).save(1)
    other = PickledState()
    with pytest.raises(RuntimeError, match="weights_only=False") as e:
        Checkpointer(str(tmp_path), item=other).load()
    assert "ckpt-1" in str(e.value)
    assert Checkpointer(str(tmp_path), item=other, weights_only=False).load() == 1
    np.testing.assert_array_equal(other.value, [7, 7, 7])


# ------------------------------------------------------------------ retention


def test_retention_keeps_newest_and_just_written(tmp_path):
    ck = Checkpointer(str(tmp_path), net=nn.Linear(2, 2), max_to_keep=2)
    for s in range(1, 6):
        ck.save(s)
    assert ck.checkpointed_steps() == [4, 5]
    ck.save(2)  # older than the newest: kept, and so is the newest
    assert ck.checkpointed_steps() == [2, 4, 5]
    ck.save(6)
    assert ck.checkpointed_steps() == [5, 6]
    names = os.listdir(tmp_path)
    assert sorted(n for n in names if n.startswith("ckpt-") and "structure" not in n) == [
        "ckpt-5",
        "ckpt-5-optimizer",
        "ckpt-5-replay_buffer",
        "ckpt-6",
        "ckpt-6-optimizer",
        "ckpt-6-replay_buffer",
    ]


@settings(max_examples=25)
@given(
    keep=st.one_of(st.none(), st.integers(1, 4)),
    saves=st.lists(st.integers(0, 9), min_size=1, max_size=8),
)
def test_retention_property(tmp_path_factory, keep, saves):
    """The steps on disk follow a set model: add the step, keep the newest
    ``keep`` plus the step just written."""
    d = str(tmp_path_factory.mktemp("ret"))
    ck = Checkpointer(d, net=nn.Linear(1, 1), max_to_keep=keep, durable=False)
    model = set()
    for s in saves:
        ck.save(s)
        model.add(s)
        if keep is not None:
            model = set(sorted(model)[-keep:]) | {s}
        assert ck.checkpointed_steps() == sorted(model)
        assert ck.load() == max(model)


# ------------------------------------------------------------------ recovery


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_interrupted_resave_reads_the_new_save_and_is_completed(tmp_path):
    """A re-save killed half-way through its renames (as its journal says):
    readers take the new save whole, the next writer completes it."""
    from alf.utils import _train_ckpt_files as files

    d = str(tmp_path / "ckpt")
    old = models.new_alg(seed=1)
    models.fill(old, 1.0)
    Checkpointer(d, alg=old).save(5)
    new = models.new_alg(seed=1)
    models.fill(new, 2.0)
    scratch = str(tmp_path / "scratch")
    Checkpointer(scratch, alg=new).save(5)
    pid = _dead_pid()
    renames = []
    for suffix in ("-optimizer", "-replay_buffer", ""):
        tmp = f".ckpt-tmp-{files._HOST}-{pid}-0000abcd-ckpt-5{suffix}"
        os.replace(os.path.join(scratch, f"ckpt-5{suffix}"), os.path.join(d, tmp))
        renames.append([tmp, f"ckpt-5{suffix}"])
    with open(os.path.join(d, ".ckpt-journal-5.json"), "w") as f:
        json.dump({"step": 5, "renames": renames}, f)
    os.replace(os.path.join(d, renames[0][0]), os.path.join(d, renames[0][1]))  # one done
    digest = dir_digest(d)
    dst = models.new_alg(seed=3)
    assert Checkpointer(d, alg=dst).load() == 5
    assert {float(v.unique()) for v in models.snapshot(dst).values()} == {2.0}
    assert dir_digest(d) == digest  # loading changed nothing
    writer = Checkpointer(d, alg=models.new_alg(seed=4))
    writer.save(6)
    assert not [n for n in os.listdir(d) if n.startswith(".")]
    dst = models.new_alg(seed=3)
    assert Checkpointer(d, alg=dst).load(5) == 5
    assert {float(v.unique()) for v in models.snapshot(dst).values()} == {2.0}


def test_debris_of_dead_writers_is_removed(tmp_path):
    from alf.utils import _train_ckpt_files as files

    d = str(tmp_path)
    pid = _dead_pid()
    dead_tmp = f".ckpt-tmp-{files._HOST}-{pid}-0000abcd-ckpt-3"
    other_host = f".ckpt-tmp-ffffffff-{pid}-0000abcd-ckpt-3"
    for name in (dead_tmp, other_host, "ckpt-8-optimizer", "notes.txt"):
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"x")
    ck = Checkpointer(d, net=nn.Linear(1, 1))
    assert ck.load() == -1 and len(os.listdir(d)) == 4  # load touches nothing
    ck.save(1)
    names = set(os.listdir(d))
    assert dead_tmp not in names and "ckpt-8-optimizer" not in names
    assert {other_host, "notes.txt", "ckpt-1"} <= names


# ------------------------------------------------------------------ damaged folders


def test_folder_named_like_a_step_is_not_a_step(tmp_path):
    """A sub-folder ``ckpt-9`` is no checkpoint: ``latest`` is the newest file."""
    ck = Checkpointer(str(tmp_path), net=models.new_alg(seed=1))
    ck.save(3)
    os.mkdir(tmp_path / "ckpt-9")
    assert ck.checkpointed_steps() == [3]
    assert ck.has_checkpoint(3) and not ck.has_checkpoint(9)
    assert Checkpointer(str(tmp_path), net=models.new_alg(seed=2)).load() == 3


def test_directory_removed_after_construction(tmp_path):
    d = tmp_path / "gone"
    ck = Checkpointer(str(d), net=nn.Linear(1, 1))
    d.rmdir()
    assert ck.checkpointed_steps() == [] and not ck.has_checkpoint()
    assert ck.load() == -1
    ck.save(2)  # made again
    assert ck.checkpointed_steps() == [2]


def test_file_that_is_not_a_dict_of_states(tmp_path):
    ck = Checkpointer(str(tmp_path), net=nn.Linear(2, 2))
    ck.save(1)
    torch.save([torch.zeros(2)], tmp_path / "ckpt-4")
    net = nn.Linear(2, 2)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(RuntimeError, match="holds a list, not the dict of states") as e:
        Checkpointer(str(tmp_path), net=net).load()
    assert str(tmp_path / "ckpt-4") in str(e.value)
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before))


class Unpicklable:
    """An item whose state cannot be saved (a lambda in it)."""

    def state_dict(self):
        return {"f": lambda: 0}

    def load_state_dict(self, state):
        pass


def test_failed_save_leaves_the_folder_as_it_was(tmp_path):
    net = nn.Linear(2, 2)
    Checkpointer(str(tmp_path), net=net).save(1)
    digest = dir_digest(tmp_path)
    ck = Checkpointer(str(tmp_path), net=net, bad=Unpicklable())
    with pytest.raises(Exception, match="lambda"):
        ck.save(2)
    assert dir_digest(tmp_path) == digest  # no temporary file left, step 1 intact
    assert ck.checkpointed_steps() == [1]


@pytest.mark.parametrize(
    "content, match",
    [
        (b"{not json", "is corrupt"),
        (b'{"step": 5}', "is corrupt"),
        (b'{"step": 5, "renames": [[".ckpt-tmp-x", "../ckpt-5"]]}', "names unexpected files"),
        (b'{"step": 5, "renames": [["other", "ckpt-5"]]}', "names unexpected files"),
    ],
)
def test_corrupt_journal_names_the_file_and_changes_nothing(tmp_path, content, match):
    ck = Checkpointer(str(tmp_path), alg=models.new_alg(seed=1))
    ck.save(5)
    journal = tmp_path / ".ckpt-journal-5.json"
    journal.write_bytes(content)
    digest = dir_digest(tmp_path)
    dst = models.new_alg(seed=3)
    before = models.snapshot(dst)
    with pytest.raises(RuntimeError, match=match) as e:
        Checkpointer(str(tmp_path), alg=dst).load(5)
    assert str(journal) in str(e.value)
    models.assert_same(models.snapshot(dst), before)
    assert dir_digest(tmp_path) == digest


def test_journal_of_a_live_writer_is_left_alone(tmp_path):
    """A re-save whose writer still runs (a real process here) is not
    completed nor cleaned up by another writer; once that process is gone,
    the next save completes it."""
    from alf.utils import _train_ckpt_files as files

    d = str(tmp_path / "ckpt")
    old, new = models.new_alg(seed=1), models.new_alg(seed=1)
    models.fill(old, 1.0)
    models.fill(new, 2.0)
    Checkpointer(d, alg=old).save(5)
    scratch = str(tmp_path / "scratch")
    Checkpointer(scratch, alg=new).save(5)
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        renames = []
        for suffix in ("-optimizer", "-replay_buffer", ""):
            tmp = f".ckpt-tmp-{files._HOST}-{writer.pid}-0000abcd-ckpt-5{suffix}"
            os.replace(os.path.join(scratch, f"ckpt-5{suffix}"), os.path.join(d, tmp))
            renames.append([tmp, f"ckpt-5{suffix}"])
        with open(os.path.join(d, ".ckpt-journal-5.json"), "w") as f:
            json.dump({"step": 5, "renames": renames}, f)
        Checkpointer(d, alg=models.new_alg(seed=4)).save(6)
        names = set(os.listdir(d))
        assert {t for t, _ in renames} | {".ckpt-journal-5.json"} <= names
        dst = models.new_alg(seed=3)
        assert Checkpointer(d, alg=dst).load(5) == 5  # the new save, from the journal
        assert {float(v.unique()) for v in models.snapshot(dst).values()} == {2.0}
    finally:
        writer.kill()
        writer.wait(30)
    Checkpointer(d, alg=models.new_alg(seed=4)).save(7)
    assert not [n for n in os.listdir(d) if n.startswith(".")]
    dst = models.new_alg(seed=3)
    assert Checkpointer(d, alg=dst).load(5) == 5
    assert {float(v.unique()) for v in models.snapshot(dst).values()} == {2.0}


def test_debris_of_this_process_is_removed(tmp_path):
    """A temporary file named after this very process (left by an earlier
    save of it that failed) is debris for its next save."""
    from alf.utils import _train_ckpt_files as files

    own = tmp_path / f".ckpt-tmp-{files._HOST}-{os.getpid()}-0000abcd-ckpt-3"
    own.write_bytes(b"x")
    Checkpointer(str(tmp_path), net=nn.Linear(1, 1)).save(1)
    assert not own.exists()


# ------------------------------------------------------------------ whole items


def _trained_adam(net, groups=1):
    params = list(net.parameters())
    if groups == 1:
        opt = torch.optim.Adam(params, lr=0.01)
    else:
        opt = torch.optim.Adam([{"params": params[:1]}, {"params": params[1:]}], lr=0.01)
    net(torch.ones(2, net.in_features)).pow(2).sum().backward()
    opt.step()
    return opt


def test_optimizer_item_that_does_not_match_is_refused(tmp_path):
    net = nn.Linear(3, 2)
    Checkpointer(str(tmp_path), net=net, opt=_trained_adam(net)).save(1)
    net2 = nn.Linear(3, 2)
    two_groups = _trained_adam(net2, groups=2)
    before = two_groups.state_dict()["state"][0]["exp_avg"].clone()
    with pytest.raises(RuntimeError, match="opt: checkpoint has 1 parameter groups, the optimizer 2"):
        Checkpointer(str(tmp_path), net=net2, opt=two_groups).load()
    assert torch.equal(two_groups.state_dict()["state"][0]["exp_avg"], before)
    assert not torch.equal(net2.weight, net.weight)  # nothing loaded


def test_item_saved_as_something_else_than_an_optimizer(tmp_path):
    """Step 1 has an item ``opt`` that is a replay buffer; loading it into an
    optimizer is a mismatch, not a crash inside torch."""
    Checkpointer(str(tmp_path), opt=models.DuckReplayBuffer()).save(1)
    net = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="opt: the checkpoint does not hold an optimizer state"):
        Checkpointer(str(tmp_path), opt=_trained_adam(net)).load()


def test_whole_item_missing_or_excluded(tmp_path):
    src = nn.Linear(3, 2)
    Checkpointer(str(tmp_path), net=src).save(1)
    net = nn.Linear(3, 2)
    opt = _trained_adam(net)
    state = opt.state_dict()["state"][0]["exp_avg"].clone()
    with pytest.raises(RuntimeError, match=r"missing keys: \['opt'\]"):
        Checkpointer(str(tmp_path), net=net, opt=opt).load()
    assert Checkpointer(str(tmp_path), net=net, opt=opt).load(strict=False) == 1
    assert torch.equal(net.weight, src.weight)
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], state)  # left as it was
    # with the optimizer excluded it is not missing either
    net3 = nn.Linear(3, 2)
    assert Checkpointer(str(tmp_path), net=net3, opt=opt).load(including_optimizer=False) == 1
    assert torch.equal(net3.weight, src.weight)


class ListState:
    def state_dict(self):
        return [torch.zeros(1)]

    def load_state_dict(self, state):
        pass


def test_item_whose_state_is_not_a_mapping(tmp_path):
    ck = Checkpointer(str(tmp_path), things=ListState())
    with pytest.raises(TypeError, match="'things': state_dict\\(\\) must return a mapping; got list"):
        ck.save(1)
    assert ck.checkpointed_steps() == []


class WithOptimizerAttribute(nn.Module):
    """A module holding its optimizer in a plain attribute (not ``_optimizers``)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.optimizer = torch.optim.SGD(self.lin.parameters(), lr=0.1, momentum=0.9)


def test_optimizer_attribute_of_a_module_goes_to_the_optimizer_file(tmp_path):
    src = WithOptimizerAttribute()
    src.lin(torch.ones(2, 3)).sum().backward()
    src.optimizer.step()
    Checkpointer(str(tmp_path), m=src).save(1)
    saved = plain_load(tmp_path / "ckpt-1-optimizer")["m"]
    assert list(saved) == ["optimizer"]
    assert "optimizer" not in plain_load(tmp_path / "ckpt-1")["m"]
    dst = WithOptimizerAttribute()
    assert Checkpointer(str(tmp_path), m=dst).load() == 1
    want = src.optimizer.state[src.lin.weight]["momentum_buffer"]
    torch.testing.assert_close(dst.optimizer.state[dst.lin.weight]["momentum_buffer"], want)
    assert torch.equal(dst.lin.weight, src.lin.weight)


def test_extract_from_a_file_that_is_not_a_dict(tmp_path):
    path = tmp_path / "ckpt-1"
    torch.save([1, 2], path)
    with pytest.raises(KeyError, match="'alg' matches nothing .* top-level keys are list"):
        extract_sub_state_dict_from_checkpoint("alg", str(path))
