# cohort: plain GNU Makefile.
#
#   make                 library (static and shared) and the cohort binary
#   make check           build and run every test (unit, fixture, CLI, SLURM)
#   make demo            build and run the demonstration job on this machine
#   make bench           build and run the benchmarks in bench/
#   make fuzz            run each fuzz target under libFuzzer (clang)
#   make valgrind        every cohort command under valgrind memcheck
#   make static          one statically linked cohort binary
#   make install PREFIX=/usr/local [DESTDIR=...]
#
#   SANITIZER=address|undefined|thread   build everything with a sanitizer,
#                                        into build-$(SANITIZER)/ (address
#                                        is ASan and UBSan together)
#   CI=true                              warnings are errors

# The version is include/cohort/base.h's COHORT_VERSION_MAJOR/MINOR/PATCH,
# the one place it is written; cohort_version() returns the same string.
version_part = $(shell sed -n 's/^[#]define COHORT_VERSION_$(1)  *\([0-9][0-9]*\)$$/\1/p' include/cohort/base.h)
VERSION   := $(call version_part,MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
ifeq ($(filter-out .,$(subst ., . ,$(VERSION))),)
$(error cannot read the version from include/cohort/base.h)
endif
SOVERSION := 0

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=

ifeq ($(SANITIZER),)
O := build
else
O := build-$(SANITIZER)
endif

WARN := -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-qual -Wwrite-strings \
        -Wstrict-prototypes -Wmissing-prototypes -Wmissing-declarations \
        -Wold-style-definition -Wformat=2 -Wformat-security -Wundef -Wvla \
        -Wimplicit-fallthrough -Wredundant-decls -Wnested-externs \
        -Wno-unused-parameter
# gcc warns of snprintf truncation that the code checks for itself.
ifeq ($(findstring clang,$(shell $(CC) --version 2>/dev/null)),)
WARN += -Wno-format-truncation
endif
ifeq ($(CI),true)
WARN += -Werror
endif

OPT      ?= -O2 -g
CPPFLAGS += -Iinclude -Isrc -D_GNU_SOURCE
CFLAGS   += -std=c11 $(OPT) $(WARN) -fvisibility=hidden -fPIC -pthread -MMD -MP
LDFLAGS  += -pthread
CLI_LIBS := -ljansson -lm
LIB_LIBS := -ljansson -lm

# address is AddressSanitizer and UndefinedBehaviorSanitizer together: the
# build CI runs the whole suite with. undefined alone is for a quick look.
ifeq ($(SANITIZER),address)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(SANITIZER),undefined)
SANFLAGS := -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(SANITIZER),thread)
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else ifneq ($(SANITIZER),)
$(error SANITIZER must be address, undefined or thread, not '$(SANITIZER)')
endif
# The programs of examples/faults are the observed workload of the report
# tests, faulty on purpose: a sanitizer in them would change what is
# observed (its own SIGSEGV and SIGBUS handlers, LeakSanitizer's exit code
# at a leak that is the point, its shadow memory in the figures). They are
# built without one; cohort, which watches them, is built with it. Their
# symbols stay local, so crash frames are named by addr2line with the line.
FAULT_CFLAGS := $(CFLAGS)
CFLAGS  += $(SANFLAGS)
LDFLAGS += $(SANFLAGS)

# Quiet build lines; V=1 shows the commands.
ifeq ($(V),1)
Q :=
say = @:
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2)
endif

LIB_SRC   := $(sort $(wildcard src/*.c))
CLI_SRC   := $(sort $(wildcard cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/*.c))
FUZZ_SRC  := $(filter-out fuzz/fuzz-main.c,$(sort $(wildcard fuzz/fuzz-*.c)))
BENCH_SRC := $(sort $(wildcard bench/bench-*.c))
EX_SRC    := $(sort $(wildcard examples/*/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(O)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(O)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(O)/%.o)

LIBA    := $(O)/libcohort.a
LIBSO   := $(O)/libcohort.so.$(VERSION)
COHORT  := $(O)/cohort
RUNNER  := $(O)/tests/runner
FUZZ_REPLAY := $(FUZZ_SRC:fuzz/%.c=$(O)/fuzz/%)
BENCHES := $(BENCH_SRC:bench/%.c=$(O)/bench/%)
# The Boost.Interprocess baseline of bench-queue, built where Debian's
# libboost-dev (header-only) and a C++ compiler are installed.
CXX ?= g++
HAVE_BOOST_MQ := $(shell test -r /usr/include/boost/interprocess/ipc/message_queue.hpp && command -v $(CXX) >/dev/null && echo yes)
ifeq ($(HAVE_BOOST_MQ),yes)
BENCHES += $(O)/bench/bench-boost-mq
endif
EXAMPLES := $(EX_SRC:examples/%.c=$(O)/examples/%)

.PHONY: all check demo bench fuzz static install uninstall clean stress valgrind python
CATCH   := $(O)/libcohort-catch.so

# The SLURM plugin, built when Debian's libslurm-dev (or SLURM's own
# headers) is there: `make spank` builds it in any case and says why not.
SPANK_SO := $(O)/spank_cohort.so
SPANK_H  := $(wildcard /usr/include/slurm/spank.h)

all: $(LIBA) $(LIBSO) $(COHORT) $(CATCH) $(O)/cohort.pc $(EXAMPLES) $(if $(SPANK_H),$(SPANK_SO))

.PHONY: spank
spank: $(SPANK_SO) $(COHORT)

# Never built with a sanitizer: it is loaded into slurmstepd. It links
# nothing of cohort's; it runs $(PREFIX)/bin/cohort spank-watch.
$(SPANK_SO): spank/spank_cohort.c
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fPIC -shared -fvisibility=default \
	    -DCOHORT_BINDIR='"$(PREFIX)/bin"' -o $@ $<

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(LIBSO): $(LIB_OBJ)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,libcohort.so.$(SOVERSION) -o $@ $^ $(LIB_LIBS)
	$(Q)ln -sf libcohort.so.$(VERSION) $(O)/libcohort.so.$(SOVERSION)
	$(Q)ln -sf libcohort.so.$(SOVERSION) $(O)/libcohort.so

# The preload shim is never built with a sanitizer: it goes into other people's programs.
$(CATCH): shim/catch.c shim/crashfile.h
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) -std=c11 $(OPT) $(WARN) -fPIC -shared -fvisibility=hidden -o $@ $<

$(COHORT): $(CLI_OBJ) $(LIBA)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIBA) $(CLI_LIBS)

$(RUNNER): $(TEST_OBJ) $(LIBA)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(LIBA) $(CLI_LIBS)

# Each fuzz target is also built with fuzz/fuzz-main.c, which replays its
# corpus: that is how the corpora run in `make check`.
$(O)/fuzz/%: fuzz/%.c fuzz/fuzz-main.c $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,CCLD,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< fuzz/fuzz-main.c $(LIBA) $(LIB_LIBS)

$(O)/bench/%: bench/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,CCLD,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBA) -lrt

$(O)/bench/bench-boost-mq: bench/bench-boost-mq.cpp
	@mkdir -p $(dir $@)
	$(call say,CXXLD,$@)
	$(Q)$(CXX) -std=c++17 -O2 -Wall -Wextra -pthread -o $@ $< -lrt

$(O)/examples/%: examples/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,CCLD,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -fvisibility=default $(LDFLAGS) -rdynamic -o $@ $< $(LIBA) $(LIB_LIBS) -lrt

# They link a libcohort without a sanitizer too: the plain one, or in a
# sanitizer build a second archive of the same sources compiled plainly.
ifeq ($(SANITIZER),)
PLAIN_LIBA := $(LIBA)
else
PLAIN_LIBA := $(O)/plain/libcohort.a
$(O)/plain/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(FAULT_CFLAGS) -c -o $@ $<
$(PLAIN_LIBA): $(LIB_SRC:%.c=$(O)/plain/%.o)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)$(AR) rcs $@ $^
endif

$(O)/examples/faults/%: examples/faults/%.c $(PLAIN_LIBA)
	@mkdir -p $(dir $@)
	$(call say,CCLD,$@)
	$(Q)$(CC) $(CPPFLAGS) $(FAULT_CFLAGS) -pthread -o $@ $< $(PLAIN_LIBA) $(LIB_LIBS) -lrt

$(O)/cohort.pc: cohort.pc.in Makefile
	@mkdir -p $(O)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# The Python package (python/), built in-tree into $(O)/python with Debian's
# interpreter (a python3 earlier on PATH may be another one):
#   PYTHONPATH=$(O)/python /usr/bin/python3 -c 'import cohort'
PYTHON ?= /usr/bin/python3
PY_SRC := python/setup.py python/src/_cohort.c $(wildcard python/cohort/*.py python/cohort/*.pyi)

python: $(O)/python/.built

$(O)/python/.built: $(PY_SRC) $(LIBA)
	$(call say,PY,$(O)/python)
	$(Q)cd python && COHORT_LIBA=$(abspath $(LIBA)) $(PYTHON) setup.py -q build \
	    --build-base $(abspath $(O))/python-build --build-lib $(abspath $(O))/python >/dev/null
	$(Q)touch $@

# make check builds it when the interpreter's headers are there (python3-dev);
# without them, and in sanitizer builds, the Python tests skip and say so.
PY_HAVE_DEV := $(shell $(PYTHON) -c "import os, sysconfig; print(int(os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))))" 2>/dev/null)
# Not in a sanitizer build: its libcohort.a cannot be loaded into an
# interpreter that was not started with the sanitizer's runtime.
ifeq ($(PY_HAVE_DEV)$(SANITIZER),1)
PY_CHECK := $(O)/python/.built
endif

# Where make install puts the package: a directory on Debian's python3 path
# (/usr/local/lib/python3.11/dist-packages, /usr/lib/python3/dist-packages).
PYTHON_SITE ?= $(shell $(PYTHON) -c "import sys; p = '$(PREFIX)'; print(p + ('/lib/python3/dist-packages' if p == '/usr' else '/lib/python%d.%d/dist-packages' % sys.version_info[:2]))" 2>/dev/null)

check: all $(RUNNER) $(FUZZ_REPLAY) $(EXAMPLES) $(PY_CHECK)
	@COHORT_BUILD=$(O) tests/run-all.sh

demo: all $(EXAMPLES)
	@COHORT_BUILD=$(O) examples/demo.sh

bench: all $(BENCHES) $(PY_CHECK)
	@COHORT_BUILD=$(O) bench/run.sh

stress: all $(RUNNER) $(FUZZ_REPLAY) $(EXAMPLES)
	@COHORT_BUILD=$(O) COHORT_STRESS=1 $(RUNNER) --stress

# Every cohort command under valgrind memcheck (errors and definite leaks fail).
valgrind: all
	@COHORT_BUILD=$(O) tests/valgrind.sh

# libFuzzer build of every target; FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# A statically linked cohort that runs on any x86-64 Linux with no
# library installed: copy build-static/cohort onto a cluster (and
# libcohort-catch.so beside it, for crash addresses and backtraces).
static:
	$(MAKE) O=build-static LDFLAGS='-static -pthread' build-static/cohort build-static/libcohort-catch.so
	@file build-static/cohort 2>/dev/null || true

install: all $(PY_CHECK)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	        $(DESTDIR)$(PREFIX)/include/cohort $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	        $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(COHORT) $(DESTDIR)$(PREFIX)/bin/cohort
	install -m 0644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/libcohort.a
	install -m 0755 $(LIBSO) $(DESTDIR)$(PREFIX)/lib/libcohort.so.$(VERSION)
	ln -sf libcohort.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libcohort.so.$(SOVERSION)
	ln -sf libcohort.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libcohort.so
	install -d $(DESTDIR)$(PREFIX)/lib/cohort
	install -m 0755 $(CATCH) $(DESTDIR)$(PREFIX)/lib/cohort/libcohort-catch.so
	install -m 0644 include/cohort.h $(DESTDIR)$(PREFIX)/include/cohort.h
	install -m 0644 include/cohort/*.h $(DESTDIR)$(PREFIX)/include/cohort/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' cohort.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/cohort.pc
	install -m 0644 docs/cohort.1 $(DESTDIR)$(PREFIX)/share/man/man1/cohort.1
	if [ -f $(SPANK_SO) ]; then install -d $(DESTDIR)$(PREFIX)/lib/slurm && \
	    install -m 0755 $(SPANK_SO) $(DESTDIR)$(PREFIX)/lib/slurm/spank_cohort.so; fi
ifneq ($(PY_CHECK),)
	install -d $(DESTDIR)$(PYTHON_SITE)/cohort
	install -m 0644 $(O)/python/cohort/*.py $(O)/python/cohort/*.pyi $(O)/python/cohort/py.typed \
	        $(DESTDIR)$(PYTHON_SITE)/cohort/
	install -m 0755 $(O)/python/cohort/_cohort*.so $(DESTDIR)$(PYTHON_SITE)/cohort/
else
	@echo "# the Python package was not installed: it needs python3-dev (then make install again)"
endif

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/cohort
	rm -f $(DESTDIR)$(PREFIX)/bin/cohort $(DESTDIR)$(PREFIX)/include/cohort.h \
	      $(DESTDIR)$(PREFIX)/lib/libcohort.a $(DESTDIR)$(PREFIX)/lib/libcohort.so* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/cohort.pc $(DESTDIR)$(PREFIX)/lib/cohort/libcohort-catch.so \
	      $(DESTDIR)$(PREFIX)/share/man/man1/cohort.1 $(DESTDIR)$(PREFIX)/lib/slurm/spank_cohort.so
	rm -rf $(DESTDIR)$(PYTHON_SITE)/cohort

clean:
	rm -rf build build-*

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
