"""The recipe: the one description of how text becomes a searchable vector."""

from nestvec.recipe.fields import FIELDS, Field
from nestvec.recipe.recipe import RECIPE_VERSION, Recipe, VectorSpec, given_fields, parse

__all__ = ["FIELDS", "RECIPE_VERSION", "Field", "Recipe", "VectorSpec", "given_fields", "parse"]
