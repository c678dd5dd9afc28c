// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import lines, { columnAt, yLimits } from "../src/lines.js";
import { binary, fakeModel, installFakeCanvas } from "./fakes.js";

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
    expect(columnAt(48, 460, 5)).toBe(0); // the plot's left edge
    expect(columnAt(448, 460, 5)).toBe(4); // its right edge (width less the margins)
    expect(columnAt(-100, 460, 5)).toBe(0);
    expect(columnAt(148, 460, 5)).toBe(1);
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
});
