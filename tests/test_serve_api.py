"""``contrast-sr serve``'s HTTP API, without a browser (Starlette's TestClient, a tiny model)."""

from __future__ import annotations

import io
import time
import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("starlette", reason="the web extra is not installed")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx")

with warnings.catch_warnings():  # starlette >= 1.10 asks for httpx2; httpx works everywhere
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from contrast_sr.ops.imresize import imresize
from contrast_sr.web.app import create_app
from contrast_sr.web.catalog import ModelCatalog, ModelChoice
from contrast_sr.web.settings import ServeOptions, upscaler_has_memory_budget

from ._serve_helpers import GatedSR, image_bytes, wait_for
from ._tiny_models import TinySR


def _catalog(model=None, loads=None) -> ModelCatalog:
    net = model or TinySR(scale=2)

    def load():
        if loads is not None:
            loads.append(1)
        return net

    return ModelCatalog([ModelChoice("tiny", "tiny x2", net.scale, load)])


@pytest.fixture
def make_client():
    clients = []

    def make(options=None, model=None, loads=None):
        app = create_app(_catalog(model, loads), options or ServeOptions(device="cpu"))
        client = TestClient(app).__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _post(http, data: bytes, name: str = "a.png", **params):
    query = {"name": name, "client": "tab1", **params}
    return http.post("/api/jobs", params=query, content=data)


def _run(http, data: bytes, name: str = "a.png", **params) -> dict:
    response = _post(http, data, name, **params)
    assert response.status_code == 201, response.text
    return wait_for(http, response.json()["id"])


def test_config_lists_the_models_and_limits(make_client):
    config = make_client(ServeOptions(device="cpu", max_upload_bytes=5000)).get("/api/config")
    body = config.json()
    assert [m["key"] for m in body["models"]] == ["tiny"]
    assert body["default_model"] == "tiny" and body["max_upload_bytes"] == 5000


@pytest.mark.parametrize(
    ("mode", "fmt", "name", "expected"),
    [
        ("RGBA", "PNG", "a.png", "RGBA"),
        ("I;16", "PNG", "g.png", "I;16"),
        ("RGB", "JPEG", "p.jpeg", "RGB"),
    ],
)
def test_result_downloads_in_the_inputs_format_and_kind(make_client, mode, fmt, name, expected):
    client = make_client()
    job = _run(client, image_bytes(mode, fmt=fmt), name)
    assert job["state"] == "done", job
    response = client.get(f"/api/jobs/{job['id']}/result")
    stem, ext = name.rsplit(".", 1)
    assert f'filename="{stem}_x2.{ext}"' in response.headers["content-disposition"]
    out = Image.open(io.BytesIO(response.content))
    assert (out.format, out.mode, out.size) == (fmt, expected, (48, 48))


def test_tiles_are_counted_and_the_model_is_loaded_once(make_client):
    loads = []
    client = make_client(loads=loads)
    first = _run(client, image_bytes(), tile="16", tile_overlap="4")
    second = _run(client, image_bytes(), tile="0")
    assert first["tiles_total"] > 1 and first["tiles_done"] == first["tiles_total"]
    assert second["state"] == "done" and len(loads) == 1


def test_zip_holds_every_result_under_unique_names(make_client):
    client = make_client()
    ids = [_run(client, image_bytes(), "same.png")["id"] for _ in range(2)]
    response = client.get("/api/results.zip", params={"ids": ",".join(ids)})
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert sorted(names) == ["same_x2 (2).png", "same_x2.png"]


def test_broken_file_is_a_readable_error_and_the_server_keeps_working(make_client):
    client = make_client()
    job = _run(client, b"\x89PNG\r\n\x1a\n but nothing else", "broken.png")
    assert job["state"] == "error"
    assert job["error"].startswith("broken.png: ") and "/tmp" not in job["error"]
    assert _run(client, image_bytes())["state"] == "done"


@pytest.mark.parametrize("chunked", [False, True])
def test_upload_over_the_limit_is_refused_before_decoding(make_client, chunked):
    client = make_client(ServeOptions(device="cpu", max_upload_bytes=1000))
    data = bytes(5000)
    body = iter([data[:2500], data[2500:]]) if chunked else data  # chunked: no Content-Length
    response = client.post("/api/jobs", params={"name": "big.png"}, content=body)
    assert response.status_code == 413 and "too large" in response.json()["error"]
    assert client.get("/api/jobs").json()["jobs"] == []
    assert list(client.app.state.service.store.root.iterdir()) == []


def test_too_many_pixels_is_refused_by_the_bomb_guard(make_client):
    client = make_client(ServeOptions(device="cpu", max_pixels=100))
    job = _run(client, image_bytes())
    assert job["state"] == "error" and "decompression bomb" in job["error"]


@pytest.mark.parametrize(
    ("params", "starts"),
    [({"tile": "3"}, "tile:"), ({"scale": "0"}, "scale:"), ({"model": "nope"}, "model:")],
)
def test_bad_settings_are_refused_naming_the_setting(make_client, params, starts):
    response = _post(make_client(), image_bytes(), **params)
    assert response.status_code == 400 and response.json()["error"].startswith(starts)


def test_memory_budget_is_passed_on_or_refused_clearly(make_client):
    response = _post(make_client(), image_bytes(), max_memory="1G")
    if upscaler_has_memory_budget():  # the memory-bounded Upscaler
        assert response.status_code == 201 and response.json()["settings"]["max_memory"] == "1G"
    else:
        assert response.status_code == 400
        assert response.json()["error"].startswith("max memory: ")


def test_cancel_stops_queued_and_running_jobs_and_the_page_stays_responsive(make_client):
    model = GatedSR()
    client = make_client(model=model)
    running = _post(client, image_bytes(), tile="16", tile_overlap="4").json()
    queued = _post(client, image_bytes()).json()
    assert model.entered.wait(10)
    start = time.monotonic()
    assert client.get("/api/config").status_code == 200  # while the worker is busy
    assert time.monotonic() - start < 2.0
    assert client.get(f"/api/jobs/{queued['id']}").json()["position"] == 1
    assert client.post(f"/api/jobs/{queued['id']}/cancel").json()["state"] == "cancelled"
    client.post(f"/api/jobs/{running['id']}/cancel")
    model.gate.set()
    job = wait_for(client, running["id"])
    assert job["state"] == "cancelled" and job["tiles_done"] < job["tiles_total"]


def test_crops_are_the_result_and_matlab_bicubic(make_client):
    client = make_client()
    data = image_bytes("RGB", (30, 20))
    job = _run(client, data)
    box = {"x": 25, "y": 3, "size": 8}  # x is moved left to fit: 22
    model = client.get(f"/api/jobs/{job['id']}/crop", params={"method": "model", **box})
    bicubic = client.get(f"/api/jobs/{job['id']}/crop", params={"method": "bicubic", **box})
    result = np.asarray(Image.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/result").content)))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(model.content))), result[6:22, 44:60])
    source = torch.from_numpy(np.array(Image.open(io.BytesIO(data)))).permute(2, 0, 1) / 255.0
    expected = torch.round(imresize(source.float(), scale=2).clamp(0, 1) * 255)[:, 6:22, 44:60]
    got = torch.from_numpy(np.asarray(Image.open(io.BytesIO(bicubic.content))).copy())
    assert (got.permute(2, 0, 1).float() - expected).abs().max() <= 1  # float summation order


def test_tabs_see_their_own_jobs_and_removing_frees_the_files(make_client):
    client = make_client()
    mine = _run(client, image_bytes())
    _post(client, image_bytes(), client="tab2")
    listed = client.get("/api/jobs", params={"client": "tab1"}).json()["jobs"]
    assert [j["id"] for j in listed] == [mine["id"]]
    store = client.app.state.service.store
    assert (store.root / mine["id"]).is_dir()
    assert client.delete(f"/api/jobs/{mine['id']}").status_code == 204
    assert not (store.root / mine["id"]).exists()
    assert client.get(f"/api/jobs/{mine['id']}").status_code == 404


def test_no_route_reads_a_path_and_the_work_folder_goes_at_shutdown():
    with TestClient(create_app(_catalog(), ServeOptions(device="cpu"))) as client:
        root = client.app.state.service.store.root
        assert _run(client, image_bytes())["state"] == "done"
        for url in ("/api/jobs/..%2F..%2Fetc%2Fpasswd/result", "/static/../x.py", "/etc/passwd"):
            assert client.get(url).status_code == 404, url
    assert not root.exists()


def test_other_sites_pages_cannot_start_or_cancel_jobs(make_client):
    client = make_client()
    evil = {"origin": "http://evil.example"}
    response = client.post("/api/jobs", params={"name": "a.png"}, content=b"x", headers=evil)
    assert response.status_code == 403 and client.get("/api/jobs").json()["jobs"] == []
    same = {"origin": "http://testserver"}
    response = client.post("/api/jobs", params={"name": "a.png"}, content=b"x", headers=same)
    assert response.status_code == 201


def test_only_this_machines_host_names_are_answered(make_client):
    client = make_client(ServeOptions(device="cpu", allowed_hosts=("127.0.0.1", "localhost")))
    assert client.get("/api/config", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/api/config", headers={"host": "localhost:8000"}).status_code == 200


def test_page_is_served_with_a_strict_content_policy(make_client):
    client = make_client()
    page = client.get("/")
    assert page.status_code == 200 and 'id="files"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")
