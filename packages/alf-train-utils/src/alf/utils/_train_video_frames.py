"""Frame arithmetic of :mod:`alf.utils.video_recorder`: checking, resizing and
laying out uint8 RGB frames (NumPy arrays [H, W, 3]); resizing runs through
``torch.nn.functional.interpolate`` (bilinear, antialiased when shrinking)."""

import math
from typing import Any, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

import alf.nest as nest

__all__ = [
    "PANEL_BACKGROUND",
    "compose",
    "extract_images",
    "fit_into",
    "limit_width",
    "pad_to_even",
    "resize",
    "to_rgb_frame",
]

#: Colour of the prediction-info panel around the plotted images (white, like
#: matplotlib figures).
PANEL_BACKGROUND = 255


def to_rgb_frame(array: Any, what: str) -> np.ndarray:
    """Return ``array`` as a C-contiguous uint8 array [H, W, 3].

    Accepts uint8 [H, W, 3], or [H, W, 4] (the alpha channel is dropped).

    Raises:
        ValueError: naming ``what`` for anything else.
    """
    if not isinstance(array, np.ndarray):
        hint = " (environments render nothing before reset())" if array is None else ""
        raise ValueError(
            f"{what} must be a uint8 array [H, W, 3] (an rgb_array frame), got "
            f"{type(array).__name__}{hint}"
        )
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(
            f"{what} must be a uint8 array [H, W, 3] (an rgb_array frame), got "
            f"{array.dtype} {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{what} must not be empty, got shape {array.shape}")
    return np.ascontiguousarray(array[:, :, :3])


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a uint8 [h, w, 3] image to [height, width, 3] (bilinear)."""
    if image.shape[:2] == (height, width):
        return image
    t = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).to(torch.float32)
    shrink = height < image.shape[0] or width < image.shape[1]
    t = F.interpolate(
        t, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink
    )
    return t.round_().clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0).contiguous().numpy()


def _is_image(value: Any) -> bool:
    data = getattr(value, "data", None)
    return (
        not isinstance(value, (np.ndarray, torch.Tensor))
        and isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 3
        and data.shape[2] in (3, 4)
        and data.shape[0] > 0
        and data.shape[1] > 0
    )


def extract_images(pred_info: Any) -> List[np.ndarray]:
    """The images of ``pred_info``: the ``data`` arrays (uint8 [H, W, 3|4]) of its
    leaves that are image objects such as ALF's ``alf.summary.render.Image``, in
    nest flattening order."""
    if pred_info is None:
        return []
    return [
        to_rgb_frame(leaf.data, "an Image in pred_info")
        for leaf in nest.flatten(pred_info)
        if _is_image(leaf)
    ]


def compose(frame: np.ndarray, images: Sequence[np.ndarray]) -> np.ndarray:
    """Put the prediction-info panel to the right of ``frame``.

    The ``n`` images fill a grid of ``ceil(sqrt(n))`` columns and
    ``ceil(n / columns)`` rows, row by row; each is scaled (aspect ratio kept) to
    the height ``frame_height // rows``. The panel is as high as the frame and as
    wide as its widest row, on a white background.

    Returns:
        uint8 [H, W + panel_width, 3]; ``frame`` itself when there is no image.
    """
    if not images:
        return frame
    height = frame.shape[0]
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cell_h = max(1, height // rows)
    scaled = [
        resize(img, cell_h, max(1, round(img.shape[1] * cell_h / img.shape[0]))) for img in images
    ]
    grid = [scaled[r * cols : (r + 1) * cols] for r in range(rows)]
    panel_w = max(sum(img.shape[1] for img in row) for row in grid)
    panel = np.full((height, panel_w, 3), PANEL_BACKGROUND, dtype=np.uint8)
    for r, row in enumerate(grid):
        x = 0
        for img in row:
            panel[r * cell_h : (r + 1) * cell_h, x : x + img.shape[1]] = img
            x += img.shape[1]
    return np.concatenate([frame, panel], axis=1)


def limit_width(frame: np.ndarray, max_width: int) -> np.ndarray:
    """Scale ``frame`` down (aspect ratio kept) when it is wider than ``max_width``."""
    h, w = frame.shape[:2]
    if w <= max_width:
        return frame
    return resize(frame, max(1, round(h * max_width / w)), max_width)


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Pad the bottom/right with one black row/column where needed so that both
    sizes are even (H.264 with 4:2:0 chroma needs it)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))


def fit_into(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale ``frame`` to fit [height, width] (aspect ratio kept) and pad the rest
    (bottom/right) with black: how a frame whose size differs from the video's
    first frame is placed."""
    if frame.shape[:2] == (height, width):
        return frame
    h, w = frame.shape[:2]
    scale = min(height / h, width / w)
    new_h = min(height, max(1, round(h * scale)))
    new_w = min(width, max(1, round(w * scale)))
    out = np.zeros((height, width, 3), dtype=np.uint8)
    out[:new_h, :new_w] = resize(frame, new_h, new_w)
    return out
