"""The README picture: HR crop | bicubic x4 | default model x4, side by side, with PSNR (Y).

    python benchmarks/make_upscale_figure.py \
        --image ../shared/data/benchmark/Set14/HR/zebra.png --box 40 30 48 36 \
        -o docs/images/default_x4_zebra.png

``--box X Y W H`` is the crop in LR pixels (the HR crop is 4x that). The LR image is the HR image
cropped to a multiple of 4 and shrunk with MATLAB bicubic, as in ``contrast-sr eval``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from contrast_sr.infer import DEFAULT_MODEL_NAME, Upscaler, get_model
from contrast_sr.io import read_image, to_uint8
from contrast_sr.metrics import calculate_psnr_y
from contrast_sr.ops.imresize import imresize


def _pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray(to_uint8(x).permute(1, 2, 0).numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--box", type=int, nargs=4, metavar=("X", "Y", "W", "H"), required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--zoom", type=int, default=2, help="nearest-neighbour zoom of the crops")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    model = get_model(args.model, 4)
    s = int(model.scale)
    hr, _ = read_image(args.image)
    hr = hr[:3, : hr.shape[1] // s * s, : hr.shape[2] // s * s]
    lr = imresize(hr, scale=1 / s).clamp(0, 1)
    x, y, w, h = args.box
    pad = 8  # context so the crop does not see the model's border
    lr_crop = lr[:, max(y - pad, 0) : y + h + pad, max(x - pad, 0) : x + w + pad]
    oy, ox = (y - max(y - pad, 0)) * s, (x - max(x - pad, 0)) * s
    sr = Upscaler(model, device="cpu")(lr_crop)[:, oy : oy + h * s, ox : ox + w * s]
    bic = imresize(lr_crop, scale=s).clamp(0, 1)[:, oy : oy + h * s, ox : ox + w * s]
    ref = hr[:, y * s : (y + h) * s, x * s : (x + w) * s]

    def score(img: torch.Tensor) -> str:
        q = lambda t: to_uint8(t).float()  # noqa: E731
        return f"{calculate_psnr_y(q(img), q(ref), crop_border=0):.2f} dB"

    panels = [
        ("HR", ref),
        (f"bicubic {score(bic)}", bic),
        (f"{args.model or DEFAULT_MODEL_NAME} {score(sr)}", sr),
    ]
    z = args.zoom
    tw, th = w * s * z, h * s * z
    canvas = Image.new("RGB", (3 * tw + 2 * 6, th + 22), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, img) in enumerate(panels):
        canvas.paste(_pil(img).resize((tw, th), Image.NEAREST), (i * (tw + 6), 22))
        draw.text((i * (tw + 6) + 4, 4), label, fill="black")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.output)
    print(f"wrote {args.output}: " + ", ".join(label for label, _ in panels))


if __name__ == "__main__":
    main()
