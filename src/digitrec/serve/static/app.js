// digitrec's draw-a-digit page: Pointer Events drawing, live predictions, the network's view.
"use strict";

(() => {
  const SIZES = { digit: [280, 280], number: [840, 280] }; // canvas pixels (width, height)
  // Stroke width in canvas pixels: the server shrinks the ink's box to 20 of 28 pixels, so a
  // digit drawn across the 280-pixel box keeps a stroke of ~1.4-2 pixels, like MNIST's.
  const LINE = 20;
  const DEBOUNCE_MS = 150; // live prediction while drawing: at most one request per pause
  const INK = "#111827";

  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const overlay = $("overlay");
  const octx = overlay.getContext("2d");

  let mode = "digit";
  let strokes = []; // each stroke: [[x, y], ...] in canvas pixels
  let current = null;
  let photo = null; // an uploaded photo drawn under the strokes
  let timer = 0; // a debounced prediction is waiting while non-zero
  let inflight = false;
  let queued = false;
  let seq = 0; // answers to anything but the latest request are dropped
  let lastInit = null; // the latest request's body, sent again to /api/explain

  // ---- drawing ----------------------------------------------------------------------------
  function paper() {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (photo) {
      const k = Math.min(canvas.width / photo.width, canvas.height / photo.height);
      const w = photo.width * k;
      const h = photo.height * k;
      ctx.drawImage(photo, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    }
  }

  function drawStroke(points) {
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineWidth = LINE;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    if (points.length === 1) {
      ctx.beginPath();
      ctx.arc(points[0][0], points[0][1], LINE / 2, 0, 2 * Math.PI);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(points[0][0], points[0][1]);
    for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
    ctx.stroke();
  }

  function redraw() {
    paper();
    strokes.forEach(drawStroke);
    octx.clearRect(0, 0, overlay.width, overlay.height);
  }

  function point(e) {
    const r = canvas.getBoundingClientRect();
    const x = (e.clientX - r.left - canvas.clientLeft) * (canvas.width / canvas.clientWidth);
    const y = (e.clientY - r.top - canvas.clientTop) * (canvas.height / canvas.clientHeight);
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    current = [point(e)];
    strokes.push(current);
    drawStroke(current);
  });

  canvas.addEventListener("pointermove", (e) => {
    if (!current) return;
    e.preventDefault();
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of events.length ? events : [e]) current.push(point(ev));
    drawStroke(current.slice(-Math.min(current.length, events.length + 1)));
    schedule();
  });

  function endStroke(e) {
    if (!current) return;
    e.preventDefault();
    current = null;
    predictNow();
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  function undo() {
    if (strokes.length) strokes.pop();
    else photo = null;
    redraw();
    predictNow();
  }

  function clear() {
    strokes = [];
    photo = null;
    redraw();
    clearTimeout(timer);
    timer = 0;
    queued = false;
    seq += 1; // an answer still on its way is for the old drawing
    showEmpty("Draw a digit in the box.");
    setBusy();
  }

  function setMode(next) {
    mode = next;
    const [w, h] = SIZES[mode];
    for (const c of [canvas, overlay]) {
      c.width = w;
      c.height = h;
    }
    $("canvas-wrap").classList.toggle("wide", mode === "number");
    $("bars").hidden = mode !== "digit";
    $("preview-box").hidden = mode !== "digit";
    $("digits").hidden = mode !== "number";
    clear();
    showEmpty(mode === "digit" ? "Draw a digit in the box." : "Write a number across the box.");
  }

  // ---- talking to the server ----------------------------------------------------------------
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(predictNow, DEBOUNCE_MS);
    setBusy();
  }

  // <body data-busy="1"> while an answer is still to come (tests wait for "0").
  function setBusy() {
    document.body.dataset.busy = timer || inflight || queued ? "1" : "0";
  }

  function url() {
    return mode === "digit" ? "/api/predict" : "/api/read";
  }

  async function predictNow() {
    clearTimeout(timer);
    timer = 0;
    if (!strokes.length && !photo) {
      showEmpty("Draw a digit in the box.");
      setBusy();
      return;
    }
    if (inflight) {
      queued = true;
      setBusy();
      return;
    }
    const body = JSON.stringify({ image: canvas.toDataURL("image/png") });
    lastInit = { headers: { "Content-Type": "application/json" }, body };
    await send(fetchJson(url(), lastInit));
  }

  async function upload(file) {
    try {
      photo = await createImageBitmap(file);
    } catch {
      photo = null; // a format this browser cannot show; the server may still read it
    }
    strokes = [];
    redraw();
    const form = new FormData();
    form.append("file", file);
    lastInit = { body: form };
    await send(fetchJson(url(), lastInit));
  }

  async function fetchJson(path, init) {
    const res = await fetch(path, { method: "POST", ...init });
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = { detail: `the server answered ${res.status}` };
    }
    return { ok: res.ok, data };
  }

  async function send(request) {
    inflight = true;
    setBusy();
    const mine = ++seq;
    $("status").textContent = "Thinking…";
    try {
      const { ok, data } = await request;
      if (mine !== seq) return;
      if (!ok) showEmpty(data.detail || "The server could not read this.");
      else if (mode === "digit") showDigit(data);
      else showNumber(data);
    } catch {
      if (mine === seq) showEmpty("The server did not answer. Is `digitrec serve` running?");
    } finally {
      inflight = false;
      if (queued) {
        queued = false;
        predictNow();
      }
      setBusy();
    }
  }

  // ---- showing answers ----------------------------------------------------------------------
  function pct(p) {
    return `${(100 * p).toFixed(1)}%`;
  }

  function buildBars() {
    const list = $("bars");
    for (let d = 0; d < 10; d++) {
      const li = document.createElement("li");
      li.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct">–</span>';
      li.querySelector(".name").textContent = String(d);
      list.appendChild(li);
    }
  }

  function setBars(probs) {
    const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
    [...$("bars").children].forEach((li, d) => {
      const p = probs ? probs[d] : 0;
      li.classList.toggle("win", d === best);
      li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
      li.querySelector(".pct").textContent = probs ? pct(p) : "–";
      li.setAttribute("aria-label", probs ? `digit ${d}: ${pct(p)}` : `digit ${d}`);
    });
  }

  function showEmpty(message) {
    $("prediction").textContent = "–";
    $("status").textContent = message;
    $("preview").hidden = true;
    $("preview-empty").hidden = false;
    $("digits").replaceChildren();
    octx.clearRect(0, 0, overlay.width, overlay.height);
    setBars(null);
    $("inside").hidden = true;
    $("layers").replaceChildren();
  }

  function showDigit(data) {
    $("prediction").textContent = String(data.digit);
    $("status").textContent = `${pct(data.confidence)} sure`;
    const img = $("preview");
    img.src = `data:image/png;base64,${data.preview_png}`;
    img.hidden = false;
    $("preview-empty").hidden = true;
    setBars(data.probabilities);
    explainNow(seq);
  }

  // ---- inside the network: each layer's feature maps for the same drawing ------------------
  async function explainNow(mine) {
    let answer;
    try {
      answer = await fetchJson("/api/explain", lastInit);
    } catch {
      return; // the prediction is shown; the panel is an extra
    }
    if (mine !== seq || mode !== "digit") return;
    if (!answer.ok) {
      $("inside").hidden = true; // e.g. an ONNX model: no layers to show
      return;
    }
    const figures = answer.data.layers.map((layer) => {
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.src = `data:image/png;base64,${layer.png}`;
      img.alt = `feature maps of layer ${layer.name}`;
      const cap = document.createElement("figcaption");
      const [c, h, w] = layer.shape;
      cap.textContent = `${layer.name}: ${layer.description} → ${c}×${h}×${w}` +
        ` (first ${layer.channels_shown} of ${c} channels)`;
      fig.append(img, cap);
      return fig;
    });
    $("layers").replaceChildren(...figures);
    $("inside").hidden = figures.length === 0;
  }

  function showNumber(data) {
    $("prediction").textContent = data.number;
    const least = Math.min(...data.digits.map((d) => d.confidence));
    const by = data.method ? `; read by ${data.method}` : "";  // e.g. "auto: both agree"
    $("status").textContent = `${data.digits.length} digit(s); least sure: ${pct(least)}${by}`;
    const list = $("digits");
    list.replaceChildren();
    octx.clearRect(0, 0, overlay.width, overlay.height);
    octx.strokeStyle = "#1d4ed8";
    octx.lineWidth = 3;
    octx.fillStyle = "#1d4ed8";
    octx.font = "bold 22px system-ui, sans-serif";
    const sx = overlay.width / data.width;
    const sy = overlay.height / data.height;
    for (const d of data.digits) {
      const b = d.box;
      octx.strokeRect(b.x0 * sx, b.y0 * sy, (b.x1 - b.x0) * sx, (b.y1 - b.y0) * sy);
      octx.fillText(String(d.digit), b.x0 * sx + 2, Math.max(20, b.y0 * sy - 4));
      const li = document.createElement("li");
      const img = document.createElement("img");
      img.src = `data:image/png;base64,${d.preview_png}`;
      img.alt = `what the network sees for digit ${d.digit}`;
      const label = document.createElement("div");
      label.className = "d";
      label.textContent = String(d.digit);
      const conf = document.createElement("div");
      conf.textContent = pct(d.confidence);
      li.append(img, label, conf);
      list.appendChild(li);
    }
  }

  async function loadModel() {
    try {
      const res = await fetch("/api/model");
      const m = await res.json();
      const acc = m.test_accuracy == null ? "test accuracy not recorded"
        : `${(100 * m.test_accuracy).toFixed(2)}% on the MNIST test set`;
      $("model").textContent =
        `Model: ${m.name} (${m.arch}, ${m.backend}), ` +
        `${m.parameters.toLocaleString("en")} parameters, ${acc}`;
    } catch {
      $("model").textContent = "Model information unavailable.";
    }
  }

  // ---- controls -----------------------------------------------------------------------------
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", clear);
  $("upload").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    e.target.value = ""; // choosing the same file again fires again
    if (file) upload(file);
  });
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => setMode(radio.value));
  }
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement && e.target.type !== "radio") return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === "z") {
      e.preventDefault();
      undo();
    } else if (e.ctrlKey || e.metaKey || e.altKey) {
      return;
    } else if (key === "u") {
      undo();
    } else if (key === "escape" || key === "c") {
      clear();
    } else if (key === "p") {
      $("file").click();
    }
  });

  buildBars();
  setMode("digit");
  loadModel();
})();
