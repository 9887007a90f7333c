"""Record an environment's ``rgb_array`` frames, with the images of prediction
info beside them, into an MP4 file.

The MP4 is encoded with the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships
(``pip install alf-train-utils[video]``): no system ffmpeg, nothing downloaded at
run time. The video is written to a temporary file beside ``path`` and renamed
over it when :meth:`VideoRecorder.close` has finished it, so a crash never leaves
a half-written file at ``path``.
"""

import json
import os
import tempfile
from typing import Any, Callable, Dict, Generator, List, Optional, Tuple

import numpy as np

from alf.utils._train_atomic import atomic_write_bytes, commit_file, create_temp_file
from alf.utils._train_checks import check_int, check_real
from alf.utils._train_video_frames import (
    compose,
    extract_images,
    fit_into,
    limit_width,
    pad_to_even,
    to_rgb_frame,
)

__all__ = ["VideoRecorder"]

_INSTALL_HINT = "pip install alf-train-utils[video]"


def _import_imageio_ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise ImportError(
            f"VideoRecorder encodes MP4 files with imageio-ffmpeg, which is not installed: "
            f"{_INSTALL_HINT}"
        ) from exc
    return imageio_ffmpeg


def _renderer(env: Any) -> Callable[[], Any]:
    """A function returning the env's next rgb_array frame; ValueError if there is none."""
    render = getattr(env, "render", None)
    if not callable(render):
        raise ValueError(f"env must have a render() method, got {type(env).__name__}")
    metadata = getattr(env, "metadata", None) or {}
    if hasattr(env, "render_mode"):  # gymnasium (and gym >= 0.26): the mode is fixed at make()
        mode = env.render_mode
        if mode != "rgb_array":
            raise ValueError(
                f"env must render rgb_array frames: create it with render_mode='rgb_array' "
                f"(e.g. gymnasium.make(id, render_mode='rgb_array')); got render_mode={mode!r}"
            )
        return render
    modes = metadata.get("render_modes", metadata.get("render.modes", ()))
    if "rgb_array" not in modes:
        raise ValueError(
            f"env must support rgb_array rendering: its metadata lists render modes "
            f"{list(modes)!r}, without 'rgb_array'"
        )
    return lambda: render(mode="rgb_array")


def _env_fps(env: Any) -> float:
    metadata = getattr(env, "metadata", None) or {}
    fps = metadata.get("render_fps") or metadata.get("video.frames_per_second") or 30
    return float(fps)


def _video_path(path: Optional[str], base_path: Optional[str]) -> Tuple[str, bool]:
    if path is not None and base_path is not None:
        raise ValueError("give at most one of path and base_path")
    if base_path is not None:
        return os.fspath(base_path) + ".mp4", False
    if path is None:
        fd, tmp = tempfile.mkstemp(suffix=".mp4")
        os.close(fd)
        return tmp, True
    path = os.fspath(path)
    if not path.endswith(".mp4"):
        raise ValueError(f"path must end with .mp4 (the recorder writes MP4 files), got {path!r}")
    return path, False


class VideoRecorder:
    """A video recorder that renders frames and encodes them into an MP4 file.

    Besides the environment's frames, it plots prediction info: every image object
    in the ``pred_info`` nest given to :meth:`capture_frame` (an object whose
    ``data`` attribute is a uint8 array [h, w, 3], such as ALF's
    ``alf.summary.render.Image``; each algorithm adds such images to its
    prediction info to have them recorded) is drawn in a panel to the right of the
    frame. The ``n`` images fill a grid of ``ceil(sqrt(n))`` columns, each scaled
    to the height ``frame_height // rows``, on a white background. The first frame
    fixes the video size; later frames of another size are scaled to fit it and
    padded with black. Frames wider than ``frame_max_width`` are scaled down, and
    odd sizes are padded by one black row/column (H.264 needs even sizes).

    The environment follows the gymnasium API, created with
    ``render_mode="rgb_array"`` so that ``env.render()`` returns a uint8 array
    [H, W, 3]; old gym-style environments whose ``metadata["render.modes"]`` (or
    ``"render_modes"``) lists ``"rgb_array"`` are rendered with
    ``env.render(mode="rgb_array")``.

    Example::

        env = gymnasium.make("CartPole-v1", render_mode="rgb_array")
        with VideoRecorder(env, path="cartpole.mp4") as recorder:
            env.reset(seed=0)
            recorder.capture_frame()
            for _ in range(100):
                _, _, terminated, truncated, _ = env.step(env.action_space.sample())
                recorder.capture_frame(is_last_step=terminated or truncated)
                if terminated or truncated:
                    break

    Args:
        env (gymnasium.Env): the environment to render.
        frame_max_width (int): the max width of a video frame. Scale if the
            original width (frame and panel) is bigger than this.
        frames_per_sec (float): if None, use the env's ``metadata["render_fps"]``
            (gym: ``"video.frames_per_second"``), else 30.
        last_step_repeats (int): repeat such number of times for the last frame
            of each episode.
        append_blank_frames (int): If >0, will append such number of blank
            (black) frames at the end of the episode in the rendered video file. A
            negative value has the same effects as 0 and no blank frames will be
            appended.
        path (str): the video file, ending with ``.mp4``. At most one of ``path``
            and ``base_path``; with neither, a temporary file is created.
        base_path (str): the video file without its ``.mp4`` extension.
        metadata (dict): JSON-serialisable data written, with the frame count and
            rate, to ``<path without .mp4>.meta.json`` on :meth:`close`.
        enabled (bool): False makes every method a no-op (no file is written).

    Attributes:
        path (str): the video file.
        functional (bool): whether frames are being recorded (``enabled`` and not
            closed).

    Raises:
        ValueError: naming ``env`` if it cannot render ``rgb_array`` frames, or
            another argument that is out of range.
        TypeError: naming an argument of the wrong type (an int argument that
            is not an int, ``metadata`` that is not a JSON-serialisable dict).
        ImportError: naming ``pip install alf-train-utils[video]`` when
            imageio-ffmpeg is missing.
    """

    def __init__(
        self,
        env,
        frame_max_width=2560,
        frames_per_sec=None,
        last_step_repeats=0,
        append_blank_frames=0,
        path: Optional[str] = None,
        base_path: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        enabled: bool = True,
    ):
        frame_max_width = check_int(frame_max_width, "frame_max_width", 2)
        last_step_repeats = check_int(last_step_repeats, "last_step_repeats", 0)
        append_blank_frames = check_int(append_blank_frames, "append_blank_frames")
        if frames_per_sec is not None:
            check_real(frames_per_sec, "frames_per_sec", 0, exclusive_minimum=True)
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
            try:
                json.dumps(metadata)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"metadata must be JSON-serialisable ({exc})") from exc
        self.enabled = bool(enabled)
        self.env = env
        self._render: Optional[Callable[[], Any]] = None
        self._ffmpeg: Any = None  # the imageio_ffmpeg module (no annotations) once enabled
        if self.enabled:
            self._render = _renderer(env)
            self._ffmpeg = _import_imageio_ffmpeg()
        self._frame_max_width = frame_max_width
        self._fps = float(frames_per_sec) if frames_per_sec is not None else _env_fps(env)
        self._last_step_repeats = last_step_repeats
        self._append_blank_frames = max(0, append_blank_frames)
        self.path, self._temporary = (
            _video_path(path, base_path) if self.enabled else (path or base_path or "", False)
        )
        self.metadata: Dict[str, Any] = dict(metadata or {})
        self._frame_cache: List[np.ndarray] = []
        self._pred_info_cache: List[Any] = []
        self._last_step_cache: List[bool] = []
        # imageio_ffmpeg.write_frames: a generator that is sent the frames' bytes
        self._writer: Optional[Generator[None, Optional[bytes], None]] = None
        self._partial_path: Optional[str] = None
        self._size: Optional[Tuple[int, int]] = None  # (height, width) of the video
        self._frames_written = 0
        self._closed = False

    # ------------------------------------------------------------------ state

    @property
    def functional(self) -> bool:
        """Whether frames are recorded: ``enabled`` and not closed."""
        return self.enabled and not self._closed

    @property
    def frames_per_sec(self) -> float:
        """The frame rate of the video."""
        return self._fps

    @property
    def frames_written(self) -> int:
        """The number of frames encoded so far (repeats and blank frames included)."""
        return self._frames_written

    def __enter__(self) -> "VideoRecorder":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------ frames

    def capture_env_frame(self):
        """Return un-encoded env frame: ``env.render()``'s uint8 array [H, W, 3]
        (None when the recorder is not functional).

        Raises:
            ValueError: if the env returns anything but a uint8 [H, W, 3|4] array.
        """
        render = self._render
        if render is None or not self.functional:
            return None
        return to_rgb_frame(render(), f"env.render() of {type(self.env).__name__}")

    def capture_frame(self, pred_info=None, is_last_step=False):
        """Render self.env and add the resulting frame to the video. Also plot
        Image instances extracted from prediction info of policy_step.

        Args:
            pred_info (None|nest): prediction step info for displaying: any Image
                instance in the info nest will be recorded.
            is_last_step (bool): whether the current time step is the last step
                of the episode, either due to game over or time limits. The frame
                is then repeated ``last_step_repeats`` times and followed by
                ``append_blank_frames`` black frames.
        """
        if not self.functional:
            return
        frame = self.capture_env_frame()
        self._encode(frame, pred_info, is_last_step)

    def cache_frame_and_pred_info(self, frame, pred_info=None, is_last_step=False):
        """Cache the input frame and pred_info for video generation later.

        Args:
            frame (np.array): the environmental frame, uint8 [H, W, 3] (e.g. from
                :meth:`capture_env_frame`); it is copied.
            pred_info (None|nest): prediction step info for displaying: any Image
                instance in the info nest will be recorded.
            is_last_step (bool): whether this frame ends an episode (see
                :meth:`capture_frame`).
        """
        if not self.functional:
            return
        frame = to_rgb_frame(frame, "frame").copy()
        self._frame_cache.append(frame)
        self._pred_info_cache.append(pred_info)
        self._last_step_cache.append(bool(is_last_step))

    def clear_cache(self):
        """Clear the cached contents."""
        self._frame_cache = []
        self._pred_info_cache = []
        self._last_step_cache = []

    def generate_video_from_cache(self):
        """Generate the video from the cached frames. Also add the plot Image
        instances extracted from cached prediction info. The cache will be reset
        to empty afterwards."""
        if not self.functional:
            self.clear_cache()
            return
        cached = list(zip(self._frame_cache, self._pred_info_cache, self._last_step_cache))
        self.clear_cache()
        for frame, pred_info, is_last_step in cached:
            self._encode(frame, pred_info, is_last_step)

    # ------------------------------------------------------------------ encoding

    def _encode(self, frame: np.ndarray, pred_info: Any, is_last_step: bool) -> None:
        frame = compose(frame, extract_images(pred_info))
        frame = pad_to_even(limit_width(frame, self._frame_max_width))
        if self._writer is None or self._size is None:
            self._writer, self._size = self._start(frame.shape[0], frame.shape[1])
        writer = self._writer
        frame = fit_into(frame, *self._size)
        self._write(writer, frame, 1)
        if is_last_step:
            self._write(writer, frame, self._last_step_repeats)
            self._write(writer, np.zeros_like(frame), self._append_blank_frames)

    def _start(
        self, height: int, width: int
    ) -> Tuple[Generator[None, Optional[bytes], None], Tuple[int, int]]:
        """Start ffmpeg on a temporary file beside ``path``: the frame writer
        and the video's ``(height, width)``."""
        partial = create_temp_file(self.path)
        writer = self._ffmpeg.write_frames(
            partial,
            (width, height),
            fps=self._fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            quality=8,
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=["-f", "mp4"],
        )
        writer.send(None)  # starts ffmpeg
        self._partial_path = partial
        return writer, (height, width)

    def _write(
        self, writer: Generator[None, Optional[bytes], None], frame: np.ndarray, times: int
    ) -> None:
        if times <= 0:
            return
        data = np.ascontiguousarray(frame).tobytes()
        for _ in range(times):
            writer.send(data)
        self._frames_written += times

    def close(self):
        """Encode what is still cached, finish the MP4 and move it to ``path``;
        write ``<path without .mp4>.meta.json``. A recorder that captured no
        frame writes no video (its metadata says ``"empty": true``) and removes
        the temporary file it may have created. Closing twice does nothing."""
        if not self.functional:
            self._closed = True
            return
        try:
            self.generate_video_from_cache()
        finally:
            self._closed = True
            writer, self._writer = self._writer, None
            partial = self._partial_path
            if writer is not None and partial is not None:
                try:
                    writer.close()  # ffmpeg flushes and exits
                    commit_file(partial, self.path)
                except BaseException:
                    if os.path.exists(partial):
                        os.remove(partial)
                    raise
            elif self._temporary and os.path.exists(self.path):
                os.remove(self.path)
        self._write_metadata()

    def _write_metadata(self) -> None:
        meta = dict(self.metadata)
        meta.update(
            content_type="video/mp4",
            encoder="imageio-ffmpeg " + getattr(self._ffmpeg, "__version__", "?"),
            frames=self._frames_written,
            frames_per_sec=self._fps,
        )
        if self._frames_written == 0:
            meta["empty"] = True
        if self._size is not None:
            meta["height"], meta["width"] = self._size
        self.metadata = meta
        meta_path = os.path.splitext(self.path)[0] + ".meta.json"
        atomic_write_bytes(meta_path, json.dumps(meta, indent=1, sort_keys=True).encode())
