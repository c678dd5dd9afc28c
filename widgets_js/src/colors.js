// Colour scales as 256-entry lookup tables; fixed palettes chosen to stay legible on light and dark pages.

const STOPS = {
  // viridis (perceptually uniform, colour-blind safe; dark end and light end both contrast with either theme)
  sequential: ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"],
  // blue - near white - red (ColorBrewer RdBu reversed): negative is blue, positive red
  diverging: ["#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b"],
  // magnitudes that are never negative (saliency): white -> orange -> dark red (ColorBrewer OrRd)
  magnitude: ["#fff7ec", "#fee8c8", "#fdd49e", "#fdbb84", "#fc8d59", "#ef6548", "#d7301f", "#b30000", "#7f0000"],
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

/** [r, g, b] of a CSS colour given as #rgb, #rrggbb or rgb()/rgba(); null for anything else. */
export function parseColor(css) {
  const text = String(css || "").trim();
  let match = /^#([0-9a-f]{3})$/i.exec(text);
  if (match) return [...match[1]].map((digit) => parseInt(digit + digit, 16));
  match = /^#([0-9a-f]{6})$/i.exec(text);
  if (match) return hexToRgb(text);
  match = /^rgba?\(\s*(\d+)[,\s]+(\d+)[,\s]+(\d+)/i.exec(text);
  return match ? match.slice(1, 4).map(Number) : null;
}

function isDark([r, g, b]) {
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128;
}

// On a dark page the diverging scale runs blue -> the page's own background -> red, so values near
// the centre recede instead of painting large glaring white areas.
const DARK_DIVERGING_ENDS = [["#92c5de", "#4393c3", "#2b5f8a"], ["#9e3a2e", "#d6604d", "#f4a582"]];
// On a dark page a magnitude runs from the page's background up to bright orange (light text stays readable on it).
const DARK_MAGNITUDE = ["#5a1f0a", "#a63603", "#e6550d", "#fd8d3c", "#fdbe85"];

/**
 * RGB lookup table (256 x 3 bytes) for a named scale. `neutral` (a CSS colour, the theme's
 * background) becomes the centre of the diverging scale, and the zero of the magnitude scale, when it is dark.
 */
export function colorTable(kind, neutral = null) {
  const key = kind in STOPS ? kind : "sequential";
  const background = key === "diverging" || key === "magnitude" ? parseColor(neutral) : null;
  const dark = background && isDark(background);
  const cacheKey = dark ? `${key}:${background.join(",")}` : key;
  if (cache.has(cacheKey)) return cache.get(cacheKey);
  let stops = STOPS[key].map(hexToRgb);
  if (dark && key === "diverging") stops = [...DARK_DIVERGING_ENDS[0].map(hexToRgb), background, ...DARK_DIVERGING_ENDS[1].map(hexToRgb)];
  if (dark && key === "magnitude") stops = [background, ...DARK_MAGNITUDE.map(hexToRgb)];
  const table = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const position = (i / 255) * (stops.length - 1);
    const left = Math.min(Math.floor(position), stops.length - 2);
    const t = position - left;
    for (let c = 0; c < 3; c++) {
      table[i * 3 + c] = Math.round(stops[left][c] * (1 - t) + stops[left + 1][c] * t);
    }
  }
  cache.set(cacheKey, table);
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
  let clipped = false;
  if (metric.clip != null && metric.scale !== "diverging") {
    // Robust range: a few huge values (an attention sink's norm) would paint the rest one colour.
    const [qlo, qhi] = quantiles(data, [1 - metric.clip, metric.clip]);
    clipped = qlo > lo || qhi < hi;
    lo = qlo;
    hi = qhi;
  }
  if (metric.scale === "diverging") {
    const center = metric.center ?? 0;
    let half = Math.max(Math.abs(lo - center), Math.abs(hi - center)) || 1;
    if (metric.clip != null) {
      const distances = Float64Array.from(data, (v) => Math.abs(v - center));
      const robust = quantiles(distances, [metric.clip])[0];
      if (robust > 0 && robust < half) {
        half = robust;
        clipped = true;
      }
    }
    lo = center - half;
    hi = center + half;
  }
  if (metric.vmin != null) lo = metric.vmin;
  if (metric.vmax != null) hi = metric.vmax;
  if (hi === lo) hi = lo + 1;
  return { lo, hi, clipped };
}

/** Linear-interpolated quantiles of the finite values (NaN skipped). */
export function quantiles(data, qs) {
  const finite = Float64Array.from(Array.prototype.filter.call(data, (v) => Number.isFinite(v))).sort();
  if (!finite.length) return qs.map(() => 0);
  return qs.map((q) => {
    const at = q * (finite.length - 1);
    const below = Math.floor(at);
    const above = Math.min(finite.length - 1, below + 1);
    return finite[below] + (finite[above] - finite[below]) * (at - below);
  });
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
