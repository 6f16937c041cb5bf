#!/usr/bin/env bash
# Install size and time of gantk "after torch", in a fresh virtual environment (issue 17, a lighter install).
#     bash benchmarks/install_size.sh [SOURCE] [EXTRAS]
# SOURCE: a gantk source folder (default: this repository); EXTRAS: extras to add, e.g. plots or plots,tensorboard.
# In a temporary folder it makes a venv, installs torch==2.14.1 torchvision==0.29.1 first (not timed: what
# follows is "after torch"), then times `pip install SOURCE[EXTRAS]` (a normal, non-editable install) and
# prints the seconds, how much site-packages grew (du before and after, so the torch step is left out), and
# each distribution that install added or changed, with its size on disk.
# Run it on a quiet machine, once on the source before the change and once after. pip's own environment
# variables apply: PIP_NO_CACHE_DIR=1 for a cold cache (downloads counted), PIP_INDEX_URL or PIP_FIND_LINKS
# for a mirror. PYTHON picks the interpreter (default python3); TORCH_PAIR replaces the torch step's
# requirements. The temporary folder is removed on exit.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
source_dir=$(cd "${1:-$repo}" && pwd)
extras=${2:-}
python=${PYTHON:-python3}
torch_pair=${TORCH_PAIR:-"torch==2.14.1 torchvision==0.29.1"}
work=$(mktemp -d "${TMPDIR:-/tmp}/gantk-install-size.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
pip() { "$venv_python" -m pip --disable-pip-version-check "$@"; }
site=$("$venv_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
target=$source_dir${extras:+[$extras]}

echo "Installing $torch_pair (not timed) ..." >&2
# shellcheck disable=SC2086  # the pair is split into its requirements on purpose
pip install -q $torch_pair
pip list --format=freeze | sort > "$work/before.txt"
before_kb=$(du -sk "$site" | cut -f1)

echo "Timing: pip install $target" >&2
start=$(date +%s.%N)
pip install -q "$target"
end=$(date +%s.%N)

after_kb=$(du -sk "$site" | cut -f1)
pip list --format=freeze | sort > "$work/after.txt"
comm -13 "$work/before.txt" "$work/after.txt" > "$work/added.txt"

echo
echo "gantk install after torch: pip install $target"
echo "python $("$venv_python" -c 'import platform; print(platform.python_version())'), $(pip --version | cut -d' ' -f1-2), $(uname -sm)"
awk -v s="$start" -v e="$end" 'BEGIN { printf "time                     %8.1f s\n", e - s }'
awk -v b="$before_kb" -v a="$after_kb" 'BEGIN { printf "site-packages growth     %8.1f MiB (du: %.1f -> %.1f MiB)\n", (a - b) / 1024, b / 1024, a / 1024 }'
echo "distributions added or changed: $(grep -vci '^gantk==' "$work/added.txt" || true) besides gantk"
# each added distribution's files on disk (its RECORD, compiled files included), largest first
"$venv_python" -I - "$work/added.txt" <<'PYTHON'
import importlib.metadata
import sys

wanted = {line.split("==")[0].lower().replace("_", "-") for line in open(sys.argv[1]) if "==" in line}
rows = []
for dist in importlib.metadata.distributions():
    name = dist.metadata["Name"]
    if name.lower().replace("_", "-") not in wanted:
        continue
    size = 0
    for file in dist.files or []:
        path = dist.locate_file(file)
        size += path.stat().st_size if path.is_file() else 0
    rows.append((size, f"{name}=={dist.version}"))
for size, label in sorted(rows, reverse=True):
    print(f"  {label:45s} {size / 2**20:8.2f} MiB")
PYTHON
