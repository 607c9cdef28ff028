"""Linear regression's losses and their gradients, written by hand.

With residuals r = Xw + b - y over n rows:
    MSE    L = mean(r^2)                       dL/dw = 2/n X^T r,  dL/db = 2/n sum(r)
    Huber  L = mean(r^2/2 if |r| <= delta      dL/dr = r if |r| <= delta
                    else delta (|r| - delta/2))        else delta sign(r)
           (= torch's HuberLoss)               dL/dw = 1/n X^T dL/dr,  dL/db = 1/n sum(dL/dr)
Tests check the values against torch's losses and the gradients against autograd.
"""

import torch

LOSSES = ("mse", "huber")


def predict(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return x @ w + b


def loss(pred: torch.Tensor, y: torch.Tensor, kind: str = "mse", delta: float = 1.0) -> torch.Tensor:
    r = pred - y
    if kind == "mse":
        return (r**2).mean()
    small = r.abs() <= delta
    return torch.where(small, r**2 / 2, delta * (r.abs() - delta / 2)).mean()


def gradients(x, y, w, b, kind: str = "mse", delta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/dw, dL/db) of `loss(predict(x, w, b), y)`; w is (features, 1), b is (1,)."""
    r = predict(x, w, b) - y
    if kind == "mse":
        dr = 2 * r
    else:
        dr = torch.where(r.abs() <= delta, r, delta * r.sign())
    n = len(y)
    return x.T @ dr / n, dr.sum(0) / n


def least_squares(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The closed-form minimiser of the MSE: solve [X 1] [w; b] = y in the least-squares sense."""
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1).double()
    solution = torch.linalg.lstsq(design, y.double()).solution
    return solution[:-1].to(x.dtype), solution[-1].to(x.dtype)
