"""Pick the GaC run to ship by held-out validation: the best first-grid PSNR on synthroom-val (never synthroom).

    python benchmarks/gac_choose.py WORK_DIR      # prints the run name (the part after gac_)
"""

import json
import sys
from pathlib import Path

best = []
for log in Path(sys.argv[1]).glob("gac_*/val_log.jsonl"):
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if rows:
        best.append((max(r["psnr_first_grid"] for r in rows), log.parent.name[len("gac_"):]))
print(max(best)[1] if best else "")
