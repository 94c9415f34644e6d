"""The one size rule of every backend: the smallest image a network takes, found on the network itself.

PyTorch, TorchScript and onnxruntime each fail in their own words on an image too small for a network
(reflection padding wider than the feature map, instance norm over one value ...), and onnxruntime with
exceptions of its own. So before an image runs, ``SmallestSide.check`` compares its size, padded to the
network's size multiple, with the smallest square side the network takes. That side is found the first time
it is needed by running the network on blank images: sides doubling from the size multiple, then the gap
halved (a few runs on images of a few pixels for the usual networks). The rule is the same whatever runs the
network, and the answer is in the user's words.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from translate.inference.convert import ImageSizeError

SEARCH_MULTIPLES = 4
"""Before any side is known to work, sides are tried up to this many size multiples (or the image's)."""


class SmallestSide:
    """The smallest square side, a multiple of ``multiple``, on which ``run(side)`` succeeds.

    Args:
        multiple: the network's size multiple (images are padded to it).
        run: runs the network on one blank ``side`` x ``side`` image; raises where it cannot.
    """

    def __init__(self, multiple: int, run: Callable[[int], object]) -> None:
        self.multiple = max(1, int(multiple))
        self.run = run
        self.works: int | None = None
        """The smallest side known to run."""
        self.fails = 0
        """The largest side known to fail (0: none tried)."""
        self.reason = ""
        """The first line of what the last failing run raised."""

    def padded(self, side: int) -> int:
        return -(-side // self.multiple) * self.multiple

    def check(self, width: int, height: int) -> None:
        """Raises ImageSizeError (one line, the smallest image it takes) for an image the network cannot take.

        Args:
            width, height: the image's size before padding.
        """
        side = min(self.padded(width), self.padded(height))
        if self.works is None:
            self._search(max(side, SEARCH_MULTIPLES * self.multiple))
        if self.works is not None and side >= self.works:
            return
        raise ImageSizeError(self.problem(width, height))

    def problem(self, width: int, height: int) -> str:
        """Why a ``width`` x ``height`` image is not translated, in one line."""
        what = f"the model cannot translate this {width}x{height} px image"
        if self.works is None:
            return f"{what}: the network runs on no image up to {self.fails}x{self.fails} px ({self.reason})"
        smallest = self.works - self.multiple + 1  # the smallest side that pads to ``works``
        return f"{what}: it is too small (this network takes at least {smallest} px on each side)"

    def _search(self, limit: int) -> None:
        """Sides doubling from the size multiple (or from the largest failing one) up to ``limit``, then the
        smallest working side between the last failing and the first working one."""
        side = 2 * self.fails if self.fails else self.multiple
        while not self._works(min(side, limit)):
            if side >= limit:
                return
            side *= 2
        while self.works is not None and self.works - self.fails > self.multiple:
            middle = (self.fails + self.works) // (2 * self.multiple) * self.multiple
            if middle <= self.fails:
                return
            self._works(middle)

    def _works(self, side: int) -> bool:
        try:
            self.run(side)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:  # noqa: BLE001  (each backend raises its own types: onnxruntime's too)
            self.fails = max(self.fails, side)
            self.reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return False
        self.works = side if self.works is None else min(self.works, side)
        return True
