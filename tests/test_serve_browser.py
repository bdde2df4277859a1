"""The page in a real browser: headless Chromium driven by Selenium against a running server
with the bundled model. Skipped (with the reason) without the web extra, selenium, chromium or
chromedriver. ``CONTRAST_SR_SCREENSHOT=docs/images/serve.png`` also writes the README's
screenshot, of a real photo crop when the shared benchmark data is there."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contrast_sr import web

from .conftest import shared_data_dir

if web.missing_modules():
    pytest.skip("the web extra (starlette, uvicorn) is not installed", allow_module_level=True)
selenium = pytest.importorskip(
    "selenium", reason="selenium is not installed (pip install selenium)"
)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from contrast_sr.web import server  # noqa: E402
from contrast_sr.web.app import create_app  # noqa: E402
from contrast_sr.web.catalog import catalog_from_specs  # noqa: E402
from contrast_sr.web.settings import ServeOptions  # noqa: E402

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
SCREENSHOT = os.environ.get("CONTRAST_SR_SCREENSHOT")
WAIT_S = 60


@pytest.fixture(scope="module")
def url():
    """A real server (uvicorn in a thread) on a free port with the bundled model."""
    app = create_app(catalog_from_specs(), ServeOptions(device="cpu"))
    sock = server.bind("127.0.0.1", 0)
    http = server.make_server(app)
    thread = threading.Thread(target=http.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not http.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield server.url_of(sock)
    http.should_exit = True
    thread.join(15)
    sock.close()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1000,1000")
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    yield driver
    driver.quit()


def _open(browser, url: str) -> None:
    browser.get(url)
    WebDriverWait(browser, WAIT_S).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "body[data-ready='true']"))
    )


def _card(browser, name: str):
    """The job card showing ``name``, or None."""
    for card in browser.find_elements(By.CSS_SELECTOR, "li.job"):
        if card.find_element(By.CLASS_NAME, "name").text == name:
            return card
    return None


def _upload(browser, path: Path):
    browser.find_element(By.ID, "files").send_keys(str(path))
    return WebDriverWait(browser, WAIT_S).until(lambda d: _card(d, path.name))


def _wait_state(browser, job, states: tuple[str, ...]) -> str:
    WebDriverWait(browser, WAIT_S).until(lambda d: job.get_attribute("data-state") in states)
    return job.get_attribute("data-state")


def _sample(tmp_path: Path) -> tuple[Path, int]:
    """A 24x24 RGBA test image, or for the README a photo: a 256x256 crop of Set14 zebra
    downscaled x4 (MATLAB bicubic, as the benchmarks' LR images), RGB."""
    photo = shared_data_dir() / "benchmark" / "Set14" / "HR" / "zebra.png"
    if SCREENSHOT and photo.is_file():
        import torch

        from contrast_sr.data.degrade import bicubic_lr

        hr = np.asarray(Image.open(photo).convert("RGB").crop((300, 40, 556, 296)))
        lr = bicubic_lr(torch.from_numpy(hr.copy()).permute(2, 0, 1), 4).permute(1, 2, 0)
        path = tmp_path / "zebra.png"
        Image.fromarray(lr.numpy()).save(path)
        return path, 64
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:24, :24]
    rings = (127 + 120 * np.sin(np.hypot(yy - 12, xx - 12) / 1.5)).astype(np.uint8)
    rgba = np.stack([rings, 255 - rings, rng.integers(0, 256, (24, 24), dtype=np.uint8)], -1)
    alpha = np.where(np.hypot(yy - 12, xx - 12) < 11, 255, 0).astype(np.uint8)[..., None]
    path = tmp_path / "rings.png"
    Image.fromarray(np.concatenate([rgba, alpha], -1)).save(path)
    return path, 24


def _download(browser, job, folder: Path, name: str) -> Path:
    job.find_element(By.CLASS_NAME, "download").click()
    target = folder / name
    deadline = time.monotonic() + WAIT_S
    while not target.is_file() or (folder / f"{name}.crdownload").exists():
        assert time.monotonic() < deadline, f"{name} was not downloaded: {list(folder.iterdir())}"
        time.sleep(0.1)
    return target


def test_upload_progress_compare_and_download(browser, url, downloads, tmp_path):
    _open(browser, url)
    path, size = _sample(tmp_path)
    job = _upload(browser, path)
    assert _wait_state(browser, job, ("done", "error")) == "done", job.text
    status = job.find_element(By.CLASS_NAME, "status").text
    assert f"{size}×{size} → {4 * size}×{4 * size}" in status

    result = Image.open(_download(browser, job, downloads, f"{path.stem}_x4.png"))
    assert result.size == (4 * size, 4 * size)
    assert result.mode == ("RGB" if size == 64 else "RGBA")  # alpha kept

    job.find_element(By.CLASS_NAME, "thumb").click()  # pick a crop: both views show it
    side = min(48, size) * 4  # the default crop, 48 input pixels (or the whole image)
    WebDriverWait(browser, WAIT_S).until(
        lambda d: (
            d.execute_script(
                "return [...arguments[0].querySelectorAll('.stage img')]"
                ".map(i => i.complete ? i.naturalWidth : 0).join();",
                job,
            )
            == f"{side},{side}"
        )
    )
    shot = tmp_path / "serve.png"
    browser.save_screenshot(str(shot))
    assert Image.open(shot).size[0] > 0
    if SCREENSHOT:
        shutil.copyfile(shot, SCREENSHOT)


def test_broken_file_shows_an_error_and_the_server_stays_up(browser, url, tmp_path):
    _open(browser, url)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    job = _upload(browser, broken)
    assert _wait_state(browser, job, ("done", "error")) == "error"
    message = job.find_element(By.CLASS_NAME, "error").text
    assert message.startswith("broken.png: ") and "not a recognised image" in message
    with urllib.request.urlopen(f"{url}/api/config", timeout=10) as response:
        assert json.load(response)["default_model"] == "bundled-x4"
    _open(browser, url)  # a reload still works and still lists the failure (this tab's jobs)
    WebDriverWait(browser, WAIT_S).until(lambda d: _card(d, "broken.png") is not None)
    assert _card(browser, "broken.png").get_attribute("data-state") == "error"
