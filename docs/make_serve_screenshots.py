"""Screenshots of every panel of ``rnnvision serve`` for docs/serve.md and the README.

    PYTHONPATH=src python docs/make_serve_screenshots.py --classify runs/mnist_row_lstm/best.pt \
        --recognize runs/digit_strings_crnn/best.pt --segment runs/digit_scenes_mdlstm/best.pt \
        --generate runs/binarized_mnist_pixelrnn_diag/best.pt --data-dir ../shared/data

Each panel is driven like a person would: a digit drawn with the mouse, a digit line from the
test split uploaded, a test scene uploaded, the top of a digit drawn and completed. Needs the
serve extra, playwright and Debian's chromium (see tests/serve/browser.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rnnvision.data import build_dataset  # noqa: E402
from rnnvision.serve import load_served, model_names  # noqa: E402
from tests.serve.browser import SEVEN, launch, running_server, stroke  # noqa: E402

OUT = Path(__file__).resolve().parent / "images"


def _save_png(array: np.ndarray, path: Path) -> Path:
    Image.fromarray(array).save(path)
    return path


def _upload(page, url: str, selector: str, image: Path, shot: Path) -> None:
    """Open a panel, upload ``image`` through its file input, wait for the answer, take a screenshot."""
    page.goto(url)
    page.wait_for_selector("body[data-ready]")
    with page.expect_response(lambda r: "/predict/" in r.url):
        page.set_input_files(selector, str(image))
    page.wait_for_timeout(300)
    page.screenshot(path=str(shot), full_page=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for task in ("classify", "recognize", "segment", "generate"):
        parser.add_argument(f"--{task}", metavar="CKPT")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    sources = {t: getattr(args, t) for t in ("classify", "recognize", "segment", "generate") if getattr(args, t)}
    names = dict(zip(sources, model_names(list(sources.values()))))
    models = [load_served(src, name=names[t]) for t, src in sources.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="serve-shots-"))
    with running_server(models) as url, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
        if "classify" in sources:
            page.goto(f"{url}/#classify")
            page.wait_for_selector("body[data-ready]")
            with page.expect_response(lambda r: "/predict/" in r.url):
                stroke(page, "#classify-canvas", SEVEN)
            page.wait_for_timeout(3000)  # the rows animation
            rows = int(page.get_attribute("#classify-row", "max")) + 1
            page.locator("#classify-row").fill(str(2 * rows // 3))  # stop two thirds down the image
            page.screenshot(path=str(args.out / "serve_classify.png"))
        if "recognize" in sources:
            meta = models[list(sources).index("recognize")].meta
            data = build_dataset(
                meta["name"],
                split="test",
                root=args.data_dir,
                **({"test_size": 8} if meta["name"] == "digit-strings" else {}),
            )
            image, text = data[3]
            line = _save_png((image[0].numpy() * 255).round().astype(np.uint8), folder / "line.png")
            _upload(page, f"{url}/#recognize", "#recognize-file", line, args.out / "serve_recognize.png")
            print(f"recognize: true text {text!r}, page shows {page.text_content('#recognize-text')!r}")
        if "segment" in sources:
            scene = build_dataset("digit-scenes", split="test", test_images=4).images[2, 0].numpy()
            path = _save_png(np.asarray(Image.fromarray(scene).resize((192, 192), Image.NEAREST)), folder / "scene.png")
            _upload(page, f"{url}/#segment", "#segment-file", path, args.out / "serve_segment.png")
        if "generate" in sources:
            page.goto(f"{url}/#generate")
            page.wait_for_selector("body[data-ready]")
            stroke(page, "#generate-canvas", [(0.62, 0.28), (0.45, 0.2), (0.32, 0.3), (0.3, 0.45)])
            stroke(page, "#generate-canvas", [(0.62, 0.28), (0.68, 0.4), (0.66, 0.5)])
            with page.expect_response(lambda r: "/complete/" in r.url, timeout=300_000):
                page.click("#generate-go")
            page.wait_for_timeout(2500)
            page.screenshot(path=str(args.out / "serve_generate.png"), full_page=True)
        phone = browser.new_page(
            viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True, has_touch=True
        )
        phone.goto(f"{url}/#{next(iter(sources))}")
        phone.wait_for_selector("body[data-ready]")
        if "classify" in sources:
            with phone.expect_response(lambda r: "/predict/" in r.url):
                stroke(phone, "#classify-canvas", SEVEN)
            phone.wait_for_timeout(1800)
        phone.screenshot(path=str(args.out / "serve_phone.png"), full_page=True)
        browser.close()
    for png in sorted(args.out.glob("serve_*.png")):
        print(f"wrote {png}")


if __name__ == "__main__":
    main()
