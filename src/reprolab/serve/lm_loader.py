"""A causal LM loaded for the service on the backend its settings choose (`--lm-backend`):
llama.cpp (a llama-server process per model) or transformers (in this process)."""

from __future__ import annotations

from typing import Any

from reprolab.serve.lm_engine import LanguageModel


def load_lm(name: str, uri: str, settings: Any) -> LanguageModel:
    from reprolab.serve.tasks import load_pyfunc

    pyfunc = load_pyfunc(uri)
    if settings.backend != "llama.cpp":
        return LanguageModel.from_pyfunc(name, pyfunc)
    from reprolab.llamacpp.server import ServerOptions
    from reprolab.serve.lm_llamacpp import LlamaCppModel

    options = ServerOptions(
        slots=settings.lm_slots, context=settings.lm_context, threads=settings.threads
    )
    return LlamaCppModel.from_pyfunc(name, pyfunc, uri, options)
