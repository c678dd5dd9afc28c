// Decoding of the {view, dtype, shape} binary traits sent by neuro_magics.widgets._arrays.

const TYPED_ARRAYS = {
  float32: Float32Array,
  int32: Int32Array,
  uint8: Uint8Array,
  float16: Uint16Array, // raw bits; widened to Float32Array below
};

let float16Table = null;

/** Float32 value of every float16 bit pattern, built once (256 KB) so decoding is a lookup. */
function float16Lookup() {
  if (float16Table) return float16Table;
  float16Table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) float16Table[bits] = float16BitsToNumber(bits);
  return float16Table;
}

/** IEEE 754 half precision bits -> number (subnormals, infinities and NaN included). */
export function float16BitsToNumber(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Round a number to the nearest float16 value (ties to even), returned as a number. */
export function roundToFloat16(value) {
  if (!Number.isFinite(value)) return value;
  const magnitude = Math.abs(value);
  if (magnitude >= 65520) return Math.sign(value) * Infinity;
  const exponent = Math.max(Math.floor(Math.log2(magnitude || 2 ** -24)), -14);
  const step = 2 ** (exponent - 10);
  const quotient = magnitude / step; // exact: step is a power of two
  let rounded = Math.round(quotient);
  if (quotient - Math.floor(quotient) === 0.5 && rounded % 2 === 1) rounded -= 1;
  return Math.sign(value) * rounded * step;
}

function bytesOf(view) {
  if (view instanceof DataView || ArrayBuffer.isView(view)) {
    return { buffer: view.buffer, byteOffset: view.byteOffset, byteLength: view.byteLength };
  }
  if (view instanceof ArrayBuffer) return { buffer: view, byteOffset: 0, byteLength: view.byteLength };
  throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'");
}

/**
 * Decode a binary trait into {data, shape, dtype}. float16 is widened to a Float32Array
 * because canvases and Number formatting need plain numbers; NaN survives both paths.
 */
export function decodeArray(payload) {
  if (payload == null) return null;
  const { dtype, shape } = payload;
  const Typed = TYPED_ARRAYS[dtype];
  if (!Typed) throw new TypeError(`unsupported dtype ${dtype}`);
  const { buffer, byteOffset, byteLength } = bytesOf(payload.view);
  const size = shape.reduce((a, b) => a * b, 1);
  if (size * Typed.BYTES_PER_ELEMENT !== byteLength) {
    throw new RangeError(`${dtype} array of shape [${shape}] needs ${size * Typed.BYTES_PER_ELEMENT} bytes, got ${byteLength}`);
  }
  const aligned = byteOffset % Typed.BYTES_PER_ELEMENT === 0;
  const raw = aligned
    ? new Typed(buffer, byteOffset, size)
    : new Typed(buffer.slice(byteOffset, byteOffset + byteLength));
  if (dtype !== "float16") return { data: raw, shape: [...shape], dtype };
  const table = float16Lookup();
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = table[raw[i]];
  return { data, shape: [...shape], dtype };
}

/**
 * Shortest decimal string that rounds back to the same value in `dtype`
 * (what numpy prints for np.float32 / np.float16 scalars), so tooltips show the exact stored number.
 */
export function exactRepr(value, dtype = "float32") {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  if (dtype === "int32" || dtype === "uint8") return String(value);
  const round = dtype === "float16" ? roundToFloat16 : Math.fround;
  const maxDigits = dtype === "float16" ? 5 : 9;
  for (let digits = 1; digits < maxDigits; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (round(candidate) === value) return String(candidate);
  }
  return String(Number(value.toPrecision(maxDigits)));
}
