// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import checkup, { actionLabel, viewData } from "../src/checkup.js";
import { binary, fakeModel, installFakeCanvas } from "./fakes.js";

installFakeCanvas();

const arrays = {
  sink_mass: { data: Float32Array.from([0.1, 0.9, 0.2, 0.3]), shape: [2, 2] },
  head_cosine: { data: Float32Array.from([1, 0.5, 0.5, 1, 1, 0.99, 0.99, 1]), shape: [2, 2, 2] },
  resid_max: { data: Float32Array.from([10, 1000, 20, 2000]), shape: [2, 2] },
  resid_median: { data: Float32Array.from([0.5, 1]), shape: [2] },
  neuron_max: { data: Float32Array.from([1, 2, 0, 4, 5, 6]), shape: [2, 3] },
  block_influence: { data: Float32Array.from([0.2, 0.1]), shape: [2] },
};

describe("checkup", () => {
  it("picks the slice of the array a finding points at", () => {
    const grid = viewData({ view: "sink_mass", layer: 0, head: 1 }, arrays);
    expect(grid).toMatchObject({ kind: "grid", rows: 2, cols: 2, mark: { row: 0, col: 1 } });
    const cosine = viewData({ view: "head_cosine", layer: 1, head: 1 }, arrays);
    expect(Array.from(cosine.values)).toEqual([1, Math.fround(0.99), Math.fround(0.99), 1]);
    const massive = viewData({ view: "resid_max", layer: 1, dim: 1 }, arrays);
    expect(Array.from(massive.values)).toEqual([3, Math.log10(2000)].map(Math.fround));
    expect(Array.from(massive.line)).toEqual([Math.log10(500), 3].map(Math.fround)); // max(1000 x median, 100)
    const neurons = viewData({ view: "neuron_max", layer: 0, dim: 2 }, arrays);
    expect(neurons.values.length).toBe(3);
    expect(neurons.values[2]).toBe(-12); // a dead neuron sits at the floor
    expect(viewData({ view: "block_influence", layer: 1 }, arrays)).toMatchObject({ kind: "bars", mark: 1 });
    expect(viewData({ view: "missing" }, arrays)).toBeNull();
  });

  it("lists findings, opens one onto its view and sends its action", () => {
    const model = fakeModel({
      findings: [
        { severity: "medium", kind: "attention_sink", title: "sink", explanation: "why", view: "sink_mass", layer: 0,
          head: 1, action: { kind: "ablate_heads", heads: [[0, 1]] } },
        { severity: "info", kind: "block_influence", title: "bi", explanation: "", view: "block_influence", layer: 1,
          action: null },
      ],
      arrays: { sink_mass: binary(arrays.sink_mass.data, "float32", [2, 2]),
        block_influence: binary(arrays.block_influence.data, "float32", [2]) },
      matrix_names: [], title: "Checkup", status: "", actions_enabled: true,
    });
    const el = document.createElement("div");
    document.body.append(el);
    checkup.render({ model, el });
    expect([...el.querySelectorAll(".nm-severity")].map((b) => b.textContent)).toEqual(["medium", "info"]);
    const exported = [];
    const realClick = HTMLAnchorElement.prototype.click;
    HTMLAnchorElement.prototype.click = function click() { exported.push([this.download, decodeURIComponent(this.href.split(",").slice(1).join(","))]); };
    el.querySelector(".nm-export-svg").click();
    HTMLAnchorElement.prototype.click = realClick;
    expect(exported.map(([name]) => name)).toEqual(["checkup.svg"]);
    expect(exported[0][1]).toContain("<foreignObject");
    expect(exported[0][1]).toContain("sink"); // the findings' titles are in the picture
    expect(el.querySelector(".nm-readout").textContent).toBe("0 high · 1 medium · 1 info");
    // the action sits in the finding's own row, pressable while the row is closed, and answers at once
    const first = el.querySelector(".nm-finding");
    expect(first.querySelector(".nm-finding-head button.nm-action")).not.toBeNull();
    expect(first.classList.contains("nm-open")).toBe(false);
    first.querySelector("button.nm-action").click();
    expect(model.sent).toEqual([{ type: "apply", index: 0 }]);
    expect(first.classList.contains("nm-open")).toBe(false); // pressing the action does not toggle the row
    expect(el.querySelector(".nm-status").textContent).toBe("sink: ablate this head and diff: queued, the kernel runs it when it is free...");
    expect(el.querySelectorAll("button.nm-action").length).toBe(1);
    // the row looks and acts like a disclosure: a chevron that turns, aria-expanded
    const head = first.querySelector(".nm-finding-head");
    expect([head.querySelector(".nm-chevron").textContent, head.getAttribute("aria-expanded")]).toEqual(["▸", "false"]);
    head.click();
    expect(first.classList.contains("nm-open")).toBe(true);
    expect([head.querySelector(".nm-chevron").textContent, head.getAttribute("aria-expanded")]).toEqual(["▾", "true"]);
    expect(el.querySelector(".nm-finding canvas")).not.toBeNull();
    model.set("status", "Applied: ablate head 0.1");
    expect(el.querySelector(".nm-status").textContent).toBe("Applied: ablate head 0.1");
  });

  it("says what each action does", () => {
    expect(actionLabel({ kind: "massive", mode: "mean" })).toBe("set to their mean and diff");
    expect(actionLabel({ kind: "ablate_heads" })).toBe("ablate this head and diff");
  });
});
