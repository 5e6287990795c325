#!/usr/bin/python3
"""Write the recordings of one job across nodes, for timing `cohort report --job`.

    bench/job-recordings.py SEED OUT [NODES [TASKS_PER_NODE [SECONDS]]]

SEED is a task's recording (tests/fixtures/recordings/multinode/cohort-5.0.0.ndjson);
OUT gets NODES x TASKS_PER_NODE recordings cohort-<job>.0.<task>.ndjson of the
same job, each with one sample a second for SECONDS (its last sample repeated),
each task on its node by block distribution.
"""
import json
import os
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    seed, out = sys.argv[1], sys.argv[2]
    nodes = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    tpn = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    secs = int(sys.argv[5]) if len(sys.argv) > 5 else 600
    lines = [json.loads(l) for l in open(seed)]
    hdr = lines[0]
    sample = [l for l in lines if l["type"] == "sample"][-1]
    events = [l for l in lines if l["type"] == "event"]
    end = [l for l in lines if l["type"] == "end"][0]
    job = hdr["task"]["job"]
    ntasks = nodes * tpn
    os.makedirs(out, exist_ok=True)
    dump = lambda o: json.dumps(o, separators=(",", ":")) + "\n"
    for t in range(ntasks):
        node = "node%d" % (t // tpn + 1)
        hdr["task"].update({"id": t, "ntasks": ntasks, "node": node, "node_id": t // tpn,
                            "tasks_on_node": tpn, "local_id": t % tpn, "rank_offset": t})
        hdr["allocation"]["slurm"].update({"proc_id": t, "ntasks": ntasks, "node": node,
                                           "tasks_on_node": tpn, "local_id": t % tpn})
        with open(os.path.join(out, "cohort-%s.0.%d.ndjson" % (job, t)), "w") as f:
            f.write(dump(hdr))
            for e in events:
                if e["t"] < 1:
                    f.write(dump(e))
            for i in range(secs):
                sample["t"] = float(i + 1)
                f.write(dump(sample))
            for e in events:
                if e["t"] >= 1:
                    f.write(dump(dict(e, t=secs + 0.5)))
            f.write(dump(dict(end, t=secs + 1.0)))


main()
