#!/usr/bin/env bash
# Fails when git tracks an executable binary (an ELF, Mach-O or PE file, or
# any file with a NUL byte among the executable ones): build output belongs
# in bin/ (ignored), never in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
  case "$magic" in
    7f454c46|cffaedfe|cefaedfe|feedfacf|feedface|4d5a*) echo "no-binaries: $f is a binary tracked by git; remove it (git rm --cached) and let make build it" >&2; bad=1 ;;
  esac
done < <(git ls-files -z)
exit $bad
