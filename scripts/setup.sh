#!/usr/bin/env bash
# Sets up everything marketlake needs, from nothing, idempotently:
# the virtual environment with pinned packages, Kafka's jars (Maven Central,
# checksums verified), PostgreSQL's server binaries (Debian) and the dbt manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
HOME_DIR=${MARKETLAKE_HOME:-$PWD/.marketlake}
mkdir -p "$HOME_DIR"

stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "== python environment (.venv)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip==25.3 >/dev/null 2>&1 || true
  .venv/bin/pip install -q -c constraints.txt -e '.[dev]'
  rm -f .venv/.installed-*; touch "$stamp"
fi

# The compiled order book (native/, Rust + pyo3, built by maturin from PyPI with crates from crates.io, pinned by
# native/Cargo.lock); rebuilt when its sources change.
native_stamp=.venv/.native-$(cat native/Cargo.toml native/Cargo.lock native/pyproject.toml native/*.pyi native/src/*.rs \
  | sha256sum | cut -c1-16)
if [ ! -f "$native_stamp" ] || ! .venv/bin/python -c "import marketlake_native" 2>/dev/null; then
  echo "== compiled order book (native/, cargo $(cargo --version 2>/dev/null | cut -d' ' -f2))"
  command -v cargo >/dev/null || { echo "Rust's cargo is needed to build native/ (https://rustup.rs)"; exit 1; }
  .venv/bin/pip install -q ./native
  rm -f .venv/.native-*; touch "$native_stamp"
fi

echo "== Kafka jars"
command -v java >/dev/null || { echo "Java 17 is needed for Kafka (apt-get install openjdk-17-jre-headless)"; exit 1; }
command -v mvn >/dev/null || { echo "installing maven"; apt-get install -y -q maven >/dev/null; }
.venv/bin/python -c "from pathlib import Path; from marketlake.kafka_broker import fetch_jars; print(fetch_jars(Path('$HOME_DIR')))"

if [ "${MARKETLAKE_SKIP_POSTGRES:-0}" != 1 ]; then
  echo "== PostgreSQL server binaries"
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null || {
        apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
    else
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    fi
  fi
fi
echo "== dbt manifest (dbt parse, offline; dagster-dbt reads dbt_models/target/manifest.json at load)"
.venv/bin/python -c "from marketlake.settings import get_settings; from orchestration.analytics import dbt_project, parse_manifest; print(parse_manifest(dbt_project(), get_settings()))"
echo "== setup done"
