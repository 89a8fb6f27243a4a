# isq - offline quantization toolchain.  One non-recursive Makefile.
#
# Targets:
#   all (default)   libisq.a and every tool, in $(B)/
#   demo            the main job end to end on a generated default model
#   check           every test (unit, CLI, golden); no GPU needed
#   check-full      check, plus the slow full-text checks
#   bench           benchmarks (quantizer speed, conversion, memory)
#   bench-ggml      GGML_DIR=DIR: tests/bench/ggml-llama.cpp against a built ggml, for side-by-side speed
#   fuzz            build the libFuzzer harnesses and run each for FUZZ_TIME seconds
#   install         binaries, man pages, libisq.a, headers, isq.pc under $(DESTDIR)$(PREFIX)
#   deps            apt-get install the Debian packages listed in .ci/debian-packages
#   clean
#
# Knobs:
#   CUDA=auto|0|1     build the CUDA backend (auto: when nvcc is found; 1 without it is an error)
#   VULKAN=auto|0|1   build the Vulkan backend (auto: when glslc and the loader are found)
#   SANITIZE=address,undefined   instrumented build, in its own build directory
#   WERROR=1          warnings are errors (CI sets it)
#   V=1               show the commands
#   PREFIX=/usr/local DESTDIR=   install locations
#   FUZZ_TIME=20      seconds per fuzz harness

PREFIX ?= /usr/local
CC ?= cc
FUZZ_CC ?= clang
AR ?= ar
CUDA ?= auto
VULKAN ?= auto
FUZZ_TIME ?= 20
ISQ_VERSION := 0.1.0

ifeq ($(V),1)
Q :=
else
Q := @
endif

ifneq ($(SANITIZE),)
B := build/sanitize
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
B := build
SANFLAGS :=
endif

PKGS := libcjson libzstd libarchive libpcre2-8 libutf8proc yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif
INCLUDES := -Ilibcommon -Ikernels -Ikernels/cpu -Iformats
# -ffp-contract=off: the scalar dequantizers must match ggml's bit for bit (no FMA contraction).
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(CFLAGS) -ffp-contract=off $(WARN) $(INCLUDES) $(PKG_CFLAGS) $(SANFLAGS) -MMD -MP
LDLIBS := $(PKG_LIBS) -lpthread -lm
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS)

# ---- optional backends ------------------------------------------------------
NVCC ?= $(shell command -v nvcc 2>/dev/null || (test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc))
ifeq ($(CUDA),1)
ifeq ($(NVCC),)
$(error CUDA=1 but nvcc was not found; install the CUDA toolkit or use CUDA=0)
endif
endif
CUDA_SRCS := $(sort $(wildcard kernels/cuda/*.cu))
ifneq ($(CUDA),0)
ifneq ($(NVCC),)
ifneq ($(CUDA_SRCS),)
HAVE_CUDA := 1
endif
endif
endif

GLSLC ?= $(shell command -v glslc 2>/dev/null)
VULKAN_OK := $(shell pkg-config --exists vulkan 2>/dev/null && echo yes)
ifeq ($(VULKAN),1)
ifeq ($(GLSLC)$(VULKAN_OK),)
$(error VULKAN=1 but glslc or the Vulkan loader (libvulkan-dev) was not found; use VULKAN=0)
endif
ifeq ($(GLSLC),)
$(error VULKAN=1 but glslc was not found; install glslc or use VULKAN=0)
endif
ifneq ($(VULKAN_OK),yes)
$(error VULKAN=1 but the Vulkan loader (libvulkan-dev) was not found; use VULKAN=0)
endif
endif
VULKAN_SRCS := $(sort $(wildcard kernels/vulkan/*.c))
ifneq ($(VULKAN),0)
ifneq ($(GLSLC),)
ifeq ($(VULKAN_OK),yes)
ifneq ($(VULKAN_SRCS),)
HAVE_VULKAN := 1
endif
endif
endif
endif

# ---- sources ----------------------------------------------------------------
LIB_SRCS := $(sort $(wildcard libcommon/*.c formats/*.c kernels/*.c kernels/cpu/*.c))
ifeq ($(HAVE_VULKAN),1)
LIB_SRCS += $(VULKAN_SRCS)
ALL_CFLAGS += -DISQ_HAVE_VULKAN=1
LDLIBS += $(shell pkg-config --libs vulkan)
endif
LIB_OBJS := $(patsubst %.c,$(B)/%.o,$(LIB_SRCS))
ifeq ($(HAVE_CUDA),1)
LIB_OBJS += $(patsubst %.cu,$(B)/%.o,$(CUDA_SRCS))
ALL_CFLAGS += -DISQ_HAVE_CUDA=1
LDLIBS += -L$(dir $(NVCC))../lib64 -lcudart -lcublas -lstdc++
endif

TOOL_SRCS := $(sort $(wildcard tools/isq-*.c))
TOOLS := $(patsubst tools/%.c,$(B)/%,$(TOOL_SRCS))
TEST_SRCS := $(sort $(wildcard tests/unit/test-*.c))
TESTS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(TEST_SRCS))
GEN_SRCS := $(sort $(wildcard tests/gen/*.c))
GENS := $(patsubst tests/gen/%.c,$(B)/tests/%,$(GEN_SRCS))
BENCH_SRCS := $(sort $(wildcard tests/bench/bench-*.c))
BENCHES := $(patsubst tests/bench/%.c,$(B)/tests/%,$(BENCH_SRCS))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZERS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
MANS := $(sort $(wildcard man/*.[0-9]))

all: $(B)/libisq.a $(TOOLS)

# Rebuild everything when the flags change.
$(B)/.flags: FORCE
	@mkdir -p $(B)
	@echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(LDLIBS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(LDLIBS)' > $@

$(B)/%.o: %.c $(B)/.flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(CFLAGS_$(notdir $*)) -c -o $@ $<

# Per-file SIMD flags: only the *-avx2.c files may use AVX2; dispatch is at run time.
AVX2_FLAGS := -mavx2 -mfma -mf16c
$(B)/kernels/cpu/%-avx2.o: kernels/cpu/%-avx2.c $(B)/.flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(AVX2_FLAGS) -c -o $@ $<

$(B)/%.o: %.cu $(B)/.flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $<")
	$(Q)$(NVCC) -O2 $(INCLUDES) -c -o $@ $<

$(B)/libisq.a: $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(B)/isq-%: $(B)/tools/isq-%.o $(B)/libisq.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(B)/libisq.a $(LDLIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(B)/libisq.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(B)/libisq.a $(LDLIBS)

$(B)/tests/%: $(B)/tests/gen/%.o $(B)/libisq.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(B)/libisq.a $(LDLIBS)

$(B)/tests/%: $(B)/tests/bench/%.o $(B)/libisq.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(B)/libisq.a $(LDLIBS)

# ---- the main job on the default model (a generated one: no download) -------
DEMO := $(B)/demo
demo: all $(GENS)
	$(Q)rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(B)/tests/isq-genmodel --preset small --seed 1 -o $(DEMO)/model
	$(B)/isq-inspect $(DEMO)/model
	$(B)/isq-quantize -m $(DEMO)/model -t q4_k_m -o $(DEMO)/model-q4_k_m.gguf
	$(B)/isq-inspect $(DEMO)/model-q4_k_m.gguf
	$(B)/isq-run -m $(DEMO)/model-q4_k_m.gguf -p "Once upon a time" -n 32 --temp 0

# ---- tests ------------------------------------------------------------------
check: all $(TESTS) $(GENS)
	$(Q)BIN=$(B) ISQ_CHECK_LEVEL=quick sh tests/run.sh

check-full: all $(TESTS) $(GENS)
	$(Q)BIN=$(B) ISQ_CHECK_LEVEL=full sh tests/run.sh

bench: all $(BENCHES) $(GENS)
	$(Q)BIN=$(B) sh tests/bench/run.sh

# The same model through ggml (llama.cpp's compute library), for a side-by-side; GGML_DIR is a built checkout.
bench-ggml: $(B)/tests/ggml-llama
$(B)/tests/ggml-llama: tests/bench/ggml-llama.cpp
	@test -n "$(GGML_DIR)" || { echo "make bench-ggml: set GGML_DIR to a built ggml checkout" >&2; exit 2; }
	@mkdir -p $(@D)
	$(Q)$(CXX) -O2 -std=c++17 -I$(GGML_DIR)/include -o $@ $< -L$(GGML_DIR)/build/src -lggml -lggml-base -lggml-cpu \
		-Wl,-rpath,$(GGML_DIR)/build/src

# ---- fuzzing: the whole library rebuilt with clang and libFuzzer -------------
FUZZ_LIB_OBJS := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRCS))
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer-no-link,address,undefined $(INCLUDES) $(PKG_CFLAGS) -ffp-contract=off

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(if $(findstring -avx2,$<),$(AVX2_FLAGS)) -c -o $@ $<

build/fuzz/libisq-fuzz.a: $(FUZZ_LIB_OBJS)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

build/fuzz/fuzz-%: tests/fuzz/fuzz-%.c build/fuzz/libisq-fuzz.a
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< build/fuzz/libisq-fuzz.a $(LDLIBS)

fuzz-build: $(FUZZERS)

fuzz: $(FUZZERS)
	$(Q)FUZZ_TIME=$(FUZZ_TIME) sh tests/fuzz/run.sh $(FUZZERS)

# ---- install ------------------------------------------------------------------
# internal headers (templates, private structs) stay out of the installed set
PUBLIC_HEADERS := $(sort $(filter-out %-impl.h kernels/encode.h kernels/lanes.h,$(wildcard libcommon/*.h formats/*.h kernels/*.h)))

$(B)/isq.pc: FORCE
	@mkdir -p $(B)
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: isq\nDescription: offline quantization toolchain for large language models\nVersion: %s\nRequires.private: %s\nLibs: -L$${libdir} -lisq\nLibs.private: -lpthread -lm\nCflags: -I$${includedir}/isq\n' \
		'$(PREFIX)' '$(ISQ_VERSION)' '$(PKGS)' > $@

install: all $(B)/isq.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/isq
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(B)/libisq.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(PREFIX)/include/isq/
	install -m 644 $(B)/isq.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	for m in $(MANS); do s=$${m##*.}; install -d $(DESTDIR)$(PREFIX)/share/man/man$$s; \
		install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done

deps:
	sh .ci/install-deps

clean:
	rm -rf build

FORCE:

.PHONY: all demo check check-full bench bench-ggml fuzz fuzz-build install deps clean FORCE
.DELETE_ON_ERROR:

# $(B), not build: a B=... build directory tracks its headers too
-include $(sort $(shell find $(B) build/fuzz -name '*.d' 2>/dev/null))
