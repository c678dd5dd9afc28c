// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { featureOrder, filterFeatures } from "../src/sae_dashboard.js";

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
