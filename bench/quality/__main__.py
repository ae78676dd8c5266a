"""``python -m bench.quality``: see :mod:`bench.quality.run`."""

import asyncio

from bench.quality.run import main, parse_args

raise SystemExit(asyncio.run(main(parse_args())))
