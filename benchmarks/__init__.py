"""Benchmarks: run by `make bench`, never by `make test`. Each module has a `main()`."""
