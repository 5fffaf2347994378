# fuzz.mk: builds the libFuzzer targets (fuzz/fuzz_*.c) with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer, against the reader
# sources only (no BLAS, YAML or OpenMP), and the seed writer. Run by
# fuzz/run.sh (make fuzz, make check); FB is the build folder.
CLANG   ?= clang
FB      ?= build/fuzz
BLASINC := /usr/include/x86_64-linux-gnu/openblas-openmp
BLASLIB := /usr/lib/x86_64-linux-gnu/openblas-openmp
FCFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wno-unknown-pragmas -Wno-unused-parameter -Iinclude -Isrc -I$(BLASINC) \
           -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LIB_SRC := $(wildcard src/base/*.c src/io/*.c src/data/*.c)
# stb_image is linked as instrumented source (fuzz/stb_impl.c), not as
# Debian's libstb, so that the fuzzer sees inside the decoders; libmatio
# has no such source here and is fuzzed through our checks in front of it.
LIB_OBJ := $(LIB_SRC:%.c=$(FB)/%.o) $(FB)/fuzz/stb_impl.o
TARGETS := $(patsubst fuzz/%.c,$(FB)/%,$(wildcard fuzz/fuzz_*.c))
LIBS    := -lmatio -ljpeg -lz -lm -pthread

all: $(TARGETS) $(FB)/seeds

$(FB)/%.o: %.c $(wildcard include/*.h src/*/*.h fuzz/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(FCFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FB)/fuzz_%: fuzz/fuzz_%.c $(LIB_OBJ) fuzz/fuzz.h
	$(CLANG) $(FCFLAGS) -fsanitize=fuzzer $< $(LIB_OBJ) -o $@ $(LIBS)

# The config target also runs the experiment schema, which reaches the
# architectures and the feedback defaults, hence the network code: every
# library source but the training loop, its logs (version.json's among
# them, and TensorBoard's events) and the probe (OpenMP stays off, its pragmas ignored; no jansson),
# with OpenBLAS and libyaml; not the oneDNN backend
# (src/layers/conv2d_dnnl.c): the fuzzers read data, they convolve nothing.
NET_SRC := $(filter-out $(addprefix src/train/,run.c loop.c log.c probe.c version.c tboard.c) src/layers/conv2d_dnnl.c $(LIB_SRC),$(wildcard src/*/*.c))
NET_OBJ := $(NET_SRC:%.c=$(FB)/%.o)
$(FB)/fuzz_config: fuzz/fuzz_config.c $(LIB_OBJ) $(NET_OBJ) fuzz/fuzz.h
	$(CLANG) $(FCFLAGS) -fsanitize=fuzzer $< $(LIB_OBJ) $(NET_OBJ) -o $@ $(LIBS) -lyaml -L$(BLASLIB) -Wl,-rpath,$(BLASLIB) -lopenblas

$(FB)/seeds: fuzz/seeds.c
	@mkdir -p $(FB)
	$(CLANG) -O1 -g -std=c11 -D_GNU_SOURCE -Wall $< -o $@ -lmatio -lstb -lz -lm
