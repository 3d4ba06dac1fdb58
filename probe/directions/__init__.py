"""Direction discovery methods; each estimator's fit() yields a DirectionSet (registry.py lists them)."""
from .base import DirectionError, DirectionSet
from .disentanglement import GroundTruthScore
from .dplase import DPLaSE, density_preserve
from .estimator import DirectionEstimator
from .evaluate import evaluate, evaluate_study, method_summary
from .ganspace import GANSpace
from .groundtruth import groundtruth, run_groundtruth
from .interfacegan import InterFaceGAN, edit_codes, fit_from_model, project, sample_and_score
from .pipeline import fit_methods
from .random_dirs import RandomDirections, random_orthonormal
from .registry import METHODS
from .sefa import SeFa, factorize

__all__ = ["DirectionError", "DirectionEstimator", "DirectionSet", "DPLaSE", "GANSpace", "InterFaceGAN",
           "RandomDirections", "SeFa", "METHODS", "density_preserve", "edit_codes", "evaluate", "evaluate_study",
           "method_summary", "factorize", "fit_from_model", "fit_methods", "project", "random_orthonormal",
           "sample_and_score", "GroundTruthScore", "groundtruth", "run_groundtruth"]
