#!/usr/bin/python3
"""A shared array too large for /dev/shm: cohort raises at creation, with the
figures; torch's share_memory_() is given the segment and dies of SIGBUS
when it writes into it. Run it where /dev/shm is small, as a job container
gives it (root):

    unshare -m sh -c 'mount -t tmpfs -o size=64M tmpfs /dev/shm &&
        PYTHONPATH=build/python exec /usr/bin/python3 examples/python/shm_full.py'
"""
import sys

import cohort

try:
    a = cohort.shared_array("big", (256 << 20,), "u1")
    print("created 256 MiB in /dev/shm: it fits here")
except cohort.NoSpace as e:
    print("cohort:", e)

if "--torch" in sys.argv:
    import torch
    t = torch.ones(256 << 20, dtype=torch.uint8)
    print("torch: share_memory_() of 256 MiB ...", flush=True)
    t.share_memory_()                   # SIGBUS here when /dev/shm is smaller
    print("torch: survived")
