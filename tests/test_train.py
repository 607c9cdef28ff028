"""Short real training runs on tiny data."""

import json
import re
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from lightning.pytorch import Callback

from src.callbacks.finite_loss import FiniteLoss
from src.train import train
from src.utils.errors import CheckpointError, ConfigError, TrainingError
from src.utils.preflight import check_checkpoint
from src.utils.validate import validate

MODELS = [
    ("model=softmax", "model.impl=scratch", "optim=sgd_scratch"),
    ("model=softmax", "model.impl=torch"),
    ("model=mlp", "model.impl=scratch"),
    ("model=mlp", "model.impl=torch", "model.dropout=0.2", "model.hidden=[32,16]"),
    ("model=cnn", "model.arch=lenet"),
    ("model=cnn", "model.arch=convbn", "data=fashion_mnist"),
]


@pytest.mark.parametrize("overrides", MODELS, ids=[" ".join(m) for m in MODELS])
def test_each_model_trains_tests_and_writes_its_outputs(cfg_factory, overrides):
    cfg = cfg_factory(*overrides, "trainer.limit_train_batches=3")
    metrics, trainer = train(cfg)
    out = Path(cfg.paths.output_dir)
    assert 0 <= metrics["test/acc"] <= 1 and metrics["test/loss"] > 0
    assert metrics["best_score"] == pytest.approx(metrics["val/acc_best"])
    assert metrics["time/train_epoch_s"] > 0 and metrics["time/train_samples_per_s"] > 0
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert Path(trainer.checkpoint_callback.best_model_path).is_file()
    assert (out / "confusion_matrix.png").stat().st_size > 0
    assert (out / "test_predictions.png").stat().st_size > 0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_training_learns_the_toy_task(cfg_factory):
    cfg = cfg_factory("model=mlp", "optim=adam", "optim.lr=0.01", "trainer.max_epochs=8", "logger=none")
    metrics, _ = train(cfg)
    assert metrics["test/acc"] > 0.9
    assert metrics["train/loss"] < 0.5



def test_a_profiler_asked_for_times_every_hook_and_none_costs_nothing(cfg_factory):
    from lightning.pytorch.profilers import SimpleProfiler

    from src.utils.profiler import NoProfiler

    common = ("model=softmax", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "logger=none", "test=false")
    _, trainer = train(cfg_factory(*common, "trainer.profiler=simple", name="simple"))
    assert isinstance(trainer.profiler, SimpleProfiler)  # Lightning's own, as asked
    timed = trainer.profiler.recorded_durations
    assert len(timed["[Callback]FiniteLoss.on_train_batch_end"]) == 2  # each step's hook calls
    assert len(timed["[Strategy]SingleDeviceStrategy.training_step"]) == 2
    _, trainer = train(cfg_factory(*common, name="none"))
    assert isinstance(trainer.profiler, NoProfiler)
    with trainer.profiler.profile("a"), trainer.profiler.profile("b"):  # nested, as Lightning's calls are
        pass


def test_a_models_parameters_buffers_and_modules_still_register_beside_lightnings_fast_attribute():
    from torch import nn

    from src.models.base import BaseModule

    model = BaseModule()
    model._current_fx_name = "training_step"  # set by Lightning around each hook: a plain attribute
    model.w, model.layer = nn.Parameter(torch.ones(2)), nn.Linear(2, 2)
    model.register_buffer("b", torch.zeros(1))
    model.b = torch.ones(1)  # assigning to a buffer's name replaces the buffer
    assert model._current_fx_name == "training_step" and "_current_fx_name" not in model.state_dict()
    assert set(model.state_dict()) == {"w", "b", "layer.weight", "layer.bias"} and model.b.item() == 1
    assert [name for name, _ in model.named_parameters()] == ["w", "layer.weight", "layer.bias"]

def _weights(ckpt_path: Path) -> dict:
    return torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]


def test_resume_from_last_ckpt_continues_where_the_run_stopped(cfg_factory):
    common = ("model=mlp", "optim=adam", "logger=csv", "test=false")
    first = cfg_factory(*common, "trainer.max_epochs=1", name="first")
    _, first_trainer = train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    steps = first_trainer.global_step
    assert steps > 0

    # Nothing left to do: the weights come back exactly as saved.
    same = cfg_factory(*common, "trainer.max_epochs=1", f"ckpt_path={last}", name="same")
    _, trainer = train(same)
    assert trainer.global_step == steps
    saved = _weights(last)
    for key, value in trainer.lightning_module.state_dict().items():
        assert torch.equal(value, saved[key]), key

    # One more epoch: the epoch and step counters and the optimizer state carry on.
    more = cfg_factory(*common, "trainer.max_epochs=2", f"ckpt_path={last}", name="more")
    _, trainer = train(more)
    assert trainer.current_epoch == 2 and trainer.global_step == 2 * steps
    adam_steps = trainer.optimizers[0].state[trainer.optimizers[0].param_groups[0]["params"][0]]["step"]
    assert int(adam_steps) == 2 * steps
    assert not torch.equal(trainer.lightning_module.state_dict()["net.1.weight"], saved["net.1.weight"])


@pytest.mark.parametrize("stop_after", [1, 2])
def test_resumed_run_ends_exactly_where_an_uninterrupted_run_ends(cfg_factory, stop_after):
    common = ("model=mlp", "model.dropout=0.3", "optim=adam", "scheduler=step", "scheduler.step_size=1",
              "trainer.deterministic=true", "logger=csv", "test=false")
    full = cfg_factory(*common, "trainer.max_epochs=3", name="full")
    train(full)
    first = cfg_factory(*common, f"trainer.max_epochs={stop_after}", name="first")
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == stop_after - 1  # last.ckpt is the latest epoch
    resumed = cfg_factory(*common, "trainer.max_epochs=3", f"ckpt_path={last}", name="resumed")
    train(resumed)
    a = _weights(Path(full.paths.output_dir) / "checkpoints" / "last.ckpt")
    b = _weights(last)  # the resumed run carries on the checkpoints of the run it resumes
    assert not (Path(resumed.paths.output_dir) / "checkpoints").exists()
    for key in a:
        assert torch.allclose(a[key], b[key]), key


class BestSoFar(Callback):
    """Writes what a run knows of its best checkpoint when training starts (a file: Hydra
    imports this module anew, so class attributes would not be shared with the test)."""

    def __init__(self, path: str):
        self.path = path

    def on_train_start(self, trainer, pl_module):
        callback = trainer.checkpoint_callback
        score = None if callback.best_model_score is None else float(callback.best_model_score)
        best = float(pl_module.val_acc_best.max_value)
        Path(self.path).write_text(json.dumps([score, callback.best_model_path, best]))


def test_resume_keeps_the_best_checkpoint_and_score(cfg_factory, tmp_path):
    probe = tmp_path / "probe.json"
    common = ("model=mlp", "logger=none", "test=false", "+callbacks.probe._target_=tests.test_train.BestSoFar",
              f"+callbacks.probe.path={probe}")
    first = cfg_factory(*common, "trainer.max_epochs=1", "trainer.limit_train_batches=1", name="first")
    metrics, first_trainer = train(first)
    best_path, best_score = first_trainer.checkpoint_callback.best_model_path, metrics["best_score"]
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    resumed = cfg_factory(*common, "trainer.max_epochs=2", f"ckpt_path={last}", name="resumed")
    _, trainer = train(resumed)
    # Lightning forgets the best-so-far when the checkpoint folder changes; val_acc_best used to be reset.
    score, path, val_acc_best = json.loads(probe.read_text())
    assert score == pytest.approx(best_score) and path == best_path
    assert val_acc_best == pytest.approx(best_score)
    assert Path(trainer.checkpoint_callback.best_model_path).parent == last.parent
    assert torch.load(last, weights_only=True)["epoch"] == 1  # the run's own last.ckpt moved on


def test_resume_with_other_model_options_is_refused_before_loading_data(cfg_factory):
    first = cfg_factory("model=mlp", "model.hidden=[8]", "logger=none", "test=false", name="first")
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match="holds Classifier of torch_mlp, the config builds Classifier of scratch_softmax"):
        check_checkpoint(cfg_factory("model=softmax", f"ckpt_path={last}", name="a"), resume=True)
    with pytest.raises(CheckpointError, match="holds Classifier of torch_mlp, the config builds LogisticRegression of logistic"):
        check_checkpoint(cfg_factory("model=logreg", f"ckpt_path={last}", name="b"), resume=True)
    with pytest.raises(CheckpointError, match=r"model.hidden: the checkpoint has \[8\], the config \[16\]\. Resume with"):
        check_checkpoint(cfg_factory("model=mlp", "model.hidden=[16]", f"ckpt_path={last}", name="c"), resume=True)
    with pytest.raises(CheckpointError, match="no such file"):
        check_checkpoint(cfg_factory("model=softmax", "ckpt_path=/nowhere/last.ckpt", name="d"), resume=True)
    run_dir = Path(first.paths.output_dir)
    with pytest.raises(CheckpointError, match=re.escape(f"ckpt_path={run_dir} is a folder: give a .ckpt file, e.g. "
                                                        f"ckpt_path={last}")):
        check_checkpoint(cfg_factory("model=mlp", "model.hidden=[8]", f"ckpt_path={run_dir}", name="e"), resume=True)


@pytest.mark.parametrize("change,message", [
    # The optimizer's and the schedule's state come back from the checkpoint, over the new values.
    ("optim=sgd", "optim._target_: the checkpoint has 'torch.optim.Adam', the config 'torch.optim.SGD'"),
    ("optim.lr=0.1", "optim.lr: the checkpoint has 0.001, the config 0.1"),
    ("scheduler=step", "scheduler: the checkpoint has none, the config 'torch.optim.lr_scheduler.StepLR'"),
    # Another data set would go on writing its checkpoints into the first run's folder.
    ("data=fashion_mnist", "data.name: the checkpoint has 'mnist', the config 'fashion_mnist'"),
    ("data.random_shift=2", "data.random_shift: the checkpoint has 0, the config 2"),
    ("trainer.max_epochs=1", "it has trained 1 epoch(s) and trainer.max_epochs=1 leaves none to train"),
    ("seed=7", "seed: the checkpoint has 42, the config 7"),  # (data.seed: the shuffle's)
])
def test_resume_with_another_optimizer_schedule_data_or_no_epochs_left_is_refused(cfg_factory, change, message):
    first = cfg_factory("model=mlp", "logger=none", "test=false", name="first")
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match=re.escape(message)):
        check_checkpoint(cfg_factory("model=mlp", "trainer.max_epochs=2", change, f"ckpt_path={last}"), resume=True)
    # What only decides where and how fast it runs may change.
    check_checkpoint(cfg_factory("model=mlp", "trainer.max_epochs=2", "optim.fused=false", "data.eval_batch_size=7",
                                 "data.device=cpu", f"ckpt_path={last}"), resume=True)


@pytest.mark.parametrize(
    "scheduler,expected_final_lr",
    [
        (("scheduler=none",), 0.01),
        (("scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.5"), 0.01 * 0.5**2),
        (("scheduler=exponential", "scheduler.gamma=0.5"), 0.01 * 0.5**2),
        (("scheduler=warmup_cosine", "scheduler.warmup_fraction=0.25"), 0.0),
    ],
)
def test_schedulers_set_the_learning_rate(cfg_factory, scheduler, expected_final_lr):
    cfg = cfg_factory("model=softmax", "optim=sgd", "optim.lr=0.01", "trainer.max_epochs=2", *scheduler, "logger=none")
    _, trainer = train(cfg)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(expected_final_lr, abs=1e-9)


def test_warmup_cosine_warms_up_then_decays():
    from src.optim.schedulers import warmup_cosine

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = warmup_cosine(opt, total_steps=100, warmup_fraction=0.1)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 10
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 0.001


@pytest.mark.parametrize(
    "override,message",
    [
        ("optim.lr=-0.1", "optim.lr=-0.1 is not allowed: must be a number > 0"),
        ("optim.lr=abc", "optim.lr='abc' is not allowed: must be a number > 0"),
        ("data.val_fraction=0", "data.val_fraction=0 is not allowed: must be a number in (0, 1)"),
        ("data.val_fraction=1.5", "data.val_fraction=1.5 is not allowed: must be a number in (0, 1)"),
        ("data.batch_size=0", "data.batch_size=0 is not allowed: must be an integer >= 1"),
        ("optim=sgdm optim.momentum=1.0", "optim.momentum=1.0 is not allowed: must be a number in [0, 1)"),
        ("model.arch=resnet", "model.arch='resnet' is not allowed: must be one of: lenet, convbn"),
        ("model=mlp model.impl=numpy", "model.impl='numpy' is not allowed: must be one of: scratch, torch"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is not allowed: must be an integer >= 1"),
    ],
)
def test_bad_values_give_clear_errors(cfg_factory, override, message):
    cfg = cfg_factory(*override.split())
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value)


def test_unknown_option_lists_the_allowed_ones(cfg_factory):
    with pytest.raises(ConfigCompositionException, match=r"(?s)Could not find 'optim/adamax'.*adamw.*sgd_scratch"):
        cfg_factory("optim=adamax")


def test_unknown_key_is_rejected(cfg_factory):
    with pytest.raises(ConfigCompositionException, match="optim.lrr"):
        cfg_factory("optim.lrr=0.1")


class HugeLearningRateFromEpoch1(Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = 1e30


def test_a_diverging_loss_stops_training_with_a_clear_error(cfg_factory):
    # Epoch 0 trains sanely and writes its checkpoints; in epoch 1 the loss overflows.
    cfg = cfg_factory("model=mlp", "optim=sgd", "optim.lr=0.05", "trainer.max_epochs=3", "logger=none",
                      "+callbacks.boost._target_=tests.test_train.HugeLearningRateFromEpoch1")
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at epoch 1, batch \d+ .*learning rate 1e\+30"):
        train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)  # intact and loadable
    assert ckpt["epoch"] == 0 and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())



def test_pure_float16_adam_is_told_why_it_breaks_not_to_lower_the_rate(cfg_factory):
    # Adam's eps=1e-8 is 0 in float16: the first unfused update divides by 0, whatever the learning rate.
    # (The fused step computes in float32 and blows up later, on MNIST at batch 3, not on this tiny data.)
    cfg = cfg_factory("model=mlp", "optim=adam", "optim.fused=false", "trainer.precision=16-true", "trainer.max_epochs=1",
                      "logger=none")
    with pytest.raises(TrainingError, match=r"at epoch 0, .*underflows to 0.*divided by eps=1e-08 alone \(0 in float16 "
                                            r"itself\): train in trainer.precision=16-mixed") as error:
        train(cfg)
    assert "Lower optim.lr" not in str(error.value)


def test_losses_checked_in_windows_as_on_a_gpu_still_name_the_first_bad_step(cfg_factory):
    messages = []
    for every in ("null", "4"):  # every step (the CPU default), and every 4 steps (as on a GPU)
        cfg = cfg_factory("model=mlp", "optim=sgd", "optim.lr=0.05", "trainer.max_epochs=3", "logger=none",
                          f"callbacks.finite_loss.check_every={every}",
                          "+callbacks.boost._target_=tests.test_train.HugeLearningRateFromEpoch1", name=f"every_{every}")
        with pytest.raises(TrainingError) as error:
            train(cfg)
        messages.append(str(error.value))
        last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
        assert last["epoch"] == 0  # nothing of the diverged epoch was saved
    assert messages[0] == messages[1] and "at epoch 1, batch" in messages[0]


class ReadSteps(Callback):
    """Records the global steps at which FiniteLoss reads its window (it reads the device there)."""
    reads: list[int] = []

    def on_train_start(self, trainer, pl_module):
        guard = next(c for c in trainer.callbacks if isinstance(c, FiniteLoss))
        check = guard.check
        ReadSteps.reads = []

        def recorded(trainer):
            if guard.window:
                ReadSteps.reads.append(trainer.global_step)
            check(trainer)
        guard.check = recorded


@pytest.mark.parametrize("accumulate,every", [(1, 5), (2, 3)])
def test_losses_checked_in_windows_are_read_at_the_logging_steps(cfg_factory, accumulate, every):
    # Logging every `every` optimizer steps: reads at global steps every, 2 x every, ... across epochs (on the
    # batch that steps, where gradients accumulate), and at each epoch's end.
    cfg = cfg_factory("model=mlp", "logger=none", "test=false", "trainer.max_epochs=3", "trainer.limit_val_batches=1",
                      f"+trainer.accumulate_grad_batches={accumulate}", f"trainer.log_every_n_steps={every}",
                      f"callbacks.finite_loss.check_every={every}", "+callbacks.reads._target_=tests.test_train.ReadSteps")
    _, trainer = train(cfg)
    steps = -(-trainer.num_training_batches // accumulate)  # optimizer steps an epoch
    assert steps % every != 0  # else the epochs' ends would fall on logging steps
    # Hydra built the callback from tests.test_train, a second import of this file (pytest's is test_train).
    reads = __import__("tests.test_train", fromlist=["ReadSteps"]).ReadSteps.reads
    assert reads == sorted({*range(every, 3 * steps + 1, every), steps, 2 * steps, 3 * steps})


def test_the_learning_rate_named_is_the_one_the_bad_step_used(cfg_factory):
    # lr x 10 after every step: the step at global step G (counted after it) trained at 1e-3 x 10^(G-1).
    cfg = cfg_factory("model=mlp", "optim=sgd", "optim.lr=0.001", "logger=none", "trainer.max_epochs=30", "scheduler=step",
                      "scheduler.step_size=1", "scheduler.gamma=10", "scheduler.interval=step")
    with pytest.raises(TrainingError) as error:
        train(cfg)
    found = re.search(r"global step (\d+)\) with learning rate (\S+)\.", str(error.value))
    step, lr = int(found[1]), float(found[2])
    assert lr == pytest.approx(1e-3 * 10 ** (step - 1), rel=1e-2)


def test_a_checkpoint_every_n_training_steps_is_still_written(cfg_factory, tmp_path):
    # The project's ModelCheckpoint skips Lightning's per-step check only where no step interval is set.
    cfg = cfg_factory("model=mlp", "logger=none", "test=false", "trainer.max_epochs=1", "trainer.limit_train_batches=5",
                      "+callbacks.steps._target_=src.callbacks.checkpoint.ModelCheckpoint",
                      "+callbacks.steps.every_n_train_steps=2", "+callbacks.steps.save_top_k=-1",
                      f"+callbacks.steps.dirpath={tmp_path / 'steps'}", "+callbacks.steps.filename='step_{step}'")
    train(cfg)
    assert sorted(p.name for p in (tmp_path / "steps").iterdir()) == ["step_step=2.ckpt", "step_step=4.ckpt"]


@pytest.mark.parametrize("fold_every", [2, 1024])
def test_epoch_metrics_equal_the_split_computed_at_once(cfg_factory, monkeypatch, fold_every):
    # Batches of 7 weigh less than the others; fold_every=2 hands the values over mid-epoch.
    monkeypatch.setattr("src.models.base.FOLD_EVERY", fold_every)
    cfg = cfg_factory("model=mlp", "logger=none", "trainer.max_epochs=1", "data.eval_batch_size=7")
    metrics, trainer = train(cfg)
    model, test = trainer.lightning_module, trainer.datamodule.data_test
    assert len(test.y) % 7 != 0
    with torch.no_grad():
        logits = model(test.x.to(model.device))
    assert metrics["test/loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, test.y)), rel=1e-5)
    assert metrics["test/acc"] == pytest.approx(float((logits.argmax(1) == test.y).float().mean()), rel=1e-6)


@pytest.mark.slow
def test_compile_trains_the_network_and_keeps_the_checkpoint_keys(cfg_factory):
    states = {}
    for compile_ in ("false", "true"):
        cfg = cfg_factory("model=mlp", "logger=none", "test=false", "trainer.limit_train_batches=4",
                          f"compile={compile_}", name=f"compile_{compile_}")
        train(cfg)
        states[compile_] = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt",
                                      weights_only=True)["state_dict"]
    assert list(states["true"]) == list(states["false"])  # net.*, not net._orig_mod.*
    for key, value in states["false"].items():  # the same training; fused kernels round differently
        assert torch.allclose(states["true"][key], value, atol=1e-5), key


def test_a_schedule_sized_from_the_run_is_not_lengthened_on_resume(cfg_factory):
    common = ("model=softmax", "scheduler=warmup_cosine", "logger=none", "test=false")
    first = cfg_factory(*common, "trainer.max_epochs=1", name="first")
    _, trainer = train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    steps = trainer.global_step
    # Its cosine would climb again past the checkpoint's end (a one-cycle schedule would fail there).
    longer = cfg_factory(*common, "trainer.max_epochs=2", f"ckpt_path={last}", name="longer")
    with pytest.raises(CheckpointError, match=f"schedule spans {steps} steps .* this run has {2 * steps}"):
        train(longer)
    assert torch.load(last, weights_only=True)["global_step"] == steps  # the first run's checkpoint is untouched


@pytest.mark.parametrize("test_ckpt", ["best", "last"])
def test_test_ckpt_picks_the_best_or_the_last_weights(cfg_factory, test_ckpt):
    from src.eval import evaluate

    # monitor.mode=min makes the "best" checkpoint the least accurate epoch: not the last one.
    cfg = cfg_factory("model=softmax", "trainer.max_epochs=3", "monitor.mode=min", "logger=none",
                      f"test_ckpt={test_ckpt}", name="run")
    metrics, trainer = train(cfg)
    best = trainer.checkpoint_callback.best_model_path
    last = str(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert Path(best).name != "last.ckpt" and torch.load(best, weights_only=True)["epoch"] < 2
    scores = {path: evaluate(cfg_factory(f"ckpt_path={path}", name=f"eval_{Path(path).stem}", config_name="eval"))
              for path in (best, last)}
    assert scores[best]["test/loss"] != pytest.approx(scores[last]["test/loss"])
    tested = best if test_ckpt == "best" else last
    assert metrics["test/loss"] == pytest.approx(scores[tested]["test/loss"])
