# asymbp: build, test, demo. See README.md.
# make MPI=1: the MPI build (docs/MPI.md), compiled by Open MPI's mpicc with
# -DASYM_MPI into its own folder (build-mpi); the plain build has no MPI.
ifeq ($(MPI),1)
BUILD   ?= build-mpi
CC      := mpicc
MPI_CFLAGS := -DASYM_MPI
endif
# Convolutions: CONV picks the path a build compiles in.
#   dnnl-winograd  oneDNN (Debian libdnnl-dev, which `make deps` installs),
#                  Winograd F(4x4, 3x3) for 3x3 stride-1 layers of 32+
#                  channels, direct convolution for the rest: the fastest
#                  path measured (docs/PERFORMANCE.md). The default where
#                  oneDNN is installed.
#   dnnl           oneDNN, direct convolutions only (what PyTorch's CPU path runs)
#   dnnl-plain     oneDNN direct on plain nchw tensors (slower; for comparison)
#   im2col         the portable path: im2col + OpenBLAS, no oneDNN. The
#                  default where oneDNN is not installed.
# The default goes into build/, a CONV named on the command line into
# build-CONV (build-im2col, build-dnnl, ...). `asymbp version` names the path.
HAVE_DNNL := $(shell test -r /usr/include/oneapi/dnnl/dnnl.h && echo 1)
CONV_DEFAULT := $(if $(HAVE_DNNL),dnnl-winograd,im2col)
ifeq ($(origin CONV),undefined)
CONV    := $(CONV_DEFAULT)
else
BUILD   ?= build-$(CONV)
endif
ifeq ($(filter $(CONV),dnnl-winograd dnnl dnnl-plain im2col),)
$(error CONV=$(CONV): one of dnnl-winograd, dnnl, dnnl-plain, im2col)
endif
ifneq ($(filter dnnl%,$(CONV)),)
DNNL_CFLAGS := -DASYM_DNNL $(if $(filter dnnl-plain,$(CONV)),-DASYM_DNNL_PLAIN) $(if $(filter dnnl-winograd,$(CONV)),-DASYM_DNNL_WINOGRAD)
DNNL_LIBS   := -ldnnl
endif
CC      ?= cc
BUILD   ?= build
BLASINC := /usr/include/x86_64-linux-gnu/openblas-openmp
BLASLIB := /usr/lib/x86_64-linux-gnu/openblas-openmp
OPT     ?= -O2 -march=x86-64-v2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fopenmp -Iinclude -Isrc -I$(BUILD)/gen -I$(BLASINC) $(MPI_CFLAGS) $(DNNL_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  := $(DNNL_LIBS) -L$(BLASLIB) -Wl,-rpath,$(BLASLIB) -lopenblas -lyaml -ljansson -lprotobuf-c -lmatio -lstb -ljpeg -lz -lm -fopenmp -pthread $(EXTRA_LDFLAGS)
PYTHON  ?= /usr/bin/python3

LIB_SRC  := $(filter-out $(if $(DNNL_LIBS),,src/layers/conv2d_dnnl.c),$(wildcard src/*/*.c))
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/*.c)
# protobuf-c's code for TensorBoard's messages (proto/tensorboard.proto), made in $(BUILD)/gen
GEN_SRC  := $(BUILD)/gen/tensorboard.pb-c.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(GEN_SRC:.c=.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: install uninstall all deps check check-all test demo asan valgrind clean bench bench-mpi fuzz repro repro-biotorch repro-liao repro-liao-small
all: $(BUILD)/asymbp $(BUILD)/libasymbp.a

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*/*.h tests/*.h cli/*.h) $(BUILD)/cflags.id
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Iproto $<
$(BUILD)/gen/%.o: $(BUILD)/gen/%.c $(BUILD)/cflags.id
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/src/train/tboard.o: $(BUILD)/gen/tensorboard.pb-c.h

# made afresh, so that the object of a removed source leaves it too
$(BUILD)/libasymbp.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/asymbp: $(CLI_OBJ) $(BUILD)/libasymbp.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test_runner: $(TEST_OBJ) $(BUILD)/libasymbp.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# examples/: programs on the public header alone (compiled without -Isrc)
$(BUILD)/examples/%: examples/%.c include/asymbp.h $(BUILD)/libasymbp.a
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Isrc,$(CFLAGS)) -o $@ $< $(BUILD)/libasymbp.a $(LDLIBS)

# The version every run folder records (src/train/version.c, version.json): the
# commit, -dirty when tracked files under src/ include/ cli/ differ from it,
# and the flags that can change results (not -I, -W, -std). Only version.o
# is compiled with them; $(BUILD)/version.id changes when they do, which
# rebuilds version.o alone.
ASYM_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git status --porcelain --untracked-files=no -- src include cli 2>/dev/null | grep -q . && echo -dirty)
ASYM_FLAGS  := $(strip $(filter-out -I% -W% -std=% -D_GNU_SOURCE,$(CFLAGS)))
$(BUILD)/src/train/version.o: CFLAGS += -DASYM_COMMIT='"$(ASYM_COMMIT)"' -DASYM_FLAGS='"$(ASYM_FLAGS)"'
$(BUILD)/src/train/version.o: $(BUILD)/version.id
$(BUILD)/version.id: FORCE
	@mkdir -p $(BUILD); echo '$(ASYM_COMMIT) $(ASYM_FLAGS)' | cmp -s - $@ || echo '$(ASYM_COMMIT) $(ASYM_FLAGS)' >$@
# Every object depends on the compiler and the flags that change code
# ($(BUILD)/cflags.id): a build folder never mixes objects of two CONV paths.
$(BUILD)/cflags.id: FORCE
	@mkdir -p $(BUILD); echo '$(CC) $(ASYM_FLAGS)' | cmp -s - $@ || echo '$(CC) $(ASYM_FLAGS)' >$@
FORCE:

deps:
	@scripts/deps.sh

# The test suite: unit, finite-difference, PyTorch-oracle and short real runs.
# Where mpicc and mpirun are installed it also builds the MPI binary
# (MPI_BUILD, the same CONV) for the mpirun tests of tests/test_mpi.c, which
# skip otherwise; `make MPI=1 check` runs the whole suite on the MPI build.
# `check` installs what is missing first (deps), then runs check-all in a
# second make, which sees what deps installed (oneDNN decides CONV).
MPI_BUILD ?= build-mpi
HAVE_MPI  = $(shell command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 && echo 1)
MPI_BIN   = $(if $(HAVE_MPI),$(CURDIR)/$(if $(filter 1,$(MPI)),$(BUILD),$(MPI_BUILD))/asymbp)
# The default build (oneDNN with Winograd) runs the whole suite; the other
# convolution paths, each in its own build, run the convolution-related
# tests (CONV_TESTS: parts of names as in TESTS, ^NAME for names that begin
# with NAME): the portable im2col path (CONV=im2col) and oneDNN's direct
# convolutions (CONV=dnnl), which the Winograd build also runs on its small
# layers. Not when TESTS picks tests, or for MPI=1 or a CONV of one's own;
# `make CONV=im2col check` runs the whole suite on the portable build.
CONV_TESTS ?= ^kernel_conv ^layer_ ^grad_ ^oracle ^rule_ ^backend
CONV_OTHERS := $(if $(filter dnnl-winograd,$(CONV)),$(if $(filter command line,$(origin CONV)),,im2col dnnl))
TEST_ENV = ASYM_SRCDIR=$(CURDIR) ASYMBP_PYTHON=$(PYTHON) ASYM_REQUIRE_ORACLES=1 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive
# The other paths' subsets run first, so that the last line is the whole
# suite's. Then the fuzzers and the golden outputs (scripts/golden.sh
# --check: the bits of a fixed set of short runs, on every build made here).
# OpenMP threads sleep when idle (OMP_WAIT_POLICY=passive): on a machine busy
# with other work, spinning threads of two-thread runs slow each other down
# many times over (a LeNet test took 642 s beside two training runs).
check: deps
	@$(MAKE) --no-print-directory check-all

check-all:
	@$(MAKE) --no-print-directory $(BUILD)/asymbp $(BUILD)/test_runner $(BUILD)/examples/own_loop $(BUILD)/libasymbp.so.$(VERSION)
	$(if $(HAVE_MPI),$(if $(filter 1,$(MPI)),,@$(MAKE) --no-print-directory MPI=1 BUILD=$(MPI_BUILD) $(MPI_BUILD)/asymbp))
ifeq ($(filter 1,$(MPI))$(TESTS),)
	@set -e; for c in $(CONV_OTHERS); do \
	  $(MAKE) --no-print-directory CONV=$$c BUILD=build-$$c build-$$c/asymbp build-$$c/test_runner; \
	  echo "convolution path $$c: build-$$c/test_runner $(CONV_TESTS)"; \
	  $(TEST_ENV) ASYM_BIN=$(CURDIR)/build-$$c/asymbp build-$$c/test_runner $(CONV_TESTS); \
	done
endif
	$(if $(TESTS),,@FUZZ_RUNS=$(or $(FUZZ_RUNS),4000) FUZZ_SECONDS=4 FB=$(BUILD)/fuzz sh fuzz/run.sh)
ifeq ($(filter 1,$(MPI))$(TESTS),)
	ASYMBP=$(BUILD)/asymbp MPI_BIN=$(MPI_BIN) $(foreach c,$(CONV_OTHERS),$(if $(filter im2col,$(c)),IM2COL_BIN,DNNL_BIN)=build-$(c)/asymbp) \
		ASYMBP_PYTHON=$(PYTHON) sh scripts/golden.sh --check
endif
	$(TEST_ENV) ASYM_BIN=$(CURDIR)/$(BUILD)/asymbp ASYM_MPI_BIN=$(MPI_BIN) $(BUILD)/test_runner $(TESTS)

test: check

# libFuzzer targets, one per data reader (fuzz/fuzz_*.c), each run for
# FUZZ_SECONDS (default 60); a crash is saved in fuzz/crashes/. `make check`
# runs them briefly with a fixed seed (skipped with a note, not failed,
# where clang's libFuzzer is missing, and when TESTS picks tests).
fuzz: deps
	@FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) FB=$(BUILD)/fuzz sh fuzz/run.sh

# Same suite under AddressSanitizer and UndefinedBehaviorSanitizer (the CLI
# the end-to-end and oracle tests run is the instrumented one). ASYM_QUICK
# skips the full-epoch training run, which is too slow when instrumented.
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		EXTRA_LDFLAGS="-fsanitize=address,undefined" build-asan/asymbp build-asan/test_runner build-asan/examples/own_loop
	ASYM_SRCDIR=$(CURDIR) ASYM_BIN=$(CURDIR)/build-asan/asymbp ASYM_QUICK=1 ASAN_OPTIONS=detect_leaks=1 ASYMBP_PYTHON=$(PYTHON) \
		OMP_NUM_THREADS=2 build-asan/test_runner $(TESTS)

# The library under valgrind's memcheck, leaks included (scripts/valgrind.sh):
# a representative part of the suite (VG_TESTS picks others; empty: all of
# it, hours), then the command on a small run. Unoptimized enough for exact
# reports (-O1), in its own folder.
valgrind: deps
	@$(MAKE) --no-print-directory BUILD=build-vg OPT=-O1 build-vg/asymbp build-vg/test_runner
	ASYMBP_PYTHON=$(PYTHON) scripts/valgrind.sh build-vg

# Trains BioTorch's LeNet on Fashion-MNIST for a few epochs and prints the result.
demo: deps
	@$(MAKE) --no-print-directory $(BUILD)/asymbp
	$(BUILD)/asymbp train configs/fmnist/lenet.yaml --set epochs=$(or $(EPOCHS),3) --out runs/demo
	$(BUILD)/asymbp report runs/demo --out runs/demo/report.html
	@echo "curves and per-layer angles: open runs/demo/report.html in a browser"

# The reproductions measured in docs/RESULTS.md: BioTorch's Fashion-MNIST
# LeNet column (8 rules x 100 epochs) and Liao et al.'s sweeps. Hours on a
# 2-core machine; interrupted calls resume (finished runs are kept).
repro: repro-biotorch repro-liao

repro-biotorch: deps
	@$(MAKE) --no-print-directory $(BUILD)/asymbp
	ASYMBP=$(BUILD)/asymbp scripts/repro_biotorch.sh runs/biotorch

repro-liao: deps
	@$(MAKE) --no-print-directory $(BUILD)/asymbp
	ASYMBP=$(BUILD)/asymbp scripts/liao_fmnist.sh runs/liao-fmnist

# The reduced Liao experiment measured in docs/RESULTS.md (about 90 minutes on
# two cores): 500 training and 500 test images per class, 30 epochs with the
# learning-rate drops at the same fractions of training (after 23 and 28),
# learning-rate multipliers 100, 10, 1 with SGD and 10 to 0.01 with Batch
# Manhattan (whose best runs are at the small ones).
LIAO_SMALL = --set data.train_per_class=500 --set data.test_per_class=500 --set data.val_size=0 \
	--set epochs=30 --set schedule.name=multistep --set schedule.milestones=[23,28] --set schedule.gamma=0.1
repro-liao-small: deps
	@$(MAKE) --no-print-directory $(BUILD)/asymbp
	ASYMBP=$(BUILD)/asymbp SETS="$(LIAO_SMALL)" MULTS_SGD=100,10,1 MULTS_BM=10,1,0.1,0.01 \
		scripts/liao_fmnist.sh runs/liao-fmnist-small

# Training throughput of every network and rule against the PyTorch peer
# (when python3-torch is installed) and OpenBLAS's sgemm; see
# docs/PERFORMANCE.md. BENCH_ARGS passes options (--nets mlp,cnn --rules bp,fa
# --threads 1 --no-peer ...). Not a test: nothing here depends on timing.
# Then ResNet-18 at 224x224 against torchvision's (bench/peer_imagenet.py):
# the ImageNet recipes' rules at batch 32, bp at 64 and 256 (fewer, longer
# rounds); BENCH_IMAGENET=0 leaves it out (about 20 minutes on 2 cores).
# Between the two: LeNet-5 and the MLP, bp, asymbp and the peer, beside
# BENCH_LOAD busy processes (default: one per core), a shared machine.
PEER ?= ../shared/peer/peer_torch.py
BENCH_IMAGENET ?= 1
BENCH_LOAD ?= $(shell nproc)
$(BUILD)/asymbp-bench: $(BUILD)/bench/bench.o $(BUILD)/bench/machine.o $(BUILD)/libasymbp.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Then the streamed JPEG loader against torchvision's ImageFolder DataLoader
# (bench/loader.c, bench/loader_torch.py; python3-torchvision and
# python3-pil) on a synthetic set made once under $(BUILD)/bench-imagenet.
# LOADER_ARGS passes options (--workers 1,2,4 --per-class 128 --repeat 5 ...).
$(BUILD)/asymbp-bench-loader: $(BUILD)/bench/loader.o $(BUILD)/bench/machine.o $(BUILD)/libasymbp.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bench: deps
	@$(MAKE) --no-print-directory $(BUILD)/asymbp-bench $(BUILD)/asymbp-bench-loader
	$(BUILD)/asymbp-bench --peer $(PEER) --python $(PYTHON) $(BENCH_ARGS)
	$(BUILD)/asymbp-bench --peer $(PEER) --python $(PYTHON) --nets lenet,mlp --rules bp --load $(BENCH_LOAD)
	$(BUILD)/asymbp-bench-loader --data $(BUILD)/bench-imagenet --python $(PYTHON) $(LOADER_ARGS)
	@if [ "$(BENCH_IMAGENET)" = 1 ]; then set -e; \
	  $(BUILD)/asymbp-bench --python $(PYTHON) --nets resnet18 --rules bp,fa,usf,kp,wm --batch 32; \
	  $(BUILD)/asymbp-bench --python $(PYTHON) --nets resnet18 --rules bp --batch 64; \
	  $(BUILD)/asymbp-bench --python $(PYTHON) --nets resnet18 --rules bp --batch 256 --steps 1 --rounds 2 --repeat 2; \
	fi

# The gradient allreduce with and without overlap, 1 and 2 ranks
# (bench/mpi_overlap.sh; docs/PERFORMANCE.md, "Overlap with the backward
# pass"): needs mpicc and mpirun (make deps installs them).
bench-mpi: deps
	@$(MAKE) --no-print-directory MPI=1 BUILD=$(MPI_BUILD) $(MPI_BUILD)/asymbp
	sh bench/mpi_overlap.sh $(MPI_BUILD)/asymbp

# make install [PREFIX=/usr/local] [DESTDIR=...]: the command; libasymbp.so.VERSION
# (soname libasymbp.so.MAJOR, exporting the public header's calls alone) and libasymbp.a;
# include/asymbp.h; asymbp.pc for pkg-config; the man page asymbp(1); the
# configs and examples under share/asymbp; the Python package under PYTHONDIR
# (where Debian's python3 looks: /usr/lib/python3/dist-packages for /usr,
# PREFIX/lib/python3.X/dist-packages otherwise), told where the library was
# installed. make uninstall removes them.
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
PYVER   := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTHONDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/python3/dist-packages,$(PREFIX)/lib/python$(PYVER)/dist-packages)
VERSION := $(shell sed -n 's/^\#define ASYM_VERSION "\(.*\)"/\1/p' include/asymbp.h)
SONAME  := libasymbp.so.$(firstword $(subst ., ,$(VERSION)))
PIC_OBJ := $(LIB_SRC:%.c=$(BUILD)/pic/%.o) $(BUILD)/pic/gen/tensorboard.pb-c.o
$(BUILD)/pic/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@
$(BUILD)/pic/src/train/tboard.o: $(BUILD)/gen/tensorboard.pb-c.h
$(BUILD)/pic/%.o: %.c $(wildcard include/*.h src/*/*.h) $(BUILD)/cflags.id
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@
$(BUILD)/pic/src/train/version.o: CFLAGS += -DASYM_COMMIT='"$(ASYM_COMMIT)"' -DASYM_FLAGS='"$(ASYM_FLAGS)"'
$(BUILD)/pic/src/train/version.o: $(BUILD)/version.id
$(BUILD)/asymbp.map: include/asymbp.h
	@mkdir -p $(BUILD)
	{ echo '{ global:'; grep -oE '\basym_[a-z0-9_]+\(' $< | tr -d '(' | sort -u | sed 's/$$/;/'; echo 'local: *; };'; } >$@
$(BUILD)/libasymbp.so.$(VERSION): $(PIC_OBJ) $(BUILD)/asymbp.map
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--version-script,$(BUILD)/asymbp.map -o $@ $(PIC_OBJ) $(LDLIBS)
# rewritten whenever PREFIX or LIBDIR differ from the last install's (FORCE;
# the file is replaced only when its text changes)
$(BUILD)/asymbp.pc: FORCE
	@mkdir -p $(BUILD)
	@printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$${prefix}/include' '' 'Name: asymbp' \
		'Description: training deep networks without weight transport' 'Version: $(VERSION)' \
		'Libs: -L$${libdir} -lasymbp' 'Libs.private: $(LDLIBS)' 'Cflags: -I$${includedir}' >$@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@

INSTALLED = bin/asymbp lib/libasymbp.so.$(VERSION) lib/$(SONAME) lib/libasymbp.so lib/libasymbp.a include/asymbp.h lib/pkgconfig/asymbp.pc \
	share/man/man1/asymbp.1
install: $(BUILD)/asymbp $(BUILD)/libasymbp.a $(BUILD)/libasymbp.so.$(VERSION) $(BUILD)/asymbp.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/asymbp
	install -m 755 $(BUILD)/asymbp $(DESTDIR)$(PREFIX)/bin/asymbp
	install -m 755 $(BUILD)/libasymbp.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libasymbp.so.$(VERSION)
	ln -sf libasymbp.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libasymbp.so
	install -m 644 $(BUILD)/libasymbp.a $(DESTDIR)$(LIBDIR)/libasymbp.a
	install -m 644 include/asymbp.h $(DESTDIR)$(PREFIX)/include/asymbp.h
	install -m 644 $(BUILD)/asymbp.pc $(DESTDIR)$(LIBDIR)/pkgconfig/asymbp.pc
	install -m 644 docs/asymbp.1 $(DESTDIR)$(PREFIX)/share/man/man1/asymbp.1
	cp -R configs examples $(DESTDIR)$(PREFIX)/share/asymbp/
	install -d $(DESTDIR)$(PYTHONDIR)/asymbp
	install -m 644 python/asymbp/*.py $(DESTDIR)$(PYTHONDIR)/asymbp/
	printf '%s\n' '"""Where make install put the library the package loads."""' \
		'PATHS = {"libdir": "$(LIBDIR)", "includedir": "$(PREFIX)/include"}' >$(DESTDIR)$(PYTHONDIR)/asymbp/_installed.py

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(filter-out lib/%,$(INSTALLED))) $(addprefix $(DESTDIR)$(LIBDIR)/,$(patsubst lib/%,%,$(filter lib/%,$(INSTALLED))))
	rm -rf $(DESTDIR)$(PREFIX)/share/asymbp $(DESTDIR)$(PYTHONDIR)/asymbp

clean:
	rm -rf build build-asan build-mpi build-vg build-im2col build-dnnl build-dnnl-winograd build-dnnl-plain
