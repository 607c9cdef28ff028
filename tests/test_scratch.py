"""The hand-written math equals PyTorch's: values and gradients."""

import pytest
import torch
import torch.nn.functional as F

from src.nets import scratch
from src.optim.sgd_scratch import ScratchSGD


@pytest.fixture
def logits():
    torch.manual_seed(0)
    return torch.randn(8, 10, dtype=torch.float64) * 3


def test_softmax_matches_torch(logits):
    assert torch.allclose(scratch.softmax(logits), F.softmax(logits, dim=1))
    assert torch.allclose(scratch.log_softmax(logits), F.log_softmax(logits, dim=1))


def test_softmax_is_stable_for_huge_logits():
    # The seed's plain exp() gives inf/inf = nan here.
    big = torch.tensor([[1000.0, 0.0, -1000.0], [89.0, 90.0, 91.0]])
    p = scratch.softmax(big)
    assert torch.isfinite(p).all()
    assert torch.allclose(p, F.softmax(big, dim=1))
    y = torch.tensor([2, 0])
    assert torch.allclose(scratch.cross_entropy(big, y), F.cross_entropy(big, y))


def test_cross_entropy_value_and_gradient_match_torch(logits):
    y = torch.randint(0, 10, (8,))
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    loss_a, loss_b = scratch.cross_entropy(a, y), F.cross_entropy(b, y)
    loss_a.backward()
    loss_b.backward()
    assert torch.allclose(loss_a, loss_b)
    assert torch.allclose(a.grad, b.grad)
    assert torch.autograd.gradcheck(lambda z: scratch.cross_entropy(z, y), (logits.clone().requires_grad_(),))


def test_relu_value_and_gradient_match_torch():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0], requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    scratch.relu(x).sum().backward()
    F.relu(x2).sum().backward()
    assert torch.equal(scratch.relu(x), F.relu(x2))
    assert torch.equal(x.grad, x2.grad)


def test_scratch_linear_uses_seed_init_and_matches_matmul():
    torch.manual_seed(0)
    layer = scratch.Linear(784, 256)
    assert abs(layer.W.std().item() - 0.01) < 0.001
    assert torch.count_nonzero(layer.b) == 0
    x = torch.randn(4, 784)
    assert torch.allclose(layer(x), F.linear(x, layer.W.T, layer.b))


def test_scratch_sgd_matches_torch_sgd():
    torch.manual_seed(0)
    w0 = torch.randn(5, 3)
    x, target = torch.randn(16, 5), torch.randn(16, 3)
    trajectories = []
    for opt_class in (ScratchSGD, torch.optim.SGD):
        w = w0.clone().requires_grad_()
        opt = opt_class([w], lr=0.05)
        for _ in range(10):
            opt.zero_grad()
            ((x @ w - target) ** 2).mean().backward()
            opt.step()
        trajectories.append(w.detach())
    assert torch.allclose(*trajectories)
    assert not torch.allclose(trajectories[0], w0)
