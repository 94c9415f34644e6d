"""Command line: a thin click layer over the Python API (``translate.api``, ``translate.inference``).

The only package that imports click. This module only assembles the commands, one module each (or one
group); what they share is ``translate.cli.options``. Nothing is imported here that imports torch: each
command imports what it needs when it runs, so ``translate --version``, ``--help`` and the catalog
listings answer at once.
"""

from __future__ import annotations

import logging

import click

from translate import __version__

# Each command under another name than its module's: ``translate.cli.serve`` stays the module.
from translate.cli.apply import apply as apply_command
from translate.cli.classifier import classifier as classifier_group
from translate.cli.datasets import datasets as datasets_group
from translate.cli.evaluate import evaluate as evaluate_command
from translate.cli.export import export as export_command
from translate.cli.info import info as info_command
from translate.cli.info import list_components
from translate.cli.latent import latent as latent_group
from translate.cli.models import import_checkpoint as import_group
from translate.cli.models import models as models_group
from translate.cli.options import FriendlyGroup
from translate.cli.recipes import recipes as recipes_group
from translate.cli.report import report as report_command
from translate.cli.sample import sample as sample_command
from translate.cli.serve import serve as serve_command
from translate.cli.train import train as train_command

__all__ = ["FriendlyGroup", "main"]


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="translate")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """translate: image-to-image translation (pix2pix, CycleGAN, ...)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s: %(message)s")
    logging.getLogger("PIL").setLevel(logging.WARNING)


COMMANDS: dict[str, click.Command] = {
    "train": train_command,
    "apply": apply_command,
    "list": list_components,
    "info": info_command,
    "sample": sample_command,
    "datasets": datasets_group,
    "recipes": recipes_group,
    "latent": latent_group,
    "eval": evaluate_command,
    "classifier": classifier_group,
    "report": report_command,
    "export": export_command,
    "models": models_group,
    "import": import_group,
    "serve": serve_command,
}
"""Every command and group of ``translate``, by the name it is called with."""
for _name, _command in COMMANDS.items():
    main.add_command(_command, _name)
