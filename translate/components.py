"""Importing this module registers every component in its registry: generators, discriminators, losses,
tasks, dataset kinds, optimizers and parameter constraints. ``translate.api`` and ``translate.inference``
import it; a plain ``import translate`` does not (it imports no torch)."""

import translate.data  # noqa: F401  (dataset kinds)
import translate.discriminators  # noqa: F401
import translate.engine.optimizers  # noqa: F401  (optimizers, constraints)
import translate.generators  # noqa: F401
import translate.losses  # noqa: F401
import translate.tasks  # noqa: F401
