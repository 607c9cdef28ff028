"""What TensorBoard shows of a run, read back with tensorboard's own reader."""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from src.train import train


def read_events(run_dir: Path) -> list[EventAccumulator]:
    accumulators = []
    for events in sorted((run_dir / "tensorboard").rglob("events.out.tfevents.*")):
        ea = EventAccumulator(str(events), size_guidance={"tensors": 0, "scalars": 0})
        ea.Reload()
        accumulators.append(ea)
    return accumulators


def test_the_hparams_tab_holds_the_hyper_parameters_and_the_scores(cfg_factory):
    cfg = cfg_factory("model=mlp", "model.hidden=[32]", "optim=sgdm", "scheduler=step", "trainer.max_epochs=2")
    metrics, _ = train(cfg)
    hparams, scores = {}, {}
    for ea in read_events(Path(cfg.paths.output_dir)):
        try:
            tags = ea.PluginTagToContent("hparams")
        except KeyError:  # an event file without hyper-parameters (Lightning writes several)
            tags = {}
        for tag, content in tags.items():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if tag == "_hparams_/session_start_info":
                hparams = {k: v for k, v in data.session_start_info.hparams.items()}
        for tag in ea.Tags()["scalars"]:
            if tag.startswith("hp/"):
                scores[tag] = ea.Scalars(tag)[-1].value
    assert set(hparams) == {
        "experiment", "model", "model/hidden", "model/dropout", "model/impl", "model/net", "optim", "optim/lr",
        "optim/momentum", "optim/nesterov", "optim/weight_decay", "scheduler", "scheduler/step_size",
        "scheduler/gamma", "data", "data/name", "data/batch_size", "data/val_fraction", "data/split_seed",
        "data/normalize", "data/mean", "data/std", "data/random_shift", "data/standardize", "data/repeat",
        "trainer/max_epochs", "trainer/precision", "trainer/processes", "seed"}
    assert hparams["optim"].string_value == "SGD" and hparams["optim/lr"].number_value == pytest.approx(0.01)
    assert hparams["model/hidden"].string_value == "[32]" and hparams["model/net"].string_value == "torch_mlp"
    assert scores["hp/best_score"] == pytest.approx(metrics["best_score"])
    assert scores["hp/test_score"] == pytest.approx(metrics["test/acc"])


def test_the_training_loss_and_a_per_step_learning_rate_are_curves_within_each_epoch(cfg_factory):
    cfg = cfg_factory("model=mlp", "model.hidden=[32]", "optim=sgd", "scheduler=warmup_cosine", "trainer.max_epochs=2",
                      "trainer.log_every_n_steps=2", "test=false")
    _, trainer = train(cfg)
    per_epoch = trainer.num_training_batches  # 9 batches of 16 of the 144 training images
    (ea,) = [ea for ea in read_events(Path(cfg.paths.output_dir)) if "train/loss_step" in ea.Tags()["scalars"]]
    steps = [e.step for e in ea.Scalars("train/loss_step")]
    assert steps == list(range(1, 2 * per_epoch, 2))  # every second step, from the first epoch on
    assert len(ea.Scalars("train/loss")) == 2  # one per epoch, as src.report and the figures read it
    lr = ea.Scalars("lr-SGD")
    assert len([e for e in lr if e.step < per_epoch]) >= 4 and lr[0].value < lr[2].value  # the warm-up, step by step


@pytest.mark.parametrize("logger", ["tensorboard", "csv"])
def test_the_step_losses_carry_their_epoch_so_a_report_counts_epochs_right(cfg_factory, logger):
    from src.report.read import read_job

    cfg = cfg_factory("model=mlp", "model.hidden=[8]", "trainer.max_epochs=2", "trainer.log_every_n_steps=1",
                      f"logger={logger}", "test=false")
    train(cfg)
    job = read_job(Path(cfg.paths.output_dir))
    assert len(job.series["train/loss_step"]) == 18  # 9 batches an epoch, each a logging step
    assert {epoch for epoch, _ in job.series["train/loss_step"]} == {0, 1}
    assert job.epochs == 2


def test_accumulated_batches_log_one_step_loss_per_optimizer_step(cfg_factory):
    cfg = cfg_factory("model=mlp", "model.hidden=[8]", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
                      "+trainer.accumulate_grad_batches=3", "test=false")
    train(cfg)
    (ea,) = [ea for ea in read_events(Path(cfg.paths.output_dir)) if "train/loss_step" in ea.Tags()["scalars"]]
    assert [e.step for e in ea.Scalars("train/loss_step")] == [0, 1, 2]  # 9 batches: 3 optimizer steps
