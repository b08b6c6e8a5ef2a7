#!/usr/bin/env python3
"""sbom_pkgs.py SBOM.json: prints "type<TAB>name<TAB>version" for every
component (nested ones included) whose purl is pkg:deb/, pkg:apk/ or
pkg:rpm/, sorted and unique: the package set two SBOMs are compared on.

Epochs: both tools put a deb or rpm epoch in the purl ("epoch=N"), but
Trivy leaves it out of the CycloneDX "version" field while sbomd writes
the package manager's full version ("1:2.39.5-0+deb12u3", as dpkg-query
prints it). The full version is compared: the purl's epoch is added
where the version field lacks it.
"""
import json, sys
from urllib.parse import unquote

doc = json.load(open(sys.argv[1]))
out = set()


def qualifiers(purl):
    q = purl.split("#", 1)[0].partition("?")[2]
    return dict((unquote(k), unquote(v)) for k, _, v in
                (kv.partition("=") for kv in q.split("&") if kv))


def walk(comps):
    for c in comps or []:
        purl = c.get("purl") or ""
        for t in ("deb", "apk", "rpm"):
            if purl.startswith(f"pkg:{t}/"):
                v = c.get("version", "")
                e = qualifiers(purl).get("epoch", "")
                if t in ("deb", "rpm") and e not in ("", "0") and ":" not in v:
                    v = f"{e}:{v}"
                out.add((t, c.get("name", ""), v))
        walk(c.get("components"))


walk(doc.get("components"))
for t, n, v in sorted(out):
    print(f"{t}\t{n}\t{v}")
