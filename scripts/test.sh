#!/usr/bin/env bash
# The test command (README: "Run the tests"). Works on a fresh Debian machine: installs what
# the build and the tests need, then runs formatting, lints, every test and a short fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."

# A C toolchain for rdkafka's bundled librdkafka, kcat (librdkafka 2.0) for the old-client
# test and the README example, a JDK and Maven for the Java client test, pip for the Python
# checkers below, Chromium for the console test.
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v perl >/dev/null || need+=(perl)
command -v kcat >/dev/null || need+=(kcat)
# librdkafka's TLS and SCRAM (the rdkafka crate's `ssl` feature) link the system OpenSSL.
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
command -v javac >/dev/null || need+=(default-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
# Debian's Chromium, headless, checks the web console's pages.
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Python checkers of the tests: the Prometheus project's own parsers of /metrics
# (prometheus_client), an OpenAPI validator (openapi-spec-validator, with jsonschema), and
# checkov for the Terraform modules (it brings the HCL parser the module checker uses).
if ! python3 -c 'import prometheus_client, openapi_spec_validator, jsonschema, checkov, hcl2' 2>/dev/null; then
  python3 -m pip install --quiet --user prometheus-client openapi-spec-validator checkov 2>/dev/null ||
    python3 -m pip install --quiet --user --break-system-packages prometheus-client openapi-spec-validator checkov
fi

# Reuse a cargo target directory outside the clone when one exists, so CI does not rebuild
# every dependency from scratch; a fresh machine simply builds into it.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="${STRATA_TARGET_DIR:-$HOME/.cache/strata-target}"
fi
mkdir -p "$CARGO_TARGET_DIR"
# No incremental caches: CI builds each change once, and they would add gigabytes per build of
# the ~40 test binaries to a target directory that is kept between runs.
export CARGO_INCREMENTAL=0
echo "cargo target dir: $CARGO_TARGET_DIR"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
results=$(mktemp)
cargo test --workspace --locked 2>&1 | tee "$results"

# The benchmark must keep working; a smoke run checks every step, never the figures (CI
# machines are shared and noisy).
cargo build --locked -p strata -p strata-bench --bins
smoke_dir=$(mktemp -d)
"$CARGO_TARGET_DIR/debug/strata-bench" --smoke --mirror --security plaintext,sasl_ssl \
    --strata "$CARGO_TARGET_DIR/debug/strata" \
    --out "$smoke_dir/report.md" --chart "$smoke_dir/chart.svg" >/dev/null
grep -q '^| produce, 1024 B records, acks=1 |' "$smoke_dir/report.md"
# Transactions on their own: a transactional producer commits every 100 records.
"$CARGO_TARGET_DIR/debug/strata-bench" --smoke --sizes 1024 --acks all \
    --transactions 0,100 --isolation read-committed,read-uncommitted \
    --skip-latency --skip-parked --skip-limits \
    --strata "$CARGO_TARGET_DIR/debug/strata" --out "$smoke_dir/txn.md" >/dev/null
grep -q '^| produce, 1024 B records, acks=all, transactions of 100 |' "$smoke_dir/txn.md"
grep -q '^| consume from local log, 1024 B records, acks=all, transactions of 100, read_uncommitted |' "$smoke_dir/txn.md"
grep -q '^| consume from local log, 1024 B records, acks=1, SASL_SSL |' "$smoke_dir/report.md"
grep -q '^| cluster link mirroring' "$smoke_dir/report.md"
grep -q '<svg' "$smoke_dir/chart.svg"
rm -rf "$smoke_dir"
echo "bench smoke run: ok"

# A short fuzzing run of each target on a copy of the checked-in corpus (STRATA_FUZZ_SECONDS
# each; 0 skips). cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP lets the stable compiler,
# which ships the sanitizer runtimes, provide them, since a fresh machine cannot fetch nightly.
fuzz_seconds="${STRATA_FUZZ_SECONDS:-20}"
fuzz_failed=0
if [ "$fuzz_seconds" -gt 0 ]; then
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  for target in request_decoder record_batch; do
    work=$(mktemp -d)
    cp fuzz/corpus/"$target"/* "$work"/
    if RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -O "$target" "$work" -- \
      -max_total_time="$fuzz_seconds" -malloc_limit_mb=512 -rss_limit_mb=2048 -print_final_stats=1 >"$work.log" 2>&1; then
      echo "fuzz $target: $(grep -E '^Done' "$work.log")"
    else
      tail -60 "$work.log"
      echo "fuzz $target: FAILED (the crashing input is under fuzz/artifacts/$target)"
      fuzz_failed=1
    fi
    rm -rf "$work" "$work.log"
  done
fi

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$results" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$results" | awk '{s += $1} END {print s + 0}')
rm -f "$results"
echo "$passed passed, $((failed + fuzz_failed)) failed"
[ "$fuzz_failed" = 0 ]
