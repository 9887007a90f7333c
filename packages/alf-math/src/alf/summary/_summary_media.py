"""Encoders behind ``alf.summary.images``, ``video`` and ``embedding``.

Private: PNG encoding (standard library ``zlib`` only), image grids, GIF
encoding (Pillow, the ``video`` extra) and the embedding-projector files.
"""

import os
import struct
import tempfile
import zlib
from typing import Any, List, Optional, Sequence

import numpy as np
import torch

__all__: List[str] = []

#: The layouts ``images`` accepts, as the axes they name.
IMAGE_FORMATS = ("NCHW", "NHWC", "CHW", "HWC", "HW", "NHW")

PROJECTOR_CONFIG = "projector_config.pbtxt"


def to_numpy(data: Any, name: str) -> np.ndarray:
    """``data`` (Tensor or array-like) as a NumPy array (bfloat16 -> float32)."""
    if isinstance(data, torch.Tensor):
        data = data.detach()
        if data.dtype == torch.bfloat16:
            data = data.float()
        return data.cpu().numpy()
    try:
        return np.asarray(data)
    except Exception as e:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be a Tensor or an array; got {type(data).__name__}") from e


def to_uint8(pixels: np.ndarray, name: str) -> np.ndarray:
    """Pixels as uint8: floats in [0, 1] are scaled by 255 and rounded,
    integers are taken as 0..255, bools as 0/255; out-of-range values are
    clipped."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8) * 255
    if np.issubdtype(pixels.dtype, np.integer):
        return np.clip(pixels, 0, 255).astype(np.uint8)
    if np.issubdtype(pixels.dtype, np.floating):
        scaled = np.nan_to_num(pixels.astype(np.float64) * 255.0, nan=0.0)
        return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)
    raise TypeError(f"{name} must hold numbers; got dtype {pixels.dtype}")


def images_to_nhwc(data: Any, dataformats: str, name: str = "data") -> np.ndarray:
    """Images in layout ``dataformats`` as a uint8 ``[N, H, W, C]`` array
    with C in 1 (gray), 3 (RGB) or 4 (RGBA)."""
    if dataformats not in IMAGE_FORMATS:
        raise ValueError(f"dataformats must be one of {IMAGE_FORMATS}; got {dataformats!r}")
    array = to_numpy(data, name)
    if array.ndim != len(dataformats):
        raise ValueError(
            f"{name} must have {len(dataformats)} dims for dataformats {dataformats!r}; "
            f"got shape {list(array.shape)}"
        )
    fmt = dataformats
    if "N" not in fmt:
        array, fmt = array[None], "N" + fmt
    if "C" not in fmt:
        array, fmt = array[..., None], fmt + "C"
    array = np.transpose(array, [fmt.index(axis) for axis in "NHWC"])
    if array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{name} must have 1, 3 or 4 channels; got {array.shape[-1]} "
            f"(shape {list(array.shape)} as NHWC)"
        )
    if array.shape[0] == 0 or array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(
            f"{name} must hold at least one non-empty image; got shape {list(array.shape)}"
        )
    return to_uint8(array, name)


def grid(frames: np.ndarray) -> np.ndarray:
    """Tile ``[..., N, H, W, C]`` images into ``[..., rows*H, cols*W, C]``
    with ``cols = ceil(sqrt(N))``, row-major, unused cells black."""
    n, h, w, c = frames.shape[-4:]
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    lead = frames.shape[:-4]
    padded = np.zeros(lead + (rows * cols, h, w, c), dtype=frames.dtype)
    padded[..., :n, :, :, :] = frames
    padded = padded.reshape(lead + (rows, cols, h, w, c))
    k = len(lead)
    order = list(range(k)) + [k, k + 2, k + 1, k + 3, k + 4]
    return padded.transpose(order).reshape(lead + (rows * h, cols * w, c))


def encode_png(image: np.ndarray) -> bytes:
    """A PNG file of a uint8 ``[H, W, C]`` image (C in 1, 2, 3, 4)."""
    h, w, c = image.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = np.ascontiguousarray(image).reshape(h, w * c)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def encode_gif(frames: np.ndarray, fps: float) -> bytes:
    """An animated GIF (looping) of uint8 ``[T, H, W, C]`` frames."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(
            "alf.summary.video needs Pillow to encode GIFs: pip install 'alf-math[video]'"
        ) from e
    import io

    if frames.shape[-1] == 1:
        pictures = [Image.fromarray(np.ascontiguousarray(f[..., 0])) for f in frames]
    else:
        pictures = [Image.fromarray(np.ascontiguousarray(f[..., :3])) for f in frames]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=max(1, int(round(1000.0 / fps))),
        loop=0,
    )
    return buffer.getvalue()


def write_atomically(path: str, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file, fsync and
    rename, so ``path`` holds either its old or its new content."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def encode_tag(tag: str) -> str:
    """``tag`` as one folder name (``%``, ``/`` and ``\\`` escaped as
    ``%25``, ``%2f``, ``%5c``: the layout torch's ``add_embedding`` uses)."""
    return tag.replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")


def _tsv_value(value: Any) -> str:
    return str(value).replace("\t", " ").replace("\n", " ")


def write_embedding(
    logdir: str,
    tag: str,
    step: int,
    matrix: np.ndarray,
    metadata: Optional[Sequence[Any]],
    sprite: Optional[np.ndarray],
    metadata_header: Optional[Sequence[Any]],
) -> None:
    """Write the projector files of one embedding under ``logdir`` and add
    (or replace) its entry in ``logdir/projector_config.pbtxt``."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    subdir = f"{step:05d}/{encode_tag(tag)}"
    folder = os.path.join(logdir, subdir)
    os.makedirs(folder, exist_ok=True)
    rows = "".join("\t".join(repr(float(v)) for v in row) + "\n" for row in matrix)
    write_atomically(os.path.join(folder, "tensors.tsv"), rows.encode())
    info = projector_config_pb2.EmbeddingInfo(
        tensor_name=f"{tag}:{step:05d}", tensor_path=f"{subdir}/tensors.tsv"
    )
    if metadata is not None:
        if metadata_header:
            lines = ["\t".join(_tsv_value(h) for h in metadata_header)]
            lines += ["\t".join(_tsv_value(v) for v in row) for row in metadata]
        else:
            lines = [_tsv_value(v) for v in metadata]
        write_atomically(os.path.join(folder, "metadata.tsv"), ("\n".join(lines) + "\n").encode())
        info.metadata_path = f"{subdir}/metadata.tsv"
    if sprite is not None:
        n, h, w, _ = sprite.shape
        side = int(np.ceil(np.sqrt(n)))
        square = np.zeros((side * side, h, w, sprite.shape[-1]), np.uint8)
        square[:n] = sprite
        write_atomically(os.path.join(folder, "sprite.png"), encode_png(grid(square)))
        info.sprite.image_path = f"{subdir}/sprite.png"
        info.sprite.single_image_dim.extend([h, w])
    config_path = os.path.join(logdir, PROJECTOR_CONFIG)
    config = projector_config_pb2.ProjectorConfig()
    if os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            text_format.Parse(f.read(), config)
    kept = [e for e in config.embeddings if e.tensor_name != info.tensor_name]
    del config.embeddings[:]
    config.embeddings.extend(kept + [info])
    write_atomically(config_path, text_format.MessageToString(config).encode())
