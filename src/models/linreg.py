import math

import torch
from torch import nn

from src.models.base import BaseModule
from src.models.metrics import Mean
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

    regression = True  # it needs a data set with float targets
    terms = ("loss", "mse")

    def __init__(
        self,
        input_shape: list[int],
        grad: str = "analytic",
        loss: str = "mse",
        delta: float = 1.0,
        init_w: float | None = None,
        init_b: float = 0.0,
        optim=None,
        scheduler=None,
    ):
        super().__init__(optim, scheduler)
        self.automatic_optimization = False
        features = math.prod(input_shape)
        # null: w ~ N(0, 0.01), as d2l; a number: every weight starts there.
        w = torch.randn(features, 1) * 0.01 if init_w is None else torch.full((features, 1), float(init_w))
        self.w = nn.Parameter(w)
        self.b = nn.Parameter(torch.full((1,), float(init_b)))
        self.optimum_mse = None  # of the training split, in original units; set in on_fit_start
        self.y_scale = 1.0  # squared std the targets were divided by: MSE x this = MSE in the data's units

    def make_metrics(self, stage):
        # The training MSE is computed exactly over the whole split at each epoch's end, not averaged.
        return {"loss": Mean()} if stage == "train" else super().make_metrics(stage)

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(w, b), detached, in float32 on the CPU."""
        return self.w.detach().float().cpu(), self.b.detach().float().cpu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In float32 even under trainer.precision=*-mixed: one matrix-vector product gains nothing
        # from bf16, and the gradients written by hand below must match the parameters' dtype.
        with torch.autocast(x.device.type, enabled=False):
            return linreg.predict(x.to(self.w.dtype), self.w, self.b)

    def setup(self, stage: str) -> None:
        # Lightning sets up the DataModule first; read its scale once, not on every step.
        self.y_scale = float(self.trainer.datamodule.y_std.item() ** 2)

    def on_fit_start(self):
        train = self.trainer.datamodule.data_train
        w, b = linreg.least_squares(train.x, train.y)
        self.optimum_mse = float(((linreg.predict(train.x, w, b) - train.y) ** 2).mean()) * self.y_scale

    def step(self, x, y):
        x, y = x.to(self.w.dtype), y.to(self.w.dtype)  # the parameters' dtype: 64-true and bf16-true too
        pred = self(x)
        # The MSE in float32: in the data's units it overflows half precision (salaries squared).
        return {"loss": linreg.loss(pred, y, self.hparams.loss, self.hparams.delta),
                "mse": ((pred.detach() - y).float() ** 2).mean() * self.y_scale}

    def training_step(self, batch, batch_idx):
        x, y = (t.to(self.w.dtype) for t in batch)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        if self.hparams.grad == "analytic":
            with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
                values = self.step(x, y)
                self.w.grad, self.b.grad = linreg.gradients(x, y, self.w, self.b, self.hparams.loss, self.hparams.delta)
        else:
            values = self.step(x, y)
            self.manual_backward(values["loss"])
        optimizer.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.trainer.lr_scheduler_configs[0].interval == "step":
            scheduler.step()
        self.record("train", values, len(y))
        self.log_step_loss(values["loss"])
        return values["loss"].detach()

    def on_train_epoch_end(self):
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.trainer.lr_scheduler_configs[0].interval == "epoch":
            scheduler.step()
        self.log_epoch("train")
        dm = self.trainer.datamodule
        with torch.no_grad():
            x, y = dm.data_train.x.to(self.device, self.w.dtype), dm.data_train.y.to(self.device, self.w.dtype)
            mse = float(((self(x) - y).float() ** 2).mean()) * self.y_scale
        values = {"train/mse": mse, "train/optimum_mse": self.optimum_mse, "train/gap": mse - self.optimum_mse,
                  "train/gap_rel": (mse - self.optimum_mse) / self.optimum_mse if self.optimum_mse > 0 else float("nan")}
        if hasattr(dm, "true_w"):
            w, b = dm.original_units(*self.coefficients())
            values["params/w_error"] = float((w - dm.true_w).norm())
            values["params/b_error"] = float((b - dm.true_b).abs().sum())
        self.log_dict(values)
