"""The pictures and the page of an evaluation: PSNR against t, the action confusion matrix,
image grids of frames, and a Markdown report that shows them beside the numbers.

Plain functions over numbers and uint8 frames; matplotlib draws off-screen (Agg).
"""

import pathlib

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the off-screen backend)
import numpy as np  # noqa: E402


def frame_grid(frames: np.ndarray, scale: int = 1, gap: int = 2, labels: list[str] | None = None) -> np.ndarray:
    """(rows, columns, H, W, 3) uint8 -> one RGB image, frames scaled by `scale` (nearest
    neighbour, so pixels stay crisp) with `gap` grey pixels between them and, with labels,
    each row's label in a margin on the left."""
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames (rows, columns, H, W, 3), got {frames.shape}")
    rows, columns, height, width, _ = frames.shape
    height, width = height * scale, width * scale
    margin = 8 + 8 * max(map(len, labels)) if labels else 0
    grid = np.full((rows * (height + gap) - gap, margin + columns * (width + gap) - gap, 3), 128, np.uint8)
    for r in range(rows):
        top = r * (height + gap)
        if labels:
            grid[top:top + height, :margin] = 255
            cv2.putText(grid, labels[r], (4, top + height // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                        cv2.LINE_AA)
        for c in range(columns):
            left = margin + c * (width + gap)
            grid[top:top + height, left:left + width] = frames[r, c].repeat(scale, 0).repeat(scale, 1)
    return grid


def stack_images(images: list[np.ndarray], gap: int = 10) -> np.ndarray:
    """RGB images of one width stacked top to bottom with `gap` white rows between them."""
    bar = np.full((gap, images[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([part for image in images for part in (image, bar)][:-1])


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 RGB image as PNG bytes."""
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()


def write_png(image: np.ndarray, path: pathlib.Path) -> None:
    """An (H, W, 3) uint8 RGB image to a PNG file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])):
        raise OSError(f"cannot write {path}")


def plot_psnr_by_t(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], t_marked: int,
                   path: pathlib.Path) -> None:
    """curves: label -> (mean, low, high) PSNR per generated frame t = 1..n; the paper's t marked."""
    figure, axes = plt.subplots(figsize=(6, 3.6), dpi=120)
    for label, (mean, low, high) in curves.items():
        t = np.arange(1, len(mean) + 1)
        axes.plot(t, mean, marker="o", label=label)
        axes.fill_between(t, low, high, alpha=0.2)
    axes.axvline(t_marked, color="grey", linestyle=":", label=f"t = {t_marked} (ΔtPSNR)")
    axes.set_xlabel("generated frame t (frames after the real first frame)")
    axes.set_ylabel("PSNR against the real frame (dB)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_confusion(confusion: np.ndarray, true_names: list[str], path: pathlib.Path) -> None:
    """(latent codes, true actions) counts as a heat map, each row normalised to sum 1."""
    counts = np.asarray(confusion, np.float64)
    rows = counts / counts.sum(1, keepdims=True).clip(min=1)
    figure, axes = plt.subplots(figsize=(1.0 + 0.7 * len(true_names), 1.2 + 0.45 * len(counts)), dpi=120)
    image = axes.imshow(rows, cmap="viridis", vmin=0, vmax=1)
    axes.set_xticks(range(len(true_names)), true_names, rotation=45, ha="right")
    axes.set_yticks(range(len(counts)), [f"latent {i} ({int(n)})" for i, n in enumerate(counts.sum(1))])
    axes.set_xlabel("true action")
    for i in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            if counts[i, j]:
                axes.text(j, i, f"{rows[i, j]:.2f}", ha="center", va="center", fontsize=7,
                          color="white" if rows[i, j] < 0.6 else "black")
    figure.colorbar(image, ax=axes, label="share of the latent code's transitions")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def markdown_report(summary: dict, pictures: dict[str, str]) -> str:
    """The report page: headline numbers, then each picture with what it shows."""
    lines = ["# Genie evaluation", ""]
    data = summary["data"]
    lines += [f"{data['windows']} windows of {data['window_frames']} frames from {data['clips']} held-out clips "
              f"of {len(data['videos'])} source videos.", "", "| measure | value |", "| --- | --- |"]
    for name, value in headline(summary):
        lines.append(f"| {name} | {value} |")
    lines.append("")
    captions = {
        "psnr_by_t": "PSNR of generated frame t against the real frame t, from the real first frame, with the "
                     "LAM's actions inferred from the real video and with random actions (shaded: bootstrap "
                     "interval over clips). The gap at t = 4 is ΔtPSNR.",
        "confusion": "Latent action (rows) against the true action pressed in the offline world (columns), "
                     "each row normalised.",
        "strips": "Rollout strips, one block per window, frames left to right: the real frames, the "
                  "tokenizer's reconstruction, the rollout with the LAM's inferred actions (numbers: the "
                  "actions), the rollout with random actions; each rollout starts from the real first frame.",
    }
    for key, file in pictures.items():
        lines += [f"## {key.replace('_', ' ')}", "", captions.get(key, ""), "", f"![{key}]({file})", ""]
    notes = summary.get("notes") or []
    if notes:
        lines += ["## notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)


def headline(summary: dict) -> list[tuple[str, str]]:
    """(measure, formatted value) rows of the report's table."""
    rows = [("tokenizer PSNR (dB)", f"{summary['tokenizer']['psnr']:.2f}"),
            ("tokenizer SSIM", f"{summary['tokenizer']['ssim']:.4f}"),
            ("dynamics next-frame PSNR (dB)", f"{summary['dynamics']['next_frame_psnr']:.2f}")]
    delta = summary["controllability"]["delta_psnr"]
    rows.append((f"ΔtPSNR at t = {delta['t']} (dB)",
                 f"{delta['value']:.3f} [{delta['low']:.3f}, {delta['high']:.3f}] ({delta['confidence']:.0%} interval)"))
    if summary.get("fvd"):
        rows.append(("FVD", f"{summary['fvd']['value']:.1f} ({summary['fvd']['videos']} videos)"))
    if summary.get("actions"):
        actions = summary["actions"]
        rows.append(("latent/true action NMI", f"{actions['nmi']:.3f}"))
        rows.append(("many-to-one action accuracy", f"{actions['accuracy']:.3f} ({actions['count']} transitions)"))
    return rows
