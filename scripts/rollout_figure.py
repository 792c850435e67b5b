"""Render a real clip and the model's replay of it (actions inferred from the clip, generated from frame 0).

    python scripts/rollout_figure.py CHECKPOINT DATA_DIR OUT.png [--split test] [--clip-len 12] [--index 0]
        [--every 1]

Top row: the real frames; bottom row: the generated frames with the agent mask's centroid marked; written as a
PNG scaled up by --scale (nearest neighbour). The whole clip is generated; ``--every N`` shows frames 0, N, 2N, ...
(and the last), for long rollouts.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image, ImageDraw

from worldmodel.data import ClipConfig, ClipDataset
from worldmodel.data.format import atomic_write_bytes
from worldmodel.metrics import mask_centroid
from worldmodel.models import load_world_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--split", default="test")
    p.add_argument("--clip-len", type=int, default=12)
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--scale", type=int, default=3)
    p.add_argument("--every", type=int, default=1, help="show every Nth frame (the last one always)")
    a = p.parse_args()
    if a.every < 1:
        p.error("--every must be >= 1")
    torch.manual_seed(0)
    model = load_world_model(a.checkpoint, "cpu")
    skip = int(model.metadata.get("frame_skip", 0) or 0)
    ds = ClipDataset(a.data, a.split, ClipConfig(clip_len=a.clip_len, frame_skip=skip, stride=a.clip_len))
    video = ds[a.index % len(ds)]["frames"][None]  # (1, T, 3, H, W) uint8
    gen, masks = model.generate(video.float() / 255)  # (1, T, 3, H, W) in [0, 1], (1, T, 1, H, W)
    real = video[0].permute(0, 2, 3, 1).numpy()  # (T, H, W, 3)
    fake = (gen[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    shown = sorted(set(range(0, real.shape[0], a.every)) | {real.shape[0] - 1})
    real, fake, masks = real[shown], fake[shown], masks[:, shown]
    t, h, w, _ = real.shape
    gap = 2
    canvas = np.full((2 * h + gap, t * (w + gap) - gap, 3), 255, np.uint8)
    for i in range(t):
        x = i * (w + gap)
        canvas[:h, x:x + w] = real[i]
        canvas[h + gap:, x:x + w] = fake[i]
    img = Image.fromarray(canvas).resize((canvas.shape[1] * a.scale, canvas.shape[0] * a.scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    cents = mask_centroid(masks[0, :, 0]).numpy()  # (T, 2) x, y or NaN
    for i, (cx, cy) in enumerate(np.asarray(cents).reshape(t, 2)):
        if np.isfinite(cx):
            x0, y0 = (i * (w + gap) + cx) * a.scale, (h + gap + cy) * a.scale
            draw.ellipse([x0 - 4, y0 - 4, x0 + 4, y0 + 4], outline=(255, 0, 255), width=2)
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(a.out, buf.getvalue())
    print(f"wrote {a.out}: frames {shown}, real (top) vs generated (bottom)")


if __name__ == "__main__":
    main()
