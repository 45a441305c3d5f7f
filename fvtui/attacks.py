"""Gradient attacks shared by strategies and augmentations, batched over whole pools."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .model import MLP, logits

CHUNK = 2048
LEGACY_NUDGE = 1e-4  # DeepFool's extra step length under fvtui 0.1's protocol


@dataclass(frozen=True)
class FgsmSearch:
    eps: torch.Tensor  # (n,) the flipping eps found (see fgsm_min_eps)
    adversarial: torch.Tensor  # (n, d) the FGSM example at the smallest eps seen to flip
    flips: torch.Tensor  # (n,) bool: whether that example exists and changes the prediction


def fgsm_direction(model: MLP, x: torch.Tensor) -> torch.Tensor:
    """Sign of the gradient of the loss at the model's own predicted label."""
    model.eval()
    parts = []
    for i in range(0, x.shape[0], CHUNK):
        xi = x[i:i + CHUNK].clone().requires_grad_(True)
        out = model(xi)
        loss = F.cross_entropy(out, out.argmax(1), reduction="sum")
        (grad,) = torch.autograd.grad(loss, xi)
        parts.append(grad.sign())
    return torch.cat(parts)


def fgsm_examples(x: torch.Tensor, direction: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x + eps * direction, clipped to [0, 1]; eps broadcasts per sample."""
    return (x + eps.reshape(-1, *([1] * (x.dim() - 1))) * direction).clamp_(0.0, 1.0)


def fgsm_min_eps(model: MLP, x: torch.Tensor, precision: float = 5e-4, legacy: bool = False) -> FgsmSearch:
    """Binary search on [0, 1], all samples at once, for the smallest FGSM step that flips the prediction.

    As the authors' get_epsilon_FGSM: the eps reported is the midpoint of the final bracket, and
    the example is the one at its upper end, which exists only if some tested step flipped. The
    legacy protocol reported the upper end and re-tested the example (at eps 1 when none flipped).
    """
    direction = fgsm_direction(model, x)
    original = logits(model, x).argmax(1)
    lo = torch.zeros(x.shape[0])
    hi = torch.ones(x.shape[0])
    while float((hi - lo).max()) > precision:
        mid = (lo + hi) / 2
        flips = logits(model, fgsm_examples(x, direction, mid)).argmax(1) != original
        hi = torch.where(flips, mid, hi)
        lo = torch.where(flips, lo, mid)
    adversarial = fgsm_examples(x, direction, hi)
    if legacy:
        return FgsmSearch(hi, adversarial, logits(model, adversarial).argmax(1) != original)
    return FgsmSearch((lo + hi) / 2, adversarial, hi < 1.0)


@dataclass(frozen=True)
class DeepFoolResult:
    perturbation: torch.Tensor  # (n, d) total perturbation, overshoot included
    adversarial: torch.Tensor  # (n, d) x + perturbation, not clipped
    iterations: torch.Tensor  # (n,) steps taken

    @property
    def norms(self) -> torch.Tensor:
        return self.perturbation.norm(dim=1)


def logits_and_jacobian(model: MLP, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (n, c) and d logits / d x (n, c, d) in closed form: a ReLU MLP is linear given its masks."""
    layers = model.linears
    h = x
    masks = []
    for layer in layers[:-1]:
        pre = layer(h)
        masks.append(pre > 0)
        h = pre.clamp_min(0)
    out = layers[-1](h)
    jac = layers[-1].weight.expand(x.shape[0], -1, -1)
    for layer, mask in zip(reversed(layers[:-1]), reversed(masks)):
        jac = (jac * mask.unsqueeze(1)) @ layer.weight
    return out, jac


@torch.no_grad()
def deepfool(model: MLP, x: torch.Tensor, max_iter: int = 20, overshoot: float = 0.02, nudge: float = 0.0,
             tol: float = 1e-6) -> DeepFoolResult:
    """Multi-class DeepFool (Moosavi-Dezfooli et al.), batched: each sample stops once its label flips.

    The step is the authors' (deep_fool_sampling.py): |f| / ||w||^2 * w, and a sample whose step
    falls below `tol` stops. The legacy protocol added `nudge` = 1e-4 to each step's length, as
    the original DeepFool paper's code does.
    """
    model.eval()
    perts, iters = [], []
    for i in range(0, x.shape[0], CHUNK):
        p, it = _deepfool_chunk(model, x[i:i + CHUNK], max_iter, overshoot, nudge, tol)
        perts.append(p)
        iters.append(it)
    perturbation = torch.cat(perts)
    return DeepFoolResult(perturbation, x + perturbation, torch.cat(iters))


def _deepfool_chunk(model: MLP, x0: torch.Tensor, max_iter: int, overshoot: float, nudge: float, tol: float):
    n = x0.shape[0]
    rows = torch.arange(n)
    r_tot = torch.zeros_like(x0)
    iterations = torch.zeros(n, dtype=torch.int64)
    out, jac = logits_and_jacobian(model, x0)
    k0 = out.argmax(1)
    stalled = torch.zeros(n, dtype=torch.bool)
    for _ in range(max_iter):
        active = (out.argmax(1) == k0) & ~stalled
        if not active.any():
            break
        f = out - out[rows, k0].unsqueeze(1)
        w = jac - jac[rows, k0].unsqueeze(1)
        w_norm = w.norm(dim=2)
        pert = f.abs() / (w_norm + 1e-8)
        pert[rows, k0] = float("inf")
        best = pert.argmin(1)
        step = (pert[rows, best] + nudge) / (w_norm[rows, best] + 1e-8)
        r_i = step.unsqueeze(1) * w[rows, best]
        r_tot += r_i * active.unsqueeze(1)
        iterations += active.long()
        stalled |= active & (r_i.norm(dim=1) < tol)
        out, jac = logits_and_jacobian(model, x0 + (1 + overshoot) * r_tot)
    return (1 + overshoot) * r_tot, iterations
