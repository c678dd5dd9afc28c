#!/usr/bin/env bash
# Fetch the JS files the standalone widget pages need (no CDN at test time).
# Versions are pinned to match the Python anywidget 0.11.0 / ipywidgets 8.1.9 in the venv.
# Only tarballs are fetched (npm pack): no dependency install, ~1 MB in total.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${NEURO_MAGICS_BROWSER_ASSETS:-$here/.assets}"
packages=(
  "anywidget@0.11.0"
  "@jupyter-widgets/html-manager@1.0.15"
  "requirejs@2.3.8"
)
mkdir -p "$cache"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for spec in "${packages[@]}"; do
  name="${spec%@*}"
  dest="$cache/$name"
  if [[ -f "$dest/.version" && "$(cat "$dest/.version")" == "$spec" ]]; then
    continue
  fi
  tarball="$(cd "$tmp" && npm pack --silent "$spec" | tail -n 1)"
  rm -rf "$dest"
  mkdir -p "$dest"
  tar -xzf "$tmp/$tarball" -C "$dest" --strip-components=1
  echo "$spec" > "$dest/.version"
done
echo "browser assets in $cache"
