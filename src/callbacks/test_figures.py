"""After testing: a confusion matrix and a grid of test images with predicted and true labels,
saved as PNG in the run dir and logged to TensorBoard."""

from pathlib import Path

from lightning.pytorch import Callback
from torchmetrics.utilities.plot import plot_confusion_matrix

from src.callbacks.figure_io import plt, save_figure


class TestFigures(Callback):
    """For a Classifier: reads the `preds` of its first test batch's outputs and its `test_confusion`."""

    def __init__(self, output_dir: str, n_images: int = 32):
        self.output_dir = Path(output_dir)
        self.n_images = n_images
        self.sample = None

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0 and isinstance(outputs, dict):  # the same first images every time: the test loader is not shuffled
            x, y = batch
            n = self.n_images
            self.sample = (x[:n].float().cpu(), y[:n].cpu(), outputs["preds"][:n].cpu())  # float: bf16-true

    def on_test_end(self, trainer, pl_module):
        if not trainer.is_global_zero or pl_module.test_confusion is None:
            return
        classes = getattr(trainer.datamodule, "classes", None) or [str(i) for i in range(len(pl_module.test_confusion))]
        save_figure(trainer, self.output_dir, "test/confusion_matrix", self.confusion_figure(pl_module.test_confusion, classes))
        if self.sample is not None and self.sample[0].dim() == 4:  # images (the small data sets have their own figures)
            save_figure(trainer, self.output_dir, "test/test_predictions", self.predictions_figure(classes))

    @staticmethod
    def confusion_figure(confusion, classes):
        fig, ax = plt.subplots(figsize=(8, 7))
        short = [c.split(" - ")[0] for c in classes]  # MNIST names read "0 - zero"
        plot_confusion_matrix(confusion, ax=ax, labels=short)
        ax.set_title("Test confusion matrix (rows: true, columns: predicted)")
        return fig

    def predictions_figure(self, classes):
        x, y, preds = self.sample
        cols = 8
        rows = (len(x) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.4, rows * 1.6), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, img, true, pred in zip(axes.flat, x, y, preds):
            ax.imshow(img[0], cmap="gray")
            ok = int(true) == int(pred)
            ax.set_title(f"{classes[pred].split(' - ')[0]}\n(true {classes[true].split(' - ')[0]})",
                         fontsize=7, color="green" if ok else "red")
        fig.suptitle("Test images: predicted (true)")
        return fig
