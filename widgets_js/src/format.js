// Text helpers shared by the widgets: number formats, visible whitespace, tooltip templates.

const SPEC = /^(\+)?(?:\.(\d+))?([fegd%])?$/;

/**
 * Format a number with a small subset of Python's format-spec mini-language
 * ("+.3f", ".2e", ".1%", "d", ".4g", ""), so Python callers can pass the `fmt` they already use.
 */
export function formatNumber(value, spec = "") {
  if (value == null || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  const match = SPEC.exec(spec || "");
  if (!match) return String(value);
  const [, plus, precisionText, type = "g"] = match;
  const precision = precisionText === undefined ? null : Number(precisionText);
  let text;
  switch (type) {
    case "f":
      text = value.toFixed(precision ?? 6);
      break;
    case "e":
      text = value.toExponential(precision ?? 6).replace(/e([+-])(\d)$/, "e$10$2"); // Python's 1.23e+04
      break;
    case "%":
      text = `${(value * 100).toFixed(precision ?? 6)}%`;
      break;
    case "d":
      text = Math.round(value).toString();
      break;
    default:
      text = String(Number(value.toPrecision(Math.max(1, precision ?? 4))));
  }
  return plus && value >= 0 ? `+${text}` : text;
}

const WHITESPACE = { " ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍" };

/**
 * Whitespace made visible inside a token (" the" -> "␣the"): for the places that must show every
 * character one by one (a search box's echo, an export); labels use tokenParts instead.
 */
export function visibleToken(token) {
  if (token === "") return "∅";
  return String(token).replace(/[ \n\t\r]/g, (ch) => WHITESPACE[ch]);
}

/** Mark drawn, faint, before a label whose token starts with a space: readable upright and rotated. */
export const SPACE_MARK = "·";

/**
 * A token as a label reads it: `space` when it starts with whitespace (drawn as a faint SPACE_MARK,
 * since a "␣" glyph turned 90 degrees reads as a letter), `text` without that leading whitespace,
 * and `newline` when it holds a line break (running text breaks the line there; a label says "\n").
 */
export function tokenParts(token) {
  const raw = String(token ?? "");
  const newline = /[\n\r]/.test(raw);
  const space = /^[ \t]/.test(raw);
  let text = raw.replace(/^[ \t]+/, "").replace(/\r?\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
  if (raw === "") text = "∅";
  return { space, text, newline };
}

/** One-line label text of a token: its faint leading-space mark (when it has one) then its text. */
export function tokenLabel(token) {
  const { space, text } = tokenParts(token);
  return `${space ? SPACE_MARK : ""}${text}`;
}

/**
 * A number as a reader wants it on hover: three significant digits below 1,000, whole numbers with
 * thousands separators from 1,000 up, exponent notation below 0.001 (so "2.4034348" reads "2.4"
 * and a perplexity of 2290602.4 reads "2,290,602").
 */
export function formatValue(value) {
  if (value == null || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  const size = Math.abs(value);
  if (size === 0) return "0";
  if (size >= 999.5) return Math.round(value).toLocaleString("en-US");
  if (size < 1e-3) return value.toExponential(2).replace(/\.?0+e/, "e");
  return String(Number(value.toPrecision(3)));
}

/** Shorten a label to `maxChars`, keeping the start (where a token's meaning usually is). */
export function truncate(text, maxChars) {
  return text.length <= maxChars ? text : `${text.slice(0, Math.max(1, maxChars - 1))}…`;
}

/**
 * Fill "{name}" / "{name:spec}" placeholders from `fields`; numbers go through formatNumber.
 * Unknown names stay visible so a typo in a template is obvious rather than silent.
 */
export function fillTemplate(template, fields) {
  return template.replace(/\{(\w+)(?::([^}]*))?\}/g, (whole, name, spec) => {
    if (!(name in fields)) return whole;
    const value = fields[name];
    return typeof value === "number" ? formatNumber(value, spec ?? "") : String(value);
  });
}

/** Text safe inside SVG / XML markup. */
export function escapeXml(text) {
  return String(text).replace(/[<>&"']/g, (ch) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[ch]);
}
