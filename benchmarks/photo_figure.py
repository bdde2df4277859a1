"""The README's photo figure: a JPEG-compressed, noisy, slightly soft LR (the degraded benchmark's
recipe: blur 1.0, x4 bicubic down, noise 5/255, JPEG 75) of a Set14 image, upscaled by bicubic,
the default (bicubic-trained) model and the photo model; one crop, PSNR against the HR.

    python benchmarks/photo_figure.py --image ../shared/data/benchmark/Set14/HR/comic.png \\
        --box 40,60,96 -o docs/images/photo_model.png
"""

from __future__ import annotations

import argparse

import torch

from contrast_sr.analysis.common import load_image, resize
from contrast_sr.analysis.figure import panels, save_png, to_pil
from contrast_sr.data.degrade import degraded_lr, parse_lr_degradation
from contrast_sr.metrics import calculate_psnr_y
from contrast_sr.models import resolve_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", required=True)
    p.add_argument("--box", default="40,60,96", help="x,y,size of the HR crop")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args()
    x, y, size = (int(v) for v in a.box.split(","))
    hr = load_image(a.image)
    h, w = hr.shape[1] // 4 * 4, hr.shape[2] // 4 * 4
    hr8 = (hr[:, :h, :w] * 255).round().to(torch.uint8)
    lr = degraded_lr(hr8, 4, parse_lr_degradation("photo"), a.image.split("/")[-1])
    lr = lr.float()[None] / 255
    outs = {"bicubic": resize(lr, 4.0).clamp(0, 1)}
    with torch.no_grad():
        for name in ("contrast_tiny", "photo"):
            outs[name] = resolve_model(name, 4)(lr).clamp(0, 1)
    crop = (slice(None), slice(y, y + size), slice(x, x + size))
    lr_crop = lr[0][:, y // 4 : (y + size) // 4, x // 4 : (x + size) // 4]
    images = [to_pil(lr_crop.repeat_interleave(4, 1).repeat_interleave(4, 2))]
    captions = ["degraded LR (nearest x4)"]
    for name, sr in outs.items():
        psnr = calculate_psnr_y((sr[0] * 255).round(), (hr8.float()), 4)
        images.append(to_pil(sr[0][crop]))
        captions.append(f"{name}\n{psnr:.2f} dB (whole image)")
    images.append(to_pil(hr8.float()[crop] / 255))
    captions.append("HR")
    save_png(panels(images, captions, height=2 * size), a.output)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
