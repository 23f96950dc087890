"""Collections exported to the vector databases people run: `export_collection(collection, url)`.

Targets (each behind its own extra, imported when used): `lance://PATH[#table]` (LanceDB),
`qdrant://PATH[#name]` or `qdrant://http://HOST:PORT[#name]` (Qdrant, local or a server),
`parquet://FILE` (a Parquet file). See docs/export.md.
"""

from nestvec.export.exporter import ExportReport, export_collection
from nestvec.export.targets import SCHEMES, TargetState, open_target

__all__ = ["SCHEMES", "ExportReport", "TargetState", "export_collection", "open_target"]
