"""Explicit pip requirements for logged models. MLflow's own inference takes ~10 s a model
here and lists torch for scikit-learn models; the installed versions are exact and instant."""

from __future__ import annotations

from importlib.metadata import version


def pins(*packages: str) -> list[str]:
    return [f"{name}=={version(name).split('+')[0]}" for name in packages]
