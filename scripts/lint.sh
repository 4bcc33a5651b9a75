#!/usr/bin/env bash
# The include rules (scripts/check_layers.py), clang-format over every C++ file, then clang-tidy
# over the sources (needs build/ configured). --format-only skips clang-tidy (quick; part of
# scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# Who may include what: no file of core, the seam or the protocols reaches liburing or a backend.
python3 scripts/check_layers.py
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.hpp')
else
  mapfile -t files < <(find core net apps tests -name '*.cpp' -o -name '*.hpp' | sort)
fi
bad=()
for f in "${files[@]}"; do
  [[ -f "$f" ]] || continue
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [[ ${#bad[@]} -gt 0 ]]; then
  echo "clang-format would change: ${bad[*]}"
  echo "fix with: clang-format -i ${bad[*]}"
  exit 1
fi
echo "clang-format: ${#files[@]} files clean"
[[ "${1:-}" == "--format-only" ]] && exit 0

[[ -f build/compile_commands.json ]] || cmake -S . -B build >/dev/null
mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep -E '^(core|net|apps)/.*\.cpp$')
clang-tidy -p build --quiet "${sources[@]}" 2>/dev/null
echo "clang-tidy: ${#sources[@]} files clean"
