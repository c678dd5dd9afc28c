// SaeDashboard front end (sae_vis / Neuronpedia layout): a searchable feature list on the left (sorted by
// how often a feature fires, dead ones marked), the selected feature's card on the right (activation
// histogram, logit effects, top contexts and interval samples with each token coloured by the feature's
// activation). Choosing a feature shows its card at once when it is already computed (the most frequent
// features' are in the saved state) and otherwise asks the kernel, which computes it lazily; searching,
// steering and ablating are messages to the kernel too.
import { decodeArray } from "./arrays.js";
import { colorIndex, colorTable, cssColor } from "./colors.js";
import { availableWidth, createRoot, exportButtons, h, onThemeChange, sizeCanvas, themeColors, tokenSpan } from "./dom.js";
import { formatNumber, formatValue, tokenLabel } from "./format.js";

const LIST_ROWS = 400;
const HIST_HEIGHT = 110;

const STYLE = `
.nm-sae-layout { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; }
.nm-sae-list { flex: 0 0 230px; border: 1px solid var(--nm-border); border-radius: 3px; }
.nm-sae-list input { width: 100%; font: inherit; color: var(--nm-fg); background: var(--nm-panel);
  border: none; border-bottom: 1px solid var(--nm-border); padding: 4px 6px; }
.nm-sae-rows { max-height: 520px; overflow-y: auto; }
.nm-sae-row { display: flex; gap: 6px; align-items: center; padding: 1px 6px; cursor: pointer;
  font-variant-numeric: tabular-nums; }
.nm-sae-row:hover { background: var(--nm-panel); }
.nm-sae-row[aria-selected="true"] { outline: 2px solid var(--nm-accent); outline-offset: -2px; }
.nm-sae-row .nm-sae-id { width: 4.5em; text-align: right; }
.nm-sae-row .nm-sae-bar { flex: 1; height: 6px; background: var(--nm-accent); opacity: 0.6; min-width: 1px; }
.nm-sae-row.nm-sae-dead { color: var(--nm-muted); }
.nm-sae-more { color: var(--nm-muted); padding: 3px 6px; }
.nm-sae-card { flex: 1 1 420px; min-width: 300px; }
.nm-sae-section { font-weight: 600; margin: 10px 0 3px; }
.nm-sae-logits { display: flex; gap: 16px; flex-wrap: wrap; }
.nm-sae-logits table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.nm-sae-logits td { padding: 0 6px 0 0; }
.nm-sae-context { margin: 2px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.nm-sae-context .nm-sae-value { display: inline-block; width: 4.5em; color: var(--nm-muted);
  font-variant-numeric: tabular-nums; }
.nm-sae-tok { border-radius: 2px; padding: 0 1px; }
.nm-sae-tok.nm-sae-center { outline: 1px solid var(--nm-fg); }
.nm-sae-actions { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-top: 8px; }
.nm-sae-actions input, .nm-sae-actions button { font: inherit; color: var(--nm-fg); background: var(--nm-panel);
  border: 1px solid var(--nm-border); border-radius: 3px; padding: 1px 6px; }
.nm-sae-actions input { width: 5em; }
.nm-sae-status { color: var(--nm-muted); margin-top: 4px; }
`;

/** Feature order of the list: most frequent first, ties by index. */
export function featureOrder(frequencies) {
  const order = Array.from(frequencies, (_, i) => i);
  order.sort((a, b) => frequencies[b] - frequencies[a] || a - b);
  return order;
}

/** The features a query keeps: a number picks that feature, kernel matches (a token's features) win otherwise. */
export function filterFeatures(order, query, matches) {
  const text = query.trim();
  if (!text) return order;
  if (/^\d+$/.test(text)) return order.filter((f) => String(f).startsWith(text));
  return matches || [];
}

/** What an empty feature list says: why nothing is listed for `typed`, or how to search for it. */
export function emptyListNote(typed, answeredQuery, searchNote) {
  const text = typed.trim();
  if (/^\d+$/.test(text)) return `no feature number starts with ${text}`;
  if (text && text === answeredQuery) return searchNote || `no feature fires on “${text}”`;
  return "press Enter to search the features for this token or text";
}

function render({ model, el }) {
  const root = createRoot(el, "sae");
  root.append(h("style", { text: STYLE }));
  const title = h("div", { className: "nm-title" });
  const search = h("input", { type: "search", placeholder: "feature #, or a token / text + Enter" });
  const rows = h("div", { className: "nm-sae-rows", role: "listbox" });
  const card = h("div", { className: "nm-sae-card" });
  root.append(exportButtons(root, () => "sae-dashboard"), title, h("div", { className: "nm-sae-layout" }, [
    h("div", { className: "nm-sae-list" }, [search, rows]), card,
  ]));
  let frequencies = new Float32Array(0);
  let dead = new Uint8Array(0);
  let order = [];
  let current = model.get("selected"); // the feature shown (or asked for)

  function rebuildList() {
    frequencies = decodeArray(model.get("frequencies")).data;
    dead = decodeArray(model.get("dead")).data;
    order = featureOrder(frequencies);
    title.textContent = model.get("title");
    drawList();
  }

  function drawList() {
    const shown = filterFeatures(order, search.value, search.value.trim() === model.get("query") ? model.get("matches") : null);
    const top = frequencies.length ? Math.max(...shown.slice(0, 1).map((f) => frequencies[f]), 1e-12) : 1;
    const selected = current;
    rows.replaceChildren(...shown.slice(0, LIST_ROWS).map((f) => {
      const row = h("div", {
        className: `nm-sae-row${dead[f] ? " nm-sae-dead" : ""}`, role: "option", "data-feature": String(f),
        "aria-selected": String(f === selected), title: dead[f] ? "dead feature" : "",
      }, [
        h("span", { className: "nm-sae-id", text: `#${f}` }),
        h("span", { className: "nm-sae-bar", style: { flex: `0 0 ${Math.round((70 * frequencies[f]) / top)}px` } }),
        h("span", { text: dead[f] ? "dead" : `${formatNumber(100 * frequencies[f], ".2f")}%` }),
      ]);
      row.addEventListener("click", () => choose(f));
      return row;
    }));
    if (shown.length > LIST_ROWS) rows.append(h("div", { className: "nm-sae-more", text: `${shown.length - LIST_ROWS} more: search to narrow` }));
    if (!shown.length) rows.append(h("div", { className: "nm-sae-more", text: emptyListNote(search.value, model.get("query"), model.get("search_note")) }));
  }

  function choose(feature) {
    current = feature;
    drawCard();
    model.send({ type: "select", feature }); // no kernel (a saved page): only the computed cards show
  }

  function status(text) {
    const line = card.querySelector(".nm-sae-status");
    if (line) line.textContent = text;
  }

  // A kernel-backed click answers at once; the kernel's own status replaces this line when it runs.
  function send(message, queued) {
    status(queued);
    model.send(message);
  }

  function tokenLine(context, max, table) {
    const spans = context.tokens.map((token, i) => {
      const value = context.activations[i];
      const span = tokenSpan(token, { running: true, className: `nm-sae-tok nm-token${i === context.center ? " nm-sae-center" : ""}` });
      span.title = formatValue(value);
      if (value > 0) {
        // activations are never negative: the magnitude scale from 0, text in black or white by the shade
        const index = colorIndex(value, 0, max);
        span.style.background = cssColor(table, index);
        span.style.color = 0.299 * table[index * 3] + 0.587 * table[index * 3 + 1] + 0.114 * table[index * 3 + 2] < 150 ? "#ffffff" : "#111111";
      }
      return span;
    });
    return h("div", { className: "nm-sae-context" }, [
      h("span", { className: "nm-sae-value", text: formatValue(context.activation) }), ...spans,
    ]);
  }

  function drawHistogram(canvas, counts, edges) {
    const width = Math.min(520, Math.max(240, availableWidth(card) - 10));
    const ctx = sizeCanvas(canvas, width, HIST_HEIGHT);
    const colors = themeColors(root);
    const n = counts.length;
    const most = Math.max(1, ...counts);
    const inner = HIST_HEIGHT - 18;
    ctx.fillStyle = colors.accent;
    for (let i = 0; i < n; i++) {
      const height = (inner * counts[i]) / most;
      ctx.fillRect((i * width) / n + 1, inner - height, width / n - 2, height);
    }
    ctx.font = colors.font;
    ctx.fillStyle = colors.muted;
    ctx.fillText(formatNumber(edges[0], ".3g"), 0, HIST_HEIGHT - 4);
    const last = formatNumber(edges[n], ".3g");
    ctx.fillText(last, width - ctx.measureText(last).width, HIST_HEIGHT - 4);
  }

  function drawCard() {
    const cards = model.get("cards") || [];
    const index = cards.findIndex((c) => c.feature === current);
    const data = cards[index];
    if (!data) {
      card.setAttribute("aria-busy", "true");
      card.replaceChildren(
        h("div", { className: "nm-title", text: `Feature ${current}` }),
        h("div", { className: "nm-empty", text: "asking the kernel for this card... (a saved notebook has only the most frequent features' cards)" }),
        h("div", { className: "nm-sae-status", text: model.get("status") }),
      );
      drawList();
      return;
    }
    card.removeAttribute("aria-busy");
    const colors = themeColors(root);
    const table = colorTable("magnitude", colors.bg);
    const max = data.max_activation || 1;
    const histogram = h("canvas", { className: "nm-sae-histogram" });
    const countRows = decodeArray(model.get("hist_counts"));
    const edgeRows = decodeArray(model.get("hist_edges"));
    const bins = countRows.shape[1];
    const counts = countRows.data.subarray(index * bins, (index + 1) * bins);
    const edges = edgeRows.data.subarray(index * (bins + 1), (index + 1) * (bins + 1));
    const coef = h("input", { type: "number", step: "any", value: String(model.get("steer_coef")) });
    const steer = h("button", { text: "steer" });
    const ablate = h("button", { text: "ablate" });
    const actionable = model.get("can_act");
    for (const button of [steer, ablate]) button.disabled = !actionable;
    steer.addEventListener("click", () => send({ type: "steer", feature: data.feature, coef: Number(coef.value) },
      `steer by feature ${data.feature} (coef ${coef.value}): queued, the kernel runs it when it is free...`));
    ablate.addEventListener("click", () => send({ type: "ablate", feature: data.feature },
      `ablate feature ${data.feature}: queued, the kernel runs it when it is free...`));
    const logitTable = (rows, label) => h("table", {}, [
      h("tr", {}, [h("td", { className: "nm-sae-section", text: label })]),
      ...rows.map(([piece, value]) => h("tr", {}, [
        h("td", { className: "nm-token", text: tokenLabel(piece) }),
        h("td", { className: "nm-num", text: `${value > 0 ? "+" : ""}${formatValue(value)}` }),
      ])),
    ]);
    const parts = [
      h("div", { className: "nm-title", text: `Feature ${data.feature}${data.dead ? " (dead)" : ""}` }),
      h("div", { className: "nm-readout", text: `fires on ${formatNumber(100 * data.frequency, ".3f")}% of held-out tokens · max activation ${formatNumber(data.max_activation, ".3f")}` }),
      h("div", { className: "nm-sae-section", text: "Activation histogram (non-zero)" }), histogram,
      h("div", { className: "nm-sae-section", text: "Logit effects of the decoder direction" }),
      data.logits_note ? h("div", { className: "nm-empty", text: data.logits_note })
        : h("div", { className: "nm-sae-logits" }, [logitTable(data.top_logits, "raises"), logitTable(data.bottom_logits, "lowers")]),
      h("div", { className: "nm-sae-actions" }, [h("span", { text: "coef" }), coef, steer, ablate]),
      h("div", { className: "nm-sae-status", text: model.get("status") }),
      h("div", { className: "nm-sae-section", text: "Top activations" }),
      ...(data.contexts.length ? data.contexts.map((c) => tokenLine(c, max, table))
        : [h("div", { className: "nm-empty", text: "it never fires on the held-out texts" })]),
    ];
    for (const band of data.bands.filter((b) => b.contexts.length)) {
      parts.push(h("div", { className: "nm-sae-section", text: `Interval ${formatNumber(band.low, ".3g")} – ${formatNumber(band.high, ".3g")} · ${formatNumber(100 * band.share, ".1f")}% of firings` }));
      parts.push(...band.contexts.map((c) => tokenLine(c, max, table)));
    }
    card.replaceChildren(...parts);
    drawHistogram(histogram, counts, edges);
    drawList();
  }

  search.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const text = search.value.trim();
    if (/^\d+$/.test(text) && Number(text) < frequencies.length) choose(Number(text));
    else if (text) {
      rows.replaceChildren(h("div", { className: "nm-sae-more", text: `searching for “${text}”: queued, the kernel answers when it is free...` }));
      send({ type: "search", query: text }, `searching for “${text}”...`);
    }
  });
  search.addEventListener("input", drawList);
  const onStatus = () => status(model.get("status"));
  const onSelected = () => {
    current = model.get("selected");
    drawCard();
  };
  model.on("change:frequencies", rebuildList);
  model.on("change:cards", drawCard);
  model.on("change:selected", onSelected);
  model.on("change:status", onStatus);
  model.on("change:matches", drawList);
  const stopTheme = onThemeChange(drawCard);
  rebuildList();
  drawCard();
  return () => {
    model.off("change:frequencies", rebuildList);
    model.off("change:cards", drawCard);
    model.off("change:selected", onSelected);
    model.off("change:status", onStatus);
    model.off("change:matches", drawList);
    stopTheme();
  };
}

export default { render };
