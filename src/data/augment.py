"""Augmentation applied to a whole batch of in-memory images at once (no per-sample transforms)."""

import torch
import torch.nn.functional as F


def random_shift(x: torch.Tensor, max_shift: int, fill: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image of a (B, C, H, W) batch by its own random whole-pixel offset in [-max_shift, max_shift].

    Pixels shifted in take the value `fill` (the background: 0 before
    normalisation, -mean/std after), not a wrapped-around edge. One padded copy
    and one gather for the whole batch, all on x's device: `fill` is a number
    the caller knows, since reading it off the batch would wait for the GPU.
    """
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    m = max_shift
    padded = F.pad(x, (m, m, m, m), value=fill)
    dy = torch.randint(0, 2 * m + 1, (b, 1), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * m + 1, (b, 1), generator=generator, device=x.device)
    # One gather from the flattened padded images, at each output pixel's source position.
    rows = torch.arange(h, device=x.device) + dy                               # (B, H)
    cols = torch.arange(w, device=x.device) + dx                               # (B, W)
    source = (rows[:, :, None] * (w + 2 * m) + cols[:, None, :]).flatten(1)   # (B, H*W)
    flat = padded.flatten(2)                                                   # (B, C, (H+2m)(W+2m))
    return flat.gather(2, source[:, None, :].expand(-1, x.shape[1], -1)).view_as(x)
