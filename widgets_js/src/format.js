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

/** Token text with whitespace made visible: " the" -> "␣the", "\n" -> "↵", "" -> "∅". */
export function visibleToken(token) {
  if (token === "") return "∅";
  return String(token).replace(/[ \n\t\r]/g, (ch) => WHITESPACE[ch]);
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
