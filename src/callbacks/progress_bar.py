"""Lightning's rich progress bar, redrawn only every `refresh_rate` training batches."""

from lightning.pytorch.callbacks import RichProgressBar


class ThrottledRichProgressBar(RichProgressBar):
    """Lightning's RichProgressBar re-reads the metrics and updates the bar after every batch,
    whatever its refresh_rate: a cost per step that a small network's step notices."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        done = batch_idx + 1
        if done % self.refresh_rate == 0 or done == self.total_train_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
