"""``translate recipes list | show NAME``: the training recipes shipped in the package (``--config NAME``)."""

from __future__ import annotations

import click

from translate.cli.options import OneLineErrors


@click.group(cls=OneLineErrors)
def recipes() -> None:
    """The packaged training recipes: train with one by name, `translate train METHOD --config NAME`."""


@recipes.command("list")
def list_recipes() -> None:
    """Each packaged recipe's name and what it trains."""
    from translate.config_files import RECIPES, recipe_description, recipe_names

    names = recipe_names()
    width = max(map(len, names))
    for name in names:
        click.echo(f"{name:<{width}}  {recipe_description(name)}")
    click.echo(f"\nrecipes: {RECIPES}")
    click.echo("print one: translate recipes show NAME; train with one: translate train METHOD --config NAME")


@recipes.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Print the recipe NAME (to copy and edit: its _base_ files resolve from anywhere)."""
    from translate.config_files import find_recipe

    click.echo(find_recipe(name).read_text(encoding="utf-8"), nl=False)
