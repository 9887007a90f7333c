"""alf.utils.video_recorder.VideoRecorder on a real CartPole-v1, decoded back.

The MP4 files are decoded with imageio-ffmpeg's reader (ffmpeg itself) and
checked for frame count, size and content: the pixels of the rendered frames,
of the prediction-info panel and of the blank frames.
"""

import json
import os
import stat
import sys

import gymnasium
import imageio_ffmpeg
import numpy as np
import pytest
import torch

from alf.utils.video_recorder import VideoRecorder


def decode(path):
    """Return (fps, [frames uint8 [H, W, 3]]) of an MP4 file."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]
    return meta["fps"], frames


def mean_abs_diff(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


class Image:
    """Stand-in for alf.summary.render.Image: a uint8 [H, W, 3] array in ``data``."""

    def __init__(self, data):
        self.data = data


class OldGymEnv:
    """An old gym-style environment: ``render(mode)`` and ``metadata['render.modes']``."""

    metadata = {"render.modes": ["human", "rgb_array"], "video.frames_per_second": 10}

    def __init__(self, height=31, width=45):
        self.t = 0
        self.shape = (height, width, 3)

    def step(self):
        self.t += 1

    def render(self, mode="human"):
        if mode != "rgb_array":
            raise NotImplementedError(mode)
        frame = np.zeros(self.shape, np.uint8)
        frame[..., 1] = 40 * self.t  # green grows with time
        return frame


def cartpole():
    env = gymnasium.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    return env


def test_cartpole_episode_frame_count_size_and_tail(tmp_path):
    env = cartpole()
    path = tmp_path / "cartpole.mp4"
    rendered = []
    with VideoRecorder(env, path=str(path), last_step_repeats=2, append_blank_frames=3) as rec:
        assert rec.frames_per_sec == 50  # CartPole's metadata["render_fps"]
        rec.capture_frame()
        rendered.append(env.render())
        steps = 0
        while True:  # always push left: the pole falls within a few dozen steps
            _, _, terminated, truncated, _ = env.step(0)
            steps += 1
            done = terminated or truncated
            rec.capture_frame(is_last_step=done)
            rendered.append(env.render())
            if done:
                break
        assert not path.exists()  # the video appears only when it is complete
    env.close()

    fps, frames = decode(path)
    assert fps == 50
    assert len(frames) == 1 + steps + 2 + 3 == rec.frames_written
    assert all(f.shape == (400, 600, 3) for f in frames)
    for got, want in zip(frames, rendered):
        assert mean_abs_diff(got, want) < 2.0
    for repeat in frames[-5:-3]:
        assert mean_abs_diff(repeat, rendered[-1]) < 2.0
    for blank in frames[-3:]:
        assert blank.max() < 20
    meta = json.loads(path.with_suffix(".meta.json").read_text())
    assert meta["frames"] == len(frames) and meta["content_type"] == "video/mp4"
    assert (meta["height"], meta["width"]) == (400, 600)


def test_prediction_info_panel_beside_the_frame(tmp_path):
    env = cartpole()
    red = np.zeros((40, 30, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((20, 20, 3), np.uint8)
    blue[..., 2] = 255
    # flattening order: "a" then "b"; the tensor and the array are not images
    pred_info = {"a": Image(red), "b": [Image(blue), torch.ones(3), np.ones((4, 4, 3), np.uint8)]}
    path = tmp_path / "panel.mp4"
    rec = VideoRecorder(env, path=str(path), frames_per_sec=5)
    frames = []
    for _ in range(3):
        frame = rec.capture_env_frame()
        frames.append(frame)
        rec.cache_frame_and_pred_info(frame, pred_info)
        env.step(1)
    assert not path.exists()
    rec.generate_video_from_cache()
    rec.cache_frame_and_pred_info(frames[0], None, is_last_step=True)  # no images: fit, pad
    rec.clear_cache()  # ... dropped again
    rec.close()
    env.close()

    fps, decoded = decode(path)
    assert fps == 5 and len(decoded) == 3
    # two images: one row of two cells 400 high; red 40x30 -> 400x300, blue -> 400x400
    for got, want in zip(decoded, frames):
        assert got.shape == (400, 600 + 300 + 400, 3)
        assert mean_abs_diff(got[:, :600], want) < 2.0
        red_cell = got[8:-8, 608:892].astype(int)
        blue_cell = got[8:-8, 908:1292].astype(int)
        assert red_cell[..., 0].min() > 230 and red_cell[..., 1:].max() < 30
        assert blue_cell[..., 2].min() > 230 and blue_cell[..., :2].max() < 30


def test_frame_max_width_and_odd_sizes_old_gym_env(tmp_path):
    env = OldGymEnv(height=31, width=45)
    path = tmp_path / "old"
    image = Image(np.full((10, 10, 3), 200, np.uint8))
    rec = VideoRecorder(env, base_path=str(path), frame_max_width=38)
    assert rec.path == str(path) + ".mp4" and rec.frames_per_sec == 10
    for t in range(4):
        rec.capture_frame({"img": image}, is_last_step=t == 3)
        env.step()
    rec.close()
    fps, frames = decode(rec.path)
    # 45 + 31 (the 10x10 image scaled to 31x31) = 76 wide > 38: scaled to 38 x 15.5 -> 16
    # (rounded), then padded to even sizes: 16 x 38
    assert fps == 10 and len(frames) == 4
    assert all(f.shape == (16, 38, 3) for f in frames)
    greens = [float(f[2:-2, 2:18, 1].mean()) for f in frames]
    np.testing.assert_allclose(greens, [0, 40, 80, 120], atol=6)


def test_frames_of_another_size_are_fitted_into_the_first(tmp_path):
    env = OldGymEnv(height=20, width=40)
    rec = VideoRecorder(env, path=str(tmp_path / "fit.mp4"))
    small = np.full((20, 40, 3), 100, np.uint8)
    tall = np.full((40, 40, 3), 250, np.uint8)  # scaled to 20 x 20, then padded black
    rec.cache_frame_and_pred_info(small)
    rec.cache_frame_and_pred_info(tall)
    rec.close()  # close() encodes what is still cached
    _, frames = decode(tmp_path / "fit.mp4")
    assert [f.shape for f in frames] == [(20, 40, 3)] * 2
    assert abs(float(frames[1][4:16, 2:16].mean()) - 250) < 6
    assert float(frames[1][4:16, 24:38].mean()) < 10


def test_previous_video_stays_readable_until_close(tmp_path):
    path = tmp_path / "v.mp4"
    env = OldGymEnv()
    with VideoRecorder(env, path=str(path)) as rec:
        for _ in range(2):
            rec.capture_frame()
    with VideoRecorder(env, path=str(path)) as rec:
        for _ in range(5):
            rec.capture_frame()
        assert len(decode(path)[1]) == 2  # the old file, untouched while encoding
    assert len(decode(path)[1]) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.meta.json", "v.mp4"]


def test_files_get_the_permissions_open_gives(tmp_path):
    """The video and its metadata are readable as any file the user writes
    (0o666 less the umask), not private like a temporary file."""
    old = os.umask(0o022)
    try:
        with VideoRecorder(OldGymEnv(), path=str(tmp_path / "v.mp4")) as rec:
            rec.capture_frame()
    finally:
        os.umask(old)
    for name in ("v.mp4", "v.meta.json"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name


def test_disabled_and_empty_recorders_write_no_video(tmp_path):
    env = OldGymEnv()
    rec = VideoRecorder(env, path=str(tmp_path / "off.mp4"), enabled=False)
    assert not rec.functional
    rec.capture_frame()
    assert rec.capture_env_frame() is None
    rec.close()
    assert list(tmp_path.iterdir()) == []

    rec = VideoRecorder(env, path=str(tmp_path / "empty.mp4"), metadata={"run": 7})
    assert rec.functional
    rec.close()
    assert not rec.functional
    rec.close()
    meta = json.loads((tmp_path / "empty.meta.json").read_text())
    assert meta["empty"] is True and meta["run"] == 7 and meta["frames"] == 0
    assert not (tmp_path / "empty.mp4").exists()


def test_env_without_rgb_array_rendering_is_rejected(tmp_path):
    class NoneEnv(OldGymEnv):
        def render(self, mode="human"):
            return None  # what many environments render before reset()

    rec = VideoRecorder(NoneEnv(), path=str(tmp_path / "x.mp4"))
    with pytest.raises(ValueError, match=r"got NoneType \(environments render nothing before"):
        rec.capture_frame()
    rec.close()
    (tmp_path / "x.meta.json").unlink()
    env = gymnasium.make("CartPole-v1")  # render_mode None
    with pytest.raises(ValueError, match="env must render rgb_array frames.*render_mode=None"):
        VideoRecorder(env, path=str(tmp_path / "x.mp4"))
    env.close()

    class NoRgb(OldGymEnv):
        metadata = {"render.modes": ["human"]}

    with pytest.raises(ValueError, match=r"env must support rgb_array rendering.*\['human'\]"):
        VideoRecorder(NoRgb(), path=str(tmp_path / "x.mp4"))
    with pytest.raises(ValueError, match="env must have a render"):
        VideoRecorder(object(), path=str(tmp_path / "x.mp4"))

    class GrayEnv(OldGymEnv):
        def render(self, mode="human"):
            return np.zeros((8, 8), np.uint8)

    rec = VideoRecorder(GrayEnv(), path=str(tmp_path / "gray.mp4"))
    with pytest.raises(ValueError, match=r"env.render\(\) of GrayEnv must be a uint8 array"):
        rec.capture_frame()
    with pytest.raises(ValueError, match=r"frame must be a uint8 array \[H, W, 3\]"):
        rec.cache_frame_and_pred_info(np.zeros((4, 4, 3), np.float32))
    rec.close()
    assert list(tmp_path.iterdir()) == [tmp_path / "gray.meta.json"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(path="video.avi"), ValueError, "path must end with .mp4"),
        (dict(path="a.mp4", base_path="b"), ValueError, "at most one of path and base_path"),
        (dict(frames_per_sec=0), ValueError, "frames_per_sec must be > 0, got 0"),
        (dict(frames_per_sec="30"), TypeError, "frames_per_sec must be a real number, got str"),
        (dict(last_step_repeats=-1), ValueError, "last_step_repeats must be >= 0"),
        (dict(frame_max_width=1.5), TypeError, "frame_max_width must be an int"),
        (dict(metadata={"f": object()}), TypeError, "metadata must be JSON-serialisable"),
        (dict(metadata=[("run", 1)]), TypeError, "metadata must be a dict, got list"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        VideoRecorder(OldGymEnv(), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_missing_imageio_ffmpeg_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install alf-train-utils\[video\]"):
        VideoRecorder(OldGymEnv(), path=str(tmp_path / "x.mp4"))


def test_without_a_path_the_video_goes_to_a_temporary_file():
    """path=None: a fresh temporary .mp4 (as gym's recorder); removed again
    when no frame was recorded."""
    with VideoRecorder(OldGymEnv()) as rec:
        rec.capture_frame()
        rec.capture_frame()
    try:
        assert rec.path.endswith(".mp4") and len(decode(rec.path)[1]) == 2
    finally:
        os.remove(rec.path)
        os.remove(rec.path[: -len(".mp4")] + ".meta.json")
    with VideoRecorder(OldGymEnv()) as empty:
        assert os.path.exists(empty.path)  # reserved
    assert not os.path.exists(empty.path)
    os.remove(empty.path[: -len(".mp4")] + ".meta.json")


def test_disabled_recorder_caches_nothing(tmp_path):
    rec = VideoRecorder(OldGymEnv(), path=str(tmp_path / "off.mp4"), enabled=False)
    rec.cache_frame_and_pred_info(np.zeros((4, 4, 3), np.uint8), None, is_last_step=True)
    rec.generate_video_from_cache()
    rec.close()
    assert rec.frames_written == 0 and list(tmp_path.iterdir()) == []


def test_video_that_cannot_be_put_in_place_leaves_no_partial_file(tmp_path):
    """The target path turned out to be a folder: close() raises and removes
    its temporary file; the folder is untouched."""
    target = tmp_path / "taken.mp4"
    rec = VideoRecorder(OldGymEnv(), path=str(target))
    rec.capture_frame()
    target.mkdir()
    with pytest.raises(OSError):
        rec.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.mp4"]
    assert target.is_dir() and list(target.iterdir()) == []


def test_empty_frames_are_refused(tmp_path):
    class EmptyEnv(OldGymEnv):
        def render(self, mode="human"):
            return np.zeros((0, 5, 3), np.uint8)

    rec = VideoRecorder(EmptyEnv(), path=str(tmp_path / "e.mp4"))
    with pytest.raises(ValueError, match=r"must not be empty, got shape \(0, 5, 3\)"):
        rec.capture_frame()
    rec.close()
