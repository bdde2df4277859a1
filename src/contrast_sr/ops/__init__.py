"""Numerical operators: selective scan, cross-scan helpers, MATLAB-style resize."""

from contrast_sr.ops.imresize import imresize

__all__ = ["imresize"]
