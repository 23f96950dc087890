"""Pooling of token embeddings, numerically as sentence-transformers' Pooling module does it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def _mask(mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return mask.unsqueeze(-1).expand(tokens.size()).to(tokens.dtype)


def _cls(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return tokens[:, 0]


def _max(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    masked = tokens.clone()
    masked[_mask(mask, tokens) == 0] = -1e9
    return masked.max(dim=1).values


def _sums(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    expanded = _mask(mask, tokens)
    return (tokens * expanded).sum(1), torch.clamp(expanded.sum(1), min=1e-9)


def _mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    total, count = _sums(tokens, mask)
    return total / count


def _mean_sqrt_len(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    import torch

    total, count = _sums(tokens, mask)
    return total / torch.sqrt(count)


def _weighted_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    import torch

    weights = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=tokens.dtype)
    expanded = _mask(mask, tokens) * weights.view(1, -1, 1)
    return (tokens * expanded).sum(1) / torch.clamp(expanded.sum(1), min=1e-9)


def _last_token(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    import torch

    # Index of the last attended position, whichever side the padding is on.
    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0) * mask
    last = positions.argmax(dim=1)
    return tokens[torch.arange(tokens.shape[0], device=tokens.device), last]


POOLERS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cls": _cls,
    "max": _max,
    "mean": _mean,
    "mean_sqrt_len": _mean_sqrt_len,
    "weightedmean": _weighted_mean,
    "lasttoken": _last_token,
}


def pool(tokens: torch.Tensor, mask: torch.Tensor, modes: Sequence[str]) -> torch.Tensor:
    """Concatenate the enabled poolings in sentence-transformers' order."""
    import torch

    parts = [POOLERS[mode](tokens, mask) for mode in modes]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
