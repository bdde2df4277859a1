// The Contrast-SR page: upload images one by one, poll their state, compare, download.
// Talks only to this server's /api (see contrast_sr/web/app.py). No build step, no libraries.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const ACTIVE = new Set(["queued", "running"]);
const POLL_MS = 400;

const state = {
  config: null,
  client: tabId(),
  cards: new Map(), // job id -> {el, job}
  removed: new Set(), // ids removed here: a poll answered before the removal must not bring them back
  polling: false,
};

// Each browser tab keeps its own list (across reloads of the tab).
function tabId() {
  let id = sessionStorage.getItem("contrast-sr-client");
  if (!id) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem("contrast-sr-client", id);
  }
  return id;
}

function formatBytes(n) {
  return n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(0)} MB` : `${(n / 1024).toFixed(0)} KB`;
}

function formatSeconds(s) {
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function showMessage(text) {
  $("#message").textContent = text || "";
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error("the server does not answer (is contrast-sr serve still running?)");
  }
  if (response.status === 204) return null;
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok) throw new Error((body && body.error) || `HTTP ${response.status}`);
  return body;
}

// -- settings ----------------------------------------------------------------------------
function fillSettings(config) {
  const model = $("#model");
  for (const m of config.models) model.add(new Option(m.label, m.key));
  model.value = config.default_model;
  model.addEventListener("change", () => fillScales(config));
  fillScales(config);
  $("#memory-field").hidden = !config.memory_budget;
  $("#memory").value = config.defaults.max_memory;
  const pixels = config.max_pixels ? `, up to ${(config.max_pixels / 1e6).toFixed(0)} megapixels` : "";
  $("#limits").textContent = `PNG, JPEG, TIFF, WebP or BMP, up to ${formatBytes(config.max_upload_bytes)} each${pixels}. Results keep the input's format, bit depth and alpha.`;
}

function fillScales(config) {
  const model = config.models.find((m) => m.key === $("#model").value);
  const scales = new Set([2, 3, 4, 8, model.scale].filter((s) => s <= config.max_scale));
  const select = $("#scale");
  select.replaceChildren();
  for (const s of [...scales].sort((a, b) => a - b)) {
    const label = s === model.scale ? `x${s}` : `x${s} (model x${model.scale}, resized)`;
    select.add(new Option(label, String(s)));
  }
  select.value = String(model.scale);
}

function settingsQuery(file) {
  const params = new URLSearchParams({
    client: state.client,
    name: file.name,
    model: $("#model").value,
    scale: $("#scale").value,
    self_ensemble: $("#ensemble").checked ? "true" : "false",
    tile: $("#tile").value.trim() || "auto",
    tile_overlap: $("#overlap").value || "32",
  });
  if (state.config.memory_budget && $("#memory").value.trim()) params.set("max_memory", $("#memory").value.trim());
  return params.toString();
}

// -- uploads -----------------------------------------------------------------------------
async function uploadAll(files) {
  showMessage("");
  for (const file of files) {
    if (file.size > state.config.max_upload_bytes) {
      localError(file.name, `${file.name}: too large: ${formatBytes(file.size)}, the limit is ${formatBytes(state.config.max_upload_bytes)} per image`);
      continue;
    }
    try {
      const job = await api(`/api/jobs?${settingsQuery(file)}`, {
        method: "POST",
        headers: { "Content-Type": "application/octet-stream" },
        body: file,
      });
      render(job);
      poll(); // follow the first jobs while the rest upload
    } catch (err) {
      localError(file.name, err.message);
    }
  }
}

// A card for a file the server never took (too large, refused settings, no server).
function localError(name, message) {
  const id = `local-${crypto.getRandomValues(new Uint32Array(1))[0]}`;
  render({ id, name, state: "error", error: message, local: true });
}

// -- job cards ---------------------------------------------------------------------------
function card(job) {
  let entry = state.cards.get(job.id);
  if (!entry) {
    const el = $("#job-template").content.firstElementChild.cloneNode(true);
    el.dataset.id = job.id;
    $(".name", el).textContent = job.name;
    $(".cancel", el).addEventListener("click", () => cancelJob(job.id));
    $(".remove", el).addEventListener("click", () => removeJob(job.id));
    $("#jobs").append(el); // in upload order: the order the queue runs them
    entry = { el, job, compare: null };
    state.cards.set(job.id, entry);
  }
  return entry;
}

function statusText(job) {
  switch (job.state) {
    case "queued":
      return job.position ? `queued (${job.position} ahead)` : "queued";
    case "running": {
      const tiles = job.tiles_total ? `tile ${job.tiles_done} of ${job.tiles_total}` : "upscaling";
      const eta = job.eta_s == null ? "" : ` · about ${formatSeconds(job.eta_s)} left`;
      return tiles + eta;
    }
    case "done": {
      const r = job.result;
      return `done in ${formatSeconds(job.elapsed_s)} · ${r.width}×${r.height} → ${r.out_width}×${r.out_height} · ${r.kind} ${r.format}`;
    }
    case "cancelled":
      return "cancelled";
    default:
      return "failed";
  }
}

function render(job) {
  if (state.removed.has(job.id)) return;
  const entry = card(job);
  const { el } = entry;
  entry.job = job;
  el.dataset.state = job.state;
  $(".status", el).textContent = statusText(job);
  $(".error", el).textContent = job.error || "";
  const bar = $(".bar", el);
  if (job.state === "running" && job.tiles_total) {
    bar.max = job.tiles_total;
    bar.value = job.tiles_done;
  } else if (job.state === "running") {
    bar.removeAttribute("value"); // indeterminate
  }
  if (job.state === "done" && !entry.compare) {
    const link = $(".download", el);
    link.href = `/api/jobs/${job.id}/result`;
    link.download = job.result.download;
    entry.compare = setupCompare(el, job);
  }
  updateZip();
}

async function cancelJob(id) {
  try {
    render(await api(`/api/jobs/${id}/cancel`, { method: "POST" }));
  } catch (err) {
    showMessage(err.message);
  }
}

async function removeJob(id) {
  const entry = state.cards.get(id);
  if (!entry) return;
  if (!entry.job.local) {
    try {
      await api(`/api/jobs/${id}`, { method: "DELETE" });
    } catch (err) {
      if (!/no such job/.test(err.message)) return showMessage(err.message);
    }
  }
  state.removed.add(id);
  entry.el.remove();
  state.cards.delete(id);
  updateZip();
}

function updateZip() {
  const done = [...state.cards.values()].filter((e) => e.job.state === "done").map((e) => e.job.id);
  const zip = $("#zip");
  zip.setAttribute("aria-disabled", done.length ? "false" : "true");
  if (done.length) {
    zip.href = `/api/results.zip?ids=${done.join(",")}`;
    zip.download = "contrast-sr-results.zip";
  } else {
    zip.removeAttribute("href");
  }
}

// -- polling -----------------------------------------------------------------------------
async function poll() {
  if (state.polling) return;
  state.polling = true;
  try {
    for (;;) {
      const { jobs } = await api(`/api/jobs?client=${state.client}`);
      for (const job of jobs) render(job);
      const active = jobs.some((j) => ACTIVE.has(j.state));
      if (!active) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (err) {
    showMessage(err.message);
  } finally {
    state.polling = false;
  }
}

// -- before / after ----------------------------------------------------------------------
function setupCompare(el, job) {
  const r = job.result;
  const view = { x: 0, y: 0, size: 48, zoom: 2 };
  const thumb = $(".thumb", el);
  const box = $(".box", el);
  const stage = $(".stage", el);
  const slider = $(".slider", el);
  const fit = () => {
    const size = Math.min(view.size, r.width, r.height);
    view.x = Math.min(Math.max(view.x, 0), r.width - size);
    view.y = Math.min(Math.max(view.y, 0), r.height - size);
    return size;
  };
  const draw = () => {
    const size = fit();
    const k = thumb.clientWidth / r.width;
    Object.assign(box.style, { left: `${view.x * k}px`, top: `${view.y * k}px`, width: `${size * k}px`, height: `${size * k}px` });
    const side = `${size * r.scale * view.zoom}px`;
    for (const method of ["bicubic", "model"]) {
      const img = $(`img.${method}`, stage);
      img.style.width = side;
      img.src = `/api/jobs/${job.id}/crop?method=${method}&x=${view.x}&y=${view.y}&size=${size}`;
    }
    slider.style.width = side;
  };
  const split = () => {
    const p = slider.value;
    $("img.model", stage).style.clipPath = `inset(0 0 0 ${p}%)`;
    $(".handle", stage).style.left = `${p}%`;
  };
  thumb.addEventListener("load", draw, { once: true });
  thumb.addEventListener("click", (event) => {
    const k = r.width / thumb.clientWidth;
    const size = Math.min(view.size, r.width, r.height);
    view.x = Math.round(event.offsetX * k - size / 2);
    view.y = Math.round(event.offsetY * k - size / 2);
    draw();
  });
  $(".crop-size", el).addEventListener("change", (e) => { view.size = Number(e.target.value); draw(); });
  $(".zoom", el).addEventListener("change", (e) => { view.zoom = Number(e.target.value); draw(); });
  slider.addEventListener("input", split);
  view.size = Number($(".crop-size", el).value);
  view.x = Math.round((r.width - view.size) / 2);
  view.y = Math.round((r.height - view.size) / 2);
  thumb.src = `/api/jobs/${job.id}/thumb`;
  $(".compare", el).hidden = false;
  split();
  return view;
}

// -- start -------------------------------------------------------------------------------
function wireDrop() {
  const drop = $("#drop");
  const files = $("#files");
  files.addEventListener("change", () => {
    uploadAll([...files.files]);
    files.value = "";
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    uploadAll([...e.dataTransfer.files]);
  });
  $("#clear").addEventListener("click", () => {
    for (const [id, entry] of state.cards) if (!ACTIVE.has(entry.job.state)) removeJob(id);
  });
}

async function start() {
  try {
    state.config = await api("/api/config");
  } catch (err) {
    showMessage(err.message);
    return;
  }
  fillSettings(state.config);
  wireDrop();
  document.body.dataset.ready = "true";
  poll(); // jobs this tab started before a reload
}

start();
