// CheckupWidget front end: the findings by severity (red / amber / blue badges); a finding opens onto the
// array that shows it (a small heatmap or a bar chart, from binary buffers) and its action button,
// which asks the kernel to apply the action and diff it ("apply" message; the status line follows).
import { decodeArray } from "./arrays.js";
import { colorIndex, colorTable, cssColor, valueRange } from "./colors.js";
import { availableWidth, createRoot, exportButtons, h, sizeCanvas, themeColors } from "./dom.js";
import { formatNumber } from "./format.js";

const STYLE = `
.nm-checkup .nm-finding { border-top: 1px solid var(--nm-border); padding: 4px 0; }
.nm-checkup .nm-finding-head { display: flex; gap: 8px; align-items: baseline; cursor: pointer; border-radius: 3px; padding: 2px 4px; }
.nm-checkup .nm-finding-head:hover { background: var(--nm-panel); box-shadow: inset 0 0 0 1px var(--nm-border); }
.nm-checkup .nm-finding-head:hover .nm-finding-title { text-decoration: underline; text-underline-offset: 3px; }
.nm-checkup .nm-finding-head:focus-visible { outline: 2px solid var(--nm-accent); }
.nm-checkup .nm-chevron { flex: none; width: 1em; color: var(--nm-muted); }
.nm-checkup .nm-finding-title { flex: 1 1 auto; }
.nm-checkup .nm-severity { flex: none; width: 5.2em; text-align: center; border-radius: 3px; padding: 0 4px;
  font-size: 11px; font-weight: 600; border: 1px solid transparent; }
.nm-checkup .nm-severity-high { background: #c62828; color: #ffffff; }
.nm-checkup .nm-severity-medium { background: #f9a825; color: #1f1f1f; }
.nm-checkup .nm-severity-info { background: transparent; color: #4f8fd6; border-color: #4f8fd6; }
.nm-checkup .nm-finding-head button { margin-top: 0; flex: none; }
.nm-checkup .nm-finding-body { display: none; padding: 4px 0 4px 7.6em; }
.nm-checkup .nm-finding.nm-open .nm-finding-body { display: block; }
.nm-checkup .nm-explanation { color: var(--nm-muted); margin-bottom: 4px; }
.nm-checkup button { font: inherit; color: var(--nm-fg); background: var(--nm-panel);
  border: 1px solid var(--nm-border); border-radius: 3px; padding: 1px 8px; margin-top: 4px; cursor: pointer; }
.nm-checkup button:disabled { cursor: default; opacity: 0.6; }
.nm-checkup .nm-status { color: var(--nm-muted); margin: 4px 0; min-height: 1.2em; }
`;

const VIEW_TITLES = {
  sink_mass: "attention to the first token (layer x head)",
  entropy: "attention entropy, nats (layer x head)",
  importance: "head importance |dL/d gate| (layer x head)",
  head_cosine: "cosine between heads' outputs in this layer (head x head)",
  resid_max: "max |h| in this dim per layer (log10), and 1000x the layer's median (line)",
  neuron_max: "max |activation| of each neuron in this layer (log10)",
  resid_norm: "mean residual norm per layer (first token left out)",
  block_influence: "Block Influence 1 - cos(x_in, x_out) per layer",
  lens_agreement: "logit lens top-1 agreement with the output per layer",
  alpha: "power-law alpha per block (rows) and matrix (columns)",
};

/** The array a finding's view draws, as {kind: "grid"|"bars", values, rows, cols, mark, log, line}. */
export function viewData(finding, arrays, matrixNames = []) {
  const array = arrays[finding.view];
  if (!array) return null;
  const { data, shape } = array;
  if (finding.view === "head_cosine") {
    const [, n] = shape;
    const start = (finding.layer ?? 0) * n * n;
    return { kind: "grid", values: data.subarray(start, start + n * n), rows: n, cols: n,
      mark: { row: finding.head, col: null } };
  }
  if (finding.view === "resid_max") {
    const [layers, width] = shape;
    const values = Float32Array.from({ length: layers }, (_, l) => Math.log10(Math.max(data[l * width + finding.dim], 1e-30)));
    const median = arrays.resid_median?.data;
    const line = median ? Float32Array.from(median, (m) => Math.log10(Math.max(1000 * m, 100))) : null;
    return { kind: "bars", values, mark: finding.layer, line };
  }
  if (finding.view === "neuron_max") {
    const [, width] = shape;
    const row = data.subarray(finding.layer * width, (finding.layer + 1) * width);
    return { kind: "bars", values: Float32Array.from(row, (v) => Math.log10(Math.max(v, 1e-12))), mark: finding.dim };
  }
  if (shape.length === 2) {
    return { kind: "grid", values: data, rows: shape[0], cols: shape[1],
      mark: { row: finding.layer, col: finding.head }, colLabels: finding.view === "alpha" ? matrixNames : null };
  }
  return { kind: "bars", values: data, mark: finding.layer };
}

function drawGrid(canvas, view, root) {
  const theme = themeColors(root);
  const cell = Math.max(6, Math.min(22, Math.floor(Math.min(560, availableWidth(root) - 40) / view.cols)));
  const left = 28;
  const top = 4;
  const width = left + cell * view.cols + 4;
  const height = top + cell * view.rows + 16;
  const ctx = sizeCanvas(canvas, width, height);
  const table = colorTable("sequential");
  const { lo, hi } = valueRange(view.values, {});
  for (let r = 0; r < view.rows; r++) {
    for (let c = 0; c < view.cols; c++) {
      const v = view.values[r * view.cols + c];
      ctx.fillStyle = Number.isFinite(v) ? cssColor(table, colorIndex(v, lo, hi)) : theme.bg;
      ctx.fillRect(left + c * cell, top + r * cell, cell, cell);
    }
  }
  ctx.strokeStyle = theme.fg;
  ctx.lineWidth = 2;
  const { row, col } = view.mark || {};
  if (row != null && col != null) ctx.strokeRect(left + col * cell, top + row * cell, cell, cell);
  else if (row != null) ctx.strokeRect(left, top + row * cell, cell * view.cols, cell);
  ctx.fillStyle = theme.muted;
  ctx.font = theme.font;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const step = Math.max(1, Math.ceil(12 / cell));
  for (let r = 0; r < view.rows; r += step) ctx.fillText(String(r), left - 3, top + (r + 0.5) * cell);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let c = 0; c < view.cols; c += step) ctx.fillText(String(c), left + (c + 0.5) * cell, top + view.rows * cell + 2);
  return { lo, hi };
}

function drawBars(canvas, view, root) {
  const theme = themeColors(root);
  const n = view.values.length;
  const width = Math.min(640, availableWidth(root) - 40);
  const height = 120;
  const ctx = sizeCanvas(canvas, width, height);
  let { lo, hi } = valueRange(view.values, {});
  if (view.line) {
    const range = valueRange(view.line, {});
    lo = Math.min(lo, range.lo);
    hi = Math.max(hi, range.hi);
  }
  lo = Math.min(lo, 0);
  const scale = (v) => height - 14 - ((v - lo) / (hi - lo || 1)) * (height - 20);
  const bar = (width - 8) / n;
  for (let k = 0; k < n; k++) {
    const v = view.values[k];
    if (!Number.isFinite(v)) continue;
    ctx.fillStyle = k === view.mark ? theme.fg : theme.muted;
    const y = scale(v);
    ctx.fillRect(4 + k * bar, Math.min(y, scale(0)), Math.max(1, bar - 1), Math.abs(scale(0) - y));
  }
  if (view.line) {
    ctx.strokeStyle = theme.accent;
    ctx.beginPath();
    view.line.forEach((v, k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, 4 + (k + 0.5) * bar, scale(v)));
    ctx.stroke();
  }
  ctx.fillStyle = theme.muted;
  ctx.font = theme.font;
  ctx.textBaseline = "bottom";
  ctx.fillText(`0 … ${n - 1}`, 4, height);
  ctx.textAlign = "right";
  ctx.fillText(`${formatNumber(lo, ".3g")} … ${formatNumber(hi, ".3g")}`, width - 4, height);
  return { lo, hi };
}

function render({ model, el }) {
  const root = createRoot(el, "checkup");
  root.append(h("style", { text: STYLE }));
  const titleEl = h("div", { className: "nm-title" });
  const summary = h("div", { className: "nm-readout" });
  const status = h("div", { className: "nm-status" });
  const list = h("div", { className: "nm-findings" });
  root.append(exportButtons(root, () => "checkup"), titleEl, summary, status, list);
  const open = new Set();

  function arrays() {
    const decoded = {};
    for (const [name, payload] of Object.entries(model.get("arrays") || {})) decoded[name] = decodeArray(payload);
    return decoded;
  }

  function rebuild() {
    const findings = model.get("findings") || [];
    const data = arrays();
    const enabled = model.get("actions_enabled");
    titleEl.textContent = model.get("title") || "Checkup";
    const counts = { high: 0, medium: 0, info: 0 };
    for (const f of findings) counts[f.severity] = (counts[f.severity] || 0) + 1;
    summary.textContent = `${counts.high} high · ${counts.medium} medium · ${counts.info} info`;
    list.replaceChildren(...findings.map((finding, index) => {
      const item = h("div", { className: `nm-finding${open.has(index) ? " nm-open" : ""}`, "data-index": String(index) });
      const head = h("div", { className: "nm-finding-head", role: "button", tabindex: "0", "aria-expanded": String(open.has(index)),
        title: "show what it is and the view that shows it" }, [
        h("span", { className: "nm-chevron", text: open.has(index) ? "▾" : "▸" }),
        h("span", { className: `nm-severity nm-severity-${finding.severity}`, text: finding.severity }),
        h("span", { className: "nm-finding-title", text: finding.title }),
      ]);
      const body = h("div", { className: "nm-finding-body" }, [
        h("div", { className: "nm-explanation", text: finding.explanation }),
      ]);
      const drawn = { done: false };
      const draw = () => {
        if (drawn.done) return;
        const view = viewData(finding, data, model.get("matrix_names") || []);
        if (!view) return;
        drawn.done = true;
        const canvas = h("canvas", { className: "nm-chart" });
        const caption = h("div", { className: "nm-readout" });
        body.insertBefore(h("div", {}, [caption, canvas]), body.children[1] || null);
        const { lo, hi } = view.kind === "grid" ? drawGrid(canvas, view, root) : drawBars(canvas, view, root);
        caption.textContent = `${VIEW_TITLES[finding.view] || finding.view} · ${formatNumber(lo, ".3g")} to ${formatNumber(hi, ".3g")}`;
      };
      if (finding.action) {
        const button = h("button", { className: "nm-action", text: actionLabel(finding.action) });
        if (!enabled) {
          button.disabled = true;
          button.title = "actions run in a live notebook; this is a static copy";
        }
        button.addEventListener("click", (event) => {
          event.stopPropagation(); // the action, not a toggle of the row
          status.textContent = `${finding.title}: ${actionLabel(finding.action)}: queued, the kernel runs it when it is free...`;
          model.send({ type: "apply", index });
        });
        button.addEventListener("keydown", (event) => event.stopPropagation());
        head.append(button); // one click away, without opening the row
      }
      const toggle = () => {
        if (open.has(index)) open.delete(index);
        else open.add(index);
        item.classList.toggle("nm-open", open.has(index));
        head.setAttribute("aria-expanded", String(open.has(index)));
        head.querySelector(".nm-chevron").textContent = open.has(index) ? "▾" : "▸";
        if (open.has(index)) draw();
      };
      head.addEventListener("click", toggle);
      head.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          toggle();
        }
      });
      item.append(head, body);
      if (open.has(index)) queueMicrotask(draw);
      return item;
    }));
    status.textContent = model.get("status") || "";
  }

  const showStatus = () => {
    status.textContent = model.get("status") || "";
  };
  rebuild();
  model.on("change:findings", rebuild);
  model.on("change:arrays", rebuild);
  model.on("change:status", showStatus);
  return () => {
    model.off("change:findings", rebuild);
    model.off("change:arrays", rebuild);
    model.off("change:status", showStatus);
  };
}

/** What the button says it will do. */
export function actionLabel(action) {
  if (action.kind === "massive") return `set to their ${action.mode} and diff`;
  if (action.kind === "ablate_heads") return "ablate this head and diff";
  if (action.kind === "ablate_neurons") return "ablate these neurons and diff";
  return "apply and diff";
}

export default { render };
