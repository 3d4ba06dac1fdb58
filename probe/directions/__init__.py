"""Direction discovery methods; each fit() yields a DirectionSet."""
from .base import DirectionError, DirectionSet
from .dplase import DPLaSE, density_preserve
from .evaluate import evaluate, evaluate_study
from .ganspace import GANSpace
from .groundtruth import GroundTruthScore, groundtruth, run_groundtruth
from .interfacegan import InterFaceGAN, edit_codes, fit_from_model, project, sample_and_score
from .random_dirs import RandomDirections, random_orthonormal
from .sefa import SeFa, factorize

__all__ = ["DirectionError", "DirectionSet", "DPLaSE", "GANSpace", "InterFaceGAN", "RandomDirections", "SeFa",
           "density_preserve", "edit_codes", "evaluate", "evaluate_study", "factorize", "fit_from_model", "project",
           "random_orthonormal", "sample_and_score", "GroundTruthScore", "groundtruth", "run_groundtruth"]
