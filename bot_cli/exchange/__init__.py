"""The Binance USDⓈ-M adapter: signing, error classification, wire parsing, filters, REST.

``signing``, ``errors``, ``wire`` and ``filters`` are pure; ``rest`` is the only module
that does I/O. Everything crossing into the rest of bot_cli is a core value or a
``bot_cli.venue`` error: raw exchange dicts never leave this package.
"""
