#!/usr/bin/env python3
"""Generates node/src/commands/docs.json: what Redis's COMMAND DOCS prints
beyond the summary and group (since, complexity, doc_flags,
deprecated_since, replaced_by, history, arguments), for every command and
subcommand of node/tests/data/redis-7.2-commands.json (the ones Damselfly
declares), from Redis's own definitions (src/commands/*.json), as
redis-server 7.2 builds them (utils/generate-command-code.py,
addReplyCommandDocs in src/server.c).

Usage (from the repository root):
    git clone https://github.com/redis/redis /tmp/redis && git -C /tmp/redis checkout 7.2.6
    scripts/gen-command-docs.py /tmp/redis/src/commands > node/src/commands/docs.json
"""

import glob
import json
import os
import sys


def arg(a):
    out = {"name": a["name"], "type": a["type"]}
    if a["type"] not in ("oneof", "block"):
        out["display_text"] = a.get("display", a["name"])
    if "key_spec_index" in a:
        out["key_spec_index"] = a["key_spec_index"]
    for f in ("token", "summary", "since", "deprecated_since"):
        if f in a:
            out[f] = a[f]
    flags = [f for f in ("optional", "multiple", "multiple_token") if a.get(f)]
    if flags:
        out["flags"] = flags
    if a["type"] in ("oneof", "block"):
        out["arguments"] = [arg(s) for s in a.get("arguments", [])]
    return out


def main():
    src = sys.argv[1]
    ours = json.load(open("node/tests/data/redis-7.2-commands.json"))["commands"]
    wanted = set(ours)
    for c in ours.values():
        wanted.update(c.get("subcommands", {}))
    docs = {}
    for path in sorted(glob.glob(os.path.join(src, "*.json"))):
        for name, d in json.load(open(path)).items():
            full = (d["container"] + "|" + name if "container" in d else name).lower()
            if full not in wanted:
                continue
            e = {"since": d.get("since", "")}
            for f in ("complexity", "deprecated_since", "replaced_by"):
                if f in d:
                    e[f] = d[f]
            if d.get("doc_flags"):
                e["doc_flags"] = [f.lower() for f in d["doc_flags"]]
            if d.get("history"):
                e["history"] = d["history"]
            if d.get("arguments"):
                e["arguments"] = [arg(a) for a in d["arguments"]]
            docs[full] = e
    json.dump(dict(sorted(docs.items())), sys.stdout, separators=(",", ":"))
    print()


main()
