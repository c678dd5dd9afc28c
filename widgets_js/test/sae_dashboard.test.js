// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import dashboard, { emptyListNote, featureOrder, filterFeatures } from "../src/sae_dashboard.js";
import { colorIndex, colorTable, cssColor } from "../src/colors.js";
import { binary, fakeModel, installFakeCanvas } from "./fakes.js";

installFakeCanvas();

// two features; feature 1's card: one context " the cat\n sat" firing 0.5 on " cat" (max activation 2)
function mount(overrides = {}) {
  const model = fakeModel({
    frequencies: binary(Float32Array.from([0.01, 0.2]), "float32", [2]),
    dead: binary(Uint8Array.from([0, 0]), "uint8", [2]),
    title: "SAE",
    cards: [{
      feature: 1, frequency: 0.2, max_activation: 2, dead: false, logits_note: "", bands: [],
      top_logits: [[" Paris", 1.23456]], bottom_logits: [["\n", -0.5]],
      contexts: [{ tokens: [" the", " cat", "\n", " sat"], activations: [0, 0.5, 2, 0], center: 1, activation: 0.5 }],
    }],
    selected: 1,
    hist_counts: binary(Int32Array.from([3, 1]), "int32", [1, 2]),
    hist_edges: binary(Float32Array.from([0, 1, 2]), "float32", [1, 3]),
    status: "", can_act: true, steer_coef: 4, query: "", matches: [], search_note: "",
    ...overrides,
  });
  const el = document.createElement("div");
  document.body.append(el);
  dashboard.render({ model, el });
  return { model, el };
}

describe("sae dashboard", () => {
  it("lists features most frequent first, ties by index", () => {
    expect(featureOrder(Float32Array.from([0.1, 0.5, 0, 0.5]))).toEqual([1, 3, 0, 2]);
  });

  it("filters by feature number, else by the kernel's matches for the query", () => {
    const order = [12, 3, 1, 30];
    expect(filterFeatures(order, "", null)).toEqual(order);
    expect(filterFeatures(order, "3", null)).toEqual([3, 30]);
    expect(filterFeatures(order, " cat", [30, 1])).toEqual([30, 1]);
    expect(filterFeatures(order, "cat", null)).toEqual([]);
  });
});

describe("sae dashboard card", () => {
  it("shows contexts as running text shaded from 0 on the magnitude scale", () => {
    const { el } = mount();
    const tokens = [...el.querySelectorAll(".nm-sae-context .nm-sae-tok")];
    expect(tokens.map((t) => t.textContent)).toEqual([" the", " cat", "⏎", " sat"]);
    expect(tokens[2].querySelector("br")).not.toBeNull(); // a line break is a break
    const table = colorTable("magnitude");
    // 0.5 of max 2: index round(0.25 * 255) = 64 on [0, 2] (the diverging [-2, 2] would give 159)
    expect(tokens[1].style.background).toBe(cssColor(table, 64));
    expect(tokens[0].style.background).toBe("");
    expect(el.querySelector(".nm-sae-logits").textContent).toContain("·Paris+1.23");
  });

  it("says 'queued' the moment steer or ablate is pressed, before the kernel answers", () => {
    const { el, model } = mount();
    const [steer, ablate] = [...el.querySelectorAll(".nm-sae-actions button")];
    steer.click();
    expect(model.sent).toEqual([{ type: "steer", feature: 1, coef: 4 }]);
    expect(el.querySelector(".nm-sae-status").textContent).toMatch(/^steer by feature 1 \(coef 4\): queued/);
    ablate.click();
    expect(el.querySelector(".nm-sae-status").textContent).toMatch(/^ablate feature 1: queued/);
  });

  it("answers a search at once and says when nothing fires", () => {
    const { el, model } = mount();
    const input = el.querySelector("input[type=search]");
    input.value = "zebra";
    input.dispatchEvent(new Event("input"));
    expect(el.querySelector(".nm-sae-more").textContent).toContain("press Enter");
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(model.sent.at(-1)).toEqual({ type: "search", query: "zebra" });
    expect(el.querySelector(".nm-sae-more").textContent).toContain("searching for “zebra”: queued");
    model.state.query = "zebra";
    model.state.search_note = "no feature fires on 'zebra': try another token or a longer text";
    model.set("matches", []);
    expect(el.querySelector(".nm-sae-more").textContent).toBe("no feature fires on 'zebra': try another token or a longer text");
    expect(emptyListNote("7", "", "")).toBe("no feature number starts with 7");
  });
});
