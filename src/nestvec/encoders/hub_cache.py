"""Models by Hugging Face id, from the local hub cache only: nestvec never downloads.

A model fetched once by sentence-transformers, transformers or `huggingface-cli download` sits in
the hub cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`); an id such as
`BAAI/bge-small-en-v1.5` resolves to that snapshot, read through huggingface_hub with
`local_files_only`, so a machine offline works the same as one online.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# owner/name, optionally @revision: the shape of a hub model id (a path with one slash may match;
# an existing folder is tried before this)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps models, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def looks_like_hub_id(ref: str) -> bool:
    return bool(_HUB_ID.match(ref)) and not ref.startswith((".", "/", "~"))


def cached_snapshot(ref: str) -> Path | None:
    """The cached snapshot folder of hub id `ref` (`owner/name[@revision]`), or None when absent."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # huggingface_hub comes with tokenizers; without it there is no hub cache to read
        return None
    repo, _, revision = ref.partition("@")
    try:
        folder = snapshot_download(
            repo, revision=revision or None, cache_dir=str(hub_cache_dir()), local_files_only=True
        )
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None
    return Path(folder)
