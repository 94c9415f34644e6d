"""Methods: each registers itself in TASKS on import."""

import translate.discriminators  # noqa: F401  (the networks and losses the tasks build by name)
import translate.generators  # noqa: F401
import translate.losses  # noqa: F401
from translate.tasks import cut, cyclegan, gan, munit, pix2pix, stargan, unit  # noqa: F401
from translate.tasks.base import Task

__all__ = ["Task"]
