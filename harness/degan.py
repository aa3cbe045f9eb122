"""DeGAN's math and named settings (Addepalli, Nayak, Chakraborty, Babu 2020, Sec. 4.2), apart from the method
file (trainables/degan.py) so that tables and tests read them without Ray: the two losses the frozen teacher adds
to the generator's (Eqs. 4, 5), the teacher's view of a set of images, and the paper's and the released code's
settings as named variants. Also the generator stage, shared by data-free distillation (trainables/degan.py) and
class-incremental learning (trainables/class_incremental.py, where the new classes' images are the proxy)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import metrics as M

CONFIDENT = 0.9  # the teacher is "confident" above this probability (the released dfgan.py's per-class counts)

# Named variants: the config fields where the paper and the authors' released code differ (trainables/degan.py
# reads them; a table spreads one into its cells and says which).
VARIANTS = {
    # the released code: dfgan.py weighs the entropy loss 0 (c_l) and the diversity loss 5 (d_l); the KD scripts run
    # --temp 20 --lambda_ 1; KD_related_data.py selects the student on its agreement with the teacher on 20% of
    # the proxy's training images, held out
    "code": {"lambda_e": 0.0, "lambda_d": 5.0, "temperature": 20.0, "kd_weight": 1.0, "selection": "proxy_agreement"},
    # the paper's Eq. 7 with both losses on ("positive constants which can be tuned", no values given: lambda_e = 1
    # is ours, lambda_d = 5 the code's); soft-term weight 1 (Sec. 5.1); no temperature or student selection given:
    # the code's. So the variants differ in the entropy loss only, where the code contradicts the paper's text.
    "paper": {"lambda_e": 1.0, "lambda_d": 5.0, "temperature": 20.0, "kd_weight": 1.0, "selection": "proxy_agreement"},
}


def entropy_loss(logits: torch.Tensor) -> torch.Tensor:
    """Eq. 4: E_z[-sum_k y_k log y_k] with y = softmax(logits): the mean entropy of the teacher's predictions, low
    when each image is confidently one class. From log-softmax (dfgan.py takes log(y + 1e-5))."""
    log_y = F.log_softmax(logits, 1)
    return -(log_y.exp() * log_y).sum(1).mean()


def diversity_loss(logits: torch.Tensor) -> torch.Tensor:
    """Eq. 5: -sum_k w_k log w_k with w = E_z[softmax(logits)]: the entropy of the batch's mean prediction, log K
    when the batch spreads evenly over the K classes. The generator minimises -lambda_d times it (Eq. 7)."""
    w = F.softmax(logits, 1).mean(0)
    return -torch.special.xlogy(w, w).sum()


def generator_loss_terms(logits: torch.Tensor, lambda_e: float, lambda_d: float) -> torch.Tensor:
    """What the teacher adds to the generator's adversarial loss (Eq. 7): lambda_e * L_entropy - lambda_d *
    L_diversity."""
    return lambda_e * entropy_loss(logits) - lambda_d * diversity_loss(logits)


@torch.no_grad()
def teacher_view(teacher: torch.nn.Module, x: torch.Tensor, batch_size: int = 500) -> dict:
    """What the teacher sees in float images ``x``: its predicted-class histogram, that histogram's balance
    (100 * entropy / log K: 100 when every class is predicted equally often, 0 when one class takes all), the
    share predicted with probability > 0.9, and the entropy and diversity terms (Eqs. 4, 5) over all of ``x``."""
    logits = torch.cat([teacher(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    k = logits.shape[1]
    counts = torch.bincount(logits.argmax(1), minlength=k)
    p = counts.double() / len(x)
    return {M.KD_SOURCE_HISTOGRAM: counts.tolist(),
            M.KD_SOURCE_BALANCE: float(100 * -torch.special.xlogy(p, p).sum() / math.log(k)),
            M.KD_SOURCE_CONFIDENT: float(100 * (F.softmax(logits, 1).max(1).values > CONFIDENT).double().mean()),
            M.KD_SOURCE_ENTROPY: float(entropy_loss(logits)), M.KD_SOURCE_DIVERSITY: float(diversity_loss(logits))}


def generated_images(G: torch.nn.Module, n: int, seed: int, epoch: int, device,
                     purpose: str = "degan_view") -> torch.Tensor:
    """``n`` images of the unconditional ``G`` for measuring (the teacher's view; the student's selection set), in
    batches of 500, from the measurement stream (seed, epoch, purpose): drawing them changes no training."""
    from harness.fidelity import measurement_rng
    from harness.gans import sample_unconditional

    g = measurement_rng(seed, epoch, purpose)
    return torch.cat([sample_unconditional(G, min(500, n - i), g, device) for i in range(0, n, 500)])


def picked_images(pool: torch.Tensor, n: int) -> torch.Tensor:
    """A fixed pick of ``n`` of the uint8 ``pool``'s images, as floats (the teacher's view of real images)."""
    from harness.data import to_float

    pick = torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))[:n].to(pool.device)
    return to_float(pool[pick])


# ------------------------------------------------------------------------------------------------------
# The generator stage (Sec. 4.2): a GAN on proxy images, with the frozen teacher's two losses
# ------------------------------------------------------------------------------------------------------

GENERATOR_FILE = "generator.pt"


def generator_stage(cfg, teacher: torch.nn.Module, proxy_x: torch.Tensor, proxy_y: torch.Tensor, source: dict,
                    inputs: tuple[str, ...], data, device, root):
    """The DeGAN generator of ``cfg`` (any config with ``gan``, ``lambda_e``, ``lambda_d``, ``seed`` and
    ``view_images``; a plain DCGAN at lambda_e = lambda_d = 0) trained on the proxy's uint8 training images
    ``proxy_x`` (labels ``proxy_y``, which an unconditional GAN ignores) against the frozen ``teacher``: a cached
    stage, checkpointed every epoch. Its key: those fields, ``source`` (what the proxy is, e.g. DeGAN's Proxy and
    pool) and ``inputs`` (the teacher's and the proxy's keys). ``data`` gives the images' shape and the teacher's
    class count. Each epoch ends with the teacher's view of ``view_images`` samples, from a stream of its own.
    Returns (stage, G in eval mode without gradients, per-epoch history)."""
    # NOTE: imported here: search_spaces reads this module's VARIANTS, and harness.checkpoint imports Ray
    from harness.checkpoint import FolderCheckpointer, rng_states, seed_everything, set_rng_states
    from harness.gan_train import DIVERGED, GANState, gan_epoch
    from harness.stages import stage
    from harness.storage import atomic_write

    c, h, k = data.shape[0], data.shape[1], data.num_classes  # an unconditional G ignores k

    def teacher_terms(fake: torch.Tensor, _labels: torch.Tensor) -> torch.Tensor:
        logits = teacher(fake)  # eval mode, no weight gradients: only G moves (gan_epoch's backward(inputs=G))
        return generator_loss_terms(logits, cfg.lambda_e, cfg.lambda_d)

    def view(G, epoch: int) -> dict:
        return teacher_view(teacher, generated_images(G, cfg.view_images, cfg.seed, epoch, device))

    def compute(artifact: Path, work: Path) -> None:
        ckpt = FolderCheckpointer(work)
        rng = seed_everything(cfg.seed)
        state = GANState.create(cfg.gan, c, h, k, device)
        history, start = [], 1
        if saved := ckpt.restore():
            state.load_state_dict(saved["gan"])
            set_rng_states(saved["rng"], rng)
            history, start = saved["history"], saved["epoch"] + 1
        for epoch in range(start, cfg.gan.epochs + 1):
            stats = gan_epoch(state, cfg.gan, proxy_x, proxy_y, rng,
                              teacher_terms if cfg.lambda_e or cfg.lambda_d else None)
            seen = view(state.gan.generator, epoch) if not stats[DIVERGED] else {}
            history.append({"epoch": epoch, **stats, **seen})
            ckpt.save({}, {"gan": state.state_dict(), "rng": rng_states(rng), "history": history, "epoch": epoch})
            if stats[DIVERGED]:
                break
        atomic_write(artifact / GENERATOR_FILE, lambda f: torch.save(
            {"generator": state.gan.generator.state_dict(), "history": history}, f))

    key = {"gan": dataclasses.asdict(cfg.gan), "lambda_e": cfg.lambda_e, "lambda_d": cfg.lambda_d, "seed": cfg.seed,
           "view_images": cfg.view_images, **source}
    st = stage(root, "degan_generator", key, inputs, compute)
    payload = torch.load(st.path(GENERATOR_FILE), map_location=device, weights_only=False)
    G = GANState.create(cfg.gan, c, h, k, device).gan.generator
    G.load_state_dict(payload["generator"])
    return st, G.eval().requires_grad_(False), payload["history"]
