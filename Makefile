# pixserve — one Makefile for the service, its tests, sanitizer builds,
# fuzzers and the demo. Every build first runs scripts/setup --quiet, which
# installs missing Debian packages (and prints nothing when all are present).
#
#   make                      release build into build/release/
#   make SANITIZER=address    (or undefined, thread, address,undefined) into build/<name>/
#   make CUDA=1               with the CUDA engines (shared runtime + lama's backend), into build/<name>-cuda/
#   make test                 unit + integration + browser tests, then again under
#                             ASan+UBSan, the concurrency core under TSan, then every
#                             fuzzer briefly
#   make test-web             the web UI's browser tests only (headless Chromium)
#   make fuzz                 libFuzzer targets (clang) into build/fuzz/
#   make demo                 inpaint a photo through pixserve's API, then a short
#                             pixbench sweep against it (about 1.5 minutes) with a report
#   make bench                benchmark programs (bench/*.c) into build/<name>/bench/

comma := ,
SANITIZER ?=
CUDA ?= 0
# Builds use every core unless -j was given: CI runs a plain `make test` on
# 2 cores, where four serial builds took ~3 of its ~16 minutes.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc)
endif
SAN_TAG := $(subst $(comma),+,$(SANITIZER))
BUILD ?= build/$(if $(SANITIZER),$(SAN_TAG),release)

CC ?= cc
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wundef
# Asserts stay on in every build: NDEBUG is never defined.
CPPFLAGS := -Isrc -D_GNU_SOURCE -MMD -MP
OPT ?= -O2
CFLAGS := -std=c17 $(OPT) -g -pthread $(WARN) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(EXTRA_LDFLAGS)
LDLIBS := -lmicrohttpd -lcjson -lpng16 -l:libdeflate.a -ljpeg -lwebp -lz -lm
# The LaMa engine: oneDNN for convolutions (it runs on OpenMP, hence -lgomp),
# FFTW single precision with its threads for the Fourier units.
LDLIBS += -ldnnl -lfftw3f_threads -lfftw3f -lgomp
# The Z-Image engine's tokenizer: PCRE2 runs the BPE pre-tokenizer's Unicode
# regex, utf8proc does the NFC normalisation.
LDLIBS += -lpcre2-8 -lutf8proc

ifneq ($(SANITIZER),)
CFLAGS += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZER)
endif

# CUDA=1 adds the CUDA engines into build/<name>-cuda/: the shared CUDA
# runtime (src/engine/cuda/), the lama engine's backend
# (src/engine/lama/cuda/: cuDNN, cuFFT, kernels.cu through nvcc) and the
# zimage engine's (src/engine/zimage/cuda/: cuBLASLt, zkernels.cu, zattn.cu); without
# it lama_cuda_none.c and zimage_cuda_none.c say so at run time. The
# runtime's plain-C parts (device names, plan caches) build everywhere, so that their tests run without
# CUDA. The CUDA runtime is linked statically; cuDNN, cuFFT and
# cuBLAS/cuBLASLt are the machine's shared libraries.
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 \
             -gencode arch=compute_90,code=compute_90
# wgmma (zhgemm.cu) exists only in the sm_90a target; that file is built for
# it and for sm_80 (where its kernel traps and is never launched), with no
# plain sm_90 code, so that a Hopper GPU can only load the sm_90a one.
HGEMM_ARCH := -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_80,code=sm_80
ifeq ($(CUDA),1)
BUILD := $(BUILD)-cuda
# -isystem: cuBLAS's headers do not build under -Wundef -Wstrict-prototypes.
CPPFLAGS += -isystem $(CUDA_HOME)/include
# cuBLAS/cuBLASLt --as-needed: only binaries whose engines make GEMMs load it.
LDLIBS += -L$(CUDA_HOME)/lib64 -lcudnn -lcufft -Wl,--push-state,--as-needed -lcublas \
          -lcublasLt -Wl,--pop-state -lcudart_static -ldl -lrt -lstdc++
endif

MAINS := src/serve/main.c src/bench/main.c
# The CPU convolution backend of the LaMa graph and the Z-Image VAE (engine/
# conv.h): one file per device kind, picked here (oneDNN plus a direct kernel
# for RGB-output layers on the CPU).
CONV := src/engine/conv_dnnl.c src/engine/conv_narrow.c
CUDA_RT_PLAIN := src/engine/cuda/cuda_devspec.c src/engine/cuda/cuda_plan.c \
                 src/engine/cuda/cuda_plan_async.c
ifeq ($(CUDA),1)
CUDA_RT := $(wildcard src/engine/cuda/*.c)
LAMA_CUDA := $(wildcard src/engine/lama/cuda/*.c)
LAMA_CU := $(wildcard src/engine/lama/cuda/*.cu)
ZIMAGE_CUDA := $(wildcard src/engine/zimage/cuda/*.c)
ZIMAGE_CU := $(wildcard src/engine/zimage/cuda/*.cu)
else
CUDA_RT := $(CUDA_RT_PLAIN)
LAMA_CUDA := src/engine/lama/lama_cuda_none.c
LAMA_CU :=
ZIMAGE_CUDA := src/engine/zimage/zimage_cuda_none.c
ZIMAGE_CU :=
endif
LAMA_SRC := $(filter-out src/engine/lama/lama_cuda_none.c,\
              $(wildcard src/engine/lama/*.c)) $(LAMA_CUDA)
LIB_SRC := $(filter-out $(MAINS) src/engine/conv_%.c,$(wildcard src/core/*.c src/image/*.c src/engine/*.c \
             src/engine/classic/*.c $(filter-out src/engine/zimage/zimage_cuda_none.c,\
             $(wildcard src/engine/zimage/*.c)) src/serve/*.c src/bench/*.c)) \
           $(CONV) $(LAMA_SRC) $(CUDA_RT) $(ZIMAGE_CUDA)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(LAMA_CU:%.cu=$(BUILD)/%.o) \
           $(ZIMAGE_CU:%.cu=$(BUILD)/%.o) $(BUILD)/gen/web_assets.o
LIB := $(BUILD)/libpixserve.a
PIXSERVE := $(BUILD)/pixserve
PIXBENCH := $(BUILD)/pixbench

UNIT_SRC := $(wildcard tests/unit/*_test.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HARNESS_OBJ := $(BUILD)/tests/harness.o

# The CUDA benches (bench/*_cuda_*.c) need the CUDA headers: CUDA=1 builds only.
BENCH_SRC := $(wildcard bench/*.c)
ifneq ($(CUDA),1)
BENCH_SRC := $(filter-out bench/%_cuda_bench.c,$(BENCH_SRC))
endif
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)

.SECONDARY:

.PHONY: test-host test-gpu all setup unit testdata bench test test-unit test-integration test-web test-sanitize test-fuzz fuzz fuzz-bins \
        demo clean format

all: $(PIXSERVE) $(PIXBENCH)

setup:
	@scripts/setup --quiet

# `make V=1` prints full command lines.
V ?= 0
ifeq ($(V),0)
Q = @
say = @echo "  $(1)	$(2)"
else
Q =
say =
endif

$(BUILD)/%.o: %.c | setup
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# The web UI (web/) is compiled into the binary: tools/embed_web writes the
# files as a C table (src/serve/static.h) into the build directory. The
# directory itself is a prerequisite so adding or removing a file regenerates.
WEB_FILES := $(sort $(shell find web -type f ! -name '.*' 2>/dev/null))
EMBED_WEB := $(BUILD)/tools/embed_web

$(EMBED_WEB): tools/embed_web.c | setup
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) -std=c17 -O1 $(WARN) $< -o $@

$(BUILD)/gen/web_assets.c: $(EMBED_WEB) $(WEB_FILES) web
	@mkdir -p $(@D)
	$(call say,GEN,$@)
	$(Q)$(EMBED_WEB) $@ web $(WEB_FILES)

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/src/engine/zimage/cuda/zhgemm.o: CUDA_ARCH = $(HGEMM_ARCH)

$(BUILD)/%.o: %.cu | setup
	@mkdir -p $(@D)
	$(call say,NVCC,$@)
	$(Q)$(NVCC) -std=c++17 -O3 $(CUDA_ARCH) -Isrc -Xcompiler -Wall,-Werror -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

$(PIXSERVE): $(BUILD)/src/serve/main.o $(LIB)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# pixbench: the load tester (src/bench/); talks to pixserve only over HTTP.
$(PIXBENCH): $(BUILD)/src/bench/main.o $(LIB)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(HARNESS_OBJ): tests/unit/harness.c | setup
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -c $< -o $@

$(BUILD)/tests/%.o: tests/unit/%.c | setup
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -c $< -o $@

$(BUILD)/tests/%_test: $(BUILD)/tests/%_test.o $(HARNESS_OBJ) $(LIB)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The Z-Image CUDA tests share their helpers (the engine on the tiny model,
# the stage errors against the reference).
$(BUILD)/tests/zimage_cuda_test $(BUILD)/tests/zimage_cuda_fp8_test: $(BUILD)/tests/zimage_cuda_util.o

# The unit tests' reference data: npm packages into build/testdata/
# (scripts/testdata; quiet when present). After setup, which installs npm:
# with parallel builds it would otherwise race the compiles' setup.
unit: testdata $(UNIT_BIN)

testdata: | setup
	@scripts/testdata

# Benchmarks are programs, not tests: they print numbers and assert nothing.
bench: $(BENCH_BIN)

# conv_backends compares oneDNN with im2col + OpenBLAS (the rejected backend).
$(BUILD)/bench/conv_backends: LDLIBS += -lopenblas

$(BUILD)/bench/%: bench/%.c $(LIB) | setup
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

# --- tests -------------------------------------------------------------------
# scripts/test runs one build's unit and integration tests; `make test` runs
# the release build, then the ASan+UBSan build, then every fuzzer briefly.
test-unit: all unit
	@scripts/test unit $(BUILD)

test-integration: all
	@scripts/test integration $(BUILD)

test-web: all
	@scripts/test web $(BUILD)

test-sanitize:
	@$(MAKE) --no-print-directory SANITIZER=address,undefined OPT=-O1 all unit
	@scripts/test all build/address+undefined

test-fuzz: fuzz
	@scripts/test fuzz build/fuzz

# The concurrent core (scheduler, worker pool, timers, thread pool) and
# pixbench's sampling thread with its ring under ThreadSanitizer.
TSAN_TESTS := sched sched_join workers task timer core monitor cuda_runtime
test-tsan:
	@$(MAKE) --no-print-directory SANITIZER=thread $(TSAN_TESTS:%=build/thread/tests/%_test)
	@scripts/test threads build/thread $(TSAN_TESTS)

# The CUDA backends' bookkeeping on the host (tests/host/*_check.sh): needs
# the CUDA toolkit's headers, not a GPU (skipped with a message without them).
test-host:
	@scripts/test_host

# The CUDA engines' comparisons (Z-Image, LaMa), on a machine with a GPU
# (skips without one).
test-gpu:
	@scripts/test_gpu

test: all unit
	@scripts/test all $(BUILD)
	@$(MAKE) --no-print-directory test-host
	@$(MAKE) --no-print-directory test-sanitize
	@$(MAKE) --no-print-directory test-tsan
	@$(MAKE) --no-print-directory test-fuzz

# --- fuzzing (libFuzzer needs clang) -------------------------------------------
fuzz: | setup
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
	  EXTRA_LDFLAGS="-fsanitize=fuzzer,address,undefined" fuzz-bins

fuzz-bins: $(FUZZ_BIN)

build/fuzz/fuzz_%: fuzz/fuzz_%.c $(LIB)
	$(call say,LD,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

# --- demo --------------------------------------------------------------------
demo: all
	@scripts/demo $(PIXSERVE) $(PIXBENCH)

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(wildcard $(BUILD)/gen/*.d $(BUILD)/src/*/*.d $(BUILD)/src/*/*/*.d $(BUILD)/src/*/*/*/*.d $(BUILD)/tests/*.d $(BUILD)/bench/*.d)
