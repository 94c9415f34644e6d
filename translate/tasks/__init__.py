"""Methods: each registers itself in TASKS on import."""

from translate.tasks import cyclegan, gan, munit, pix2pix, stargan, unit  # noqa: F401
from translate.tasks.base import Task

__all__ = ["Task"]
