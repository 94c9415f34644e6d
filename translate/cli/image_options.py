"""The old home of ``--precision`` and ``--max-pixels``, now in ``translate.cli.options`` with the other
options the commands share; importing them from here keeps working."""

from translate.cli.options import PRECISIONS, max_pixels_option, precision_option

__all__ = ["PRECISIONS", "max_pixels_option", "precision_option"]
