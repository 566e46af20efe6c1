#!/usr/bin/env bash
# Rebuild the demo speech corpus in vocoder/data/demo/ (see README.md here).
#
# Needs Debian (or a derivative) for the synthesisers; installs them with
# apt-get when they are missing (as root, or through sudo).  Any arguments are
# passed on to make_corpus.py, e.g.  ./make_corpus.sh --out /tmp/demo
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# festvox-kallpc16k / festvox-kdlpc16k / festvox-us-slt-hts: Festival voices
# flite: Flite with its built-in voices (rms, awb, ...)
# sox (+ libsox-fmt-base, which holds its FLAC support): trim/resample/encode
packages=(festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
          flite sox libsox-fmt-base python3)
voice_dirs=(/usr/share/festival/voices/english/kal_diphone
            /usr/share/festival/voices/english/ked_diphone
            /usr/share/festival/voices/us/cmu_us_slt_arctic_hts)

missing=0
for tool in text2wave flite sox soxi python3; do
    command -v "$tool" >/dev/null 2>&1 || missing=1
done
for d in "${voice_dirs[@]}"; do
    [[ -d "$d" ]] || missing=1
done

if (( missing )); then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: missing synthesisers and no apt-get; install: ${packages[*]}" >&2
        exit 1
    fi
    sudo=()
    if (( EUID != 0 )); then
        command -v sudo >/dev/null 2>&1 || {
            echo "error: run as root or install: ${packages[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "installing: ${packages[*]}"
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y \
        --no-install-recommends "${packages[@]}"
fi

exec python3 "$here/make_corpus.py" "$@"
