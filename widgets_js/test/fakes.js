// Test doubles: an anywidget-like model and a recording 2D canvas context (jsdom has no canvas).

export function fakeModel(state) {
  const listeners = new Map();
  return {
    state: { ...state },
    sets: [],
    saves: 0,
    sent: [],
    get(name) {
      return this.state[name];
    },
    set(name, value) {
      this.state[name] = value;
      this.sets.push([name, value]);
      for (const callback of listeners.get(`change:${name}`) || []) callback();
    },
    save_changes() {
      this.saves += 1;
    },
    send(content) {
      this.sent.push(content);
    },
    on(event, callback) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(callback);
    },
    off(event, callback) {
      listeners.get(event)?.delete(callback);
    },
    listenerCount() {
      return [...listeners.values()].reduce((n, set) => n + set.size, 0);
    },
  };
}

/** Every canvas gets a context that records calls; putImageData keeps the pixels it was given. */
export function installFakeCanvas() {
  HTMLCanvasElement.prototype.getContext = function getContext() {
    if (!this.__context) this.__context = recordingContext(this);
    return this.__context;
  };
}

function recordingContext(canvas) {
  const calls = [];
  const record = (name) => (...args) => { calls.push([name, ...args]); };
  return {
    canvas,
    calls,
    images: [],
    texts() {
      return calls.filter((c) => c[0] === "fillText").map((c) => c[1]);
    },
    createImageData(width, height) {
      return { width, height, data: new Uint8ClampedArray(width * height * 4) };
    },
    putImageData(image, x, y) {
      this.images.push({ data: Uint8ClampedArray.from(image.data), width: image.width, height: image.height, x, y });
    },
    measureText: (text) => ({ width: String(text).length * 6 }),
    createPattern: () => ({ pattern: true }),
    setTransform: record("setTransform"),
    fillRect: record("fillRect"),
    strokeRect: record("strokeRect"),
    fillText: record("fillText"),
    drawImage: record("drawImage"),
    beginPath: record("beginPath"),
    moveTo: record("moveTo"),
    lineTo: record("lineTo"),
    stroke: record("stroke"),
    fill: record("fill"),
    closePath: record("closePath"),
    save: record("save"),
    restore: record("restore"),
    translate: record("translate"),
    rotate: record("rotate"),
    arc: record("arc"),
  };
}

/** A binary trait payload as the widget manager delivers it (DataView over the bytes). */
export function binary(typed, dtype, shape) {
  return { view: new DataView(typed.buffer, typed.byteOffset, typed.byteLength), dtype, shape };
}

/** float16 bits of a number (round to nearest even; NaN -> 0x7e00), to build test payloads. */
export function float16Bits(value) {
  if (Number.isNaN(value)) return 0x7e00;
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (exponent >= 0x1f) return sign | 0x7c00;
  if (exponent <= 0) {
    return sign | Math.round((mantissa | 0x800000) * 2 ** (exponent - 14)); // subnormal: multiples of 2^-24
  }
  let half = (exponent << 10) | (mantissa >> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1;
  return sign | half;
}

export function float16Payload(values, shape) {
  return binary(Uint16Array.from(values, float16Bits), "float16", shape);
}

/** Dispatch a mouse event at canvas-local CSS coordinates (jsdom's bounding boxes are all zero). */
export function mouse(target, type, x, y) {
  target.dispatchEvent(new MouseEvent(type, { clientX: x, clientY: y, bubbles: true }));
}
