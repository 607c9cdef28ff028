import math

import torch
from torch import nn

from src.models.base import STAGES, BaseModule, split_batch
from src.nets import linreg


class LinearRegression(BaseModule):
    """y = x w + b on any number of features, trained with Lightning's manual optimization.

    `grad=analytic` computes the loss and its gradients by hand (src/nets/linreg.py), with no
    autograd graph at all, and puts them in `p.grad`; `grad=autograd` gets them from
    backward(). Either way the configured optimizer takes the step, so every optimizer
    (sgd_scratch included) runs on hand-written gradients.

    Reported: the loss (mse or huber, in the units trained on) and the MSE in the data's
    original units (so runs with and without `data.standardize` compare); at each epoch's
    end, the exact MSE over the whole training split, the closed-form least-squares optimum
    of that split and the gap between them; on synthetic data, the distance of (w, b)
    from the true values.
    """

    regression = True

    def __init__(
        self,
        input_shape: list[int],
        num_classes: None = None,
        grad: str = "analytic",
        loss: str = "mse",
        delta: float = 1.0,
        init_w: float | None = None,
        init_b: float = 0.0,
        optim=None,
        scheduler=None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.automatic_optimization = False
        features = math.prod(input_shape)
        # The seeds start from w = 1, b = 1 (seed 000) or w ~ N(0, 0.01), b = 0 (d2l).
        w = torch.randn(features, 1) * 0.01 if init_w is None else torch.full((features, 1), float(init_w))
        self.w = nn.Parameter(w)
        self.b = nn.Parameter(torch.full((1,), float(init_b)))
        self.metrics = nn.ModuleDict(self.mean_metrics(STAGES, ["loss", "mse"]))
        self.optimum_mse = None  # of the training split, in original units; set in on_fit_start
        self.y_scale = 1.0  # squared std the targets were divided by: MSE x this = MSE in the data's units

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In float32 even under trainer.precision=*-mixed: one matrix-vector product gains nothing
        # from bf16, and the gradients written by hand below must match the parameters' dtype.
        with torch.autocast(x.device.type, enabled=False):
            return linreg.predict(x.to(self.w.dtype), self.w, self.b)

    def _loss(self, pred, y):
        return linreg.loss(pred, y, self.hparams.loss, self.hparams.delta)

    def setup(self, stage: str) -> None:
        # Lightning sets up the DataModule first; read its scale once, not on every step.
        self.y_scale = float(self.trainer.datamodule.y_std.item() ** 2)

    def on_fit_start(self):
        train = self.trainer.datamodule.data_train
        w, b = linreg.least_squares(train.x, train.y)
        self.optimum_mse = float(((linreg.predict(train.x, w, b) - train.y) ** 2).mean()) * self.y_scale

    def training_step(self, batch, batch_idx):
        x, y = (t.to(self.w.dtype) for t in batch)  # the parameters' dtype: 64-true and bf16-true too
        optimizer = self.optimizers()
        optimizer.zero_grad()
        if self.hparams.grad == "analytic":
            with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
                pred = self(x)
                loss = self._loss(pred, y)
                self.w.grad, self.b.grad = linreg.gradients(x, y, self.w, self.b, self.hparams.loss, self.hparams.delta)
        else:
            pred = self(x)
            loss = self._loss(pred, y)
            self.manual_backward(loss)
        optimizer.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.trainer.lr_scheduler_configs[0].interval == "step":
            scheduler.step()
        self._update("train", pred.detach(), y, loss.detach())
        return loss.detach()

    def _update(self, stage, pred, y, loss):
        self.metrics[f"{stage}_loss"].update(loss, weight=len(y))
        # In float32: in the data's units an MSE overflows half precision (salaries squared).
        self.metrics[f"{stage}_mse"].update(((pred - y).float() ** 2).mean() * self.y_scale, weight=len(y))

    def on_train_epoch_end(self):
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.trainer.lr_scheduler_configs[0].interval == "epoch":
            scheduler.step()
        self._log_epoch("train", ("loss",))
        self.metrics["train_mse"].reset()  # replaced by the exact value at the epoch's end:
        dm = self.trainer.datamodule
        with torch.no_grad():
            x, y = dm.data_train.x.to(self.device, self.w.dtype), dm.data_train.y.to(self.device, self.w.dtype)
            mse = float(((self(x) - y).float() ** 2).mean()) * self.y_scale
        values = {"train/mse": mse, "train/optimum_mse": self.optimum_mse, "train/gap": mse - self.optimum_mse,
                  "train/gap_rel": (mse - self.optimum_mse) / self.optimum_mse if self.optimum_mse > 0 else float("nan")}
        if hasattr(dm, "true_w"):
            w, b = dm.original_units(self.w.detach().float().cpu(), self.b.detach().float().cpu())
            values["params/w_error"] = float((w - dm.true_w).norm())
            values["params/b_error"] = float((b - dm.true_b).abs().sum())
        self.log_dict(values)

    def _evaluate(self, batch, stage: str) -> None:
        x, y, n = split_batch(batch)
        x, y = x[:n].to(self.w.dtype), y[:n].to(self.w.dtype)
        pred = self(x)
        self._update(stage, pred, y, self._loss(pred, y))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self):
        self._log_epoch("val", ("loss", "mse"))

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def on_test_epoch_end(self):
        self._log_epoch("test", ("loss", "mse"))
