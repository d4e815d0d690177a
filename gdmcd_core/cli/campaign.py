"""`gdmcd campaign`: the loop with the lab, on the campaign database ($GDMCD_CAMPAIGNS_DIR or ./campaigns).

gdmcd campaign new NAME                 create a campaign
gdmcd campaign add-run NAME RUN_DIR     add a finished design run's candidates
gdmcd campaign propose NAME --n N       choose and record the next batch (diversity-aware greedy)
gdmcd campaign import NAME FILE.csv     store measured results; each bad row: one line on stderr
gdmcd campaign status NAME [--json]     counts of runs, proposals, batches, measurements, model versions
gdmcd campaign export NAME FILE         every row of the campaign as JSON, or the current measurements as CSV
gdmcd campaign template FILE            the header of a results file
gdmcd campaign update NAME              not implemented yet (exit 2)
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
PROG = "gdmcd campaign"


def _fail(msg: str, code: int = EXIT_USAGE) -> int:
    from gdmcd_core.util import printable

    print(f"{PROG}: error: {printable(msg)}", file=sys.stderr)
    return code


def add_campaign_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--root", default=None, help="campaigns folder (default $GDMCD_CAMPAIGNS_DIR or ./campaigns)")
    sub = p.add_subparsers(dest="campaign_command", required=True)
    sub.add_parser("new", help="create a campaign").add_argument("name", metavar="NAME")
    q = sub.add_parser("add-run", help="add a finished design run's candidates to the campaign")
    q.add_argument("name", metavar="NAME")
    q.add_argument("run_dir", metavar="RUN_DIR")
    q = sub.add_parser("propose", help="choose and record the next batch (diversity-aware greedy on Tc − κσ)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--n", type=int, default=10, help="batch size (default %(default)s)")
    q.add_argument("--json", action="store_true", help="the batch as a JSON list")
    q = sub.add_parser("import", help="store measured results from a CSV (see `template`)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("file", metavar="FILE.csv")
    q = sub.add_parser("status", help="what the campaign holds")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--json", action="store_true")
    q = sub.add_parser("export", help="every row as JSON (FILE.json) or the current measurements as CSV")
    q.add_argument("name", metavar="NAME")
    q.add_argument("file", metavar="FILE")
    sub.add_parser("template", help="write the header of a results file").add_argument("file", metavar="FILE")
    sub.add_parser("update", help="fine-tune the model on the measurements (not implemented yet)").add_argument(
        "name", metavar="NAME"
    )
    p.set_defaults(handler=handle_campaign)
    return p


def _cmd_new(conn, a) -> int:
    from gdmcd_core.campaign import store

    cid = store.new_campaign(conn, a.name)
    print(f"{PROG}: created campaign {a.name!r} (id {cid}) in {store.campaigns_dir(a.root) / store.DB_FILE}")
    return EXIT_OK


def _cmd_add_run(conn, a) -> int:
    from gdmcd_core.campaign.propose import add_run

    n = add_run(conn, a.name, a.run_dir)
    print(f"{PROG}: added {n} candidate rows from {a.run_dir} to {a.name!r}")
    return EXIT_OK


def _cmd_propose(conn, a) -> int:
    from gdmcd_core.campaign.propose import propose
    from gdmcd_core.util import printable

    batch = propose(conn, a.name, a.n)
    if a.json:
        print(json.dumps(batch, indent=1, ensure_ascii=False))
        return EXIT_OK
    for i, c in enumerate(batch, 1):
        print(printable(f"{i:3d}  {c['formula']:24s} {c['tc_k']:7.1f} K  {c['reason']}"))
    if len(batch) < a.n:
        print(f"{PROG}: only {len(batch)} open candidates", file=sys.stderr)
    return EXIT_OK


def _cmd_import(conn, a) -> int:
    from gdmcd_core.campaign.lab_csv import import_results
    from gdmcd_core.util import printable

    r = import_results(conn, a.name, a.file)
    for line in r.errors:
        print(printable(f"{PROG}: {line}"), file=sys.stderr)
    print(
        f"{PROG}: {r.stored} rows stored ({r.superseded} corrections, {r.unproposed} never proposed), "
        f"{r.unchanged} already stored, {len(r.errors)} bad"
    )
    return EXIT_OK if r.stored or r.unchanged else EXIT_FAIL


def _cmd_status(conn, a) -> int:
    from gdmcd_core.campaign import store

    counts = {"campaign": a.name, **store.counts(conn, store.campaign_id(conn, a.name))}
    if a.json:
        print(json.dumps(counts, indent=1))
    else:
        print("\n".join(f"{k:17s} {v}" for k, v in counts.items()))
    return EXIT_OK


def _cmd_export(conn, a) -> int:
    import csv
    import io

    from gdmcd_core.campaign import store
    from gdmcd_core.util import atomic_write_text

    cid = store.campaign_id(conn, a.name)
    if a.file.lower().endswith(".csv"):
        rows = [dict(r) for r in store.current_measurements(conn, cid)]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["formula", "outcome"])
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    else:
        tables = {t: store.table_rows(conn, t, cid) for t in store.TABLES}
        text = json.dumps({"schema_version": store.schema_version(conn), **tables}, indent=1) + "\n"
    atomic_write_text(a.file, text)
    print(f"{PROG}: wrote {a.file}")
    return EXIT_OK


def _cmd_template(a) -> int:
    from gdmcd_core.campaign.lab_csv import write_template

    write_template(a.file)
    print(f"{PROG}: wrote the results template {a.file}")
    return EXIT_OK


COMMANDS = {
    "new": _cmd_new,
    "add-run": _cmd_add_run,
    "propose": _cmd_propose,
    "import": _cmd_import,
    "status": _cmd_status,
    "export": _cmd_export,
}


def handle_campaign(a: argparse.Namespace) -> int:
    if a.campaign_command == "update":
        print(f"{PROG}: model updates from measurements are not implemented yet", file=sys.stderr)
        return EXIT_USAGE
    if a.campaign_command == "template":
        return _cmd_template(a)
    from gdmcd_core.campaign import store

    try:
        conn = store.connect(a.root)
        try:
            return COMMANDS[a.campaign_command](conn, a)
        finally:
            conn.close()
    except (store.CampaignError, OSError) as exc:
        return _fail(str(exc) if isinstance(exc, store.CampaignError) else f"{exc.filename or ''}: {exc.strerror}")
