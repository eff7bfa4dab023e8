#!/usr/bin/env python3
"""SWIM measures for the gossip protocol, from `simkv run --trace` (no engine hook needed).

Usage: python3 examples/gossip_measures.py [SEEDS] [SIMKV]   (default 20 seeds, ./target/release/simkv)

Detection: an N-node cluster, a client idle but for one get a second; n3 crashes at 5s for
good. Per seed: first suspicion of n3, first death (confirm), and the time every live member
holds n3 dead; median and p99 (nearest rank) over seeds, in ms and protocol periods (100ms).
False positives: 5 nodes, no crash, 20s, network loss L; a false death is a live member
declared dead (a distinct "nX Dead at incarnation i" episode while nX runs), a false
suspicion likewise; per member per 1000 protocol periods, with k = 3 (indirect probes) and k = 0 (none).
Load: membership messages (ping, ack, ping-req, indirect, gossip, push-pull) delivered or
dropped, per member per protocol period, in the loss-free detection runs before the crash.
"""
import json, os, subprocess, sys, tempfile, statistics

SEEDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SIMKV = sys.argv[2] if len(sys.argv) > 2 else "./target/release/simkv"
PERIOD_MS = 100.0
MEMBERSHIP = ("Ping", "Ack", "PingReq", "IndirectPing", "IndirectAck", "Gossip", "PushPull")

SCENARIO = """name = "measure"
description = "gossip measures"
duration = "{duration}"
[cluster]
protocol = "gossip"
nodes = {nodes}
[network]
latency = {{ uniform = ["1ms", "10ms"] }}
drop = "{drop}"
[workload]
clients = 1
keys = 1
mix = {{ get = 100 }}
think = "1s"
timeout = "2s"
{faults}
[checks]
liveness = "5s"
settle = "1s"
"""


def run(nodes, drop, seed, crash, extra=()):
    faults = '[[fault]]\nat = "5s"\ncrash = "n3"\n' if crash else ""
    text = SCENARIO.format(duration="15s" if crash else "20s", nodes=nodes, drop=drop, faults=faults)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.toml")
        trace = os.path.join(d, "t.jsonl")
        open(path, "w").write(text)
        cmd = [SIMKV, "run", path, "--seed", str(seed), "--trace", trace, "--force", *extra]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return [json.loads(l) for l in open(trace)]


def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def detection(nodes):
    first_s, first_d, all_d, load = [], [], [], []
    for seed in range(1, SEEDS + 1):
        ev = run(nodes, "0%", seed, True)
        crash = 5_000_000
        s = [e["t"] for e in ev if e["ev"] == "note" and e["note"].startswith("n3 Suspect")]
        d = {}
        for e in ev:
            if e["ev"] == "note" and e["note"].startswith("n3 Dead") and e["node"] not in d:
                d[e["node"]] = e["t"]
        msgs = sum(1 for e in ev if e["ev"] in ("deliver", "drop") and e["t"] < crash
                   and isinstance(e.get("msg"), dict) and next(iter(e["msg"])) in MEMBERSHIP)
        load.append(msgs / nodes / (crash / 1000 / PERIOD_MS))
        if s:
            first_s.append((min(s) - crash) / 1000)
        if d:
            first_d.append((min(d.values()) - crash) / 1000)
        if len(d) == nodes - 1:
            all_d.append((max(d.values()) - crash) / 1000)
    return first_s, first_d, all_d, load


def false_positives(drop, k):
    deaths = suspicions = 0
    periods = 0.0
    for seed in range(1, SEEDS + 1):
        ev = run(5, drop, seed, False, ["--set", f"cluster.params.gossip.indirect_checks={k}"])
        end = max(e["t"] for e in ev)
        periods += 5 * end / 1000 / PERIOD_MS
        # Each distinct "nX Suspect/Dead at incarnation i" is one episode, however many
        # members note it.
        notes = {e["note"] for e in ev if e["ev"] == "note"}
        deaths += sum(1 for t in notes if " Dead at" in t)
        suspicions += sum(1 for t in notes if " Suspect at" in t)
    return deaths / periods * 1000, suspicions / periods * 1000


def show(xs):
    if not xs:
        return "none"
    med, p99 = statistics.median(xs), pct(xs, 99)
    return f"median {med:7.1f}ms ({med / PERIOD_MS:4.1f} periods)  p99 {p99:7.1f}ms ({p99 / PERIOD_MS:4.1f} periods)"


print(f"gossip SWIM measures, seeds 1..={SEEDS}, protocol period {PERIOD_MS:.0f}ms")
for n in (5, 20, 50):
    s, d, a, load = detection(n)
    print(f"n={n:2}: first suspicion {show(s)}")
    print(f"      first death     {show(d)}")
    print(f"      all know dead   {show(a)}  ({len(a)}/{SEEDS} seeds complete)")
    print(f"      membership messages per member per period: {statistics.mean(load):.2f}")
for drop in ("1%", "5%", "10%"):
    for k in (3, 0):
        fd, fs = false_positives(drop, k)
        print(f"loss {drop:>3} k={k}: false deaths {fd:6.2f}, false suspicions {fs:6.2f} per member per 1000 periods")
