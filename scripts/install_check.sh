#!/usr/bin/env bash
# Install a built tree into a temporary prefix, check that the installed libraries export only
# lq_* symbols, then build and run a small C program against the installed tree through
# pkg-config, once against libquant.so and once statically against libquant.a.
# Usage: scripts/install_check.sh [build-dir]   (run by .ci/run after the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
prefix=$(mktemp -d /tmp/lq_install_XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
lib="$prefix/$(ls "$prefix" | grep -E '^lib(64)?$' | head -1)"
export PKG_CONFIG_PATH="$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

# Only lq_* may be global: anything else could collide with an application's own symbols.
bad=$( { nm -g --defined-only "$lib/libquant.a" | awk 'NF==3 {print $3}'
         nm -D --defined-only "$lib/libquant.so" | awk 'NF==3 {print $3}'; } |
       grep -v '^lq_' | grep -vE '^_(init|fini)$' | sort -u || true)
if [ -n "$bad" ]; then
  echo "install_check: symbols without the lq_ prefix are exported:" >&2
  echo "$bad" >&2
  exit 1
fi

# A program that uses the public API the way an application would: write a safetensors file
# with the durable writer, map it back and check the bytes.
src="$prefix/prog.c"
cat >"$src" <<'C'
#include <libquant.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    float w[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    lq_tensor t = {.name = "w", .dtype = LQ_DTYPE_F32, .ndim = 2, .shape = {2, 3},
                   .data = w, .nbytes = sizeof w};
    if (lq_st_save(argv[1], &t, 1) != LQ_OK) { fprintf(stderr, "%s\n", lq_last_error()); return 1; }
    lq_st_file *f;
    if (lq_st_open(argv[1], &f) != LQ_OK) { fprintf(stderr, "%s\n", lq_last_error()); return 1; }
    const lq_tensor *r = lq_st_find(f, "w");
    int ok = r && r->nbytes == sizeof w && memcmp(r->data, w, sizeof w) == 0;
    lq_st_close(f);
    printf("%s %s\n", ok ? "ok" : "MISMATCH", lq_status_name(LQ_ERR_IO));
    return ok ? 0 : 1;
}
C
cc=${CC:-cc}
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Werror -o "$prefix/prog_shared" "$src" $(pkg-config --cflags --libs libquant) \
  -Wl,-rpath,"$lib"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Werror -o "$prefix/prog_static" "$src" $(pkg-config --cflags libquant) \
  "$lib/libquant.a" $(pkg-config --static --libs libquant | sed 's/-lquant//')
for p in prog_shared prog_static; do
  out=$("$prefix/$p" "$prefix/$p.safetensors")
  [ "$out" = "ok io" ] || { echo "install_check: $p printed '$out'" >&2; exit 1; }
done
# ldd's output is captured before grep reads it: `ldd | grep -q` under pipefail fails whenever grep
# exits at its first match while ldd is still writing (SIGPIPE), which a CI run hit.
deps=$(ldd "$prefix/prog_shared")
case "$deps" in
  *"$lib/libquant.so"*) ;;
  *) echo "install_check: prog_shared does not use the installed libquant.so; ldd says:" >&2
     echo "$deps" >&2; exit 1 ;;
esac
# No CUDA library in what an application links or a tool maps at start: the CUDA backend is the
# module <libdir>/libquant/libquant_cuda.so, loaded on the first --device cuda.
for f in "$lib/libquant.so" "$prefix/prog_shared" "$prefix/prog_static" "$prefix/bin/quant-ptq"; do
  deps=$(ldd "$f")
  case "$deps" in
    *libcudart*|*libcublas*) echo "install_check: $f links a CUDA library; ldd says:" >&2
                             echo "$deps" >&2; exit 1 ;;
  esac
done
mod="$lib/libquant/libquant_cuda.so"
if [ -f "$mod" ]; then
  # The installed tool and a program on the installed libquant.so both find the module by
  # themselves (run from /: nothing found through the working directory). Without a GPU the
  # module's device query stops them at "no CUDA device found"; any other failure ("cannot load
  # the CUDA module ...") means the search missed the install.
  model="$PWD/../shared/models/stories260K/stories260K.bin"
  cat >"$prefix/prog_cuda.c" <<'C'
#include <libquant.h>
#include <stdio.h>

int main(int argc, char **argv) {
    lq_model *m;
    if (argc != 2 || lq_model_load(argv[1], &m) != LQ_OK) return 2;
    lq_status st = lq_model_to_device(m, LQ_DEVICE_CUDA);
    if (st != LQ_OK) fprintf(stderr, "%s\n", lq_last_error());
    lq_model_free(m);
    return st == LQ_OK ? 0 : 3;
}
C
  # shellcheck disable=SC2046
  "$cc" -std=c11 -Wall -Werror -o "$prefix/prog_cuda" "$prefix/prog_cuda.c" $(pkg-config --cflags --libs libquant) \
    -Wl,-rpath,"$lib"
  for run in "$prefix/prog_cuda $model" \
             "$prefix/bin/quant-run --model $model --tokenizer ${model%/*}/tok512.bin --prompt x --max-tokens 1 --device cuda"; do
    rc=0
    out=$(cd / && env -u LQ_CUDA_MODULE $run 2>&1) || rc=$?
    case "$rc:$out" in
      0:*|3:*"no CUDA device found"*) ;; # a GPU: it ran; none: the module said so
      *) echo "install_check: '$run' (exit $rc) did not find $mod: $out" >&2; exit 1 ;;
    esac
  done
fi
echo "install_check: ok ($(ls "$lib" | tr '\n' ' '); pkg-config $(pkg-config --modversion libquant))"
