"""The live risk modifier: a space's score scaled by how crowded it is now (brief §1.5).

``f_crowd = clamp(density_now / density_design, 0.5, 1.5)`` and ``R_live = R_100 × f_crowd``;
both bounds are in ``data/reference/risk_parameters.csv``.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd

from geo_protect import reference
from geo_protect.errors import ValidationError

__all__ = ["crowd_factor", "live_risk"]

_T = TypeVar("_T", float, np.ndarray, pd.Series)


def _params() -> pd.Series:
    return reference.table("risk_parameters").set_index("name")["value"]


def crowd_factor(
    density_now: _T,
    density_design: _T,
    *,
    factor_min: float | None = None,
    factor_max: float | None = None,
) -> _T:
    """Live crowd modifier ``clamp(density_now / density_design, 0.5, 1.5)`` (brief §1.5).

    Works on scalars, arrays and Series (index-aligned). NaN stays NaN (density unknown).

    Parameters
    ----------
    density_now : float, ndarray or Series
        Live densities (p/m²).
    density_design : float, ndarray or Series
        Design densities (p/m²), like ``density_now``.
    factor_min, factor_max : float, optional
        The clamp bounds; the ``parameters`` reference table's by default.

    Returns
    -------
    float, ndarray or Series
        The factor, of the type of ``density_now``.

    Raises
    ------
    ValidationError
        If a design density is zero or negative.

    Examples
    --------
    >>> crowd_factor(1.0, 2.0), crowd_factor(4.0, 2.0), crowd_factor(0.2, 2.0)
    (0.5, 1.5, 0.5)
    """
    p = _params()
    lo = float(p["crowd_factor_min"]) if factor_min is None else factor_min
    hi = float(p["crowd_factor_max"]) if factor_max is None else factor_max
    design = np.asarray(density_design, dtype=float)
    if np.any(design <= 0):
        raise ValidationError("density_design: must be greater than zero")
    ratio: Any = density_now / density_design
    result: Any
    if isinstance(ratio, pd.Series):
        result = ratio.clip(lo, hi)
    else:
        clipped = np.clip(ratio, lo, hi)
        result = float(clipped) if np.ndim(clipped) == 0 else clipped
    return cast(_T, result)


def live_risk(risk: _T, density_now: _T, density_design: _T, **factor: float) -> _T:
    """``R_live = R_100 × f_crowd`` (up to 1.5 × R_100, so it may exceed 100).

    Parameters
    ----------
    risk : float, ndarray or Series
        Static risk ``R_100``.
    density_now, density_design : float, ndarray or Series
        Live and design densities (p/m²), for :func:`crowd_factor`.
    **factor : float
        ``factor_min`` / ``factor_max`` for :func:`crowd_factor`.

    Returns
    -------
    float, ndarray or Series
        ``R_live``, of the type of ``risk``.

    Examples
    --------
    >>> live_risk(50.0, 3.0, 2.0)
    75.0
    """
    out: Any = risk * crowd_factor(density_now, density_design, **factor)
    return cast(_T, out)
