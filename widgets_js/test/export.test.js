// @vitest-environment jsdom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { h, snapshotSvg } from "../src/dom.js";
import dashboard from "../src/sae_dashboard.js";
import { binary, fakeModel, installFakeCanvas } from "./fakes.js";

installFakeCanvas();

/** Every download the views offer, as [filename, decoded SVG text or the data URL]. */
export function captureDownloads() {
  const downloads = [];
  vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function click() {
    const href = this.getAttribute("href");
    const prefix = "data:image/svg+xml;charset=utf-8,";
    downloads.push([this.getAttribute("download"), href.startsWith(prefix) ? decodeURIComponent(href.slice(prefix.length)) : href]);
  });
  return downloads;
}

beforeEach(() => {
  HTMLCanvasElement.prototype.toDataURL = function toDataURL() {
    return `data:image/png;base64,PIXELS-${this.className}`;
  };
});
afterEach(() => vi.restoreAllMocks());

describe("snapshotSvg", () => {
  it("keeps the view's text, turns canvases into their pixels, drops controls, writes the theme in", () => {
    const root = h("div", { className: "nm-root" }, [
      h("div", { className: "nm-title", text: "a < b & c" }),
      h("canvas", { className: "nm-chart" }),
      h("button", { text: "press me" }),
      h("p", { text: "after the chart" }),
    ]);
    // the theme comes from the page's stylesheet, which the SVG will not have
    document.head.append(h("style", { text: ".nm-dark-page .nm-root { --nm-bg: rgb(30, 30, 30); }" }));
    const page = h("div", { className: "nm-dark-page" }, [root]);
    document.body.append(page);
    const svg = snapshotSvg(root);
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    expect(doc.querySelector("parsererror")).toBeNull(); // well-formed XML, text escaped
    const body = doc.querySelector("foreignObject").firstElementChild;
    expect(body.textContent).toBe("a < b & cafter the chart"); // no button text
    const images = [...doc.getElementsByTagName("img")];
    expect(images.map((img) => img.getAttribute("src"))).toEqual(["data:image/png;base64,PIXELS-nm-chart"]);
    expect(doc.getElementsByTagName("canvas").length).toBe(0);
    expect(body.getAttribute("style").replace(/\s/g, "")).toContain("--nm-bg:rgb(30,30,30)");
    // the image stands where the canvas stood: between the title and the paragraph
    expect([...body.children].map((c) => c.tagName.toLowerCase())).toEqual(["div", "img", "p"]);
  });
});

describe("views drawn in HTML export SVG", () => {
  it("the SAE dashboard's SVG holds its card text and its histogram's pixels", () => {
    const downloads = captureDownloads();
    const model = fakeModel({
      frequencies: binary(Float32Array.from([0.01, 0.2]), "float32", [2]),
      dead: binary(Uint8Array.from([0, 0]), "uint8", [2]),
      title: "SAE on block 3",
      cards: [{
        feature: 1, frequency: 0.2, max_activation: 2, dead: false, logits_note: "", bands: [],
        top_logits: [[" Paris", 1.23456]], bottom_logits: [["\n", -0.5]],
        contexts: [{ tokens: [" the", " cat", "\n", " sat"], activations: [0, 0.5, 2, 0], center: 1, activation: 0.5 }],
      }],
      selected: 1,
      hist_counts: binary(Int32Array.from([3, 1]), "int32", [1, 2]),
      hist_edges: binary(Float32Array.from([0, 1, 2]), "float32", [1, 3]),
      status: "", can_act: true, steer_coef: 4, query: "", matches: [], search_note: "",
    });
    const el = document.createElement("div");
    document.body.append(el);
    dashboard.render({ model, el });
    el.querySelector(".nm-export-svg").click();
    expect(downloads.length).toBe(1);
    const [name, svg] = downloads[0];
    expect(name).toBe("sae-dashboard.svg");
    expect(svg).toContain("SAE on block 3");
    expect(svg).toContain("Paris");
    expect(svg).toContain("PIXELS-nm-sae-histogram");
    expect(svg).not.toContain("<button");
  });
});
