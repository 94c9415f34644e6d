"""History of generated images shown to the discriminator (Shrivastava et al.; junyanz's ``ImagePool``)."""

from __future__ import annotations

import torch
from torch import Tensor

from translate.errors import CheckpointError


class ImagePool:
    """Buffer of up to ``pool_size`` past fakes; D then sees a mix of current and older generator outputs.

    Random choices use the global torch RNG, so restoring its state with :meth:`load_state_dict`
    reproduces the pool's outputs exactly.
    """

    def __init__(self, pool_size: int = 50) -> None:
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor) -> Tensor:
        """Detached images ``(N, C, H, W)``: each either the new one or (once full, p = 0.5) a stored one
        that the new one replaces. With ``pool_size == 0`` the input is returned as is."""
        if self.pool_size == 0:
            return images
        images = images.detach()
        # a restored pool sits on the CPU in float32; follow the device and dtype of the fakes
        self.images = [stored.to(images) for stored in self.images]
        out = []
        for image in images:
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() < 0.5:
                index = int(torch.randint(self.pool_size, ()).item())
                out.append(self.images[index])
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Tensor]:
        """``{"images": (n, C, H, W)}``, or ``{}`` while the pool is empty."""
        return {"images": torch.stack(self.images)} if self.images else {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        images = state.get("images")
        if images is not None and len(images) > self.pool_size:
            raise CheckpointError(
                f"the saved image pool holds {len(images)} images, more than pool_size {self.pool_size}"
            )
        self.images = [] if images is None else [image.clone() for image in images]
