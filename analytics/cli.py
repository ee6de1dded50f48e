"""perstack-audit: ingest runs into the Parquet dataset and ask it the audit questions."""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
import traceback
from pathlib import Path

from analytics.catalog import open_catalog
from analytics.dataset import DATA_ENV, Dataset, default_root
from analytics.errors import AnalyticsError, NoDatasetError
from analytics.ingest import ingest
from analytics.output import FORMATS, render
from analytics.queries import named_queries, resolve, run

USAGE = f"""\
perstack-audit [-v] [--data DIR] ingest PATH... [--user NAME]
perstack-audit [-v] [--data DIR] query NAME|SQL [--format table|csv|json] [--prices FILE]
                                         [--timeout SECONDS]
perstack-audit [-v] [--data DIR] list

The dataset lives in --data, else ${DATA_ENV}, else ./.data/audit.
"""
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_CODES = """\
exit codes: 0 done (ingest: also when lines or files could not be read; they are
quarantined, counted and named on stderr); 1 internal error (a bug or a damaged dataset:
one line on stderr, the traceback with -v); 2 bad usage or input: an unknown query name,
SQL that failed, was refused or ran past --timeout, a path to ingest that does not exist,
no dataset to query, a bad prices file, a dataset locked by another ingest for too long.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perstack-audit",
        usage=USAGE,
        description="Ingest Perstack event streams and workspaces into Parquet; audit them "
        "with DuckDB.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=_folder,
        default=None,
        help=f"dataset folder (default: ${DATA_ENV}, else ./.data/audit)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    # --data and -v may also follow the command (`perstack-audit query NAME --data D -v`).
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data", type=_folder, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    data.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    # prog: the commands' own usage lines start with it, not with the whole USAGE above.
    commands = parser.add_subparsers(dest="command", required=True, prog="perstack-audit")

    ingest_cmd = commands.add_parser(
        "ingest",
        parents=[data],
        help="ingest JSONL event streams and workspace folders (perstack/jobs/...)",
        description="Ingest event streams (*.jsonl files named as PATH) and folders. Of a "
        "workspace (a folder holding perstack/jobs) only perstack/jobs is read: job.json, "
        "checkpoints, run settings and event files, never a *.jsonl the Expert wrote. A "
        "folder's *.jsonl files are read only outside any workspace (e.g. a folder of "
        "captured streams).",
    )
    ingest_cmd.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a *.jsonl event stream, a workspace, a job folder, or a folder of streams",
    )
    ingest_cmd.add_argument("--user", default=None, help="label stored with every row")

    query_cmd = commands.add_parser("query", parents=[data], help="run a named audit query or SQL")
    query_cmd.add_argument("query", metavar="NAME|SQL")
    query_cmd.add_argument("--format", choices=FORMATS, default="table")
    query_cmd.add_argument(
        "--prices",
        type=Path,
        default=None,
        help="prices in USD per million tokens: a CSV with the header model,"
        "input_usd_per_mtok,output_usd_per_mtok,cached_input_usd_per_mtok (model is a name "
        "prefix; the longest that matches wins), or a JSON list of objects with those keys "
        "(default: the dataset's prices.csv, else built-in list prices)",
    )

    query_cmd.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="stop the query after this many seconds (default: no limit)",
    )

    commands.add_parser(
        "list", parents=[data], help="list the named audit queries and the catalog's views"
    )
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds above 0 (e.g. --timeout 30)"
        )
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    dataset = Dataset(args.data if args.data is not None else default_root())
    try:
        if args.command == "ingest":
            return _ingest(dataset, args.paths, args.user, data_given=args.data is not None)
        if args.command == "query":
            return _query(dataset, args.query, args.format, args.prices, args.timeout)
        return _list()
    except (AnalyticsError, OSError) as error:
        # Bad input (a missing path, an unwritable dataset folder) is a message, never a
        # traceback; OSError's text names the file.
        print(f"perstack-audit: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:
        # The top level: anything else is a bug or a damaged dataset. One line names it;
        # the traceback, for a bug report, comes with -v.
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        first = str(error).splitlines()[0] if str(error) else ""
        hint = "the traceback is above" if args.verbose else "rerun with -v for the traceback"
        print(
            f"perstack-audit: internal error: {type(error).__name__}: {first} ({hint})",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _ingest(dataset: Dataset, paths: list[Path], user: str | None, *, data_given: bool) -> int:
    report = ingest(paths, dataset.root, user=user)
    summary = {
        "dataset": str(dataset.root),
        "files_read": report.files_read,
        "files_unchanged": report.files_skipped,
        "bytes_read": report.bytes_read,
        "rows": report.rows,
        "skipped": report.skipped,
        "seconds": round(report.seconds, 3),
    }
    print(json.dumps(summary))
    for note in report.notes:
        print(f"perstack-audit: {note}", file=sys.stderr)
    for skipped in report.skipped:
        print(f"perstack-audit: skipped {skipped}", file=sys.stderr)
    quarantined = report.rows.get("quarantine", 0)
    if quarantined:
        data = f" --data {shlex.quote(str(dataset.root))}" if data_given else ""
        print(
            f"perstack-audit: {quarantined} row(s) went to quarantine (lines or files that "
            "could not be read, or events kept with a note); "
            f"see them with: perstack-audit{data} query 'SELECT * FROM quarantine'",
            file=sys.stderr,
        )
    return EXIT_OK


def _folder(text: str) -> Path:
    # Path("") is the working directory: an unset shell variable would make it the dataset.
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give the dataset's folder")
    return Path(text)


def _query(
    dataset: Dataset, query: str, fmt: str, prices: Path | None, timeout_s: float | None
) -> int:
    resolve(query)  # an unknown query name is reported before anything else
    dataset.check_path()
    if not dataset.exists():
        # A mistyped --data would otherwise answer every question with "0 rows", and
        # building a catalog would write into a folder that is not a dataset.
        raise NoDatasetError(str(dataset.root))
    con = open_catalog(dataset, prices)
    try:
        result = run(con, query, timeout_s)
    finally:
        con.close()
    sys.stdout.write(render(result, fmt))
    return EXIT_OK


def _list() -> int:
    for query in named_queries().values():
        print(f"{query.name:<24} {query.description}")
    print()
    print(
        "views: events, runs, generations, tool_calls (snapshots at each ingest; *_live "
        "variants compute at query time), usage_events, tool_results, jobs, run_settings, "
        "checkpoints, checkpoint_versions, messages, quarantine; table: prices"
    )
    return EXIT_OK
