#!/usr/bin/env bash
# Renode for the tests of ariel's generated Renode files, when a Renode copy sits beside the
# repository at ../shared/renode (CI puts Renode 1.16.1 there; its README.md says what it
# needs). Without one, nothing happens: the Renode tests are then skipped with their reason.
#
# With it: Debian's mono-complete (apt, when it is not installed); renode-test's Python
# requirements (its tests/requirements.txt) in a virtual environment of their own,
# .venv/renode, because their pins clash with ariel's (pyelftools 0.30 against ariel's
# >= 0.31); and two launchers, .venv/bin/renode and .venv/bin/renode-test, that run the copy
# with that environment's python3 first on PATH (renode-test runs `python3`). The copy is
# only read. Safe to run again: the requirements are installed once per version of the file.
set -euo pipefail
cd "$(dirname "$0")/.."

renode_dir="$(cd .. && pwd)/shared/renode"
if [ ! -x "$renode_dir/renode-test" ]; then
    rm -f .venv/bin/renode .venv/bin/renode-test  # launchers of a copy that is gone
    exit 0
fi

if ! dpkg-query -W -f '${Status}' mono-complete 2>/dev/null | grep -q "ok installed"; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing mono-complete with apt-get (Renode runs on Mono)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mono-complete >/dev/null
fi

requirements="$renode_dir/tests/requirements.txt"
stamp=.venv/renode/requirements.sha256
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing renode-test's Python requirements into .venv/renode"
    [ -x .venv/renode/bin/python3 ] || .venv/bin/python -m venv .venv/renode
    # -r paths inside the file are relative to it; pip reads them from there.
    .venv/renode/bin/python3 -m pip install -q -r "$requirements"
    echo "$want" > "$stamp"
fi

# The launchers hold absolute paths, quoted for the shell (printf %q).
for tool in renode renode-test; do
    printf '#!/usr/bin/env bash\n%s\n%s\nPATH=%q:"$PATH" exec %q "$@"\n' \
        "# Written by scripts/setup_renode.sh: $tool from ../shared/renode, with the Python" \
        "# environment that holds renode-test's requirements first on PATH." \
        "$PWD/.venv/renode/bin" "$renode_dir/$tool" > ".venv/bin/$tool"
    chmod +x ".venv/bin/$tool"
done
echo "setup: $("$renode_dir/renode" --version 2>/dev/null | head -n 1) from $renode_dir"
