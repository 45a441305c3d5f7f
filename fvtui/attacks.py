"""Gradient attacks shared by strategies and augmentations, batched over whole pools."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .model import MLP, logits

CHUNK = 2048
# DeepFool's rows per step: its (rows, classes, inputs) Jacobians at 256 rows (8 MB at 784 inputs)
# are reused from the heap; at 2048 each step's fresh 64 MB cost more than its arithmetic.
DEEPFOOL_CHUNK = 256
SMALL_BATCH = 8
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
    """Logits (n, c) and d logits / d x (n, c, d) in closed form: a ReLU MLP is linear given its masks.

    A batch of fewer than `SMALL_BATCH` rows is padded to it: torch's products of a few rows round
    differently (1-3 rows with this machine's BLAS), and a row's numbers should not depend on how
    many others DeepFool still carries with it."""
    if x.shape[0] < SMALL_BATCH:
        padded = torch.cat([x, x.new_zeros(SMALL_BATCH - x.shape[0], *x.shape[1:])])
        out, jac = logits_and_jacobian(model, padded)
        return out[:x.shape[0]], jac[:x.shape[0]]
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
    for i in range(0, x.shape[0], DEEPFOOL_CHUNK):
        p, it = _deepfool_chunk(model, x[i:i + DEEPFOOL_CHUNK], max_iter, overshoot, nudge, tol)
        perts.append(p)
        iters.append(it)
    perturbation = torch.cat(perts)
    return DeepFoolResult(perturbation, x + perturbation, torch.cat(iters))


def _deepfool_chunk(model: MLP, x0: torch.Tensor, max_iter: int, overshoot: float, nudge: float, tol: float):
    """Each step works on the rows still moving only: most samples flip in one step, and carrying
    the rest of the chunk's (n, c, d) Jacobians through up to `max_iter` steps was nearly all of
    DFAL's selection time."""
    r_tot = torch.zeros_like(x0)
    iterations = torch.zeros(x0.shape[0], dtype=torch.int64)
    out, jac = logits_and_jacobian(model, x0)
    k0 = out.argmax(1)
    moving = torch.arange(x0.shape[0])  # rows not stalled, whose out and jac are current
    for _ in range(max_iter):
        unflipped = out.argmax(1) == k0[moving]
        moving, out, jac = moving[unflipped], out[unflipped], jac[unflipped]
        if moving.numel() == 0:
            break
        rows, k = torch.arange(moving.numel()), k0[moving]
        f = out - out[rows, k].unsqueeze(1)
        w = jac.sub_(jac[rows, k].unsqueeze(1))  # in place: a fresh Jacobian comes each step
        w_norm = w.norm(dim=2)
        pert = f.abs() / (w_norm + 1e-8)
        pert[rows, k] = float("inf")
        best = pert.argmin(1)
        step = (pert[rows, best] + nudge) / (w_norm[rows, best] + 1e-8)
        r_i = step.unsqueeze(1) * w[rows, best]
        r_tot[moving] += r_i
        iterations[moving] += 1
        moving = moving[r_i.norm(dim=1) >= tol]
        out, jac = logits_and_jacobian(model, x0[moving] + (1 + overshoot) * r_tot[moving])
    return (1 + overshoot) * r_tot, iterations
