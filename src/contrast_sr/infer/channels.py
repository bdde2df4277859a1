"""Gray images through RGB models: the one rule the upscaler and the evaluation share."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


def gray_as_rgb(forward: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``forward`` (an RGB model) applied to ``x`` (B, 1 or 3, H, W): a gray batch goes in as
    three equal channels and the output is averaged back to one channel."""
    if x.shape[1] == 1:
        return forward(x.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
    return forward(x)
