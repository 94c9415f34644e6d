"""The EMA of the generator's weights (``train.ema_decay``): its arithmetic, its checkpoint layout, what
uses it (sample grids, inference), and exact resuming with it on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY_SIZE, EvaluatingTrainer, assert_resuming_changes_nothing, tiny_overrides, tiny_train
from safetensors.torch import load_file
from torch import nn
from toy_tasks import SIZE, ToyImages, ToyShared, registered

from translate import Translator
from translate.api import resolve_config
from translate.catalog.demo import make_demo_dataset
from translate.config import build_config
from translate.engine.checkpoint import checkpoint_dirs, load_model_checkpoint
from translate.engine.ema import EMA, RAW_PREFIX
from translate.errors import ConfigError
from translate.registry import TASKS


@pytest.fixture(autouse=True)
def toy_tasks():
    with registered():
        yield


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_demo_dataset(root / "aligned", layout="aligned", num_train=6, num_test=2, size=TINY_SIZE)


def toy_config(task: str, steps: int = 4, **train) -> object:
    run = {"data": {"image_size": SIZE, "num_workers": 0}, "train": tiny_train(steps, num_samples=2, **train)}
    return build_config({"task": task}, TASKS.get(task).default_config, run)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        self.critic = nn.Linear(2, 1)


def test_the_average_matches_a_hand_computation_and_buffers_are_copied():
    net = Net().double()
    ema = EMA(net, [net.generator], decay=0.9, warmup=False)
    weight = net.generator[0].weight
    expected = weight.detach().clone()
    for step in range(3):
        with torch.no_grad():
            weight.add_(step + 1.0)  # an "optimizer step"
            net.generator[1].running_mean.fill_(step)
        ema.update()
        expected = 0.9 * expected + 0.1 * weight.detach()
    averaged = ema.state_dict()
    assert torch.allclose(averaged["generator.0.weight"], expected, rtol=0, atol=1e-12)
    # buffers are copied, not averaged; the critic is not part of the average
    assert torch.equal(averaged["generator.1.running_mean"], torch.full((2,), 2.0, dtype=torch.double))
    assert torch.equal(averaged["generator.1.num_batches_tracked"], net.generator[1].num_batches_tracked)
    assert not any(key.startswith("critic") for key in averaged)


def test_warmup_uses_the_smaller_of_the_decay_and_1_plus_n_over_10_plus_n():
    net = Net().double()
    ema = EMA(net, [net.generator], decay=0.5, warmup=True)
    bias = net.generator[0].bias
    expected = bias.detach().clone()
    decays = []
    for n in range(12):
        decays.append(ema.current_decay())
        with torch.no_grad():
            bias.mul_(1.5).add_(1.0)
        ema.update()
        decay = min(0.5, (1 + n) / (10 + n))
        expected = decay * expected + (1 - decay) * bias.detach()
    assert decays[:3] == [0.1, 2 / 11, 3 / 12] and decays[-1] == 0.5
    assert torch.allclose(ema.state_dict()["generator.0.bias"], expected, rtol=0, atol=1e-12)
    assert ema.updates == 12


def test_swapping_in_the_average_restores_the_trained_weights_bit_for_bit():
    net = Net()
    ema = EMA(net, [net.generator], decay=0.99, warmup=False)
    with torch.no_grad():
        net.generator[0].weight.mul_(3)
    ema.update()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with ema.swapped():
        assert torch.equal(net.generator[0].weight, ema.state_dict()["generator.0.weight"])
        assert not torch.equal(net.generator[0].weight, before["generator.0.weight"])
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_module_shared_by_two_networks_is_averaged_once_under_both_names():
    task = ToyShared()
    ema = EMA(task, [task.g_ab, task.g_ba], decay=0.5, warmup=False)
    assert len(ema.live) == len({id(t) for t in ema.live})
    assert ema.keys["g_ab.shared.weight"] == ema.keys["g_ba.shared.weight"]
    averaged = ema.state_dict()
    assert averaged["g_ab.shared.weight"] is averaged["g_ba.shared.weight"]


def test_ema_decay_must_be_between_0_and_1():
    for decay in (0, 1, 1.5, -0.1):
        with pytest.raises(ConfigError, match="train.ema_decay"):
            build_config({"task": "pix2pix"}, {"train": {"ema_decay": decay}})


def test_checkpoints_export_the_average_and_keep_the_trained_weights_in_the_state(aligned, tmp_path):
    layers = [{"data": {"root": str(aligned)}}, tiny_overrides("pix2pix", steps=2, ema_decay=0.9)]
    trainer = EvaluatingTrainer(resolve_config("pix2pix", overrides=layers), tmp_path / "run")
    trainer.fit()
    folder = checkpoint_dirs(tmp_path / "run")[-1]
    model, state = load_file(folder / "model.safetensors"), load_file(folder / "state.safetensors")
    averaged, trained = trainer.ema.state_dict(), trainer.task.state_dict()
    assert set(averaged) == {k for k in trained if k.startswith("generator.")}
    for key in trained:
        if key in averaged:
            assert torch.equal(model[key], averaged[key].cpu()), key
            assert torch.equal(state[RAW_PREFIX + key], trained[key].cpu()), key
        else:
            assert torch.equal(model[key], trained[key].cpu()), key  # the discriminator as trained
    assert any(not torch.equal(model[k], state[RAW_PREFIX + k]) for k in averaged if k.endswith("weight")), (
        "the average differs from the trained weights"
    )
    checkpoint = load_model_checkpoint(tmp_path / "run")
    assert checkpoint.ema == {"decay": 0.9, "warmup": True, "updates": 2}
    # inference loads the average
    translator = Translator.from_run(tmp_path / "run")
    key = next(k for k in averaged if k.endswith("weight"))
    assert torch.equal(translator.generator.state_dict()[key[len("generator.") :]], model[key])


def test_sample_grids_and_evaluation_use_the_average(tmp_path):
    seen = []

    class Recording(EvaluatingTrainer):
        def save_samples(self, sample_batch):
            seen.append(
                ("grid", self._generator_weight(), self.ema.state_dict()["generator.0.weight"].clone())
            )
            return super().save_samples(sample_batch)

        def _generator_weight(self):
            return self.task.generator[0].weight.detach().clone()

    trainer = Recording(toy_config("toy_wgan", steps=2, ema_decay=0.5), tmp_path / "run", dataset=ToyImages())
    original = trainer.task.visuals

    def visuals(batch):
        seen.append(("visuals", trainer._generator_weight(), None))
        return original(batch)

    trainer.task.visuals = visuals
    trainer.fit()
    (_, trained, average), (_, used, _) = seen[0], seen[1]
    assert torch.equal(used, average) and not torch.equal(used, trained)
    assert torch.equal(trainer.task.generator[0].weight, seen[-2][1]), "the trained weights come back"


@pytest.mark.parametrize("task", ["toy_wgan", "pix2pix"])
def test_resuming_with_ema_and_evaluation_changes_nothing(task, aligned, tmp_path):
    if task == "toy_wgan":
        config = toy_config(task, steps=4, checkpoint_every=100, ema_decay=0.8, eval_every=1, eval_images=6)
        assert_resuming_changes_nothing(config, tmp_path, dataset=ToyImages())
    else:
        train = {"checkpoint_every": 100, "ema_decay": 0.8, "eval_every": 1, "best_metric": "eval/psnr"}
        layers = [{"data": {"root": str(aligned)}}, tiny_overrides(task, steps=4, **train)]
        assert_resuming_changes_nothing(resolve_config(task, overrides=layers), tmp_path)
    logs = [(tmp_path / run / "log.jsonl").read_text() for run in ("straight", "resumed")]
    assert "eval/" in logs[0]
    evals = [[line for line in log.splitlines() if "eval/" in line] for log in logs]
    assert evals[0] == evals[1], "the resumed run evaluates exactly as the straight one"


def test_switching_ema_on_or_off_on_resume(tmp_path):
    config = toy_config("toy_wgan", steps=2, checkpoint_every=100)
    EvaluatingTrainer(config, tmp_path / "run", dataset=ToyImages()).fit()
    # on: the average starts from the weights at the checkpoint
    on = toy_config("toy_wgan", steps=4, checkpoint_every=100, ema_decay=0.9)
    trainer = EvaluatingTrainer(on, tmp_path / "run", resume=True, dataset=ToyImages())
    assert trainer.ema.updates == 0
    assert torch.equal(trainer.ema.state_dict()["generator.0.weight"], trainer.task.generator[0].weight)
    trainer.fit()
    # off: training goes on from the trained weights, not the exported average
    off = toy_config("toy_wgan", steps=6, checkpoint_every=100)
    trainer = EvaluatingTrainer(off, tmp_path / "run", resume=True, dataset=ToyImages())
    state = load_file(checkpoint_dirs(tmp_path / "run")[-1] / "state.safetensors")
    assert trainer.ema is None
    assert torch.equal(trainer.task.generator[0].weight, state[RAW_PREFIX + "generator.0.weight"])


def _two_process_worker(rank: int, world_size: int, port: int, root: str) -> None:
    """One of two gloo processes: a straight run with EMA, evaluation and a best checkpoint, and the same
    run stopped on rank 1 after step 2 and resumed."""
    from test_distributed import BATCH, Pairs, StopsOnRank1, join_process_group_env, pix2pix_config

    join_process_group_env(rank, world_size, port)
    from translate.engine import distributed

    train = {"ema_decay": 0.8, "eval_every": 1, "eval_metrics": ["psnr"], "best_metric": "eval/psnr"}
    runs = Path(root)
    EvaluatingTrainer(pix2pix_config(BATCH, 4, **train), runs / "straight", dataset=Pairs()).fit()
    StopsOnRank1(pix2pix_config(BATCH, 4, **train), runs / "stopped", dataset=Pairs()).fit()
    EvaluatingTrainer(pix2pix_config(BATCH, 4, **train), runs / "stopped", resume=True, dataset=Pairs()).fit()
    distributed.teardown()


def test_two_processes_keep_one_average_and_resume_it_exactly(tmp_path):
    import torch.multiprocessing as mp
    from test_distributed import free_port

    mp.start_processes(
        _two_process_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True, start_method="fork"
    )
    for name in ("model.safetensors", "state.safetensors"):
        a = load_file(checkpoint_dirs(tmp_path / "straight")[-1] / name)
        b = load_file(checkpoint_dirs(tmp_path / "stopped")[-1] / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert any(k.startswith(RAW_PREFIX) for k in a) and "rank1/rng/torch" in a
    evals = [
        [line for line in (tmp_path / run / "log.jsonl").read_text().splitlines() if "eval/" in line]
        for run in ("straight", "stopped")
    ]
    assert len(evals[0]) == 4 and evals[0] == evals[1]
    assert (tmp_path / "stopped" / "checkpoints" / "best" / "best.json").is_file()
