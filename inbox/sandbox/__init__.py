"""Local stand-ins for providers, speaking their wire format on 127.0.0.1.

Used by the tests, the benchmarks and the demo (`make run`), so a fresh machine with no
provider account and no internet still sends, receives and gets delivery receipts.
"""
