#!/usr/bin/env bash
# Train the JARVIS-split ensemble and its trees, then write this contribution (GDMCD Studio repository root).
set -euo pipefail
gdmcd train --split jarvis --members 8 --out checkpoints/tc_jarvis.pt
gdmcd trees --checkpoint checkpoints/tc_jarvis.pt
python -m bench.jarvis_leaderboard
