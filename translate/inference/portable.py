"""Portable models: one export of a trained model as an ONNX or TorchScript file that carries its contract.

The file holds the network of the export (what inference runs: eval mode; pix2pix's batch statistics as
the per-image norms they are) with a dynamic batch, and for image inputs a dynamic height and width in
multiples of the network's ``size_multiple``. Its metadata (ONNX ``metadata_props``, one JSON value per key;
TorchScript: the extra file ``translate.json``) is the contract a caller needs: the kind, the inputs and
their layout, the value range ``[-1, 1]``, channels, size multiple, training image size, labels or classes.

A model whose exports use other networks of the trained task (StarGAN's classifier, MUNIT's style encoder)
exports the translation alone: those networks are not in the file, nor are the options that name them
(``TASK_MODULE_OPTIONS``). A style model's file takes ``(image, style)``, the code ``(N, style_dim, 1, 1)``
with the image's batch (the contract's ``options`` give ``style_dim``): random styles and given codes run
from the file, the style of a reference image needs the run folder.

``load_exported`` reads such a file back as a module that the ``Translator`` calls like the network itself,
so pre- and post-processing stay the Translator's.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translate.engine.device import resolve_device
from translate.errors import CheckpointError, ConfigError, TranslateError
from translate.exports import Export
from translate.inference.tiles import normalises_by_input, per_image_norms
from translate.kinds import KINDS, kind_of

FORMAT = "translate-export-1"
FORMATS = ("onnx", "torchscript")
BACKENDS = ("torch", "onnxruntime")
ONNX_OPSET = 18
"""Opset 18 (2022): every operator these networks need; onnxruntime >= 1.14 and most runtimes read it."""
ONNX_EXTRA = 'pip install "translate-gan[onnx]" (in a checkout: pip install -e ".[onnx]")'
"""How to install the ``onnx`` extra: the distribution is ``translate-gan`` (``translate`` on PyPI is another
project)."""
CONTRACT_FILE = "translate.json"
CHANNEL_NAMES = {1: "gray", 3: "RGB"}
CONTRACT_KEYS = (
    *("format", "kind", "export", "task", "step", "inputs", "outputs", "layout", "range", "in_channels"),
    *("out_channels", "channels", "size_multiple", "image_size", "test_mode", "dropout", "per_image_norms"),
    "options",
)
"""The keys of the contract an exported file carries (``exportable``)."""

TASK_MODULE_OPTIONS = ("classifier", "style_encoder")
"""Export options that name another module of the trained task: left out of an exported file's contract,
which holds the export's network only."""

log = logging.getLogger("translate")


def require(module: str) -> Any:
    """Import an optional dependency of the ``onnx`` extra, or a one-line error saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"ONNX needs the optional packages onnx, onnxscript and onnxruntime: {ONNX_EXTRA}"
        ) from None


# ---------------------------------------------------------------------------------------------- export
def export_model(
    path: str | Path,
    out: str | Path,
    format: str = "onnx",
    name: str | None = None,
    without_dropout: bool = False,
) -> Path:
    """Write export ``name`` of the model at ``path`` (run folder, checkpoint folder, ``model.safetensors``)
    to ``out`` as ``format`` (``onnx`` or ``torchscript``); returns ``out``.

    pix2pix models that translate with dropout drawn at test time (``test_mode: batch_statistics`` and a
    generator with dropout) are refused: no exported file reproduces PyTorch's random numbers.
    ``without_dropout`` exports them with dropout off (batch statistics kept), stated in the contract."""
    from translate.inference.model import load_export

    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; known: {', '.join(FORMATS)}")
    if format == "onnx":
        for module in ("onnx", "onnxscript", "onnxruntime"):
            require(module)
    loaded = load_export(path, name, tuple(KINDS), "cpu")
    network, contract = exportable(loaded, without_dropout)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    inputs = example_inputs(contract)
    with quiet():
        if format == "onnx":
            _export_onnx(network, inputs, contract, out)
        else:
            traced = torch.jit.trace(network, inputs, check_trace=False)
            torch.jit.save(traced, str(out), _extra_files={CONTRACT_FILE: json.dumps(contract)})
    return out


def check_parity(
    path: str | Path, exported: str | Path, name: str | None = None, without_dropout: bool = False
) -> tuple[float, str]:
    """The largest absolute difference between ``exported`` and the PyTorch network it holds (as inference
    runs it) on random inputs of two batch sizes and, for images, two spatial sizes; and those sizes."""
    from translate.inference.model import load_export

    loaded = load_export(path, name, tuple(KINDS), "cpu")
    network, contract = exportable(loaded, without_dropout)
    runner, _ = load_exported(exported)
    worst, sizes = 0.0, []
    for seed, (batch, blocks) in enumerate([(2, (2, 2)), (3, (3, 5))]):
        inputs = example_inputs(contract, batch, blocks, seed)
        with torch.no_grad():
            worst = max(worst, (network(*inputs) - runner(*inputs)).abs().max().item())
        shape = inputs[0].shape
        sizes.append(f"{shape[0]} x {shape[-1]}x{shape[-2]} px" if len(shape) == 4 else f"batch {shape[0]}")
    return worst, " and ".join(sizes)


def exportable(loaded: Any, without_dropout: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """The network inference runs for a ``LoadedExport`` (in eval mode) and the file's contract."""
    export, checkpoint = loaded.export, loaded.checkpoint
    network = loaded.module
    dropout = export.batch_statistics and any(
        isinstance(m, nn.Dropout) and m.p > 0 for m in network.modules()
    )
    if export.batch_statistics:
        if dropout and not without_dropout:
            raise ConfigError(
                f"this {checkpoint.task} model translates with dropout on at test time (test_mode "
                "batch_statistics), drawn from PyTorch's random numbers, which no exported file reproduces; "
                "--without-dropout exports it with dropout off (its outputs then differ from translate apply)"
            )
        network = per_image_norms(network)  # batch norm on one image's statistics = instance norm
    network = network.eval()
    kind = export.kind
    inputs = kind_of(export).network_inputs(export)
    options = {key: value for key, value in export.options.items() if key not in TASK_MODULE_OPTIONS}
    contract = {  # CONTRACT_KEYS
        "format": FORMAT,
        "kind": kind,
        "export": loaded.name,
        "task": checkpoint.task,
        "step": checkpoint.step,
        "inputs": inputs,
        "outputs": ["output"],
        "layout": "NCHW",
        "range": [-1.0, 1.0],
        "in_channels": export.in_channels,
        "out_channels": export.out_channels,
        "channels": CHANNEL_NAMES.get(export.out_channels, f"{export.out_channels} channels"),
        "size_multiple": int(getattr(network, "size_multiple", 1)),
        "image_size": checkpoint.config.get("data", {}).get("image_size"),
        "test_mode": "batch_statistics" if export.batch_statistics else "eval",
        "dropout": "removed (translate apply draws it at test time)" if dropout else "none at test time",
        "per_image_norms": any(normalises_by_input(m) for m in network.modules()),
        "options": options,
    }
    return network, contract


def example_inputs(
    contract: dict[str, Any], batch: int = 2, blocks: tuple[int, int] = (2, 2), seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Random inputs of the exported network's kind: ``batch`` of them; images of ``blocks`` (rows,
    columns) times a block of at least 16 px that is a multiple of the size multiple."""
    multiple = contract["size_multiple"]
    block = -(-16 // multiple) * multiple
    export = Export(
        contract["kind"], "", contract["in_channels"], contract["out_channels"], False, contract["options"]
    )
    generator = torch.Generator().manual_seed(seed)
    return kind_of(export).example_inputs(export, batch, block * blocks[0], block * blocks[1], generator)


def _dynamic_shapes(contract: dict[str, Any]) -> tuple[dict[int, Any], ...]:
    """Dynamic batch everywhere; image height and width any multiple of the size multiple."""
    from torch.export import Dim

    batch = Dim("batch")
    if "image" not in contract["inputs"]:
        return tuple({0: batch} for _ in contract["inputs"])
    multiple = contract["size_multiple"]
    height, width = Dim("height_blocks", min=1), Dim("width_blocks", min=1)
    image = {0: batch, 2: multiple * height, 3: multiple * width}
    return (image,) if len(contract["inputs"]) == 1 else (image, {0: batch})


def _export_onnx(
    network: nn.Module, inputs: tuple[torch.Tensor, ...], contract: dict[str, Any], out: Path
) -> None:
    try:
        program = torch.onnx.export(
            network,
            inputs,
            input_names=contract["inputs"],
            output_names=contract["outputs"],
            opset_version=ONNX_OPSET,
            dynamic_shapes=_dynamic_shapes(contract),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    except Exception as exc:  # torch.export's errors are pages long: the first line says what failed
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TranslateError(
            f"ONNX export of {contract['task']} {contract['export']} failed: {reason}"
        ) from exc
    for key, value in contract.items():
        program.model.metadata_props[key] = json.dumps(value)
    program.save(str(out), external_data=False)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Without the exporters' notes on their passes, deprecations and internals (warnings, INFO logs)."""
    loggers = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript", "torch.onnx")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


# ---------------------------------------------------------------------------------------------- load
def is_exported(path: str | Path) -> bool:
    """Whether ``path`` is a file ``translate export`` writes (ONNX or TorchScript), by its first bytes."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() == ".onnx":
        return True
    with path.open("rb") as handle:
        return handle.read(2) == b"PK"  # TorchScript: a zip archive


def read_contract(path: str | Path) -> dict[str, Any]:
    """The contract stored in an exported file."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        ort = require("onnxruntime")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return _onnx_contract(path, session)
    return TorchScriptNetwork(path, torch.device("cpu")).contract


def _onnx_contract(path: Path, session: Any) -> dict[str, Any]:
    """ONNX metadata holds strings: each value of the contract as JSON."""
    values = session.get_modelmeta().custom_metadata_map
    return _checked(path, {key: json.loads(value) for key, value in values.items() if key in CONTRACT_KEYS})


def _checked(path: Path, contract: dict[str, Any]) -> dict[str, Any]:
    if contract.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not written by `translate export` (no {FORMAT} contract in it)")
    return contract


def load_exported(
    path: str | Path, device: str | torch.device = "cpu", backend: str | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """An exported file as a module called like the network it holds, and its contract. ``.onnx`` files
    run with onnxruntime, TorchScript with torch (``backend`` may only confirm that)."""
    path = Path(path)
    onnx = path.suffix.lower() == ".onnx"
    needed = "onnxruntime" if onnx else "torch"
    if backend not in (None, needed):
        raise ConfigError(f"{path.name} runs with the {needed} backend, not {backend}")
    if onnx:
        network: nn.Module = OnnxNetwork(path, resolve_device(device))
    else:
        network = TorchScriptNetwork(path, resolve_device(device))
    return network, network.contract


class OnnxNetwork(nn.Module):
    """An ONNX file run by onnxruntime, called with tensors like the network it was exported from."""

    def __init__(self, path: Path, device: torch.device) -> None:
        super().__init__()
        ort = require("onnxruntime")
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif device.type != "cpu":
            log.info("onnxruntime runs %s on the CPU (no provider for %s)", path.name, device)
        self.session = ort.InferenceSession(str(path), providers=providers)
        self.run_options = ort.RunOptions()
        self.run_options.log_severity_level = 4  # a failed run raises its message: no log line beside it
        self.contract = _onnx_contract(path, self.session)
        self.names = [i.name for i in self.session.get_inputs()]
        self.device = torch.device("cpu")  # the session takes and gives numpy arrays
        self.size_multiple = self.contract["size_multiple"]
        self.per_image_norms = self.contract["per_image_norms"]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        feeds = {name: x.detach().cpu().numpy() for name, x in zip(self.names, inputs)}
        (output,) = self.session.run(None, feeds, self.run_options)
        return torch.from_numpy(output).to(inputs[0].device)


class TorchScriptNetwork(nn.Module):
    """A TorchScript file written by ``translate export``, with its contract."""

    def __init__(self, path: Path, device: torch.device) -> None:
        super().__init__()
        extra = {CONTRACT_FILE: ""}
        try:
            with quiet():  # torch.jit.load's deprecation warning
                self.module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path} is not a readable TorchScript file: {str(exc).splitlines()[0]}"
            ) from None
        self.contract = _checked(path, json.loads(extra[CONTRACT_FILE] or "{}"))
        self.device = device
        self.size_multiple = self.contract["size_multiple"]
        self.per_image_norms = self.contract["per_image_norms"]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.module(*inputs)
