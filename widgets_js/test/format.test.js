import { describe, expect, it } from "vitest";
import { fillTemplate, formatNumber, formatValue, tokenLabel, tokenParts, truncate, visibleToken } from "../src/format.js";
import { colorIndex, colorTable, parseColor, valueRange } from "../src/colors.js";

describe("formatNumber", () => {
  it("follows the Python format-spec subset", () => {
    expect(formatNumber(0.12345, ".3f")).toBe("0.123");
    expect(formatNumber(0.5, "+.2f")).toBe("+0.50");
    expect(formatNumber(-0.5, "+.2f")).toBe("-0.50");
    expect(formatNumber(0.256, ".1%")).toBe("25.6%");
    expect(formatNumber(12345.6, ".2e")).toBe("1.23e+04");
    expect(formatNumber(6.7, "d")).toBe("7");
    expect(formatNumber(0.000123456, "")).toBe("0.0001235");
    expect(formatNumber(NaN, ".3f")).toBe("–");
  });
});

describe("visibleToken", () => {
  it("shows whitespace", () => {
    expect(visibleToken(" the")).toBe("␣the");
    expect(visibleToken("\n\n")).toBe("↵↵");
    expect(visibleToken("\ta b")).toBe("⇥a␣b");
    expect(visibleToken("")).toBe("∅");
    expect(truncate("abcdefgh", 4)).toBe("abc…");
  });
});

describe("fillTemplate", () => {
  it("fills names with optional formats and leaves unknown names visible", () => {
    const text = fillTemplate("config ({i:d}, {j:d}) block {size} Δ {delta:+.3f} {oops}", { i: 3, j: 10, size: 7, delta: -0.01234 });
    expect(text).toBe("config (3, 10) block 7 Δ -0.012 {oops}");
  });
});

describe("colour scales", () => {
  it("centres diverging ranges and skips NaN", () => {
    const data = new Float32Array([NaN, -1, 3, 0.5]);
    expect(valueRange(data, { scale: "sequential" })).toEqual({ lo: -1, hi: 3, clipped: false });
    expect(valueRange(data, { scale: "diverging", center: 1 })).toEqual({ lo: -1, hi: 3, clipped: false });
    expect(valueRange(data, { scale: "diverging", center: 0 })).toEqual({ lo: -3, hi: 3, clipped: false });
    expect(valueRange(new Float32Array([NaN]), { scale: "sequential" })).toEqual({ lo: 0, hi: 1, clipped: false });
    expect(valueRange(data, { scale: "sequential", vmin: 0, vmax: 10 })).toEqual({ lo: 0, hi: 10, clipped: false });
  });

  it("clips to quantiles so one huge value does not flatten the rest", () => {
    // 0..99 and one sink of 22000: the 2-98th percentiles (numpy's linear rule) are 2 and 98.
    const data = new Float32Array([...Array.from({ length: 100 }, (_, i) => i), 22000, NaN]);
    const range = valueRange(data, { scale: "sequential", clip: 0.98 });
    expect(range.lo).toBeCloseTo(2.0, 5);
    expect(range.hi).toBeCloseTo(98.0, 5);
    expect(range.clipped).toBe(true);
    const spread = valueRange(new Float32Array([-1, 0.5, 1]), { scale: "sequential", clip: 1 });
    expect(spread).toEqual({ lo: -1, hi: 1, clipped: false });
  });

  it("maps the centre of a diverging scale to near white and clamps", () => {
    const table = colorTable("diverging");
    const middle = colorIndex(0, -1, 1) * 3;
    expect(Math.min(table[middle], table[middle + 1], table[middle + 2])).toBeGreaterThan(235);
    expect(colorIndex(-5, 0, 1)).toBe(0);
    expect(colorIndex(5, 0, 1)).toBe(255);
  });

  it("centres the diverging scale on a dark theme's background, keeping blue low and red high", () => {
    const table = colorTable("diverging", "rgb(17, 17, 17)");
    const at = (i) => [table[i * 3], table[i * 3 + 1], table[i * 3 + 2]];
    // the centre (index 127.5) sits between two table entries: both within a step of the background
    for (const channel of at(colorIndex(0, -1, 1))) expect(Math.abs(channel - 17)).toBeLessThanOrEqual(3);
    const [low, high] = [at(0), at(255)];
    expect(low[2]).toBeGreaterThan(low[0]); // blue end
    expect(high[0]).toBeGreaterThan(high[2]); // red end
    // a light background keeps the published near-white centre (the figures use it too)
    expect(colorTable("diverging", "#ffffff")).toBe(colorTable("diverging"));
    expect(colorTable("sequential", "#111111")).toBe(colorTable("sequential"));
  });

  it("parses the colours a theme variable resolves to", () => {
    expect(parseColor("#1e1e1e")).toEqual([30, 30, 30]);
    expect(parseColor(" #fff ")).toEqual([255, 255, 255]);
    expect(parseColor("rgb(12, 34, 56)")).toEqual([12, 34, 56]);
    expect(parseColor("rgba(1 2 3 / 50%)")).toEqual([1, 2, 3]);
    expect(parseColor("white")).toBe(null);
  });
});

describe("formatValue (hover numbers)", () => {
  it("rounds to three significant digits, whole numbers with separators from 1,000", () => {
    expect(formatValue(2.4034348)).toBe("2.4");
    expect(formatValue(0.4857143)).toBe("0.486");
    expect(formatValue(-16.0549)).toBe("-16.1");
    expect(formatValue(999.4)).toBe("999");
    expect(formatValue(2290602.4)).toBe("2,290,602");
    expect(formatValue(-12345.6)).toBe("-12,346");
    expect(formatValue(0.000123456)).toBe("1.23e-4");
    expect(formatValue(0.0005)).toBe("5e-4");
    expect(formatValue(0)).toBe("0");
    expect(formatValue(NaN)).toBe("–");
    expect(formatValue(-Infinity)).toBe("−∞");
  });
});

describe("tokenParts / tokenLabel (tokens as text)", () => {
  it("splits a leading space off as a mark and spells a line break", () => {
    expect(tokenParts(" the")).toEqual({ space: true, text: "the", newline: false });
    expect(tokenParts("the ")).toEqual({ space: false, text: "the ", newline: false });
    expect(tokenParts("\n")).toEqual({ space: false, text: "\\n", newline: true });
    expect(tokenParts("")).toEqual({ space: false, text: "∅", newline: false });
    expect(tokenLabel(" Paris")).toBe("·Paris");
    expect(tokenLabel("Paris")).toBe("Paris");
    expect(tokenLabel(".\n\n")).toBe(".\\n\\n");
  });
});
