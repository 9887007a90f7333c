"""Check that a test environment's torch matches its flavour.

Usage (run by the noxfile inside a session's venv)::

    python tools/check_torch.py PACKAGE {none,cpu,cuda,system}

* ``none``: torch must not be installed (torch-free packages such as alf-plot).
* ``cpu``: torch 2.13.0 (the version constraints.txt pins) must import.
* ``cuda``: as ``cpu``, and torch must be a CUDA build that sees a GPU.
* ``system``: the interpreter's own CUDA build of torch (any version), seeing a GPU
  (the ``gpu`` session, which never installs torch).

Prints what it found; exits 1 with the reason when the environment is wrong.
"""

from __future__ import annotations

import importlib.metadata
import sys

__all__ = ["main"]

EXPECTED_VERSION = "2.13.0"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("none", "cpu", "cuda", "system"):
        print(__doc__, file=sys.stderr)
        return 2
    package, flavour = argv
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = None
    if flavour == "none":
        if version is not None:
            print(
                f"check_torch: {package} must never have torch in its environment, but torch "
                f"{version} is installed (one of its dependencies pulls it in)",
                file=sys.stderr,
            )
            return 1
        print(f"check_torch: torch is not installed in {package}'s environment, as required")
        return 0
    if version is None:
        print(f"check_torch: torch is not installed in {package}'s environment", file=sys.stderr)
        return 1
    import torch

    print(
        f"check_torch: torch {torch.__version__}, CUDA build {torch.version.cuda}, "
        f"GPU available {torch.cuda.is_available()}"
    )
    if flavour == "system":
        if torch.version.cuda is None or not torch.cuda.is_available():
            print(
                "check_torch: the gpu session reuses the interpreter's torch, which must be a "
                "CUDA build that sees the GPU",
                file=sys.stderr,
            )
            return 1
        return 0
    if torch.__version__.split("+")[0] != EXPECTED_VERSION:
        print(
            f"check_torch: expected torch {EXPECTED_VERSION} (constraints.txt), got {torch.__version__}",
            file=sys.stderr,
        )
        return 1
    if flavour == "cuda" and not torch.cuda.is_available():
        print(
            "check_torch: the cuda flavour needs a CUDA build of torch that sees the GPU; "
            "set ALF_TORCH_CUDA_INDEX to the PyTorch wheel index matching the driver",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
