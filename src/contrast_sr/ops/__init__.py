"""Numerical operators: Mamba-1 selective scan, Mamba-2 SSD scan, cross-scan, fused depthwise
conv + GELU, MATLAB resize."""

from contrast_sr.ops.cross_scan import (
    cross_merge,
    cross_merge_channels_last,
    cross_scan,
    cross_scan_channels_last,
)
from contrast_sr.ops.dwconv import dwconv3x3_gelu
from contrast_sr.ops.imresize import imresize
from contrast_sr.ops.scan import (
    list_scan_backends,
    register_scan_backend,
    scan_backend,
    selective_scan,
    selective_scan_channels_last,
    selective_scan_fn,
    selective_scan_ref,
)
from contrast_sr.ops.ssd import ssd_scan, ssd_scan_ref

__all__ = [
    "cross_merge",
    "cross_merge_channels_last",
    "cross_scan",
    "cross_scan_channels_last",
    "dwconv3x3_gelu",
    "imresize",
    "list_scan_backends",
    "register_scan_backend",
    "scan_backend",
    "selective_scan",
    "selective_scan_channels_last",
    "selective_scan_fn",
    "selective_scan_ref",
    "ssd_scan",
    "ssd_scan_ref",
]
