// AttributionWidget front end: the prompt's tokens shaded by how much each one made the model say
// its target (diverging scale centred at 0; near-zero tokens stay unshaded, so the page's own
// background shows in either theme), a method switch, the source x generated-token matrix, and the
// direct-logit-attribution layer x head map. Hovering a generated token paints its sources; clicking
// a head paints what that head moved from each source. Every view exports as SVG or PNG.
import { decodeArray } from "./arrays.js";
import { colorIndex, colorTable, cssColor } from "./colors.js";
import { createRoot, download, h, onThemeChange, placeTooltip, svgToPng, themeColors, tokenSpan } from "./dom.js";
import { escapeXml, formatNumber, formatValue, tokenLabel, truncate } from "./format.js";

const VIEWS = { tokens: "tokens", matrix: "matrix", dla: "DLA heads" };
const METHOD_LABELS = {
  ig: "integrated gradients",
  saliency: "saliency (|grad|)",
  input_x_grad: "input x gradient",
  occlusion: "occlusion",
  rollout: "attention rollout",
};
/** Methods whose scores are never negative: drawn on a sequential scale from 0, not around 0. */
const UNSIGNED_METHODS = new Set(["saliency", "rollout"]);
export const isSigned = (method) => !UNSIGNED_METHODS.has(method);
/** Shares of the colour range below which a token is left unshaded. */
const FAINT = 0.04;
const CHAR_WIDTH = 7.4; // monospace 12px, for laying out exported token text
const CELL = 30; // room for a two-digit number in each cell

const ATTR_STYLES = `
.nm-attr-text { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.9; margin: 4px 0;
  font-family: var(--jp-code-font-family, var(--vscode-editor-font-family, ui-monospace, Menlo, Consolas, monospace)); }
.nm-attr-token { border-radius: 2px; padding: 1px 0; }
.nm-attr-generated { text-decoration: underline dotted var(--nm-muted); text-underline-offset: 4px; cursor: pointer; }
.nm-attr-target { outline: 2px solid var(--nm-accent); outline-offset: 1px; }
.nm-attr-later { opacity: 0.35; }
.nm-attr-arrow { color: var(--nm-muted); }
.nm-attr-views button.nm-active { border-color: var(--nm-accent); color: var(--nm-accent); }
.nm-attr-svg { overflow: auto; max-width: 100%; }
.nm-attr-svg svg { display: block; }
.nm-attr-svg [data-cell] { cursor: pointer; }
`;

/** Everything the views need, decoded once per data change. */
export function readAttribution(model) {
  const scores = decodeArray(model.get("scores"));
  return {
    title: model.get("title") || "",
    explained: model.get("explained") || "",
    foil: model.get("foil") ?? null,
    tokens: model.get("tokens") || [],
    nPrompt: model.get("n_prompt"),
    targets: model.get("targets") || [],
    positions: model.get("target_positions") || [],
    methods: model.get("methods") || [],
    scores,
    nSources: scores ? scores.shape[2] : 0,
    heads: decodeArray(model.get("dla_heads")),
    attn: decodeArray(model.get("dla_attn")),
    mlp: decodeArray(model.get("dla_mlp")),
    sources: decodeArray(model.get("dla_sources")),
    summary: model.get("dla_summary") || {},
    rowLabels: model.get("row_labels") || [],
  };
}

/** The scores of one method and target row: a view into the [methods, targets, sources] array. */
export function rowOf(data, method, row) {
  const m = Math.max(0, data.methods.indexOf(method));
  const start = (m * data.targets.length + row) * data.nSources;
  return data.scores.data.subarray(start, start + data.nSources);
}

/** Largest |value| (finite) of an array; 1 when there is none, so the scale never divides by 0. */
export function absMax(values) {
  let max = 0;
  for (const v of values) if (Number.isFinite(v) && Math.abs(v) > max) max = Math.abs(v);
  return max || 1;
}

/**
 * Background and text colour of a value: on the diverging scale centred at 0 over [-limit, limit]
 * when `signed`, else on the magnitude scale over [0, limit]. Near-zero values stay unshaded.
 */
export function shade(value, limit, table = colorTable("diverging"), signed = true) {
  if (!Number.isFinite(value) || Math.abs(value) < FAINT * limit) return null;
  const index = colorIndex(value, signed ? -limit : 0, limit);
  const [r, g, b] = [table[index * 3], table[index * 3 + 1], table[index * 3 + 2]];
  return { background: cssColor(table, index), color: 0.299 * r + 0.587 * g + 0.114 * b < 150 ? "#ffffff" : "#111111" };
}


/** A cell's number, short enough for a 30-px cell: two significant digits ("0.12", "-3.4", "1.2k"). */
export function cellNumber(value) {
  if (!Number.isFinite(value)) return "";
  const size = Math.abs(value);
  if (size >= 999.5) return `${Number((value / 1000).toPrecision(2))}k`;
  if (size < 0.005) return "0";
  return String(Number(value.toPrecision(2))).replace(/^(-?)0\./, "$1.");
}

/**
 * A self-contained SVG of a labelled grid (the matrix and the DLA map), with explicit theme colours,
 * each cell's number written in it (in black or white by the cell's colour).
 */
export function gridSvg({ title, rows, cols, value, limit, colors, note = "", signed = true }) {
  const table = colorTable(signed ? "diverging" : "magnitude", colors.bg);
  const left = 12 + CHAR_WIDTH * Math.min(18, Math.max(4, ...rows.map((r) => r.length)));
  const top = 34 + CHAR_WIDTH * Math.min(14, Math.max(3, ...cols.map((c) => c.length))) * 0.75;
  const width = Math.max(left + cols.length * CELL + 16, 16 + title.length * 7, 16 + note.length * 6.2);
  const height = top + rows.length * CELL + (note ? 26 : 12);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
    `<rect width="100%" height="100%" fill="${colors.bg}"/>`,
    `<text x="8" y="16" fill="${colors.fg}" font-weight="600" font-family="sans-serif" font-size="12">${escapeXml(title)}</text>`,
  ];
  cols.forEach((label, c) => {
    const x = left + c * CELL + CELL / 2 + 3;
    parts.push(`<text transform="translate(${x},${top - 4}) rotate(-55)" fill="${colors.muted}">${escapeXml(truncate(label, 14))}</text>`);
  });
  rows.forEach((label, r) => {
    const y = top + r * CELL + CELL / 2 + 4;
    parts.push(`<text x="${left - 6}" y="${y}" text-anchor="end" fill="${colors.muted}">${escapeXml(truncate(label, 18))}</text>`);
    cols.forEach((_, c) => {
      const v = value(r, c);
      if (v === null) return; // a cell that cannot matter (a later position): left empty
      const index = Number.isFinite(v) ? colorIndex(v, signed ? -limit : 0, limit) : signed ? 127 : 0;
      parts.push(`<rect data-cell="${r},${c}" x="${left + c * CELL}" y="${top + r * CELL}" width="${CELL - 1}" height="${CELL - 1}" fill="${cssColor(table, index)}"><title>${escapeXml(`${label} · ${cols[c]}: ${signed && v > 0 ? "+" : ""}${formatValue(v)}`)}</title></rect>`);
      const ink = 0.299 * table[index * 3] + 0.587 * table[index * 3 + 1] + 0.114 * table[index * 3 + 2] < 150 ? "#ffffff" : "#111111";
      parts.push(`<text x="${left + c * CELL + (CELL - 1) / 2}" y="${top + r * CELL + CELL / 2 + 3}" text-anchor="middle" font-size="9" fill="${ink}" pointer-events="none">${escapeXml(cellNumber(v))}</text>`);
    });
  });
  if (note) parts.push(`<text x="8" y="${height - 8}" fill="${colors.muted}" font-family="sans-serif">${escapeXml(note)}</text>`);
  parts.push("</svg>");
  return parts.join("");
}

/** A self-contained SVG of the shaded token text (what the tokens view shows), wrapped at `width`. */
export function tokensSvg({ title, pieces, colors, width = 760 }) {
  const parts = [];
  let x = 8;
  let y = 44;
  for (const piece of pieces) {
    const text = piece.text.replace(/\r?\n/g, "") || (piece.newline ? "⏎" : "");
    const w = Math.max(4, text.length * CHAR_WIDTH);
    if (x + w > width - 8 && x > 8) {
      x = 8;
      y += 24;
    }
    if (piece.style) parts.push(`<rect x="${x}" y="${y - 14}" width="${w}" height="19" rx="2" fill="${piece.style.background}"/>`);
    if (piece.target) parts.push(`<rect x="${x - 1}" y="${y - 15}" width="${w + 2}" height="21" fill="none" stroke="${colors.accent}" stroke-width="2"/>`);
    const fill = piece.style ? piece.style.color : colors.fg;
    parts.push(`<text x="${x}" y="${y}" fill="${fill}" xml:space="preserve"${piece.later ? ' opacity="0.35"' : ""}>${escapeXml(text)}</text>`);
    x += w;
    if (piece.newline) {
      x = 8;
      y += 24;
    }
  }
  const height = y + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="12">`,
    `<rect width="100%" height="100%" fill="${colors.bg}"/>`,
    `<text x="8" y="18" fill="${colors.fg}" font-weight="600" font-family="sans-serif">${escapeXml(title)}</text>`,
    ...parts,
    "</svg>",
  ].join("");
}

function render({ model, el }) {
  const root = createRoot(el, "attribution");
  root.append(h("style", { text: ATTR_STYLES }));
  const toolbar = h("div", { className: "nm-toolbar" });
  const readout = h("div", { className: "nm-readout" });
  const body = h("div", { className: "nm-attr-body" });
  const legend = h("div", { className: "nm-legend" });
  const tooltip = h("div", { className: "nm-tooltip" });
  root.append(toolbar, readout, body, legend, tooltip);
  let data = readAttribution(model);

  const method = () => (data.methods.includes(model.get("method")) ? model.get("method") : data.methods[0]);
  const row = () => Math.min(Math.max(0, model.get("target_index") || 0), Math.max(0, data.targets.length - 1));
  const head = () => {
    const chosen = model.get("selected_head") || [];
    return chosen.length === 2 && data.sources ? chosen : null;
  };
  const save = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };

  /** What the tokens view paints: the method's row, or the chosen head's per-source DLA. */
  function paintedValues() {
    const chosen = head();
    if (chosen) {
      const [k, hd] = chosen;
      const n = data.sources.shape[2];
      const start = (k * data.sources.shape[1] + hd) * n;
      return { values: data.sources.data.subarray(start, start + n), limit: absMax(data.sources.data), signed: true,
        label: `what head ${data.rowLabels[k]}.${hd} wrote to the logit difference, by source (DLA)` };
    }
    const m = method();
    let all = [];
    for (let r = 0; r < data.targets.length; r++) all = all.concat(Array.from(rowOf(data, m, r)));
    return { values: rowOf(data, m, row()), limit: absMax(all), signed: isSigned(m), label: METHOD_LABELS[m] || m };
  }

  function tokenPieces() {
    const { values, limit, signed } = paintedValues();
    const table = colorTable(signed ? "diverging" : "magnitude", themeColors(root).bg);
    const target = data.positions[row()];
    const generated = data.tokens.length > data.nPrompt;
    const pieces = data.tokens.map((token, i) => ({
      text: String(token),
      newline: /\n/.test(token),
      index: i,
      value: i < values.length ? values[i] : NaN,
      style: i < values.length && !(head() === null && i > target) ? shade(values[i], limit, table, signed) : null,
      later: i > target + (generated ? 1 : 0),
      generated: i >= data.nPrompt,
      target: generated && i === target + 1,
    }));
    if (!generated) pieces.push({ text: `→ ${tokenLabel(data.targets[0] ?? "")}`, index: -1, arrow: true, target: true, style: null });
    return pieces;
  }

  function drawTokens() {
    const text = h("div", { className: "nm-attr-text" });
    for (const piece of tokenPieces()) {
      if (piece.arrow) {
        text.append(" ", h("span", { className: "nm-attr-token nm-attr-target nm-attr-arrow", text: piece.text }));
        continue;
      }
      const classes = ["nm-attr-token"];
      if (piece.generated) classes.push("nm-attr-generated");
      if (piece.target) classes.push("nm-attr-target");
      if (piece.later) classes.push("nm-attr-later");
      const span = tokenSpan(piece.text, { running: true, className: classes.join(" ") });
      span.setAttribute("data-index", String(piece.index));
      if (piece.style) Object.assign(span.style, piece.style);
      if (Number.isFinite(piece.value)) span.title = `${JSON.stringify(data.tokens[piece.index])}: ${formatValue(piece.value)}`;
      if (piece.generated) {
        // generated token k is target k: hovering it paints the sources it was predicted from
        span.addEventListener("mouseenter", () => {
          const k = piece.index - data.nPrompt;
          if (k !== row()) save("target_index", k);
        });
      }
      text.append(span);
    }
    body.append(text);
  }

  function matrixSvg(colors) {
    const m = method();
    const limit = absMax(Array.from({ length: data.targets.length }, (_, r) => Array.from(rowOf(data, m, r))).flat());
    return gridSvg({
      title: `${METHOD_LABELS[m] || m}: sources x targets`,
      rows: data.targets.map((t) => tokenLabel(t)),
      cols: data.tokens.slice(0, data.nSources).map((t) => tokenLabel(t)),
      value: (r, c) => (c > data.positions[r] ? null : rowOf(data, m, r)[c]),
      limit,
      colors,
      signed: isSigned(m),
      note: isSigned(m)
        ? `colour: ${formatNumber(-limit, "+.3g")} (blue) … 0 … ${formatNumber(limit, "+.3g")} (red)`
        : `colour: 0 (pale) … ${formatNumber(limit, ".3g")} (dark); this method is never negative`,
    });
  }

  function dlaSvg(colors) {
    const s = data.summary;
    const steps = data.rowLabels;
    const nHeads = data.heads ? data.heads.shape[1] : 0;
    const cols = [...Array.from({ length: nHeads }, (_, k) => `h${k}`), ...(nHeads ? [] : ["attn"]), "MLP"];
    const value = (r, c) => {
      if (c < nHeads) return data.heads.data[r * nHeads + c];
      if (!nHeads && c === 0) return data.attn.data[r];
      return data.mlp.data[r];
    };
    let limit = 0;
    for (let r = 0; r < steps.length; r++) for (let c = 0; c < cols.length; c++) limit = Math.max(limit, Math.abs(value(r, c)) || 0);
    return gridSvg({
      title: `direct logit attribution of ${data.explained}`,
      signed: true,
      rows: steps.map((label) => `L${label}`),
      cols,
      value,
      limit: limit || 1,
      colors,
      note: `embed ${formatNumber(s.embed, "+.3f")} · bias ${formatNumber(s.bias, "+.3f")}${s.other ? ` · other ${formatNumber(s.other, "+.3f")}` : ""} · total ${formatNumber(s.total, "+.3f")}`,
    });
  }

  function drawGrid(svg, onCell) {
    const holder = h("div", { className: "nm-attr-svg" });
    holder.innerHTML = svg;
    holder.addEventListener("click", (event) => {
      const cell = event.target.closest?.("[data-cell]");
      if (cell) onCell(...cell.getAttribute("data-cell").split(",").map(Number));
    });
    holder.addEventListener("mousemove", (event) => {
      const cell = event.target.closest?.("[data-cell]");
      if (!cell) {
        tooltip.style.display = "none";
        return;
      }
      tooltip.textContent = cell.querySelector("title")?.textContent || "";
      placeTooltip(tooltip, root, event.clientX, event.clientY);
    });
    holder.addEventListener("mouseleave", () => { tooltip.style.display = "none"; });
    body.append(holder);
  }

  function currentSvg() {
    const colors = themeColors(root);
    const view = model.get("view");
    if (view === "matrix") return matrixSvg(colors);
    if (view === "dla") return dlaSvg(colors);
    return tokensSvg({ title: `${data.title} · ${paintedValues().label}`, pieces: tokenPieces(), colors });
  }

  function drawToolbar() {
    const select = h("select", { "aria-label": "method" }, data.methods.map((m) => {
      const option = h("option", { value: m, text: METHOD_LABELS[m] || m });
      if (m === method()) option.selected = true;
      return option;
    }));
    select.addEventListener("change", () => {
      save("selected_head", []);
      save("method", select.value);
    });
    const views = h("span", { className: "nm-attr-views" }, Object.entries(VIEWS)
      .filter(([name]) => name !== "dla" || data.mlp)
      .map(([name, label]) => {
        const button = h("button", { type: "button", text: label, "data-view": name, className: model.get("view") === name ? "nm-active" : "" });
        button.addEventListener("click", () => save("view", name));
        return button;
      }));
    const svgButton = h("button", { type: "button", text: "SVG", title: "download this view as SVG" });
    svgButton.addEventListener("click", () => {
      download(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(currentSvg())}`, `attribution-${model.get("view")}.svg`);
    });
    const pngButton = h("button", { type: "button", text: "PNG", title: "download this view as PNG" });
    pngButton.addEventListener("click", async () => {
      download(await svgToPng(currentSvg()), `attribution-${model.get("view")}.png`);
    });
    toolbar.replaceChildren(
      h("span", { className: "nm-title", text: data.title }),
      h("label", {}, ["method", select]),
      views,
      h("span", {}, [svgButton, " ", pngButton]),
    );
  }

  function draw() {
    tooltip.style.display = "none"; // the cell it described may be gone
    drawToolbar();
    body.replaceChildren();
    legend.replaceChildren();
    if (!data.scores || !data.targets.length) {
      body.append(h("div", { className: "nm-empty", text: "Nothing was attributed." }));
      return;
    }
    const view = model.get("view");
    const r = row();
    const contrast = data.foil !== null && data.targets.length === 1 ? ` over ${tokenLabel(data.foil)}` : "";
    const target = `${tokenLabel(data.targets[r])}${contrast}${data.targets.length > 1 ? ` (generated token ${r + 1} of ${data.targets.length})` : ""}`;
    if (view === "matrix") {
      readout.textContent = `${data.explained} · rows: generated tokens, columns: sources; click a row to show it as text`;
      drawGrid(matrixSvg(themeColors(root)), (rr) => {
        save("target_index", rr);
        save("view", "tokens");
      });
    } else if (view === "dla") {
      const chosen = model.get("selected_head") || [];
      readout.textContent = `${data.explained} · layer x head; click a head${data.sources ? " to paint what it moved from each source" : ""}`
        + (chosen.length === 2 ? ` · selected head ${data.rowLabels[chosen[0]]}.${chosen[1]}` : "");
      drawGrid(dlaSvg(themeColors(root)), (k, c) => {
        if (!data.heads || c >= data.heads.shape[1]) return;
        save("selected_head", [k, c]);
        if (data.sources) save("view", "tokens");
      });
    } else {
      const painted = paintedValues();
      readout.textContent = `${painted.label} · explaining ${target}${data.targets.length > 1 ? " · hover a generated token" : ""}`;
      drawTokens();
      const neutral = themeColors(root).bg;
      const swatch = (text, value, table) => h("span", { className: "nm-attr-token", text, style: shade(value, painted.limit, table, painted.signed) });
      if (painted.signed) {
        const table = colorTable("diverging", neutral);
        legend.append(h("span", { className: "nm-colorbar" }, [
          h("span", { text: formatNumber(-painted.limit, "+.3g") }), swatch(" against ", -painted.limit, table),
          h("span", { text: "0" }), swatch(" for ", painted.limit, table), h("span", { text: formatNumber(painted.limit, "+.3g") }),
        ]));
      } else {
        const table = colorTable("magnitude", neutral);
        legend.append(h("span", { className: "nm-colorbar" }, [
          h("span", { text: "0" }), swatch(" some ", painted.limit / 3, table), swatch(" most ", painted.limit, table),
          h("span", { text: `${formatNumber(painted.limit, ".3g")} · never negative: how much, not which way` }),
        ]));
      }
      if (head()) {
        const back = h("button", { type: "button", text: "back to input attribution" });
        back.addEventListener("click", () => save("selected_head", []));
        legend.append(back);
      }
    }
  }

  function rebuild() {
    data = readAttribution(model);
    draw();
  }

  const dataTraits = ["scores", "tokens", "targets", "target_positions", "methods", "dla_heads", "dla_attn", "dla_mlp", "dla_sources", "dla_summary", "title", "explained", "foil", "n_prompt", "row_labels"];
  const viewTraits = ["method", "target_index", "view", "selected_head"];
  for (const name of dataTraits) model.on(`change:${name}`, rebuild);
  for (const name of viewTraits) model.on(`change:${name}`, draw);
  const stopTheme = onThemeChange(() => draw());
  draw();
  return () => {
    for (const name of dataTraits) model.off(`change:${name}`, rebuild);
    for (const name of viewTraits) model.off(`change:${name}`, draw);
    stopTheme();
  };
}

export default { render };
