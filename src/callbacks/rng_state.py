"""Keep the torch random-number state in checkpoints, so that a resumed run draws the same
dropout masks (and other random numbers) as an uninterrupted one. Lightning does not."""

import torch
from lightning.pytorch import Callback


class RNGState(Callback):
    def state_dict(self) -> dict:  # called when a checkpoint is written
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:  # called when training resumes from one
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
