# bench/gpu_env.sh — sourced by the GPU-machine scripts: finds the CUDA
# libraries the CUDA build links (cuDNN 9, cuFFT from CUDA 13) and the Debian
# libraries carried next to the binaries (.devlibs/, see docs/benchmarks/
# lama-cuda.md for how that folder is made), and says what it found.
libdirs=""
if [ -d .devlibs ]; then libdirs="$PWD/.devlibs"; fi
# cuDNN/cuFFT: the system's if ldconfig knows them, else PyTorch's wheels.
if ! ldconfig -p | grep -q 'libcudnn.so.9'; then
  py=$(python3 - <<'PY' 2>/dev/null
import importlib, os
dirs = []
for mod in ("nvidia.cudnn", "nvidia.cufft", "nvidia.cublas", "nvidia.cuda_runtime"):
    try:
        m = importlib.import_module(mod)
        for p in m.__path__:
            if os.path.isdir(os.path.join(p, "lib")):
                dirs.append(os.path.join(p, "lib"))
    except Exception:
        pass
print(":".join(dirs))
PY
)
  [ -n "$py" ] && libdirs="$libdirs:$py"
fi
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && libdirs="$libdirs:$d"; done
export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PX_PYTHON=${PX_PYTHON:-python3}
echo "gpu_env: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
