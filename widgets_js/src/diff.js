// DiffWidget front end: a stats table (perplexity, depth, parameters, program) before and after
// a change, then one card per prompt with both greedy continuations side by side. Tokens of the
// original continuation are shaded by their log-prob change; the first divergence is marked in
// both columns. Clicking a card (or Enter/Space on it) shows the next-token top-k of both sides.
import { decodeArray } from "./arrays.js";
import { colorTable, cssColor, valueRange } from "./colors.js";
import { createRoot, exportButtons, h, onThemeChange } from "./dom.js";
import { formatValue, tokenLabel, truncate } from "./format.js";

const PROMPT_CHARS = 90;

// Styles of this widget only; the shared theme variables (--nm-*) come from styles.js.
const DIFF_STYLES = `
.nm-diff-stats { border-collapse: collapse; margin: 2px 0 6px; font-variant-numeric: tabular-nums; }
.nm-diff-stats th, .nm-diff-stats td { padding: 1px 10px 1px 0; text-align: left; }
.nm-diff-stats td.nm-num { text-align: right; max-width: 260px; overflow-wrap: anywhere; }
.nm-diff-card { border: 1px solid var(--nm-border); border-radius: 4px; padding: 5px 8px; margin: 6px 0; cursor: pointer; background: var(--nm-bg); }
.nm-diff-card:focus-visible { outline: 2px solid var(--nm-accent); outline-offset: 1px; }
.nm-diff-selected { border-color: var(--nm-accent); box-shadow: 0 0 0 1px var(--nm-accent); }
.nm-diff-prompt { color: var(--nm-muted); margin-bottom: 3px; display: flex; gap: 6px; }
.nm-diff-marker { font-weight: 700; color: var(--nm-fg); }
.nm-diff-changed .nm-diff-marker { color: var(--nm-accent); }
.nm-diff-columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 4px 14px; }
.nm-diff-column { min-width: 0; }
.nm-diff-side-label { color: var(--nm-muted); font-size: 11px; }
.nm-diff-text { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.6;
  font-family: var(--jp-code-font-family, var(--vscode-editor-font-family, ui-monospace, Menlo, Consolas, monospace)); }
.nm-diff-token { border-radius: 2px; }
.nm-diff-diverged { text-decoration: underline dotted var(--nm-accent); text-underline-offset: 3px; }
.nm-diff-first { box-shadow: inset 3px 0 0 var(--nm-accent); padding-left: 4px; }
.nm-diff-end { color: var(--nm-muted); }
.nm-diff-pending { color: var(--nm-muted); }
.nm-diff-topk table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.nm-diff-topk td { padding: 0 8px 0 0; white-space: pre; }
.nm-diff-topk td.nm-num { text-align: right; }
.nm-diff-bar { display: inline-block; height: 8px; background: var(--nm-accent); border-radius: 1px; vertical-align: middle; }
.nm-diff-swatch { padding: 0 6px; border-radius: 2px; font-variant-numeric: tabular-nums; }
.nm-diff-zero { border: 1px solid var(--nm-border); }
`;

/** Everything the drawing needs, decoded once per data change. */
export function readDiff(model) {
  const before = decodeArray(model.get("logprob_before"));
  const after = decodeArray(model.get("logprob_after"));
  const topk = decodeArray(model.get("topk_probs"));
  const width = before.shape[1];
  const change = new Float32Array(before.data.length);
  for (let i = 0; i < change.length; i++) change[i] = after.data[i] - before.data[i];
  return {
    title: model.get("title") || "",
    labels: model.get("labels") || ["before", "after"],
    prompts: model.get("prompts") || [],
    pieces: [model.get("pieces_before") || [], model.get("pieces_after") || []],
    divergence: model.get("divergence") || [],
    logprobs: [before, after],
    change,
    width,
    topk,
    topkPieces: [model.get("topk_pieces_before") || [], model.get("topk_pieces_after") || []],
    stats: model.get("stats") || [],
    pending: model.get("pending") || [],
    perplexityText: model.get("perplexity_text") || "",
  };
}

/** Rows of the stats table: [name, before, after, change] as display strings. */
export function statRows(stats) {
  if (stats.length !== 2) return [];
  const [b, a] = stats;
  const signed = (value) => (value === 0 ? "=" : `${value > 0 ? "+" : ""}${formatValue(value)}`);
  const signedCount = (value) => (value === 0 ? "=" : `${value > 0 ? "+" : "-"}${Math.abs(value).toLocaleString("en-US")}`);
  return [
    ["perplexity (lower is better)", formatValue(b.perplexity), formatValue(a.perplexity), signed(a.perplexity - b.perplexity)],
    ["depth (blocks run)", String(b.depth), String(a.depth), signed(a.depth - b.depth)],
    ["parameters", b.parameters.toLocaleString("en-US"), a.parameters.toLocaleString("en-US"), signedCount(a.parameters - b.parameters)],
    ["program", b.program, a.program, b.program === a.program ? "=" : "changed"],
  ];
}

function logprobAt(data, row, position) {
  return data.logprobs.map((side) => side.data[row * data.width + position]);
}

/**
 * Shading of a log-prob change: the diverging scale's end colour (blue for a fall, red for a
 * rise) with opacity growing with |change|, so unchanged tokens stay on the page background in
 * any theme; strong shades get white text.
 */
export function changeShade(change, half, table) {
  if (!Number.isFinite(change) || change === 0) return null;
  const strength = Math.min(1, Math.abs(change) / half);
  const end = change < 0 ? 0 : 255;
  const rgb = [table[end * 3], table[end * 3 + 1], table[end * 3 + 2]];
  return { background: `rgba(${rgb.join(", ")}, ${strength.toFixed(3)})`, color: strength > 0.55 ? "#ffffff" : "" };
}

function tokenSpans(data, row, side, range, table) {
  const pieces = data.pieces[side][row] || [];
  const divergence = data.divergence[row] ?? -1;
  const spans = pieces.map((piece, position) => {
    const span = h("span", { className: "nm-diff-token", text: piece });
    span.dataset.position = String(position);
    if (divergence >= 0 && position >= divergence) span.classList.add("nm-diff-diverged");
    if (position === divergence) span.classList.add("nm-diff-first");
    if (side === 0) {
      const [lpBefore, lpAfter] = logprobAt(data, row, position);
      const change = lpAfter - lpBefore;
      const shade = changeShade(change, range.hi, table);
      if (shade) {
        span.style.background = shade.background;
        if (shade.color) span.style.color = shade.color;
      }
      span.title = `${tokenLabel(piece)} · log p ${formatValue(lpBefore)} → ${formatValue(lpAfter)} (Δ ${change > 0 ? "+" : ""}${formatValue(change)})`;
    } else {
      span.title = tokenLabel(piece);
    }
    return span;
  });
  if (side === 1 && data.pending.includes(row)) {
    // the after side is still generating: more tokens will follow
    const more = h("span", { className: "nm-diff-token nm-diff-pending", text: "…" });
    more.title = "still generating";
    spans.push(more);
  } else if (divergence >= 0 && divergence >= pieces.length) {
    // one side stopped (end of sequence) where the other goes on: mark the end itself
    const end = h("span", { className: "nm-diff-token nm-diff-first nm-diff-end", text: "(end)" });
    end.title = "continuation ends here";
    spans.push(end);
  }
  return spans;
}

function topkTable(data, row, side) {
  const k = data.topk.shape[2];
  const nPrompts = data.topk.shape[1];
  const body = [];
  for (let j = 0; j < k; j++) {
    const prob = data.topk.data[(side * nPrompts + row) * k + j];
    const piece = data.topkPieces[side][row]?.[j] ?? "";
    const bar = h("span", { className: "nm-diff-bar", style: { width: `${Math.round(Math.max(0, Math.min(1, prob)) * 60)}px` } });
    body.push(h("tr", {}, [
      h("td", { className: "nm-token", text: tokenLabel(piece) }),
      h("td", { className: "nm-num", text: `${formatValue(100 * prob)}%` }),
      h("td", {}, [bar]),
    ]));
  }
  return h("div", { className: "nm-diff-topk" }, [
    h("div", { className: "nm-diff-side-label", text: `${data.labels[side]}: next token` }),
    h("table", {}, body),
  ]);
}

function summaryOf(data, row) {
  const [before, after] = data.logprobs;
  let total = 0;
  let count = 0;
  for (let t = 0; t < data.width; t++) {
    const d = after.data[row * data.width + t] - before.data[row * data.width + t];
    if (Number.isFinite(d)) {
      total += d;
      count += 1;
    }
  }
  const divergence = data.divergence[row] ?? -1;
  const parted = divergence < 0 ? "identical continuations" : `part at token ${divergence}`;
  return `${parted} · Σ Δ log p of the ${data.labels[0]} continuation ${total > 0 ? "+" : ""}${formatValue(total)} over ${count} tokens`;
}

/** The line under the stats that says what text the perplexities are measured on (all of it on hover). */
export function perplexityNote(text) {
  const words = text.trim().split(/\s+/).length;
  const note = h("div", { className: "nm-readout nm-diff-ppl-text", text: `perplexity measured on a built-in text of ${words} words: “${truncate(text.replace(/\s+/g, " ").trim(), 70)}”` });
  note.title = text;
  return note;
}

function render({ model, el }) {
  const root = createRoot(el, "diff");
  root.append(h("style", { text: DIFF_STYLES }));
  const container = h("div");
  root.append(exportButtons(root, () => "diff"), container);
  let data = null;

  function card(row, range, table) {
    const selected = model.get("selected") === row;
    const divergence = data.divergence[row] ?? -1;
    const element = h("div", {
      className: `nm-diff-card${selected ? " nm-diff-selected" : ""}${divergence >= 0 ? " nm-diff-changed" : ""}`,
      tabindex: "0",
      role: "button",
      "aria-expanded": String(selected),
    });
    element.dataset.row = String(row);
    const columns = [0, 1].map((side) => h("div", { className: "nm-diff-column" }, [
      h("div", { className: "nm-diff-side-label", text: data.labels[side] }),
      h("div", { className: "nm-diff-text" }, tokenSpans(data, row, side, range, table)),
    ]));
    element.append(
      h("div", { className: "nm-diff-prompt" }, [
        h("span", { className: "nm-diff-marker", text: divergence >= 0 ? "≠" : "=" }),
        h("span", { className: "nm-token", text: truncate(data.prompts[row].replace(/\s+/g, " "), PROMPT_CHARS) }),
      ]),
      h("div", { className: "nm-diff-columns" }, columns),
    );
    if (selected) {
      element.append(
        h("div", { className: "nm-readout", text: summaryOf(data, row) }),
        h("div", { className: "nm-diff-columns" }, [topkTable(data, row, 0), topkTable(data, row, 1)]),
      );
    }
    const choose = () => {
      model.set("selected", model.get("selected") === row ? -1 : row);
      model.save_changes();
    };
    element.addEventListener("click", choose);
    element.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose();
      }
    });
    return element;
  }

  function draw() {
    container.replaceChildren();
    if (!data.prompts.length) {
      container.append(h("div", { className: "nm-empty", text: "No prompts to compare." }));
      return;
    }
    const table = colorTable("diverging");
    const range = valueRange(data.change, { scale: "diverging", center: 0 });
    const changed = data.divergence.filter((d) => d >= 0).length;
    const rows = statRows(data.stats).map((cells) => h("tr", {}, cells.map((text, i) => h(i ? "td" : "th", { className: i ? "nm-num" : "", text }))));
    container.append(
      h("div", { className: "nm-toolbar" }, [
        h("span", { className: "nm-title", text: data.title }),
        h("span", { className: "nm-readout", text: `${changed} of ${data.prompts.length} continuations changed`
          + (data.pending.length ? ` · generating ${data.pending.length} more…` : "") }),
      ]),
      h("table", { className: "nm-diff-stats" }, [
        h("tr", {}, ["", data.labels[0], data.labels[1], "change"].map((text) => h("th", { text }))),
        ...rows,
      ]),
      ...(data.perplexityText ? [perplexityNote(data.perplexityText)] : []),
      h("div", { className: "nm-legend" }, [
        h("span", { text: `${data.labels[0]} tokens shaded by Δ log p:` }),
        h("span", { className: "nm-diff-swatch", text: formatValue(range.lo), style: { background: cssColor(table, 0), color: "#fff" } }),
        h("span", { className: "nm-diff-swatch nm-diff-zero", text: "0" }),
        h("span", { className: "nm-diff-swatch", text: `+${formatValue(range.hi)}`, style: { background: cssColor(table, 255), color: "#fff" } }),
        h("span", { className: "nm-diff-token nm-diff-first", text: "first divergence" }),
      ]),
      ...data.prompts.map((_, row) => card(row, range, table)),
    );
  }

  function rebuild() {
    data = readDiff(model);
    draw();
  }

  const dataTraits = ["logprob_before", "logprob_after", "topk_probs", "pieces_before", "pieces_after", "divergence", "prompts", "labels", "stats", "title", "topk_pieces_before", "topk_pieces_after", "pending", "perplexity_text"];
  for (const name of dataTraits) model.on(`change:${name}`, rebuild);
  model.on("change:selected", draw);
  const stopTheme = onThemeChange(() => draw());
  rebuild();
  return () => {
    for (const name of dataTraits) model.off(`change:${name}`, rebuild);
    model.off("change:selected", draw);
    stopTheme();
  };
}

export default { render };
