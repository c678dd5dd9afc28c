// HeatmapWidget front end: one canvas of n_rows x n_cols cells per metric, labelled axes,
// colorbar, hover tooltip with exact values and optional per-cell details, click-to-select.
import { decodeArray } from "./arrays.js";
import { colorIndex, colorTable, drawColorbar, valueRange } from "./colors.js";
import {
  availableWidth, createRoot, download, fillTokenLabel, h, labelStep, onResize, onThemeChange, placeTooltip, pointerPosition,
  sizeCanvas, svgToPng, themeColors,
} from "./dom.js";
import { escapeXml, fillTemplate, formatNumber, formatValue, tokenLabel, truncate } from "./format.js";

const MIN_CELL_WIDTH = 3; // below this, scroll horizontally unless the user asks to fit
const MAX_CELL_WIDTH = 56;
const MAX_TOKEN_CELL_WIDTH = 84; // cells that show a token get room for a short word
const LABEL_SPACING = 13; // px between two drawn axis labels
const MAX_LABEL_CHARS = 16;
const ROW_TITLE_WIDTH = 16;
const MARK_FILL = "#ff3d7f"; // marks (attention sinks): a hue no scale uses, on light and dark pages

/** Everything the drawing needs, decoded once per data change (not per hover). */
export function readHeatmap(model) {
  const values = decodeArray(model.get("values"));
  const [nMetrics, nRows, nCols] = values.shape;
  const metrics = model.get("metrics") || [];
  const detailValues = decodeArray(model.get("detail_values"));
  return {
    values,
    nMetrics,
    nRows,
    nCols,
    metrics: metrics.length === nMetrics ? metrics : Array.from({ length: nMetrics }, (_, i) => ({ name: `metric ${i}` })),
    rowLabels: model.get("row_labels") || [],
    colLabels: model.get("col_labels") || [],
    rowTitle: model.get("row_title") || "",
    colTitle: model.get("col_title") || "",
    title: model.get("title") || "",
    marks: model.get("marks") || [],
    detailNames: model.get("detail_names") || [],
    detailValues,
    tokenIds: decodeArray(model.get("detail_token_ids")),
    tokenProbs: decodeArray(model.get("detail_probs")),
    vocab: model.get("detail_vocab") || [],
    template: model.get("tooltip_template") || "",
  };
}

function metricIndex(data, name) {
  const index = data.metrics.findIndex((metric) => metric.name === name);
  return index < 0 ? 0 : index;
}

function metricPlane(data, index) {
  const size = data.nRows * data.nCols;
  return data.values.data.subarray(index * size, (index + 1) * size);
}

/**
 * The values colours are drawn from: log10 of each value for a metric with `log` (a sink's norm
 * 25x the rest then takes a few shades, not the whole scale; values <= 0 have no colour), else the values.
 */
export function colourValues(plane, metric) {
  return metric.log ? Float32Array.from(plane, (v) => (v > 0 ? Math.log10(v) : NaN)) : plane;
}

/** RGBA pixels, one per cell (NaN cells transparent so the hatch shows through); lo / hi in colour units. */
export function cellPixels(plane, metric, nRows, nCols, neutral = null) {
  const table = colorTable(metric.scale, neutral);
  plane = colourValues(plane, metric);
  const { lo, hi, clipped } = valueRange(plane, metric.log ? { ...metric, vmin: null, vmax: null } : metric);
  const pixels = new Uint8ClampedArray(nRows * nCols * 4);
  for (let i = 0; i < plane.length; i++) {
    const value = plane[i];
    if (Number.isNaN(value)) continue;
    const c = colorIndex(value, lo, hi) * 3;
    pixels[i * 4] = table[c];
    pixels[i * 4 + 1] = table[c + 1];
    pixels[i * 4 + 2] = table[c + 2];
    pixels[i * 4 + 3] = 255;
  }
  return { pixels, lo, hi, clipped };
}

// Column labels are tokens (a faint mark for a leading space); row labels are names like "8 (step 12)".
function label(labels, index, tokens = false) {
  if (index >= labels.length) return String(index);
  return tokens ? tokenLabel(labels[index]) : String(labels[index]);
}

/** Black or white, whichever reads on a cell of colour [r, g, b]. */
export function textColourOn([r, g, b]) {
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 140 ? "#000000" : "#ffffff";
}

/**
 * What a cell says in itself: its top token where the heatmap has per-cell tokens (the logit-lens
 * picture), else its value rounded; "" for an undefined cell.
 */
export function cellText(data, plane, flat) {
  if (data.tokenIds) {
    const id = data.tokenIds.data[flat * data.tokenIds.shape[2]];
    return id < 0 ? "" : tokenLabel(data.vocab[id] ?? `#${id}`);
  }
  return Number.isNaN(plane[flat]) ? "" : formatValue(plane[flat]);
}

/** The longest start of `text` (ending in "…" when cut, at least 2 characters) that fits `width` px; "" if none. */
export function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  for (let n = text.length - 1; n >= 2; n--) {
    const cut = `${text.slice(0, n)}…`;
    if (ctx.measureText(cut).width <= width) return cut;
  }
  return "";
}

const SVG_CELL = 18;
const SVG_CHAR = 6.6;

/**
 * The heatmap of metric `index` as a self-contained SVG (a figure for a paper): one rect per defined
 * cell in the widget's colours, each with its rounded value as a <title>, axis labels and titles, and a
 * legend line with the colour range; explicit theme colours, no external reference.
 */
export function heatmapSvg(data, index, colors) {
  const metric = data.metrics[index];
  const plane = metricPlane(data, index);
  const { pixels, lo, hi } = cellPixels(plane, metric, data.nRows, data.nCols, colors.bg);
  const rowLabels = Array.from({ length: data.nRows }, (_, r) => truncate(label(data.rowLabels, r), MAX_LABEL_CHARS));
  const colLabels = Array.from({ length: data.nCols }, (_, c) => truncate(label(data.colLabels, c, true), MAX_LABEL_CHARS));
  const left = 28 + SVG_CHAR * Math.max(2, ...rowLabels.map((t) => t.length));
  const top = 30;
  const gridBottom = top + data.nRows * SVG_CELL;
  const labelsHeight = 8 + SVG_CHAR * Math.max(2, ...colLabels.map((t) => t.length));
  const width = Math.max(left + data.nCols * SVG_CELL + 16, 360);
  const height = gridBottom + labelsHeight + 44;
  const end = (v) => (metric.log ? formatValue(10 ** v) : formatValue(v));
  const legend = `${metric.label || metric.name}: ${end(lo)} … ${end(hi)}${metric.log ? " (log colour scale)" : ""}${metric.better ? ` · ${metric.better} is better` : ""}`;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="${colors.bg}"/>`,
    `<text x="8" y="18" fill="${colors.fg}" font-weight="600" font-size="12">${escapeXml(data.title || "heatmap")}</text>`,
  ];
  for (let r = 0; r < data.nRows; r++) {
    parts.push(`<text x="${left - 5}" y="${top + (r + 0.5) * SVG_CELL + 4}" text-anchor="end" fill="${colors.fg}">${escapeXml(rowLabels[r])}</text>`);
    for (let c = 0; c < data.nCols; c++) {
      const flat = r * data.nCols + c;
      if (pixels[flat * 4 + 3] === 0) continue;
      const fill = `rgb(${pixels[flat * 4]}, ${pixels[flat * 4 + 1]}, ${pixels[flat * 4 + 2]})`;
      parts.push(`<rect x="${left + c * SVG_CELL}" y="${top + r * SVG_CELL}" width="${SVG_CELL}" height="${SVG_CELL}" fill="${fill}"><title>${escapeXml(`${rowLabels[r]} · ${colLabels[c]}: ${formatValue(plane[flat])}`)}</title></rect>`);
    }
  }
  colLabels.forEach((text, c) => {
    const x = left + (c + 0.5) * SVG_CELL + 4;
    parts.push(`<text transform="translate(${x},${gridBottom + 6}) rotate(-90)" text-anchor="end" fill="${colors.fg}">${escapeXml(text)}</text>`);
  });
  if (data.rowTitle) parts.push(`<text transform="translate(12,${top + (data.nRows * SVG_CELL) / 2}) rotate(-90)" text-anchor="middle" fill="${colors.muted}">${escapeXml(data.rowTitle)}</text>`);
  if (data.colTitle) parts.push(`<text x="${left + (data.nCols * SVG_CELL) / 2}" y="${gridBottom + labelsHeight + 14}" text-anchor="middle" fill="${colors.muted}">${escapeXml(data.colTitle)}</text>`);
  parts.push(`<text x="8" y="${height - 10}" fill="${colors.muted}">${escapeXml(legend)}</text>`, "</svg>");
  return parts.join("");
}

function hatchPattern(ctx, colors) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 6;
  const tileCtx = tile.getContext("2d");
  tileCtx.strokeStyle = colors.border;
  tileCtx.lineWidth = 1;
  tileCtx.beginPath();
  tileCtx.moveTo(0, 6);
  tileCtx.lineTo(6, 0);
  tileCtx.stroke();
  return ctx.createPattern(tile, "repeat");
}

/** A mark on a cell: a small triangle in its top-right corner, which no one takes for a selection. */
function cornerMark(ctx, layout, row, col, fill, edge) {
  const size = Math.max(4, Math.min(9, layout.cellWidth * 0.45, layout.cellHeight * 0.6));
  const right = (col + 1) * layout.cellWidth;
  const top = row * layout.cellHeight;
  ctx.beginPath();
  ctx.moveTo(right - size, top);
  ctx.lineTo(right, top);
  ctx.lineTo(right, top + size);
  ctx.closePath();
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.lineWidth = 1;
  ctx.strokeStyle = edge;
  ctx.stroke();
}

function strokeCell(ctx, layout, row, col, outer, inner, width) {
  const x = col * layout.cellWidth;
  const y = row * layout.cellHeight;
  const w = Math.max(layout.cellWidth, 3);
  const hgt = Math.max(layout.cellHeight, 3);
  ctx.lineWidth = width + 2;
  ctx.strokeStyle = outer;
  ctx.strokeRect(x - 0.5, y - 0.5, w + 1, hgt + 1);
  ctx.lineWidth = width;
  ctx.strokeStyle = inner;
  ctx.strokeRect(x - 0.5, y - 0.5, w + 1, hgt + 1);
}

function render({ model, el }) {
  const root = createRoot(el, "heatmap");
  const toolbar = h("div", { className: "nm-toolbar" });
  const rowAxis = h("canvas", { className: "nm-row-axis" });
  const grid = h("canvas", { className: "nm-grid", role: "img" });
  const overlay = h("canvas", { className: "nm-overlay", tabindex: "0" });
  const stack = h("div", { className: "nm-stack" }, [grid, overlay]);
  const scroller = h("div", { className: "nm-scroll" }, [stack]);
  const colTitle = h("div", { className: "nm-axis-title" });
  const legend = h("div", { className: "nm-legend" });
  const tooltip = h("div", { className: "nm-tooltip", role: "tooltip" });
  root.append(toolbar, h("div", { className: "nm-body" }, [rowAxis, scroller]), colTitle, legend, tooltip);

  let data = null;
  let layout = null;
  let hover = null;
  let fitWidth = false;

  const selectedCell = () => {
    const selected = model.get("selected") || [];
    return selected.length === 2 ? { row: selected[0], col: selected[1] } : null;
  };

  function computeLayout(colors) {
    const measure = sizeCanvas(rowAxis, 1, 1);
    measure.font = colors.font;
    const widest = (labels, count, tokens = false) => {
      let width = 0;
      for (let i = 0; i < count; i++) width = Math.max(width, measure.measureText(truncate(label(labels, i, tokens), MAX_LABEL_CHARS)).width);
      return Math.ceil(width);
    };
    const rowLabelWidth = widest(data.rowLabels, data.nRows) + 8;
    const rowAxisWidth = rowLabelWidth + (data.rowTitle ? ROW_TITLE_WIDTH : 0);
    const room = Math.max(100, availableWidth(root) - rowAxisWidth - 4);
    let cellWidth = Math.min(data.tokenIds ? MAX_TOKEN_CELL_WIDTH : MAX_CELL_WIDTH, room / data.nCols);
    const overflows = cellWidth < MIN_CELL_WIDTH;
    if (overflows && !fitWidth) cellWidth = MIN_CELL_WIDTH;
    const cellHeight = Math.max(4, Math.min(26, Math.floor(440 / data.nRows)));
    const upright = widest(data.colLabels, data.nCols, true) <= cellWidth - 4; // tokens read upright where they fit
    return {
      cellWidth,
      cellHeight,
      overflows,
      rowLabelWidth,
      rowAxisWidth,
      upright,
      colLabelHeight: upright ? 18 : Math.min(widest(data.colLabels, data.nCols), 110) + 8,
      gridWidth: cellWidth * data.nCols,
      gridHeight: cellHeight * data.nRows,
      available: availableWidth(root),
    };
  }

  function drawRowAxis(colors) {
    const ctx = sizeCanvas(rowAxis, layout.rowAxisWidth, layout.gridHeight + layout.colLabelHeight);
    ctx.font = colors.font;
    ctx.fillStyle = colors.fg;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const step = labelStep(layout.cellHeight, LABEL_SPACING);
    for (let row = 0; row < data.nRows; row += step) {
      const text = truncate(label(data.rowLabels, row), MAX_LABEL_CHARS);
      ctx.fillText(text, layout.rowAxisWidth - 5, Math.max(6, (row + 0.5) * layout.cellHeight)); // keep the first label whole
    }
    if (data.rowTitle) {
      ctx.save();
      ctx.fillStyle = colors.muted;
      ctx.textAlign = "center";
      ctx.translate(8, layout.gridHeight / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(data.rowTitle, 0, 0);
      ctx.restore();
    }
  }

  function drawGrid(colors) {
    const index = metricIndex(data, model.get("metric"));
    const metric = data.metrics[index];
    const { pixels, lo, hi, clipped } = cellPixels(metricPlane(data, index), metric, data.nRows, data.nCols, colors.bg);
    const cells = document.createElement("canvas");
    cells.width = data.nCols;
    cells.height = data.nRows;
    const cellsCtx = cells.getContext("2d");
    const image = cellsCtx.createImageData(data.nCols, data.nRows);
    image.data.set(pixels);
    cellsCtx.putImageData(image, 0, 0);

    const ctx = sizeCanvas(grid, layout.gridWidth, layout.gridHeight + layout.colLabelHeight);
    ctx.fillStyle = hatchPattern(ctx, colors);
    ctx.fillRect(0, 0, layout.gridWidth, layout.gridHeight);
    // Averaging is right when several columns share a pixel; crisp edges otherwise.
    ctx.imageSmoothingEnabled = layout.cellWidth < 1;
    ctx.drawImage(cells, 0, 0, layout.gridWidth, layout.gridHeight);

    drawCellTexts(ctx, pixels, metricPlane(data, index), colors);
    for (const mark of data.marks) cornerMark(ctx, layout, mark.row, mark.col, MARK_FILL, "#000000");

    ctx.font = colors.font;
    ctx.textBaseline = "middle";
    const labelStyle = { color: colors.fg, muted: colors.muted, maxChars: MAX_LABEL_CHARS };
    if (layout.upright) {
      for (let col = 0; col < data.nCols; col++) {
        fillTokenLabel(ctx, data.colLabels[col] ?? String(col), (col + 0.5) * layout.cellWidth, layout.gridHeight + 9, { ...labelStyle, align: "center" });
      }
    } else {
      const step = labelStep(layout.cellWidth, LABEL_SPACING);
      for (let col = 0; col < data.nCols; col += step) {
        ctx.save();
        ctx.translate(Math.max(6, (col + 0.5) * layout.cellWidth), layout.gridHeight + 4);
        ctx.rotate(-Math.PI / 2);
        fillTokenLabel(ctx, data.colLabels[col] ?? String(col), 0, 0, { ...labelStyle, align: "right" });
        ctx.restore();
      }
    }
    grid.setAttribute("aria-label", `${data.title || "heatmap"}: ${metric.label || metric.name}, ${data.nRows} x ${data.nCols}`);
    grid.dataset.metric = metric.name;
    drawLegend(metric, lo, hi, clipped, colors.bg);
  }

  // Each cell's own text (top token or rounded value) where it fits, in black or white by the cell's colour.
  function drawCellTexts(ctx, pixels, plane, colors) {
    if (layout.cellHeight < 11 || layout.cellWidth < 14) return;
    ctx.font = colors.font;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    let written = 0;
    for (let row = 0; row < data.nRows; row++) {
      for (let col = 0; col < data.nCols; col++) {
        const flat = row * data.nCols + col;
        if (pixels[flat * 4 + 3] === 0) continue;
        const text = fitText(ctx, cellText(data, plane, flat), layout.cellWidth - 3);
        if (!text) continue;
        ctx.fillStyle = textColourOn(pixels.subarray(flat * 4, flat * 4 + 3));
        ctx.fillText(text, (col + 0.5) * layout.cellWidth, (row + 0.5) * layout.cellHeight + 0.5);
        written++;
      }
    }
    grid.dataset.cellTexts = String(written);
  }

  function drawLegend(metric, lo, hi, clipped, neutral) {
    const bar = h("canvas", { width: "160", height: "10" });
    drawColorbar(bar.getContext("2d"), colorTable(metric.scale, neutral), 160, 10);
    const fmt = metric.fmt || "";
    const [below, above] = clipped ? ["≤ ", "≥ "] : ["", ""];
    const end = (v) => (metric.log ? formatValue(10 ** v) : formatNumber(v, fmt));
    const ends = [h("span", { text: below + end(lo) }), bar, h("span", { text: above + end(hi) })];
    if (metric.scale === "diverging") ends.splice(2, 0, h("span", { text: `centre ${formatNumber(metric.center ?? 0, fmt)}` }));
    const items = [h("span", { className: "nm-colorbar" }, [h("span", { text: metric.label || metric.name }), ...ends])];
    if (metric.log) items.push(h("span", { className: "nm-mark-key", text: "log colour scale (each shade a constant ratio)" }));
    if (metric.better) items.push(h("span", { className: "nm-mark-key", text: `${metric.better} is better` }));
    if (data.tokenIds) items.push(h("span", { className: "nm-mark-key", text: "cells: the lens's top token" }));
    if (clipped) items.push(h("span", { className: "nm-mark-key", text: `colours span the ${Math.round((1 - metric.clip) * 100)}-${Math.round(metric.clip * 100)}th percentiles; hover shows exact values` }));
    if (data.values.data.some(Number.isNaN)) items.push(h("span", { className: "nm-mark-key", text: "hatched: undefined" }));
    for (const mark of data.marks) {
      items.push(h("span", { className: "nm-mark-key" }, [h("b", { className: "nm-corner" }), `${mark.label} (${label(data.rowLabels, mark.row)}, ${label(data.colLabels, mark.col, true)})`]));
    }
    legend.replaceChildren(...items);
  }

  function drawOverlay() {
    const ctx = sizeCanvas(overlay, layout.gridWidth, layout.gridHeight);
    const colors = themeColors(root);
    if (hover) strokeCell(ctx, layout, hover.row, hover.col, colors.bg, colors.muted, 1);
    const selected = selectedCell();
    if (selected) strokeCell(ctx, layout, selected.row, selected.col, colors.bg, colors.fg, 2.5);
    updateReadout(selected);
  }

  function updateReadout(selected) {
    const readout = toolbar.querySelector(".nm-readout");
    root.dataset.selected = selected ? `${selected.row},${selected.col}` : "";
    if (!readout) return;
    if (!selected || selected.row >= data.nRows || selected.col >= data.nCols) {
      readout.textContent = "click a cell to select it";
      return;
    }
    const index = metricIndex(data, model.get("metric"));
    const value = metricPlane(data, index)[selected.row * data.nCols + selected.col];
    readout.textContent = `selected ${data.rowTitle || "row"} ${label(data.rowLabels, selected.row)}, ${data.colTitle || "col"} ${label(data.colLabels, selected.col, true)}: ${formatValue(value)}`;
  }

  function buildToolbar() {
    const items = [];
    if (data.title) items.push(h("span", { className: "nm-title", text: data.title }));
    if (data.nMetrics > 1) {
      const select = h("select", { className: "nm-metric", "aria-label": "metric" });
      data.metrics.forEach((metric) => select.append(h("option", { value: metric.name, text: metric.label || metric.name })));
      select.value = data.metrics[metricIndex(data, model.get("metric"))].name;
      select.addEventListener("change", () => {
        model.set("metric", select.value);
        model.save_changes();
      });
      items.push(h("label", {}, ["metric", select]));
    }
    if (layout.overflows) {
      const fit = h("input", { type: "checkbox", className: "nm-fit" });
      fit.checked = fitWidth;
      fit.addEventListener("change", () => {
        fitWidth = fit.checked;
        draw();
      });
      items.push(h("label", {}, [fit, "fit width"]));
    }
    items.push(h("span", { className: "nm-readout" }));
    const svgOf = () => heatmapSvg(data, metricIndex(data, model.get("metric")), themeColors(root));
    const name = () => `${(data.title || "heatmap").replace(/[^\w.-]+/g, "_")}-${model.get("metric")}`;
    const svgButton = h("button", { type: "button", text: "SVG", className: "nm-export-svg", title: "download this view as SVG" });
    svgButton.addEventListener("click", () => download(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svgOf())}`, `${name()}.svg`));
    const pngButton = h("button", { type: "button", text: "PNG", className: "nm-export-png", title: "download this view as PNG" });
    pngButton.addEventListener("click", async () => download(await svgToPng(svgOf()), `${name()}.png`));
    items.push(h("span", {}, [svgButton, " ", pngButton]));
    toolbar.replaceChildren(...items);
  }

  function draw() {
    const colors = themeColors(root);
    layout = computeLayout(colors);
    buildToolbar();
    drawRowAxis(colors);
    drawGrid(colors);
    colTitle.textContent = data.colTitle;
    colTitle.style.marginLeft = `${layout.rowAxisWidth}px`;
    colTitle.style.maxWidth = `${layout.gridWidth}px`;
    drawOverlay();
  }

  function rebuild() {
    data = readHeatmap(model);
    hover = null;
    draw();
  }

  function cellAt(event) {
    const { x, y } = pointerPosition(event, overlay);
    const row = Math.floor(y / layout.cellHeight);
    const col = Math.floor(x / layout.cellWidth);
    if (row < 0 || col < 0 || row >= data.nRows || col >= data.nCols) return null;
    return { row, col };
  }

  function tooltipContent(cell) {
    const flat = cell.row * data.nCols + cell.col;
    const current = metricIndex(data, model.get("metric"));
    const fields = {
      row: label(data.rowLabels, cell.row),
      col: label(data.colLabels, cell.col, true),
      row_index: cell.row,
      col_index: cell.col,
      metric: data.metrics[current].label || data.metrics[current].name,
      value: metricPlane(data, current)[flat],
    };
    data.metrics.forEach((metric, i) => { fields[metric.name] = metricPlane(data, i)[flat]; });
    const plane = data.nRows * data.nCols;
    data.detailNames.forEach((name, i) => { fields[name] = data.detailValues.data[i * plane + flat]; });

    const defaultTitle = `${data.rowTitle ? `${data.rowTitle} ` : ""}${fields.row} · ${data.colTitle ? `${data.colTitle} ` : ""}${fields.col}`;
    const rows = [];
    const addRow = (name, text, bold = false) => {
      const cellName = h("td", { text: name });
      const cellValue = h("td", { className: "nm-num", text });
      if (bold) cellValue.style.fontWeight = "600";
      rows.push(h("tr", {}, [cellName, cellValue]));
    };
    data.metrics.forEach((metric, i) => addRow(metric.label || metric.name, formatValue(fields[metric.name]), i === current));
    data.detailNames.forEach((name) => addRow(name, formatValue(fields[name])));
    for (const mark of data.marks) if (mark.row === cell.row && mark.col === cell.col) addRow("mark", mark.label);
    const parts = [
      h("div", { className: "nm-tip-title", text: data.template ? fillTemplate(data.template, fields) : defaultTitle }),
      h("table", {}, rows),
    ];
    if (data.tokenIds) {
      const k = data.tokenIds.shape[2];
      const tokenRows = [];
      for (let i = 0; i < k; i++) {
        const id = data.tokenIds.data[flat * k + i];
        if (id < 0) continue; // padding for cells with fewer than k tokens
        const prob = data.tokenProbs ? formatValue(data.tokenProbs.data[flat * k + i]) : "";
        tokenRows.push(h("tr", {}, [
          h("td", { className: "nm-token", text: tokenLabel(data.vocab[id] ?? `#${id}`) }),
          h("td", { className: "nm-num", text: prob }),
        ]));
      }
      if (tokenRows.length) parts.push(h("div", { className: "nm-tip-title", text: `top ${tokenRows.length} tokens` }), h("table", { className: "nm-topk" }, tokenRows));
    }
    return parts;
  }

  function setSelected(cell) {
    model.set("selected", cell ? [cell.row, cell.col] : []);
    model.save_changes();
  }

  function onMove(event) {
    const cell = cellAt(event);
    if (!cell) return onLeave();
    if (!hover || hover.row !== cell.row || hover.col !== cell.col) {
      hover = cell;
      tooltip.replaceChildren(...tooltipContent(cell));
      drawOverlay();
    }
    placeTooltip(tooltip, root, event.clientX, event.clientY);
  }

  function onLeave() {
    hover = null;
    tooltip.style.display = "none";
    drawOverlay();
  }

  // A choice is an event for the kernel (it may start work, e.g. apply a brain-scan config);
  // selection is state. Arrow keys move the selection only: Enter chooses it.
  function choose(cell) {
    model.send({ event: "choose", row: cell.row, col: cell.col });
  }

  function onClick(event) {
    const cell = cellAt(event);
    if (!cell) return;
    const selected = selectedCell();
    const same = selected && selected.row === cell.row && selected.col === cell.col;
    setSelected(same ? null : cell);
    if (!same) choose(cell);
  }

  const ARROWS = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  function onKey(event) {
    if (event.key === "Escape") return setSelected(null);
    if (event.key === "Enter") {
      const selected = selectedCell();
      if (selected) choose(selected);
      return;
    }
    const move = ARROWS[event.key];
    if (!move) return;
    event.preventDefault();
    const current = selectedCell() || { row: 0, col: 0 };
    setSelected({
      row: Math.max(0, Math.min(data.nRows - 1, current.row + move[0])),
      col: Math.max(0, Math.min(data.nCols - 1, current.col + move[1])),
    });
  }

  overlay.addEventListener("mousemove", onMove);
  overlay.addEventListener("mouseleave", onLeave);
  overlay.addEventListener("click", onClick);
  overlay.addEventListener("keydown", onKey);

  const dataTraits = ["values", "metrics", "row_labels", "col_labels", "row_title", "col_title", "title", "marks",
    "detail_names", "detail_values", "detail_token_ids", "detail_probs", "detail_vocab", "tooltip_template"];
  const redraw = () => draw();
  for (const name of dataTraits) model.on(`change:${name}`, rebuild);
  model.on("change:metric", redraw);
  model.on("change:selected", drawOverlay);
  const stopResize = onResize(root, (width) => {
    if (width !== layout.available) draw();
  });
  const stopTheme = onThemeChange(redraw);

  rebuild();

  return () => {
    for (const name of dataTraits) model.off(`change:${name}`, rebuild);
    model.off("change:metric", redraw);
    model.off("change:selected", drawOverlay);
    stopResize();
    stopTheme();
  };
}

export default { render };
