"""translate: image-to-image translation (pix2pix, CycleGAN, ...) on shared, registered parts."""

__version__ = "0.1.0"
