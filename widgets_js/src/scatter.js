// ScatterWidget front end: the same points at several layers (a slider steps through them), drawn as
// pixels into one ImageData so 100k points redraw in a few milliseconds; hover shows a point's token in
// its context, label and layer; dragging a box selects points and sends their indices back to Python.
import { decodeArray } from "./arrays.js";
import { colorIndex, colorTable, categoricalColor, drawColorbar } from "./colors.js";
import {
  availableWidth, createRoot, h, onResize, onThemeChange, placeTooltip, pointerPosition, sizeCanvas, themeColors,
} from "./dom.js";
import { formatNumber, tokenLabel, truncate } from "./format.js";

const HEIGHT = 440;
const MAX_WIDTH = 720;
const PAD = 12; // px between the outermost points and the canvas edge
const HOVER_RADIUS = 6; // px: the nearest point within this distance is hovered
const GRID = 12; // px: cell size of the hover index
const CONTEXT = 6; // tokens shown on either side of a hovered token
const MAX_LEGEND = 16;
const DIMMED_ALPHA = 50; // alpha of unselected points while a selection exists

/** Everything the drawing needs, decoded once per data change. */
export function readScatter(model) {
  const coords = decodeArray(model.get("coords"));
  const [nLayers, nPoints] = coords.shape;
  return {
    coords,
    nLayers,
    nPoints,
    layerLabels: model.get("layer_labels") || [],
    colorings: model.get("colorings") || [],
    colorValues: decodeArray(model.get("color_values")),
    pointText: decodeArray(model.get("point_text")),
    pointPosition: decodeArray(model.get("point_position")),
    tokenCodes: decodeArray(model.get("token_codes")),
    tokenVocab: model.get("token_vocab") || [],
    texts: model.get("texts") || [],
    textLabels: model.get("text_labels") || [],
    title: model.get("title") || "",
  };
}

/** Screen position (CSS px) of every point of one layer, fitted to a width x height box. */
export function screenPositions(coords, layer, width, height) {
  const [, n] = coords.shape;
  const base = layer * n * 2;
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = coords.data[base + 2 * i];
    const y = coords.data[base + 2 * i + 1];
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  const spanX = x1 - x0 || 1;
  const spanY = y1 - y0 || 1;
  const scale = Math.min((width - 2 * PAD) / spanX, (height - 2 * PAD) / spanY); // same scale on both axes
  const offsetX = (width - scale * spanX) / 2;
  const offsetY = (height - scale * spanY) / 2;
  const sx = new Float32Array(n);
  const sy = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    sx[i] = offsetX + (coords.data[base + 2 * i] - x0) * scale;
    sy[i] = height - offsetY - (coords.data[base + 2 * i + 1] - y0) * scale; // y up
  }
  return { sx, sy };
}

/** Indices of the points inside a box (any two corners, CSS px), in ascending order. */
export function pointsInBox(positions, ax, ay, bx, by) {
  const left = Math.min(ax, bx);
  const right = Math.max(ax, bx);
  const top = Math.min(ay, by);
  const bottom = Math.max(ay, by);
  const inside = [];
  const { sx, sy } = positions;
  for (let i = 0; i < sx.length; i++) {
    if (sx[i] >= left && sx[i] <= right && sy[i] >= top && sy[i] <= bottom) inside.push(i);
  }
  return inside;
}

/** A uniform grid over the points (counting sort), so hovering looks at a few cells, not every point. */
export function buildGrid(positions, width, height) {
  const cols = Math.max(1, Math.ceil(width / GRID));
  const rows = Math.max(1, Math.ceil(height / GRID));
  const { sx, sy } = positions;
  const cellOf = new Int32Array(sx.length);
  const start = new Int32Array(cols * rows + 1);
  for (let i = 0; i < sx.length; i++) {
    const c = Math.min(cols - 1, Math.max(0, Math.floor(sx[i] / GRID)));
    const r = Math.min(rows - 1, Math.max(0, Math.floor(sy[i] / GRID)));
    cellOf[i] = r * cols + c;
    start[cellOf[i] + 1] += 1;
  }
  for (let k = 0; k < cols * rows; k++) start[k + 1] += start[k];
  const filled = start.slice(0, -1);
  const items = new Int32Array(sx.length);
  for (let i = 0; i < sx.length; i++) items[filled[cellOf[i]]++] = i;
  return { cols, rows, start, items, positions };
}

/** The point nearest to (x, y) within `radius` CSS px, or -1. */
export function nearestPoint(grid, x, y, radius = HOVER_RADIUS) {
  const { cols, rows, start, items, positions } = grid;
  const c0 = Math.max(0, Math.floor((x - radius) / GRID));
  const c1 = Math.min(cols - 1, Math.floor((x + radius) / GRID));
  const r0 = Math.max(0, Math.floor((y - radius) / GRID));
  const r1 = Math.min(rows - 1, Math.floor((y + radius) / GRID));
  let best = -1;
  let bestDistance = radius * radius;
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      const cell = r * cols + c;
      for (let k = start[cell]; k < start[cell + 1]; k++) {
        const i = items[k];
        const dx = positions.sx[i] - x;
        const dy = positions.sy[i] - y;
        const distance = dx * dx + dy * dy;
        if (distance <= bestDistance) {
          bestDistance = distance;
          best = i;
        }
      }
    }
  }
  return best;
}

/** One colouring's value for each point at a layer (a per-layer colouring has one row per layer). */
export function coloringRow(data, coloring, layer) {
  const n = data.nPoints;
  const row = coloring.row + (coloring.per_layer ? layer : 0);
  return data.colorValues.data.subarray(row * n, (row + 1) * n);
}

/** RGB of every point under a colouring: categories from the categorical palette (-1: grey), numbers on viridis. */
export function pointColors(values, coloring) {
  const n = values.length;
  const rgb = new Uint8ClampedArray(n * 3);
  if (coloring.kind === "category") {
    for (let i = 0; i < n; i++) {
      const [r, g, b] = values[i] < 0 ? [150, 150, 150] : categoricalColor(values[i]);
      rgb[i * 3] = r;
      rgb[i * 3 + 1] = g;
      rgb[i * 3 + 2] = b;
    }
    return { rgb };
  }
  const table = colorTable("sequential");
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi > lo)) hi = lo + 1;
  for (let i = 0; i < n; i++) {
    const c = colorIndex(values[i], lo, hi) * 3;
    rgb.set(table.subarray(c, c + 3), i * 3);
  }
  return { rgb, lo, hi };
}

/** The hovered point's token with up to CONTEXT tokens of its own text on either side. */
export function tokenContext(data, point) {
  const text = data.pointText.data[point];
  // context as text (real spaces, a return mark for a line break); the hovered token as a label
  const raw = (i) => String(data.tokenVocab[data.tokenCodes.data[i]] ?? "").replace(/\r?\n/g, "⏎");
  const token = (i) => (i === point ? tokenLabel(data.tokenVocab[data.tokenCodes.data[i]] ?? "") : raw(i));
  let first = point;
  while (first > 0 && point - first < CONTEXT && data.pointText.data[first - 1] === text) first -= 1;
  let last = point;
  while (last < data.nPoints - 1 && last - point < CONTEXT && data.pointText.data[last + 1] === text) last += 1;
  const before = [];
  for (let i = first; i < point; i++) before.push(token(i));
  const after = [];
  for (let i = point + 1; i <= last; i++) after.push(token(i));
  return { before: before.join(""), token: token(point), after: after.join("") };
}

function render({ model, el }) {
  const root = createRoot(el, "scatter");
  const titleEl = h("div", { className: "nm-title" });
  const slider = h("input", { type: "range", min: "0", step: "1", "aria-label": "layer" });
  const layerReadout = h("span", { className: "nm-readout" });
  const colorSelect = h("select", { "aria-label": "colour by" });
  const selectionReadout = h("span", { className: "nm-readout" });
  const toolbar = h("div", { className: "nm-toolbar" }, [
    h("label", {}, ["layer ", slider]), layerReadout, h("label", {}, ["colour ", colorSelect]), selectionReadout,
  ]);
  const points = h("canvas", { className: "nm-points" });
  const overlay = h("canvas", { className: "nm-overlay", tabindex: "0" });
  const stack = h("div", { className: "nm-stack" }, [points, overlay]);
  const legend = h("div", { className: "nm-legend" });
  const tooltip = h("div", { className: "nm-tooltip" });
  root.append(titleEl, toolbar, stack, legend, tooltip);

  let data = null;
  let layout = { width: 0, height: HEIGHT };
  let positions = null;
  let grid = null;
  let hover = -1;
  let drag = null;

  function layer() {
    return Math.max(0, Math.min((data?.nLayers ?? 1) - 1, model.get("layer") || 0));
  }

  function coloring() {
    const name = model.get("color_by");
    return data.colorings.find((c) => c.name === name) || data.colorings[0];
  }

  function rebuild() {
    data = readScatter(model);
    titleEl.textContent = data.title;
    slider.max = String(Math.max(0, data.nLayers - 1));
    slider.disabled = data.nLayers < 2;
    colorSelect.replaceChildren(...data.colorings.map((c) => h("option", { value: c.name, text: c.name })));
    draw();
  }

  function draw() {
    const width = Math.min(MAX_WIDTH, availableWidth(root));
    layout = { width, height: HEIGHT };
    const k = layer();
    slider.value = String(k);
    layerReadout.textContent = data.layerLabels[k] ?? String(k);
    const current = coloring();
    if (current) colorSelect.value = current.name;
    positions = screenPositions(data.coords, k, width, HEIGHT);
    grid = buildGrid(positions, width, HEIGHT);
    drawPoints(current, k);
    drawLegend(current, k);
    drawOverlay();
  }

  function drawPoints(current, k) {
    const ctx = sizeCanvas(points, layout.width, layout.height);
    const ratio = points.width / layout.width;
    const image = ctx.createImageData(points.width, points.height);
    const cssSize = data.nPoints < 2000 ? 4 : data.nPoints < 20000 ? 3 : 2; // few points: larger dots
    const size = Math.max(2, Math.round(cssSize * ratio));
    const colors = current ? pointColors(coloringRow(data, current, k), current).rgb : null;
    const selected = new Set(model.get("selected") || []);
    const paint = (i, alpha) => {
      const x0 = Math.round(positions.sx[i] * ratio - size / 2);
      const y0 = Math.round(positions.sy[i] * ratio - size / 2);
      const [r, g, b] = colors ? [colors[i * 3], colors[i * 3 + 1], colors[i * 3 + 2]] : [31, 119, 180];
      for (let y = Math.max(0, y0); y < Math.min(image.height, y0 + size); y++) {
        for (let x = Math.max(0, x0); x < Math.min(image.width, x0 + size); x++) {
          const o = (y * image.width + x) * 4;
          image.data[o] = r;
          image.data[o + 1] = g;
          image.data[o + 2] = b;
          image.data[o + 3] = alpha;
        }
      }
    };
    if (selected.size) {
      for (let i = 0; i < data.nPoints; i++) if (!selected.has(i)) paint(i, DIMMED_ALPHA);
      for (const i of selected) if (i >= 0 && i < data.nPoints) paint(i, 255);
    } else {
      for (let i = 0; i < data.nPoints; i++) paint(i, 255);
    }
    ctx.putImageData(image, 0, 0);
    const count = selected.size;
    selectionReadout.textContent = count ? `${count} selected (Esc clears)` : "drag a box to select";
  }

  function drawLegend(current, k) {
    legend.replaceChildren();
    if (!current) return;
    if (current.kind === "number") {
      const { lo, hi } = pointColors(coloringRow(data, current, k), current);
      const bar = h("canvas");
      legend.append(h("span", { className: "nm-colorbar" }, [current.name, formatNumber(lo, ".4g"), bar, formatNumber(hi, ".4g")]));
      drawColorbar(sizeCanvas(bar, 160, 10), colorTable("sequential"), 160, 10);
      return;
    }
    const values = coloringRow(data, current, k);
    const counts = new Map();
    for (const v of values) counts.set(v, (counts.get(v) || 0) + 1);
    const order = [...counts.keys()].sort((a, b) => counts.get(b) - counts.get(a));
    for (const v of order.slice(0, MAX_LEGEND)) {
      const [r, g, b] = v < 0 ? [150, 150, 150] : categoricalColor(v);
      const name = v < 0 ? "none" : tokenLabel(String(current.categories?.[v] ?? v));
      legend.append(h("span", { className: "nm-mark-key" }, [
        h("i", { style: { background: `rgb(${r}, ${g}, ${b})`, border: "none" } }),
        `${truncate(name, 24)} (${counts.get(v)})`,
      ]));
    }
    if (order.length > MAX_LEGEND) legend.append(h("span", { text: `+${order.length - MAX_LEGEND} more` }));
  }

  function drawOverlay() {
    const ctx = sizeCanvas(overlay, layout.width, layout.height);
    const colors = themeColors(root);
    ctx.strokeStyle = colors.border;
    ctx.strokeRect(0.5, 0.5, layout.width - 1, layout.height - 1);
    if (hover >= 0 && positions) {
      ctx.strokeStyle = colors.fg;
      ctx.beginPath();
      ctx.arc?.(positions.sx[hover], positions.sy[hover], 5, 0, 2 * Math.PI);
      ctx.stroke();
    }
    if (drag) {
      ctx.strokeStyle = colors.accent;
      ctx.setLineDash?.([4, 3]);
      ctx.strokeRect(Math.min(drag.x0, drag.x1), Math.min(drag.y0, drag.y1), Math.abs(drag.x1 - drag.x0), Math.abs(drag.y1 - drag.y0));
    }
  }

  function tooltipContent(i) {
    const k = layer();
    const text = data.pointText.data[i];
    const rows = [];
    if (data.pointPosition.data[i] >= 0) {
      const { before, token, after } = tokenContext(data, i);
      rows.push(h("div", { className: "nm-token" }, [before, h("b", { text: `[${token}]` }), after]));
    } else {
      rows.push(h("div", { text: truncate(data.texts[text] ?? "", 80) }));
    }
    const facts = [`layer ${data.layerLabels[k] ?? k}`];
    if (data.textLabels[text]) facts.push(`label ${data.textLabels[text]}`);
    for (const c of data.colorings) {
      if (c.name === "label") continue;
      const v = coloringRow(data, c, k)[i];
      facts.push(`${c.name} ${c.kind === "category" ? (v < 0 ? "none" : tokenLabel(String(c.categories?.[v] ?? v))) : formatNumber(v, "d")}`);
    }
    facts.push(`point ${i}`);
    rows.push(h("div", { className: "nm-readout", text: facts.join(" · ") }));
    return rows;
  }

  function setSelected(indices) {
    model.set("selected", indices);
    model.save_changes();
  }

  overlay.addEventListener("mousedown", (event) => {
    const { x, y } = pointerPosition(event, overlay);
    drag = { x0: x, y0: y, x1: x, y1: y };
  });
  overlay.addEventListener("mousemove", (event) => {
    const { x, y } = pointerPosition(event, overlay);
    if (drag) {
      drag.x1 = x;
      drag.y1 = y;
      tooltip.style.display = "none";
      drawOverlay();
      return;
    }
    const i = grid ? nearestPoint(grid, x, y) : -1;
    if (i !== hover) {
      hover = i;
      drawOverlay();
      if (i >= 0) tooltip.replaceChildren(...tooltipContent(i));
    }
    if (i >= 0) placeTooltip(tooltip, root, event.clientX, event.clientY);
    else tooltip.style.display = "none";
  });
  const finish = (event) => {
    if (!drag) return;
    const { x, y } = pointerPosition(event, overlay);
    const box = { ...drag, x1: x, y1: y };
    drag = null;
    if (Math.abs(box.x1 - box.x0) < 3 && Math.abs(box.y1 - box.y0) < 3) setSelected([]); // a click clears
    else setSelected(pointsInBox(positions, box.x0, box.y0, box.x1, box.y1));
    drawOverlay();
  };
  overlay.addEventListener("mouseup", finish);
  overlay.addEventListener("mouseleave", () => {
    hover = -1;
    tooltip.style.display = "none";
    drawOverlay();
  });
  overlay.addEventListener("keydown", (event) => {
    if (event.key === "Escape") setSelected([]);
    const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
    if (step) {
      event.preventDefault();
      model.set("layer", Math.max(0, Math.min(data.nLayers - 1, layer() + step)));
      model.save_changes();
    }
  });
  slider.addEventListener("input", () => {
    model.set("layer", Number(slider.value));
    model.save_changes();
  });
  colorSelect.addEventListener("change", () => {
    model.set("color_by", colorSelect.value);
    model.save_changes();
  });

  const dataTraits = ["coords", "layer_labels", "colorings", "color_values", "point_text", "point_position",
    "token_codes", "token_vocab", "texts", "text_labels", "title"];
  const redraw = () => draw();
  for (const name of dataTraits) model.on(`change:${name}`, rebuild);
  for (const name of ["layer", "color_by", "selected"]) model.on(`change:${name}`, redraw);
  const stopResize = onResize(root, (width) => {
    if (Math.min(MAX_WIDTH, width) !== layout.width) draw();
  });
  const stopTheme = onThemeChange(redraw);

  rebuild();

  return () => {
    for (const name of dataTraits) model.off(`change:${name}`, rebuild);
    for (const name of ["layer", "color_by", "selected"]) model.off(`change:${name}`, redraw);
    stopResize();
    stopTheme();
  };
}

export default { render };
