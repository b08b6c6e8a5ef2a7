#!/usr/bin/env python3
"""Helpers for scripts/demo.sh.

helper.py show                  outcome JSON lines (sbomd tail) on stdin ->
                                one readable line each
helper.py count FILE [--id ID] [--status S] [--attempt N]
                                how many outcomes in FILE match
helper.py delays FILE --id ID   the RETRY_SCHEDULED delays of ID (s), in order
helper.py components FILE --id ID
                                component_count of ID's last SUCCEEDED outcome
helper.py summary FILE          outcomes per status, and per entity
helper.py pull STAGING STORE    "pulls" an image: copies the OCI layout
                                STAGING's blobs into the OCI layout STORE
                                (each under a temporary name, then renamed),
                                then adds STAGING's manifests to STORE's
                                index.json (rewritten atomically)

Entity labels come from $DEMO_LABELS ("A=sha256:...,B=sha256:...");
$DEMO_TMP is printed as "$TMP" in error messages.
"""
import signal
signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: die of it, no traceback
import argparse, collections, datetime, json, os, re, shutil, sys


def labels():
    out = {}
    for item in os.environ.get("DEMO_LABELS", "").split(","):
        if "=" in item:
            name, ident = item.split("=", 1)
            out[ident] = name
    return out


def short(ident):
    m = re.fullmatch(r"sha256:([0-9a-f]{12})[0-9a-f]{52}", ident or "")
    return f"sha256:{m.group(1)}" if m else (ident or "?")


def tidy(text):
    text = re.sub(r"sha256:([0-9a-f]{12})[0-9a-f]{52}", r"sha256:\1…", text)
    tmp = os.environ.get("DEMO_TMP")
    return text.replace(tmp, "$TMP") if tmp else text


def read(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n") and line.strip():
                yield json.loads(line)


def show(_):
    names = labels()
    for line in sys.stdin:
        if not line.strip():
            continue
        o = json.loads(line)
        t = datetime.datetime.fromtimestamp(o["emitted_at"] / 1000)
        w = who(o, names)
        status = o["status"]
        detail = ""
        if status == "RETRY_SCHEDULED" and o.get("next_attempt_at"):
            delay = (o["next_attempt_at"] - o["emitted_at"]) / 1000
            detail = f"next attempt in {delay:.1f} s"
        elif status == "SUCCEEDED" and o.get("sbom"):
            detail = f"SBOM: {o['sbom']['component_count']} components"
        elif status == "FAILED":
            detail = "not retried"
        err = o.get("error")
        if err:
            detail = f"{detail:<23} {o.get('error_class') or ''}: {tidy(err)}"
        print(f"  {t:%H:%M:%S}.{t.microsecond // 1000:03d}  {w:<29} "
              f"{status:<16} attempt {o['attempt']:<2} {detail}".rstrip(),
              flush=True)


def matching(a):
    for o in read(a.file):
        if a.id is not None and o["id"] != a.id:
            continue
        if a.status is not None and o["status"] != a.status:
            continue
        if a.attempt is not None and o["attempt"] != a.attempt:
            continue
        yield o


def count(a):
    print(sum(1 for _ in matching(a)))


def delays(a):
    a.status = "RETRY_SCHEDULED"
    print(" ".join(f"{(o['next_attempt_at'] - o['emitted_at']) / 1000:.1f}"
                   for o in matching(a)))


def components(a):
    a.status = "SUCCEEDED"
    last = None
    for o in matching(a):
        last = o
    print(last["sbom"]["component_count"] if last and last.get("sbom") else -1)


def who(o, names):
    if o.get("kind") == "HOST":
        return f"host {o['id']}"
    name = names.get(o["id"])
    return f"image {name} {short(o['id'])}" if name else short(o["id"])


def summary(a):
    names = labels()
    per_status = collections.Counter()
    per_entity = {}
    for o in read(a.file):
        per_status[o["status"]] += 1
        per_entity.setdefault(who(o, names), collections.Counter())[o["status"]] += 1
    total = sum(per_status.values())
    print(f"  {total} outcomes: " +
          ", ".join(f"{n} {s}" for s, n in sorted(per_status.items())))
    for w, c in per_entity.items():
        print(f"    {w:<29} " + ", ".join(f"{n} {s}" for s, n in c.items()))


def pull(a):
    src = os.path.join(a.staging, "blobs", "sha256")
    dst = os.path.join(a.store, "blobs", "sha256")
    for blob in sorted(os.listdir(src)):
        if blob.startswith(".") or os.path.exists(os.path.join(dst, blob)):
            continue
        tmp = os.path.join(dst, f".pull-{blob}")
        shutil.copyfile(os.path.join(src, blob), tmp)
        os.replace(tmp, os.path.join(dst, blob))
    with open(os.path.join(a.store, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    with open(os.path.join(a.staging, "index.json"), encoding="utf-8") as f:
        index["manifests"] += json.load(f)["manifests"]
    tmp = os.path.join(a.store, ".index.json.pull")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(index, f)
    os.replace(tmp, os.path.join(a.store, "index.json"))


p = argparse.ArgumentParser()
sub = p.add_subparsers(dest="cmd", required=True)
sub.add_parser("show").set_defaults(fn=show)
for name, fn in (("count", count), ("delays", delays),
                 ("components", components)):
    s = sub.add_parser(name)
    s.add_argument("file")
    s.add_argument("--id")
    s.add_argument("--status")
    s.add_argument("--attempt", type=int)
    s.set_defaults(fn=fn)
s = sub.add_parser("summary")
s.add_argument("file")
s.set_defaults(fn=summary)
s = sub.add_parser("pull")
s.add_argument("staging")
s.add_argument("store")
s.set_defaults(fn=pull)
a = p.parse_args()
a.fn(a)
