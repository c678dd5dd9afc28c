// AttentionWidget front end: small multiples of every (layer, head) pattern, coloured, labelled
// and optionally ranked by a head score; click a head to zoom into its query x key pattern.
import { decodeArray } from "./arrays.js";
import { colorIndex, colorTable, cssColor, drawColorbar, valueRange } from "./colors.js";
import {
  availableWidth, createRoot, h, labelStep, onResize, onThemeChange, placeTooltip, pointerPosition, sizeCanvas, themeColors,
  tokenSpan,
} from "./dom.js";
import { formatNumber, formatValue, tokenLabel, truncate } from "./format.js";

const THUMB = 44; // css px of one thumbnail
const THUMB_RESOLUTION = 48; // thumbnails of longer sequences are max-pooled down to this
const ZOOM_RESOLUTION = 512;
const GAP = 8;
const SCORE_BAR = 4;
const SCORE_TEXT = 12;
const HEADER = 16;
const LABEL_SPACING = 12;
const MAX_LABEL_CHARS = 14;

/** Attention weights are drawn on a square-root scale so weak but real attention stays visible. */
const weightIndex = (weight) => colorIndex(Math.sqrt(Math.max(0, weight)), 0, 1);

export function readAttention(model) {
  const patterns = decodeArray(model.get("patterns"));
  const [nLayers, nHeads, nTokens] = patterns.shape;
  const scores = decodeArray(model.get("score_values"));
  return {
    patterns,
    nLayers,
    nHeads,
    nTokens,
    tokens: model.get("tokens") || [],
    layerLabels: model.get("layer_labels") || [],
    scoreNames: model.get("score_names") || [],
    scores,
    nKvHeads: model.get("n_kv_heads") || nHeads,
    title: model.get("title") || "",
  };
}

/**
 * RGBA image of one head's pattern at `resolution` x `resolution` pixels (max-pooled when the
 * sequence is longer). Cells above the diagonal that are exactly zero (the causal mask) stay transparent.
 */
export function patternPixels(data, layer, head, resolution) {
  const n = data.nTokens;
  const size = Math.min(n, resolution);
  const offset = (layer * data.nHeads + head) * n * n;
  const weights = data.patterns.data;
  const table = colorTable("sequential");
  const pixels = new Uint8ClampedArray(size * size * 4);
  for (let a = 0; a < size; a++) {
    const q0 = Math.floor((a * n) / size);
    const q1 = Math.max(q0 + 1, Math.floor(((a + 1) * n) / size));
    for (let b = 0; b < size; b++) {
      const k0 = Math.floor((b * n) / size);
      const k1 = Math.max(k0 + 1, Math.floor(((b + 1) * n) / size));
      let peak = -1;
      for (let q = q0; q < q1; q++) {
        for (let k = k0; k < k1; k++) {
          const w = weights[offset + q * n + k];
          if (w > peak && !(k > q && w === 0)) peak = w;
        }
      }
      if (peak < 0) continue;
      const c = weightIndex(peak) * 3;
      const p = (a * size + b) * 4;
      pixels[p] = table[c];
      pixels[p + 1] = table[c + 1];
      pixels[p + 2] = table[c + 2];
      pixels[p + 3] = 255;
    }
  }
  return { pixels, size };
}

function imageCanvas(pixels, size) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(size, size);
  image.data.set(pixels);
  ctx.putImageData(image, 0, 0);
  return canvas;
}

/**
 * The head the zoom shows before any click: the top head by `scoreName` (the ranking score, else the first
 * score other than entropy) within layers [first, last]; without scores, head 0 of the last layer shown.
 */
export function defaultHead(data, scoreName, [first, last]) {
  const names = data.scoreNames || [];
  const index = names.includes(scoreName) ? names.indexOf(scoreName) : names.findIndex((name) => name !== "entropy");
  if (index < 0) return { layer: last, head: 0 };
  let best = { layer: last, head: 0 };
  let top = -Infinity;
  for (let layer = first; layer <= last; layer++) {
    for (let head = 0; head < data.nHeads; head++) {
      const value = data.scores.data[(index * data.nLayers + layer) * data.nHeads + head];
      if (value > top) {
        top = value;
        best = { layer, head };
      }
    }
  }
  return best;
}

const TEXT_STYLE = `
.nm-attn-text { margin: 6px 0 2px; max-width: 560px; line-height: 1.8; white-space: pre-wrap; overflow-wrap: anywhere;
  font-family: var(--jp-code-font-family, var(--vscode-editor-font-family, ui-monospace, Menlo, Consolas, monospace)); }
.nm-attn-text .nm-attn-tok { border-radius: 2px; cursor: default; }
.nm-attn-text .nm-attn-query { outline: 2px solid var(--nm-accent); outline-offset: 1px; }
`;

function render({ model, el }) {
  const root = createRoot(el, "attention");
  root.append(h("style", { text: TEXT_STYLE }));
  const toolbar = h("div", { className: "nm-toolbar" });
  const thumbs = h("canvas", { className: "nm-thumbs", role: "img" });
  const thumbsOverlay = h("canvas", { className: "nm-overlay nm-thumbs-overlay", tabindex: "0" });
  const gridBox = h("div", { className: "nm-attn-grid" }, [h("div", { className: "nm-stack" }, [thumbs, thumbsOverlay])]);
  const zoomTitle = h("div", { className: "nm-attn-zoom-title" });
  const zoomCanvas = h("canvas", { className: "nm-zoom" });
  const zoomOverlay = h("canvas", { className: "nm-overlay nm-zoom-overlay" });
  const zoomLegend = h("div", { className: "nm-legend" });
  const zoomText = h("div", { className: "nm-attn-text", title: "hover a token: what it attends to in this head" });
  const zoomBox = h("div", { className: "nm-attn-zoom" }, [zoomTitle, h("div", { className: "nm-stack" }, [zoomCanvas, zoomOverlay]), zoomLegend, zoomText]);
  const tooltip = h("div", { className: "nm-tooltip", role: "tooltip" });
  root.append(toolbar, h("div", { className: "nm-attn-layout" }, [gridBox, zoomBox]), tooltip);

  let data = null;
  let thumbCache = new Map();
  let tiles = []; // {layer, head, x, y} of the heads on screen, in drawing order
  let hoverHead = null;
  let zoomLayout = null;
  let ranked = false;

  const scoreIndex = () => data.scoreNames.indexOf(model.get("score"));
  const scoreOf = (index, layer, head) => data.scores.data[(index * data.nLayers + layer) * data.nHeads + head];
  const kvGroup = (head) => Math.floor(head / Math.max(1, data.nHeads / data.nKvHeads));
  const layerName = (layer) => data.layerLabels[layer] ?? String(layer);
  const tokenName = (i) => tokenLabel(data.tokens[i] ?? String(i));
  const selectedHead = () => {
    const selected = model.get("selected") || [];
    return selected.length === 2 ? { layer: selected[0], head: selected[1] } : null;
  };
  const layerRange = () => {
    const range = model.get("layer_range") || [];
    const first = Math.max(0, Math.min(data.nLayers - 1, range[0] ?? 0));
    const last = Math.max(first, Math.min(data.nLayers - 1, range[1] ?? data.nLayers - 1));
    return [first, last];
  };

  function thumbnail(layer, head) {
    const key = layer * data.nHeads + head;
    if (!thumbCache.has(key)) {
      const { pixels, size } = patternPixels(data, layer, head, THUMB_RESOLUTION);
      thumbCache.set(key, imageCanvas(pixels, size));
    }
    return thumbCache.get(key);
  }

  function buildToolbar() {
    const items = [];
    if (data.title) items.push(h("span", { className: "nm-title", text: data.title }));
    const [first, last] = layerRange();
    const layerSelect = (value, className, label) => {
      const select = h("select", { className, "aria-label": label });
      for (let layer = 0; layer < data.nLayers; layer++) select.append(h("option", { value: String(layer), text: layerName(layer) }));
      select.value = String(value);
      return select;
    };
    const from = layerSelect(first, "nm-layer-from", "first layer");
    const to = layerSelect(last, "nm-layer-to", "last layer");
    const onRange = () => {
      const a = Number(from.value);
      const b = Number(to.value);
      model.set("layer_range", [Math.min(a, b), Math.max(a, b)]);
      model.save_changes();
    };
    from.addEventListener("change", onRange);
    to.addEventListener("change", onRange);
    items.push(h("label", {}, ["layers", from, "–", to]));
    if (data.scoreNames.length) {
      const score = h("select", { className: "nm-score", "aria-label": "head score" });
      score.append(h("option", { value: "", text: "(none)" }));
      for (const name of data.scoreNames) score.append(h("option", { value: name, text: name }));
      score.value = scoreIndex() < 0 ? "" : model.get("score");
      score.addEventListener("change", () => {
        model.set("score", score.value);
        model.save_changes();
      });
      const rank = h("input", { type: "checkbox", className: "nm-rank" });
      rank.checked = ranked;
      rank.disabled = scoreIndex() < 0;
      rank.addEventListener("change", () => {
        ranked = rank.checked;
        drawGrid();
      });
      items.push(h("label", {}, ["score", score]), h("label", {}, [rank, "rank heads by score"]));
    }
    if (data.nKvHeads !== data.nHeads) items.push(h("span", { className: "nm-readout", text: `${data.nHeads} query heads share ${data.nKvHeads} kv heads` }));
    toolbar.replaceChildren(...items);
  }

  function placeTiles() {
    const [first, last] = layerRange();
    const heads = [];
    for (let layer = first; layer <= last; layer++) for (let head = 0; head < data.nHeads; head++) heads.push({ layer, head });
    const tileWidth = THUMB + GAP;
    const tileHeight = THUMB + SCORE_BAR + SCORE_TEXT + GAP;
    const index = scoreIndex();
    if (ranked && index >= 0) {
      const key = ({ layer, head }) => { const s = scoreOf(index, layer, head); return Number.isNaN(s) ? -Infinity : s; };
      heads.sort((p, q) => key(q) - key(p));
      const columns = Math.max(1, Math.floor((Math.min(availableWidth(root), 720) - GAP) / tileWidth));
      heads.forEach((tile, i) => { tile.x = GAP + (i % columns) * tileWidth; tile.y = GAP + Math.floor(i / columns) * tileHeight; });
      return { heads, width: GAP + columns * tileWidth, height: GAP + Math.ceil(heads.length / columns) * tileHeight, axis: 0 };
    }
    const axis = 60;
    for (const tile of heads) {
      tile.x = axis + tile.head * tileWidth;
      tile.y = HEADER + (tile.layer - first) * tileHeight;
    }
    return { heads, width: axis + data.nHeads * tileWidth, height: HEADER + (last - first + 1) * tileHeight, axis };
  }

  function drawGrid() {
    const colors = themeColors(root);
    const placement = placeTiles();
    tiles = placement.heads;
    const ctx = sizeCanvas(thumbs, placement.width, placement.height);
    ctx.font = colors.font;
    ctx.textBaseline = "middle";
    const index = scoreIndex();
    const table = colorTable("sequential");
    const range = index >= 0 ? valueRange(data.scores.data.subarray(index * data.nLayers * data.nHeads, (index + 1) * data.nLayers * data.nHeads), { scale: "sequential" }) : null;
    if (placement.axis) {
      ctx.fillStyle = colors.muted;
      ctx.textAlign = "center";
      for (let head = 0; head < data.nHeads; head++) {
        const label = data.nKvHeads !== data.nHeads ? `H${head}·kv${kvGroup(head)}` : `H${head}`;
        ctx.fillText(label, placement.axis + head * (THUMB + GAP) + THUMB / 2, HEADER / 2);
      }
    }
    for (const tile of tiles) {
      const { layer, head, x, y } = tile;
      if (placement.axis && head === 0) {
        ctx.fillStyle = colors.fg;
        ctx.textAlign = "right";
        ctx.fillText(truncate(layerName(layer), 9), placement.axis - 6, y + THUMB / 2);
      }
      ctx.imageSmoothingEnabled = data.nTokens > THUMB;
      ctx.drawImage(thumbnail(layer, head), x, y, THUMB, THUMB);
      ctx.strokeStyle = colors.border;
      ctx.lineWidth = 1;
      ctx.strokeRect(x - 0.5, y - 0.5, THUMB + 1, THUMB + 1);
      if (index >= 0) {
        const score = scoreOf(index, layer, head);
        ctx.fillStyle = Number.isNaN(score) ? colors.border : cssColor(table, colorIndex(score, range.lo, range.hi));
        ctx.fillRect(x, y + THUMB + 1, THUMB, SCORE_BAR);
        ctx.fillStyle = colors.muted;
        ctx.textAlign = "center";
        const text = placement.axis ? formatNumber(score, ".2f") : `${truncate(layerName(layer), 4)}·H${head} ${formatNumber(score, ".2f")}`;
        ctx.fillText(text, x + THUMB / 2, y + THUMB + SCORE_BAR + SCORE_TEXT / 2 + 1, THUMB + GAP - 2);
      }
    }
    thumbs.setAttribute("aria-label", `attention patterns, ${tiles.length} heads`);
    drawGridOverlay();
  }

  function drawGridOverlay() {
    const ctx = sizeCanvas(thumbsOverlay, parseFloat(thumbs.style.width), parseFloat(thumbs.style.height));
    const colors = themeColors(root);
    const outline = (head, color, width) => {
      const tile = tiles.find((t) => t.layer === head.layer && t.head === head.head);
      if (!tile) return;
      ctx.lineWidth = width;
      ctx.strokeStyle = color;
      ctx.strokeRect(tile.x - 2, tile.y - 2, THUMB + 4, THUMB + 4);
    };
    if (hoverHead) outline(hoverHead, colors.muted, 1.5);
    const selected = selectedHead();
    if (selected) outline(selected, colors.accent, 3);
    root.dataset.selected = selected ? `${selected.layer},${selected.head}` : "";
  }

  // The head the zoom shows: the clicked one, else (so the zoom never starts empty) the top-scoring one.
  const shownHead = () => {
    const selected = selectedHead();
    if (selected && selected.layer < data.nLayers && selected.head < data.nHeads) return { ...selected, chosen: true };
    return { ...defaultHead(data, model.get("score"), layerRange()), chosen: false };
  };

  function drawZoom() {
    zoomLayout = null;
    if (!data.nLayers || !data.nHeads || !data.nTokens) {
      zoomTitle.textContent = "no attention pattern to show";
      sizeCanvas(zoomCanvas, 1, 1);
      sizeCanvas(zoomOverlay, 1, 1);
      zoomLegend.replaceChildren();
      zoomText.replaceChildren();
      return;
    }
    const colors = themeColors(root);
    const { layer, head, chosen } = shownHead();
    const kv = data.nKvHeads !== data.nHeads ? ` (kv head ${kvGroup(head)})` : "";
    const why = chosen ? "" : ` · ${scoreIndex() >= 0 || data.scoreNames.some((n) => n !== "entropy") ? "top head by score" : "last layer"}; click a head to choose`;
    zoomTitle.textContent = `layer ${layerName(layer)} · head ${head}${kv}${why}`;
    zoomBox.dataset.head = `${layer},${head}`;
    const n = data.nTokens;
    const measure = zoomCanvas.getContext("2d");
    measure.font = colors.font;
    let labelWidth = 0;
    for (let i = 0; i < n; i++) labelWidth = Math.max(labelWidth, measure.measureText(truncate(tokenName(i), MAX_LABEL_CHARS)).width);
    labelWidth = Math.ceil(Math.min(labelWidth, 110)) + 8;
    const room = Math.max(160, Math.min(560, availableWidth(root) - labelWidth - 24));
    const cell = Math.min(22, room / n);
    const side = cell * n;
    zoomLayout = { cell, labelWidth, side };

    const ctx = sizeCanvas(zoomCanvas, labelWidth + side, side + labelWidth);
    const { pixels, size } = patternPixels(data, layer, head, ZOOM_RESOLUTION);
    ctx.imageSmoothingEnabled = size < n || cell < 1;
    ctx.drawImage(imageCanvas(pixels, size), labelWidth, 0, side, side);
    ctx.strokeStyle = colors.border;
    ctx.strokeRect(labelWidth - 0.5, -0.5, side + 1, side + 1);
    ctx.font = colors.font;
    ctx.fillStyle = colors.fg;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    const step = labelStep(cell, LABEL_SPACING);
    for (let i = 0; i < n; i += step) {
      const text = truncate(tokenName(i), MAX_LABEL_CHARS);
      ctx.fillText(text, labelWidth - 4, (i + 0.5) * cell);
      ctx.save();
      ctx.translate(labelWidth + (i + 0.5) * cell, side + 4);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(text, 0, 0);
      ctx.restore();
    }
    sizeCanvas(zoomOverlay, labelWidth + side, side);
    zoomOverlay.style.left = "0px";
    drawText(layer, head, null);

    const bar = h("canvas", { width: "160", height: "10" });
    drawColorbar(bar.getContext("2d"), colorTable("sequential"), 160, 10);
    const scoreText = data.scoreNames.map((name, i) => `${name} ${formatValue(scoreOf(i, layer, head))}`).join(" · ");
    zoomLegend.replaceChildren(
      h("span", { className: "nm-colorbar" }, ["weight 0", bar, "1 (√ scale)"]),
      h("span", { text: "rows: query · columns: key" }),
      ...(scoreText ? [h("span", { text: scoreText })] : []),
    );
  }

  /** Weights of one query row of a head's pattern: what token `query` attends to, over every key. */
  function attendedBy(layer, head, query) {
    const n = data.nTokens;
    const start = ((layer * data.nHeads + head) * n + query) * n;
    return data.patterns.data.subarray(start, start + n);
  }

  // The text under the zoom: hovering a token shades every token by how much the hovered one attends to it.
  function drawText(layer, head, query) {
    const table = colorTable("magnitude", themeColors(root).bg);
    const weights = query === null ? null : attendedBy(layer, head, query);
    zoomText.replaceChildren(...data.tokens.map((token, i) => {
      const span = tokenSpan(token, { running: true, className: `nm-attn-tok${i === query ? " nm-attn-query" : ""}` });
      span.dataset.index = String(i);
      if (weights && i <= query) {
        const index = weightIndex(weights[i]);
        span.style.background = cssColor(table, index);
        span.style.color = 0.299 * table[index * 3] + 0.587 * table[index * 3 + 1] + 0.114 * table[index * 3 + 2] < 150 ? "#ffffff" : "#111111";
        span.title = `${tokenName(query)} → ${tokenName(i)}: ${formatValue(weights[i])}`;
      }
      span.addEventListener("mouseenter", () => drawText(layer, head, i));
      return span;
    }));
    zoomText.dataset.query = query === null ? "" : String(query);
    if (query === null) zoomText.prepend(h("span", { className: "nm-readout", text: "hover a token to see what it attends to: " }));
  }

  function rebuild() {
    data = readAttention(model);
    thumbCache = new Map();
    hoverHead = null;
    buildToolbar();
    drawGrid();
    drawZoom();
  }

  function headAt(event) {
    const { x, y } = pointerPosition(event, thumbsOverlay);
    return tiles.find((t) => x >= t.x && x < t.x + THUMB && y >= t.y && y < t.y + THUMB) || null;
  }

  function tableRows(pairs) {
    return pairs.map(([name, value]) => h("tr", {}, [h("td", { text: name }), h("td", { className: "nm-num", text: value })]));
  }

  function showTooltip(event, title, pairs) {
    tooltip.replaceChildren(h("div", { className: "nm-tip-title", text: title }), h("table", {}, tableRows(pairs)));
    placeTooltip(tooltip, root, event.clientX, event.clientY);
  }

  function hideTooltip() {
    tooltip.style.display = "none";
  }

  thumbsOverlay.addEventListener("mousemove", (event) => {
    const tile = headAt(event);
    if (!tile) {
      hideTooltip();
      if (hoverHead) { hoverHead = null; drawGridOverlay(); }
      return;
    }
    if (!hoverHead || hoverHead.layer !== tile.layer || hoverHead.head !== tile.head) {
      hoverHead = { layer: tile.layer, head: tile.head };
      drawGridOverlay();
    }
    const pairs = data.scoreNames.map((name, i) => [name, formatValue(scoreOf(i, tile.layer, tile.head))]);
    if (data.nKvHeads !== data.nHeads) pairs.unshift(["kv head", String(kvGroup(tile.head))]);
    showTooltip(event, `layer ${layerName(tile.layer)} · head ${tile.head}`, pairs);
  });
  thumbsOverlay.addEventListener("mouseleave", () => { hideTooltip(); hoverHead = null; drawGridOverlay(); });
  thumbsOverlay.addEventListener("click", (event) => {
    const tile = headAt(event);
    if (!tile) return;
    model.set("selected", [tile.layer, tile.head]);
    model.save_changes();
    // The zoom wraps below the grid in a narrow window: bring it into view, or the click looks dead.
    requestAnimationFrame(() => zoomBox.scrollIntoView?.({ block: "nearest", inline: "nearest" }));
  });
  thumbsOverlay.addEventListener("keydown", (event) => {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const [first, last] = layerRange();
    const current = selectedHead() || { layer: first, head: 0 };
    model.set("selected", [
      Math.max(first, Math.min(last, current.layer + move[0])),
      Math.max(0, Math.min(data.nHeads - 1, current.head + move[1])),
    ]);
    model.save_changes();
  });

  zoomOverlay.addEventListener("mousemove", (event) => {
    const selected = shownHead();
    if (!zoomLayout) return;
    const { x, y } = pointerPosition(event, zoomOverlay);
    const query = Math.floor(y / zoomLayout.cell);
    const key = Math.floor((x - zoomLayout.labelWidth) / zoomLayout.cell);
    if (query < 0 || key < 0 || query >= data.nTokens || key >= data.nTokens) return hideTooltip();
    const n = data.nTokens;
    const weight = data.patterns.data[((selected.layer * data.nHeads + selected.head) * n + query) * n + key];
    showTooltip(event, `query ${query} → key ${key}`, [
      ["query", tokenName(query)],
      ["key", tokenName(key)],
      ["weight", formatValue(weight)],
    ]);
  });
  zoomOverlay.addEventListener("mouseleave", hideTooltip);

  const dataTraits = ["patterns", "tokens", "layer_labels", "score_names", "score_values", "n_kv_heads", "title"];
  const onSelected = () => { drawGridOverlay(); drawZoom(); };
  const onLayout = () => { buildToolbar(); drawGrid(); drawZoom(); };
  const redraw = () => { drawGrid(); drawZoom(); };
  for (const name of dataTraits) model.on(`change:${name}`, rebuild);
  model.on("change:selected", onSelected);
  model.on("change:score", onLayout);
  model.on("change:layer_range", onLayout);
  let drawnWidth = availableWidth(root);
  const stopResize = onResize(root, (width) => {
    if (width !== drawnWidth) { drawnWidth = width; redraw(); }
  });
  const stopTheme = onThemeChange(redraw);

  rebuild();

  return () => {
    for (const name of dataTraits) model.off(`change:${name}`, rebuild);
    model.off("change:selected", onSelected);
    model.off("change:score", onLayout);
    model.off("change:layer_range", onLayout);
    stopResize();
    stopTheme();
  };
}

export default { render };
