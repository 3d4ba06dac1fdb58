"""The estimator protocol every direction method follows (scikit-learn's `BaseEstimator` contract).

- `__init__` only stores its arguments, unchanged, as attributes of the same name (so `get_params`,
  `set_params` and `sklearn.base.clone` work); checks run in `fit`.
- `fit(model, ...)` returns self; results live in attributes ending in `_`, always `directions_` (a DirectionSet).
- No global random state: every draw comes from the estimator's `seed` parameter through a local generator, so
  fitting leaves `torch`'s and NumPy's global generators as they were and the same seed gives the same result.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator

from .base import DirectionError


class DirectionEstimator(BaseEstimator):
    """Base class of the direction methods (and of the ground-truth scorer): parameters in, `fit` -> self.

    `method` (class attribute) is the name the registry, the tables' `method` column and DirectionSet.method use.
    set_params with an unknown name raises a DirectionError naming the parameters there are.
    """

    method: str = ""

    def set_params(self, **params) -> DirectionEstimator:
        valid = self.get_params(deep=False)
        for k in params:
            if k not in valid:
                raise DirectionError(
                    f"{type(self).__name__} has no parameter {k!r}; use one of {', '.join(sorted(valid))}"
                )
        return super().set_params(**params)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "directions_") or hasattr(self, "scores_")
