#!/usr/bin/env python3
"""Generates node/tests/data/redis-7.2-commands.json: what Redis's COMMAND
INFO prints (arity, flags, first/last/step key, ACL categories, tips, key
specs) for each top-level command Damselfly declares, and for each of a
container's subcommands (all of Redis's, keyed by their full name,
`client|kill`), computed from Redis's own command
definitions (its src/commands/*.json) the way redis-server computes them at
start-up (populateCommandLegacyRangeSpec, addReplyFlagsForCommand,
addReplyFlagsForKeyArgs in src/server.c). node/tests/command_info.rs
compares our command table with it.

Usage (from the repository root):
    git clone https://github.com/redis/redis /tmp/redis && git -C /tmp/redis checkout 7.2.6
    scripts/gen-redis-commands.py /tmp/redis/src/commands > node/tests/data/redis-7.2-commands.json

The computation was checked against a running redis-server 7.0.15 (its
COMMAND INFO for every command equals what this script computes from the
7.0.15 definitions, with --all).

Damselfly's command names are read from the `cmd("name"` / `cmd_numkeys("name"`
declarations under node/src/commands/ (subcommands, `cmd("client|kill"`, are
not top-level names); names Redis does not have (the JSON.* commands) are
left out of the file.
"""

import argparse
import glob
import json
import os
import re
import sys

# Command flags in the order COMMAND INFO prints them; the flags Redis
# declares but hides (MAY_REPLICATE, SENTINEL, ONLY_SENTINEL, PROTECTED,
# TOUCHES_ARBITRARY_KEYS) are not printed and so not listed.
COMMAND_FLAGS = [
    "WRITE", "READONLY", "DENYOOM", "MODULE", "ADMIN", "PUBSUB", "NOSCRIPT", "BLOCKING",
    "LOADING", "STALE", "SKIP_MONITOR", "SKIP_SLOWLOG", "ASKING", "FAST", "NO_AUTH",
    "NO_MANDATORY_KEYS", "NO_ASYNC_LOADING", "NO_MULTI", "MOVABLE_KEYS", "ALLOW_BUSY",
]
PRINTED_NAME = {"MOVABLE_KEYS": "movablekeys"}
HIDDEN_FLAGS = {"MAY_REPLICATE", "SENTINEL", "ONLY_SENTINEL", "PROTECTED", "TOUCHES_ARBITRARY_KEYS"}

# ACL categories in the order COMMAND INFO prints them (acl.c's
# ACLCommandCategories).
ACL_CATEGORIES = [
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo",
    "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
]

# Key-spec flags in the order COMMAND INFO prints them.
KEY_FLAGS = ["RO", "RW", "OW", "RM", "ACCESS", "UPDATE", "INSERT", "DELETE", "NOT_KEY", "INCOMPLETE", "VARIABLE_FLAGS"]


def key_flag_name(f):
    return f if f in ("RO", "RW", "OW", "RM") else f.lower()


def damselfly_names(repo):
    names = set()
    for path in glob.glob(os.path.join(repo, "node", "src", "commands", "**", "*.rs"), recursive=True):
        with open(path) as f:
            names.update(re.findall(r'\b(?:cmd|cmd_numkeys)\(\s*"([^"|]+)"', f.read()))
    return names


def begin_search(bs):
    if "index" in bs:
        return {"type": "index", "spec": {"index": bs["index"]["pos"]}}
    if "keyword" in bs:
        kw = bs["keyword"]
        return {"type": "keyword", "spec": {"keyword": kw["keyword"], "startfrom": kw["startfrom"]}}
    assert "unknown" in bs, bs
    return {"type": "unknown", "spec": {}}


def find_keys(fk):
    if "range" in fk:
        r = fk["range"]
        return {"type": "range", "spec": {"lastkey": r["lastkey"], "keystep": r["step"], "limit": r["limit"]}}
    if "keynum" in fk:
        k = fk["keynum"]
        return {"type": "keynum", "spec": {"keynumidx": k["keynumidx"], "firstkey": k["firstkey"], "keystep": k["step"]}}
    assert "unknown" in fk, fk
    return {"type": "unknown", "spec": {}}


def legacy_range(specs):
    """(first, last, step) and whether the command is movablekeys, as
    populateCommandLegacyRangeSpec computes them."""
    if not specs:
        return (0, 0, 0), False
    is_range = [s["begin_search"]["type"] == "index" and s["find_keys"]["type"] == "range" for s in specs]
    if len(specs) == 1 and is_range[0]:
        s = specs[0]
        first = s["begin_search"]["spec"]["index"]
        last = s["find_keys"]["spec"]["lastkey"]
        return (first, last + first if last >= 0 else last, s["find_keys"]["spec"]["keystep"]), "incomplete" in s["flags"]
    movable = False
    first, last, prev_last = None, 0, 0
    for s, plain in zip(specs, is_range):
        if not plain:
            movable = True
            continue
        pos = s["begin_search"]["spec"]["index"]
        rng = s["find_keys"]["spec"]
        if rng["keystep"] != 1 or (prev_last and prev_last != pos - 1):
            movable = True
            continue
        if "incomplete" in s["flags"]:
            movable = True
        first = pos if first is None else min(first, pos)
        abs_last = rng["lastkey"] + pos if rng["lastkey"] >= 0 else rng["lastkey"]
        # Redis compares as unsigned: a negative (from the end) beats any
        # positive index.
        last = max(last, abs_last, key=lambda v: v & 0xFFFFFFFF)
        prev_last = last
    if first is None:
        return (0, 0, 0), True
    return (first, last, 1), movable


def acl_categories(desc, flags):
    """The declared categories plus the implied ones, as
    setImplicitACLCategories adds them."""
    cats = {c.lower() for c in desc.get("acl_categories", [])}
    if "WRITE" in flags:
        cats.add("write")
    if "READONLY" in flags and "scripting" not in cats:
        cats.add("read")
    if "ADMIN" in flags:
        cats.update(("admin", "dangerous"))
    if "PUBSUB" in flags:
        cats.add("pubsub")
    if "FAST" in flags:
        cats.add("fast")
    if "BLOCKING" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    return [c for c in ACL_CATEGORIES if c in cats]


def info(desc, subcommands):
    specs = []
    for ks in desc.get("key_specs", []):
        unknown = set(ks["flags"]) - set(KEY_FLAGS)
        assert not unknown, unknown
        specs.append({
            "flags": [key_flag_name(f) for f in KEY_FLAGS if f in ks["flags"]],
            "begin_search": begin_search(ks["begin_search"]),
            "find_keys": find_keys(ks["find_keys"]),
        })
    (first, last, step), movable = legacy_range(specs)
    declared = set(desc.get("command_flags", []))
    unknown = declared - set(COMMAND_FLAGS) - HIDDEN_FLAGS
    assert not unknown, unknown
    if movable:
        declared.add("MOVABLE_KEYS")
    flags = [PRINTED_NAME.get(f, f.lower()) for f in COMMAND_FLAGS if f in declared]
    out = {
        "arity": desc["arity"],
        "flags": flags,
        "first_key": first,
        "last_key": last,
        "step": step,
        "acl_categories": acl_categories(desc, set(desc.get("command_flags", []))),
        "tips": [t.lower() for t in desc.get("command_tips", [])],
        "key_specs": specs,
    }
    if subcommands:
        # A container (CLIENT, OBJECT...): COMMAND INFO prints its
        # subcommands' own entries inside its own.
        out["subcommands"] = {n: info(d, None) for n, d in sorted(subcommands.items())}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("redis_commands_dir", help="Redis's src/commands directory")
    ap.add_argument("--source", default="redis 7.2.6", help="what the definitions are, recorded in the file")
    ap.add_argument("--all", action="store_true", help="every top-level Redis command, not only Damselfly's")
    args = ap.parse_args()

    top, subs = {}, {}
    for path in sorted(glob.glob(os.path.join(args.redis_commands_dir, "*.json"))):
        with open(path) as f:
            for name, desc in json.load(f).items():
                if "ONLY_SENTINEL" in desc.get("command_flags", []):
                    continue  # exists only in sentinel mode
                if "container" in desc:
                    container = desc["container"].lower()
                    subs.setdefault(container, {})[f"{container}|{name.lower()}"] = desc
                else:
                    top[name.lower()] = desc
    if not top:
        sys.exit(f"no command definitions in {args.redis_commands_dir}")

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    wanted = set(top) if args.all else damselfly_names(repo) & set(top)

    out = sys.stdout
    out.write("{\n")
    out.write(f'"source": {json.dumps(args.source + " src/commands/*.json, by scripts/gen-redis-commands.py")},\n')
    out.write('"commands": {\n')
    lines = [f"{json.dumps(n)}: {json.dumps(info(top[n], subs.get(n)), separators=(',', ':'))}" for n in sorted(wanted)]
    out.write(",\n".join(lines))
    out.write("\n}\n}\n")


if __name__ == "__main__":
    main()
