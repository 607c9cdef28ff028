"""Figures of the small feature-vector data sets (their configs add this callback), after testing:
the fitted line (regression on one feature: the model's `coefficients()`), the decision regions
over 2-D inputs (a classifier's `predict` and `probabilities`), test points coloured by predicted
label in 3-D, and the loss curves."""

from pathlib import Path

import torch
from lightning.pytorch import Callback

from src.callbacks.figure_io import plt, save_figure


class SmallDataFigures(Callback):
    def __init__(self, output_dir: str, grid_size: int = 200):
        self.output_dir = Path(output_dir)
        self.grid_size = grid_size
        self.curves: dict[str, list[tuple[int, float]]] = {}

    # Lightning calls a callback's epoch-end hook before the module's, so the module's
    # train/loss of epoch e is read at the start of epoch e + 1 (or at the end of training).
    def _record(self, trainer, key: str, epoch: int) -> None:
        if key in trainer.callback_metrics and epoch > 0:
            self.curves.setdefault(key, []).append((epoch, float(trainer.callback_metrics[key])))

    def on_train_epoch_start(self, trainer, pl_module):
        self._record(trainer, "train/loss", trainer.current_epoch)

    def on_train_end(self, trainer, pl_module):
        self._record(trainer, "train/loss", trainer.current_epoch)

    def on_validation_end(self, trainer, pl_module):  # after the module logged val/loss
        if not trainer.sanity_checking:
            self._record(trainer, "val/loss", trainer.current_epoch + 1)

    @torch.no_grad()
    def on_test_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        dm = trainer.datamodule
        features = dm.input_shape[0]
        figures = {}
        if self.curves:
            figures["figures/loss_curve"] = self.loss_figure()
        if dm.num_classes is None and features == 1:
            figures["figures/fitted_line"] = self.line_figure(dm, pl_module)
        elif dm.num_classes is not None and features == 2:
            figures["figures/decision_boundary"] = self.boundary_figure(dm, pl_module)
        elif dm.num_classes is not None and features == 3:
            figures["figures/test_predictions_3d"] = self.scatter_figure(dm, pl_module)
        for tag, figure in figures.items():
            save_figure(trainer, self.output_dir, tag, figure)

    def loss_figure(self):
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, points in self.curves.items():
            epochs, values = zip(*points)
            ax.plot(epochs, values, marker="o" if len(points) < 30 else None, label=key)
        ax.set(xlabel="epoch", ylabel="loss", title="Loss per epoch")
        ax.set_yscale("log")
        ax.legend()
        return fig

    @staticmethod
    def _original_x(dm, split):
        return split.x * dm.x_std + dm.x_mean

    def line_figure(self, dm, pl_module):
        fig, ax = plt.subplots(figsize=(6, 4))
        for split, name, colour in ((dm.data_train, "training set", "C0"), (dm.data_test, "test set", "C3")):
            y = split.y * dm.y_std + dm.y_mean
            ax.scatter(self._original_x(dm, split).cpu(), y.cpu(), s=18, c=colour, label=name)
        w, b = dm.original_units(*pl_module.coefficients())
        xs = torch.linspace(*self._range(dm, 0), 2)
        (x_name,), y_name = dm.names(), dm.target_name  # the data's own names, e.g. YearsExperience -> Salary
        ax.plot(xs, xs * w[0, 0] + b[0], "k-", label=f"{y_name} = {w[0, 0]:.5g} {x_name} + {b[0]:.5g}")
        ax.set(title="Fitted line", xlabel=x_name, ylabel=y_name)
        ax.legend()
        return fig

    def _range(self, dm, feature: int) -> tuple[float, float]:
        x = torch.cat([self._original_x(dm, s)[:, feature] for s in (dm.data_train, dm.data_test)])
        pad = 0.05 * float(x.max() - x.min())
        return float(x.min()) - pad, float(x.max()) + pad

    def _predict(self, dm, pl_module, x_original):
        x = ((x_original - dm.x_mean) / dm.x_std).to(pl_module.device, pl_module.dtype)
        return pl_module.predict(pl_module(x)).cpu()

    def boundary_figure(self, dm, pl_module):
        (x0, x1), (y0, y1) = self._range(dm, 0), self._range(dm, 1)
        gx, gy = torch.meshgrid(torch.linspace(x0, x1, self.grid_size), torch.linspace(y0, y1, self.grid_size), indexing="xy")
        regions = self._predict(dm, pl_module, torch.stack([gx.flatten(), gy.flatten()], 1)).reshape(gx.shape)
        fig, ax = plt.subplots(figsize=(6, 5))
        ax.contourf(gx, gy, regions, levels=dm.num_classes - 1 if dm.num_classes > 2 else 1, alpha=0.25, cmap="RdYlGn")
        if dm.num_classes == 2:  # the p = 0.5 line itself
            x = ((torch.stack([gx.flatten(), gy.flatten()], 1) - dm.x_mean) / dm.x_std).to(pl_module.device, pl_module.dtype)
            p = pl_module.probabilities(x)[:, 1].float().cpu()
            ax.contour(gx, gy, p.reshape(gx.shape), levels=[0.5], colors="k")
        x = self._original_x(dm, dm.data_test)
        ax.scatter(x[:, 0], x[:, 1], c=dm.data_test.y, cmap="RdYlGn", edgecolors="k", s=30)
        names = dm.names()
        ax.set(title="Decision regions and test points (colour: true class)", xlabel=names[0], ylabel=names[1])
        return fig

    def scatter_figure(self, dm, pl_module):
        x = self._original_x(dm, dm.data_test)
        preds = self._predict(dm, pl_module, x)
        accuracy = float((preds == dm.data_test.y).float().mean())
        fig = plt.figure(figsize=(7, 6))
        ax = fig.add_subplot(projection="3d")
        ax.scatter(x[:, 0], x[:, 1], x[:, 2], c=preds, cmap="tab10" if dm.num_classes <= 10 else "tab20", s=6)
        ax.set(xlabel=dm.names()[0], ylabel=dm.names()[1], zlabel=dm.names()[2],
               title=f"Test points coloured by predicted label (accuracy {accuracy:.3f})")
        return fig
