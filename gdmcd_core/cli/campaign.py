"""`gdmcd campaign`: the loop with the lab, on the campaign database ($GDMCD_CAMPAIGNS_DIR or ./campaigns).

gdmcd campaign new NAME                 create a campaign
gdmcd campaign add-run NAME RUN_DIR     add a finished design run's candidates
gdmcd campaign propose NAME --n N       choose and record the next batch (diversity-aware greedy)
gdmcd campaign import NAME FILE.csv     store measured results; each bad row: one line on stderr
gdmcd campaign status NAME [--json]     counts of runs, proposals, batches, measurements, model versions
gdmcd campaign export NAME FILE         every row of the campaign as JSON, or the current measurements as CSV
gdmcd campaign template FILE            the header of a results file
gdmcd campaign update NAME              fine-tune the latest model on the measurements: a new model version
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
    q = sub.add_parser("new", help="create a campaign")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--checkpoint", default=None, help="the model it starts from (default: checkpoints/tc_default.pt)")
    q = sub.add_parser("add-run", help="add a finished design run's candidates to the campaign")
    q.add_argument("name", metavar="NAME")
    q.add_argument("run_dir", metavar="RUN_DIR")
    q = sub.add_parser("propose", help="choose and record the next batch (diversity-aware greedy on Tc − κσ)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--n", type=int, default=10, help="batch size (default %(default)s)")
    q.add_argument(
        "--strategy",
        choices=("diverse", "greedy", "ucb", "thompson"),
        default="diverse",
        help="diverse (default): Tc − κσ minus closeness to chosen, measured and failed compositions; greedy: Tc − κσ; "
        "ucb: Tc + κσ; thompson: a draw from N(Tc, σ²) per slot",
    )
    q.add_argument("--kappa", type=float, default=1.0, help="κ (default %(default)s)")
    q.add_argument("--seed", type=int, default=None, help="seed of thompson's draws")
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
    q = sub.add_parser("update", help="fine-tune the campaign's latest model on its measurements: a new version")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--steps", type=int, default=60, help="Adam steps per member (default %(default)s)")
    q.add_argument("--data-dir", default=None, help="folder with the training data files to replay")
    q.add_argument("--json", action="store_true", help="the report as one JSON object")
    p.set_defaults(handler=handle_campaign)
    return p


def _cmd_new(conn, a) -> int:
    from pathlib import Path

    from gdmcd_core.campaign import store

    base = None
    if a.checkpoint:
        if not Path(a.checkpoint).is_file():
            raise store.CampaignError(f"--checkpoint {a.checkpoint}: no such file")
        base = str(Path(a.checkpoint).resolve())
    cid = store.new_campaign(conn, a.name, base)
    print(f"{PROG}: created campaign {a.name!r} (id {cid}) in {store.campaigns_dir(a.root) / store.DB_FILE}")
    return EXIT_OK


def _cmd_add_run(conn, a) -> int:
    from gdmcd_core.campaign.propose import add_run

    n = add_run(conn, a.name, a.run_dir)
    print(f"{PROG}: added {n} candidate rows from {a.run_dir} to {a.name!r}")
    return EXIT_OK


def _latest_scorer(conn, a):
    """The campaign's latest model version as propose's score_fn, or None while it has none."""
    from gdmcd_core.campaign import store, versions

    cid = store.campaign_id(conn, a.name)
    if versions.latest_version(conn, cid) is None:
        return None
    ens, _, _ = versions.current_model(conn, cid, store.campaigns_dir(a.root))
    return lambda x: ens.predict(x)


def _cmd_propose(conn, a) -> int:
    from gdmcd_core.campaign.propose import Settings, propose
    from gdmcd_core.util import printable

    settings = Settings(strategy=a.strategy, kappa=a.kappa)
    batch = propose(conn, a.name, a.n, settings, _latest_scorer(conn, a), a.seed)
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


def _cmd_update(conn, a) -> int:
    from gdmcd_core.campaign import store, versions
    from gdmcd_core.campaign.update import UpdateConfig
    from gdmcd_core.util import printable

    def progress(fraction: float, message: str) -> None:
        print(f"{PROG}: [{fraction:4.0%}] {message}", file=sys.stderr, flush=True)

    config = UpdateConfig(steps=a.steps).validate()
    report = versions.update(conn, a.name, store.campaigns_dir(a.root), config, progress, a.data_dir)
    if a.json:
        print(json.dumps(report, indent=1))
        return EXIT_OK
    print(f"{PROG}: model version {report['version']} ({report['sha256'][:12]}) in {report['seconds']} s")
    mae = (report["mae_before_k"], report["mae_after_k"])
    if mae[0] is not None:
        print(f"  measured superconductors: MAE {mae[0]:.1f} K before, {mae[1]:.1f} K after")
    cal = report["sigma_recalibration"]
    print(f"  σ factor {cal['sigma_factor']:.2f} from {cal['n']} measured superconductors")
    if report["ranking_moves"]:
        print(f"  the top of the {report['open_candidates']} open candidates now (rank before → after, Tc in K):")
        for m in report["ranking_moves"]:
            print(
                printable(
                    f"    {m['formula']:24s} {m['rank_before']:4d} → {m['rank_after']:<4d} "
                    f"{m['tc_before_k']:6.1f} → {m['tc_after_k']:6.1f}"
                )
            )
    return EXIT_OK


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
    "update": _cmd_update,
}


def handle_campaign(a: argparse.Namespace) -> int:
    if a.campaign_command == "template":
        return _cmd_template(a)
    from gdmcd_core.campaign import store
    from gdmcd_core.model.checkpoint import CheckpointError

    try:
        conn = store.connect(a.root)
        try:
            return COMMANDS[a.campaign_command](conn, a)
        finally:
            conn.close()
    except (store.CampaignError, CheckpointError, ValueError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.filename or ''}: {exc.strerror}")
