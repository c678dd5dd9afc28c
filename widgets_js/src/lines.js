// LinesWidget front end: a few series over the same x values (layers), one canvas; hovering a column
// shows every series' exact value there, clicking selects that x and syncs it back.
import { decodeArray } from "./arrays.js";
import { categoricalColor } from "./colors.js";
import {
  availableWidth, createRoot, download, h, onResize, onThemeChange, placeTooltip, pointerPosition, sizeCanvas, svgToPng,
  themeColors,
} from "./dom.js";
import { escapeXml, formatNumber, formatValue } from "./format.js";

const HEIGHT = 260;
const MAX_WIDTH = 720;
const MARGIN = { left: 62, right: 12, top: 10, bottom: 34 }; // room on the left for the ticks and the y title

/** Everything the drawing needs, decoded once per data change. */
export function readLines(model) {
  const values = decodeArray(model.get("values"));
  const [nSeries, nX] = values.shape;
  return {
    values,
    nSeries,
    nX,
    names: model.get("series") || [],
    xLabels: model.get("x_labels") || [],
    xTitle: model.get("x_title") || "",
    yTitle: model.get("y_title") || "",
    yRange: model.get("y_range") || [],
    dashed: model.get("dashed") || [],
    title: model.get("title") || "",
  };
}

/** [lo, hi] of the y axis: the given range, else the finite values' range with 5% headroom. */
export function yLimits(data) {
  if (data.yRange.length === 2) return data.yRange;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data.values.data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return [0, 1];
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.05;
  return [lo - pad, hi + pad];
}

/** The x index whose column is nearest to a horizontal pixel position. */
export function columnAt(x, width, nX) {
  const inner = width - MARGIN.left - MARGIN.right;
  const k = Math.round(((x - MARGIN.left) / inner) * Math.max(1, nX - 1));
  return Math.max(0, Math.min(nX - 1, k));
}

/** The chart as SVG (same layout as the canvas): a polyline per unbroken run of each series, ticks, titles. */
export function linesSvg(data, width, { fg = "#1f1f1f", muted = "#5f6368", bg = "#ffffff" } = {}) {
  const [lo, hi] = yLimits(data);
  const xOf = (k) => MARGIN.left + ((width - MARGIN.left - MARGIN.right) * k) / Math.max(1, data.nX - 1);
  const yOf = (v) => MARGIN.top + (HEIGHT - MARGIN.top - MARGIN.bottom) * (1 - (v - lo) / (hi - lo || 1));
  const top = 20;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${HEIGHT + top}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="${bg}"/>`,
    `<text x="4" y="13" fill="${fg}">${escapeXml(data.title)}</text>`,
    `<g transform="translate(0 ${top})">`,
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${width - MARGIN.left - MARGIN.right}" height="${HEIGHT - MARGIN.top - MARGIN.bottom}" fill="none" stroke="${muted}" stroke-opacity="0.5"/>`,
  ];
  for (let t = 0; t <= 4; t++) {
    const v = lo + ((hi - lo) * t) / 4;
    out.push(`<text x="${MARGIN.left - 4}" y="${(yOf(v) + 4).toFixed(1)}" text-anchor="end" fill="${muted}">${formatNumber(v, ".3g")}</text>`);
  }
  for (let k = 0; k < data.nX; k++) {
    out.push(`<text x="${xOf(k).toFixed(1)}" y="${HEIGHT - MARGIN.bottom + 14}" text-anchor="middle" fill="${muted}">${escapeXml(String(data.xLabels[k] ?? k))}</text>`);
  }
  out.push(`<text x="${(MARGIN.left + width - MARGIN.right) / 2}" y="${HEIGHT - 4}" text-anchor="middle" fill="${fg}">${escapeXml(data.xTitle)}</text>`);
  out.push(`<text transform="translate(12 ${(MARGIN.top + HEIGHT - MARGIN.bottom) / 2}) rotate(-90)" text-anchor="middle" fill="${fg}">${escapeXml(data.yTitle)}</text>`);
  for (let s = 0; s < data.nSeries; s++) {
    const colour = `rgb(${categoricalColor(s).join(",")})`;
    let run = [];
    const flush = () => {
      if (run.length) out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2"${data.dashed[s] ? ' stroke-dasharray="5 4"' : ""} points="${run.join(" ")}"><title>${escapeXml(data.names[s] ?? "")}</title></polyline>`);
      run = [];
    };
    for (let k = 0; k < data.nX; k++) {
      const v = data.values.data[s * data.nX + k];
      if (Number.isFinite(v)) run.push(`${xOf(k).toFixed(1)},${yOf(v).toFixed(1)}`);
      else flush();
    }
    flush();
  }
  data.names.forEach((name, s) => {
    out.push(`<text x="${MARGIN.left + 110 * s}" y="${HEIGHT + 14}" fill="rgb(${categoricalColor(s).join(",")})">${escapeXml(name)}</text>`);
  });
  out.push("</g></svg>");
  return out.join("");
}

function render({ model, el }) {
  const root = createRoot(el, "lines");
  const titleEl = h("div", { className: "nm-title" });
  const canvas = h("canvas", { className: "nm-chart" });
  const legend = h("div", { className: "nm-legend" });
  const tooltip = h("div", { className: "nm-tooltip" });
  const svgButton = h("button", { type: "button", text: "SVG", className: "nm-export-svg", title: "download this chart as SVG" });
  const pngButton = h("button", { type: "button", text: "PNG", className: "nm-export-png", title: "download this chart as PNG" });
  const toolbar = h("div", { className: "nm-toolbar" }, [svgButton, pngButton]);
  root.append(titleEl, toolbar, h("div", { className: "nm-stack" }, [canvas]), legend, tooltip);
  let data = null;
  let width = 0;
  let hover = -1;

  const xOf = (k) => MARGIN.left + ((width - MARGIN.left - MARGIN.right) * k) / Math.max(1, data.nX - 1);

  function rebuild() {
    data = readLines(model);
    titleEl.textContent = data.title;
    legend.replaceChildren(...data.names.map((name, s) => {
      const [r, g, b] = categoricalColor(s);
      return h("span", { className: "nm-mark-key" }, [
        h("i", { style: { background: `rgb(${r}, ${g}, ${b})`, border: "none" } }), name,
      ]);
    }));
    draw();
  }

  function draw() {
    width = Math.min(MAX_WIDTH, availableWidth(root));
    const ctx = sizeCanvas(canvas, width, HEIGHT);
    const colors = themeColors(root);
    const [lo, hi] = yLimits(data);
    const yOf = (v) => MARGIN.top + (HEIGHT - MARGIN.top - MARGIN.bottom) * (1 - (v - lo) / (hi - lo || 1));
    ctx.font = colors.font;
    ctx.strokeStyle = colors.border;
    ctx.strokeRect(MARGIN.left, MARGIN.top, width - MARGIN.left - MARGIN.right, HEIGHT - MARGIN.top - MARGIN.bottom);
    ctx.fillStyle = colors.muted;
    for (let t = 0; t <= 4; t++) {
      const v = lo + ((hi - lo) * t) / 4;
      ctx.fillText(formatNumber(v, ".3g"), 4, yOf(v) + 4);
    }
    const every = Math.max(1, Math.ceil((data.nX * 28) / Math.max(1, width - MARGIN.left - MARGIN.right)));
    for (let k = 0; k < data.nX; k += every) ctx.fillText(String(data.xLabels[k] ?? k), xOf(k) - 6, HEIGHT - MARGIN.bottom + 14);
    ctx.fillStyle = colors.fg;
    ctx.textAlign = "center";
    ctx.fillText(data.xTitle, (MARGIN.left + width - MARGIN.right) / 2, HEIGHT - 4);
    ctx.save();
    ctx.translate(12, (MARGIN.top + HEIGHT - MARGIN.bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(data.yTitle, 0, 0);
    ctx.restore();
    ctx.textAlign = "left";
    if (hover >= 0) {
      ctx.strokeStyle = colors.muted;
      ctx.beginPath();
      ctx.moveTo(xOf(hover), MARGIN.top);
      ctx.lineTo(xOf(hover), HEIGHT - MARGIN.bottom);
      ctx.stroke();
    }
    for (let s = 0; s < data.nSeries; s++) {
      const [r, g, b] = categoricalColor(s);
      ctx.strokeStyle = ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
      ctx.setLineDash?.(data.dashed[s] ? [5, 4] : []);
      ctx.lineWidth = 2;
      ctx.beginPath();
      let drawing = false;
      for (let k = 0; k < data.nX; k++) {
        const v = data.values.data[s * data.nX + k];
        if (!Number.isFinite(v)) {
          drawing = false;
          continue;
        }
        if (drawing) ctx.lineTo(xOf(k), yOf(v));
        else ctx.moveTo(xOf(k), yOf(v));
        drawing = true;
      }
      ctx.stroke();
      ctx.setLineDash?.([]);
      for (let k = 0; k < data.nX; k++) {
        const v = data.values.data[s * data.nX + k];
        if (Number.isFinite(v)) ctx.fillRect(xOf(k) - 2, yOf(v) - 2, 4, 4);
      }
    }
    ctx.lineWidth = 1;
  }

  function tooltipContent(k) {
    const rows = data.names.map((name, s) => h("tr", {}, [
      h("td", { text: name }),
      h("td", { className: "nm-num", text: formatValue(data.values.data[s * data.nX + k]) }),
    ]));
    return [h("div", { className: "nm-tip-title", text: `${data.xTitle} ${data.xLabels[k] ?? k}` }), h("table", {}, rows)];
  }

  function svgOf() {
    const colors = themeColors(root);
    return linesSvg(data, width, colors);
  }
  const fileName = () => (data.title || "lines").replace(/[^\w.-]+/g, "_").slice(0, 60);
  svgButton.addEventListener("click", () => download(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svgOf())}`, `${fileName()}.svg`));
  pngButton.addEventListener("click", async () => download(await svgToPng(svgOf()), `${fileName()}.png`));

  canvas.addEventListener("mousemove", (event) => {
    const { x } = pointerPosition(event, canvas);
    const k = columnAt(x, width, data.nX);
    if (k !== hover) {
      hover = k;
      tooltip.replaceChildren(...tooltipContent(k));
      draw();
    }
    placeTooltip(tooltip, root, event.clientX, event.clientY);
  });
  canvas.addEventListener("mouseleave", () => {
    hover = -1;
    tooltip.style.display = "none";
    draw();
  });
  canvas.addEventListener("click", (event) => {
    model.set("selected", columnAt(pointerPosition(event, canvas).x, width, data.nX));
    model.save_changes();
  });

  const dataTraits = ["values", "series", "x_labels", "x_title", "y_title", "y_range", "dashed", "title"];
  for (const name of dataTraits) model.on(`change:${name}`, rebuild);
  const stopResize = onResize(root, (w) => {
    if (Math.min(MAX_WIDTH, w) !== width) draw();
  });
  const stopTheme = onThemeChange(() => draw());
  rebuild();
  return () => {
    for (const name of dataTraits) model.off(`change:${name}`, rebuild);
    stopResize();
    stopTheme();
  };
}

export default { render };
