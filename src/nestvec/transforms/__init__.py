"""Vector transforms (pure, fitted once, saved as folders) and a closed registry of them."""

from nestvec.registry import Registry
from nestvec.transforms.base import Transform, load, save
from nestvec.transforms.quantize import Binary, Float16, Int8
from nestvec.transforms.reduce import Truncate, Whiten

TRANSFORMS: Registry[type] = Registry("transform", {cls.name: cls for cls in (Truncate, Whiten, Float16, Int8, Binary)})
PRECISIONS: Registry[type] = Registry(
    "precision", {"float32": type(None), "float16": Float16, "int8": Int8, "binary": Binary}
)

__all__ = ["PRECISIONS", "TRANSFORMS", "Binary", "Float16", "Int8", "Transform", "Truncate", "Whiten", "load", "save"]
