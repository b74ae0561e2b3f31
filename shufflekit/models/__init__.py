"""ShuffleNet v1 and v2, their registry, checkpoints and complexity."""

from .registry import ModelSpec, get_model, list_models, model_spec

__all__ = ["ModelSpec", "get_model", "list_models", "model_spec"]
