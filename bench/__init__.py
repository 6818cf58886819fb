"""Performance harness (issue 6): cold start, first event, warm latency, burst and compile, each
measured side by side with a naive baseline. ``python -m bench.run`` (or ``make bench``)."""
