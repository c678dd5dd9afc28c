// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import diff, { changeShade, perplexityNote, readDiff, statRows } from "../src/diff.js";
import { colorTable } from "../src/colors.js";
import { binary, fakeModel } from "./fakes.js";

const T = 4;

function state(overrides = {}) {
  const before = Float32Array.from([-1, -2, -0.5, NaN, -3, -1, NaN, NaN]);
  const after = Float32Array.from([-1, -4, -0.5, NaN, -3, -0.25, NaN, NaN]);
  return {
    title: "after vs before · tiny",
    labels: ["before", "after"],
    prompts: ["The capital of France is", "2 + 2 ="],
    pieces_before: [[" Paris", ".", "\n"], [" 4", "."]],
    pieces_after: [[" Paris", ",", " the"], [" 4", "."]],
    divergence: [1, -1],
    logprob_before: binary(before, "float32", [2, T]),
    logprob_after: binary(after, "float32", [2, T]),
    topk_pieces_before: [[" Paris", " the"], [" 4", " 5"]],
    topk_pieces_after: [[" Paris", " Lyon"], [" 4", " four"]],
    topk_probs: binary(Float32Array.from([0.9, 0.05, 0.6, 0.3, 0.8, 0.1, 0.7, 0.2]), "float32", [2, 2, 2]),
    stats: [
      { label: "before", perplexity: 12.5, depth: 4, parameters: 45344, program: "0-3" },
      { label: "after", perplexity: 13.25, depth: 6, parameters: 45344, program: "0-2,1-3" },
    ],
    selected: -1,
    ...overrides,
  };
}

function mount(overrides) {
  const model = fakeModel(state(overrides));
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = diff.render({ model, el });
  return { model, el, cleanup };
}

describe("readDiff and statRows", () => {
  it("computes the log-prob change and keeps NaN past the end", () => {
    const data = readDiff(fakeModel(state()));
    expect(Array.from(data.change.slice(0, 3))).toEqual([0, -2, 0]);
    expect(Number.isNaN(data.change[3])).toBe(true);
    expect(data.change[5]).toBeCloseTo(0.75);
  });

  it("shows equal values as '=' and signed changes otherwise", () => {
    const rows = statRows(state().stats);
    expect(rows[0]).toEqual(["perplexity (lower is better)", "12.5", "13.3", "+0.75"]); // 3 significant digits
    expect(rows[1]).toEqual(["depth (blocks run)", "4", "6", "+2"]);
    expect(rows[2]).toEqual(["parameters", "45,344", "45,344", "="]);
    expect(rows[3]).toEqual(["program", "0-3", "0-2,1-3", "changed"]);
    const stats = state().stats.map((side) => ({ ...side }));
    stats[1].parameters = 45344 + 3540096;
    expect(statRows(stats)[2]).toEqual(["parameters", "45,344", "3,585,440", "+3,540,096"]);
    stats[1].parameters = 1000;
    expect(statRows(stats)[2][3]).toBe("-44,344");
  });
});

describe("DiffWidget render", () => {
  it("shows both continuations with the first divergence marked on both sides", () => {
    const { el } = mount();
    const cards = el.querySelectorAll(".nm-diff-card");
    expect(cards).toHaveLength(2);
    const [beforeText, afterText] = cards[0].querySelectorAll(".nm-diff-text");
    expect(beforeText.textContent).toBe(" Paris.\n");
    expect(afterText.textContent).toBe(" Paris, the");
    for (const column of [beforeText, afterText]) {
      const first = column.querySelectorAll(".nm-diff-first");
      expect(first).toHaveLength(1);
      expect(first[0].dataset.position).toBe("1");
      expect(column.querySelectorAll(".nm-diff-diverged")).toHaveLength(2);
    }
    expect(cards[0].classList.contains("nm-diff-changed")).toBe(true);
    expect(cards[1].classList.contains("nm-diff-changed")).toBe(false);
    expect(cards[1].querySelectorAll(".nm-diff-first")).toHaveLength(0);
    expect(el.querySelector(".nm-readout").textContent).toBe("1 of 2 continuations changed");
  });

  it("shades only tokens whose log-prob changed, with exact values in the tooltip", () => {
    const { el } = mount();
    const tokens = el.querySelectorAll(".nm-diff-card")[0].querySelectorAll(".nm-diff-text")[0].children;
    expect(tokens[1].title).toBe(". · log p -2 → -4 (Δ -2)");
    // the largest fall takes the full blue end of the scale; an unchanged token stays unshaded
    expect(tokens[1].style.background).toBe("rgb(33, 102, 172)");
    expect(tokens[1].style.color).toBe("rgb(255, 255, 255)");
    expect(tokens[0].style.background).toBe("");
    expect(tokens[0].style.color).toBe("");
  });

  it("shades by the size and sign of the change", () => {
    const table = colorTable("diverging");
    expect(changeShade(0, 2, table)).toBeNull();
    expect(changeShade(NaN, 2, table)).toBeNull();
    expect(changeShade(-1, 2, table)).toEqual({ background: "rgba(33, 102, 172, 0.500)", color: "" });
    expect(changeShade(4, 2, table)).toEqual({ background: "rgba(178, 24, 43, 1.000)", color: "#ffffff" });
  });

  it("marks the end of a continuation that stops where the other goes on", () => {
    const { el } = mount({ pieces_before: [[" Paris"], [" 4", "."]], divergence: [1, -1] });
    const beforeText = el.querySelectorAll(".nm-diff-card")[0].querySelectorAll(".nm-diff-text")[0];
    expect(beforeText.querySelector(".nm-diff-end.nm-diff-first")).not.toBeNull();
  });

  it("renders the stats table", () => {
    const { el } = mount();
    const cells = [...el.querySelectorAll(".nm-diff-stats tr")].map((tr) => [...tr.children].map((c) => c.textContent));
    expect(cells[0]).toEqual(["", "before", "after", "change"]);
    expect(cells[2]).toEqual(["depth (blocks run)", "4", "6", "+2"]);
  });

  it("selects a prompt on click and shows both top-k lists, syncing back to Python", () => {
    const { el, model } = mount();
    expect(el.querySelector(".nm-diff-topk")).toBeNull();
    el.querySelectorAll(".nm-diff-card")[1].click();
    expect(model.get("selected")).toBe(1);
    expect(model.saves).toBe(1);
    const tables = el.querySelectorAll(".nm-diff-topk");
    expect(tables).toHaveLength(2);
    const rows = [...tables[1].querySelectorAll("tr")].map((tr) => [...tr.children].slice(0, 2).map((c) => c.textContent));
    expect(rows).toEqual([["·4", "70%"], ["·four", "20%"]]);
    expect(el.querySelector(".nm-diff-selected .nm-readout").textContent).toContain("identical continuations");
    // a second click on the selected card closes it; the keyboard works too
    el.querySelectorAll(".nm-diff-card")[1].click();
    expect(model.get("selected")).toBe(-1);
    el.querySelectorAll(".nm-diff-card")[0].dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    expect(model.get("selected")).toBe(0);
    expect(el.querySelector(".nm-diff-selected .nm-readout").textContent).toContain("part at token 1");
  });

  it("redraws when Python sends new data, and cleans up its listeners", () => {
    const { el, model, cleanup } = mount();
    model.set("prompts", ["only one"]);
    model.set("pieces_before", [["x"]]);
    expect(el.querySelectorAll(".nm-diff-card")).toHaveLength(1);
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });

  it("says so when there is nothing to compare", () => {
    const empty = binary(new Float32Array(0), "float32", [0, 0]);
    const { el } = mount({ prompts: [], pieces_before: [], pieces_after: [], divergence: [], logprob_before: empty,
      logprob_after: empty, topk_probs: binary(new Float32Array(0), "float32", [2, 0, 0]) });
    expect(el.querySelector(".nm-empty").textContent).toBe("No prompts to compare.");
  });
});

describe("numbers and words a reader can take in", () => {
  it("rounds a huge perplexity to a whole number with separators", () => {
    const rows = statRows([
      { label: "before", perplexity: 16.0549, depth: 30, parameters: 134515008, program: "0-29" },
      { label: "ablate", perplexity: 2290602.4, depth: 30, parameters: 134515008, program: "0-29" },
    ]);
    expect(rows[0]).toEqual(["perplexity (lower is better)", "16.1", "2,290,602", "+2,290,586"]);
  });

  it("says what text the perplexity is measured on, whole text on hover", () => {
    const text = "The sun rose over the quiet harbour, and the boats went out one by one to fish the morning tide.";
    const note = perplexityNote(text);
    expect(note.textContent).toMatch(/^perplexity measured on a built-in text of 20 words: “The sun rose over/);
    expect(note.textContent.endsWith("…”")).toBe(true);
    expect(note.title).toBe(text);
  });
});

describe("export", () => {
  it("the diff downloads as an SVG holding its table and continuations", () => {
    const { el } = mount();
    const exported = [];
    const realClick = HTMLAnchorElement.prototype.click;
    HTMLAnchorElement.prototype.click = function click() { exported.push([this.download, decodeURIComponent(this.href.split(",").slice(1).join(","))]); };
    el.querySelector(".nm-export-svg").click();
    HTMLAnchorElement.prototype.click = realClick;
    expect(exported.map(([name]) => name)).toEqual(["diff.svg"]);
    const doc = new DOMParser().parseFromString(exported[0][1], "image/svg+xml");
    expect(doc.querySelector("parsererror")).toBeNull();
    const text = doc.querySelector("foreignObject").textContent;
    expect(text).toContain(el.querySelector(".nm-diff-card").textContent); // the first card, as on the page
    expect(text).toContain("perplexity");
  });
});
