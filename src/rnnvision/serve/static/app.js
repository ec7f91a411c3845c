// rnnvision serve: the page. Plain JavaScript, no build step; talks to the JSON API of the same server.
"use strict";

const $ = (id) => document.getElementById(id);
const TASKS = [
  ["classify", "Classify"], ["recognize", "Read text"], ["segment", "Segment"], ["generate", "Complete"],
];
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
let models = [];

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// -- API ------------------------------------------------------------------------------------------
async function post(path, blob) {
  const response = await fetch(path, { method: "POST", body: blob, headers: { "Content-Type": blob.type || "image/png" } });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function canvasBlob(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// Only the newest answer of a panel is drawn: an older request finishing late is ignored.
function latest() {
  let counter = 0;
  return async (work, draw) => {
    const ticket = ++counter;
    try {
      const result = await work();
      if (ticket === counter) { draw(result); setStatus(""); }
    } catch (err) {
      if (ticket === counter) setStatus(err.message, true);
    }
  };
}

// fn once the calls have paused for ms; .cancel() drops a call still waiting
function debounce(fn, ms) {
  let timer = null;
  const call = (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  call.cancel = () => clearTimeout(timer);
  return call;
}

// -- drawing --------------------------------------------------------------------------------------
// Pointer events cover mouse, pen and finger; the canvas keeps its own resolution whatever its CSS size.
function drawable(canvas, { width, onStroke, onEnd, cells = false }) {
  const ctx = canvas.getContext("2d");
  let last = null;
  const point = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * canvas.width / rect.width, (event.clientY - rect.top) * canvas.height / rect.height];
  };
  const stroke = (from, to) => {
    ctx.strokeStyle = ctx.fillStyle = "#fff";
    if (cells) {  // a pixel grid (generation): fill every cell the pointer crosses
      const steps = Math.max(1, Math.ceil(Math.hypot(to[0] - from[0], to[1] - from[1]) * 2));
      for (let s = 0; s <= steps; s++) {
        const x = from[0] + (to[0] - from[0]) * s / steps, y = from[1] + (to[1] - from[1]) * s / steps;
        ctx.fillRect(Math.floor(x), Math.floor(y), width(), width());
      }
    } else {
      ctx.lineWidth = width(); ctx.lineCap = "round"; ctx.lineJoin = "round";
      ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke();
    }
  };
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last, last);
    onStroke && onStroke();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const p = point(event);
    stroke(last, p);
    last = p;
    onStroke && onStroke();
  });
  const end = () => { if (last) { last = null; onEnd && onEnd(); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  return { ctx, clear };
}

// Draw an uploaded image into a drawing canvas (fitted, centred) so what was sent stays visible.
async function showFile(file, canvas) {
  const bitmap = await createImageBitmap(file);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
  const w = bitmap.width * scale, h = bitmap.height * scale;
  ctx.drawImage(bitmap, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
}

// -- pictures -------------------------------------------------------------------------------------
// The API sends a picture as {shape: [h, w], low, high, uint8: base64 of one byte per value, row-major};
// back to rows of numbers: value = low + (high - low) * byte / 255.
function decodePicture(picture) {
  const [h, w] = picture.shape, scale = (picture.high - picture.low) / 255;
  const bytes = Uint8Array.from(atob(picture.uint8), (c) => c.charCodeAt(0));
  return Array.from({ length: h }, (_, y) => Array.from(bytes.subarray(y * w, (y + 1) * w), (q) => picture.low + q * scale));
}
const decodeEach = (pictures) => Object.fromEntries(Object.entries(pictures).map(([name, p]) => [name, decodePicture(p)]));

const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colormap(v) {
  const x = Math.min(1, Math.max(0, v)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  return VIRIDIS[i].map((c, k) => Math.round(c + (VIRIDIS[i + 1][k] - c) * f));
}

// values: rows of numbers; map: value -> [r, g, b]; rows after `upto` are dimmed.
function paintGrid(canvas, values, map, upto = Infinity) {
  const h = values.length, w = values[0].length;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) {
    const dim = y > upto ? 0.22 : 1;
    for (let x = 0; x < w; x++) {
      const [r, g, b] = map(values[y][x]);
      const o = 4 * (y * w + x);
      image.data[o] = r * dim; image.data[o + 1] = g * dim; image.data[o + 2] = b * dim; image.data[o + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}
const grey = (v) => [255 * v, 255 * v, 255 * v];

function renderBars(container, labels, probs) {
  if (container.childElementCount !== 3 * labels.length) {
    container.innerHTML = "";
    labels.forEach((label) => {
      const lbl = document.createElement("span"); lbl.className = "lbl"; lbl.textContent = label;
      const track = document.createElement("span"); track.className = "track";
      const fill = document.createElement("span"); fill.className = "fill"; track.appendChild(fill);
      const pct = document.createElement("span"); pct.className = "pct";
      container.append(lbl, track, pct);
    });
  }
  const best = probs.indexOf(Math.max(...probs));
  probs.forEach((p, k) => {
    const [lbl, track, pct] = [0, 1, 2].map((j) => container.children[3 * k + j]);
    track.firstChild.style.width = `${(100 * p).toFixed(1)}%`;
    pct.textContent = `${(100 * p).toFixed(1)}%`;
    [lbl, track, pct].forEach((el) => el.classList.toggle("best", k === best));
  });
}

// -- panels ---------------------------------------------------------------------------------------
function modelsOf(task) { return models.filter((m) => m.task === task); }

function fillSelect(select, task, onChange) {
  modelsOf(task).forEach((m) => {
    const option = document.createElement("option");
    option.value = m.name; option.textContent = `${m.name} (${m.model})`;
    select.appendChild(option);
  });
  select.addEventListener("change", onChange);
  return () => models.find((m) => m.name === select.value);
}

const PERCENT = new Set(["accuracy", "word_accuracy", "sequence_accuracy", "cer", "wer", "pixel_accuracy", "mean_iou"]);
function describe(model, el, extra) {
  const test = model.metrics.test || model.metrics.val || {};
  const shown = Object.entries(test).filter(([k]) => k !== "n" && k !== "loss")
    .map(([k, v]) => `${k.replace(/_/g, " ")} ${PERCENT.has(k) ? (100 * v).toFixed(1) + " %" : +v.toPrecision(4)}`);
  const size = model.input_size ? model.input_size.join("×") : "any size";
  el.textContent = `${model.model} trained on ${model.dataset} (input ${size})` +
    (shown.length ? `; ${model.metrics.test ? "test" : "validation"} ${shown.join(", ")}` : "") + `. ${extra}`;
}

function setupClassify() {
  const current = fillSelect($("classify-model"), "classify", () => { refresh(); predictNow(); });
  const canvas = $("classify-canvas");
  const run = latest();
  let result = null, row = 0, timer = null, lastBlob = null, lastPrepare = "digit";
  const predict = (blob, prepare) => {
    lastBlob = blob; lastPrepare = prepare;
    return run(() => post(`/predict/${encodeURIComponent(current().name)}?prepare=${prepare}`, blob), show);
  };
  const predictCanvas = async () => predict(await canvasBlob(canvas), "digit");
  const predictNow = () => { if (lastBlob) predict(lastBlob, lastPrepare); };
  const whileDrawing = debounce(predictCanvas, 120);
  const pad = drawable(canvas, {
    width: () => canvas.width / 11,
    onStroke: whileDrawing,
    // the stroke's end asks once more, for the finished drawing: no answer to a mid-stroke call may follow it
    onEnd: () => { whileDrawing.cancel(); return predictCanvas(); },
  });
  $("classify-clear").addEventListener("click", () => { pad.clear(); lastBlob = null; clearResult(); });
  $("classify-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    await showFile(file, canvas);
    predict(file, $("classify-reframe").checked ? "digit" : "none");
    event.target.value = "";
  });
  const slider = $("classify-row");
  slider.addEventListener("input", () => { stopPlay(); row = +slider.value; paint(); });
  $("classify-play").addEventListener("click", () => play());

  function refresh() {
    const m = current();
    describe(m, $("classify-about"), "Draw a digit: the answer updates as you draw.");
    renderBars($("classify-bars"), m.classes, m.classes.map(() => 0));
    $("classify-gates").textContent = m.gates ? "" : "This model does not read rows with LSTM/GRU gates.";
  }
  function clearResult() {
    stopPlay(); result = null;
    $("classify-label").textContent = "–"; $("classify-prob").textContent = "";
    renderBars($("classify-bars"), current().classes, current().classes.map(() => 0));
    $("classify-bars-caption").textContent = "";
    $("classify-gates").innerHTML = ""; $("classify-row-out").textContent = "–";
    const ctx = $("classify-input").getContext("2d"); ctx.clearRect(0, 0, 999, 999);
  }
  function show(answer) {
    const r = result = { ...answer, input: decodePicture(answer.input), gates: answer.gates && decodeEach(answer.gates) };
    $("classify-label").textContent = r.label;
    $("classify-prob").textContent = `${(100 * r.probability).toFixed(1)} %`;
    const rows = r.input.length;
    slider.max = rows - 1;
    const gates = $("classify-gates");
    gates.innerHTML = "";
    for (const name of Object.keys(r.gates || {})) {
      const fig = document.createElement("figure");
      const c = document.createElement("canvas"); c.dataset.gate = name;
      c.setAttribute("role", "img"); c.setAttribute("aria-label", `${name} gate activations, one row per image row`);
      const cap = document.createElement("figcaption"); cap.textContent = `${name} gate`;
      fig.append(c, cap); gates.appendChild(fig);
    }
    if (r.gates && !reducedMotion) play(); else { row = rows - 1; paint(); }
  }
  function paint() {
    if (!result) return;
    const rows = result.input.length;
    const hasRows = !!result.row_probabilities;
    paintGrid($("classify-input"), result.input, grey, result.gates ? row : Infinity);
    if (result.gates) {
      const ctx = $("classify-input").getContext("2d");
      ctx.strokeStyle = "#f0a202"; ctx.lineWidth = Math.max(0.25, rows / 40);
      ctx.strokeRect(0, row + ctx.lineWidth / 2, result.input[0].length, 1 - ctx.lineWidth);
    }
    for (const c of $("classify-gates").querySelectorAll("canvas")) {
      const name = c.dataset.gate;
      const cellGate = name === "cell" || name === "candidate";  // tanh: -1..1
      paintGrid(c, result.gates[name], (v) => colormap(cellGate ? (v + 1) / 2 : v), row);
    }
    slider.value = row;
    $("classify-row-out").textContent = result.gates ? `${row + 1} / ${rows}` : "–";
    const probs = hasRows ? result.row_probabilities[row] : result.probabilities;
    renderBars($("classify-bars"), current().classes, probs);
    $("classify-bars-caption").textContent = hasRows && row < rows - 1
      ? `Probabilities had the image ended after row ${row + 1} of ${rows}.` : "Probabilities after the whole image.";
  }
  function stopPlay() { clearInterval(timer); timer = null; }
  function play() {
    stopPlay();
    if (!result || !result.gates) return;
    row = 0; paint();
    const rows = result.input.length;
    timer = setInterval(() => {
      if (row >= rows - 1) { stopPlay(); return; }
      row += 1; paint();
    }, Math.max(30, 1200 / rows));
  }
  refresh();
}

function setupRecognize() {
  const current = fillSelect($("recognize-model"), "recognize", () => { refresh(); redo(); });
  const canvas = $("recognize-canvas");
  const run = latest();
  let last = null;
  const predict = (blob, prepare) => {
    last = [blob, prepare];
    return run(() => post(`/predict/${encodeURIComponent(current().name)}?prepare=${prepare}`, blob), show);
  };
  const redo = () => { if (last) predict(...last); };
  const pad = drawable(canvas, {
    width: () => canvas.height / 11,
    onEnd: debounce(async () => predict(await canvasBlob(canvas), "line"), 350),
  });
  $("recognize-clear").addEventListener("click", () => { pad.clear(); last = null; });
  $("recognize-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    await showFile(file, canvas);
    predict(file, "none");
    event.target.value = "";
  });
  function refresh() {
    const m = current();
    describe(m, $("recognize-about"), `Write a line of ${m.charset.length <= 10 ? "digits" : "characters"} or upload an image.`);
  }
  function show(answer) {
    const r = { ...answer, input: decodePicture(answer.input) };
    $("recognize-text").textContent = r.text || "(nothing)";
    $("recognize-conf").textContent = `p(text) = ${(100 * r.confidence).toFixed(1)} %`;
    const height = r.input.length, width = r.input[0].length;
    const zoom = Math.max(2, Math.min(6, Math.floor(560 / height)));
    const label = 18, strip = 18;
    const view = $("recognize-view");
    view.width = width * zoom; view.height = label + height * zoom + 4 + strip;
    const ctx = view.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, view.width, view.height);
    const tmp = document.createElement("canvas");
    paintGrid(tmp, r.input, grey);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tmp, 0, label, width * zoom, height * zoom);
    const scale = zoom * width / r.image_width;  // the input is the image resized to the model's height
    const palette = ["#ff6b6b", "#4dabf7", "#51cf66", "#fcc419", "#cc5de8", "#ff922b", "#22b8cf", "#94d82d"];
    ctx.font = "bold 13px system-ui, sans-serif"; ctx.textBaseline = "top";
    r.characters.forEach((c, i) => {
      const color = palette[i % palette.length];
      const x0 = c.x0 * scale, x1 = c.x1 * scale;  // image pixels -> canvas pixels
      ctx.strokeStyle = color; ctx.lineWidth = 2;
      ctx.strokeRect(x0 + 1, label + 1, Math.max(2, x1 - x0 - 2), height * zoom - 2);
      ctx.fillStyle = color;  // the character over its box, with its probability when there is room
      const text = x1 - x0 >= 44 ? `${c.char} ${(100 * c.probability).toFixed(0)}%` : c.char;
      ctx.fillText(text, (x0 + x1) / 2 - ctx.measureText(text).width / 2, 2);
    });
    const cols = r.columns.alignment.length, colW = width * zoom / cols, y = label + height * zoom + 4;
    let charIndex = -1, previous = "";
    r.columns.alignment.forEach((ch, t) => {
      if (ch && ch !== previous) charIndex += 1;  // a repeated character has a blank between its copies
      previous = ch;
      const blank = r.columns.blank[t];
      ctx.fillStyle = ch ? palette[Math.max(0, charIndex) % palette.length] : `rgba(120,120,120,${0.15 + 0.6 * blank})`;
      ctx.fillRect(t * colW + 0.5, y, Math.max(1, colW - 1), strip);
      if (ch && colW >= 9) { ctx.fillStyle = "#000"; ctx.fillText(ch, t * colW + colW / 2 - 3, y + 2); }
    });
    const body = $("recognize-chars");
    body.innerHTML = "";
    r.characters.forEach((c) => {
      const tr = document.createElement("tr");
      [c.char, `${c.x0.toFixed(0)}–${c.x1.toFixed(0)}`, `${(100 * c.probability).toFixed(1)} %`].forEach((text) => {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  refresh();
}

function setupSegment() {
  const current = fillSelect($("segment-model"), "segment", () => { refresh(); if (lastFile) predict(lastFile); });
  const run = latest();
  let lastFile = null, result = null;
  const predict = (file) => run(() => post(`/predict/${encodeURIComponent(current().name)}`, file), show);
  $("segment-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    lastFile = file;
    $("segment-image").src = URL.createObjectURL(file);
    predict(file);
    event.target.value = "";
  });
  const opacity = $("segment-opacity");
  const applyOpacity = () => { $("segment-mask").style.opacity = opacity.value / 100; };
  opacity.addEventListener("input", applyOpacity);
  $("segment-confidence").addEventListener("change", () => result && showMask());
  applyOpacity();
  function refresh() {
    const m = current();
    describe(m, $("segment-about"), "Upload a scene; the mask lies over it.");
    legend({});
  }
  function legend(shares) {
    const list = $("segment-legend");
    list.innerHTML = "";
    current().classes.forEach((name, k) => {
      const li = document.createElement("li");
      const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = current().colors[k];
      const label = document.createElement("span"); label.textContent = name;
      const share = document.createElement("span"); share.className = "share";
      share.textContent = name in shares ? `${(100 * shares[name]).toFixed(1)} %` : "";
      li.classList.toggle("absent", Object.keys(shares).length > 0 && !(name in shares));
      li.append(sw, label, share); list.appendChild(li);
    });
  }
  function showMask() {
    $("segment-mask").src = $("segment-confidence").checked ? result.confidence_png : result.mask_png;
  }
  function show(r) {
    result = r;
    showMask();
    legend(r.classes);
    $("segment-summary").textContent = `${r.size[0]}×${r.size[1]} pixels; mean confidence ${(100 * r.mean_confidence).toFixed(1)} %.`;
  }
  refresh();
}

function setupGenerate() {
  const current = fillSelect($("generate-model"), "generate", () => setSize());
  const canvas = $("generate-canvas");
  const rowsInput = $("generate-rows");
  const run = latest();
  let animation = null, result = null;
  const pad = drawable(canvas, { cells: true, width: () => (canvas.width > 16 ? 2 : 1) });
  function setSize() {
    const [h, w] = current().input_size;
    canvas.width = w; canvas.height = h;
    pad.clear();
    rowsInput.max = h - 1; rowsInput.value = Math.floor(h / 2);
    describe(current(), $("generate-about"), "Draw the top rows of a digit (one cell is one pixel); the PixelRNN samples the rest.");
    shade();
  }
  // The rows the model does not see lie under a veil (what is drawn there is ignored).
  function shade() {
    const known = +rowsInput.value, h = canvas.height;
    $("generate-rows-out").textContent = known;
    $("generate-veil").style.height = `${(100 * (h - known)) / h}%`;
  }
  rowsInput.addEventListener("input", shade);
  $("generate-clear").addEventListener("click", () => pad.clear());
  $("generate-probs").addEventListener("change", () => result && drawSamples(Infinity));
  $("generate-go").addEventListener("click", async () => {
    const known = +rowsInput.value;
    const blob = await canvasBlob(canvas);
    const button = $("generate-go");
    button.disabled = true;
    setStatus("Sampling, pixel by pixel…");
    const samples = $("generate-samples").value;
    await run(() => post(`/complete/${encodeURIComponent(current().name)}?known_rows=${known}&samples=${samples}`, blob), show);
    button.disabled = false;
  });
  function show(answer) {
    const samples = answer.samples.map((s) => ({ ...s, image: decodePicture(s.image), probability: decodePicture(s.probability) }));
    const r = result = { ...answer, input: decodePicture(answer.input), samples };
    const out = $("generate-out");
    out.innerHTML = "";
    r.samples.forEach((s, i) => {
      const fig = document.createElement("figure");
      const c = document.createElement("canvas");
      c.setAttribute("role", "img"); c.setAttribute("aria-label", `completion ${i + 1}`);
      const cap = document.createElement("figcaption"); cap.textContent = `${s.nll_nats.toFixed(1)} nats`;
      fig.append(c, cap); out.appendChild(fig);
    });
    $("generate-caption").textContent = `Rows 1–${r.known_rows} are yours; each completion fills in pixel by pixel ` +
      `in the model's order. Under each: −log p of the sampled pixels.`;
    if (reducedMotion) { drawSamples(Infinity); return; }
    const h = r.input.length, w = r.input[0].length;
    let n = r.known_rows * w;
    clearInterval(animation);
    animation = setInterval(() => {
      n += Math.max(1, Math.round(w / 4));
      drawSamples(n);
      if (n >= h * w) clearInterval(animation);
    }, 16);
  }
  // The first `count` pixels (raster order) are shown; the rest stay dark grey.
  function drawSamples(count) {
    const probs = $("generate-probs").checked;
    [...$("generate-out").querySelectorAll("canvas")].forEach((c, i) => {
      const s = result.samples[i], w = s.image[0].length;
      const values = s.image.map((row, y) => row.map((v, x) => (y * w + x < count ? (probs ? s.probability[y][x] : v) : -1)));
      paintGrid(c, values, (v) => (v < 0 ? [40, 44, 52] : (probs ? colormap(v) : grey(v))));
      const ctx = c.getContext("2d");
      ctx.fillStyle = "rgba(47,111,223,0.9)"; ctx.fillRect(0, result.known_rows - 0.06, w, 0.12);
    });
  }
  setSize();
}

// -- tabs -----------------------------------------------------------------------------------------
function setupTabs() {
  const nav = $("tabs");
  const available = TASKS.filter(([task]) => modelsOf(task).length);
  const select = (task) => {
    for (const [t] of available) {
      const on = t === task;
      $(`tab-${t}`).setAttribute("aria-selected", String(on));
      $(`tab-${t}`).tabIndex = on ? 0 : -1;
      $(`panel-${t}`).hidden = !on;
    }
    history.replaceState(null, "", `#${task}`);
  };
  available.forEach(([task, title], i) => {
    const button = document.createElement("button");
    button.type = "button"; button.id = `tab-${task}`; button.textContent = title;
    button.setAttribute("role", "tab"); button.setAttribute("aria-controls", `panel-${task}`);
    button.addEventListener("click", () => select(task));
    button.addEventListener("keydown", (event) => {  // arrow keys move between tabs
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = available[(i + step + available.length) % available.length][0];
      select(next); $(`tab-${next}`).focus();
    });
    nav.appendChild(button);
  });
  const fromHash = () => {
    const wanted = location.hash.slice(1);
    select(available.some(([t]) => t === wanted) ? wanted : available[0][0]);
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
}

async function start() {
  try {
    const response = await fetch("/models");
    models = (await response.json()).models;
  } catch (err) {
    setStatus(`Cannot reach the server: ${err.message}`, true);
    return;
  }
  if (!models.length) { setStatus("The server has no models.", true); return; }
  const setups = { classify: setupClassify, recognize: setupRecognize, segment: setupSegment, generate: setupGenerate };
  for (const [task] of TASKS) if (modelsOf(task).length) setups[task]();
  setupTabs();
  setStatus("");
  document.body.dataset.ready = "true";
}

start();
