// @vitest-environment jsdom
import { beforeEach, describe, expect, it } from "vitest";
import heatmap, { cellPixels } from "../src/heatmap.js";
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
    expect(texts).toEqual(expect.arrayContaining(["<s>", "␣the", "↵", "␣cat"]));
    expect(root.querySelector(".nm-row-axis").getContext("2d").texts()).toEqual(expect.arrayContaining(["L0", "L2", "layer"]));
    expect(root.querySelector(".nm-title").textContent).toBe("logit lens");
    expect(root.querySelector(".nm-legend").textContent).toContain("accuracy");
    expect(root.querySelector(".nm-legend").textContent).toContain("baseline");
    expect(grid.dataset.metric).toBe("acc");
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
    expect(root.querySelector(".nm-readout").textContent).toContain("␣the");
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
    expect(text).toContain("token ␣the");
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
    expect([...tooltip.querySelectorAll(".nm-topk td")].map((td) => td.textContent)).toEqual(["␣the", "0.1", "↵", "0.1"]);
    mouse(overlay, "mousemove", ...cellCenter(overlay, 0, 3));
    // every metric at the cell, with the exact float32 value (shortest round-trip form), then the details
    const cells = [...tooltip.querySelectorAll("table:not(.nm-topk) td")].map((td) => td.textContent);
    expect(cells).toEqual(["accuracy", "0.3", "Δ loss", "3", "block_size", "4"]);
    mouse(overlay, "mousemove", ...cellCenter(overlay, 1, 1));
    expect(tooltip.textContent).toContain("NaN");
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
