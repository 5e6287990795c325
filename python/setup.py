"""Build the cohort Python package: a C extension over libcohort.

libcohort.a is linked in statically, so the module needs no installed
libcohort.so. Only setuptools is needed (Debian's python3-setuptools):

    pip install --no-build-isolation ./python     # or: make python

The archive is taken from $COHORT_LIBA, else ../build/libcohort.a, which is
built with make when it is missing.
"""
import glob
import os
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
os.chdir(HERE)
LIBA = os.environ.get("COHORT_LIBA") or os.path.join(TOP, "build", "libcohort.a")

if not os.path.exists(LIBA):
    subprocess.check_call(["make", "-C", TOP, "-j2", os.path.relpath(LIBA, TOP)])

setup(
    name="cohort",
    version="0.1.0",
    description="Fit checks, crash-safe shared arrays, locks and queues for worker processes",
    packages=["cohort"],
    package_data={"cohort": ["*.pyi", "py.typed"]},
    ext_modules=[
        Extension(
            "cohort._cohort",
            sources=["src/_cohort.c"],
            include_dirs=[os.path.join(TOP, "include"), os.path.join(TOP, "src")],
            define_macros=[("_GNU_SOURCE", None)],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers", "-Wno-cast-function-type",
                                "-Wno-format-truncation"],
            extra_objects=[LIBA],
            # Relinked when the archive or a header changes, not only the source.
            depends=[LIBA, "../src/json.h"] + glob.glob("../include/cohort/*.h") + ["../include/cohort.h"],
            libraries=["jansson", "m"],
        )
    ],
    python_requires=">=3.9",
)
