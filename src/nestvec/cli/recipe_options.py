"""CLI options made from the recipe's field table: one option per field, same names and ranges.

`@recipe_options("encoder", "vectors", ...)` adds `--dims`, `--codes`, `--index`, ... and a
`--recipe MODEL:key=value...` base to a command, and hands the command one `recipe` argument:
the Recipe they describe (options override the --recipe string). Values are checked by the
table itself, so a bad one gets the library's message.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from nestvec.recipe.fields import FIELDS, Field

RECIPE_HELP = "A whole recipe, e.g. minilm:dims=128:index=hnsw:codes=int8; the other recipe options override it."


def _option(f: Field) -> Any:
    help = f.help
    if f.choices:
        help += f" One of: {', '.join(f.choices)}."
    shown = "none" if f.default is None else ("yes" if f.default is True else f.default)
    help += f" Default: {shown}."  # not "[default: ...]": rich would read it as markup and drop it
    if f.kind is bool:
        return Annotated[bool | None, typer.Option(f"{f.option}/--no-{f.option[2:]}", help=help, show_default=False)]
    kind = str if f.optional and f.kind is int else f.kind  # "none" must get through to the table
    short = ["-m"] if f.name == "model" else []
    return Annotated[kind | None, typer.Option(f.option, *short, help=help, show_default=False)]


def recipe_options(*parts: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a typer command taking `recipe` with the options of the table's `parts`."""
    chosen = [f for f in FIELDS if f.part in parts]

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func, eval_str=True)
        own = [p for name, p in signature.parameters.items() if name != "recipe"]
        keyword = inspect.Parameter.KEYWORD_ONLY
        added = [inspect.Parameter(f"recipe_{f.name}", keyword, default=None, annotation=_option(f)) for f in chosen]
        text = Annotated[str | None, typer.Option("--recipe", help=RECIPE_HELP)]
        added.append(inspect.Parameter("recipe_text", keyword, default=None, annotation=text))

        def command(**kwargs: Any) -> Any:
            given = {f.name: kwargs.pop(f"recipe_{f.name}") for f in chosen}
            base = kwargs.pop("recipe_text")
            kwargs["recipe"] = RecipeArgs(base, {k: v for k, v in given.items() if v is not None})
            return func(**kwargs)

        params = [*own, *added]
        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__name__, command.__doc__ = func.__name__, func.__doc__
        return command

    return wrap


class RecipeArgs:
    """What the options said; `build()` turns it into a Recipe inside the command's error handling."""

    def __init__(self, base: str | None, values: dict[str, Any]) -> None:
        self.base, self.values = base, values

    def build(self, **fixed: Any) -> Any:
        from nestvec.recipe import Recipe
        from nestvec.recipe import fields as table

        recipe = Recipe.parse(self.base) if self.base else Recipe()
        values = {k: v for k, v in self._checked().items() if not table.field(k).query_time}
        return recipe.with_values(**{**values, **fixed})

    def search(self) -> tuple[str, Any]:
        """(mode, Fusion) from the search options."""
        from nestvec.recipe import fields as table

        return table.search_options({k: v for k, v in self._checked().items() if table.field(k).query_time})

    def _checked(self) -> dict[str, Any]:
        from nestvec.recipe import fields as table

        return {k: table.field(k).parse(v) if isinstance(v, str) else v for k, v in self.values.items()}
