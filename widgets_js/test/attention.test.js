// @vitest-environment jsdom
import { beforeEach, describe, expect, it } from "vitest";
import attention, { defaultHead, patternPixels, readAttention } from "../src/attention.js";
import { colorTable, cssColor } from "../src/colors.js";
import { binary, fakeModel, float16Payload, installFakeCanvas, mouse } from "./fakes.js";

installFakeCanvas();

/** Causal patterns: head h of layer l attends to key max(0, q - h) with weight 1 (or uniformly for head 0). */
function causalPatterns(layers, heads, tokens) {
  const weights = new Array(layers * heads * tokens * tokens).fill(0);
  for (let l = 0; l < layers; l++) for (let h = 0; h < heads; h++) for (let q = 0; q < tokens; q++) {
    const base = ((l * heads + h) * tokens + q) * tokens;
    if (h === 0) for (let k = 0; k <= q; k++) weights[base + k] = 1 / (q + 1);
    else weights[base + Math.max(0, q - h)] = 1;
  }
  return weights;
}

function state(layers = 3, heads = 4, tokens = 5, overrides = {}) {
  const scores = Float32Array.from({ length: 2 * layers * heads }, (_, i) => (i * 7) % 11 / 10);
  return {
    patterns: float16Payload(causalPatterns(layers, heads, tokens), [layers, heads, tokens, tokens]),
    tokens: ["<s>", " The", " cat", "\n", " sat"].slice(0, tokens).concat(Array.from({ length: Math.max(0, tokens - 5) }, (_, i) => `t${i + 5}`)),
    layer_labels: Array.from({ length: layers }, (_, i) => `L${i}`),
    score_names: ["entropy", "previous-token"],
    score_values: binary(scores, "float32", [2, layers, heads]),
    score: "entropy",
    n_kv_heads: 2,
    layer_range: [0, layers - 1],
    selected: [],
    title: "attention",
    ...overrides,
  };
}

function mount(...args) {
  const model = fakeModel(state(...args));
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = attention.render({ model, el });
  const root = el.querySelector(".nm-root");
  const thumbs = root.querySelector(".nm-thumbs");
  const drawnThumbs = () => thumbs.getContext("2d").calls.filter((c) => c[0] === "drawImage");
  return { model, root, thumbs, overlay: root.querySelector(".nm-thumbs-overlay"), zoom: root.querySelector(".nm-zoom-overlay"), drawnThumbs, cleanup };
}

/** Centre of a thumbnail, from the drawImage call that painted it. */
function thumbCenter(drawnThumbs, index) {
  const [, , x, y, w, h] = drawnThumbs().slice(-12)[index];
  return [x + w / 2, y + h / 2];
}

beforeEach(() => document.body.replaceChildren());

describe("AttentionWidget view", () => {
  it("draws one thumbnail per head with layer, head and kv-group labels", () => {
    const { root, thumbs, drawnThumbs } = mount();
    expect(drawnThumbs()).toHaveLength(12);
    const texts = thumbs.getContext("2d").texts();
    expect(texts).toEqual(expect.arrayContaining(["L0", "L2", "H0·kv0", "H3·kv1"]));
    expect(root.textContent).toContain("4 query heads share 2 kv heads");
    expect(root.querySelector(".nm-attn-zoom-title").textContent).toContain("click a head");
  });

  it("click zooms into a head, syncs [layer, head] and hover shows query, key and weight", () => {
    const { model, root, overlay, zoom, drawnThumbs } = mount();
    mouse(overlay, "click", ...thumbCenter(drawnThumbs, 1 * 4 + 2)); // layer 1, head 2
    expect(model.sets.at(-1)).toEqual(["selected", [1, 2]]);
    expect(model.saves).toBe(1);
    expect(root.dataset.selected).toBe("1,2");
    expect(root.querySelector(".nm-attn-zoom-title").textContent).toBe("layer L1 · head 2 (kv head 1)");
    const zoomTexts = root.querySelector(".nm-zoom").getContext("2d").texts();
    expect(zoomTexts).toEqual(expect.arrayContaining(["·The", "\\n"]));
    // cell (query 3, key 1): head 2 attends to q - 2 with weight 1
    const cell = parseFloat(zoom.style.height) / 5;
    const labelWidth = parseFloat(zoom.style.width) - 5 * cell;
    mouse(zoom, "mousemove", labelWidth + 1.5 * cell, 3.5 * cell);
    const tooltip = root.querySelector(".nm-tooltip");
    expect([...tooltip.querySelectorAll("td")].map((td) => td.textContent)).toEqual(["query", "\\n", "key", "·The", "weight", "1"]);
  });

  it("shows the exact float16 weight of a uniform head", () => {
    const { model, root, zoom } = mount();
    model.set("selected", [0, 0]);
    const cell = parseFloat(zoom.style.height) / 5;
    const labelWidth = parseFloat(zoom.style.width) - 5 * cell;
    mouse(zoom, "mousemove", labelWidth + 0.5 * cell, 2.5 * cell); // 1/3 in float16 (0.33325), rounded
    expect(root.querySelector(".nm-tooltip").textContent).toContain("weight0.333");
  });

  it("hover on a thumbnail lists every score", () => {
    const { root, overlay, drawnThumbs } = mount();
    mouse(overlay, "mousemove", ...thumbCenter(drawnThumbs, 0));
    const tooltip = root.querySelector(".nm-tooltip");
    expect(tooltip.querySelector(".nm-tip-title").textContent).toBe("layer L0 · head 0");
    expect(tooltip.textContent).toContain("entropy");
    expect(tooltip.textContent).toContain("previous-token");
  });

  it("layer filter and score ranking change what is drawn", () => {
    const { model, root, drawnThumbs, thumbs } = mount();
    const to = root.querySelector("select.nm-layer-to");
    to.value = "0";
    to.dispatchEvent(new Event("change"));
    expect(model.state.layer_range).toEqual([0, 0]);
    expect(thumbs.getContext("2d").calls.filter((c) => c[0] === "drawImage").length).toBe(12 + 4);

    const score = root.querySelector("select.nm-score");
    score.value = "previous-token";
    score.dispatchEvent(new Event("change"));
    expect(model.state.score).toBe("previous-token");
    const rank = root.querySelector("input.nm-rank");
    rank.checked = true;
    rank.dispatchEvent(new Event("change"));
    const labels = thumbs.getContext("2d").texts().slice(-4);
    const values = labels.map((text) => Number(text.split(" ").at(-1)));
    expect(values).toEqual([...values].sort((a, b) => b - a));
  });

  it("cleans up its listeners", () => {
    const { model, cleanup } = mount();
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("patternPixels", () => {
  it("leaves the causal mask transparent and max-pools long sequences", () => {
    const tokens = 200;
    const data = { patterns: { data: Float32Array.from(causalPatterns(1, 2, tokens)) }, nHeads: 2, nTokens: tokens };
    const small = patternPixels({ ...data, nTokens: tokens }, 0, 1, 48);
    expect(small.size).toBe(48);
    expect(small.pixels[(0 * 48 + 47) * 4 + 3]).toBe(0); // top right: masked
    expect(small.pixels[(47 * 48 + 47) * 4 + 3]).toBe(255); // diagonal block: attended
  });
});

describe("attention explorer at first sight", () => {
  it("starts the zoom on the top head by the ranking score, else the first score that is not entropy", () => {
    // score values (i * 7) % 11 / 10 over [2 scores, 3 layers, 4 heads]
    const data = readAttention(fakeModel(state()));
    expect(defaultHead(data, "entropy", [0, 2])).toEqual({ layer: 0, head: 3 }); // entropy i = 3: 21 % 11 = 10
    expect(defaultHead(data, "", [0, 2])).toEqual({ layer: 0, head: 2 }); // previous-token i = 14: 98 % 11 = 10
    expect(defaultHead(data, "", [1, 2])).toEqual({ layer: 1, head: 1 }); // layers 1-2: i = 17: 119 % 11 = 9
    expect(defaultHead({ ...data, scoreNames: [] }, "", [0, 2])).toEqual({ layer: 2, head: 0 });
    const { root } = mount(3, 4, 5, { score: "" });
    expect(root.querySelector(".nm-attn-zoom").dataset.head).toBe("0,2");
    expect(root.querySelector(".nm-attn-zoom-title").textContent).toContain("layer L0 · head 2");
  });

  it("hovering a token in the text shades what it attends to in the shown head", () => {
    const { model, root } = mount();
    model.set("selected", [1, 2]); // head 2 attends from q to key q - 2 with weight 1
    const tokens = () => [...root.querySelectorAll(".nm-attn-text .nm-attn-tok")];
    tokens()[3].dispatchEvent(new MouseEvent("mouseenter"));
    const table = colorTable("magnitude");
    expect(root.querySelector(".nm-attn-text").dataset.query).toBe("3");
    expect(tokens()[1].style.background).toBe(cssColor(table, 255)); // key 1 = 3 - 2: all of it
    expect(tokens()[0].style.background).toBe(cssColor(table, 0));
    expect(tokens()[2].style.background).toBe(cssColor(table, 0));
    expect(tokens()[4].style.background).toBe(""); // a later token: nothing to attend to
    expect(tokens()[3].classList.contains("nm-attn-query")).toBe(true);
    expect(tokens()[1].textContent).toBe(" The");
  });
});
