// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import attribution, { absMax, cellNumber, gridSvg, readAttribution, rowOf, shade, tokensSvg } from "../src/attribution.js";
import { colorIndex, colorTable, cssColor } from "../src/colors.js";
import { binary, fakeModel } from "./fakes.js";

// prompt "a b" + generated "c", "d": sources a, b, c (3); targets c (at position 1), d (at 2)
function state(overrides = {}) {
  const scores = Float32Array.from([
    // ig: row c, row d
    0.5, -1.0, 0, 0.1, 0.2, 2.0,
    // occlusion
    1, 1, 0, -1, -1, -1,
  ]);
  return {
    title: "attribution: tiny",
    explained: "log p of each of 2 generated tokens",
    tokens: ["a", " b", " c", " d"],
    n_prompt: 2,
    targets: [" c", " d"],
    target_positions: [1, 2],
    methods: ["ig", "occlusion"],
    scores: binary(scores, "float32", [2, 2, 3]),
    dla_heads: binary(Float32Array.from([0.1, -0.2, 0.3, 0.4]), "float32", [2, 2]),
    dla_attn: binary(Float32Array.from([-0.1, 0.7]), "float32", [2]),
    dla_mlp: binary(Float32Array.from([0.05, -0.5]), "float32", [2]),
    dla_sources: binary(Float32Array.from([0.1, 0, 0, -0.2, 0, 0, 0, 0.3, 0, 0.2, 0.2, 0]), "float32", [2, 2, 3]),
    dla_summary: { embed: 0.25, bias: 0, other: 0, total: 0.45 },
    row_labels: ["0", "1"],
    method: "ig",
    target_index: 0,
    view: "tokens",
    selected_head: [],
    ...overrides,
  };
}

function mount(overrides) {
  const model = fakeModel(state(overrides));
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = attribution.render({ model, el });
  return { model, el, cleanup };
}

describe("data helpers", () => {
  it("reads a method's row out of [methods, targets, sources]", () => {
    const data = readAttribution(fakeModel(state()));
    expect(Array.from(rowOf(data, "ig", 1))).toEqual([0.1, 0.2, 2.0].map(Math.fround));
    expect(Array.from(rowOf(data, "occlusion", 0))).toEqual([1, 1, 0]);
    expect(absMax([-3, 2, NaN])).toBe(3);
    expect(absMax([])).toBe(1);
  });

  it("centres the diverging scale at 0 and leaves near-zero values unshaded", () => {
    const table = colorTable("diverging");
    expect(shade(0, 1)).toBeNull();
    expect(shade(0.03, 1)).toBeNull();
    expect(shade(1, 1).background).toBe(cssColor(table, 255));
    expect(shade(-1, 1).background).toBe(cssColor(table, 0));
    expect(shade(1, 1).color).toBe("#ffffff"); // dark red: white text
    expect(shade(0.2, 1).color).toBe("#111111"); // pale: dark text, in either theme
  });

  it("draws no cell where a source cannot matter and escapes labels", () => {
    const colors = { fg: "#000", muted: "#555", bg: "#fff", accent: "#00f" };
    const svg = gridSvg({ title: "<m>", rows: ["r0", "r1"], cols: ["x", "y"], value: (r, c) => (c > r ? null : r + c), limit: 2, colors });
    expect((svg.match(/data-cell=/g) || []).length).toBe(3);
    expect(svg).toContain("&lt;m&gt;");
    const text = tokensSvg({ title: "t", pieces: [{ text: "a&b", style: null }, { text: "c", style: { background: "#f00", color: "#fff" } }], colors });
    expect(text).toContain("a&amp;b");
    expect(text).toContain('fill="#f00"');
  });
});

describe("render", () => {
  it("shades sources, dims what cannot matter and outlines the explained token", () => {
    const { el } = mount();
    const spans = el.querySelectorAll(".nm-attr-text .nm-attr-token");
    expect(spans.length).toBe(4);
    // one scale for all of a method's rows (|2.0| is the largest), so hovering keeps colours comparable
    expect(spans[1].style.background).toBe(cssColor(colorTable("diverging"), colorIndex(-1, -2, 2)));
    expect(spans[2].classList.contains("nm-attr-later")).toBe(false); // the explained token stays legible
    expect(spans[2].classList.contains("nm-attr-target")).toBe(true);
    expect(spans[3].classList.contains("nm-attr-later")).toBe(true); // written after it: cannot matter
    expect(spans[2].style.background).toBe("");
  });

  it("hovering a generated token explains it; the method switch and views sync", () => {
    const { el, model } = mount();
    el.querySelectorAll(".nm-attr-generated")[1].dispatchEvent(new MouseEvent("mouseenter"));
    expect(model.get("target_index")).toBe(1);
    const spans = el.querySelectorAll(".nm-attr-text .nm-attr-token");
    expect(spans[2].style.background).toBe(cssColor(colorTable("diverging"), 255)); // 2.0 is the largest
    const select = el.querySelector("select");
    select.value = "occlusion";
    select.dispatchEvent(new Event("change"));
    expect(model.get("method")).toBe("occlusion");
    el.querySelector('[data-view="matrix"]').click();
    expect(el.querySelectorAll(".nm-attr-svg [data-cell]").length).toBe(2 + 3);
  });

  it("a click on a DLA head paints what it moved from each source", () => {
    const { el, model } = mount({ view: "dla" });
    expect(el.querySelectorAll(".nm-attr-svg [data-cell]").length).toBe(2 * 3);
    el.querySelector('[data-cell="1,0"]').dispatchEvent(new MouseEvent("click", { bubbles: true }));
    expect(model.get("selected_head")).toEqual([1, 0]);
    expect(model.get("view")).toBe("tokens");
    expect(el.querySelector(".nm-readout").textContent).toContain("head 1.0");
  });

  it("removes its listeners on cleanup", () => {
    const { model, cleanup } = mount();
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("reading at first sight", () => {
  // saliency of the single target " Paris" over sources "The", " capital", "\n", " is"
  const single = (overrides = {}) => ({
    explained: "logit diff(' Paris' vs ' London')",
    foil: " London",
    tokens: ["The", " capital", "\n", " is"],
    n_prompt: 4,
    targets: [" Paris"],
    target_positions: [3],
    methods: ["saliency", "ig"],
    scores: binary(Float32Array.from([0.4, 0.1, 0.2, 0.8, -0.45, 0.3, 0, 0.9]), "float32", [2, 1, 4]),
    dla_heads: null, dla_attn: null, dla_mlp: null, dla_sources: null, dla_summary: {}, row_labels: [],
    method: "saliency",
    ...overrides,
  });

  it("paints saliency (never negative) on the magnitude scale from 0 and signed methods around 0", () => {
    const { el, model } = mount(single());
    const background = (i) => el.querySelector(`[data-index="${i}"]`).style.background;
    const magnitude = colorTable("magnitude");
    // limit = max |saliency| = 0.8: 0.4 sits at index round(0.5 * 255) = 128 of [0, 0.8], not at the diverging 191
    expect(background(0)).toBe(cssColor(magnitude, 128));
    expect(background(3)).toBe(cssColor(magnitude, 255));
    expect(el.querySelector(".nm-legend").textContent).toContain("never negative");
    model.set("method", "ig");
    const diverging = colorTable("diverging");
    // ig row: -0.45, 0.3, 0, 0.9; limit 0.9: -0.45 -> round((-0.45 + 0.9) / 1.8 * 255) = round(63.75) = 64
    expect(background(0)).toBe(cssColor(diverging, 64));
    expect(el.querySelector(`[data-index="2"]`).style.background).toBe(""); // 0: unshaded
    expect(el.querySelector(".nm-legend").textContent).toContain("against");
  });

  it("says what the target is explained over when a foil is given", () => {
    const { el } = mount(single());
    expect(el.querySelector(".nm-readout").textContent).toContain("explaining ·Paris over ·London");
    const { el: plain } = mount(single({ foil: null, explained: "log p(' Paris')" }));
    expect(plain.querySelector(".nm-readout").textContent).toContain("explaining ·Paris");
    expect(plain.querySelector(".nm-readout").textContent).not.toContain("over");
  });

  it("shows tokens as running text: real spaces, a line break as a break, no ␣ / ↵ glyphs", () => {
    const { el } = mount(single());
    const text = el.querySelector(".nm-attr-text");
    expect(text.querySelector('[data-index="1"]').textContent).toBe(" capital");
    expect(text.querySelector('[data-index="2"] br')).not.toBeNull();
    expect(text.textContent).not.toMatch(/[␣↵]/);
  });

  it("writes each matrix cell's number, two significant digits", () => {
    expect([cellNumber(0.1234), cellNumber(-3.456), cellNumber(1234), cellNumber(0.001), cellNumber(NaN)]).toEqual([".12", "-3.5", "1.2k", "0", ""]);
    const { el, model } = mount();
    model.set("view", "matrix");
    const numbers = [...el.querySelectorAll(".nm-attr-svg text[text-anchor='middle']")].map((t) => t.textContent);
    // ig rows c: 0.5, -1.0 (position 1: c > 1 is empty) and d: 0.1, 0.2, 2.0
    expect(numbers).toEqual([".5", "-1", ".1", ".2", "2"]);
  });

  it("draws a dark page's diverging centre in the page's own colour", () => {
    const table = colorTable("diverging", "#111111");
    expect(cssColor(table, 128)).not.toBe(cssColor(colorTable("diverging"), 128));
    expect(Array.from(table.subarray(127 * 3, 129 * 3)).every((c) => c < 40)).toBe(true);
    const dark = colorTable("magnitude", "#111111");
    expect(Array.from(dark.subarray(0, 3))).toEqual([17, 17, 17]); // 0 is the page itself
  });
});
