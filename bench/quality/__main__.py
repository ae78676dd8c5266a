"""``python -m bench.quality``: see :mod:`bench.quality.run`."""

import asyncio

from bench.quality.run import main, parse_args

# Guarded: the engine's model runner is a multiprocessing child, which
# imports the main module again.
if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
