"""Vector transforms (pure, fitted once, saved as folders) and a closed registry of them.

Code precisions (float16, int8, binary, rabitq) are not transforms: they belong to the index
(index/spec.py, index/codec.py), so one name means one quantizer everywhere.
"""

from nestvec.registry import Registry
from nestvec.transforms.base import Transform, load, save
from nestvec.transforms.reduce import PrincipalAxes, Truncate, Whiten

TRANSFORMS: Registry[type] = Registry("transform", {cls.name: cls for cls in (Truncate, Whiten, PrincipalAxes)})

__all__ = ["TRANSFORMS", "PrincipalAxes", "Transform", "Truncate", "Whiten", "load", "save"]
