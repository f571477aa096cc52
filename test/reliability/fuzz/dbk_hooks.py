"""Schemathesis hooks for fuzzing the sidecar API (test/reliability/fuzz.test.ts).

Generated requests must stay on this machine and change nothing outside the test's directories: every target a
request names is the test's own target sidecar (a fuzzed URL could point anywhere, s3:// at a real bucket), a
restore is always a dry run, and the bucket query parameter is dropped. The extra check fails any answer that
carries a stack trace.
"""
import os
import re

import schemathesis

TARGET = os.environ["DBK_FUZZ_TARGET"]


@schemathesis.hook
def map_body(ctx, body):
    if isinstance(body, dict):
        if "target" in body:
            body["target"] = TARGET
        if "destination" in body or "dryRun" in body:
            body["dryRun"] = True
    return body


@schemathesis.hook
def map_query(ctx, query):
    if isinstance(query, dict):
        query.pop("target", None)
    return query


@schemathesis.check
def no_stack_trace(ctx, response, case):
    text = (response.content or b"").decode("utf-8", errors="replace")
    if re.search(r"\n\s+at .*:\d+:\d+", text):
        raise AssertionError("a stack trace in the answer")
