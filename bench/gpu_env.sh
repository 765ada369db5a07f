# bench/gpu_env.sh — sourced by the GPU-machine scripts: finds the CUDA
# libraries the CUDA build links (cuDNN 9, cuFFT from CUDA 13) and the Debian
# libraries carried next to the binaries (.devlibs/, made by scripts/gpu_prepare,
# unpacked by bench/gpu_session.sh), and says what it found.
# Only the carried libraries the system lacks go on the path (links in
# /tmp/px-devlibs): the Debian copies of libz, libffi, libgomp, libpng ...
# must not shadow the system's for python3 and torch, which inherit it.
libdirs=""
if [ -d .devlibs ]; then
  # Made once per unpacked .devlibs (scripts sourcing this again, while
  # processes started earlier use the links, leave them alone).
  if [ ! -f /tmp/px-devlibs/.cache ] || [ .devlibs -nt /tmp/px-devlibs/.cache ] ||
     [ "$(cat /tmp/px-devlibs/.src 2>/dev/null)" != "$PWD" ]; then
    rm -rf /tmp/px-devlibs && mkdir -p /tmp/px-devlibs
    # The cache listed once into a file: `ldconfig -p | grep -q` under the
    # callers' pipefail fails at random (grep's early exit gives ldconfig SIGPIPE).
    ldconfig -p > /tmp/px-devlibs/.cache.tmp 2>/dev/null
    for f in .devlibs/*.so*; do
      n=$(basename "$f")
      grep -q "^[[:space:]]*$n " /tmp/px-devlibs/.cache.tmp || ln -s "$PWD/$f" "/tmp/px-devlibs/$n"
    done
    echo "$PWD" > /tmp/px-devlibs/.src
    mv /tmp/px-devlibs/.cache.tmp /tmp/px-devlibs/.cache
  fi
  libdirs=/tmp/px-devlibs
  echo "gpu_env: carried libraries used (the system lacks them): $(ls /tmp/px-devlibs | tr '\n' ' ')"
fi
# PyTorch's wheels' library directories (cuDNN, cuFFT, cuBLAS, the CUDA 13
# runtime), colon-separated; empty without them.
px_torch_libdirs() {
  python3 - <<'PY' 2>/dev/null
import importlib, os
dirs = []
# CUDA 12 wheels: nvidia/<lib>/lib; CUDA 13 wheels (torch 2.11+cu130): nvidia/cu13/lib
for mod in ("nvidia.cudnn", "nvidia.cufft", "nvidia.cublas", "nvidia.cuda_runtime", "nvidia.cu13"):
    try:
        m = importlib.import_module(mod)
        for p in m.__path__:
            if os.path.isdir(os.path.join(p, "lib")):
                dirs.append(os.path.join(p, "lib"))
    except Exception:
        pass
print(":".join(dirs))
PY
}
# cuDNN/cuFFT: the system's if ldconfig knows them, else PyTorch's wheels.
# PX_LIBS=torch puts the wheels' first even where the system has its own
# (the libraries PyTorch's runs use: an A/B of the library, not the code).
if [ "${PX_LIBS:-}" = torch ] || ! ldconfig -p 2>/dev/null | grep 'libcudnn.so.9' >/dev/null; then
  py=$(px_torch_libdirs)
  if [ "${PX_LIBS:-}" = torch ]; then
    [ -n "$py" ] && libdirs="$py${libdirs:+:$libdirs}"
  elif [ -n "$py" ]; then
    libdirs="$libdirs:$py"
  fi
fi
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && libdirs="$libdirs:$d"; done
# Sourced again by a script this one started: the same directories once.
case ":${LD_LIBRARY_PATH:-}:" in *":${libdirs#:}:"*) ;; *)
  export LD_LIBRARY_PATH="${libdirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
esac
export PX_PYTHON=${PX_PYTHON:-python3}
echo "gpu_env: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
