#!/usr/bin/env bash
# Sets up a fresh machine: ffmpeg (Debian's package), a virtual environment in .venv with
# this package and its test tools. Safe to rerun; a rerun with nothing changed takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# ffmpeg for ingest; chromium and its driver for the pages' browser tests (tests/fixtures_browser.py).
missing=""
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing="$missing ffmpeg libgl1"
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || missing="$missing chromium chromium-driver"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086 (a list of package names)
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv

stamp=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch and torchvision pinned to a pair that imports together (open-clip needs
  # torchvision); the ranges in pyproject.toml stay open for other machines.
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$stamp" > .venv/.setup-stamp
fi
