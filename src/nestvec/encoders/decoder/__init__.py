"""Decoder LLMs as text encoders: last-token, PromptEOL, echo, Token Prepending, layer choice."""

from nestvec.encoders.decoder.methods import METHODS, Method
from nestvec.encoders.decoder.model import DecoderEncoder

__all__ = ["METHODS", "DecoderEncoder", "Method"]
