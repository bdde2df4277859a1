"""The models the page offers: the bundled defaults (one per scale that has weights) and every
``--model`` given at start. Each is loaded once, on first use, and then kept."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from contrast_sr.errors import ArgumentError, ContrastError

BUNDLED_SCALES = (2, 3, 4, 8)  # scales that may have bundled weights


@dataclass
class ModelChoice:
    """One entry of the page's model list; ``load`` builds the module (called once)."""

    key: str  # what the page sends back: "bundled-x4", "model-1", ...
    label: str  # what the page shows
    scale: int  # the model's own scale
    load: Callable[[], nn.Module] = field(repr=False)


class ModelCatalog:
    """Model choices by key, each loaded at most once (thread-safe) and cached."""

    def __init__(self, choices: Sequence[ModelChoice]) -> None:
        if not choices:
            raise ContrastError("models", "no model to serve: no bundled weights and no --model")
        self.choices = {c.key: c for c in choices}
        self._loaded: dict[str, nn.Module] = {}
        self._lock = threading.Lock()

    @property
    def default_key(self) -> str:
        """The first ``--model`` if one was given, else the bundled x4 model, else the first."""
        given = [key for key in self.choices if key.startswith("model-")]
        if given:
            return given[0]
        return "bundled-x4" if "bundled-x4" in self.choices else next(iter(self.choices))

    def choice(self, key: str) -> ModelChoice:
        if key not in self.choices:
            raise ArgumentError("model", f"unknown model {key!r} (choose from {', '.join(self)})")
        return self.choices[key]

    def get(self, key: str) -> nn.Module:
        """The module for ``key``, loaded on first use."""
        choice = self.choice(key)
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = choice.load()
            return self._loaded[key]

    def __iter__(self):
        return iter(self.choices)

    def describe(self) -> list[dict]:
        """JSON-ready list for the page."""
        return [{"key": c.key, "label": c.label, "scale": c.scale} for c in self.choices.values()]


def bundled_choices() -> list[ModelChoice]:
    """One choice per scale with bundled default weights."""
    from contrast_sr.infer.defaults import DEFAULT_MODEL_NAME, default_model, default_weights

    choices = []
    for scale in BUNDLED_SCALES:
        if default_weights(scale).is_file():
            choices.append(
                ModelChoice(
                    key=f"bundled-x{scale}",
                    label=f"{DEFAULT_MODEL_NAME} x{scale} (bundled)",
                    scale=scale,
                    load=lambda s=scale: default_model(s),
                )
            )
    return choices


def spec_choice(index: int, spec: str) -> ModelChoice:
    """A ``--model`` spec (registered name or checkpoint path), loaded now so that a bad one
    fails at start; the module is kept for the catalog."""
    from contrast_sr.infer.defaults import get_model

    model = get_model(spec)
    name = getattr(model, "variant", None) or type(model).__name__
    shown = Path(spec).name if Path(spec).is_file() else spec
    label = f"{shown} x{model.scale}" + ("" if shown == name else f" ({name})")
    return ModelChoice(
        key=f"model-{index}", label=label, scale=int(model.scale), load=lambda: model
    )


def catalog_from_specs(specs: Sequence[str] = (), bundled: bool = True) -> ModelCatalog:
    """The bundled defaults (if ``bundled``) followed by the ``--model`` specs, in order."""
    choices = bundled_choices() if bundled else []
    choices += [spec_choice(i, spec) for i, spec in enumerate(specs, start=1)]
    return ModelCatalog(choices)
