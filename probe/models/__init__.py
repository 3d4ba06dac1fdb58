"""Generator adapters and the model zoo."""

from .base import GENERIC, SPACES, Generator, ModelDefaults, ModelError
from .dcgan import TorchGenerator
from .faces import load_faces
from .stylegan import StyleGANGenerator
from .zoo import ZOO, ZooEntry, list_models, load_model, wrap

__all__ = [
    "Generator",
    "ModelError",
    "SPACES",
    "TorchGenerator",
    "StyleGANGenerator",
    "load_faces",
    "ZOO",
    "ZooEntry",
    "ModelDefaults",
    "GENERIC",
    "list_models",
    "load_model",
    "wrap",
]
