"""Lightning's ModelCheckpoint, with its state key computed once."""

from functools import cached_property

from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning builds a callback's state key (for a ModelCheckpoint, the repr of a dict of its
    settings) each time it calls one of its hooks: six times a training step, about 4 us each. The
    settings in the key do not change after __init__, so the key is the same: checkpoints stay
    interchangeable with Lightning's class."""

    @cached_property
    def state_key(self) -> str:
        return super().state_key
