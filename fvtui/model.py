"""The protocol's network: an MLP with ReLU hidden layers and no bias on the output layer."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .verify.network import Network

EVAL_CHUNK = 4096


class MLP(nn.Module):
    def __init__(self, input_size: int, hidden: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_size
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_classes, bias=False))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden layer's activations: the feature space of coreset, BADGE and diversity."""
        return self.layers[:-1](x)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.layers if isinstance(m, nn.Linear)]


def new_model(input_size: int, hidden: tuple[int, ...], num_classes: int, seed: int, init: str = "glorot") -> MLP:
    """A freshly initialised MLP whose weights depend only on `seed` (global RNG left untouched).

    "glorot" is Keras' Dense default, which the authors' network used: Glorot-uniform weights and
    zero biases. "torch" keeps nn.Linear's own (Kaiming-uniform) initialisation.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MLP(input_size, hidden, num_classes)
        if init == "glorot":
            with torch.no_grad():
                for layer in model.linears:
                    nn.init.xavier_uniform_(layer.weight)
                    if layer.bias is not None:
                        layer.bias.zero_()
        return model


class Adam:
    """torch.optim.Adam's CPU update (single-tensor path, no weight decay), op for op, so training
    gives the same bits. torch.optim is not used because its first call imports torch._dynamo,
    which takes as long as importing torch itself (3-5 s on a 2-core machine) in every run."""

    def __init__(self, params, *, lr: float, eps: float, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        self.params = list(params)
        self.lr, self.eps, (self.beta1, self.beta2) = lr, eps, betas
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [0] * len(self.params)  # per parameter, as torch counts: one without a gradient waits

    @torch.no_grad()
    def step(self) -> None:
        for i, (param, exp_avg, exp_avg_sq) in enumerate(zip(self.params, self.exp_avg, self.exp_avg_sq)):
            if param.grad is None:
                continue
            grad = param.grad
            self.steps[i] += 1
            exp_avg.lerp_(grad, 1 - self.beta1)
            exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
            step_size = self.lr / (1 - self.beta1 ** self.steps[i])
            denom = (exp_avg_sq.sqrt() / (1 - self.beta2 ** self.steps[i]) ** 0.5).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)


def train(model: MLP, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
          seed: int, adam_eps: float = 1e-7) -> MLP:
    """Adam on cross-entropy over shuffled mini-batches; the order depends only on `seed`."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = Adam(model.parameters(), lr=lr, eps=adam_eps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    n = x.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            model.zero_grad(set_to_none=True)
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    return model


@torch.no_grad()
def logits(model: MLP, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    if x.shape[0] == 0:
        return model(x)
    return torch.cat([model(x[i:i + EVAL_CHUNK]) for i in range(0, x.shape[0], EVAL_CHUNK)])


@torch.no_grad()
def embeddings(model: MLP, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model.embed(x[i:i + EVAL_CHUNK]) for i in range(0, x.shape[0], EVAL_CHUNK)])


def predict(model: MLP, x: torch.Tensor) -> torch.Tensor:
    return logits(model, x).argmax(1)


def accuracy(model: MLP, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict(model, x) == y).float().mean())


def state_to_numpy(model: MLP) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def model_from_numpy(state: dict[str, np.ndarray], input_size: int, hidden: tuple[int, ...],
                     num_classes: int) -> MLP:
    model = MLP(input_size, hidden, num_classes)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    model.eval()
    return model


def to_network(model: MLP) -> Network:
    """The numpy copy that solver workers verify."""
    layers = model.linears
    return Network(
        weights=tuple(m.weight.detach().numpy().astype(np.float32).copy() for m in layers),
        biases=tuple(None if m.bias is None else m.bias.detach().numpy().astype(np.float32).copy()
                     for m in layers),
    )
