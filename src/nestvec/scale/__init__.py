"""Past one machine: embedding on Ray Data into resumable Parquet shards, and bulk ingest of them.

`embed_shards(inputs, folder, recipe=…, ray="local")` plans shards on the driver (every record
read and checked once, as single-process `embed` does), runs them on a Ray Data actor pool (the
model loaded once per actor), and records each finished shard, with its checksum, in the
folder's manifest; a rerun skips those. `ingest_shards(collection, folder)` stores a finished
folder's vectors in a collection without running the model again, after checking its recipe.
"""

from nestvec.scale.ingest import ingest_shards
from nestvec.scale.runner import ScaleOptions, embed_shards

__all__ = ["ScaleOptions", "embed_shards", "ingest_shards"]
