// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import scatter, {
  applyView, buildGrid, categorySlots, discOffsets, dimmedColor, matchingPoints, nearestNeighbours, nearestPoint, pointColors,
  pointsInBox, scatterSvg, screenPositions, tokenContext, zoomAt,
} from "../src/scatter.js";
import { categoricalColor } from "../src/colors.js";
import { binary, fakeModel, installFakeCanvas, mouse } from "./fakes.js";

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

describe("zoom, pan, neighbours, search, palette", () => {
  it("zooms about the pointer: the point under it stays, others move away by the factor", () => {
    const base = { sx: Float32Array.from([100, 130, 40]), sy: Float32Array.from([50, 10, 90]) };
    const view = zoomAt({ scale: 1, dx: 0, dy: 0 }, 100, 50, 2, 400, 200); // pointer on point 0, off centre
    const seen = applyView(base, view, 400, 200);
    expect(seen.sx[0]).toBeCloseTo(100);
    expect(seen.sy[0]).toBeCloseTo(50);
    expect(seen.sx[1]).toBeCloseTo(100 + 2 * 30); // 30 px right of the pointer -> 60
    expect(seen.sy[1]).toBeCloseTo(50 - 2 * 40); // 40 px above -> 80 above
    expect(seen.sx[2]).toBeCloseTo(100 - 2 * 60);
    const again = applyView(base, zoomAt(view, 130, 10, 1.5, 400, 200), 400, 200); // a second notch elsewhere
    expect(again.sx[0]).toBeCloseTo(130 + 1.5 * (100 - 130)); // now (130, 10) stays and point 0 moves off it
    expect(again.sy[0]).toBeCloseTo(10 + 1.5 * (50 - 10));
  });

  it("lists the nearest points of the clicked point's own layer, nearest first", () => {
    // layer 1 differs from layer 0, so a wrong layer offset lists other points
    const layer0 = [0, 0, 5, 5, 1, 1, 9, 0, 0, 3];
    const layer1 = [0, 0, 0.5, 0, 7, 7, 0, -2, 3, 0.1];
    const coords = { data: Float32Array.from([...layer0, ...layer1]), shape: [2, 5, 2] };
    const hand = (point) => [0, 1, 2, 3, 4].filter((i) => i !== point)
      .map((i) => ({ index: i, distance: Math.hypot(layer1[2 * i] - layer1[2 * point], layer1[2 * i + 1] - layer1[2 * point + 1]) }))
      .sort((a, b) => a.distance - b.distance);
    const found = nearestNeighbours(coords, 1, 0, 3);
    expect(found.map((f) => f.index)).toEqual([1, 3, 4]);
    expect(found.map((f) => f.index)).toEqual(hand(0).slice(0, 3).map((f) => f.index));
    found.forEach((f, k) => expect(f.distance).toBeCloseTo(hand(0)[k].distance));
  });

  it("finds tokens by text, ignoring case and the leading space, never whole-text points", () => {
    const data = {
      nPoints: 6,
      tokenVocab: [" Paris", "paris", "Lyon", " compare", "PAR"],
      tokenCodes: { data: Int32Array.from([2, 0, 1, 3, 4, 0]) },
      pointPosition: { data: Int32Array.from([0, 1, 2, 3, 4, -1]) },
    };
    expect(matchingPoints(data, " Par")).toEqual([1, 2, 3, 4]);
    expect(matchingPoints(data, "paris")).toEqual([1, 2]);
    expect(matchingPoints(data, "  ")).toEqual([]);
  });

  it("colours the nine most frequent categories and puts the rest in grey", () => {
    // 12 categories, counts shuffled against the codes: code c appears counts[c] times
    const counts = [3, 12, 1, 7, 9, 2, 11, 5, 4, 10, 6, 8];
    const values = Float32Array.from(counts.flatMap((n, c) => Array(n).fill(c)).reverse());
    const byCount = [...counts.keys()].sort((a, b) => counts[b] - counts[a]); // 1, 6, 9, 4, 11, 3, 10, 7, 8, ...
    const { slots } = categorySlots(values);
    byCount.slice(0, 9).forEach((c, slot) => expect(slots.get(c)).toBe(slot));
    for (const c of byCount.slice(9)) expect(slots.has(c)).toBe(false);
    const { rgb } = pointColors(values, { kind: "category" });
    const colourOf = (c) => { const i = values.indexOf(c); return [...rgb.subarray(3 * i, 3 * i + 3)]; };
    expect(colourOf(1)).toEqual(categoricalColor(0));
    expect(colourOf(8)).toEqual(categoricalColor(8)); // 9th most frequent (4 points)
    for (const c of [0, 5, 2]) expect(colourOf(c)).toEqual([150, 150, 150]);
  });

  it("keeps unselected points visible on a dark page: a third of their colour over the background", () => {
    const dark = [30, 30, 30];
    const orange = [242, 142, 43];
    const dimmed = dimmedColor(orange, dark);
    expect(dimmed).toEqual([Math.round(0.35 * 242 + 0.65 * 30), Math.round(0.35 * 142 + 0.65 * 30), Math.round(0.35 * 43 + 0.65 * 30)]);
    expect(dimmed[0] - dark[0]).toBeGreaterThan(60); // far from the background ...
    expect(orange[0] - dimmed[0]).toBeGreaterThan(100); // ... and far from the selected colour
    expect(dimmedColor(orange, [255, 255, 255])[2]).toBe(Math.round(0.35 * 43 + 0.65 * 255));
  });
});

describe("discs", () => {
  it("paints the pixels within the radius, edge included, and nothing else", () => {
    const { dx, dy } = discOffsets(2);
    const pairs = [...dx].map((x, i) => `${x},${dy[i]}`).sort();
    const hand = [];
    for (let y = -3; y <= 3; y++) for (let x = -3; x <= 3; x++) if (Math.hypot(x, y) <= 2) hand.push(`${x},${y}`);
    expect(pairs).toEqual(hand.sort());
    expect(pairs.length).toBe(13); // centre, 4 at distance 1, 4 at sqrt 2, 4 at distance 2
  });
});

describe("render: titles, click, search, zoom, export", () => {
  function widget(n = 40) {
    const coords = randomCoords(2, n, 7);
    const codes = Int32Array.from({ length: n }, (_, i) => i % 4);
    const model = fakeModel({
      coords: binary(coords, "float32", [2, n, 2]), layer_labels: ["3", "7"], layer: 1, colorings: [],
      color_values: null, color_by: "", point_text: binary(new Int32Array(n), "int32", [n]),
      point_position: binary(Int32Array.from({ length: n }, (_, i) => i), "int32", [n]),
      token_codes: binary(codes, "int32", [n]), token_vocab: [" Paris", " the", " of", " Lyon"], texts: ["x"],
      text_labels: [""], axis_titles: [["PC1 · 40% of variance", "PC2 · 20% of variance"], ["axis 1 · 33%", "axis 2 · 25%"]],
      title: "t", selected: [],
    });
    const el = document.createElement("div");
    scatter.render({ model, el });
    const overlay = el.querySelector(".nm-overlay");
    return { model, el, overlay, coords, n };
  }

  it("titles the axes of the shown layer", () => {
    const { el, model } = widget();
    expect(el.querySelector(".nm-axis-x").textContent).toBe("axis 1 · 33%");
    expect(el.querySelector(".nm-axis-y").textContent).toBe("axis 2 · 25%");
    model.set("layer", 0);
    expect(el.querySelector(".nm-axis-x").textContent).toBe("PC1 · 40% of variance");
  });

  it("a click on a point lists its neighbours in the map; search rings the matches", () => {
    const { el, overlay, coords, n } = widget();
    const positions = screenPositions({ data: coords, shape: [2, n, 2] }, 1, 720, 440);
    const target = 5;
    mouse(overlay, "mousedown", positions.sx[target], positions.sy[target]);
    mouse(overlay, "mouseup", positions.sx[target], positions.sy[target]);
    const listed = [...el.querySelectorAll(".nm-neighbours li")].map((li) => Number(/point (\d+)$/.exec(li.textContent)[1]));
    const hand = [...Array(n).keys()].filter((i) => i !== target)
      .sort((a, b) => Math.hypot(coords[2 * n + 2 * a] - coords[2 * n + 2 * target], coords[2 * n + 2 * a + 1] - coords[2 * n + 2 * target + 1])
        - Math.hypot(coords[2 * n + 2 * b] - coords[2 * n + 2 * target], coords[2 * n + 2 * b + 1] - coords[2 * n + 2 * target + 1]));
    expect(listed).toEqual(hand.slice(0, 8));
    const search = el.querySelector(".nm-search");
    search.value = "lyon";
    search.dispatchEvent(new Event("input"));
    expect(el.querySelector(".nm-search-readout").textContent).toBe("10 matches"); // codes i % 4 == 3
    const ctx = overlay.getContext("2d");
    const arcs = ctx.calls.slice(ctx.calls.map((c) => c[0]).lastIndexOf("strokeRect")).filter((c) => c[0] === "arc");
    const ringed = new Set(arcs.filter((c) => c[3] === 6).map((c) => [...Array(n).keys()].find((i) => Math.abs(positions.sx[i] - c[1]) < 1e-3 && Math.abs(positions.sy[i] - c[2]) < 1e-3)));
    expect([...ringed].sort((a, b) => a - b)).toEqual([3, 7, 11, 15, 19, 23, 27, 31, 35, 39]);
  });

  it("the wheel zooms about the pointer and reset brings the first view back", () => {
    const { el, overlay } = widget();
    const points = el.querySelector(".nm-points").getContext("2d");
    const first = points.images.at(-1).data;
    overlay.dispatchEvent(new WheelEvent("wheel", { clientX: 100, clientY: 100, deltaY: -1, bubbles: true, cancelable: true }));
    const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
    expect(same(points.images.at(-1).data, first)).toBe(false);
    el.querySelector(".nm-reset-view").click();
    expect(same(points.images.at(-1).data, first)).toBe(true);
  });

  it("exports an SVG with one circle per visible point, dimmed colours and the axis titles", () => {
    const positions = { sx: Float32Array.from([10, 50, 500]), sy: Float32Array.from([20, 30, 40]) };
    const colors = Uint8ClampedArray.from([200, 0, 0, 0, 200, 0, 0, 0, 200]);
    const svg = scatterSvg({ positions, colors, selected: new Set([1]), width: 100, height: 80, title: "a < b",
      axisTitles: ["PC1", "PC2"], background: [0, 0, 0], foreground: [255, 255, 255], radius: 3 });
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    const circles = [...doc.querySelectorAll("circle")];
    expect(circles.length).toBe(2); // point 2 lies outside the 100 px view
    expect(circles.map((c) => c.getAttribute("fill"))).toEqual([`rgb(${Math.round(0.35 * 200)},0,0)`, "rgb(0,200,0)"]);
    expect(Number(circles[1].getAttribute("cx")) - Number(circles[0].getAttribute("cx"))).toBeCloseTo(40);
    expect([...doc.querySelectorAll("text")].map((t) => t.textContent)).toEqual(["a < b", "PC1", "PC2"]);
  });
});
