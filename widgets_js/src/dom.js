// DOM and canvas plumbing shared by the widgets.
import { SPACE_MARK, tokenParts, truncate } from "./format.js";
import styles from "./styles.js";

/** Create an element with properties/attributes and children. */
export function h(tag, props = {}, children = []) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "className") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key === "style") Object.assign(element.style, value);
    else element.setAttribute(key, value);
  }
  for (const child of children) element.append(child);
  return element;
}

/** Root element of one widget view, carrying its own stylesheet (no global ids, works in any host). */
export function createRoot(el, kind) {
  const root = h("div", { className: `nm-root nm-${kind}` });
  root.append(h("style", { text: styles }));
  el.append(root);
  return root;
}

const MAX_CANVAS_PIXELS = 16384;

/**
 * Size a canvas for crisp drawing on high-DPI screens and return its context, already scaled
 * so drawing code works in CSS pixels.
 */
export function sizeCanvas(canvas, cssWidth, cssHeight) {
  const ratio = Math.min(
    globalThis.devicePixelRatio || 1,
    MAX_CANVAS_PIXELS / Math.max(1, cssWidth),
    MAX_CANVAS_PIXELS / Math.max(1, cssHeight),
  );
  canvas.width = Math.max(1, Math.round(cssWidth * ratio));
  canvas.height = Math.max(1, Math.round(cssHeight * ratio));
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}

/** Theme colours for canvas text and strokes, resolved from the root's CSS variables. */
export function themeColors(root) {
  const style = getComputedStyle(root);
  const read = (name, fallback) => {
    const value = style.getPropertyValue(name).trim();
    return value && !value.startsWith("var(") ? value : fallback; // unresolved var(): a host without CSS variable support
  };
  return {
    fg: read("--nm-fg", "#1f1f1f"),
    muted: read("--nm-muted", "#5f6368"),
    bg: read("--nm-bg", "#ffffff"),
    border: read("--nm-border", "#c8c8c8"),
    accent: read("--nm-accent", "#1a73e8"),
    font: `11px ${style.fontFamily || "sans-serif"}`,
  };
}

/** Draw every `step`-th label only, so labels never overlap when cells are small. */
export function labelStep(cellSize, minSpacing) {
  return Math.max(1, Math.ceil(minSpacing / Math.max(cellSize, 1e-6)));
}

/** Width the container offers, with a sane default before the element is attached. */
export function availableWidth(element, fallback = 800) {
  return element.clientWidth || element.parentElement?.clientWidth || fallback;
}

/** Call `callback(width)` (once per frame at most) when the element's width changes; returns a disconnect function. */
export function onResize(element, callback) {
  if (typeof ResizeObserver === "undefined") return () => {};
  let frame = 0;
  const observer = new ResizeObserver((entries) => {
    const width = Math.round(entries[0].contentRect.width);
    if (width === 0) return; // hidden (collapsed output, background tab): keep the last drawing
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => callback(width));
  });
  observer.observe(element);
  return () => {
    cancelAnimationFrame(frame);
    observer.disconnect();
  };
}

/** Call `callback` when the page theme changes (JupyterLab theme switch, OS dark mode); returns a disconnect function. */
export function onThemeChange(callback) {
  const query = globalThis.matchMedia?.("(prefers-color-scheme: dark)");
  query?.addEventListener?.("change", callback);
  const observer = typeof MutationObserver === "undefined" ? null : new MutationObserver(callback);
  observer?.observe(document.body, { attributes: true, attributeFilter: ["class", "data-jp-theme-name", "data-jp-theme-light", "style"] });
  return () => {
    query?.removeEventListener?.("change", callback);
    observer?.disconnect();
  };
}

/** Place a tooltip near the pointer, inside the root, flipping left/up near the edges. */
export function placeTooltip(tooltip, root, clientX, clientY) {
  const box = root.getBoundingClientRect();
  tooltip.style.display = "block";
  const width = tooltip.offsetWidth;
  const height = tooltip.offsetHeight;
  // Stay inside the widget as well as the window: a notebook's output area clips what overflows it
  // (the bottom rows of a map would otherwise show a cut tooltip).
  const right = Math.min(box.width || Infinity, (globalThis.innerWidth || Infinity) - box.left);
  const bottom = Math.min(box.height || Infinity, (globalThis.innerHeight || Infinity) - box.top);
  let left = clientX - box.left + 14;
  let top = clientY - box.top + 14;
  if (left + width > right) left = clientX - box.left - width - 10;
  if (top + height > bottom) top = clientY - box.top - height - 10;
  tooltip.style.left = `${Math.max(0, Math.min(left, right - width))}px`;
  tooltip.style.top = `${Math.max(0, Math.min(top, bottom - height))}px`;
}

/** Pointer position in the canvas's own CSS pixels (robust to scaling by max-width or zoom). */
export function pointerPosition(event, canvas) {
  const box = canvas.getBoundingClientRect();
  const width = parseFloat(canvas.style.width) || box.width;
  const height = parseFloat(canvas.style.height) || box.height;
  const scaleX = box.width ? width / box.width : 1;
  const scaleY = box.height ? height / box.height : 1;
  return { x: (event.clientX - box.left) * scaleX, y: (event.clientY - box.top) * scaleY };
}

/**
 * Draw a token label at (x, y) in the context's current transform: a faint SPACE_MARK for a leading
 * space, then the text in `color`; `align` is where x is ("left" | "right" | "center").
 */
export function fillTokenLabel(ctx, token, x, y, { color, muted, align = "left", maxChars = 16 }) {
  const { space, text } = tokenParts(token);
  const body = truncate(text, maxChars);
  const markWidth = space ? ctx.measureText(SPACE_MARK).width : 0;
  const total = markWidth + ctx.measureText(body).width;
  const start = align === "right" ? x - total : align === "center" ? x - total / 2 : x;
  ctx.save();
  ctx.textAlign = "left";
  if (space) {
    ctx.fillStyle = muted;
    ctx.fillText(SPACE_MARK, start, y);
  }
  ctx.fillStyle = color;
  ctx.fillText(body, start + markWidth, y);
  ctx.restore();
  return total;
}

/**
 * A token as a DOM span for labels and lists: a faint leading-space mark (class nm-space) then the
 * text; `running` keeps a real space instead (text as text) and appends a line break for "\n".
 */
export function tokenSpan(token, { running = false, className = "nm-token" } = {}) {
  const raw = String(token ?? "");
  const span = h("span", { className });
  if (running) {
    span.textContent = raw.replace(/\r?\n/g, "");
    span.classList.add("nm-running");
    if (/\n/.test(raw)) {
      if (!span.textContent) span.append(h("span", { className: "nm-space", text: "⏎" })); // something to hover and shade
      span.append(h("br"));
    }
    return span;
  }
  const { space, text } = tokenParts(raw);
  if (space) span.append(h("span", { className: "nm-space", text: SPACE_MARK }));
  span.append(text);
  return span;
}

/** Offer `href` (a data URL) as a file download. */
export function download(href, filename) {
  const link = h("a", { href, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
}

/** Rasterise an SVG string to a PNG data URL (2x), through an image and a canvas. */
export function svgToPng(svg) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = image.width * 2;
      canvas.height = image.height * 2;
      const ctx = canvas.getContext("2d");
      ctx.scale(2, 2);
      ctx.drawImage(image, 0, 0);
      resolve(canvas.toDataURL("image/png"));
    };
    image.onerror = () => reject(new Error("the SVG could not be rasterised"));
    image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  });
}

const THEME_VARIABLES = ["--nm-fg", "--nm-muted", "--nm-bg", "--nm-panel", "--nm-border", "--nm-accent"];

/**
 * A widget root as a standalone SVG (its HTML inside a foreignObject), for views made of HTML rather
 * than one drawing: canvases become images of their pixels, controls are left out, and the theme's
 * colours are written in, since the SVG is seen away from the page that defined them.
 */
export function snapshotSvg(root) {
  const width = Math.ceil(root.scrollWidth || root.clientWidth || availableWidth(root));
  const height = Math.ceil(root.scrollHeight || root.clientHeight || 400);
  const clone = root.cloneNode(true);
  const canvases = root.querySelectorAll("canvas");
  clone.querySelectorAll("canvas").forEach((copy, i) => {
    const original = canvases[i];
    let src = "";
    try {
      src = original.toDataURL("image/png") || "";
    } catch {
      src = ""; // a canvas that cannot be read leaves an empty box of its size
    }
    copy.replaceWith(h("img", { src, width: original.style.width || original.width, height: original.style.height || original.height }));
  });
  clone.querySelectorAll("button, input, select, .nm-tooltip, .nm-export").forEach((control) => control.remove());
  const style = getComputedStyle(root);
  const theme = THEME_VARIABLES.map((name) => [name, style.getPropertyValue(name).trim()]).filter(([, v]) => v && !v.startsWith("var("));
  clone.setAttribute("style", `${clone.getAttribute("style") || ""};${theme.map(([n, v]) => `${n}: ${v}`).join("; ")}; background: var(--nm-bg, #fff); padding: 6px;`);
  const html = new XMLSerializer().serializeToString(clone);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width + 12}" height="${height + 12}"><foreignObject x="0" y="0" width="100%" height="100%">${html}</foreignObject></svg>`;
}

/** SVG and PNG download buttons for a view drawn in HTML (see snapshotSvg), named `name`.svg / .png. */
export function exportButtons(root, name) {
  const svgButton = h("button", { type: "button", text: "SVG", className: "nm-export-svg", title: "download this view as SVG" });
  const pngButton = h("button", { type: "button", text: "PNG", className: "nm-export-png", title: "download this view as PNG" });
  svgButton.addEventListener("click", () => download(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(snapshotSvg(root))}`, `${name()}.svg`));
  pngButton.addEventListener("click", async () => download(await svgToPng(snapshotSvg(root)), `${name()}.png`));
  return h("div", { className: "nm-export nm-toolbar" }, [svgButton, pngButton]);
}
