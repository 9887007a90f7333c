"""alf.summary.images / video / embedding: real event and projector files,
decoded with Pillow and tensorboard's own protos."""

import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from google.protobuf import text_format
from PIL import Image, ImageSequence
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.projector import projector_config_pb2

from alf import summary

SIZE_GUIDANCE = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}


def _read(path):
    acc = EventAccumulator(str(path), size_guidance=SIZE_GUIDANCE)
    acc.Reload()
    return acc


@pytest.fixture
def writer(tmp_path):
    w = summary.create_summary_writer(str(tmp_path), flush_secs=1)
    summary.set_default_writer(w)
    summary.reset_global_counter()
    yield w
    summary.set_default_writer(None)
    summary.reset_global_counter()
    w.close()


def _hand_grid(images_hwc):
    """Tile [N, H, W, C] images row-major in ceil(sqrt(N)) columns (slow loop)."""
    n, h, w, c = images_hwc.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = (n + cols - 1) // cols
    out = np.zeros((rows * h, cols * w, c), np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        out[r * h : (r + 1) * h, q * w : (q + 1) * w] = images_hwc[i]
    return out


def test_images_nchw_float_grid(writer, tmp_path):
    rng = np.random.default_rng(1)
    data = rng.uniform(-0.2, 1.2, size=(5, 3, 4, 6)).astype(np.float32)
    summary.set_global_counter(7)
    with summary.scope("obs"):
        summary.images("frames", torch.tensor(data))
    writer.flush()
    event = _read(tmp_path).Images("obs/frames")[0]
    assert event.step == 7
    want = _hand_grid(np.rint(np.clip(data * 255, 0, 255)).astype(np.uint8).transpose(0, 2, 3, 1))
    assert (event.height, event.width) == want.shape[:2] == (8, 18)
    got = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "dataformats, shape, channels",
    [("NHWC", (2, 5, 3, 4), 4), ("HW", (6, 7), 1), ("CHW", (1, 3, 2), 1), ("NHW", (3, 2, 2), 1)],
)
def test_images_other_layouts(writer, tmp_path, dataformats, shape, channels):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, size=shape).astype(np.uint8)
    summary.images("img", data, dataformats=dataformats, step=3, walltime=55.0)
    writer.flush()
    event = _read(tmp_path).Images("img")[0]
    assert event.step == 3 and event.wall_time == 55.0
    nhwc = {
        "NHWC": lambda: data,
        "HW": lambda: data[None, :, :, None],
        "CHW": lambda: data.transpose(1, 2, 0)[None],
        "NHW": lambda: data[..., None],
    }[dataformats]()
    want = _hand_grid(nhwc)
    got = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    assert Image.open(io.BytesIO(event.encoded_image_string)).mode == {1: "L", 4: "RGBA"}[channels]


def test_images_bool_and_int_pixels(writer, tmp_path):
    mask = torch.tensor([[[[True, False], [False, True]]]])
    summary.images("mask", mask)
    summary.images("ints", torch.tensor([[[[-5, 300]]]]))
    writer.flush()
    acc = _read(tmp_path)
    got = np.asarray(Image.open(io.BytesIO(acc.Images("mask")[0].encoded_image_string)))
    np.testing.assert_array_equal(got, [[255, 0], [0, 255]])
    got = np.asarray(Image.open(io.BytesIO(acc.Images("ints")[0].encoded_image_string)))
    np.testing.assert_array_equal(got, [[0, 255]])


def test_images_bad_input(writer):
    with pytest.raises(ValueError, match="dataformats must be one of"):
        summary.images("x", torch.zeros(1, 3, 2, 2), dataformats="NCWH")
    with pytest.raises(
        ValueError, match=r"data must have 4 dims for dataformats 'NCHW'; got shape \[3, 2, 2\]"
    ):
        summary.images("x", torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match="data must have 1, 3 or 4 channels; got 2"):
        summary.images("x", torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match="at least one non-empty image"):
        summary.images("x", torch.zeros(0, 3, 2, 2))


def test_video_is_an_animated_gif(writer, tmp_path):
    rng = np.random.default_rng(3)
    # 2 videos of 4 gray frames: values on a coarse grid survive GIF palettes exactly
    data = (rng.integers(0, 4, size=(2, 4, 1, 3, 5)) * 85).astype(np.uint8)
    summary.video("clip", data, fps=10, step=2)
    writer.flush()
    event = _read(tmp_path).Images("clip")[0]
    assert event.step == 2 and (event.height, event.width) == (3, 10)
    gif = Image.open(io.BytesIO(event.encoded_image_string))
    assert gif.format == "GIF" and gif.info["loop"] == 0
    frames = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(gif)]
    assert len(frames) == 4
    for t, frame in enumerate(frames):
        np.testing.assert_array_equal(frame, _hand_grid(data[:, t].transpose(0, 2, 3, 1))[..., 0])
    gif.seek(1)
    assert gif.info["duration"] == 100  # 1000 ms / 10 fps


def test_video_rgb_float(writer, tmp_path):
    data = torch.zeros(1, 3, 3, 2, 2)
    for t in range(3):
        data[0, t, t] = 1.0  # frame t is pure red, green, blue
    summary.video("rgb", data)
    writer.flush()
    gif = Image.open(io.BytesIO(_read(tmp_path).Images("rgb")[0].encoded_image_string))
    colours = [tuple(np.asarray(f.convert("RGB"))[0, 0]) for f in ImageSequence.Iterator(gif)]
    assert colours == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def test_video_bad_input(writer):
    with pytest.raises(ValueError, match="fps must be a positive finite number; got 0"):
        summary.video("v", torch.zeros(1, 2, 3, 2, 2), fps=0)
    with pytest.raises(
        ValueError, match=r"data must be \[N, T, C, H, W\]; got shape \[2, 3, 2, 2\]"
    ):
        summary.video("v", torch.zeros(2, 3, 2, 2))
    with pytest.raises(ValueError, match="C in 1, 3 or 4"):
        summary.video("v", torch.zeros(1, 2, 2, 2, 2))


def test_video_without_pillow_names_the_extra(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        sys.modules["PIL"] = None  # makes `import PIL` fail
        import torch
        from alf import summary
        summary.set_default_writer(summary.create_summary_writer(sys.argv[1]))
        summary.images("still_works", torch.ones(1, 1, 2, 2))
        try:
            summary.video("v", torch.zeros(1, 2, 3, 2, 2))
        except ImportError as e:
            assert "alf-math[video]" in str(e), e
            print("ok")
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert len(_read(tmp_path).Images("still_works")) == 1


def _config(tmp_path):
    config = projector_config_pb2.ProjectorConfig()
    text_format.Parse((tmp_path / "projector_config.pbtxt").read_text(), config)
    return {e.tensor_name: e for e in config.embeddings}


def test_embedding_files(writer, tmp_path):
    rng = np.random.default_rng(4)
    points = rng.normal(size=(5, 3)).astype(np.float32)
    sprites = rng.uniform(size=(5, 3, 2, 2)).astype(np.float32)
    summary.set_global_counter(12)
    with summary.scope("latent"):
        summary.embedding("z", torch.tensor(points), metadata=list("abcde"), label_img=sprites)
    summary.embedding(
        "table", points[:2], step=1, metadata=[[1, "x"], [2, "y"]], metadata_header=["id", "name"]
    )
    config = _config(tmp_path)
    assert sorted(config) == ["latent/z:00012", "table:00001"]
    z = config["latent/z:00012"]
    assert z.tensor_path == "00012/latent%2fz/tensors.tsv"
    np.testing.assert_array_equal(np.loadtxt(tmp_path / z.tensor_path, delimiter="\t"), points)
    assert (tmp_path / z.metadata_path).read_text().split("\n") == list("abcde") + [""]
    assert list(z.sprite.single_image_dim) == [2, 2]
    sprite = np.asarray(Image.open(tmp_path / z.sprite.image_path))
    want = np.zeros((9, 2, 2, 3), np.uint8)  # a 3 x 3 square of 2 x 2 cells
    want[:5] = np.rint(sprites * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(sprite, _hand_grid(want))
    table = config["table:00001"]
    assert (tmp_path / table.metadata_path).read_text() == "id\tname\n1\tx\n2\ty\n"
    # the same tag and step again: replaced, others kept
    summary.embedding("table", np.ones((1, 2)), step=1)
    config = _config(tmp_path)
    assert sorted(config) == ["latent/z:00012", "table:00001"]
    assert not config["table:00001"].metadata_path
    np.testing.assert_array_equal(
        np.loadtxt(tmp_path / config["table:00001"].tensor_path, delimiter="\t", ndmin=2),
        [[1.0, 1.0]],
    )
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_embedding_bad_input_writes_nothing(writer, tmp_path):
    with pytest.raises(ValueError, match=r"data must be \[N, D\]; got shape \[3\]"):
        summary.embedding("e", torch.zeros(3))
    with pytest.raises(ValueError, match="metadata must have 2 entries"):
        summary.embedding("e", torch.zeros(2, 3), metadata=["a"])
    with pytest.raises(ValueError, match=r"metadata\[1\] must have 2 values"):
        summary.embedding(
            "e", torch.zeros(2, 3), metadata=[[1, 2], [3]], metadata_header=["a", "b"]
        )
    with pytest.raises(ValueError, match="label_img must hold 2 images"):
        summary.embedding("e", torch.zeros(2, 3), label_img=torch.zeros(3, 1, 2, 2))
    assert not (tmp_path / "projector_config.pbtxt").exists()
    assert not [p for p in os.listdir(tmp_path) if p[0].isdigit()]


def test_media_are_no_ops_without_recording(tmp_path):
    summary.set_default_writer(None)
    summary.images("x", torch.zeros(1, 3, 2, 2))
    summary.video("v", torch.zeros(1, 2, 3, 2, 2))
    summary.embedding("e", torch.zeros(2, 3))
    w = summary.create_summary_writer(str(tmp_path), flush_secs=1)
    summary.set_default_writer(w)
    try:
        with summary.record_if(False):
            summary.images("x", torch.zeros(1, 3, 2, 2))
            summary.embedding("e", torch.zeros(2, 3))
        w.flush()
    finally:
        summary.set_default_writer(None)
        w.close()
    assert not _read(tmp_path).Tags()["images"]
    assert not (tmp_path / "projector_config.pbtxt").exists()
