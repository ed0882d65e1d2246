"""Device choice and mixed precision shared by every adapter.

``resolve_device("auto")`` picks CUDA when present, else the CPU. ``autocast(device)``
is bf16 autocast on CUDA and a no-op elsewhere, so adapters wrap their forward passes in
it unconditionally.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class DeviceUnavailableError(RuntimeError):
    """The configured device does not exist on this machine."""


def resolve_device(name: str = "auto") -> str:
    """The torch device string to use for ``name``.

    Args:
        name: "auto" (CUDA when available, else "cpu"), or an explicit torch device such as
            "cpu", "cuda", "cuda:1", "mps".

    Returns:
        The device string, e.g. "cuda" or "cpu".

    Raises:
        DeviceUnavailableError: a CUDA (or MPS) device was asked for and is not present.
        ValueError: ``name`` is not a torch device string.
    """
    import torch

    text = name.strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError as exc:
        raise ValueError(f"not a device name: {name!r} (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device {name!r} was requested but CUDA is not available on this machine; "
                "use device=auto or device=cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {name!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are present"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(f"device {name!r} was requested but MPS is not available")
    return text


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


@contextlib.contextmanager
def autocast(device: str) -> Iterator[None]:
    """bf16 autocast on CUDA; nothing on other devices."""
    if not is_cuda(device):
        yield
        return
    import torch

    with torch.autocast("cuda", dtype=torch.bfloat16):
        yield
