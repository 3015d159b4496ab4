"""Verify-by-number under gunicorn and wrk, against a floor measured in the same run.

The floor is a minimal Django view doing one primary-key query (bench/urls.py, loaded only
through bench/settings.py), served by the same gunicorn, so the ratio says what verification
itself costs on top of Django, whatever the machine. Targets, each driven by wrk with the
same threads, connections and duration, in alternating rounds:

    floor      GET /bench/floor/<pk>
    page       GET /verify/<number>          one number: the by-number caches always hit
    json       GET /api/verify/<number>/     the same, through the public JSON API
    page-many  GET /verify/<n>               cold-ish: each request picks one of --numbers
    json-many  GET /api/verify/<n>/          numbers at random (a wrk Lua script), a fresh
                                             set each round, so most first touches miss
                                             the per-worker page / JSON caches

Goal, for every target: >= 0.6 of the floor's requests per second with a p99 latency no
worse than 2x the floor's p99. The exit status is 1 when it is not met.

    python bench/verify_load.py [--duration 10] [--rounds 3] [--connections 16] [--workers 2]
    python bench/verify_load.py --database-url postgres://postgres@127.0.0.1:5432/bench_db

Seeding: --certificates (default 20) are issued for real (each a rendered, PAdES-signed PDF,
~0.2 s); the --numbers x --rounds numbers of the cold-ish targets are copies of their rows
with new numbers (bulk-inserted, cheap), sharing those signed PDFs round-robin. So the
cold-ish figures include finding the certificate, its status verdict and rendering the
answer for each new number, but a stored PDF's signature check (cached by its digest) only
once per distinct PDF and worker.

wrk is the Debian package `wrk` (apt-get install wrk). The rate limit is lifted for the run
(OPENCAS_VERIFY_RATE=off). With no --database-url a throwaway SQLite file is used; a given
database must be empty (it is migrated and seeded). Files and keys go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RPS_GOAL = 0.6
P99_GOAL = 2.0
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def environment(workdir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=database_url or f"sqlite:///{workdir / 'bench.sqlite3'}",
        MEDIA_ROOT=str(workdir / "media"),
        SIGNING_KEY_DIR=str(workdir / "keys"),
        OPENCAS_VERIFY_RATE="off",
        DB_CONN_MAX_AGE="600",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONPATH=str(ROOT),
    )
    env.pop("CERTIFICATE_TSA_URL", None)
    return env


def seed(env: dict[str, str], count: int, copies: int) -> tuple[int, str, list[str]]:
    """Issue `count` certificates and insert `copies` more rows sharing their PDFs; return
    the primary key and number of the last issued one and the copies' numbers."""
    os.environ.update(env)
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    import django

    django.setup()
    from django.core.management import call_command
    from issuance import make_world

    from certificates import services
    from certificates.models import Certificate

    call_command("migrate", verbosity=0)
    if Certificate.objects.exists():
        raise SystemExit("The bench database is not empty: give an empty one.")
    issued = [
        services.certificate_issue(application_id=application_id)
        for application_id in make_world(count)
    ]
    certificate = issued[-1]
    year = certificate.decision_date.year
    numbers = [f"BENCH-{year}-{n:06d}" for n in range(1, copies + 1)]
    fields = [
        f.attname for f in Certificate._meta.concrete_fields if f.name not in {"id", "number"}
    ]
    rows = []
    for n, number in enumerate(numbers):
        source = issued[n % len(issued)]
        values = {name: getattr(source, name) for name in fields}
        rows.append(Certificate(number=number, **values))
    Certificate.objects.bulk_create(rows, batch_size=1000)
    from django.db import connections

    connections.close_all()
    return certificate.pk, certificate.number, numbers


LUA = """-- one of the bench's numbers at random for each request (bench/verify_load.py)
local numbers = {%(numbers)s}
local prefix, suffix = "%(prefix)s", "%(suffix)s"
function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%%x+)") or "0", 16) %% 100000)
end
function request()
  return wrk.format("GET", prefix .. numbers[math.random(#numbers)] .. suffix)
end
"""


def lua_script(folder: Path, name: str, numbers: list[str], prefix: str, suffix: str) -> Path:
    path = folder / f"{name}.lua"
    quoted = ", ".join(f'"{n}"' for n in numbers)
    path.write_text(LUA % {"numbers": quoted, "prefix": prefix, "suffix": suffix})
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited before serving; see its output above.")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"gunicorn did not answer {url} within {timeout} s")


def seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"cannot read the latency {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def run_wrk(
    url: str, *, threads: int, connections: int, duration: int, script: Path | None = None
) -> tuple[float, float]:
    """(requests per second, p99 latency in seconds); non-2xx answers fail the bench."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run(
        [*command, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors on {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = seconds(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))
    return rps, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--certificates", type=int, default=20, help="certificates issued for real (PDFs)"
    )
    parser.add_argument(
        "--numbers", type=int, default=2000, help="numbers per round of the cold-ish targets"
    )
    parser.add_argument("--database-url", default="", help="an empty database (default SQLite)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 3

    workdir = Path(tempfile.mkdtemp(prefix="opencas-verify-bench-"))
    server = None
    try:
        env = environment(workdir, args.database_url)
        pk, number, copies = seed(env, args.certificates, args.numbers * args.rounds)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "cas.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        targets = {
            "floor": f"{base}/bench/floor/{pk}",
            "page": f"{base}/verify/{number}",
            "json": f"{base}/api/verify/{number}/",
        }
        wait_until_up(targets["floor"], server)
        for url in targets.values():
            # Warm up: imports, connections, and each worker's first signature check.
            run_wrk(url, threads=args.threads, connections=args.connections, duration=2)
        # The cold-ish targets: a fresh set of numbers each round, never warmed up.
        many = {"page-many": ("/verify/", ""), "json-many": ("/api/verify/", "/")}
        scripts = {
            (name, round_): lua_script(
                workdir,
                f"{name}-{round_}",
                copies[round_ * args.numbers : (round_ + 1) * args.numbers],
                prefix,
                suffix,
            )
            for name, (prefix, suffix) in many.items()
            for round_ in range(args.rounds)
        }

        results: dict[str, list[tuple[float, float]]] = {n: [] for n in [*targets, *many]}
        for round_ in range(args.rounds):
            # Alternate the targets, so a busy machine slows each alike.
            for name in results:
                script = scripts.get((name, round_))
                results[name].append(
                    run_wrk(
                        targets.get(name, base + "/"),
                        threads=args.threads,
                        connections=args.connections,
                        duration=args.duration,
                        script=script,
                    )
                )

        print(
            f"gunicorn {args.workers} sync workers; wrk -t{args.threads} -c{args.connections} "
            f"-d{args.duration}s, {args.rounds} rounds (medians); "
            f"database {env['DATABASE_URL'].split(':')[0]}"
        )
        floor_rps = statistics.median(r for r, _ in results["floor"])
        floor_p99 = statistics.median(p for _, p in results["floor"])
        met = True
        for name, runs in results.items():
            rps = statistics.median(r for r, _ in runs)
            p99 = statistics.median(p for _, p in runs)
            line = f"{name:9} {rps:8.1f} req/s   p99 {p99 * 1000:7.1f} ms"
            if name != "floor":
                rps_ratio, p99_ratio = rps / floor_rps, p99 / floor_p99
                ok = rps_ratio >= RPS_GOAL and p99_ratio <= P99_GOAL
                met = met and ok
                line += (
                    f"   rps {rps_ratio:.2f}x floor (goal >= {RPS_GOAL}),"
                    f" p99 {p99_ratio:.2f}x floor (goal <= {P99_GOAL}): "
                    f"{'met' if ok else 'NOT met'}"
                )
            print(line)
        print(
            f"cold-ish targets: {args.numbers} numbers a round of {args.numbers * args.rounds} "
            f"seeded, sharing {args.certificates} signed PDFs"
        )
        print(f"goal: {'met' if met else 'NOT met'}")
        return 0 if met else 1
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
