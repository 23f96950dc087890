"""Static models: one vector per token, distilled from a transformer (numpy + tokenizers only)."""

from nestvec.encoders.static.model import KIND, STORAGE, StaticEncoder, save_static

__all__ = ["KIND", "STORAGE", "StaticEncoder", "save_static"]
