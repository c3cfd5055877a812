#!/usr/bin/env bash
# Fetches the datasets into the data directory (docs/design.md §4.1 layout), checking md5 sums.
#
#   scripts/download-data.sh [--from DIR] [--dest DIR] [--only mnist|svhn|mnist_m]
#
#   --from DIR   copy from a local folder with the same layout (a mirror, another data/) instead of downloading
#   --dest DIR   where to put the files (default: data)
#   --only NAME  fetch one dataset only
#
# Idempotent: a file already present with the right md5 is left alone. Sources:
#   MNIST    the official files, from the mirror torchvision uses (falls back to the original site)
#   SVHN     format 2 (cropped digits), train_32x32.mat and test_32x32.mat from the dataset's site
#   MNIST-M  mnist_m.tar.gz as published by Ganin & Lempitsky (2015). It has no stable official URL:
#            set MNIST_M_URL to a copy of it (the DANN project page links one), or use --from.
set -uo pipefail

from="" dest="data" only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --from) from="${2:?--from needs a directory}"; shift 2 ;;
        --dest) dest="${2:?--dest needs a directory}"; shift 2 ;;
        --only) only="${2:?--only needs a dataset name}"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "download-data.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

mnist_urls=("https://ossci-datasets.s3.amazonaws.com/mnist" "http://yann.lecun.com/exdb/mnist")
svhn_url="http://ufldl.stanford.edu/housenumbers"
# MNIST-M: no official checksum is published; this is the md5 of the project's deterministic repack (data/README.md).
mnist_m_repack_md5="859a682d429e81c8760b371caae636f2"

failures=0
md5_of() { md5sum "$1" 2>/dev/null | cut -d' ' -f1; }

# fetch RELATIVE_PATH MD5 URL... : puts DEST/RELATIVE_PATH in place (copy or download), checks its md5.
fetch() {
    local rel="$1" md5="$2"; shift 2
    local target="$dest/$rel"
    if [ -f "$target" ] && { [ -z "$md5" ] || [ "$(md5_of "$target")" = "$md5" ]; }; then
        echo "ok        $target (already present)"
        return 0
    fi
    mkdir -p "$(dirname "$target")"
    local tmp="$target.part"
    rm -f "$tmp"
    if [ -n "$from" ]; then
        if [ ! -f "$from/$rel" ]; then
            echo "missing   $from/$rel (not in the mirror)" >&2
            return 1
        fi
        cp "$from/$rel" "$tmp"
    else
        local got=""
        for url in "$@"; do
            if curl -fsL --retry 2 --connect-timeout 15 -o "$tmp" "$url"; then got="$url"; break; fi
        done
        if [ -z "$got" ]; then
            rm -f "$tmp"
            echo "download-data.sh: cannot download $rel from $1 (offline?); use --from DIR to copy from a local mirror" >&2
            return 1
        fi
    fi
    if [ -n "$md5" ] && [ "$(md5_of "$tmp")" != "$md5" ]; then
        echo "download-data.sh: $rel has md5 $(md5_of "$tmp"), expected $md5; not kept" >&2
        rm -f "$tmp"
        return 1
    fi
    mv "$tmp" "$target"
    echo "fetched   $target"
}

want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

if want mnist; then
    for pair in train-images-idx3-ubyte.gz:f68b3c2dcbeaaa9fbdd348bbdeb94873 \
                train-labels-idx1-ubyte.gz:d53e105ee54ea40749a09fcbcd1e9432 \
                t10k-images-idx3-ubyte.gz:9fb629c4189551a2d022fa330f9573f3 \
                t10k-labels-idx1-ubyte.gz:ec29112dd5afa0611ce80d1b7f02629c; do
        f="${pair%%:*}" m="${pair##*:}"
        fetch "mnist/$f" "$m" "${mnist_urls[0]}/$f" "${mnist_urls[1]}/$f" || failures=$((failures + 1))
    done
fi

if want svhn; then
    for pair in train_32x32.mat:e26dedcc434d2e4c54c9b2d4a06d8373 test_32x32.mat:eb5a983be6a315427106f1b164d9cef3; do
        f="${pair%%:*}" m="${pair##*:}"
        if [ -n "$from" ] && [ ! -f "$from/svhn/$f" ]; then
            echo "skipped   svhn/$f: the mirror $from has no full SVHN (training falls back to the bundled sample)"
            continue
        fi
        fetch "svhn/$f" "$m" "$svhn_url/$f" || failures=$((failures + 1))
    done
fi

if want mnist_m; then
    if [ -n "$from" ]; then
        fetch "mnist_m/mnist_m.tar.gz" "" || failures=$((failures + 1))
        [ -f "$dest/mnist_m/mnist_m.tar.gz" ] && [ "$(md5_of "$dest/mnist_m/mnist_m.tar.gz")" != "$mnist_m_repack_md5" ] &&
            echo "note      $dest/mnist_m/mnist_m.tar.gz differs from the project's repack (md5 $mnist_m_repack_md5); run dann-dist data info to check it"
    elif [ -n "${MNIST_M_URL:-}" ]; then
        fetch "mnist_m/mnist_m.tar.gz" "" "$MNIST_M_URL" || failures=$((failures + 1))
    elif [ ! -f "$dest/mnist_m/mnist_m.tar.gz" ] && [ ! -d "$dest/mnist_m/mnist_m" ]; then
        echo "skipped   mnist_m: no official URL; set MNIST_M_URL to a copy of mnist_m.tar.gz or use --from DIR"
    fi
    if [ -f "$dest/mnist_m/mnist_m.tar.gz" ] && ! tar -tzf "$dest/mnist_m/mnist_m.tar.gz" mnist_m/mnist_m_train_labels.txt >/dev/null 2>&1; then
        echo "download-data.sh: $dest/mnist_m/mnist_m.tar.gz has no mnist_m/mnist_m_train_labels.txt" >&2
        failures=$((failures + 1))
    fi
fi

if [ "$failures" -gt 0 ]; then
    echo "download-data.sh: $failures file(s) could not be fetched" >&2
    exit 1
fi
