// Colour scales as 256-entry lookup tables; fixed palettes chosen to stay legible on light and dark pages.

const STOPS = {
  // viridis (perceptually uniform, colour-blind safe; dark end and light end both contrast with either theme)
  sequential: ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"],
  // blue - near white - red (ColorBrewer RdBu reversed): negative is blue, positive red
  diverging: ["#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b"],
  // categories (labels, clusters, tokens): Tableau 10 without its grey (grey marks "none"), then three more
  categorical: ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#17becf", "#bcbd22", "#1f3b73"],
};

const cache = new Map();

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** RGB of category `index` (the palette repeats after its last colour). */
export function categoricalColor(index) {
  const palette = STOPS.categorical;
  return hexToRgb(palette[((index % palette.length) + palette.length) % palette.length]);
}

/** RGB lookup table (256 x 3 bytes) for a named scale. */
export function colorTable(kind) {
  const key = kind in STOPS ? kind : "sequential";
  if (cache.has(key)) return cache.get(key);
  const stops = STOPS[key].map(hexToRgb);
  const table = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const position = (i / 255) * (stops.length - 1);
    const left = Math.min(Math.floor(position), stops.length - 2);
    const t = position - left;
    for (let c = 0; c < 3; c++) {
      table[i * 3 + c] = Math.round(stops[left][c] * (1 - t) + stops[left + 1][c] * t);
    }
  }
  cache.set(key, table);
  return table;
}

/**
 * Value range a metric is drawn with: min..max of the finite values for sequential scales,
 * a range symmetric about `center` for diverging ones (so the centre is always the neutral colour).
 * Explicit vmin / vmax in the metric win.
 */
export function valueRange(data, metric) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < lo) lo = v; // NaN compares false and is skipped
    if (v > hi) hi = v;
  }
  if (lo === Infinity) lo = hi = 0;
  if (metric.scale === "diverging") {
    const center = metric.center ?? 0;
    const half = Math.max(Math.abs(lo - center), Math.abs(hi - center)) || 1;
    lo = center - half;
    hi = center + half;
  }
  if (metric.vmin != null) lo = metric.vmin;
  if (metric.vmax != null) hi = metric.vmax;
  if (hi === lo) hi = lo + 1;
  return { lo, hi };
}

/** Table index (0..255) of a value within [lo, hi], clamped. */
export function colorIndex(value, lo, hi) {
  const t = (value - lo) / (hi - lo);
  return Math.max(0, Math.min(255, Math.round(t * 255)));
}

export function cssColor(table, index) {
  return `rgb(${table[index * 3]}, ${table[index * 3 + 1]}, ${table[index * 3 + 2]})`;
}

/** Paint `width` x 1 colour ramp pixels (a colorbar) into a canvas 2D context. */
export function drawColorbar(ctx, table, width, height) {
  const image = ctx.createImageData(width, 1);
  for (let x = 0; x < width; x++) {
    const index = Math.round((x / Math.max(1, width - 1)) * 255);
    image.data.set([table[index * 3], table[index * 3 + 1], table[index * 3 + 2], 255], x * 4);
  }
  for (let y = 0; y < height; y++) ctx.putImageData(image, 0, y);
}
