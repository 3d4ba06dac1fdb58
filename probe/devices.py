"""Where computation runs: one function turns a `device` option into a torch.device.

`auto` (the default everywhere) is CUDA device 0 when `torch.cuda.is_available()`, else the CPU; `cpu`, `cuda` and
`cuda:N` ask for one explicitly. Tables never depend on the device: CPU results are bit-identical whatever the
option, and the manifest records the device a study ran on.
"""

from __future__ import annotations

import re

import torch

from .errors import ProbeError

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
_CUDA = re.compile(r"^cuda(?::(\d+))?$")


class DeviceError(ProbeError):
    """A device option names no usable device; the message names the fix."""


def resolve_device(device: str | torch.device | None = "auto", field: str = "--device") -> torch.device:
    """`auto` | `cpu` | `cuda` | `cuda:N` (or a torch.device) -> torch.device; DeviceError (one line) otherwise.

    field: how the option is called in the message (`--device`, `device` in a spec)."""
    if isinstance(device, torch.device):
        device = str(device)
    text = "auto" if device is None else str(device).strip().lower()
    if text == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    m = _CUDA.match(text)
    if m is None:
        raise DeviceError(f"{field} {device}: unknown device; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"{field} {text}: CUDA is not available on this machine (torch.cuda.is_available() is "
            f"False); use {field} cpu or auto"
        )
    i, n = int(m.group(1) or 0), torch.cuda.device_count()
    if i >= n:
        raise DeviceError(
            f"{field} {text}: CUDA device index {i} out of range, this machine has {n} CUDA "
            f"device{'s' if n != 1 else ''}; use cuda:0..cuda:{n - 1}"
        )
    return torch.device("cuda", i)


def device_name(device: torch.device) -> str:
    """The manifest's record of a device: `cpu` or `cuda:N (<GPU name>)`."""
    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    i = device.index or 0
    return f"cuda:{i} ({torch.cuda.get_device_name(i)})"


def onnx_providers(device: torch.device, available: list[str] | tuple[str, ...] | None = None) -> list:
    """ONNX Runtime execution providers for a device: CUDA first when the device is CUDA and onnxruntime lists
    `CUDAExecutionProvider` (available: default `onnxruntime.get_available_providers()`), else the CPU only."""
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    device = torch.device(device)
    if device.type == "cuda" and "CUDAExecutionProvider" in available:
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


__all__ = ["DEVICES", "DeviceError", "resolve_device", "device_name", "onnx_providers"]
