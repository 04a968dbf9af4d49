# python3 to-trace.py FOLDER > TRACE.json: the manifests of FOLDER as a trace of one event at ts 0,
# read as `skel check` reads them (lists give their items; typed lists give them a kind).
import json, pathlib, sys, yaml

objects = []
def add(v):
    if isinstance(v, list):
        for item in v:
            add(item)
    elif isinstance(v, dict) and str(v.get("kind", "")).endswith("List"):
        kind = v["kind"][: -len("List")]
        for item in v.get("items") or []:
            if kind and isinstance(item, dict) and "kind" not in item:
                item = {"apiVersion": v.get("apiVersion"), "kind": kind, **item}
            add(item)
    elif isinstance(v, dict) and isinstance(v.get("kind"), str):
        objects.append(v)

for path in sorted(pathlib.Path(sys.argv[1]).rglob("*")):
    if path.suffix in (".yaml", ".yml", ".json"):
        for doc in yaml.safe_load_all(path.read_text()):
            add(doc)
event = {"ts": 0, "applied_objs": objects, "deleted_objs": []}
trace = {"version": 2, "config": {"trackedObjects": {}}, "events": [event], "index": {}, "pod_lifecycles": {}}
json.dump(trace, sys.stdout)
