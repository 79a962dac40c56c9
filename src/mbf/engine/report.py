"""Pictures a training run leaves behind: the training curve and a retrieval sheet."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..data import read_image  # noqa: E402
from ..evaluation import plot_part_masks, plot_retrieval  # noqa: E402
from ..evaluation.plots import save_figure  # noqa: E402


def plot_training_curve(history: list[dict], path: str | Path) -> Path:
    """Loss and accuracy per epoch, with rank-1 and mAP where the run evaluated."""
    path = Path(path)
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["loss"] for h in history], marker="o", label="total loss")
    terms = sorted({k for h in history for k in h} - {"epoch", "loss", "acc", "lr", "rank1", "mAP"})
    for name in terms:
        ax_loss.plot(epochs, [h.get(name, float("nan")) for h in history], linewidth=1, label=name)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend(fontsize=7)
    ax_loss.set_title("training loss")
    ax_metric.plot(epochs, [h["acc"] for h in history], marker=".", label="train ID accuracy")
    evals = [h for h in history if "rank1" in h]
    if evals:
        ax_metric.plot([h["epoch"] for h in evals], [h["rank1"] for h in evals], marker="s", label="rank-1")
        ax_metric.plot([h["epoch"] for h in evals], [h["mAP"] for h in evals], marker="^", label="mAP")
    ax_metric.set_ylim(0, 1)
    ax_metric.set_xlabel("epoch")
    ax_metric.legend(fontsize=8)
    ax_metric.set_title("accuracy and retrieval")
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def write_retrieval_picture(path: str | Path, result, num_queries: int = 6) -> Path:
    """Top-10 lists of a few queries, correct matches green, wrong red (from an EvalResult)."""
    return plot_retrieval(path, result.q_paths, result.g_paths, result.distmat, result.q_pids, result.g_pids,
                          result.q_camids, result.g_camids, num_queries=num_queries, topk=10)


def write_part_masks_picture(path: str | Path, model, items: list, transform, mean, std, device,
                             count: int = 8) -> Path | None:
    """The model's part predictions on a few images (``transform``: the test transform, whose
    normalisation ``mean``/``std`` is undone for display); None for models without parts."""
    if not hasattr(model, "part_probabilities") or not items:
        return None
    items = items[:count]
    img = torch.stack([transform(read_image(item.path)) for item in items]).to(device)
    cams = torch.tensor([item.camid for item in items], device=device)
    was_training = model.training
    model.eval()
    labels = model.part_probabilities(img, cam_label=cams).argmax(dim=1)
    model.train(was_training)
    mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return plot_part_masks(path, img * std + mean, labels, titles=[f"id {item.pid}" for item in items])
