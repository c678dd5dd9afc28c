// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { decodeArray, exactRepr, float16BitsToNumber, roundToFloat16 } from "../src/arrays.js";
import { binary, float16Bits, float16Payload } from "./fakes.js";

describe("decodeArray", () => {
  it("reads float32 from a DataView and keeps NaN", () => {
    const decoded = decodeArray(binary(new Float32Array([1.5, NaN, -2, 0.25, 3, 4]), "float32", [2, 3]));
    expect(decoded.shape).toEqual([2, 3]);
    expect(decoded.data).toBeInstanceOf(Float32Array);
    expect(Array.from(decoded.data)).toEqual([1.5, NaN, -2, 0.25, 3, 4]);
  });

  it("accepts an unaligned view, an ArrayBuffer and a typed array", () => {
    const bytes = new Uint8Array(1 + 8);
    new DataView(bytes.buffer).setFloat32(1, 7.5, true);
    new DataView(bytes.buffer).setFloat32(5, NaN, true);
    const unaligned = decodeArray({ view: new DataView(bytes.buffer, 1, 8), dtype: "float32", shape: [2] });
    expect(Array.from(unaligned.data)).toEqual([7.5, NaN]);
    expect(Array.from(decodeArray({ view: new Int32Array([3, -4]).buffer, dtype: "int32", shape: [2] }).data)).toEqual([3, -4]);
    expect(Array.from(decodeArray({ view: new Uint8Array([0, 255]), dtype: "uint8", shape: [2] }).data)).toEqual([0, 255]);
  });

  it("widens float16 to float32, NaN and infinities included", () => {
    const bits = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e00, 0x3555, 0x8000]);
    const decoded = decodeArray(binary(bits, "float16", [2, 4]));
    expect(decoded.data).toBeInstanceOf(Float32Array);
    expect(Array.from(decoded.data)).toEqual([1, -2, 65504, 2 ** -24, Infinity, NaN, 0.333251953125, -0]);
  });

  it("rejects size mismatches, unknown dtypes and JSON lists", () => {
    expect(() => decodeArray(binary(new Float32Array(3), "float32", [2, 2]))).toThrow(/needs 16 bytes, got 12/);
    expect(() => decodeArray(binary(new Float32Array(1), "float64", [1]))).toThrow(/unsupported dtype/);
    expect(() => decodeArray({ view: [1, 2], dtype: "float32", shape: [2] })).toThrow(/DataView/);
    expect(decodeArray(null)).toBe(null);
  });
});

describe("float16 helpers", () => {
  it("round-trips through the test encoder", () => {
    for (const value of [0, 1, -2.5, 0.1, 1 / 3, 65504, 2 ** -24, 6e-5]) {
      expect(float16BitsToNumber(float16Bits(value))).toBe(roundToFloat16(value));
    }
    expect(Array.from(decodeArray(float16Payload([0.5, NaN], [2])).data)).toEqual([0.5, NaN]);
  });

  it("rounds ties to even", () => {
    expect(roundToFloat16(2049)).toBe(2048);
    expect(roundToFloat16(2051)).toBe(2052);
    expect(roundToFloat16(70000)).toBe(Infinity);
  });
});

describe("exactRepr", () => {
  it("prints the shortest string that round-trips the stored value", () => {
    expect(exactRepr(Math.fround(0.1))).toBe("0.1");
    expect(exactRepr(Math.fround(1 / 3))).toBe("0.33333334");
    expect(exactRepr(Math.fround(-123.456))).toBe("-123.456");
    expect(exactRepr(roundToFloat16(0.1), "float16")).toBe("0.1");
    expect(exactRepr(0.333251953125, "float16")).toBe("0.3333");
    expect(exactRepr(NaN)).toBe("NaN");
    expect(exactRepr(-Infinity)).toBe("-inf");
    expect(exactRepr(42, "int32")).toBe("42");
  });
});
