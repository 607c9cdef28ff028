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
