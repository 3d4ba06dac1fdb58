"""The rendering options shared by commands that load a model by name: --truncation-psi, --noise-mode, --class."""

from __future__ import annotations

import typer


def psi_option():
    return typer.Option(
        None,
        "--truncation-psi",
        help="style models: truncation towards the mean w (1 = none, the default; 0.7 is common for FFHQ)",
    )


def noise_option():
    return typer.Option(
        None,
        "--noise-mode",
        help="style models: const (default, deterministic), random (seeded by the latents) or none",
    )


def class_option():
    return typer.Option(None, "--class", help="conditional models (c_dim > 0): the class index to render")


def options(truncation_psi: float | None, noise_mode: str | None, class_idx: int | None) -> dict:
    """The given options as load_model keywords (unset ones keep load_model's defaults)."""
    return {
        k: v
        for k, v in (("truncation_psi", truncation_psi), ("noise_mode", noise_mode), ("class_idx", class_idx))
        if v is not None
    }


def device_option():
    return typer.Option(
        "auto", "--device", help="where models compute: auto (CUDA when available, else CPU), cpu, cuda or cuda:N"
    )


def on_device(model, device: str | None):
    """The model moved to --device (probe.devices.resolve_device; one-line error for an unusable device)."""
    return model.to(device or "auto")
