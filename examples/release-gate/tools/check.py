"""Read checks.json and answer with one JSON object: how many checks fail, and how bad the worst is."""

import json

data = json.load(open("checks.json"))
failing = [c for c in data["checks"] if not c["passed"]]
worst = "high" if any(c["severity"] == "high" for c in failing) else "low" if failing else "none"
for check in data["checks"]:
    print(f"{'ok  ' if check['passed'] else 'FAIL'} {check['name']}")
print(json.dumps({"failing": len(failing), "severity": worst, "version": data["version"]}))
