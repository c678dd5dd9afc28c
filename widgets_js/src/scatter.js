// ScatterWidget front end: the same points at several layers (a slider steps through them), drawn as
// pixels into one ImageData so 100k points redraw in a few milliseconds; hover shows a point's token in
// its context, label and layer; dragging a box selects points and sends their indices back to Python;
// the wheel zooms, shift-drag pans, a click lists the clicked point's nearest neighbours in the 2-D map,
// and a search box rings the points whose token matches.
import { decodeArray } from "./arrays.js";
import { colorIndex, colorTable, categoricalColor, drawColorbar, parseColor } from "./colors.js";
import {
  availableWidth, createRoot, download, h, onResize, onThemeChange, placeTooltip, pointerPosition, sizeCanvas, svgToPng, themeColors,
} from "./dom.js";
import { escapeXml, formatNumber, formatValue, tokenLabel, truncate } from "./format.js";

const HEIGHT = 440;
const MAX_WIDTH = 720;
const PAD = 12; // px between the outermost points and the canvas edge
const HOVER_RADIUS = 6; // px: the nearest point within this distance is hovered
const GRID = 12; // px: cell size of the hover index
const CONTEXT = 6; // tokens shown on either side of a hovered token
const MAX_COLORS = 9; // the most frequent categories get a colour each; the rest are "other", in grey
const OTHER_GREY = [150, 150, 150];
const DIMMED_SHARE = 0.35; // an unselected point keeps this share of its colour, the rest is the background
const NEIGHBOURS = 8; // listed for a clicked point
const ZOOM_STEP = 1.2; // one wheel notch

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
    axisTitles: model.get("axis_titles") || [],
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

/** Base screen positions seen through a zoom/pan `view` ({scale, dx, dy}: scale about the centre, then shift). */
export function applyView(base, view, width, height) {
  const n = base.sx.length;
  const sx = new Float32Array(n);
  const sy = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    sx[i] = (base.sx[i] - width / 2) * view.scale + width / 2 + view.dx;
    sy[i] = (base.sy[i] - height / 2) * view.scale + height / 2 + view.dy;
  }
  return { sx, sy };
}

/** The view zoomed by `factor` about the screen point (x, y), which stays where it is. */
export function zoomAt(view, x, y, factor, width, height) {
  const scale = Math.min(200, Math.max(1, view.scale * factor));
  const applied = scale / view.scale;
  return {
    scale,
    dx: x - width / 2 - (x - width / 2 - view.dx) * applied,
    dy: y - height / 2 - (y - height / 2 - view.dy) * applied,
  };
}

/** The `k` points nearest to `point` in one layer's 2-D map (map units, both axes on one scale), nearest first. */
export function nearestNeighbours(coords, layer, point, k = NEIGHBOURS) {
  const [, n] = coords.shape;
  const base = layer * n * 2;
  const x = coords.data[base + 2 * point];
  const y = coords.data[base + 2 * point + 1];
  const found = [];
  for (let i = 0; i < n; i++) {
    if (i === point) continue;
    const distance = Math.hypot(coords.data[base + 2 * i] - x, coords.data[base + 2 * i + 1] - y);
    found.push({ index: i, distance });
  }
  found.sort((a, b) => a.distance - b.distance || a.index - b.index);
  return found.slice(0, k);
}

/** Points whose token contains `query` (case and a leading space ignored); none for a blank query. */
export function matchingPoints(data, query) {
  const wanted = String(query || "").trim().toLowerCase();
  if (!wanted) return [];
  const vocabMatches = data.tokenVocab.map((token) => String(token).trim().toLowerCase().includes(wanted));
  const found = [];
  for (let i = 0; i < data.nPoints; i++) if (data.pointPosition.data[i] >= 0 && vocabMatches[data.tokenCodes.data[i]]) found.push(i);
  return found;
}

/** Colour slot of each category code: the MAX_COLORS most frequent get 0..MAX_COLORS-1 (ties: lower code
 * first), every other code (and -1, none) gets -1, drawn grey. */
export function categorySlots(values, maxColors = MAX_COLORS) {
  const counts = new Map();
  for (const v of values) if (v >= 0) counts.set(v, (counts.get(v) || 0) + 1);
  const order = [...counts.keys()].sort((a, b) => counts.get(b) - counts.get(a) || a - b);
  const slots = new Map(order.slice(0, maxColors).map((v, slot) => [v, slot]));
  return { slots, counts, order };
}

/** An unselected point's colour: DIMMED_SHARE of its own colour over the page background, opaque, so it
 * stays visible on a dark page as on a light one while the selection stands out. */
export function dimmedColor(rgb, background) {
  return rgb.map((c, i) => Math.round(DIMMED_SHARE * c + (1 - DIMMED_SHARE) * background[i]));
}

/** Pixel offsets of a disc of `radius` device px about a pixel (worked out once per draw, not per point). */
export function discOffsets(radius) {
  const reach = Math.ceil(radius);
  const dx = [];
  const dy = [];
  for (let y = -reach; y <= reach; y++) {
    for (let x = -reach; x <= reach; x++) {
      if (x * x + y * y <= radius * radius) {
        dx.push(x);
        dy.push(y);
      }
    }
  }
  return { dx: Int32Array.from(dx), dy: Int32Array.from(dy), reach };
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

/** RGB of every point under a colouring: the most frequent categories from the categorical palette (the
 * rest and -1: grey), numbers on viridis. */
export function pointColors(values, coloring) {
  const n = values.length;
  const rgb = new Uint8ClampedArray(n * 3);
  if (coloring.kind === "category") {
    const { slots } = categorySlots(values);
    for (let i = 0; i < n; i++) {
      const slot = slots.get(values[i]) ?? -1;
      const [r, g, b] = slot < 0 ? OTHER_GREY : categoricalColor(slot);
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

/** An SVG of the points as drawn (view, colours, selection, axis titles): for a paper or a slide. */
export function scatterSvg({ positions, colors, selected, width, height, title, axisTitles, background, foreground, radius }) {
  const top = 20;
  const left = 22;
  const parts = [];
  const n = positions.sx.length;
  const circle = (i, fill) => {
    const x = positions.sx[i];
    const y = positions.sy[i];
    if (x < 0 || y < 0 || x > width || y > height) return;
    parts.push(`<circle cx="${(x + left).toFixed(1)}" cy="${(y + top).toFixed(1)}" r="${radius}" fill="rgb(${fill.join(",")})"/>`);
  };
  const colourOf = (i) => (colors ? [colors[i * 3], colors[i * 3 + 1], colors[i * 3 + 2]] : [31, 119, 180]);
  for (let i = 0; i < n; i++) if (!selected.size || !selected.has(i)) circle(i, selected.size ? dimmedColor(colourOf(i), background) : colourOf(i));
  for (const i of selected) if (i >= 0 && i < n) circle(i, colourOf(i));
  const [xTitle, yTitle] = axisTitles;
  const fg = `rgb(${foreground.join(",")})`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width + left}" height="${height + top + 22}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="rgb(${background.join(",")})"/>`,
    `<text x="${left}" y="13" fill="${fg}">${escapeXml(title)}</text>`,
    `<rect x="${left + 0.5}" y="${top + 0.5}" width="${width - 1}" height="${height - 1}" fill="none" stroke="${fg}" stroke-opacity="0.3"/>`,
    ...parts,
    xTitle ? `<text x="${left + width / 2}" y="${top + height + 15}" text-anchor="middle" fill="${fg}">${escapeXml(xTitle)}</text>` : "",
    yTitle ? `<text transform="translate(13 ${top + height / 2}) rotate(-90)" text-anchor="middle" fill="${fg}">${escapeXml(yTitle)}</text>` : "",
    "</svg>",
  ].join("");
}

function render({ model, el }) {
  const root = createRoot(el, "scatter");
  const titleEl = h("div", { className: "nm-title" });
  const slider = h("input", { type: "range", min: "0", step: "1", "aria-label": "layer" });
  const layerReadout = h("span", { className: "nm-readout" });
  const colorSelect = h("select", { "aria-label": "colour by" });
  const search = h("input", { type: "search", placeholder: "find a token", "aria-label": "find a token", className: "nm-search" });
  const searchReadout = h("span", { className: "nm-readout nm-search-readout" });
  const resetButton = h("button", { type: "button", text: "reset zoom", className: "nm-reset-view", title: "wheel zooms, shift-drag pans" });
  const svgButton = h("button", { type: "button", text: "SVG", className: "nm-export-svg", title: "download this view as SVG" });
  const pngButton = h("button", { type: "button", text: "PNG", className: "nm-export-png", title: "download this view as PNG" });
  const selectionReadout = h("span", { className: "nm-readout" });
  const toolbar = h("div", { className: "nm-toolbar" }, [
    h("label", {}, ["layer ", slider]), layerReadout, h("label", {}, ["colour ", colorSelect]),
    h("label", {}, ["find ", search]), searchReadout, resetButton, svgButton, pngButton, selectionReadout,
  ]);
  const points = h("canvas", { className: "nm-points" });
  const overlay = h("canvas", { className: "nm-overlay", tabindex: "0" });
  const stack = h("div", { className: "nm-stack" }, [points, overlay]);
  const yTitleEl = h("div", { className: "nm-axis-title nm-axis-y", style: { writingMode: "vertical-rl", transform: "rotate(180deg)", textAlign: "center", color: "var(--nm-muted)" } });
  const xTitleEl = h("div", { className: "nm-axis-title nm-axis-x", style: { textAlign: "center", color: "var(--nm-muted)" } });
  const plot = h("div", { style: { display: "flex", alignItems: "stretch", gap: "4px" } }, [yTitleEl, h("div", {}, [stack, xTitleEl])]);
  const legend = h("div", { className: "nm-legend" });
  const neighboursEl = h("div", { className: "nm-neighbours" });
  const tooltip = h("div", { className: "nm-tooltip" });
  root.append(titleEl, toolbar, plot, legend, neighboursEl, tooltip);

  let data = null;
  let layout = { width: 0, height: HEIGHT };
  let positions = null;
  let grid = null;
  let hover = -1;
  let drag = null;
  let view = { scale: 1, dx: 0, dy: 0 };
  let matches = [];
  let clicked = -1;
  let lastColors = null;

  function layer() {
    return Math.max(0, Math.min((data?.nLayers ?? 1) - 1, model.get("layer") || 0));
  }

  function coloring() {
    const name = model.get("color_by");
    return data.colorings.find((c) => c.name === name) || data.colorings[0];
  }

  function axisTitles(k) {
    return data.axisTitles[k] || data.axisTitles[0] || ["", ""];
  }

  function rebuild() {
    data = readScatter(model);
    titleEl.textContent = data.title;
    slider.max = String(Math.max(0, data.nLayers - 1));
    slider.disabled = data.nLayers < 2;
    colorSelect.replaceChildren(...data.colorings.map((c) => h("option", { value: c.name, text: c.name })));
    matches = matchingPoints(data, search.value);
    clicked = -1;
    draw();
  }

  function draw() {
    const width = Math.min(MAX_WIDTH, availableWidth(root) - 24);
    layout = { width, height: HEIGHT };
    const k = layer();
    slider.value = String(k);
    layerReadout.textContent = data.layerLabels[k] ?? String(k);
    const current = coloring();
    if (current) colorSelect.value = current.name;
    const [xTitle, yTitle] = axisTitles(k);
    xTitleEl.textContent = xTitle;
    yTitleEl.textContent = yTitle;
    positions = applyView(screenPositions(data.coords, k, width, HEIGHT), view, width, HEIGHT);
    grid = buildGrid(positions, width, HEIGHT);
    drawPoints(current, k);
    drawLegend(current, k);
    drawNeighbours(k);
    drawOverlay();
  }

  function pointRadius() {
    return data.nPoints < 2000 ? 3 : data.nPoints < 20000 ? 2.5 : 1; // CSS px: 6, 5, 2 px wide (100k points stay fast)
  }

  function drawPoints(current, k) {
    const ctx = sizeCanvas(points, layout.width, layout.height);
    const ratio = points.width / layout.width;
    const image = ctx.createImageData(points.width, points.height);
    const radius = Math.max(1, pointRadius() * ratio);
    const disc = discOffsets(radius);
    const colors = current ? pointColors(coloringRow(data, current, k), current).rgb : null;
    lastColors = colors;
    const selected = new Set(model.get("selected") || []);
    const background = parseRgb(themeColors(root).bg);
    const paint = (i, dimmed) => {
      const cx = Math.round(positions.sx[i] * ratio);
      const cy = Math.round(positions.sy[i] * ratio);
      if (cx < -disc.reach || cy < -disc.reach || cx > image.width + disc.reach || cy > image.height + disc.reach) return;
      const own = colors ? [colors[i * 3], colors[i * 3 + 1], colors[i * 3 + 2]] : [31, 119, 180];
      const [r, g, b] = dimmed ? dimmedColor(own, background) : own;
      for (let d = 0; d < disc.dx.length; d++) {
        const x = cx + disc.dx[d];
        const y = cy + disc.dy[d];
        if (x < 0 || y < 0 || x >= image.width || y >= image.height) continue;
        const o = (y * image.width + x) * 4;
        image.data[o] = r;
        image.data[o + 1] = g;
        image.data[o + 2] = b;
        image.data[o + 3] = 255;
      }
    };
    if (selected.size) {
      for (let i = 0; i < data.nPoints; i++) if (!selected.has(i)) paint(i, true);
      for (const i of selected) if (i >= 0 && i < data.nPoints) paint(i, false);
    } else {
      for (let i = 0; i < data.nPoints; i++) paint(i, false);
    }
    ctx.putImageData(image, 0, 0);
    const count = selected.size;
    selectionReadout.textContent = count ? `${count} selected (Esc clears)` : "drag a box to select, click a point for its neighbours";
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
    const { slots, counts, order } = categorySlots(values);
    const key = (rgb, text) => h("span", { className: "nm-mark-key" }, [
      h("i", { style: { background: `rgb(${rgb.join(", ")})`, border: "none" } }), text,
    ]);
    for (const v of order.slice(0, MAX_COLORS)) {
      const name = tokenLabel(String(current.categories?.[v] ?? v));
      legend.append(key(categoricalColor(slots.get(v)), `${truncate(name, 24)} (${counts.get(v)})`));
    }
    const rest = order.slice(MAX_COLORS);
    const none = values.reduce((n, v) => n + (v < 0 ? 1 : 0), 0);
    if (rest.length) {
      const points = rest.reduce((n, v) => n + counts.get(v), 0);
      legend.append(key(OTHER_GREY, `other: ${rest.length} more ${current.name} values (${points})`));
    }
    if (none) legend.append(key(OTHER_GREY, `none (${none})`));
  }

  function pointLine(i) {
    if (data.pointPosition.data[i] < 0) return truncate(data.texts[data.pointText.data[i]] ?? "", 60);
    const { before, token, after } = tokenContext(data, i);
    return `${truncate(before, 24)}[${token}]${truncate(after, 24)}`;
  }

  function drawNeighbours(k) {
    neighboursEl.replaceChildren();
    if (clicked < 0 || clicked >= data.nPoints) return;
    const rows = nearestNeighbours(data.coords, k, clicked).map(({ index, distance }) =>
      h("li", { text: `${pointLine(index)} · distance ${formatValue(distance)} · point ${index}` }));
    neighboursEl.append(
      h("div", { className: "nm-readout", text: `nearest ${rows.length} to ${pointLine(clicked)} in this 2-D map (layer ${data.layerLabels[k] ?? k}; map units)` }),
      h("ol", {}, rows),
    );
  }

  function drawOverlay() {
    const ctx = sizeCanvas(overlay, layout.width, layout.height);
    const colors = themeColors(root);
    ctx.strokeStyle = colors.border;
    ctx.strokeRect(0.5, 0.5, layout.width - 1, layout.height - 1);
    const ring = (i, radius) => {
      ctx.beginPath();
      ctx.arc?.(positions.sx[i], positions.sy[i], radius, 0, 2 * Math.PI);
      ctx.stroke();
    };
    if (positions && matches.length) {
      ctx.strokeStyle = colors.accent;
      for (const i of matches) ring(i, 6);
    }
    if (positions && clicked >= 0 && clicked < data.nPoints) {
      ctx.strokeStyle = colors.fg;
      ring(clicked, 7);
    }
    if (hover >= 0 && positions) {
      ctx.strokeStyle = colors.fg;
      ring(hover, 5);
    }
    if (drag && !drag.pan) {
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

  function svgOf() {
    const colors = themeColors(root);
    return scatterSvg({
      positions, colors: lastColors, selected: new Set(model.get("selected") || []), width: layout.width,
      height: layout.height, title: `${data.title} · layer ${data.layerLabels[layer()] ?? layer()}`,
      axisTitles: axisTitles(layer()), background: parseRgb(colors.bg), foreground: parseRgb(colors.fg),
      radius: pointRadius(),
    });
  }

  function fileName() {
    return `scatter-layer-${data.layerLabels[layer()] ?? layer()}`;
  }

  overlay.addEventListener("mousedown", (event) => {
    const { x, y } = pointerPosition(event, overlay);
    drag = { x0: x, y0: y, x1: x, y1: y, pan: event.shiftKey, view };
  });
  overlay.addEventListener("mousemove", (event) => {
    const { x, y } = pointerPosition(event, overlay);
    if (drag) {
      drag.x1 = x;
      drag.y1 = y;
      tooltip.style.display = "none";
      if (drag.pan) {
        view = { ...drag.view, dx: drag.view.dx + x - drag.x0, dy: drag.view.dy + y - drag.y0 };
        draw();
      } else drawOverlay();
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
    if (box.pan) return;
    if (Math.abs(box.x1 - box.x0) < 3 && Math.abs(box.y1 - box.y0) < 3) { // a click: a point's neighbours, or clear
      clicked = grid ? nearestPoint(grid, x, y) : -1;
      if (clicked < 0) setSelected([]);
      drawNeighbours(layer());
    } else setSelected(pointsInBox(positions, box.x0, box.y0, box.x1, box.y1));
    drawOverlay();
  };
  overlay.addEventListener("mouseup", finish);
  overlay.addEventListener("mouseleave", () => {
    hover = -1;
    tooltip.style.display = "none";
    drawOverlay();
  });
  overlay.addEventListener("wheel", (event) => {
    event.preventDefault();
    const { x, y } = pointerPosition(event, overlay);
    view = zoomAt(view, x, y, event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, layout.width, layout.height);
    draw();
  }, { passive: false });
  overlay.addEventListener("keydown", (event) => {
    if (event.key === "Escape") setSelected([]);
    const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
    if (step) {
      event.preventDefault();
      model.set("layer", Math.max(0, Math.min(data.nLayers - 1, layer() + step)));
      model.save_changes();
    }
  });
  resetButton.addEventListener("click", () => {
    view = { scale: 1, dx: 0, dy: 0 };
    draw();
  });
  search.addEventListener("input", () => {
    matches = matchingPoints(data, search.value);
    searchReadout.textContent = search.value.trim() ? `${matches.length} match${matches.length === 1 ? "" : "es"}` : "";
    drawOverlay();
  });
  svgButton.addEventListener("click", () => download(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svgOf())}`, `${fileName()}.svg`));
  pngButton.addEventListener("click", async () => download(await svgToPng(svgOf()), `${fileName()}.png`));
  slider.addEventListener("input", () => {
    model.set("layer", Number(slider.value));
    model.save_changes();
  });
  colorSelect.addEventListener("change", () => {
    model.set("color_by", colorSelect.value);
    model.save_changes();
  });

  const dataTraits = ["coords", "layer_labels", "colorings", "color_values", "point_text", "point_position",
    "token_codes", "token_vocab", "texts", "text_labels", "axis_titles", "title"];
  const redraw = () => draw();
  for (const name of dataTraits) model.on(`change:${name}`, rebuild);
  for (const name of ["layer", "color_by", "selected"]) model.on(`change:${name}`, redraw);
  const stopResize = onResize(root, (width) => {
    if (Math.min(MAX_WIDTH, width - 24) !== layout.width) draw();
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

/** [r, g, b] of a theme colour (white when it cannot be read). */
function parseRgb(css) {
  return parseColor(css) || [255, 255, 255];
}

export default { render };
