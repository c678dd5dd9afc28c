// Build one self-contained ESM bundle per widget into neuro_magics/static (the files anywidget loads as _esm).
// `node build.mjs --check` builds into a temp dir and fails if the committed bundles differ.
import { build } from "esbuild";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const staticDir = join(here, "..", "neuro_magics", "static");
const entries = ["heatmap", "attention", "diff", "attribution", "scatter", "lines", "sae_dashboard", "checkup"];

async function bundle(outdir) {
  await build({
    entryPoints: Object.fromEntries(entries.map((name) => [name, join(here, "src", `${name}.js`)])),
    outdir,
    bundle: true,
    format: "esm",
    target: "es2020",
    minify: true,
    charset: "utf8",
    legalComments: "none",
    logLevel: "warning",
  });
}

if (process.argv.includes("--check")) {
  const outdir = mkdtempSync(join(tmpdir(), "neuro-magics-bundle-"));
  try {
    await bundle(outdir);
    const stale = entries.filter((name) => {
      const committed = join(staticDir, `${name}.js`);
      return !existsSync(committed) || !readFileSync(committed).equals(readFileSync(join(outdir, `${name}.js`)));
    });
    if (stale.length) {
      console.error(`stale bundle(s) in neuro_magics/static: ${stale.join(", ")}; run \`npm run build\` in widgets_js/`);
      process.exit(1);
    }
    console.log("neuro_magics/static bundles match widgets_js/src");
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
} else {
  await bundle(staticDir);
  console.log(`built ${entries.map((name) => `${name}.js`).join(", ")} into neuro_magics/static`);
}
