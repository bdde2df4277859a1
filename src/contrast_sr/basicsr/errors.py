"""Typed errors that are also the builtin exceptions BasicSR raises in the same place.

Code written against BasicSR catches ``AssertionError`` (different image shapes) or
``TypeError`` (an unsupported dtype); project code catches :class:`ArgumentError`. Both work.
"""

from __future__ import annotations

from contrast_sr.errors import ArgumentError


class ShapeMismatchError(ArgumentError, AssertionError):
    """Two images that must have one shape do not (BasicSR: ``assert img.shape == img2.shape``)."""


class DTypeError(ArgumentError, TypeError):
    """An image dtype the colour conversions do not take (BasicSR: ``TypeError``)."""
