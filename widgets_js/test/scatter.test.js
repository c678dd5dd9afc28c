// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import scatter, { buildGrid, nearestPoint, pointsInBox, screenPositions, tokenContext } from "../src/scatter.js";
import { binary, fakeModel, installFakeCanvas } from "./fakes.js";

installFakeCanvas();

function randomCoords(layers, n, seed = 1) {
  let s = seed;
  const next = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  return Float32Array.from({ length: layers * n * 2 }, () => next() * 20 - 10);
}

describe("geometry helpers", () => {
  it("keeps both axes on one scale and puts y up", () => {
    const coords = { data: Float32Array.from([0, 0, 10, 0, 0, 5]), shape: [1, 3, 2] };
    const { sx, sy } = screenPositions(coords, 0, 224, 224);
    expect(sx[1] - sx[0]).toBeCloseTo(200); // x spans the width less the padding
    expect(sy[0] - sy[2]).toBeCloseTo(100); // half the x scale for half the span; higher y is higher up
  });

  it("finds the same nearest point as a brute-force search", () => {
    const n = 2000;
    const coords = { data: randomCoords(1, n), shape: [1, n, 2] };
    const positions = screenPositions(coords, 0, 400, 300);
    const grid = buildGrid(positions, 400, 300);
    for (const [x, y] of [[10, 10], [200, 150], [399, 299], [123.4, 56.7]]) {
      let best = -1;
      let bestDistance = 36;
      for (let i = 0; i < n; i++) {
        const d = (positions.sx[i] - x) ** 2 + (positions.sy[i] - y) ** 2;
        if (d <= bestDistance) [best, bestDistance] = [i, d];
      }
      expect(nearestPoint(grid, x, y)).toBe(best);
    }
  });

  it("selects the points inside a box given by any two corners", () => {
    const positions = { sx: Float32Array.from([1, 5, 9]), sy: Float32Array.from([1, 5, 9]) };
    expect(pointsInBox(positions, 6, 6, 0, 0)).toEqual([0, 1]);
    expect(pointsInBox(positions, 8, 8, 10, 10)).toEqual([2]);
  });

  it("shows a token's context from its own text only", () => {
    const data = {
      nPoints: 5,
      pointText: { data: Int32Array.from([0, 0, 0, 1, 1]) },
      tokenCodes: { data: Int32Array.from([0, 1, 2, 3, 4]) },
      tokenVocab: ["a", " b", "c", "d", "e"],
    };
    expect(tokenContext(data, 2)).toEqual({ before: "a b", token: "c", after: "" }); // text as text
    expect(tokenContext(data, 1)).toEqual({ before: "a", token: "·b", after: "c" });
    expect(tokenContext(data, 3)).toEqual({ before: "", token: "d", after: "e" });
  });
});

describe("render", () => {
  it("draws, and a dragged box sets selected", () => {
    const n = 50;
    const model = fakeModel({
      coords: binary(randomCoords(2, n), "float32", [2, n, 2]), // float16 in production; decoding widens it
      layer_labels: ["3", "7"], layer: 0, colorings: [], color_values: null, color_by: "",
      point_text: binary(new Int32Array(n), "int32", [n]), point_position: binary(new Int32Array(n), "int32", [n]),
      token_codes: binary(new Int32Array(n), "int32", [n]), token_vocab: ["x"], texts: ["x"], text_labels: [""],
      title: "t", selected: [],
    });
    const el = document.createElement("div");
    scatter.render({ model, el });
    const overlay = el.querySelector(".nm-overlay");
    const fire = (type, x, y) => overlay.dispatchEvent(new MouseEvent(type, { clientX: x, clientY: y, bubbles: true }));
    fire("mousedown", 0, 0);
    fire("mousemove", 2000, 2000);
    fire("mouseup", 2000, 2000);
    expect(model.get("selected")).toEqual(Array.from({ length: n }, (_, i) => i));
    fire("mousedown", 5, 5);
    fire("mouseup", 5, 5);
    expect(model.get("selected")).toEqual([]); // a click clears
  });
});
