// @vitest-environment jsdom
import { beforeEach, describe, expect, it } from "vitest";
import heatmap, { cellPixels, textColourOn } from "../src/heatmap.js";
import { colorTable } from "../src/colors.js";
import { binary, fakeModel, float16Payload, installFakeCanvas, mouse } from "./fakes.js";

installFakeCanvas();

const ROWS = 3;
const COLS = 4;

function state(overrides = {}) {
  const accuracy = Float32Array.from({ length: ROWS * COLS }, (_, i) => i / 10);
  accuracy[5] = NaN;
  const delta = Float32Array.from({ length: ROWS * COLS }, (_, i) => (i % 2 ? 1 : -1) * i);
  return {
    values: binary(Float32Array.from([...accuracy, ...delta]), "float32", [2, ROWS, COLS]),
    metrics: [
      { name: "acc", label: "accuracy", scale: "sequential", center: null, fmt: ".2f" },
      { name: "delta", label: "Δ loss", scale: "diverging", center: 0, fmt: "+.3f" },
    ],
    metric: "acc",
    row_labels: ["L0", "L1", "L2"],
    col_labels: ["<s>", " the", "\n", " cat"],
    row_title: "layer",
    col_title: "token",
    title: "logit lens",
    marks: [{ row: 0, col: 0, label: "baseline" }],
    selected: [],
    detail_names: [],
    detail_values: null,
    detail_token_ids: null,
    detail_probs: null,
    detail_vocab: [],
    tooltip_template: "",
    ...overrides,
  };
}

function mount(overrides) {
  const model = fakeModel(state(overrides));
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = heatmap.render({ model, el });
  const root = el.querySelector(".nm-root");
  const grid = root.querySelector(".nm-grid");
  const overlay = root.querySelector(".nm-overlay");
  const cellImages = () => {
    // the one-pixel-per-cell canvas is the drawImage source of the grid
    const draw = grid.getContext("2d").calls.filter((c) => c[0] === "drawImage").at(-1);
    return draw[1].getContext("2d").images.at(-1);
  };
  return { model, el, root, grid, overlay, cellImages, cleanup };
}

/** Client coordinates of a cell centre (jsdom puts every box at 0,0). */
function cellCenter(overlay, row, col) {
  const width = parseFloat(overlay.style.width) / COLS;
  const height = parseFloat(overlay.style.height) / ROWS;
  return [(col + 0.5) * width, (row + 0.5) * height];
}

beforeEach(() => {
  document.body.replaceChildren();
});

describe("HeatmapWidget view", () => {
  it("renders cells, axis labels with visible whitespace, legend and title", () => {
    const { root, grid, cellImages } = mount();
    const image = cellImages();
    expect([image.width, image.height]).toEqual([COLS, ROWS]);
    expect(image.data[5 * 4 + 3]).toBe(0); // NaN cell is transparent, the hatch shows through
    expect(image.data[4 * 4 + 3]).toBe(255);
    const texts = grid.getContext("2d").texts();
    // tokens as text: a faint "·" drawn apart for a leading space, "\\n" for a line break; no ␣ / ↵ glyphs
    expect(texts).toEqual(expect.arrayContaining(["<s>", "·", "the", "\\n", "cat"]));
    expect(texts.some((t) => /[␣↵]/.test(t))).toBe(false);
    expect(root.querySelector(".nm-row-axis").getContext("2d").texts()).toEqual(expect.arrayContaining(["L0", "L2", "layer"]));
    expect(root.querySelector(".nm-title").textContent).toBe("logit lens");
    expect(root.querySelector(".nm-legend").textContent).toContain("accuracy");
    expect(root.querySelector(".nm-legend").textContent).toContain("baseline");
    expect(grid.dataset.metric).toBe("acc");
  });

  it("writes each cell's rounded value in the cell, none in an undefined one", () => {
    const { grid } = mount();
    const texts = grid.getContext("2d").texts();
    // accuracy is i / 10 (float32); cell 5 is NaN
    for (const expected of ["0.1", "0.4", "0.7", "1.1"]) expect(texts).toContain(expected);
    expect(texts).not.toContain("0.5");
    expect(grid.dataset.cellTexts).toBe(String(ROWS * COLS - 1));
  });

  it("writes the top token in every lens cell (the logit-lens picture) and says so", () => {
    const ids = new Int32Array(ROWS * COLS * 2).fill(-1);
    for (let cell = 0; cell < ROWS * COLS; cell++) ids[cell * 2] = cell % 3; // top-1 cycles through the vocab
    ids[2 * 2 + 1] = 0;
    const { grid, root } = mount({
      detail_token_ids: binary(ids, "int32", [ROWS, COLS, 2]),
      detail_probs: float16Payload(Array.from({ length: ROWS * COLS * 2 }, () => 0.25), [ROWS, COLS, 2]),
      detail_vocab: [" Paris", "\n", "cat"],
    });
    const texts = grid.getContext("2d").texts();
    const count = (t) => texts.filter((x) => x === t).length;
    expect(count("·Paris")).toBe(4); // cells 0, 3, 6, 9
    expect(count("cat")).toBe(3 + 1); // cells 2, 8, 11 (cell 5 is NaN: no text) and the axis label " cat"
    expect(count("\\n")).toBe(4 + 1); // cells 1, 4, 7, 10 and the axis label of column 2
    expect(root.querySelector(".nm-legend").textContent).toContain("top token");
  });

  it("draws a mark as a corner triangle, not a box that reads as a selection", () => {
    const { grid } = mount();
    const calls = grid.getContext("2d").calls;
    expect(calls.filter((c) => c[0] === "strokeRect")).toEqual([]);
    const path = calls.filter((c) => c[0] === "moveTo" || c[0] === "lineTo").slice(0, 3).map((c) => c.slice(1));
    // mark at (0, 0) with 56 x 26 px cells: triangle of side min(9, 56 * 0.45, 26 * 0.6) = 9 at the top-right corner
    expect(path).toEqual([[47, 0], [56, 0], [56, 9]]);
  });

  it("chooses black text on light cells and white on dark ones", () => {
    expect(textColourOn([253, 231, 37])).toBe("#000000"); // viridis' yellow end
    expect(textColourOn([68, 1, 84])).toBe("#ffffff"); // viridis' purple end
    expect(textColourOn([120, 200, 20])).toBe("#000000"); // luminance 0.2126*120+0.7152*200+0.0722*20 = 170.0
    expect(textColourOn([200, 60, 200])).toBe("#ffffff"); // 42.5 + 42.9 + 14.4 = 99.8
  });

  it("colours a log-scale metric by log10, so one huge value leaves the rest readable", () => {
    const plane = Float32Array.from([1, 10, 100, 1000]);
    const { pixels, lo, hi } = cellPixels(plane, { scale: "sequential", log: true }, 1, 4);
    expect([lo, hi]).toEqual([0, 3]);
    const table = colorTable("sequential");
    [0, 85, 170, 255].forEach((index, cell) => {
      expect([...pixels.subarray(cell * 4, cell * 4 + 3)]).toEqual([...table.subarray(index * 3, index * 3 + 3)]);
    });
    const linear = cellPixels(plane, { scale: "sequential" }, 1, 4).pixels;
    expect([...linear.subarray(4, 7)]).toEqual([...table.subarray(2 * 3, 3 * 3)]); // linear: 10 is index round(9/999*255) = 2
  });

  it("switches metric from the dropdown and redraws different pixels", () => {
    const { model, root, cellImages, grid } = mount();
    const before = cellImages().data;
    const select = root.querySelector("select.nm-metric");
    expect([...select.options].map((o) => o.textContent)).toEqual(["accuracy", "Δ loss"]);
    select.value = "delta";
    select.dispatchEvent(new Event("change"));
    expect(model.sets).toContainEqual(["metric", "delta"]);
    expect(model.saves).toBe(1);
    expect(grid.dataset.metric).toBe("delta");
    expect(cellImages().data).not.toEqual(before);
    expect(root.querySelector(".nm-legend").textContent).toContain("centre +0.000");
  });

  it("hides the dropdown for a single metric", () => {
    const { root } = mount({
      values: binary(new Float32Array(ROWS * COLS).fill(1), "float32", [1, ROWS, COLS]),
      metrics: [{ name: "only", scale: "sequential" }],
      metric: "only",
    });
    expect(root.querySelector("select.nm-metric")).toBe(null);
  });

  it("click selects a cell, syncs it, and a second click clears it", () => {
    const { model, root, overlay } = mount();
    mouse(overlay, "click", ...cellCenter(overlay, 2, 1));
    expect(model.sets.at(-1)).toEqual(["selected", [2, 1]]);
    expect(model.saves).toBe(1);
    expect(root.dataset.selected).toBe("2,1");
    expect(root.querySelector(".nm-readout").textContent).toContain("token ·the: 0.9");
    expect(model.sent).toEqual([{ event: "choose", row: 2, col: 1 }]);
    mouse(overlay, "click", ...cellCenter(overlay, 2, 1));
    expect(model.sets.at(-1)).toEqual(["selected", []]);
    expect(root.dataset.selected).toBe("");
    expect(model.sent.length).toBe(1); // clearing the selection chooses nothing
  });

  it("shows row labels as written and only tokens with visible spaces", () => {
    const { model, root } = mount({ row_labels: ["30 (block 27)", "L1", "L2"] });
    model.set("selected", [0, 1]);
    const text = root.querySelector(".nm-readout").textContent;
    expect(text).toContain("layer 30 (block 27)");
    expect(text).toContain("token ·the");
  });

  it("follows selection set from Python and supports arrow keys", () => {
    const { model, root, overlay } = mount();
    model.set("selected", [1, 3]);
    expect(root.dataset.selected).toBe("1,3");
    overlay.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowUp" }));
    expect(model.state.selected).toEqual([0, 3]);
    expect(model.sent).toEqual([]); // arrows only preview
    overlay.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(model.sent).toEqual([{ event: "choose", row: 0, col: 3 }]);
    overlay.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
    expect(model.state.selected).toEqual([]);
  });

  it("hover shows the exact values, details, marks and top-k tokens", () => {
    const ids = new Int32Array(ROWS * COLS * 2).fill(-1);
    ids[0] = 1; // cell (0, 0): " the", then "\n"
    ids[1] = 0;
    const { root, overlay } = mount({
      detail_names: ["block_size"],
      detail_values: binary(Float32Array.from({ length: ROWS * COLS }, (_, i) => i + 1), "float32", [1, ROWS, COLS]),
      detail_token_ids: binary(ids, "int32", [ROWS, COLS, 2]),
      detail_probs: float16Payload(Array.from({ length: ROWS * COLS * 2 }, () => 0.1), [ROWS, COLS, 2]),
      detail_vocab: ["\n", " the"],
      tooltip_template: "config ({row_index}, {col_index}) · block {block_size:d}",
    });
    const tooltip = root.querySelector(".nm-tooltip");
    mouse(overlay, "mousemove", ...cellCenter(overlay, 0, 0));
    expect(tooltip.style.display).toBe("block");
    expect(tooltip.querySelector(".nm-tip-title").textContent).toBe("config (0, 0) · block 1");
    expect(tooltip.textContent).toContain("baseline");
    expect([...tooltip.querySelectorAll(".nm-topk td")].map((td) => td.textContent)).toEqual(["·the", "0.1", "\\n", "0.1"]);
    mouse(overlay, "mousemove", ...cellCenter(overlay, 0, 3));
    // every metric at the cell, with the exact float32 value (shortest round-trip form), then the details
    const cells = [...tooltip.querySelectorAll("table:not(.nm-topk) td")].map((td) => td.textContent);
    expect(cells).toEqual(["accuracy", "0.3", "Δ loss", "3", "block_size", "4"]);
    mouse(overlay, "mousemove", ...cellCenter(overlay, 1, 1));
    expect(tooltip.textContent).toContain("–");
    mouse(overlay, "mouseleave", 0, 0);
    expect(tooltip.style.display).toBe("none");
  });

  it("thins labels and scrolls at 64 x 1024 without a DOM node per cell", () => {
    const rows = 64;
    const cols = 1024;
    const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i));
    const { root, grid } = mount({
      values: binary(values, "float32", [1, rows, cols]),
      metrics: [{ name: "m", scale: "diverging", center: 0 }],
      metric: "m",
      row_labels: Array.from({ length: rows }, (_, i) => `L${i}`),
      col_labels: Array.from({ length: cols }, (_, i) => `t${i}`),
      marks: [],
    });
    expect(root.querySelectorAll("*").length).toBeLessThan(60);
    expect(grid.getContext("2d").texts().length).toBeLessThan(cols / 3);
    expect(root.querySelector(".nm-fit")).not.toBe(null); // 1024 columns overflow 800 px
    expect(parseFloat(grid.style.width)).toBeGreaterThan(800);
  });

  it("cleans up its listeners", () => {
    const { model, cleanup } = mount();
    expect(model.listenerCount()).toBeGreaterThan(0);
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("cellPixels", () => {
  it("puts the diverging centre at the neutral colour", () => {
    const { pixels, lo, hi } = cellPixels(new Float32Array([-2, 0, 1]), { scale: "diverging", center: 0 }, 1, 3);
    expect([lo, hi]).toEqual([-2, 2]);
    expect(pixels[4]).toBeGreaterThan(235); // centre: near white
    expect(pixels[0]).toBeLessThan(pixels[2]); // negative: blue
  });
});

describe("heatmap export", () => {
  it("writes the shown metric as an SVG: one rect per defined cell in the widget's colours, labels, legend", async () => {
    const { heatmapSvg, readHeatmap } = await import("../src/heatmap.js");
    const model = fakeModel(state());
    const data = readHeatmap(model);
    const colors = { bg: "#ffffff", fg: "#111111", muted: "#666666" };
    const svg = new DOMParser().parseFromString(heatmapSvg(data, 0, colors), "image/svg+xml");
    const rects = [...svg.querySelectorAll("rect[x]")];
    expect(rects.length).toBe(ROWS * COLS - 1); // the NaN cell has none
    // accuracy i / 10 over 0 .. 1.1: cell 4 (0.4) sits at index round(0.4 / 1.1 * 255) = 93 of viridis
    const table = colorTable("sequential");
    const cell4 = rects.find((r) => r.querySelector("title").textContent === "L1 · <s>: 0.4");
    expect(cell4.getAttribute("fill")).toBe(`rgb(${table[93 * 3]}, ${table[93 * 3 + 1]}, ${table[93 * 3 + 2]})`);
    // geometry: row r is y, column c is x (cell (0, 1) sits one cell right of and one cell above cell (1, 0))
    const cell1 = rects.find((r) => r.querySelector("title").textContent === "L0 · ·the: 0.1");
    const at = (rect, name) => Number(rect.getAttribute(name));
    expect([at(cell1, "x") - at(cell4, "x"), at(cell1, "y") - at(cell4, "y")]).toEqual([18, -18]);
    const texts = [...svg.querySelectorAll("text")].map((t) => t.textContent);
    expect(texts).toEqual(expect.arrayContaining(["logit lens", "L0", "L2", "·the", "\\n", "layer", "token", "accuracy: 0 … 1.1"]));
    const { root } = mount();
    expect([...root.querySelectorAll(".nm-toolbar button")].map((b) => b.textContent)).toEqual(["SVG", "PNG"]);
  });
});
