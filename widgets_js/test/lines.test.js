// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import lines, { columnAt, linesSvg, yLimits } from "../src/lines.js";
import { binary, fakeModel, installFakeCanvas, mouse } from "./fakes.js";

installFakeCanvas();

describe("lines", () => {
  it("uses the given y range, else the values with headroom", () => {
    const values = { data: Float32Array.from([0.2, NaN, 0.6]) };
    expect(yLimits({ values, yRange: [0, 1] })).toEqual([0, 1]);
    const [lo, hi] = yLimits({ values, yRange: [] });
    expect(lo).toBeCloseTo(0.18);
    expect(hi).toBeCloseTo(0.62);
  });

  it("maps a pointer to the nearest column, clamped", () => {
    expect(columnAt(62, 474, 5)).toBe(0); // the plot's left edge (62 px of ticks and y title)
    expect(columnAt(462, 474, 5)).toBe(4); // its right edge (width less the margins)
    expect(columnAt(-100, 474, 5)).toBe(0);
    expect(columnAt(162, 474, 5)).toBe(1);
    expect(columnAt(105, 474, 5)).toBe(0); // 43 of 100 px to column 1: still column 0
    expect(columnAt(115, 474, 5)).toBe(1);
  });

  it("draws every series and a click selects a column", () => {
    const model = fakeModel({
      values: binary(Float32Array.from([0.5, 0.7, 0.9, 0.5, 0.5, 0.4]), "float32", [2, 3]),
      series: ["probe", "control"], x_labels: ["2", "5", "9"], x_title: "layer", y_title: "accuracy",
      y_range: [0, 1], dashed: [false, true], title: "t", selected: -1,
    });
    const el = document.createElement("div");
    lines.render({ model, el });
    expect(el.querySelector(".nm-legend").textContent).toBe("probecontrol");
    const canvas = el.querySelector("canvas");
    canvas.dispatchEvent(new MouseEvent("click", { clientX: 5000, clientY: 10, bubbles: true }));
    expect(model.get("selected")).toBe(2);
  });

  it("hover rounds each value to what it means", () => {
    const model = fakeModel({
      values: binary(Float32Array.from([0.4857143, 2.4034348, 2290602, 0.00012345]), "float32", [2, 2]),
      series: ["accuracy", "perplexity"], x_labels: ["0", "1"], x_title: "step", y_title: "y", y_range: [],
      dashed: [], title: "t", selected: -1,
    });
    const el = document.createElement("div");
    lines.render({ model, el });
    const canvas = el.querySelector("canvas");
    mouse(canvas, "mousemove", 0, 10); // column 0
    expect([...el.querySelectorAll(".nm-tooltip .nm-num")].map((td) => td.textContent)).toEqual(["0.486", "2,290,602"]);
    mouse(canvas, "mousemove", 5000, 10); // column 1
    expect([...el.querySelectorAll(".nm-tooltip .nm-num")].map((td) => td.textContent)).toEqual(["2.4", "1.23e-4"]);
  });

  it("exports an SVG whose lines sit where the values are and break at a gap", () => {
    const data = {
      values: { data: Float32Array.from([0.25, 1, NaN, 0.5, 0.75, 0.1, 0.2, 0.3]) }, nSeries: 2, nX: 4,
      names: ["probe", "control"], xLabels: ["2", "5", "9", "12"], xTitle: "step", yTitle: "held-out accuracy (fraction)",
      yRange: [0, 1], dashed: [false, true], title: "probe",
    };
    const svg = linesSvg(data, 374);
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    const runs = [...doc.querySelectorAll("polyline")].map((p) => p.getAttribute("points").split(" ").map((xy) => xy.split(",").map(Number)));
    // x: 62 + 300 k / 3; y: 10 + 216 (1 - v) (higher values higher up)
    const at = (k, v) => [62 + 100 * k, 10 + 216 * (1 - v)];
    const expected = [[at(0, 0.25), at(1, 1)], [at(3, 0.5)], [at(0, 0.75), at(1, 0.1), at(2, 0.2), at(3, 0.3)]];
    expect(runs.length).toBe(3);
    runs.forEach((run, r) => run.forEach(([x, y], i) => {
      expect(x).toBeCloseTo(expected[r][i][0], 0);
      expect(y).toBeCloseTo(expected[r][i][1], 0);
    }));
    expect(doc.querySelectorAll("polyline")[2].getAttribute("stroke-dasharray")).toBe("5 4");
    const texts = [...doc.querySelectorAll("text")].map((t) => t.textContent);
    expect(texts).toContain("held-out accuracy (fraction)");
    expect(texts).toContain("12");
  });
});
