"""The alf-plot command end to end on generated runs."""

import os
import subprocess
import sys
import sysconfig

import matplotlib.image as mpimg
import numpy as np
import pytest

from alf.utils._plot_cli import main

TAG = "Metrics_vs_EnvironmentSteps/AverageReturn"


@pytest.fixture
def runs(tmp_path, write_run):
    rng = np.random.default_rng(7)
    for method, slope in (("sac", 1.0), ("ppo", 0.5)):
        for seed in range(3):
            steps = np.arange(0, 5000, 50)
            write_run(
                f"{method}/seed{seed}/eval",
                TAG,
                steps,
                slope * steps / 100 + rng.normal(size=len(steps)),
            )
    return tmp_path


def test_end_to_end_png_of_requested_size(runs, capsys):
    out = runs / "fig.png"
    rc = main(
        [
            "-o",
            str(out),
            "-r",
            "env_steps_return",
            "-m",
            "SAC",
            str(runs / "sac/*/eval"),
            "-m",
            "PPO",
            str(runs / "ppo/seed0/eval"),
            str(runs / "ppo/seed[12]/eval"),
            "-s",
            "0.6",
            "-i",
            "CI_95",
            "--figsize",
            "5",
            "3",
            "--dpi",
            "60",
            "--title",
            "demo",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "reading SAC: 3/3 runs" in err and "reading PPO: 3/3 runs" in err
    img = mpimg.imread(str(out))
    assert img.shape[:2] == (180, 300) and img[..., :3].std() > 0.01


@pytest.mark.parametrize("ext, magic", [(".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_vector_outputs_with_tag_and_options(runs, ext, magic):
    out = runs / f"fig{ext}"
    rc = main(
        [
            "-o",
            str(out),
            "-t",
            TAG,
            "-m",
            "SAC",
            str(runs / "sac/*/eval"),
            "--x-steps",
            "0:4900:50",
            "-s",
            "5",
            "-i",
            "minmax",
            "--y-clipping",
            "-5",
            "60",
            "--y-range",
            "-10",
            "70",
            "--x-ticks",
            "0,2500,5000",
            "--x-scaled-and-aligned",
            "--x-range",
            "0",
            "5000",
            "--colors",
            "black",
            "--markers",
            "o",
            "--linestyle",
            "dashed",
            "--plot-mean-only",
            "--no-legend",
            "--x-label",
            "steps",
            "--y-label",
            "return",
            "-q",
            "-j",
            "1",
            "--verify-crc",
        ]
    )
    assert rc == 0
    assert out.read_bytes().lstrip().startswith(magic)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["-t", "missing/tag", "-m", "SAC", "{r}/sac/*/eval"],
            "tag 'missing/tag' not found in any of the runs",
        ),
        (["-r", "env_steps_return", "-m", "SAC", "{r}/sac"], "no TensorBoard event files"),
        (["-r", "env_steps_return", "-m", "SAC", "{r}/nothing*"], "matches nothing"),
        (
            ["-r", "env_steps_return", "-m", "SAC", "{r}/sac/*/eval", "--x-steps", "0:9999:5"],
            "reach outside",
        ),
        (["-r", "env_steps_return", "-m", "SAC", "{r}/sac/*/eval", "-s", "abc"], "--smoothing"),
        (["-r", "env_steps_return", "-m", "SAC"], "give the method name, then its runs"),
    ],
)
def test_errors_are_one_line_without_traceback(runs, capsys, args, message):
    argv = ["-o", str(runs / "x.png")] + [a.format(r=runs) for a in args]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("alf-plot: error: ")


def test_non_overlapping_runs_and_bad_output(tmp_path, write_run, capsys):
    a = write_run("a", TAG, range(0, 10), np.zeros(10))
    b = write_run("b", TAG, range(100, 110), np.zeros(10))
    assert main(["-o", str(tmp_path / "o.png"), "-r", "env_steps_return", "-m", "M", a, b]) == 1
    assert "do not overlap" in capsys.readouterr().err
    assert main(["-o", str(tmp_path / "o.jpg"), "-r", "env_steps_return", "-m", "M", a]) == 1
    assert "--output must end in .png, .pdf, .svg" in capsys.readouterr().err


def test_console_script_help_and_error_exit(runs):
    script = os.path.join(sysconfig.get_path("scripts"), "alf-plot")
    cmd = [script] if os.path.exists(script) else [sys.executable, "-m", "alf.utils._plot_cli"]
    help_text = subprocess.run(cmd + ["--help"], capture_output=True, text=True, check=True).stdout
    for option in (
        "--method",
        "--tag",
        "--reader",
        "--output",
        "--x-steps",
        "--smoothing",
        "--interval-mode",
        "--workers",
        "--verify-crc",
        "--figsize",
        "--dpi",
        "--title",
        "--x-label",
        "--y-label",
        "--y-clipping",
        "--y-range",
        "--x-ticks",
        "--x-scaled-and-aligned",
        "--x-range",
        "--linestyle",
        "--linewidth",
        "--std-alpha",
        "--colors",
        "--markers",
        "--plot-mean-only",
        "--legend-loc",
        "--no-legend",
        "--transparent",
        "--quiet",
    ):
        assert option in help_text
    bad = subprocess.run(
        cmd + ["-o", str(runs / "o.png"), "-t", "nope", "-m", "A", str(runs / "sac/seed0/eval")],
        capture_output=True,
        text=True,
    )
    assert (
        bad.returncode == 1 and "Traceback" not in bad.stderr and "'nope' not found" in bad.stderr
    )


@pytest.mark.parametrize(
    "size", [["--dpi", "10000000"], ["--figsize", "1e9", "1e9"], ["--figsize", "1e6", "4"]]
)
def test_figure_too_large_is_one_line(runs, capsys, size):
    argv = ["-o", str(runs / "x.png"), "-r", "env_steps_return", "-m", "SAC"]
    assert main(argv + [str(runs / "sac/seed0/eval")] + size) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("alf-plot: error: the figure would be ") and "--figsize" in err


def test_out_of_memory_while_drawing_is_one_line(runs, capsys, monkeypatch):
    from alf.utils import plot_tb_curves as ptc

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(ptc.CurvesPlotter, "plot", no_memory)
    argv = ["-o", str(runs / "x.png"), "-r", "env_steps_return", "-q", "-m", "SAC"]
    assert main(argv + [str(runs / "sac/seed0/eval"), "--dpi", "300"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("alf-plot: error: out of memory drawing a 1800 x 1200 pixel figure")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_reader_warnings_are_one_line(runs, capsys):
    import struct

    path = [p for p in (runs / "ppo/seed1/eval").iterdir() if "tfevents" in p.name][0]
    with open(path, "ab") as f:
        junk = b"\xff" * 8 + TAG.encode()  # holds the tag, does not parse as an Event
        # no valid CRC: read as a record whose length field is corrupted
        f.write(struct.pack("<Q", len(junk)) + b"\0" * 4 + junk + b"\0" * 4)
    argv = ["-o", str(runs / "x.png"), "-r", "env_steps_return", "-q", "-m", "PPO"]
    assert main(argv + [str(runs / "ppo/*/eval")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"alf-plot: warning: {path}: the length field of the record at byte"
    )
    # unchecked, it is read and does not parse
    assert main(["--no-verify-crc"] + argv + [str(runs / "ppo/*/eval")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"alf-plot: warning: {path}: record at byte")


def test_python_m_runs_the_command_with_documented_exit_statuses(runs):
    cmd = [sys.executable, "-m", "alf.utils.plot_tb_curves"]
    shown = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and "usage: alf-plot" in shown.stdout
    assert "--method" in shown.stdout and "--output" in shown.stdout
    # a usage error (unknown option, missing argument): argparse's status 2 and usage
    usage = subprocess.run(cmd + ["--no-such-option"], capture_output=True, text=True, timeout=300)
    assert usage.returncode == 2 and "usage: alf-plot" in usage.stderr
    assert "alf-plot: error: " in usage.stderr and "Traceback" not in usage.stderr
    missing = subprocess.run(cmd + ["-o", str(runs / "o.png")], capture_output=True, text=True)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    # a failure while running (a tag no run has): one error line and status 1
    eval_dir = str(runs / "sac/seed0/eval")
    failed = subprocess.run(
        cmd + ["-o", str(runs / "o.png"), "-t", "nope", "-m", "A", eval_dir],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith("alf-plot: error: ")
    done = subprocess.run(
        cmd + ["-o", str(runs / "ok.png"), "-r", "env_steps_return", "-m", "A", eval_dir],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and (runs / "ok.png").is_file()
