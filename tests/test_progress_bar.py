import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.callbacks.progress_bar import ThrottledRichProgressBar


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_the_bar_is_updated_every_refresh_rate_batches_and_at_the_end():
    class Counting(ThrottledRichProgressBar):
        updates: list[int] = []

        def _update(self, progress_bar_id, current, *args, **kwargs):
            self.updates.append(current)  # batches done, as drawn on the bar
            super()._update(progress_bar_id, current, *args, **kwargs)

    bar = Counting(refresh_rate=10)
    trainer = L.Trainer(max_epochs=1, callbacks=[bar], logger=False, enable_checkpointing=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(Tiny(), DataLoader(TensorDataset(torch.randn(25, 2)), batch_size=1))
    assert bar.updates == [10, 20, 25]
