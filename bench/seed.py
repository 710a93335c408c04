#!/usr/bin/env python3
"""Seed a fresh ballpark server with the data set the API benchmark reads.

Why through the API and not SQL: the benchmark must not depend on the schema,
and the same script then works for SQLite and PostgreSQL alike.

Creates, as one freshly registered user:
  * ARTICLES articles (default 200), each with 1-4 tags from a small pool;
  * COMMENTS comments (default 1,000), spread evenly over the articles
    (comment i goes to article i % ARTICLES, so every article has the same
    number and the benchmarked one is representative).

A pool of 8 threads keeps it quick. Every response status is checked; the
first failure stops the script with the method, URL, status and body.

Prints one JSON object on stdout for bench/api and its wrk scripts:
  {"token": "<jwt>", "slug": "<slug as returned>",
   "slug_path": "<slug, percent-encoded for a URL path>", ...}

Standard library only, so it runs wherever python3 does.

Usage: bench/seed.py --base-url http://127.0.0.1:PORT [--articles 200]
                     [--comments 1000] [--workers 8]
"""

import argparse
import json
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

# Small pool so tags repeat across articles, as in a real site.
TAG_POOL = [
    "baseball", "pitching", "batting", "fielding", "stats",
    "history", "minors", "scouting", "fantasy", "umpires",
]


class SeedError(Exception):
    pass


def call(base, method, path, body=None, token=None, expect=(200, 201)):
    """One JSON request; returns the decoded body or raises SeedError."""
    url = base + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Token " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    except (urllib.error.URLError, OSError) as err:
        raise SeedError(f"{method} {url}: {err}") from err
    if status not in expect:
        raise SeedError(
            f"{method} {url}: HTTP {status} (expected {expect}): "
            f"{raw[:500].decode(errors='replace')}")
    try:
        return json.loads(raw) if raw else None
    except ValueError as err:
        raise SeedError(f"{method} {url}: HTTP {status} but body is not JSON: "
                        f"{raw[:200]!r}") from err


def field(doc, *keys, what):
    """doc[k1][k2]..., or a SeedError naming what was missing."""
    cur = doc
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            raise SeedError(f"{what}: response has no {'.'.join(keys)}: "
                            f"{json.dumps(doc)[:300]}")
        cur = cur[k]
    return cur


def run_all(fn, items, workers):
    """fn over items on a thread pool, results in order; stops at the first
    error (pending work is cancelled) instead of hammering on."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(fn, it) for it in items]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def path_of(slug):
    # Slugs may hold non-ASCII text (e.g. Hangul), raw or already
    # percent-encoded. Keep '%' so an encoded slug is not encoded twice;
    # encode everything else that is not unreserved, '/' included.
    return urllib.parse.quote(slug, safe="%")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", required=True,
                    help="server root, e.g. http://127.0.0.1:8080 (no /api)")
    ap.add_argument("--articles", type=int, default=200)
    ap.add_argument("--comments", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=42,
                    help="random seed for tag choice (reproducible data)")
    args = ap.parse_args()
    if args.articles < 1:
        ap.error("--articles must be at least 1")

    base = args.base_url.rstrip("/") + "/api"
    rng = random.Random(args.seed)
    run = f"{int(time.time())}{rng.randrange(10**6):06d}"
    started = time.monotonic()

    # 1. One user owns everything; its token also drives the POST benchmark.
    name = f"bench{run}"
    user = call(base, "POST", "/users", {"user": {
        "username": name, "email": f"{name}@example.com",
        "password": "bench-password-1",
    }})
    token = field(user, "user", "token", what="register")

    # 2. Articles. Tags are drawn up front so the data set does not depend on
    # thread scheduling.
    plans = [(i, rng.sample(TAG_POOL, rng.randint(1, 4)))
             for i in range(args.articles)]

    def create_article(plan):
        i, tags = plan
        doc = call(base, "POST", "/articles", {"article": {
            "title": f"Bench article {i:03d} {run}",
            "description": f"Seeded article number {i} for the API benchmark",
            "body": ("A box score, a few notes on the bullpen and a long "
                     "paragraph about the infield shift. ") * 8,
            "tagList": tags,
        }}, token=token)
        return field(doc, "article", "slug", what=f"create article {i}")

    slugs = run_all(create_article, plans, args.workers)
    if len(set(slugs)) != len(slugs):
        raise SeedError("server returned duplicate slugs for distinct titles")
    paths = [path_of(s) for s in slugs]

    # 3. Comments, evenly spread.
    def create_comment(i):
        p = paths[i % len(paths)]
        doc = call(base, "POST", f"/articles/{p}/comments", {"comment": {
            "body": f"Comment {i}: great game last night, what a double play.",
        }}, token=token)
        field(doc, "comment", "id", what=f"create comment {i}")

    run_all(create_comment, range(args.comments), args.workers)

    # 4. Sanity checks, so the benchmark measures the data set it claims to.
    target = 0  # article 0 has ceil(comments / articles) comments
    expected = len(range(target, args.comments, len(paths)))
    listing = call(base, "GET", "/articles?limit=20", token=None)
    count = field(listing, "articlesCount", what="list articles")
    if count < args.articles:
        raise SeedError(f"list reports {count} articles, seeded {args.articles}")
    comments = field(call(base, "GET", f"/articles/{paths[target]}/comments"),
                     "comments", what="list comments")
    if len(comments) != expected:
        raise SeedError(f"article {slugs[target]!r} has {len(comments)} "
                        f"comments, expected {expected}")

    json.dump({
        "token": token,
        "username": name,
        "slug": slugs[target],
        "slug_path": paths[target],
        "articles": args.articles,
        "comments": args.comments,
        "comments_on_slug": expected,
        "seconds": round(time.monotonic() - started, 2),
    }, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except SeedError as err:
        print(f"seed.py: FAILED: {err}", file=sys.stderr)
        sys.exit(1)
