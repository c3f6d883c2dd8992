"""`python -m bench --peers`: Market Spine beside procrastinate and pgqueuer, round-robin.

The peers are installed by the `bench` extra only (`pip install -e '.[dev,bench]'`);
nothing under app/ or worker/ imports them.
"""
