"""Real runs of the from-scratch regression models on the small data sets."""

from pathlib import Path

import pytest
import torch

from src.train import train
from src.utils.errors import ConfigError
from src.utils.validate import validate

QUIET = ["logger=none", "callbacks.lr_monitor=null"]


def weights(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


# experiment -> the figure its run writes
EXPERIMENTS = {
    "seed000_salary_gd": "fitted_line.png",
    "salary_gd_standardized": "fitted_line.png",
    "seed003_linear_scratch": "loss_curve.png",
    "seed003_linear_concise": "loss_curve.png",
    "seed001_logreg": "decision_boundary.png",
    "seed004_clusters_softmax": "test_predictions_3d.png",
    "seed004_xor_softmax": "test_predictions_3d.png",
    "seed004_xor_mlp": "test_predictions_3d.png",
    "clusters_softmax_standardized": "test_predictions_3d.png",
    "xor_mlp_standardized": "test_predictions_3d.png",
}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_each_experiment_runs_a_few_steps(cfg_factory, experiment):
    cfg = cfg_factory(f"experiment={experiment}", "trainer.max_epochs=2", "trainer.limit_train_batches=3",
                      "data.repeat=1", "data.batch_size=10", "data.eval_batch_size=1000")
    metrics, trainer = train(cfg)
    out = Path(cfg.paths.output_dir)
    assert trainer.global_step == 2 * trainer.num_training_batches <= 6
    assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if k.startswith("test/"))
    assert (out / EXPERIMENTS[experiment]).stat().st_size > 0
    assert (out / "loss_curve.png").is_file() and (out / "checkpoints" / "last.ckpt").is_file()


def test_standardized_gradient_descent_reaches_the_least_squares_optimum(cfg_factory):
    # The experiment's own budget (the test defaults shorten runs): 50 epochs x 10 full-batch steps.
    cfg = cfg_factory("experiment=salary_gd_standardized", "trainer.max_epochs=50", "data.batch_size=20", *QUIET)
    metrics, trainer = train(cfg)
    assert trainer.global_step <= 500
    assert metrics["train/gap_rel"] < 1e-3  # MSE within 0.1% of the closed-form optimum
    # MSE is reported in the data's units (salary^2), not the standardised ones.
    assert metrics["train/optimum_mse"] > 1e6


def test_analytic_gradients_train_exactly_like_autograd(cfg_factory):
    common = ["model=linreg", "data=linear", "optim=sgdm", "optim.lr=0.01", "trainer.max_epochs=1",
              "trainer.limit_train_batches=20", "data.batch_size=10", *QUIET]
    runs = {}
    for grad in ("analytic", "autograd"):
        cfg = cfg_factory(*common, f"model.grad={grad}", name=grad)
        train(cfg)
        runs[grad] = weights(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert not torch.equal(runs["analytic"]["w"], torch.zeros(2, 1))
    for key in ("w", "b"):
        torch.testing.assert_close(runs["analytic"][key], runs["autograd"][key])


@pytest.mark.parametrize("loss,lr", [("mse", 0.015), ("huber", 0.05)])  # Huber's gradient is at most delta |x|
def test_linreg_recovers_the_true_parameters(cfg_factory, loss, lr):
    cfg = cfg_factory("experiment=seed003_linear_scratch", f"model.loss={loss}", f"optim.lr={lr}", "model.grad=analytic",
                      "data.batch_size=10", "trainer.max_epochs=3", *QUIET)
    metrics, _ = train(cfg)
    assert metrics["params/w_error"] < 0.01 and metrics["params/b_error"] < 0.01
    assert metrics["test/mse"] < 2e-4  # the noise variance is 1e-4


def test_linreg_resumes_exactly_with_a_scheduler(cfg_factory):
    # Manual optimization steps the scheduler by hand: a resumed run must still match.
    common = ["model=linreg", "data=salary", "data.standardize=true", "optim=sgd", "optim.lr=0.05",
              "scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.5", "data.repeat=3",
              "data.batch_size=20", *QUIET]  # 3 full-batch steps per epoch
    full = cfg_factory(*common, "trainer.max_epochs=3", name="full")
    train(full)
    first = cfg_factory(*common, "trainer.max_epochs=1", name="first")
    train(first)
    resumed = cfg_factory(*common, "trainer.max_epochs=3",
                          f"ckpt_path={Path(first.paths.output_dir) / 'checkpoints' / 'last.ckpt'}", name="resumed")
    _, trainer = train(resumed)
    assert trainer.global_step == 9
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.05 * 0.5**3)
    a = weights(Path(full.paths.output_dir) / "checkpoints" / "last.ckpt")
    b = weights(Path(first.paths.output_dir) / "checkpoints" / "last.ckpt")  # the resumed run continues this folder
    for key in ("w", "b"):
        torch.testing.assert_close(a[key], b[key])


def test_logreg_separates_the_blobs(cfg_factory):
    metrics, _ = train(cfg_factory("model=logreg", "data=blobs", "optim=sgd_scratch", "optim.lr=0.1",
                                   "data.batch_size=10", "trainer.max_epochs=5", *QUIET))
    assert metrics["test/acc"] >= 0.95


@pytest.mark.parametrize(
    "overrides,message",
    [
        (("model=linreg", "data=mnist"), "LinearRegression needs a regression data set (data=salary or data=linear); "
                                          "data 'mnist' is a classification set"),
        (("model=cnn", "data=salary"), "Classifier needs a data set with classes; data 'SalaryDataModule' is a regression set"),
        (("model=logreg", "data=clusters"), "model=logreg is binary: it needs a data set with 2 classes (e.g. data=blobs), "
                                             "and this one has 10"),
    ],
)
def test_model_and_data_that_do_not_fit_are_refused(cfg_factory, overrides, message):
    with pytest.raises(ConfigError) as err:
        train(cfg_factory(*overrides, *QUIET))
    assert message in str(err.value)


def test_eval_rebuilds_a_synthetic_data_set_from_the_checkpoint(cfg_factory):
    from src.eval import evaluate

    cfg = cfg_factory("model=logreg", "data=blobs", "optim.lr=0.05", "trainer.max_epochs=2", *QUIET, name="train")
    metrics, trainer = train(cfg)
    result = evaluate(cfg_factory(f"ckpt_path={trainer.checkpoint_callback.best_model_path}", name="eval",
                                  config_name="eval"))
    assert result["test/acc"] == pytest.approx(metrics["test/acc"])  # the same fresh test draw, from data_seed


@pytest.mark.parametrize(
    "overrides,message",
    [
        (("data=salary", "data.repeat=0"), "data.repeat=0 is not allowed: must be an integer >= 1"),
        (("data=linear", "data.true_w=[a,1]"), "data.true_w=['a', 1] is not allowed: must be a list of numbers"),
        (("data=salary", "model.grad=numeric"), "model.grad='numeric' is not allowed: must be one of: analytic, autograd"),
        (("data=salary", "model.loss=l1"), "model.loss='l1' is not allowed: must be one of: mse, huber"),
    ],
)
def test_bad_regression_values_are_refused_before_training(cfg_factory, overrides, message):
    with pytest.raises(ConfigError) as err:
        validate(cfg_factory("model=linreg", *overrides, *QUIET))
    assert message in str(err.value)


def test_loss_curve_figure_plots_each_epoch_at_its_own_epoch(cfg_factory):
    import csv

    from src.callbacks.small_data_figures import SmallDataFigures

    cfg = cfg_factory("model=logreg", "data=blobs", "optim.lr=0.05", "trainer.max_epochs=3", "logger=csv")
    _, trainer = train(cfg)
    curves = next(c for c in trainer.callbacks if isinstance(c, SmallDataFigures)).curves
    logged = {"train/loss": [], "val/loss": []}
    for row in csv.DictReader(next(Path(cfg.paths.output_dir).rglob("metrics.csv")).open()):
        for key in logged:
            if row.get(key):
                logged[key].append((int(row["epoch"]) + 1, pytest.approx(float(row[key]))))
    assert curves == logged and len(logged["train/loss"]) == len(logged["val/loss"]) == 3
