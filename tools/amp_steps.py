"""``train.amp`` (bf16 autocast) against fp32: the training step time of the shipped CPU recipes on their
data, both trainers built in one process and timed in alternating blocks (docs/RESULTS.md).

    python tools/amp_steps.py [RECIPE ...] [--data ../shared/datasets]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time

import torch

import translate.components  # noqa: F401  (registers the tasks)
from translate.api import resolve_config
from translate.engine.device import native_bf16
from translate.engine.trainer import Trainer

RECIPES = {
    "pix2pix_facades_labels_cpu": ("pix2pix", "facades"),
    "cyclegan_emoji_cpu": ("cyclegan", "emoji"),
    "stargan_celeba_cpu": ("stargan", "celeba"),
    "dcgan_anime": ("dcgan", "anime-faces-64"),
    "cgan_fashion_mnist": ("cgan", "fashion-mnist"),
}


def step_seconds(trainers: dict[bool, Trainer], blocks: int, steps: int) -> dict[bool, float]:
    """The median seconds per step of each trainer, timed in alternating blocks after two warm-up steps."""
    batches = {amp: trainer._batches() for amp, trainer in trainers.items()}
    for amp, trainer in trainers.items():
        trainer.task.train()
        for _ in range(2):
            trainer.train_step(batches[amp])
    times: dict[bool, list[float]] = {amp: [] for amp in trainers}
    for _ in range(blocks):
        for amp, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(steps):
                trainer.train_step(batches[amp])
            times[amp].append((time.perf_counter() - start) / steps)
    return {amp: statistics.median(samples) for amp, samples in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--data", default="../shared/datasets", help="the folder holding the recipes' data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed block")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    if not native_bf16(torch.device("cpu")):
        print("this CPU has no native bf16: train.amp is ignored here, nothing to compare")
        return
    for recipe in args.recipes:
        method, folder = RECIPES[recipe]
        trainers = {}
        for amp in (False, True):
            layers = [{"data": {"root": f"{args.data}/{folder}", "num_workers": 0}}]
            layers.append({"train": {"amp": amp, "eval_every": None}})
            trainers[amp] = Trainer(resolve_config(method, recipe, layers), tempfile.mkdtemp())
        seconds = step_seconds(trainers, args.blocks, args.steps)
        fp32, bf16 = seconds[False], seconds[True]
        print(f"{recipe}: fp32 {fp32 * 1e3:.0f} ms/step, bf16 {bf16 * 1e3:.0f} ms/step, {fp32 / bf16:.2f}x")


if __name__ == "__main__":
    main()
