"""``translate eval``: score a trained model of any export kind on held-out data, next to its baseline.

    translate eval RUN --data PATH [--metrics fid,kid,is,...] [--n 2000] [--classifier clf.pt]
                       [--inception-weights FILE] [--json [FILE]]

The older paired mode (``--aligned DIR`` or ``--inputs DIR --targets DIR``: L1, PSNR, label accuracy) is
unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import torch

from translate.cli import device_option
from translate.errors import ConfigError, DataError

log = logging.getLogger("translate")

# The export kinds (translate.tasks.base, which the CLI does not import).
IMAGE_TO_IMAGE, IMAGE_AND_TARGET_TO_IMAGE, NOISE_TO_IMAGE = (
    "image_to_image",
    "image_and_target_to_image",
    "noise_to_image",
)


@click.command("eval")
@click.argument("run_arg", metavar="RUN", required=False, type=click.Path())
@click.option("--run", "run_opt", type=click.Path(), help="Run folder or checkpoint (or give it as RUN).")
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help="The dataset whose held-out split is scored, in the run's layout (domain folders, A|B pairs, "
    "attribute file, class folders or IDX files).",
)
@click.option(
    "--metrics",
    default="all",
    show_default=True,
    help="Comma-separated: fid,kid,is (distribution, on Inception and the --classifier's features), "
    "lpips,ssim,psnr,l1 (against ground truth), domain (classifier scores), diversity, nn (memorisation).",
)
@click.option(
    "--n",
    "count",
    default=2000,
    show_default=True,
    type=click.IntRange(min=2),
    help="Inputs translated, samples drawn and reference images, at most.",
)
@click.option("--classifier", type=click.Path(dir_okay=False), help="From `translate classifier train`.")
@click.option(
    "--inception-weights",
    type=click.Path(dir_okay=False),
    help="Inception-v3 weights (default: pt_inception-2015-12-05-6726825d.pth in the torch hub cache).",
)
@click.option(
    "--json",
    "json_out",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[FILE]",
    help="Print the scores as JSON instead of the table; --json FILE: write them to FILE too.",
)
@click.option(
    "--direction", help="Only this export (CycleGAN / UNIT: a2b or b2a); default: every image export."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Noise codes and subsets.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--aligned", type=click.Path(file_okay=False), help="Paired mode: a folder of A|B pairs.")
@click.option(
    "--inputs", type=click.Path(file_okay=False), help="Paired mode: input images (with --targets)."
)
@click.option(
    "--targets",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Paired mode: ground truth with the same file names (repeat to search several folders).",
)
@click.option(
    "--label-colors", type=int, help="Paired mode: also score label accuracy over this many colours."
)
@click.option(
    "--train-pairs",
    type=click.Path(file_okay=False),
    help="Paired mode, with --aligned and --label-colors: A|B training pairs whose most common label per "
    "pixel is scored as the trivial baseline.",
)
@click.option(
    "--size",
    type=int,
    help="Paired mode: resize to SIZE x SIZE (default: the image size the model trained at).",
)
@device_option
def evaluate(
    run_arg: str | None,
    run_opt: str | None,
    data: str | None,
    metrics: str,
    count: int,
    classifier: str | None,
    inception_weights: str | None,
    json_out: str | None,
    direction: str | None,
    seed: int,
    batch_size: int,
    aligned: str | None,
    inputs: str | None,
    targets: tuple[str, ...],
    label_colors: int | None,
    train_pairs: str | None,
    size: int | None,
    device: str,
) -> None:
    """Score a trained model: FID / KID / IS, SSIM / PSNR / L1 / LPIPS against ground truth, classifier
    scores (target domain, attributes, classes, coverage), diversity and memorisation; the untranslated
    input (noise models: real held-out images) is scored beside it as the baseline. Writes eval.json into
    the run."""
    if run_arg and run_opt and run_arg != run_opt:
        raise click.UsageError("give the run once: RUN or --run RUN")
    run = run_arg or run_opt
    if not run:
        raise click.UsageError("give the run to score: translate eval RUN --data PATH")
    if aligned or inputs or targets:
        return paired_mode(
            run, aligned, inputs, targets, direction, label_colors, train_pairs, size, json_out
        )
    if data is None:
        raise ConfigError(
            "give --data PATH (the dataset to score on), or for paired scores either --aligned DIR or both "
            "--inputs DIR and --targets DIR"
        )
    from translate.engine.device import resolve_device

    wanted = parse_metrics(metrics)
    device = resolve_device(device)
    report = score_run(
        run,
        data,
        wanted,
        count,
        classifier,
        inception_weights,
        direction,
        seed,
        batch_size,
        device,
        explicit=metrics.strip().lower() != "all",
    )
    written = write_report(report, run)
    if json_out is None or json_out != "-":
        click.echo(report.table())
        click.echo(f"wrote {written}")
    if json_out == "-":
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif json_out:
        Path(json_out).write_text(json.dumps(report.to_dict(), indent=2))


def parse_metrics(text: str) -> set[str]:
    from translate.metrics.scoring import METRICS

    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return set(METRICS)
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise ConfigError(
            f"unknown metric {', '.join(unknown) or '(none)'}; known: all, {', '.join(METRICS)}"
        )
    return set(names)


# ----------------------------------------------------------------------------------------- the run
def score_run(
    run: str,
    data: str | None,
    wanted: set[str],
    count: int,
    classifier: str | None,
    inception_weights: str | None,
    direction: str | None,
    seed: int,
    batch_size: int,
    device: torch.device,
    explicit: bool = False,
):
    """The Report of the model at ``run`` on the held-out data of ``data``; ``explicit``: the metrics were
    named (a named LPIPS whose backbone is missing is an error, not a note)."""
    from translate.config import build_config
    from translate.engine.checkpoint import load_model_checkpoint
    from translate.inference import model_exports
    from translate.metrics.report import Report

    checkpoint = load_model_checkpoint(run)
    config = build_config(checkpoint.config)
    root = data
    data_config = dataclasses.replace(config.data, root=str(root), max_images=None, num_workers=0)
    exports = model_exports(checkpoint)
    report = Report(checkpoint.task, checkpoint.step, str(run), str(root))
    suite = build_suite(report, wanted, classifier, inception_weights, seed, count, device, explicit)
    kinds = {e.kind for e in exports.values()}
    if IMAGE_TO_IMAGE in kinds:
        names = [n for n, e in exports.items() if e.kind == IMAGE_TO_IMAGE]
        if direction is not None and direction not in names:
            raise ConfigError(f"this {checkpoint.task} model offers {', '.join(names)}; not {direction}")
        for name in [direction] if direction else names:
            score_translation(
                report, suite, run, checkpoint, data_config, name, exports[name], count, batch_size, device
            )
    elif IMAGE_AND_TARGET_TO_IMAGE in kinds:
        score_targets(report, suite, run, data_config, count, batch_size, seed, device)
    elif NOISE_TO_IMAGE in kinds:
        score_sampling(report, suite, run, data_config, count, batch_size, seed, device)
    else:
        raise ConfigError(f"translate eval does not score {', '.join(sorted(kinds))} models yet")
    return report


def build_suite(report, wanted, classifier, inception_weights, seed, count, device, explicit=False):
    """The extractors and LPIPS model the asked metrics need; what is missing becomes a note."""
    from translate.metrics.features import classifier_extractor, inception_extractor
    from translate.metrics.perceptual import load_lpips
    from translate.metrics.scoring import DISTRIBUTION, Suite
    from translate.metrics.weights import MissingWeights

    suite = Suite(wanted, seed=seed, pairs=max(1, min(100, count // 2)))
    if suite.wants(*DISTRIBUTION):
        try:
            suite.extractors.append(inception_extractor(inception_weights, device))
        except MissingWeights as exc:
            if inception_weights is not None:
                raise
            report.note(f"FID/KID/IS on Inception skipped: {exc}")
    if classifier is not None:
        extractor, _ = classifier_extractor(classifier, device)
        suite.extractors.append(extractor)
        suite.classifier = extractor
    elif "domain" in wanted:
        report.note(
            "classifier scores (domain) need --classifier clf.pt: train one with "
            "`translate classifier train DATA --out clf.pt`"
        )
    if suite.wants("lpips", "diversity"):
        try:
            suite.lpips = load_lpips("alex", device)
        except MissingWeights as exc:
            if explicit and "lpips" in wanted:
                raise
            report.note(f"LPIPS skipped: {exc}")
    for extractor in suite.extractors:
        report.extractors[extractor.key] = extractor.describe()
    if suite.lpips is not None:
        report.extractors["lpips"] = {
            "name": suite.lpips.name,
            "weights": suite.lpips.weights,
            "sha256": _sha(suite.lpips.weights),
        }
    return suite


def _sha(path: str | None) -> str | None:
    from translate.metrics.weights import sha256

    return sha256(path) if path else None


def write_report(report, run: str) -> Path:
    """``eval.json`` in the run folder (beside the checkpoint when a checkpoint was named), atomically."""
    from translate.engine.checkpoint import resolve_model_file

    file = resolve_model_file(run)
    if file.parent.parent.name == "checkpoints":
        folder = file.parent.parent.parent
    else:
        folder = Path(run) if Path(run).is_dir() else file.parent
    path = folder / "eval.json"
    partial = path.with_name("eval.json.partial")
    partial.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    partial.replace(path)
    return path


# ----------------------------------------------------------------------------------------- data
def batches_of(tensors: Iterator[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    chunk: list[torch.Tensor] = []
    for tensor in tensors:
        chunk.append(tensor)
        if len(chunk) == batch_size:
            yield torch.stack(chunk)
            chunk = []
    if chunk:
        yield torch.stack(chunk)


def read_files(files: list[Path], channels: int, dataset) -> Iterator[torch.Tensor]:
    """Each file as the dataset's evaluation transform makes it (resize, centre crop): ``(C, H, W)``."""
    from translate.data.io import read_image

    for path in files:
        yield dataset.transform(None)(image=read_image(path, channels))["image"]


def items(dataset, indices) -> Iterator[dict[str, Any]]:
    for index in indices:
        yield dataset[int(index)]


def labelled_batches(dataset, indices, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """``(images, labels or None)`` of ``dataset[i]`` for ``indices``, in batches."""
    chunk: list[dict[str, Any]] = []
    for item in items(dataset, indices):
        chunk.append(item)
        if len(chunk) == batch_size:
            yield _stack(chunk)
            chunk = []
    if chunk:
        yield _stack(chunk)


def _stack(chunk: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor | None]:
    images = torch.stack([c["image"] for c in chunk])
    labels = torch.stack([c["label"] for c in chunk]) if "label" in chunk[0] else None
    return images, labels


def held_out_files(data_config, name: str) -> tuple[list[Path], list[Path], dict[Path, Path]]:
    """Unaligned data, export ``name`` (a2b / b2a): the held-out input files, the target domain's held-out
    files, and each input's ground truth (a target file of the same relative name), when there is one."""
    from translate.data.folders import data_root, domain_folders, image_files, unaligned_expectation

    root = data_root(data_config.root)
    expected = unaligned_expectation(root, data_config.domains)
    (folder_a, exclude_a), (folder_b, exclude_b) = domain_folders(root, data_config.domains, train=False)
    sides = [
        (folder_a, image_files(folder_a, expected, exclude_a)),
        (folder_b, image_files(folder_b, expected, exclude_b)),
    ]
    (source, inputs), (target, reference) = sides if name != "b2a" else sides[::-1]
    by_name = {p.relative_to(target).as_posix(): p for p in reference}
    pairs = {p: by_name[k] for p in inputs if (k := p.relative_to(source).as_posix()) in by_name}
    return inputs, reference, pairs


# ----------------------------------------------------------------------------------------- image -> image
def score_translation(report, suite, run, checkpoint, data_config, name, export, count, batch_size, device):
    from translate.inference import Translator
    from translate.metrics.scoring import PAIRED, evaluate_translation
    from translate.registry import DATASETS, TASKS

    translator = Translator.from_run(run, direction=name, device=device)
    kind = TASKS.get(checkpoint.task).dataset
    target = export.options.get("target")
    target_class = None
    if suite.classifier is not None and suite.wants("domain"):
        classes = suite.classifier.classes
        if suite.classifier.kind != "domains":
            report.note("target share needs a domain classifier (this one reads attributes)")
        elif target is None:
            report.note(f"{name}: the model names no target domain: no target share")
        else:
            # a domain named by a sub-path (apple/train) is the class of its first folder (apple)
            target = next((t for t in (target, Path(target).parts[0]) if t in classes), target)
            if target in classes:
                target_class = classes.index(target)
            else:
                known = ", ".join(classes)
                report.note(f"{name}: the classifier's classes ({known}) do not include {target!r}")

    def translate(images: torch.Tensor) -> torch.Tensor:
        return translator.translate_tensor(images).float().cpu()

    if kind == "aligned":
        dataset = DATASETS.build(
            "aligned", data=dataclasses.replace(data_config, direction=name), train=False
        )
        indices = range(min(count, len(dataset)))

        def pair_batches():
            chunk = []
            for item in items(dataset, indices):
                chunk.append(item)
                if len(chunk) == batch_size:
                    yield {
                        "input": torch.stack([c["input"] for c in chunk]),
                        "target": torch.stack([c["target"] for c in chunk]),
                    }
                    chunk = []
            if chunk:
                yield {
                    "input": torch.stack([c["input"] for c in chunk]),
                    "target": torch.stack([c["target"] for c in chunk]),
                }

        report.sections[name] = (
            f"{len(indices)} held-out A|B pairs of {data_config.root}; reference: their targets"
        )
        report.add(evaluate_translation(suite, translate, pair_batches(), None, target_class, name))
        return
    dataset = DATASETS.build(kind, data=data_config, train=False)
    in_channels, out_channels = (dataset.in_channels, dataset.out_channels)
    if name == "b2a":
        in_channels, out_channels = out_channels, in_channels
    inputs, reference, truth = held_out_files(data_config, name)
    inputs = inputs[:count]
    paired = [p for p in inputs if p in truth]
    use_pairs = bool(paired) and len(paired) == len(inputs)
    if suite.wants(*PAIRED) and not use_pairs:
        report.note(
            f"{name}: no ground truth for every input (same file names in both held-out folders): "
            "no SSIM/PSNR/L1/LPIPS"
        )

    def input_batches():
        files = iter(inputs)
        for images in batches_of(read_files(inputs, in_channels, dataset), batch_size):
            chunk = [next(files) for _ in range(len(images))]
            batch = {"input": images}
            if use_pairs:
                batch["target"] = torch.stack(
                    list(read_files([truth[p] for p in chunk], out_channels, dataset))
                )
            yield batch

    source = export.options.get("source", "A" if name == "a2b" else "B")
    report.sections[name] = (
        f"{source} -> {target or '?'}: {len(inputs)} held-out inputs; reference: "
        f"{min(count, len(reference))} held-out {target or 'target'} images"
        + (" (ground truth: same file names)" if use_pairs else "")
    )
    real = batches_of(read_files(reference[:count], out_channels, dataset), batch_size)
    report.add(evaluate_translation(suite, translate, input_batches(), real, target_class, name))


# ----------------------------------------------------------------------------------------- image + target
def score_targets(report, suite, run, data_config, count, batch_size, seed, device):
    from translate.data.labelled import LabelledDataset
    from translate.inference import Translator
    from translate.metrics.scoring import evaluate_targets

    translator = Translator.from_run(run, device=device)
    space = translator.labels
    held_out = LabelledDataset.from_config(data_config, train=False)
    train = LabelledDataset.from_config(data_config, train=True)
    if list(held_out.space.names) != list(space.names):
        raise DataError(
            f"{data_config.root} has the labels {', '.join(held_out.space.names)}; the model was trained on "
            f"{', '.join(space.names)}"
        )
    switch_on = {n for n in space.names if space.kind == "domains" or len(space.group_of(n)) > 1}
    judge, judge_name = None, "classifier"
    if suite.classifier is not None:
        judge = classifier_judge(report, suite.classifier, space)
    if judge is None and suite.wants("domain"):
        judge_name = "model critic"
        report.note(
            "labels read by the model's own critic head (it was trained to satisfy it: optimistic); "
            "give --classifier for an independent reading"
        )

        def judge(images: torch.Tensor) -> dict[str, torch.Tensor]:
            labels = translator.estimate_labels(images).cpu()
            return {n: labels[:, i] for i, n in enumerate(space.names)}

    def translate(images, source, target):
        return translator.translate_tensor(images, target, source).float().cpu()

    indices = range(min(count, len(held_out)))
    batches = (
        {"image": images, "label": labels}
        for images, labels in labelled_batches(held_out, indices, batch_size)
    )
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:count]
    reference = (images for images, _ in labelled_batches(train, order, batch_size))
    report.sections["targets"] = (
        f"{len(indices)} held-out images, each label flipped (or switched on); reference: {len(order)} "
        "training images"
    )
    report.add(
        evaluate_targets(
            suite, translate, batches, list(space.names), switch_on, judge, judge_name, reference, "targets"
        )
    )


def classifier_judge(report, extractor, space):
    """``images -> {label: (N,) 0/1}`` of the model's labels that the classifier knows, or None."""
    classes = extractor.classes
    known = [n for n in space.names if n in classes]
    if not known:
        report.note(f"the classifier's classes ({', '.join(classes)}) name none of the model's labels")
        return None
    missing = [n for n in space.names if n not in classes]
    if missing:
        report.note(f"the classifier does not read {', '.join(missing)}")

    def judge(images: torch.Tensor) -> dict[str, torch.Tensor]:
        _, logits = extractor(images)
        if extractor.kind == "domains":
            read = torch.nn.functional.one_hot(logits.argmax(1), len(classes)).float()
        else:
            read = (logits > 0).float()
        return {n: read[:, classes.index(n)] for n in known}

    return judge


# ----------------------------------------------------------------------------------------- noise -> image
def score_sampling(report, suite, run, data_config, count, batch_size, seed, device):
    from translate.inference import Sampler
    from translate.metrics.scoring import evaluate_sampling
    from translate.registry import DATASETS

    sampler = Sampler.from_run(run, device=device)
    data_config = dataclasses.replace(data_config, out_channels=sampler.export.out_channels)
    train = DATASETS.build("images", data=data_config, train=True)
    held_out = DATASETS.build("images", data=data_config, train=False)
    codes = sampler.noise(count, seed)
    labels = torch.arange(count) % sampler.num_classes if sampler.num_classes else None
    pairs = suite.pairs
    pair_labels = torch.arange(pairs) % sampler.num_classes if sampler.num_classes else None
    pair_codes = (sampler.noise(pairs, seed + 1), sampler.noise(pairs, seed + 2), pair_labels)
    class_map = None
    if suite.classifier is not None and sampler.num_classes and suite.wants("domain"):
        class_map = class_mapping(report, sampler.classes, suite.classifier.classes)

    def generate(z: torch.Tensor, chunk: torch.Tensor | None) -> torch.Tensor:
        return sampler(z, chunk).float().cpu()

    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    report.sections["sample"] = (
        f"{count} samples"
        + (f" ({sampler.num_classes} classes in turn)" if sampler.num_classes else "")
        + f"; reference: {min(count, len(train))} training images; baseline: {min(count, len(held_out))} "
        "held-out images"
    )
    report.add(
        evaluate_sampling(
            suite,
            generate,
            codes.cpu(),
            labels,
            labelled_batches(train, order, batch_size),
            labelled_batches(held_out, range(len(held_out)), batch_size),
            class_map,
            (pair_codes[0].cpu(), pair_codes[1].cpu(), pair_labels),
            batch_size,
            "sample",
        )
    )
    if suite.wants("nn"):
        report.note(
            "NN train distance: RMS pixel distance (32 px copies) to the nearest of up to 5000 "
            "training images"
        )


def class_mapping(report, model_classes: list[str], classifier_classes: list[str]) -> dict[int, int] | None:
    """The model's class index -> the classifier's: by name, else by position when the counts agree."""
    by_name = {i: classifier_classes.index(c) for i, c in enumerate(model_classes) if c in classifier_classes}
    if by_name:
        return by_name
    if len(model_classes) == len(classifier_classes):
        report.note(f"classes {model_classes} taken as the classifier's {classifier_classes} in order")
        return dict(enumerate(range(len(model_classes))))
    report.note("the classifier's classes do not match the model's: no class accuracy")
    return None


# ----------------------------------------------------------------------------------------- paired mode
def paired_mode(run, aligned, inputs, targets, direction, label_colors, train_pairs, size, json_out) -> None:
    """The older mode: L1, PSNR (and label accuracy) against paired ground truth."""
    from translate.engine.checkpoint import load_model_checkpoint
    from translate.inference import Translator
    from translate.metrics.evaluate import aligned_pairs, evaluate_pairs, named_pairs

    if direction not in (None, "a2b", "b2a"):
        raise ConfigError(f"--direction must be a2b or b2a; got {direction}")
    if bool(aligned) == bool(inputs and targets):
        raise ConfigError("give either --aligned DIR or both --inputs DIR and --targets DIR")
    trained = load_model_checkpoint(run).config["data"]
    direction = direction or (trained["direction"] if aligned else "a2b")
    size = size or trained["image_size"]
    translator = Translator.from_run(run, direction=direction)
    if aligned:
        pairs = aligned_pairs(Path(aligned), direction, translator.in_channels, size)
    else:
        pairs = named_pairs(Path(inputs), [Path(t) for t in targets], translator.in_channels, size)
    train_targets = None
    if train_pairs:
        if not (aligned and label_colors):
            raise ConfigError("--train-pairs needs --aligned and --label-colors")
        train_targets = torch.stack(
            [
                target
                for _, target in aligned_pairs(Path(train_pairs), direction, translator.in_channels, size)
            ]
        )
    scores = evaluate_pairs(translator.translate_many, pairs, label_colors, train_targets)
    if json_out == "-":
        click.echo(json.dumps(dataclasses.asdict(scores), indent=2))
        return
    click.echo(scores.table())
    if json_out:
        Path(json_out).write_text(json.dumps(dataclasses.asdict(scores), indent=2))
