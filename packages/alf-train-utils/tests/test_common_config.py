"""Configuration files (the configuration half of alf.utils.common): finding,
parsing, writing and summarizing gin configurations."""

import os
import re

import gin
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import alf.summary
from alf.utils import _common_config
from alf.utils._common_config import (
    copy_gin_configs,
    get_conf_file,
    get_gin_confg_strs,
    get_gin_file,
    parse_conf_file,
    read_conf_file,
    summarize_config,
    summarize_gin_config,
    write_config,
    write_gin_configs,
)

_MODULE = "alf_train_utils_tests.common_config"


@gin.configurable(module=_MODULE)
def cc_net(hidden=32, activation="relu", lr=1e-3):
    return hidden, activation, lr


@gin.configurable(module=_MODULE)
def cc_unused(depth=2):
    return depth


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _bindings():
    """Every bound value, as ``{"scope/name.param": value}``, read through
    gin's public query API from gin's own config string."""
    out = {}
    for line in gin.config_str().splitlines():
        m = re.match(r"^([\w/.]+) = ", line)
        if m:
            out[m[1]] = gin.query_parameter(m[1])
    return out


def _open_mode():
    """The permission bits ``open()`` gives a new file (0o666 less the umask)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _no_temp_files(folder):
    return [n for n in os.listdir(folder) if n.startswith(".") or n.endswith(".tmp")] == []


# ---- finding the config file -----------------------------------------------------------
def test_get_conf_file(tmp_path):
    assert get_conf_file() is None  # nothing given, no absl flag defined
    assert get_conf_file(conf="~/x.py") == os.path.expanduser("~/x.py")
    assert get_conf_file(root_dir=tmp_path, conf="a.py", gin_file="b.gin") == "a.py"
    assert get_conf_file(gin_file="b.gin") == "b.gin"
    assert get_conf_file(gin_file=["b.gin"]) == "b.gin"
    with pytest.raises(ValueError, match="gin_file"):
        get_conf_file(gin_file=["a.gin", "b.gin"])
    assert get_conf_file(root_dir=tmp_path) is None
    (tmp_path / "configured.gin").write_text("")
    assert get_conf_file(root_dir=tmp_path) == str(tmp_path / "configured.gin")
    (tmp_path / "alf_config.py").write_text("")
    assert get_conf_file(root_dir=str(tmp_path)) == str(tmp_path / "alf_config.py")
    with pytest.raises(TypeError, match="root_dir"):
        get_conf_file(root_dir=3)


def test_get_gin_file(tmp_path):
    assert get_gin_file() == ""
    assert get_gin_file(gin_file="a.gin") == ["a.gin"]
    assert get_gin_file(gin_file=("a.gin", "b.gin")) == ["a.gin", "b.gin"]
    with pytest.raises(FileNotFoundError, match="root_dir"):
        get_gin_file(root_dir=tmp_path)
    for name in ("z.gin", "a.gin", "m.txt"):
        (tmp_path / name).write_text("")
    assert get_gin_file(root_dir=tmp_path) == [str(tmp_path / "a.gin"), str(tmp_path / "z.gin")]
    with pytest.raises(TypeError, match="gin_file"):
        get_gin_file(gin_file=[1])


def test_read_conf_file(tmp_path):
    assert read_conf_file(tmp_path) is None
    (tmp_path / "configured.gin").write_text("cc_net.hidden = 8\n")
    assert read_conf_file(str(tmp_path)) == "cc_net.hidden = 8\n"
    other = tmp_path / "other.gin"
    other.write_text("x")
    assert read_conf_file(tmp_path, gin_file=str(other)) == "x"
    with pytest.raises(FileNotFoundError):
        read_conf_file(tmp_path, conf=str(tmp_path / "missing.py"))


# ---- parsing ----------------------------------------------------------------------------
def test_parse_gin_file_with_include_and_params(tmp_path):
    (tmp_path / "base.gin").write_text("cc_net.hidden = 16\ncc_net.activation = 'tanh'\n")
    conf = tmp_path / "exp.gin"
    conf.write_text(f"include '{tmp_path / 'base.gin'}'\ncc_net.lr = 0.5\n")
    parse_conf_file(str(conf), gin_params=["cc_net.hidden = 64"], conf_params="cc_net.lr = 0.25")
    assert cc_net() == (64, "tanh", 0.25)
    assert not gin.config_is_locked()  # later imports may still register configurables


def test_gin_file_is_parsed_not_executed(tmp_path):
    marker = tmp_path / "marker"
    conf = tmp_path / "evil.gin"
    conf.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    with pytest.raises(SyntaxError):  # gin's parse error
        parse_conf_file(conf)
    assert not marker.exists()


def test_parse_python_file_runs_it_then_applies_params(tmp_path):
    conf = tmp_path / "exp_conf.py"
    conf.write_text(
        "import gin\n"
        "assert __name__ == '__alf_config__'\n"
        f"gin.bind_parameter('{_MODULE}.cc_net.hidden', 128)\n"
        "gin.parse_config(\"cc_net.activation = 'elu'\")\n"
    )
    parse_conf_file(conf)
    assert cc_net() == (128, "elu", 1e-3)
    gin.clear_config()
    parse_conf_file(
        conf, gin_params="cc_net.hidden = 1", conf_params=["cc_net.hidden = 2", "cc_net.lr = 3.0"]
    )
    assert cc_net() == (2, "elu", 3.0)  # conf_params after gin_params, both after the file


def test_parse_bad_input(tmp_path):
    with pytest.raises(ValueError, match="conf_file"):
        parse_conf_file(tmp_path / "x.yaml")
    with pytest.raises(FileNotFoundError, match="conf_file"):
        parse_conf_file(tmp_path / "x.gin")
    with pytest.raises(TypeError, match="conf_file"):
        parse_conf_file(None)
    (tmp_path / "ok.gin").write_text("")
    with pytest.raises(TypeError, match="gin_params"):
        parse_conf_file(tmp_path / "ok.gin", gin_params=[1])
    assert _bindings() == {}  # nothing was parsed


# ---- writing ----------------------------------------------------------------------------
def test_write_gin_configs_round_trip(tmp_path):
    gin.parse_config("cc_net.hidden = 7\ncc_unused.depth = 5\n")
    assert cc_net(lr=0.1) == (7, "relu", 0.1)
    root = tmp_path / "run"
    write_gin_configs(str(root), "/somewhere/else/configured.gin")  # only the base name counts
    text = (root / "configured.gin").read_text()
    assert "cc_net.hidden = 7" in text
    assert "cc_net.activation = 'relu'" in text  # operative defaults
    inoperative = text[text.index("# Inoperative configuration") :]
    assert "cc_unused.depth = 5" in inoperative  # bound, never called
    assert _no_temp_files(root)
    assert os.stat(root / "configured.gin").st_mode & 0o777 == _open_mode()
    expected = {"cc_net.hidden": 7, "cc_net.activation": "relu", "cc_unused.depth": 5}
    gin.clear_config()
    gin.parse_config_file(str(root / "configured.gin"))
    assert _bindings() == expected


def test_copy_gin_configs(tmp_path):
    a, b = tmp_path / "a.gin", tmp_path / "sub" / "b.gin"
    b.parent.mkdir()
    a.write_text("A")
    b.write_text("B")
    root = tmp_path / "run"
    copy_gin_configs(str(root), None)
    assert not root.exists()
    copy_gin_configs(str(root), [str(a), b])
    assert (root / "a.gin").read_text() == "A" and (root / "b.gin").read_text() == "B"
    assert _no_temp_files(root)
    (tmp_path / "sub" / "a.gin").write_text("other")
    with pytest.raises(ValueError, match="a.gin"):
        copy_gin_configs(str(tmp_path / "run2"), [a, tmp_path / "sub" / "a.gin"])
    with pytest.raises(FileNotFoundError, match="missing"):
        copy_gin_configs(str(tmp_path / "run2"), [a, tmp_path / "missing.gin"])
    assert not (tmp_path / "run2").exists()  # checked before anything is written
    copy_gin_configs(root, [root / "a.gin"])  # copying a file onto itself keeps it
    assert (root / "a.gin").read_text() == "A"


def test_write_config_python_file_reproduces_the_configuration(tmp_path):
    conf = tmp_path / "exp_conf.py"
    conf.write_text("import gin\ngin.parse_config('cc_net.hidden = 3')\n")
    params = ["cc_net.lr = 0.125", "cc_net.activation = 'it''s'".replace("''", "\\'")]
    parse_conf_file(conf, conf_params=params)
    first = _bindings()
    root = tmp_path / "run"
    write_config(str(root), conf_file=str(conf), conf_params=params)
    written = (root / "alf_config.py").read_text()
    assert written.startswith(conf.read_text())
    gin.clear_config()
    parse_conf_file(root / "alf_config.py")  # found there by get_conf_file later on
    assert _bindings() == first
    assert get_conf_file(root_dir=root) == str(root / "alf_config.py")
    assert _no_temp_files(root)


def test_write_config_gin_or_none_writes_configured_gin(tmp_path):
    gin.parse_config("cc_net.hidden = 9")
    cc_net()
    write_config(tmp_path / "a", conf_file=str(tmp_path / "exp.gin"))
    write_config(tmp_path / "b")  # no config file at all
    for run in ("a", "b"):
        assert "cc_net.hidden = 9" in (tmp_path / run / "configured.gin").read_text()


# ---- markdown and summaries ---------------------------------------------------------------
def test_get_gin_confg_strs_markdown():
    gin.parse_config("cc_net.hidden = 4\ncc_unused.depth = 1\n")
    cc_net()
    operative, inoperative = get_gin_confg_strs()
    op_lines = operative.splitlines()
    assert op_lines[0].startswith("All parameter values used")
    assert "#### Parameters for cc_net:" in op_lines
    assert "    cc_net.hidden = 4" in op_lines  # a Markdown code line
    assert "    cc_net.activation = 'relu'" in op_lines
    assert not any(line.startswith("# ===") for line in op_lines)
    in_lines = inoperative.splitlines()
    assert "#### Parameters for cc_unused:" in in_lines
    assert "    cc_unused.depth = 1" in in_lines
    assert "cc_net" not in inoperative


@pytest.fixture
def writer(tmp_path):
    w = alf.summary.create_summary_writer(str(tmp_path / "tb"), flush_secs=1)
    alf.summary.set_default_writer(w)
    alf.summary.set_global_counter(5)
    yield w
    alf.summary.set_default_writer(None)
    alf.summary.reset_global_counter()
    w.close()


def _texts(folder):
    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        (event,) = acc.Tensors(tag)
        out[tag] = (event.step, event.tensor_proto.string_val[0].decode())
    return out


def test_summarize_gin_config(writer, tmp_path):
    gin.parse_config("cc_net.hidden = 4\ncc_unused.depth = 1\n")
    cc_net()
    summarize_gin_config()
    writer.flush()
    texts = _texts(tmp_path / "tb")
    operative, inoperative = get_gin_confg_strs()
    assert texts == {
        "gin/operative_config/text_summary": (5, operative),
        "gin/inoperative_config/text_summary": (5, inoperative),
    }


def test_summarize_config_python_conf_tables(writer, tmp_path):
    conf = tmp_path / "exp_conf.py"
    conf.write_text("")
    gin.parse_config("cc_net.activation = '<b>'\ncc_unused.depth = 1\n")
    cc_net()
    summarize_config(conf_file=str(conf))
    writer.flush()
    texts = _texts(tmp_path / "tb")
    step, table = texts["config/operative_config/text_summary"]
    assert step == 5
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", table)
    assert rows == [
        ("cc_net.activation", "&#x27;&lt;b&gt;&#x27;"),  # HTML-escaped repr
        ("cc_net.hidden", "32"),
        ("cc_net.lr", "0.001"),
    ]
    _, inoperative = texts["config/inoperative_config/text_summary"]
    assert re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", inoperative) == [
        ("cc_unused.depth", "1")
    ]


def test_summarize_config_gin_conf_is_summarize_gin_config(writer, tmp_path):
    gin.parse_config("cc_net.hidden = 4")
    cc_net()
    summarize_config(conf_file=str(tmp_path / "x.gin"))
    writer.flush()
    assert sorted(_texts(tmp_path / "tb")) == [
        "gin/inoperative_config/text_summary",
        "gin/operative_config/text_summary",
    ]


def test_public_names_report_alf_utils_common():
    from alf.utils import common

    for name in _common_config.__all__:
        assert getattr(common, name) is getattr(_common_config, name)
        assert getattr(common, name).__module__ == "alf.utils.common"


# ---- absl flags as the fallback -------------------------------------------------------------
@pytest.fixture
def absl_flags(tmp_path):
    """ALF's launcher flags defined and parsed on absl's global FLAGS; removed
    afterwards."""
    from absl import flags

    names = ["root_dir", "conf", "gin_file", "gin_param", "conf_param"]
    flags.DEFINE_string("root_dir", None, "root")
    flags.DEFINE_string("conf", None, "conf")
    flags.DEFINE_multi_string("gin_file", None, "gin files")
    flags.DEFINE_multi_string("gin_param", None, "gin bindings")
    flags.DEFINE_multi_string("conf_param", None, "conf bindings")
    yield flags.FLAGS
    for name in names:
        delattr(flags.FLAGS, name)


def test_absl_flags_are_the_fallback(absl_flags, tmp_path):
    conf = tmp_path / "exp.gin"
    conf.write_text("cc_net.hidden = 5\n")
    absl_flags(
        [
            "prog",
            f"--root_dir={tmp_path}",
            "--gin_param=cc_net.lr = 0.5",
            "--conf_param=cc_net.activation = 'x'",
        ]
    )
    assert get_conf_file() is None  # no conf, no gin_file; root_dir holds neither file
    assert get_gin_file() == [str(conf)]
    (tmp_path / "configured.gin").write_text("")
    assert get_conf_file() == str(tmp_path / "configured.gin")
    absl_flags["conf"].value = str(conf)
    assert get_conf_file() == str(conf)
    assert get_conf_file(conf="explicit.py") == "explicit.py"  # arguments win
    parse_conf_file(get_conf_file())
    assert cc_net() == (5, "x", 0.5)
    gin.clear_config()
    parse_conf_file(conf, gin_params=[], conf_params=[])  # explicit empty lists: no flags
    assert cc_net() == (5, "relu", 1e-3)
    absl_flags["conf"].value = None
    absl_flags["gin_file"].value = [str(conf)]
    assert get_conf_file() == str(conf)
    assert get_gin_file() == [str(conf)]


def test_absl_gin_file_flag_defined_but_empty(absl_flags):
    """gin_file is a launcher flag here but was not given, and no root_dir is
    known: an error naming what to give, not an empty answer."""
    absl_flags(["prog"])
    with pytest.raises(ValueError, match="gin_file is not set; give root_dir"):
        get_gin_file()


# ---- more bad input and edge cases --------------------------------------------------------
def test_empty_paths_are_refused(tmp_path):
    with pytest.raises(ValueError, match="conf must be a non-empty path"):
        get_conf_file(conf="")
    with pytest.raises(ValueError, match="root_dir must be a non-empty path"):
        write_gin_configs("", "configured.gin")
    with pytest.raises(ValueError, match="gin_file must end with a file name"):
        write_gin_configs(str(tmp_path), str(tmp_path) + os.sep)
    assert os.listdir(tmp_path) == []


def test_copy_gin_configs_takes_one_path(tmp_path):
    a = tmp_path / "a.gin"
    a.write_text("A")
    copy_gin_configs(str(tmp_path / "run"), a)
    assert (tmp_path / "run" / "a.gin").read_text() == "A"
    with pytest.raises(TypeError, match="gin_files must be None or a list of paths; got int"):
        copy_gin_configs(str(tmp_path / "run"), 3)


def test_python_config_without_params_is_written_as_it_is(tmp_path):
    conf = tmp_path / "exp_conf.py"
    conf.write_text("x = 1\n")
    write_config(str(tmp_path / "run"), conf_file=str(conf))
    assert (tmp_path / "run" / "alf_config.py").read_text() == "x = 1\n"


def test_summarize_config_leaves_out_macros_and_an_empty_inoperative_table(writer, tmp_path):
    conf = tmp_path / "exp_conf.py"
    conf.write_text("")
    gin.parse_config("HIDDEN = 9\ncc_net.hidden = %HIDDEN\ncc_net.lr = 0.5\n")
    assert cc_net() == (9, "relu", 0.5)
    summarize_config(conf_file=str(conf))
    writer.flush()
    texts = _texts(tmp_path / "tb")
    assert sorted(texts) == ["config/operative_config/text_summary"]  # nothing inoperative
    _, table = texts["config/operative_config/text_summary"]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", table)
    assert [name for name, _ in rows] == ["cc_net.activation", "cc_net.hidden", "cc_net.lr"]
